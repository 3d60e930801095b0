//! The WireGuard overlay of one cluster: site gateways fully meshed, members peered
//! with their site's gateway.
//!
//! Hub-and-spoke per site (rather than a full mesh of all nodes) is the documented
//! choice: only gateways need a reachable endpoint, a member's config has one peer,
//! and adding a node changes one gateway (O(1) peer updates instead of O(N)).
//!
//! Members planned with a key group ([`Mesh::add_member_in_group`]) have keys derived
//! from the group's secret (see `derive`), so a gateway's user data carries its
//! site's group secrets and a small program instead of one peer per member
//! ([`Mesh::gateway_compact`]). A gateway's peers are listed other gateways first,
//! then members with their own (random or rotated) key, then derived members, each
//! by overlay address: the order the compact form reproduces.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use intercloud_core::{Error, Result, SiteId};

use super::config::{wg_quick, Interface, Peer};
use super::derive::{peers_script, KeyGroup};
use super::keys::KeyPair;
use crate::ipam::Ipam;

/// The default WireGuard UDP port of gateways.
pub const DEFAULT_PORT: u16 = 51820;
const KEEPALIVE: u16 = 25;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Gateway {
    key: KeyPair,
    /// `host:port` other gateways reach it at.
    public: Option<String>,
    /// `host:port` its own site's members reach it at (defaults to `public`).
    local: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MemberEntry {
    key: KeyPair,
    /// The key group the key is derived from (`None`: a random key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group: Option<String>,
}

/// One cluster's overlay: addresses, keys and endpoints; renders every node's config.
///
/// It serialises (serde) with its private keys, so a later process (resume, repair)
/// renders configs that match the running nodes: store it only where private keys may
/// live, e.g. a 0600 file in the deployment's state folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mesh {
    iface: String,
    port: u16,
    ipam: Ipam,
    gateways: BTreeMap<SiteId, Gateway>,
    members: BTreeMap<String, MemberEntry>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    key_groups: BTreeMap<String, KeyGroup>,
}

impl Mesh {
    /// A mesh over the address plan `ipam`, on interface `iface` (unique per host:
    /// userspace WireGuard's control socket is named after it) and UDP `port`.
    pub fn new(ipam: Ipam, iface: impl Into<String>, port: u16) -> Self {
        Self {
            iface: iface.into(),
            port,
            ipam,
            gateways: BTreeMap::new(),
            members: BTreeMap::new(),
            key_groups: BTreeMap::new(),
        }
    }

    /// The interface name.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// The address plan.
    pub fn ipam(&self) -> &Ipam {
        &self.ipam
    }

    /// Adds `site`'s gateway (a new key) if it has none; returns its public key.
    ///
    /// # Errors
    /// `Config` when the address plan has no subnet for the site.
    pub fn add_site(&mut self, site: &SiteId) -> Result<&str> {
        if self.ipam.site(site).is_none() {
            return Err(Error::config(format!("site {site} has no overlay subnet")).with_site(site));
        }
        let gw = self
            .gateways
            .entry(site.clone())
            .or_insert_with(|| Gateway {
                key: KeyPair::generate(),
                public: None,
                local: None,
            });
        Ok(gw.key.public())
    }

    /// The sites that have a gateway, sorted.
    pub fn gateway_sites(&self) -> Vec<SiteId> {
        self.gateways.keys().cloned().collect()
    }

    /// Removes `site`'s gateway.
    pub fn remove_site(&mut self, site: &SiteId) {
        self.gateways.remove(site);
    }

    /// Records where `site`'s gateway listens: `public` for other gateways, `local`
    /// for its own members (IP addresses; the port is the mesh's).
    ///
    /// # Errors
    /// `Config` when the site has no gateway.
    pub fn set_gateway_address(
        &mut self,
        site: &SiteId,
        public: Option<&str>,
        local: Option<&str>,
    ) -> Result<()> {
        let port = self.port;
        let gw = self.gateway_mut(site)?;
        gw.public = public.map(|a| format!("{a}:{port}"));
        gw.local = local.map(|a| format!("{a}:{port}"));
        Ok(())
    }

    /// Whether the gateway of `site` has a known public endpoint.
    pub fn gateway_ready(&self, site: &SiteId) -> bool {
        self.gateways.get(site).is_some_and(|g| g.public.is_some())
    }

    /// Adds member `name` on `site` (or moves it there, keeping its address and key);
    /// returns its overlay address.
    ///
    /// # Errors
    /// `Config` when the site has no subnet or it is exhausted.
    pub fn add_member(&mut self, name: &str, site: &SiteId) -> Result<Ipv4Addr> {
        let ip = self.ipam.assign(name, site)?;
        self.members
            .entry(name.to_owned())
            .or_insert_with(|| MemberEntry {
                key: KeyPair::generate(),
                group: None,
            });
        Ok(ip)
    }

    /// Adds member `name` on `site` as [`Mesh::add_member`], a new member's key
    /// derived from key group `group`'s secret (the group made if new): see `derive`.
    /// Give the members of one create call one group.
    ///
    /// # Errors
    /// As [`Mesh::add_member`].
    pub fn add_member_in_group(
        &mut self,
        name: &str,
        site: &SiteId,
        group: &str,
    ) -> Result<Ipv4Addr> {
        let ip = self.ipam.assign(name, site)?;
        if !self.members.contains_key(name) {
            let secret = self
                .key_groups
                .entry(group.to_owned())
                .or_insert_with(KeyGroup::generate);
            let key = secret.member_key(name)?;
            self.members.insert(
                name.to_owned(),
                MemberEntry {
                    key,
                    group: Some(group.to_owned()),
                },
            );
        }
        Ok(ip)
    }

    /// The key group member `name`'s key is derived from, with its secret, and the
    /// member's private key (base64); `None` for a random key or no such member.
    pub fn member_key_source(&self, name: &str) -> Option<(&str, &KeyGroup, &str)> {
        let m = self.members.get(name)?;
        let g = m.group.as_deref()?;
        Some((g, self.key_groups.get(g)?, m.key.private_text()))
    }

    /// Removes member `name` for good (its address is retired, never reused).
    pub fn remove_member(&mut self, name: &str) {
        self.members.remove(name);
        self.ipam.retire(name);
    }

    /// Gives member `name` a new key; its gateway's peer list changes accordingly
    /// (render [`super::peer_changes`] between the old and new peer lists).
    ///
    /// # Errors
    /// `Config` when there is no such member.
    pub fn rotate_member_key(&mut self, name: &str) -> Result<()> {
        let m = self
            .members
            .get_mut(name)
            .ok_or_else(|| Error::config(format!("no overlay member {name:?}")))?;
        m.key = KeyPair::generate();
        m.group = None;
        Ok(())
    }

    /// The public key of member `name`.
    pub fn member_public_key(&self, name: &str) -> Option<&str> {
        self.members.get(name).map(|m| m.key.public())
    }

    fn gateway_mut(&mut self, site: &SiteId) -> Result<&mut Gateway> {
        self.gateways.get_mut(site).ok_or_else(|| {
            Error::config(format!("site {site} has no overlay gateway")).with_site(site)
        })
    }

    fn gateway(&self, site: &SiteId) -> Result<&Gateway> {
        self.gateways.get(site).ok_or_else(|| {
            Error::config(format!("site {site} has no overlay gateway")).with_site(site)
        })
    }

    /// The peers of `site`'s gateway: every other gateway (its subnet plus the /32 of
    /// nodes moved there) and every member living on `site` (its /32).
    ///
    /// # Errors
    /// `Config` when the site has no gateway.
    pub fn gateway_peers(&self, site: &SiteId) -> Result<Vec<Peer>> {
        self.gateway(site)?;
        let moved = self.ipam.moved_nodes();
        let mut peers = Vec::new();
        for (other, gw) in &self.gateways {
            if other == site {
                continue;
            }
            let Some(sub) = self.ipam.site(other) else {
                continue;
            };
            let mut allowed = vec![sub.subnet.to_string()];
            allowed.extend(
                moved
                    .iter()
                    .filter(|(_, s, _)| *s == other)
                    .map(|(_, _, ip)| format!("{ip}/32")),
            );
            peers.push(Peer {
                public_key: gw.key.public().to_owned(),
                endpoint: gw.public.clone(),
                allowed_ips: allowed,
                keepalive: Some(KEEPALIVE),
            });
        }
        for (ip, m) in self.site_members(site) {
            peers.push(Peer {
                public_key: m.key.public().to_owned(),
                endpoint: None,
                allowed_ips: vec![format!("{ip}/32")],
                keepalive: None,
            });
        }
        Ok(peers)
    }

    /// The members living on `site` in the order of its gateway's peers: random keys
    /// first, then derived ones, each by overlay address, with their names.
    fn site_members(&self, site: &SiteId) -> Vec<(Ipv4Addr, &MemberEntry)> {
        self.site_members_named(site)
            .into_iter()
            .map(|(_, ip, m)| (ip, m))
            .collect()
    }

    fn site_members_named(&self, site: &SiteId) -> Vec<(&str, Ipv4Addr, &MemberEntry)> {
        let mut out: Vec<(&str, Ipv4Addr, &MemberEntry)> = self
            .members
            .iter()
            .filter_map(|(name, m)| match self.ipam.node(name) {
                Some((home, ip)) if home == site => Some((name.as_str(), ip, m)),
                _ => None,
            })
            .collect();
        out.sort_by_key(|(_, ip, m)| (m.group.is_some(), *ip));
        out
    }

    /// `site`'s gateway file in two parts whose concatenation is
    /// [`Mesh::gateway_config`]: the file without its derived members, and a `sh`
    /// program (needing `openssl`, `wg` and `base64`) printing their `[Peer]`
    /// sections from their groups' secrets — O(groups) bytes, not O(members).
    ///
    /// # Errors
    /// As [`Mesh::gateway_config`].
    pub fn gateway_compact(&self, site: &SiteId) -> Result<(String, String)> {
        let full = self.gateway_peers(site)?;
        let named = self.site_members_named(site);
        let derived = named.iter().filter(|(_, _, m)| m.group.is_some()).count();
        let base = self.gateway_file(site, full[..full.len() - derived].to_vec())?;
        let mut segments: Vec<(&KeyGroup, String)> = Vec::new();
        let mut last: Option<&str> = None;
        for (name, ip, m) in named.iter().filter(|(_, _, m)| m.group.is_some()) {
            let g = m.group.as_deref().unwrap_or_default();
            let secret = self.key_groups.get(g).ok_or_else(|| {
                Error::config(format!("key group {g:?} has no secret")).with_site(site)
            })?;
            if last != Some(g) {
                segments.push((secret, String::new()));
                last = Some(g);
            }
            if let Some((_, lines)) = segments.last_mut() {
                lines.push_str(&format!("{name} {ip}\n"));
            }
        }
        Ok((base, peers_script(&segments)))
    }

    /// The wg-quick file of `site`'s gateway (it forwards between members and sites).
    ///
    /// # Errors
    /// `Config` when the site has no gateway.
    pub fn gateway_config(&self, site: &SiteId) -> Result<String> {
        self.gateway_file(site, self.gateway_peers(site)?)
    }

    fn gateway_file(&self, site: &SiteId, peers: Vec<Peer>) -> Result<String> {
        let gw = self.gateway(site)?;
        let sub = self
            .ipam
            .site(site)
            .ok_or_else(|| Error::config("no subnet").with_site(site))?;
        Ok(wg_quick(&Interface {
            key: &gw.key,
            address: format!("{}/{}", sub.gateway, self.ipam.cidr().prefix_len()),
            listen_port: Some(self.port),
            post_up: vec!["sysctl -w net.ipv4.ip_forward=1".into()],
            peers,
        }))
    }

    /// The wg-quick file of member `name`: one peer, its site's gateway, routing the
    /// whole overlay.
    ///
    /// # Errors
    /// `Config` when the member or its gateway is unknown, or the gateway has no
    /// address yet (prepare the site and record its address first).
    pub fn member_config(&self, name: &str) -> Result<String> {
        let m = self
            .members
            .get(name)
            .ok_or_else(|| Error::config(format!("no overlay member {name:?}")))?;
        let (site, ip) = self
            .ipam
            .node(name)
            .ok_or_else(|| Error::config(format!("no overlay address for {name:?}")))?;
        let gw = self.gateway(site)?;
        let endpoint = gw
            .local
            .clone()
            .or_else(|| gw.public.clone())
            .ok_or_else(|| {
                Error::config(format!(
                    "the overlay gateway of site {site} has no address yet"
                ))
                .with_site(site)
            })?;
        Ok(wg_quick(&Interface {
            key: &m.key,
            address: format!("{ip}/{}", self.ipam.cidr().prefix_len()),
            listen_port: None,
            post_up: Vec::new(),
            peers: vec![Peer {
                public_key: gw.key.public().to_owned(),
                endpoint: Some(endpoint),
                allowed_ips: vec![self.ipam.cidr().to_string()],
                keepalive: Some(KEEPALIVE),
            }],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wireguard::peer_changes;

    fn mesh() -> Mesh {
        let counts = [("a", 2u32), ("b", 2)]
            .iter()
            .map(|(s, n)| (SiteId::from(*s), *n))
            .collect();
        let mut m = Mesh::new(
            Ipam::plan("10.77.0.0/16", &counts).unwrap(),
            "ic0",
            DEFAULT_PORT,
        );
        for s in ["a", "b"] {
            m.add_site(&s.into()).unwrap();
        }
        m.set_gateway_address(&"a".into(), Some("198.51.100.1"), Some("192.168.10.5"))
            .unwrap();
        m.set_gateway_address(&"b".into(), Some("198.51.100.2"), None)
            .unwrap();
        m.add_member("w-1", &"a".into()).unwrap();
        m.add_member("w-2", &"b".into()).unwrap();
        m
    }

    #[test]
    fn gateways_mesh_and_members_hang_off_their_gateway() {
        let m = mesh();
        let ga = m.gateway_config(&"a".into()).unwrap();
        assert!(
            ga.contains("Address = 10.77.0.1/16\nListenPort = 51820\n"),
            "{ga}"
        );
        assert!(
            ga.contains("Endpoint = 198.51.100.2:51820\nAllowedIPs = 10.77.1.0/24\n"),
            "{ga}"
        );
        assert!(ga.contains("AllowedIPs = 10.77.0.10/32\n"), "{ga}");
        assert!(
            !ga.contains("10.77.1.10/32"),
            "b's member is not a peer of a's gateway"
        );
        let w1 = m.member_config("w-1").unwrap();
        assert!(w1.contains("Address = 10.77.0.10/16\n"));
        assert!(
            w1.contains("Endpoint = 192.168.10.5:51820\nAllowedIPs = 10.77.0.0/16\n"),
            "{w1}"
        );
        let w2 = m.member_config("w-2").unwrap();
        assert!(
            w2.contains("Endpoint = 198.51.100.2:51820\n"),
            "falls back to the public endpoint"
        );
    }

    #[test]
    fn a_moved_node_keeps_its_address_and_is_routed_by_host_route() {
        let mut m = mesh();
        let before = m.gateway_peers(&"b".into()).unwrap();
        let ip = m.add_member("w-1", &"b".into()).unwrap();
        assert_eq!(ip.to_string(), "10.77.0.10");
        let ga = m.gateway_config(&"a".into()).unwrap();
        assert!(
            ga.contains("AllowedIPs = 10.77.1.0/24, 10.77.0.10/32\n"),
            "{ga}"
        );
        let after = m.gateway_peers(&"b".into()).unwrap();
        let cmds = peer_changes("ic0", &before, &after);
        assert_eq!(cmds.len(), 1, "{cmds:?}");
        assert!(cmds[0].ends_with("allowed-ips 10.77.0.10/32"), "{cmds:?}");
    }

    #[test]
    fn key_rotation_is_one_remove_and_one_add() {
        let mut m = mesh();
        let before = m.gateway_peers(&"a".into()).unwrap();
        let old = m.member_public_key("w-1").unwrap().to_owned();
        m.rotate_member_key("w-1").unwrap();
        let after = m.gateway_peers(&"a".into()).unwrap();
        let cmds = peer_changes("ic0", &before, &after);
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[0], format!("wg set ic0 peer {old} remove"));
        assert!(cmds[1].contains(m.member_public_key("w-1").unwrap()));
    }

    #[test]
    fn a_saved_mesh_renders_the_same_configs() {
        let m = mesh();
        let saved = serde_json::to_string(&m).unwrap();
        let back: Mesh = serde_json::from_str(&saved).unwrap();
        assert_eq!(
            back.gateway_config(&"a".into()).unwrap(),
            m.gateway_config(&"a".into()).unwrap()
        );
        assert_eq!(
            back.member_config("w-2").unwrap(),
            m.member_config("w-2").unwrap()
        );
    }

    #[test]
    fn member_without_gateway_address_is_a_clear_error() {
        let counts = [(SiteId::from("a"), 1u32)].into_iter().collect();
        let mut m = Mesh::new(
            Ipam::plan("10.77.0.0/16", &counts).unwrap(),
            "ic0",
            DEFAULT_PORT,
        );
        m.add_site(&"a".into()).unwrap();
        m.add_member("w", &"a".into()).unwrap();
        let e = m.member_config("w").unwrap_err().to_string();
        assert!(e.contains("gateway of site a has no address yet"), "{e}");
    }
}
