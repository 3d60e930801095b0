//! IKE/ESP proposals: the clouds' policy notations converted to strongSwan's.
//!
//! - CloudStack site-to-site policies (`createVpnCustomerGateway` `ikepolicy` /
//!   `esppolicy`) read `cipher-hash[;dhgroup]`, e.g. `aes128-sha1;modp1536`.
//! - EC2's customer-gateway configuration names algorithms per tunnel:
//!   `aes-128-cbc`, `sha1` / `hmac-sha1-96`, `group2`.
//! - strongSwan proposals read `cipher-integrity[-dhgroup]`, e.g.
//!   `aes128-sha1-modp1536`; an AEAD cipher (GCM) takes a PRF instead of an
//!   integrity algorithm in IKE (`aes128gcm16-prfsha256-modp2048`) and none in ESP.
//!
//! All functions here are pure and reject unknown algorithm names with an error
//! naming the bad part and the accepted ones.

use intercloud_core::{Error, Result};

/// Whether a proposal is for the IKE SA or for ESP (child SAs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalFor {
    /// IKE (phase 1): a DH group is required.
    Ike,
    /// ESP (phase 2): a DH group means PFS and is optional.
    Esp,
}

const CIPHERS: &[&str] = &[
    "3des",
    "aes128",
    "aes192",
    "aes256",
    "aes128gcm16",
    "aes256gcm16",
];
const HASHES: &[&str] = &["md5", "sha1", "sha256", "sha384", "sha512"];
const GROUPS: &[&str] = &[
    "modp1024",
    "modp1536",
    "modp2048",
    "modp3072",
    "modp4096",
    "modp6144",
    "modp8192",
    "ecp256",
    "ecp384",
    "ecp521",
    "modp2048s256",
    "curve25519",
];

/// The DH group CloudStack's own UI preselects for IKE (Group 5), used when an IKE
/// policy names none (`3des-md5`): strongSwan needs a group for IKE.
pub const CLOUDSTACK_DEFAULT_IKE_GROUP: &str = "modp1536";

/// A strongSwan proposal from its three parts; `integrity` is ignored for AEAD
/// ciphers in ESP and becomes the PRF in IKE.
///
/// # Errors
/// `Invalid` when a part is not a known strongSwan name, or an IKE proposal has no
/// DH group.
pub fn strongswan_proposal(
    cipher: &str,
    integrity: &str,
    group: Option<&str>,
    kind: ProposalFor,
) -> Result<String> {
    check("cipher", cipher, CIPHERS)?;
    check("integrity algorithm", integrity, HASHES)?;
    if let Some(g) = group {
        check("DH group", g, GROUPS)?;
    }
    let aead = cipher.contains("gcm");
    let mut p = match (aead, kind) {
        (false, _) => format!("{cipher}-{integrity}"),
        (true, ProposalFor::Ike) => format!("{cipher}-prf{integrity}"),
        (true, ProposalFor::Esp) => cipher.to_owned(),
    };
    match (group, kind) {
        (Some(g), _) => {
            p.push('-');
            p.push_str(g);
        }
        (None, ProposalFor::Ike) => {
            return Err(Error::invalid(format!(
                "IKE proposal {p} has no DH group (add one, e.g. modp2048)"
            )))
        }
        (None, ProposalFor::Esp) => {}
    }
    Ok(p)
}

fn check(what: &str, v: &str, known: &[&str]) -> Result<()> {
    if known.contains(&v) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "unknown {what} {v:?} (known: {})",
            known.join(", ")
        )))
    }
}

/// Converts a CloudStack policy (`aes128-sha1;modp1536`, `3des-md5`) to a strongSwan
/// proposal (`aes128-sha1-modp1536`). An IKE policy without a group gets
/// [`CLOUDSTACK_DEFAULT_IKE_GROUP`].
///
/// # Errors
/// `Invalid` naming the policy when it is not `cipher-hash[;group]` with known names.
pub fn from_cloudstack(policy: &str, kind: ProposalFor) -> Result<String> {
    let bad = |why: String| {
        Error::invalid(format!(
            "CloudStack VPN policy {policy:?}: {why}; expected cipher-hash[;dhgroup] like aes128-sha1;modp1536"
        ))
    };
    let lower = policy.trim().to_ascii_lowercase();
    let (suite, group) = match lower.split_once(';') {
        Some((s, g)) => (s, Some(g.trim())),
        None => (lower.as_str(), None),
    };
    let (cipher, hash) = suite
        .split_once('-')
        .ok_or_else(|| bad("no '-' between cipher and hash".into()))?;
    let group = match (group, kind) {
        (Some(g), _) if !g.is_empty() => Some(g),
        (_, ProposalFor::Ike) => Some(CLOUDSTACK_DEFAULT_IKE_GROUP),
        (_, ProposalFor::Esp) => None,
    };
    strongswan_proposal(cipher.trim(), hash.trim(), group, kind)
        .map_err(|e| bad(e.message().to_owned()))
}

/// Converts EC2 tunnel algorithm names (`aes-128-cbc`, `hmac-sha1-96` or `SHA2-256`,
/// `group2` or `14`) to a strongSwan proposal.
///
/// # Errors
/// `Invalid` naming the EC2 value that is not understood.
pub fn from_ec2(
    encryption: &str,
    authentication: &str,
    dh_group: Option<&str>,
    kind: ProposalFor,
) -> Result<String> {
    let cipher = ec2_cipher(encryption)?;
    let hash = ec2_hash(authentication)?;
    let group = dh_group.map(ec2_group).transpose()?;
    strongswan_proposal(cipher, hash, group, kind)
}

fn ec2_cipher(v: &str) -> Result<&'static str> {
    Ok(match v.trim().to_ascii_lowercase().as_str() {
        "aes-128-cbc" | "aes128" => "aes128",
        "aes-256-cbc" | "aes256" => "aes256",
        "aes-128-gcm-16" | "aes128-gcm-16" => "aes128gcm16",
        "aes-256-gcm-16" | "aes256-gcm-16" => "aes256gcm16",
        other => {
            return Err(Error::invalid(format!(
                "EC2 VPN encryption {other:?} not understood (aes-128-cbc, aes-256-cbc, aes-128-gcm-16, aes-256-gcm-16)"
            )))
        }
    })
}

fn ec2_hash(v: &str) -> Result<&'static str> {
    let l = v.trim().to_ascii_lowercase();
    let core = l.strip_prefix("hmac-").unwrap_or(&l);
    Ok(match core {
        "sha1" | "sha1-96" => "sha1",
        "sha2-256" | "sha-256" | "sha256" | "sha-256-128" | "sha2-256-128" => "sha256",
        "sha2-384" | "sha-384" | "sha384" | "sha2-384-192" => "sha384",
        "sha2-512" | "sha-512" | "sha512" | "sha2-512-256" => "sha512",
        _ => {
            return Err(Error::invalid(format!(
                "EC2 VPN authentication {v:?} not understood (sha1, sha2-256, sha2-384, sha2-512)"
            )))
        }
    })
}

fn ec2_group(v: &str) -> Result<&'static str> {
    let l = v.trim().to_ascii_lowercase();
    let n = l.strip_prefix("group").unwrap_or(&l);
    Ok(match n {
        "2" => "modp1024",
        "5" => "modp1536",
        "14" => "modp2048",
        "15" => "modp3072",
        "16" => "modp4096",
        "17" => "modp6144",
        "18" => "modp8192",
        "19" => "ecp256",
        "20" => "ecp384",
        "21" => "ecp521",
        "24" => "modp2048s256",
        _ => {
            return Err(Error::invalid(format!(
                "EC2 VPN DH group {v:?} not understood (group2, 5, 14-21, 24)"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudstack_policies_table() {
        let cases = [
            (
                "aes128-sha1;modp1536",
                ProposalFor::Ike,
                "aes128-sha1-modp1536",
            ),
            (
                "aes256-sha256;modp2048",
                ProposalFor::Esp,
                "aes256-sha256-modp2048",
            ),
            ("3des-md5", ProposalFor::Ike, "3des-md5-modp1536"),
            ("3des-md5", ProposalFor::Esp, "3des-md5"),
            (" AES256-SHA1 ", ProposalFor::Esp, "aes256-sha1"),
            ("aes128-sha1;", ProposalFor::Esp, "aes128-sha1"),
        ];
        for (cs, kind, want) in cases {
            assert_eq!(from_cloudstack(cs, kind).unwrap(), want, "{cs}");
        }
        for bad in [
            "aes128",
            "aes129-sha1",
            "aes128-sha3;modp1536",
            "aes128-sha1;modp999",
        ] {
            let e = from_cloudstack(bad, ProposalFor::Ike)
                .unwrap_err()
                .to_string();
            assert!(e.contains(bad) && e.contains("expected cipher-hash"), "{e}");
        }
    }

    #[test]
    fn ec2_names_table() {
        let cases = [
            (
                ("aes-128-cbc", "sha1", Some("group2")),
                ProposalFor::Ike,
                "aes128-sha1-modp1024",
            ),
            (
                ("aes-128-cbc", "hmac-sha1-96", Some("group2")),
                ProposalFor::Esp,
                "aes128-sha1-modp1024",
            ),
            (
                ("AES256", "SHA2-256", Some("14")),
                ProposalFor::Ike,
                "aes256-sha256-modp2048",
            ),
            (
                ("aes-256-gcm-16", "sha2-384", Some("20")),
                ProposalFor::Ike,
                "aes256gcm16-prfsha384-ecp384",
            ),
            (
                ("aes-256-gcm-16", "sha2-384", None),
                ProposalFor::Esp,
                "aes256gcm16",
            ),
        ];
        for ((e, a, g), kind, want) in cases {
            assert_eq!(from_ec2(e, a, g, kind).unwrap(), want);
        }
        assert!(from_ec2("des", "sha1", None, ProposalFor::Esp)
            .unwrap_err()
            .to_string()
            .contains("\"des\""));
        assert!(from_ec2("aes-128-cbc", "sha1", Some("group1"), ProposalFor::Ike).is_err());
        assert!(from_ec2("aes-128-cbc", "sha1", None, ProposalFor::Ike)
            .unwrap_err()
            .to_string()
            .contains("no DH group"));
    }
}
