//! Default overlay address assignment: one address per node name, from a CIDR, before
//! any VM exists.
//!
//! Addresses are assigned in the order the names are given, skipping the network's
//! first [`RESERVED_HOSTS`] addresses (kept for site gateways). The `intercloud-vpn`
//! crate's IPAM can replace this by handing [`super::Plan::build`] its own map.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::{Error, Result};

pub use crate::model::DEFAULT_OVERLAY_CIDR;

/// Host addresses at the start of the overlay left for gateways.
pub const RESERVED_HOSTS: u32 = 10;

/// Parses an IPv4 CIDR (`"10.77.0.0/16"`) into its network address and prefix length.
///
/// # Errors
/// `Config` naming the CIDR and what is wrong with it.
pub fn parse_cidr(cidr: &str) -> Result<(Ipv4Addr, u8)> {
    let bad = |why: &str| Error::config(format!("overlay CIDR {cidr:?}: {why}"));
    let (addr, len) = cidr
        .split_once('/')
        .ok_or_else(|| bad("expected ADDRESS/PREFIX, e.g. 10.77.0.0/16"))?;
    let addr: Ipv4Addr = addr
        .trim()
        .parse()
        .map_err(|_| bad("the address is not IPv4"))?;
    let len: u8 = len
        .trim()
        .parse()
        .map_err(|_| bad("the prefix is not a number"))?;
    if len > 30 {
        return Err(bad("the prefix must be at most /30"));
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Ok((Ipv4Addr::from(u32::from(addr) & mask), len))
}

/// Assigns each name an address in `cidr`, in order, after the reserved hosts.
///
/// # Errors
/// `Config` when the CIDR is malformed or too small for the names.
pub fn assign(cidr: &str, names: &[String]) -> Result<BTreeMap<String, String>> {
    let (net, len) = parse_cidr(cidr)?;
    let hosts = (1u64 << (32 - u32::from(len))) - 2; // minus network and broadcast
    let need = names.len() as u64 + u64::from(RESERVED_HOSTS);
    if need > hosts {
        return Err(Error::config(format!(
            "overlay CIDR {cidr:?} has {hosts} host addresses but the cluster needs {need} \
             ({} nodes + {RESERVED_HOSTS} reserved); choose a larger [vpn] cidr",
            names.len()
        )));
    }
    let base = u32::from(net);
    Ok(names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let host = base + 1 + RESERVED_HOSTS + i as u32;
            (n.clone(), Ipv4Addr::from(host).to_string())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assigns_in_order_after_reserved() {
        let names = vec!["master-1".to_string(), "worker-1".to_string()];
        let m = assign("10.200.0.0/16", &names).unwrap();
        assert_eq!(m["master-1"], "10.200.0.11");
        assert_eq!(m["worker-1"], "10.200.0.12");
    }

    #[test]
    fn refuses_bad_or_small_cidrs() {
        assert!(parse_cidr("10.0.0.0").is_err());
        assert!(parse_cidr("fe80::/64").is_err());
        assert!(parse_cidr("10.0.0.0/31").is_err());
        let names: Vec<String> = (0..10).map(|i| format!("n{i}")).collect();
        let e = assign("10.0.0.0/28", &names).unwrap_err();
        assert!(e.to_string().contains("larger"), "{e}");
        assert_eq!(
            parse_cidr("10.1.2.3/16").unwrap().0,
            Ipv4Addr::new(10, 1, 0, 0)
        );
    }
}
