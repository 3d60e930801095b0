//! Guest-network addressing shared by the middlewares: a subnet, which addresses VMs
//! hold in it, and the next free host.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use tokio::time::Instant;

use super::{Phase, State};

/// An IPv4 subnet (`base/prefix`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Subnet {
    pub(crate) base: Ipv4Addr,
    pub(crate) prefix: u8,
}

impl Subnet {
    pub(crate) fn new(base: Ipv4Addr, prefix: u8) -> Self {
        Self { base, prefix }
    }

    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// `a.b.c.d/n`.
    pub(crate) fn cidr(self) -> String {
        format!("{}/{}", self.base, self.prefix)
    }

    pub(crate) fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.base) & self.mask()
    }

    /// The subnet's `n`-th address (0 = the network address).
    pub(crate) fn host(self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base).wrapping_add(n))
    }

    /// The last address (broadcast).
    pub(crate) fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) | !self.mask())
    }

    /// The dotted netmask.
    pub(crate) fn netmask(self) -> Ipv4Addr {
        Ipv4Addr::from(self.mask())
    }
}

/// The addresses held by VMs not yet gone (a VM being deleted still holds its own).
pub(crate) fn in_use(st: &State, now: Instant) -> HashSet<Ipv4Addr> {
    st.vms
        .iter()
        .filter(|v| v.phase(now) != Phase::Deleted)
        .map(|v| v.ip)
        .collect()
}

/// The first address of `net` from host `first` up (never the broadcast address) that
/// is neither in `taken` nor in `also`.
pub(crate) fn next_free(
    net: Subnet,
    first: u32,
    taken: &HashSet<Ipv4Addr>,
    also: &[Ipv4Addr],
) -> Option<Ipv4Addr> {
    let last = u32::from(net.broadcast()).checked_sub(u32::from(net.base))?;
    (first..last)
        .map(|n| net.host(n))
        .find(|ip| !taken.contains(ip) && !also.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_arithmetic() {
        let s = Subnet::new(Ipv4Addr::new(172, 31, 16, 0), 20);
        assert_eq!(s.cidr(), "172.31.16.0/20");
        assert_eq!(s.broadcast(), Ipv4Addr::new(172, 31, 31, 255));
        assert_eq!(s.netmask(), Ipv4Addr::new(255, 255, 240, 0));
        assert!(s.contains(Ipv4Addr::new(172, 31, 20, 9)));
        assert!(!s.contains(Ipv4Addr::new(172, 31, 32, 1)));
        let taken: HashSet<Ipv4Addr> = [s.host(4)].into();
        assert_eq!(next_free(s, 4, &taken, &[s.host(5)]), Some(s.host(6)));
        let tiny = Subnet::new(Ipv4Addr::new(10, 0, 0, 0), 30);
        assert_eq!(
            next_free(tiny, 1, &HashSet::new(), &[tiny.host(1), tiny.host(2)]),
            None
        );
    }
}
