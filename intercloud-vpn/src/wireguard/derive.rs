//! Member keys derived from a key group's secret, so user data stays O(1) per create
//! call at any cluster size.
//!
//! A member's private key is `HMAC-SHA256(group secret, node name)` (32 bytes, used
//! as a Curve25519 private key; WireGuard clamps it). A key group is made of whole
//! create calls of one (site, role), up to `crate::KEY_GROUP_MEMBERS` members (or
//! one call, when larger): a call's user data holds its group's one secret, and each
//! VM derives its own key from it and its name ([`DERIVE_FN`], `openssl`), instead of
//! one key per VM. The site's gateway derives its members' public keys the same way
//! (`wg pubkey`) from the secrets of its site's groups: O(groups) bytes instead of
//! O(members) ([`super::Mesh::gateway_compact`]).
//!
//! What a node learns: a member, its group's secret — the keys of at most
//! `KEY_GROUP_MEMBERS` members of its own site (or of its own call); a gateway, the
//! secrets of its own site's groups — the keys of the members it routes. No node
//! learns another site's secrets (a member moved to another site keeps its key: that
//! site's gateway then learns its group's secret). A rotated key is random again and
//! travels as a literal key (an explicit exception).

use std::fmt;

use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use zeroize::Zeroizing;

use intercloud_core::bootstrap::{sh_lines, sh_quote, RUN_FN};
use intercloud_core::{Error, Result};

use super::keys::KeyPair;

/// The secret of one key group: 32 random bytes, hex.
#[derive(Clone)]
pub struct KeyGroup(SecretString);

impl KeyGroup {
    /// A fresh secret from the operating system's RNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut());
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Self(SecretString::from(hex))
    }

    fn bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        let h = self.0.expose_secret();
        if h.len() != 64 {
            return Err(Error::config("a key group secret must be 64 hex digits"));
        }
        (0..32)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16))
            .collect::<std::result::Result<Vec<u8>, _>>()
            .map(Zeroizing::new)
            .map_err(|_| Error::config("a key group secret must be 64 hex digits"))
    }

    /// The hex secret, for the user data that derives keys from it.
    pub(crate) fn hex(&self) -> &str {
        self.0.expose_secret()
    }

    /// The key pair of member `name` of this group.
    ///
    /// # Errors
    /// `Config` when the secret is not 64 hex digits (a damaged state file).
    pub fn member_key(&self, name: &str) -> Result<KeyPair> {
        let key = self.bytes()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&key)
            .map_err(|_| Error::config("bad key group secret"))?;
        mac.update(name.as_bytes());
        let out: [u8; 32] = mac.finalize().into_bytes().into();
        Ok(KeyPair::from_bytes(out))
    }
}

impl fmt::Debug for KeyGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyGroup(******)")
    }
}

/// Serialises as the hex secret: store it only where private keys may live.
impl serde::Serialize for KeyGroup {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.0.expose_secret())
    }
}

impl<'de> serde::Deserialize<'de> for KeyGroup {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let g = Self(SecretString::from(String::deserialize(d)?));
        g.bytes()
            .map_err(|e| serde::de::Error::custom(e.message()))?;
        Ok(g)
    }
}

/// `sh` function `ic_wgkey SECRET NAME`: prints the base64 private key of member
/// `NAME` of the group with hex `SECRET`, as [`KeyGroup::member_key`].
pub const DERIVE_FN: &str = "ic_wgkey() { printf '%s' \"$2\" | openssl dgst -sha256 -mac HMAC \
-macopt \"hexkey:$1\" -binary | base64; }\n";

/// A `sh` program printing the `[Peer]` sections of derived members exactly as
/// [`super::wg_quick`] renders them: `segments` are (group secret, `NAME IP` lines).
pub(crate) fn peers_script(segments: &[(&KeyGroup, String)]) -> String {
    let mut out = format!(
        "#!/bin/sh\nset -e\n{RUN_FN}{DERIVE_FN}\
         ic_wgpeers() {{ while read -r n a; do printf '\\n[Peer]\\nPublicKey = %s\\nAllowedIPs = %s/32\\n' \
         \"$(ic_wgkey \"$1\" \"$n\" | wg pubkey)\" \"$a\"; done; }}\n"
    );
    for (group, lines) in segments {
        out.push_str(&format!(
            "{{\n{}}} | ic_wgpeers {}\n",
            sh_lines(lines),
            sh_quote(group.hex())
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_are_per_name_and_the_secret_stays_hidden() {
        let g = KeyGroup::generate();
        let a = g.member_key("worker-1").unwrap();
        assert_eq!(a.public(), g.member_key("worker-1").unwrap().public());
        assert_ne!(a.public(), g.member_key("worker-2").unwrap().public());
        assert!(!format!("{g:?}").contains(g.hex()));
        let back: KeyGroup = serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        assert_eq!(
            back.member_key("x").unwrap().public(),
            g.member_key("x").unwrap().public()
        );
        let bad = serde_json::from_str::<KeyGroup>("\"zz\"")
            .unwrap_err()
            .to_string();
        assert!(!bad.contains("zz"), "{bad}");
    }

    /// The real `openssl` derives what Rust derives (skips without openssl).
    #[test]
    fn sh_derivation_matches_rust() {
        if std::process::Command::new("openssl")
            .arg("version")
            .output()
            .is_err()
        {
            eprintln!("SKIP: no openssl");
            return;
        }
        let g = KeyGroup::generate();
        let out = std::process::Command::new("sh")
            .args([
                "-c",
                &format!("{DERIVE_FN}ic_wgkey \"$0\" \"$1\""),
                g.hex(),
                "worker-17",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want = g.member_key("worker-17").unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            want.private_text()
        );
    }
}
