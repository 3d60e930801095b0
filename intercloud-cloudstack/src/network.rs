//! The guest network new VMs join (a VPC tier) and the private addresses asked of it:
//! choosing the tier, the addresses it holds, checking a requested one, and reading
//! CloudStack's answer for an address in use (pure functions; the calls are in
//! [`crate::provider`]).
//!
//! CloudStack refuses a requested guest address another NIC holds while allocating the
//! VM's NIC: `NetworkModelImpl.getAvailableIps` logs "Requested ip address … is already
//! in use in network …" and returns nothing, so `GuestNetworkGuru.allocate` throws
//! `InsufficientVirtualNetworkCapacityException("Unable to acquire Guest IP address
//! for network " + network)`, which `DeployVMCmd.create` turns into
//! `ServerApiException(INSUFFICIENT_CAPACITY_ERROR = 533, message)` (apache/cloudstack
//! `server/.../network/guru/GuestNetworkGuru.java`, `api/.../DeployVMCmd.java`; a
//! Marvin integration test matches the same refusal on
//! `'Unable to acquire Guest IP address for network Ntwk'`). The same text also means a
//! full network; with an address we checked to be inside the tier, it means the
//! address is taken (by a VM being destroyed, typically): temporary.

use std::net::Ipv4Addr;

use intercloud_core::{Error, ErrorKind, SiteId};
use ipnet::Ipv4Net;

use crate::model::{Network, VirtualMachine};

/// The text of CloudStack's refusal of a requested guest address (see the module docs).
pub(crate) const ADDRESS_REFUSED: &str = "unable to acquire guest ip address";

/// The tier new VMs join: `configured` (the builder's network id) when set, else the
/// one network of the zone that belongs to a VPC.
///
/// # Errors
/// `Config` naming the site: the configured network is not listed, or the zone has
/// no VPC tier or several.
pub(crate) fn choose_tier(
    site: &SiteId,
    configured: Option<&str>,
    networks: Vec<Network>,
) -> Result<Network, Error> {
    let config = |m: String| Error::config(m).with_site(site.clone());
    if let Some(id) = configured {
        return networks
            .into_iter()
            .find(|n| n.id == id)
            .ok_or_else(|| {
                config(format!(
                    "CloudStack site {site}: network {id:?} is not listed by listNetworks; check the site's network id"
                ))
            });
    }
    let mut tiers: Vec<Network> = networks.into_iter().filter(|n| n.vpcid.is_some()).collect();
    match tiers.len() {
        1 => Ok(tiers.remove(0)),
        0 => Err(config(format!(
            "CloudStack site {site}: the zone has no VPC tier for VMs on a cloud VPN; create one or set the site's network id"
        ))),
        _ => {
            let ids: Vec<String> = tiers
                .iter()
                .map(|t| match &t.name {
                    Some(n) => format!("{} ({n})", t.id),
                    None => t.id.clone(),
                })
                .collect();
            Err(config(format!(
                "CloudStack site {site}: the zone has several VPC tiers ({}); set the site's network id to one of them",
                ids.join(", ")
            )))
        }
    }
}

/// The tier's CIDR as CloudStack lists it (host bits, if any, kept).
///
/// # Errors
/// `Protocol` when CloudStack lists the tier without a valid IPv4 CIDR of at most /30.
pub(crate) fn tier_cidr(site: &SiteId, tier: &Network) -> Result<Ipv4Net, Error> {
    let bad = || {
        crate::error::protocol(
            site,
            "listNetworks",
            format!("network {} has no IPv4 CIDR ({:?})", tier.id, tier.cidr),
        )
    };
    tier.cidr
        .as_deref()
        .and_then(|c| c.trim().parse::<Ipv4Net>().ok())
        .filter(|net| net.prefix_len() <= 30)
        .ok_or_else(bad)
}

/// Every address a NIC on network `id` holds, in listing order, without repeats.
pub(crate) fn addresses_on(id: &str, vms: &[VirtualMachine]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for nic in vms.iter().flat_map(|v| &v.nic) {
        if nic.networkid.as_deref() != Some(id) {
            continue;
        }
        if let Some(ip) = &nic.ipaddress {
            if !out.contains(ip) {
                out.push(ip.clone());
            }
        }
    }
    out
}

/// Whether `address` can be asked of the tier `cidr`: IPv4, inside it, neither the
/// network, broadcast nor gateway address. `Err` says what is wrong.
pub(crate) fn check_address(
    address: &str,
    cidr: Ipv4Net,
    gateway: Option<&str>,
) -> Result<(), String> {
    let ip: Ipv4Addr = address
        .parse()
        .map_err(|_| format!("{address:?} is not an IPv4 address"))?;
    let cidr = cidr.trunc();
    if !cidr.contains(&ip) {
        return Err(format!("address {ip} is not in the tier's CIDR {cidr}"));
    }
    if ip == cidr.network() || ip == cidr.broadcast() {
        return Err(format!(
            "address {ip} is the network or broadcast address of {cidr}"
        ));
    }
    if gateway == Some(address) {
        return Err(format!("address {ip} is the tier's gateway"));
    }
    Ok(())
}

/// Whether `e` is CloudStack refusing a requested guest address (see the module docs).
pub(crate) fn is_address_refused(e: &Error) -> bool {
    e.message().to_ascii_lowercase().contains(ADDRESS_REFUSED)
}

/// `e` (CloudStack's refusal of `address`) as a temporary `AlreadyExists`: the VM
/// holding it is usually being deleted, so a retry succeeds once it is gone.
pub(crate) fn address_in_use(site: &SiteId, address: &str, network: &str, e: &Error) -> Error {
    Error::new(
        ErrorKind::AlreadyExists,
        format!(
            "address {address} is in use on network {network} (retry once the VM holding it is gone): {}",
            e.message()
        ),
    )
    .with_site(site.clone())
    .with_temporary(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(id: &str, vpc: Option<&str>) -> Network {
        Network {
            id: id.into(),
            name: Some(format!("{id}-name")),
            cidr: Some("10.1.1.0/24".into()),
            gateway: Some("10.1.1.1".into()),
            vpcid: vpc.map(str::to_owned),
        }
    }

    #[test]
    fn the_one_vpc_tier_or_the_configured_network() {
        let site = SiteId::new("hok");
        let t = choose_tier(&site, None, vec![net("iso", None), net("t1", Some("v"))]).unwrap();
        assert_eq!(t.id, "t1");
        let t = choose_tier(
            &site,
            Some("iso"),
            vec![net("iso", None), net("t1", Some("v"))],
        );
        assert_eq!(t.unwrap().id, "iso");
        let e = choose_tier(&site, Some("x"), vec![net("t1", Some("v"))]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(
            e.message().contains("\"x\"") && e.message().contains("hok"),
            "{e}"
        );
        let e = choose_tier(&site, None, vec![net("iso", None)]).unwrap_err();
        assert!(
            e.message().contains("no VPC tier") && e.message().contains("network id"),
            "{e}"
        );
        let e =
            choose_tier(&site, None, vec![net("a", Some("v")), net("b", Some("v"))]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("a (a-name), b (b-name)"), "{e}");
        assert!(e.message().contains("set the site's network id"), "{e}");
    }

    #[test]
    fn addresses_are_checked_against_the_tier() {
        let cidr: Ipv4Net = "10.1.1.0/24".parse().unwrap();
        assert!(check_address("10.1.1.20", cidr, Some("10.1.1.1")).is_ok());
        for bad in [
            "10.1.2.20",
            "10.1.1.0",
            "10.1.1.255",
            "10.1.1.1",
            "fe80::1",
            "x",
        ] {
            assert!(check_address(bad, cidr, Some("10.1.1.1")).is_err(), "{bad}");
        }
        let tier = net("t", None);
        assert_eq!(tier_cidr(&SiteId::new("s"), &tier).unwrap(), cidr);
        // Host bits in the listed CIDR are kept as listed, masked when checking.
        let mut hosty = tier.clone();
        hosty.cidr = Some(" 10.1.1.7/24 ".into());
        let listed = tier_cidr(&SiteId::new("s"), &hosty).unwrap();
        assert_eq!(listed.to_string(), "10.1.1.7/24");
        assert!(check_address("10.1.1.20", listed, None).is_ok());
        let e = check_address("10.1.1.255", listed, None).unwrap_err();
        assert!(e.contains("broadcast address of 10.1.1.0/24"), "{e}");
        for cidr in ["10.1.1.0", "10.1.1.0/31", "fe80::/64", "10.1.1.0/x"] {
            let mut broken = tier.clone();
            broken.cidr = Some(cidr.into());
            assert_eq!(
                tier_cidr(&SiteId::new("s"), &broken).unwrap_err().kind(),
                ErrorKind::Protocol,
                "{cidr}"
            );
        }
    }
}
