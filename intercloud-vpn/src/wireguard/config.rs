//! wg-quick configuration files and `wg set` commands, rendered as text.

use std::fmt::Write as _;

use super::keys::KeyPair;

/// One `[Peer]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The peer's public key (base64).
    pub public_key: String,
    /// `host:port` the peer listens on, when it has a reachable endpoint.
    pub endpoint: Option<String>,
    /// Overlay prefixes routed to the peer.
    pub allowed_ips: Vec<String>,
    /// Keepalive in seconds (for peers behind NAT).
    pub keepalive: Option<u16>,
}

/// One interface: its key, address, port and peers.
#[derive(Debug, Clone)]
pub struct Interface<'a> {
    /// The interface's key pair.
    pub key: &'a KeyPair,
    /// Overlay address with prefix (`10.77.0.1/16`).
    pub address: String,
    /// UDP port to listen on (gateways).
    pub listen_port: Option<u16>,
    /// Commands wg-quick runs after the interface is up.
    pub post_up: Vec<String>,
    /// The peers.
    pub peers: Vec<Peer>,
}

/// Renders a wg-quick file (`/etc/wireguard/NAME.conf`, mode 0600: it holds the key).
pub fn wg_quick(i: &Interface<'_>) -> String {
    let mut out = String::from("[Interface]\n");
    let _ = writeln!(out, "PrivateKey = {}", i.key.private_text());
    let _ = writeln!(out, "Address = {}", i.address);
    if let Some(p) = i.listen_port {
        let _ = writeln!(out, "ListenPort = {p}");
    }
    for c in &i.post_up {
        let _ = writeln!(out, "PostUp = {c}");
    }
    peers(&mut out, &i.peers);
    out
}

/// Renders the `wg setconf` form of the same interface (no wg-quick-only keys), which
/// `wg setconf` parses: used to validate files and to apply changes without a restart
/// (`wg syncconf`).
pub fn wg_setconf(i: &Interface<'_>) -> String {
    let mut out = String::from("[Interface]\n");
    let _ = writeln!(out, "PrivateKey = {}", i.key.private_text());
    if let Some(p) = i.listen_port {
        let _ = writeln!(out, "ListenPort = {p}");
    }
    peers(&mut out, &i.peers);
    out
}

fn peers(out: &mut String, peers: &[Peer]) {
    for p in peers {
        let _ = writeln!(out, "\n[Peer]\nPublicKey = {}", p.public_key);
        if let Some(e) = &p.endpoint {
            let _ = writeln!(out, "Endpoint = {e}");
        }
        let _ = writeln!(out, "AllowedIPs = {}", p.allowed_ips.join(", "));
        if let Some(k) = p.keepalive {
            let _ = writeln!(out, "PersistentKeepalive = {k}");
        }
    }
}

/// `wg set` commands that turn the peer set `old` into `new` on interface `iface`
/// without a restart: removals first, then additions and changes. A changed peer is
/// removed and added again (boringtun cannot modify a peer in place).
pub fn peer_changes(iface: &str, old: &[Peer], new: &[Peer]) -> Vec<String> {
    let mut cmds = Vec::new();
    for o in old {
        match new.iter().find(|n| n.public_key == o.public_key) {
            Some(n) if n == o => {}
            _ => cmds.push(format!("wg set {iface} peer {} remove", o.public_key)),
        }
    }
    for n in new {
        if old.iter().any(|o| o == n) {
            continue;
        }
        let mut c = format!("wg set {iface} peer {}", n.public_key);
        if let Some(e) = &n.endpoint {
            let _ = write!(c, " endpoint {e}");
        }
        let _ = write!(c, " allowed-ips {}", n.allowed_ips.join(","));
        if let Some(k) = n.keepalive {
            let _ = write!(c, " persistent-keepalive {k}");
        }
        cmds.push(c);
    }
    cmds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(k: &str, ip: &str) -> Peer {
        Peer {
            public_key: k.into(),
            endpoint: Some("192.0.2.1:51820".into()),
            allowed_ips: vec![ip.into()],
            keepalive: Some(25),
        }
    }

    #[test]
    fn wg_quick_golden() {
        let key = KeyPair::from_private("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=").unwrap();
        let i = Interface {
            key: &key,
            address: "10.77.0.1/16".into(),
            listen_port: Some(51820),
            post_up: vec!["sysctl -w net.ipv4.ip_forward=1".into()],
            peers: vec![peer(
                "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
                "10.77.1.0/24",
            )],
        };
        assert_eq!(
            wg_quick(&i),
            "[Interface]\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\nAddress = 10.77.0.1/16\n\
             ListenPort = 51820\nPostUp = sysctl -w net.ipv4.ip_forward=1\n\n[Peer]\n\
             PublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\nEndpoint = 192.0.2.1:51820\n\
             AllowedIPs = 10.77.1.0/24\nPersistentKeepalive = 25\n"
        );
        assert!(!wg_setconf(&i).contains("Address"));
    }

    #[test]
    fn changes_remove_then_add_and_skip_unchanged() {
        let a = peer("A", "10.0.0.1/32");
        let b = peer("B", "10.0.0.2/32");
        let mut b2 = b.clone();
        b2.endpoint = Some("192.0.2.9:51820".into());
        let c = peer("C", "10.0.0.3/32");
        let cmds = peer_changes("ic0", &[a.clone(), b], &[a, b2, c]);
        assert_eq!(
            cmds,
            [
                "wg set ic0 peer B remove",
                "wg set ic0 peer B endpoint 192.0.2.9:51820 allowed-ips 10.0.0.2/32 persistent-keepalive 25",
                "wg set ic0 peer C endpoint 192.0.2.1:51820 allowed-ips 10.0.0.3/32 persistent-keepalive 25",
            ]
        );
    }
}
