//! Overlay IPAM: a subnet per site, an address per node, never reused.
//!
//! The cluster's overlay CIDR (default [`DEFAULT_OVERLAY_CIDR`]) is cut into equal,
//! aligned per-site subnets, one per site in site-id order, each large enough for the
//! site's planned nodes twice over (room for replacements, since a retired address is
//! never handed out again). In each subnet the first host address is the site's
//! gateway; members follow from the tenth host address on.
//!
//! A node keeps its address for life: assigning the same node name again returns the
//! same address, also when repair moves the node to another site (routing then uses
//! a /32 for it, see [`Ipam::moved_nodes`]). The whole state is plain data (serde), stored
//! with the deployment.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use intercloud_core::{Error, Result, SiteId};

pub use intercloud_core::DEFAULT_OVERLAY_CIDR;

/// Host offsets below this in a site subnet are reserved (gateway and services).
const FIRST_MEMBER_OFFSET: u32 = 10;

/// One site's share of the overlay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteSubnet {
    /// The site's subnet.
    pub subnet: Ipv4Net,
    /// The site gateway's overlay address (first host address).
    pub gateway: Ipv4Addr,
    /// Offset of the next member address to hand out.
    next: u32,
}

impl SiteSubnet {
    fn capacity(&self) -> u32 {
        // Hosts minus network, broadcast and reserved offsets.
        (1u32 << (32 - self.subnet.prefix_len())).saturating_sub(FIRST_MEMBER_OFFSET + 1)
    }
}

/// The address plan of one cluster's overlay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipam {
    cidr: Ipv4Net,
    sites: BTreeMap<SiteId, SiteSubnet>,
    nodes: BTreeMap<String, (SiteId, Ipv4Addr)>,
    retired: BTreeSet<Ipv4Addr>,
}

impl Ipam {
    /// Plans per-site subnets in `cidr` for the planned node counts per site.
    ///
    /// # Errors
    /// `Config` when `cidr` is not an IPv4 private CIDR, or too small for the sites
    /// and counts (the message says how large it must be).
    pub fn plan(cidr: &str, nodes_per_site: &BTreeMap<SiteId, u32>) -> Result<Self> {
        let cidr: Ipv4Net = cidr.parse().map_err(|_| {
            Error::config(format!(
                "overlay CIDR {cidr:?} is not an IPv4 CIDR like 10.77.0.0/16"
            ))
        })?;
        let cidr = cidr.trunc();
        if !cidr.network().is_private() {
            return Err(Error::config(format!(
                "overlay CIDR {cidr} is not private (use 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)"
            )));
        }
        if nodes_per_site.is_empty() {
            return Err(Error::config("the overlay has no site"));
        }
        let largest = nodes_per_site.values().copied().max().unwrap_or(0);
        // Twice the nodes plus reserved offsets, network and broadcast; a /24 per site
        // when the CIDR has room (readable addresses), smaller subnets otherwise.
        let want = 2 * largest + FIRST_MEMBER_OFFSET + 2;
        let need_bits = (32 - want.saturating_sub(1).leading_zeros()).max(4);
        let sites_bits = usize::BITS - (nodes_per_site.len() - 1).leading_zeros();
        let fits = |host_bits: u32| {
            32 - host_bits as i32 - sites_bits as i32 >= i32::from(cidr.prefix_len())
        };
        let host_bits = if fits(need_bits.max(8)) {
            need_bits.max(8)
        } else {
            need_bits
        };
        if !fits(host_bits) {
            return Err(Error::config(format!(
                "overlay CIDR {cidr} is too small for {} sites of up to {largest} nodes; use a /{} or larger",
                nodes_per_site.len(),
                (32 - host_bits as i32 - sites_bits as i32).max(8)
            )));
        }
        let site_prefix = (32 - host_bits) as u8;
        let subnets = cidr
            .subnets(site_prefix)
            .map_err(|e| Error::config(e.to_string()))?;
        let sites = nodes_per_site
            .keys()
            .cloned()
            .zip(subnets)
            .map(|(site, subnet)| {
                let gateway = u32_to_ip(ip_to_u32(subnet.network()) + 1);
                (
                    site,
                    SiteSubnet {
                        subnet,
                        gateway,
                        next: FIRST_MEMBER_OFFSET,
                    },
                )
            })
            .collect();
        Ok(Self {
            cidr,
            sites,
            nodes: BTreeMap::new(),
            retired: BTreeSet::new(),
        })
    }

    /// The overlay CIDR.
    pub fn cidr(&self) -> Ipv4Net {
        self.cidr
    }

    /// The subnet of `site`.
    pub fn site(&self, site: &SiteId) -> Option<&SiteSubnet> {
        self.sites.get(site)
    }

    /// Every site's subnet, in site-id order.
    pub fn sites(&self) -> impl Iterator<Item = (&SiteId, &SiteSubnet)> {
        self.sites.iter()
    }

    /// The address of `node` on `site`: the node's address if it has one already (a
    /// node keeps its address for life, even when it moves site), else the next unused
    /// address of the site's subnet.
    ///
    /// # Errors
    /// `Config` when `site` has no subnet or its subnet is exhausted.
    pub fn assign(&mut self, node: &str, site: &SiteId) -> Result<Ipv4Addr> {
        if let Some((home, ip)) = self.nodes.get_mut(node) {
            *home = site.clone();
            return Ok(*ip);
        }
        let sub = self.sites.get_mut(site).ok_or_else(|| {
            Error::config(format!("site {site} has no overlay subnet")).with_site(site)
        })?;
        let ip = loop {
            if sub.next >= sub.capacity() + FIRST_MEMBER_OFFSET {
                return Err(Error::config(format!(
                    "overlay subnet {} of site {site} is exhausted; plan a larger overlay CIDR \
                     (or, for a site on its guest network, a larger network)",
                    sub.subnet
                ))
                .with_site(site));
            }
            let ip = u32_to_ip(ip_to_u32(sub.subnet.network()) + sub.next);
            sub.next += 1;
            if !self.retired.contains(&ip) {
                break ip;
            }
        };
        self.nodes.insert(node.to_owned(), (site.clone(), ip));
        Ok(ip)
    }

    /// Gives `site` its cloud's guest network `cidr` as its subnet instead of its share
    /// of the overlay CIDR: a site linked by its cloud's own VPN gateway, which routes
    /// only that network, so its nodes' addresses must be real NIC addresses there.
    /// Members come from the tenth host address on, skipping `in_use` (addresses other
    /// machines hold); call it before assigning the site's nodes.
    ///
    /// # Errors
    /// `Config` naming the site when `cidr` is not IPv4, overlaps the overlay CIDR or
    /// another site's guest network (IPsec cannot route between equal addresses), or
    /// cannot hold `nodes` more addresses.
    pub fn pin_site(
        &mut self,
        site: &SiteId,
        cidr: &str,
        in_use: &[String],
        nodes: u32,
    ) -> Result<()> {
        let bad = |why: String| Error::config(why).with_site(site);
        let net: Ipv4Net = cidr.parse().map_err(|_| {
            bad(format!(
                "the guest network of site {site} has CIDR {cidr:?}, which is not IPv4"
            ))
        })?;
        let net = net.trunc();
        let overlaps =
            |a: &Ipv4Net, b: &Ipv4Net| a.contains(&b.network()) || b.contains(&a.network());
        if overlaps(&net, &self.cidr) {
            return Err(bad(format!(
                "the guest network {net} of site {site} overlaps the overlay CIDR {}: choose \
                 another [vpn] cidr",
                self.cidr
            )));
        }
        for (other, sub) in &self.sites {
            if other != site && overlaps(&net, &sub.subnet) {
                return Err(bad(format!(
                    "the guest networks of sites {site} ({net}) and {other} ({}) overlap: their \
                     VPN gateways cannot route to each other; give one VPC another CIDR or use \
                     [vpn] fabric = \"wireguard\"",
                    sub.subnet
                )));
            }
        }
        let taken: BTreeSet<Ipv4Addr> = in_use
            .iter()
            .filter_map(|a| a.parse().ok())
            .filter(|ip| net.contains(ip))
            .collect();
        let mut sub = SiteSubnet {
            subnet: net,
            gateway: u32_to_ip(ip_to_u32(net.network()) + 1),
            next: FIRST_MEMBER_OFFSET,
        };
        let free = (0..sub.capacity())
            .map(|i| u32_to_ip(ip_to_u32(net.network()) + FIRST_MEMBER_OFFSET + i))
            .filter(|ip| !taken.contains(ip))
            .count();
        if (free as u64) < u64::from(nodes) {
            return Err(bad(format!(
                "the guest network {net} of site {site} has {free} free addresses from its tenth \
                 host on, but {nodes} nodes go there: place fewer nodes there or use a larger \
                 network"
            )));
        }
        sub.next = FIRST_MEMBER_OFFSET;
        self.retired.extend(taken);
        self.sites.insert(site.clone(), sub);
        Ok(())
    }

    /// The address and current site of `node`, if assigned.
    pub fn node(&self, node: &str) -> Option<(&SiteId, Ipv4Addr)> {
        self.nodes.get(node).map(|(s, ip)| (s, *ip))
    }

    /// Removes `node` for good: its address is never handed out again.
    pub fn retire(&mut self, node: &str) {
        if let Some((_, ip)) = self.nodes.remove(node) {
            self.retired.insert(ip);
        }
    }

    /// Nodes living on a site other than the one whose subnet holds their address
    /// (moved by repair): `(node, site, address)`. Fabrics route these by /32.
    pub fn moved_nodes(&self) -> Vec<(&str, &SiteId, Ipv4Addr)> {
        self.nodes
            .iter()
            .filter(|(_, (site, ip))| self.sites.get(site).is_some_and(|s| !s.subnet.contains(ip)))
            .map(|(n, (site, ip))| (n.as_str(), site, *ip))
            .collect()
    }
}

fn ip_to_u32(ip: Ipv4Addr) -> u32 {
    u32::from(ip)
}

fn u32_to_ip(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(c: &[(&str, u32)]) -> BTreeMap<SiteId, u32> {
        c.iter().map(|(s, n)| (SiteId::from(*s), *n)).collect()
    }

    #[test]
    fn seed_cluster_gets_small_aligned_subnets() {
        let mut ipam = Ipam::plan(
            DEFAULT_OVERLAY_CIDR,
            &counts(&[("hokkaido", 3), ("nii", 2), ("tokyo", 1)]),
        )
        .unwrap();
        let h = ipam.site(&"hokkaido".into()).unwrap().clone();
        assert_eq!(h.subnet.to_string(), "10.77.0.0/24");
        assert_eq!(h.gateway.to_string(), "10.77.0.1");
        assert_eq!(
            ipam.site(&"nii".into()).unwrap().subnet.to_string(),
            "10.77.1.0/24"
        );
        assert_eq!(
            ipam.assign("master-1", &"hokkaido".into())
                .unwrap()
                .to_string(),
            "10.77.0.10"
        );
        assert_eq!(
            ipam.assign("worker-1", &"hokkaido".into())
                .unwrap()
                .to_string(),
            "10.77.0.11"
        );
        assert_eq!(
            ipam.assign("worker-2", &"nii".into()).unwrap().to_string(),
            "10.77.1.10"
        );
    }

    #[test]
    fn addresses_are_stable_and_never_reused() {
        let mut ipam = Ipam::plan("10.9.0.0/16", &counts(&[("a", 4), ("b", 4)])).unwrap();
        let w1 = ipam.assign("w-1", &"a".into()).unwrap();
        assert_eq!(
            ipam.assign("w-1", &"a".into()).unwrap(),
            w1,
            "same node, same address"
        );
        ipam.retire("w-1");
        let w2 = ipam.assign("w-2", &"a".into()).unwrap();
        assert_ne!(w2, w1, "a retired address is not handed out again");
        // Repair moves w-2 to site b: it keeps its address and is routed by /32.
        assert_eq!(ipam.assign("w-2", &"b".into()).unwrap(), w2);
        assert_eq!(ipam.moved_nodes(), vec![("w-2", &SiteId::from("b"), w2)]);
    }

    #[test]
    fn large_clusters_fit_and_small_cidrs_are_refused() {
        let mut ipam = Ipam::plan("10.0.0.0/8", &counts(&[("a", 2000), ("b", 10)])).unwrap();
        assert_eq!(ipam.site(&"a".into()).unwrap().subnet.prefix_len(), 20);
        for i in 0..2000 {
            ipam.assign(&format!("w-{i}"), &"a".into()).unwrap();
        }
        let e = Ipam::plan("192.168.1.0/24", &counts(&[("a", 2000)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("too small") && e.contains("use a /"), "{e}");
        let e = Ipam::plan("8.8.0.0/16", &counts(&[("a", 1)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not private"), "{e}");
        assert!(Ipam::plan("banana", &counts(&[("a", 1)])).is_err());
    }

    #[test]
    fn exhaustion_is_an_error_naming_the_site() {
        let mut ipam = Ipam::plan("10.1.0.0/16", &counts(&[("a", 1)])).unwrap();
        let cap = ipam.site(&"a".into()).unwrap().capacity();
        for i in 0..cap {
            ipam.assign(&format!("n{i}"), &"a".into()).unwrap();
        }
        let e = ipam.assign("one-more", &"a".into()).unwrap_err();
        assert_eq!(e.site().map(SiteId::as_str), Some("a"));
    }

    #[test]
    fn a_pinned_site_takes_free_addresses_of_its_guest_network() {
        let mut ipam = Ipam::plan("10.77.0.0/16", &counts(&[("cs", 3), ("one", 2)])).unwrap();
        let cs = SiteId::from("cs");
        let taken = vec!["10.1.1.10".to_owned(), "10.1.1.12".to_owned()];
        ipam.pin_site(&cs, "10.1.1.0/24", &taken, 3).unwrap();
        assert_eq!(ipam.site(&cs).unwrap().subnet.to_string(), "10.1.1.0/24");
        let got: Vec<String> = (0..3)
            .map(|i| ipam.assign(&format!("w-{i}"), &cs).unwrap().to_string())
            .collect();
        assert_eq!(got, ["10.1.1.11", "10.1.1.13", "10.1.1.14"]);
        // the other site keeps its overlay share
        assert_eq!(
            ipam.assign("m-1", &"one".into()).unwrap().to_string(),
            "10.77.1.10"
        );
    }

    #[test]
    fn pinning_refuses_overlaps_and_small_networks_naming_the_site() {
        let mut ipam = Ipam::plan("10.77.0.0/16", &counts(&[("a", 1), ("b", 1)])).unwrap();
        let e = ipam
            .pin_site(&"a".into(), "10.77.5.0/24", &[], 1)
            .unwrap_err();
        assert!(e.to_string().contains("overlay CIDR"), "{e}");
        assert_eq!(e.site().map(SiteId::as_str), Some("a"));
        ipam.pin_site(&"a".into(), "172.31.0.0/20", &[], 1).unwrap();
        let e = ipam
            .pin_site(&"b".into(), "172.31.0.0/16", &[], 1)
            .unwrap_err();
        assert!(
            e.to_string().contains("overlap") && e.to_string().contains("wireguard"),
            "{e}"
        );
        let e = ipam
            .pin_site(&"b".into(), "192.168.0.0/28", &[], 6)
            .unwrap_err();
        assert!(e.to_string().contains("5 free addresses"), "{e}");
        assert!(ipam.pin_site(&"b".into(), "banana", &[], 1).is_err());
    }

    proptest::proptest! {
        #[test]
        fn no_two_nodes_share_an_address(sizes in proptest::collection::vec(1u32..300, 1..6)) {
            let c: BTreeMap<SiteId, u32> =
                sizes.iter().enumerate().map(|(i, n)| (SiteId::from(format!("s{i}")), *n)).collect();
            let mut ipam = Ipam::plan("10.0.0.0/12", &c).unwrap();
            let mut seen = BTreeSet::new();
            for (site, n) in &c {
                let sub = ipam.site(site).unwrap().clone();
                for i in 0..*n {
                    let ip = ipam.assign(&format!("{site}-{i}"), site).unwrap();
                    proptest::prop_assert!(sub.subnet.contains(&ip));
                    proptest::prop_assert!(ip != sub.gateway);
                    proptest::prop_assert!(seen.insert(ip));
                }
            }
        }
    }
}
