//! Guest-network addressing shared by the middlewares: which addresses VMs hold in a
//! subnet ([`Ipv4Net`]), and the next free host.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use tokio::time::Instant;

use super::{Phase, State};

/// The addresses held by VMs not yet gone (a VM being deleted still holds its own).
pub(crate) fn in_use(st: &State, now: Instant) -> HashSet<Ipv4Addr> {
    st.vms
        .iter()
        .filter(|v| v.phase(now) != Phase::Deleted)
        .map(|v| v.ip)
        .collect()
}

/// The first host of `net` after its first `reserved` hosts (never the network nor
/// the broadcast address) that is neither in `taken` nor in `also`.
pub(crate) fn next_free(
    net: Ipv4Net,
    reserved: usize,
    taken: &HashSet<Ipv4Addr>,
    also: &[Ipv4Addr],
) -> Option<Ipv4Addr> {
    net.hosts()
        .skip(reserved)
        .find(|ip| !taken.contains(ip) && !also.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn next_free_skips_reserved_taken_and_broadcast() {
        let s = net("172.31.16.0/20");
        let ip = |d: u8| Ipv4Addr::new(172, 31, 16, d);
        let taken: HashSet<Ipv4Addr> = [ip(4)].into();
        assert_eq!(next_free(s, 3, &taken, &[ip(5)]), Some(ip(6)));
        assert_eq!(next_free(s, 0, &HashSet::new(), &[]), Some(ip(1)));
        let tiny = net("10.0.0.0/30");
        let both = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)];
        assert_eq!(next_free(tiny, 0, &HashSet::new(), &both), None);
        assert_eq!(
            next_free(tiny, 1, &HashSet::new(), &[]),
            Some(Ipv4Addr::new(10, 0, 0, 2))
        );
    }
}
