//! Default overlay address assignment: one address per node name, from a CIDR, before
//! any VM exists.
//!
//! Addresses are assigned in the order the names are given, skipping the network's
//! first [`RESERVED_HOSTS`] addresses (kept for site gateways). The `intercloud-vpn`
//! crate's IPAM can replace this by handing [`super::Plan::build`] its own map.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;

use crate::{Error, Result};

pub use crate::model::DEFAULT_OVERLAY_CIDR;

/// Host addresses at the start of the overlay left for gateways.
pub const RESERVED_HOSTS: u32 = 10;

/// Parses an IPv4 CIDR (`"10.77.0.0/16"`, surrounding whitespace allowed) into its
/// network: host bits are cleared (`10.1.2.3/16` is `10.1.0.0/16`).
///
/// # Errors
/// `Config` naming the CIDR and what is wrong with it: not `IPv4-ADDRESS/PREFIX`, or a
/// prefix longer than /30 (a network without two host addresses).
pub fn parse_cidr(cidr: &str) -> Result<Ipv4Net> {
    let bad = |why: &str| Error::config(format!("overlay CIDR {cidr:?}: {why}"));
    let net: Ipv4Net = cidr.trim().parse().map_err(|_| {
        bad("expected an IPv4 ADDRESS/PREFIX with a prefix of 0 to 32, e.g. 10.77.0.0/16")
    })?;
    if net.prefix_len() > 30 {
        return Err(bad("the prefix must be at most /30"));
    }
    Ok(net.trunc())
}

/// Assigns each name an address in `cidr`, in order, after the reserved hosts.
///
/// # Errors
/// `Config` when the CIDR is malformed or too small for the names.
pub fn assign(cidr: &str, names: &[String]) -> Result<BTreeMap<String, String>> {
    let net = parse_cidr(cidr)?;
    let hosts = net.hosts().count() as u64; // without network and broadcast
    let need = names.len() as u64 + u64::from(RESERVED_HOSTS);
    if need > hosts {
        return Err(Error::config(format!(
            "overlay CIDR {cidr:?} has {hosts} host addresses but the cluster needs {need} \
             ({} nodes + {RESERVED_HOSTS} reserved); choose a larger [vpn] cidr",
            names.len()
        )));
    }
    Ok(names
        .iter()
        .zip(net.hosts().skip(RESERVED_HOSTS as usize))
        .map(|(n, ip)| (n.clone(), ip.to_string()))
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
        // A /28 has 14 hosts: 10 reserved, the last 4 (.11 to .14) for nodes.
        let four: Vec<String> = (0..4).map(|i| format!("n{i}")).collect();
        let m = assign("10.0.0.16/28", &four).unwrap();
        assert_eq!(m["n0"], "10.0.0.27");
        assert_eq!(m["n3"], "10.0.0.30");
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
            parse_cidr(" 10.1.2.3/16 ").unwrap(),
            "10.1.0.0/16".parse::<Ipv4Net>().unwrap()
        );
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("10.0.0.0/x").is_err());
    }
}
