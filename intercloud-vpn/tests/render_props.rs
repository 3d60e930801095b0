//! Properties of the renderers on arbitrary input: no panic, and no value can change
//! the structure of a rendered file (inject a section, a key or a line).

use intercloud_vpn::ipsec::{from_cloudstack, swanctl_conf, IpsecPolicy, ProposalFor, SiteToSite};
use intercloud_vpn::l2tp::L2tpClient;
use proptest::prelude::*;
use secrecy::SecretString;

fn conn(remote: String, psk: String) -> SiteToSite {
    SiteToSite {
        name: "p".into(),
        local_addr: "192.0.2.1".into(),
        remote_addr: remote,
        local_id: None,
        remote_id: None,
        local_ts: vec!["10.1.0.0/16".into()],
        remote_ts: vec!["10.2.0.0/16".into()],
        policy: IpsecPolicy::strongswan_default(),
        initiate: true,
        psk: SecretString::from(psk),
    }
}

/// Reads a pppd quoted word back (the inverse of the renderer's quoting).
fn ppp_unquote(word: &str) -> Option<String> {
    let inner = word.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next()?);
        } else if c == '"' {
            return None;
        } else {
            out.push(c);
        }
    }
    Some(out)
}

proptest! {
    #[test]
    fn cloudstack_policy_never_panics_and_yields_plain_tokens(p in ".{0,40}") {
        for kind in [ProposalFor::Ike, ProposalFor::Esp] {
            if let Ok(s) = from_cloudstack(&p, kind) {
                prop_assert!(s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{}", s);
            }
        }
    }

    #[test]
    fn swanctl_structure_cannot_be_changed_by_values(remote in ".{0,30}", psk in ".{0,40}") {
        let baseline = swanctl_conf(&[conn("198.51.100.1".into(), "a-long-enough-psk".into())]).unwrap();
        if let Ok(text) = swanctl_conf(&[conn(remote, psk.clone())]) {
            prop_assert_eq!(text.lines().count(), baseline.lines().count());
            prop_assert_eq!(text.matches('{').count(), baseline.matches('{').count());
            prop_assert_eq!(text.matches('}').count(), baseline.matches('}').count());
            let hex: String = psk.bytes().map(|b| format!("{b:02x}")).collect();
            let secret_line = format!("        secret = 0x{hex}");
            prop_assert!(text.lines().any(|l| l == secret_line));
        }
    }

    #[test]
    fn ppp_password_round_trips_through_pppd_quoting(pw in "[^\\p{Cc}]{1,40}") {
        let c = L2tpClient::new(
            "icv", "192.0.2.10", "user",
            SecretString::from(pw.clone()), SecretString::from("psk-psk-psk"), vec![],
        );
        let opts = c.ppp_options().unwrap();
        let lines: Vec<&str> = opts.lines().filter(|l| l.starts_with("password ")).collect();
        prop_assert_eq!(lines.len(), 1);
        prop_assert_eq!(opts.lines().count(), L2tpClient::new(
            "icv", "192.0.2.10", "user",
            SecretString::from("x"), SecretString::from("psk-psk-psk"), vec![],
        ).ppp_options().unwrap().lines().count());
        let word = lines[0].strip_prefix("password ").unwrap();
        prop_assert_eq!(ppp_unquote(word), Some(pw));
    }
}
