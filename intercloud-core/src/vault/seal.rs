//! Pure encryption and decryption of a whole vault file (no I/O, no randomness:
//! the salt and nonce come from the caller).

use std::fmt;
use std::path::Path;

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{Key, KeyInit, Tag, XChaCha20Poly1305, XNonce};
use secrecy::SecretString;
use zeroize::Zeroizing;

use super::document;
use super::entries::Entries;
use super::error::VaultError;
use super::format::{Header, HeaderProblem, HEADER_LEN, NONCE_LEN, SALT_LEN, TAG_LEN};
use super::kdf::{derive_keys, KdfParams, Keys};

/// What a vault needs to write again without re-running the KDF: the derived keys
/// and the salt and parameters they came from.
#[derive(Clone)]
pub(crate) struct SealingKey {
    pub(crate) keys: Keys,
    pub(crate) kdf: KdfParams,
    pub(crate) salt: [u8; SALT_LEN],
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey")
            .field("kdf", &self.kdf)
            .finish_non_exhaustive()
    }
}

impl SealingKey {
    /// Derives the keys for a new salt (CPU-heavy).
    pub(crate) fn derive(
        path: &Path,
        passphrase: &SecretString,
        kdf: KdfParams,
        salt: [u8; SALT_LEN],
    ) -> Result<Self, VaultError> {
        let keys = derive_keys(passphrase, &salt, kdf).map_err(|reason| {
            if kdf.check().is_err() {
                VaultError::BadKdfParams {
                    path: path.to_owned(),
                    reason,
                }
            } else {
                VaultError::Crypto {
                    path: path.to_owned(),
                    what: "key derivation",
                }
            }
        })?;
        Ok(Self { keys, kdf, salt })
    }
}

fn cipher(key: &[u8; 32]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(Key::from_slice(key))
}

/// Encrypts `entries` into the bytes of a complete vault file.
pub(crate) fn seal(
    path: &Path,
    key: &SealingKey,
    entries: &Entries,
    nonce: [u8; NONCE_LEN],
) -> Result<Vec<u8>, VaultError> {
    let crypto = |what| VaultError::Crypto {
        path: path.to_owned(),
        what,
    };
    let mut body = document::to_json(entries, TAG_LEN);
    let mut header = Header {
        kdf: key.kdf,
        salt: key.salt,
        body_len: (body.len() + TAG_LEN) as u64,
        nonce,
        tag: [0; TAG_LEN],
    };
    let xnonce = XNonce::from_slice(&nonce);
    let header_tag = cipher(&key.keys.header)
        .encrypt_in_place_detached(xnonce, &header.authenticated_part(), &mut [])
        .map_err(|_| crypto("header authentication"))?;
    header.tag.copy_from_slice(&header_tag);
    let header_bytes = header.to_bytes();
    cipher(&key.keys.data)
        .encrypt_in_place(xnonce, &header_bytes, &mut *body)
        .map_err(|_| crypto("encryption"))?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&header_bytes);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Checks and decrypts the bytes of a vault file; returns the key (to write again)
/// and the entries. Never panics, whatever the bytes.
pub(crate) fn unseal(
    path: &Path,
    file: &[u8],
    passphrase: &SecretString,
) -> Result<(SealingKey, Entries), VaultError> {
    let p = || path.to_owned();
    let header = Header::parse(file).map_err(|problem| match problem {
        HeaderProblem::Truncated { needed } => VaultError::Truncated {
            path: p(),
            len: file.len() as u64,
            needed,
        },
        HeaderProblem::BadMagic => VaultError::BadMagic { path: p() },
        HeaderProblem::Version(version) => VaultError::UnsupportedVersion { path: p(), version },
        HeaderProblem::Kdf(reason) => VaultError::BadKdfParams { path: p(), reason },
    })?;
    let key = SealingKey::derive(path, passphrase, header.kdf, header.salt)?;
    let xnonce = XNonce::from_slice(&header.nonce);
    cipher(&key.keys.header)
        .decrypt_in_place_detached(
            xnonce,
            &header.authenticated_part(),
            &mut [],
            Tag::from_slice(&header.tag),
        )
        .map_err(|_| VaultError::WrongPassphrase { path: p() })?;
    // The header is authentic: its body length can be trusted.
    let body = &file[HEADER_LEN..];
    let actual = body.len() as u64;
    if actual < header.body_len {
        return Err(VaultError::Truncated {
            path: p(),
            len: file.len() as u64,
            needed: (HEADER_LEN as u64).saturating_add(header.body_len),
        });
    }
    if actual > header.body_len {
        return Err(VaultError::TrailingBytes {
            path: p(),
            extra: actual - header.body_len,
        });
    }
    let mut plain = Zeroizing::new(body.to_vec());
    cipher(&key.keys.data)
        .decrypt_in_place(xnonce, &file[..HEADER_LEN], &mut *plain)
        .map_err(|_| VaultError::Tampered { path: p() })?;
    let entries = document::from_json(&plain).map_err(|e| VaultError::Corrupt {
        path: p(),
        line: e.line,
        column: e.column,
    })?;
    Ok((key, entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Credentials;
    use crate::model::SiteId;

    fn key(pass: &str) -> SealingKey {
        SealingKey::derive(
            Path::new("v"),
            &SecretString::from(pass),
            KdfParams::insecure_fast_for_tests(),
            [3; SALT_LEN],
        )
        .unwrap()
    }

    #[test]
    fn seal_then_unseal_round_trips_and_nonce_changes_ciphertext() {
        let mut e = Entries::default();
        e.put("u", &SiteId::new("s"), Credentials::cloudstack("k", "v"));
        let k = key("pw");
        let a = seal(Path::new("v"), &k, &e, [1; NONCE_LEN]).unwrap();
        let b = seal(Path::new("v"), &k, &e, [2; NONCE_LEN]).unwrap();
        assert_eq!(a.len(), b.len());
        assert_ne!(a[HEADER_LEN..], b[HEADER_LEN..]);
        let (k2, back) = unseal(Path::new("v"), &a, &SecretString::from("pw")).unwrap();
        assert_eq!(k2.salt, k.salt);
        assert!(back
            .get("u", &SiteId::new("s"))
            .unwrap()
            .same_as(&Credentials::cloudstack("k", "v")));
        let err = unseal(Path::new("v"), &a, &SecretString::from("nope")).unwrap_err();
        assert!(matches!(err, VaultError::WrongPassphrase { .. }));
    }

    #[test]
    fn cut_and_padded_bodies_are_named_after_the_header_checks_out() {
        let k = key("pw");
        let a = seal(Path::new("v"), &k, &Entries::default(), [1; NONCE_LEN]).unwrap();
        let pass = SecretString::from("pw");
        let cut = unseal(Path::new("v"), &a[..a.len() - 1], &pass).unwrap_err();
        assert!(matches!(cut, VaultError::Truncated { .. }), "{cut}");
        let mut long = a.clone();
        long.push(0);
        let pad = unseal(Path::new("v"), &long, &pass).unwrap_err();
        assert!(
            matches!(pad, VaultError::TrailingBytes { extra: 1, .. }),
            "{pad}"
        );
        let mut flipped = a;
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let t = unseal(Path::new("v"), &flipped, &pass).unwrap_err();
        assert!(matches!(t, VaultError::Tampered { .. }), "{t}");
    }
}
