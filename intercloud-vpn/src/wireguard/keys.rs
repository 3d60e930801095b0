//! WireGuard key pairs (Curve25519), generated locally; private keys are secrets.

use std::fmt;

use base64::Engine as _;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use intercloud_core::{Error, Result};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A WireGuard key pair: the private key (base64, secret) and its public key (base64).
#[derive(Clone)]
pub struct KeyPair {
    private: SecretString,
    public: String,
}

impl KeyPair {
    /// A fresh key pair from the operating system's RNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut());
        Self::from_bytes(*bytes)
    }

    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        let secret = StaticSecret::from(bytes);
        let public = PublicKey::from(&secret);
        // Store the clamped scalar, as `wg genkey` prints it.
        let private = Zeroizing::new(B64.encode(secret.to_bytes()));
        Self {
            private: SecretString::from(private.as_str()),
            public: B64.encode(public.as_bytes()),
        }
    }

    /// The key pair of a base64 private key (as `wg genkey` prints).
    ///
    /// # Errors
    /// `Config` when the text is not 32 bytes of base64 (the text is not echoed).
    pub fn from_private(private_b64: &str) -> Result<Self> {
        let raw = Zeroizing::new(
            B64.decode(private_b64.trim())
                .map_err(|_| Error::config("WireGuard private key is not base64"))?,
        );
        let bytes: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| Error::config("WireGuard private key must be 32 bytes"))?;
        Ok(Self::from_bytes(bytes))
    }

    /// The public key, base64.
    pub fn public(&self) -> &str {
        &self.public
    }

    /// The private key, base64. Only renderers of configuration files call this.
    pub fn private(&self) -> &SecretString {
        &self.private
    }

    pub(crate) fn private_text(&self) -> &str {
        self.private.expose_secret()
    }
}

/// Serialises as the base64 private key (the public key is derived on load): the
/// serialised form is a secret; store it only where private keys may live (a 0600
/// state file, the vault).
impl serde::Serialize for KeyPair {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.private.expose_secret())
    }
}

impl<'de> serde::Deserialize<'de> for KeyPair {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        Self::from_private(&text).map_err(|e| serde::de::Error::custom(e.message()))
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public)
            .field("private", &"******")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7748_known_answer() {
        // RFC 7748 section 6.1: Alice's private key and public key.
        let alice = hex_to_32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let kp = KeyPair::from_private(&B64.encode(alice)).unwrap();
        let want = hex_to_32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        assert_eq!(kp.public(), B64.encode(want));
    }

    #[test]
    fn generated_keys_differ_and_round_trip() {
        let a = KeyPair::generate();
        let b = KeyPair::generate();
        assert_ne!(a.public(), b.public());
        let again = KeyPair::from_private(a.private_text()).unwrap();
        assert_eq!(again.public(), a.public());
        assert!(!format!("{a:?}").contains(a.private_text()));
        assert!(KeyPair::from_private("c2hvcnQ=").is_err());
    }

    #[test]
    fn serde_round_trips_through_the_private_key() {
        let a = KeyPair::generate();
        let json = serde_json::to_string(&a).unwrap();
        let b: KeyPair = serde_json::from_str(&json).unwrap();
        assert_eq!(a.public(), b.public());
        let bad = serde_json::from_str::<KeyPair>("\"bm90LWEta2V5\"")
            .unwrap_err()
            .to_string();
        assert!(!bad.contains("bm90LWEta2V5"), "{bad}");
    }

    fn hex_to_32(h: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }
}
