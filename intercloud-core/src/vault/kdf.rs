//! Passphrase to keys: Argon2id with parameters stored in the vault header.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// Argon2id cost parameters, stored in each vault file's header.
///
/// The [`Default`] is [`KdfParams::production`]. Tests use
/// [`KdfParams::insecure_fast_for_tests`] so they stay fast; never use it for a real
/// vault. When a vault file is opened, its own stored parameters are used (bounded by
/// [`KdfParams::MAX_MEMORY_KIB`] and friends, so a hostile file cannot make open
/// allocate without limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KdfParams {
    /// Memory cost in KiB (at least 8 × `parallelism`).
    pub memory_kib: u32,
    /// Number of passes over the memory.
    pub iterations: u32,
    /// Degree of parallelism (lanes).
    pub parallelism: u32,
}

impl KdfParams {
    /// The largest memory cost a vault file may ask for: 1 GiB.
    pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
    /// The largest iteration count a vault file may ask for.
    pub const MAX_ITERATIONS: u32 = 64;
    /// The largest parallelism a vault file may ask for.
    pub const MAX_PARALLELISM: u32 = 16;

    /// The production default: 64 MiB, 3 passes, 1 lane (a few hundred ms on a
    /// laptop; OWASP's minimum for Argon2id is 19 MiB, 2 passes).
    pub const fn production() -> Self {
        Self {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }

    /// The cheapest parameters Argon2 accepts (8 KiB, 1 pass). For tests only: a
    /// vault made with them is easy to brute-force.
    pub const fn insecure_fast_for_tests() -> Self {
        Self {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        }
    }

    /// Checks the parameters against Argon2's rules and this crate's bounds.
    ///
    /// # Errors
    /// A sentence naming the parameter out of range and its bound.
    pub fn check(&self) -> Result<(), String> {
        if self.parallelism == 0 || self.parallelism > Self::MAX_PARALLELISM {
            return Err(format!(
                "parallelism {} is outside 1..={}",
                self.parallelism,
                Self::MAX_PARALLELISM
            ));
        }
        if self.iterations == 0 || self.iterations > Self::MAX_ITERATIONS {
            return Err(format!(
                "iterations {} is outside 1..={}",
                self.iterations,
                Self::MAX_ITERATIONS
            ));
        }
        let min_memory = 8 * self.parallelism;
        if self.memory_kib < min_memory || self.memory_kib > Self::MAX_MEMORY_KIB {
            return Err(format!(
                "memory cost {} KiB is outside {min_memory}..={} KiB",
                self.memory_kib,
                Self::MAX_MEMORY_KIB
            ));
        }
        Ok(())
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::production()
    }
}

/// Length of each derived key.
pub(crate) const KEY_LEN: usize = 32;

/// The two keys derived from a passphrase: one encrypts the document, one
/// authenticates the header. Zeroized on drop; `Debug` shows nothing.
#[derive(Clone)]
pub(crate) struct Keys {
    pub(crate) data: Zeroizing<[u8; KEY_LEN]>,
    pub(crate) header: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys(******)")
    }
}

/// Derives the data and header keys from `passphrase` and `salt` (CPU- and
/// memory-heavy: call it off the async executor).
///
/// # Errors
/// The parameters' problem (see [`KdfParams::check`]) or Argon2's refusal, as text.
pub(crate) fn derive_keys(
    passphrase: &SecretString,
    salt: &[u8],
    params: KdfParams,
) -> Result<Keys, String> {
    params.check()?;
    let argon_params = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(2 * KEY_LEN),
    )
    .map_err(|e| format!("Argon2 refused the parameters: {e}"))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
    let mut out = Zeroizing::new([0u8; 2 * KEY_LEN]);
    argon
        .hash_password_into(passphrase.expose_secret().as_bytes(), salt, &mut out[..])
        .map_err(|e| format!("Argon2 failed: {e}"))?;
    let mut keys = Keys {
        data: Zeroizing::new([0u8; KEY_LEN]),
        header: Zeroizing::new([0u8; KEY_LEN]),
    };
    keys.data.copy_from_slice(&out[..KEY_LEN]);
    keys.header.copy_from_slice(&out[KEY_LEN..]);
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_production_and_both_presets_pass_the_check() {
        assert_eq!(KdfParams::default(), KdfParams::production());
        assert_eq!(KdfParams::production().memory_kib, 65536);
        KdfParams::production().check().unwrap();
        KdfParams::insecure_fast_for_tests().check().unwrap();
    }

    #[test]
    fn out_of_bounds_parameters_are_named() {
        let mut p = KdfParams::insecure_fast_for_tests();
        p.memory_kib = KdfParams::MAX_MEMORY_KIB + 1;
        assert!(p.check().unwrap_err().contains("memory cost"));
        p = KdfParams::insecure_fast_for_tests();
        p.iterations = 0;
        assert!(p.check().unwrap_err().contains("iterations"));
        p = KdfParams::insecure_fast_for_tests();
        p.parallelism = 2; // needs 16 KiB
        assert!(p.check().unwrap_err().contains("memory cost"));
    }

    #[test]
    fn derivation_is_deterministic_and_depends_on_passphrase_and_salt() {
        let p = KdfParams::insecure_fast_for_tests();
        let a = derive_keys(&SecretString::from("pass-one"), &[1; 16], p).unwrap();
        let b = derive_keys(&SecretString::from("pass-one"), &[1; 16], p).unwrap();
        let c = derive_keys(&SecretString::from("pass-two"), &[1; 16], p).unwrap();
        let d = derive_keys(&SecretString::from("pass-one"), &[2; 16], p).unwrap();
        assert_eq!(*a.data, *b.data);
        assert_eq!(*a.header, *b.header);
        assert_ne!(*a.data, *a.header);
        assert_ne!(*a.data, *c.data);
        assert_ne!(*a.data, *d.data);
        assert_eq!(format!("{a:?}"), "Keys(******)");
    }
}
