//! The vault file's binary layout: a versioned header, then the encrypted document.
//!
//! ```text
//! offset  len  field (integers big-endian)
//!      0    8  magic  b"ICVAULT\0"
//!      8    2  format version (1)
//!     10    1  KDF id (1 = Argon2id, version 0x13)
//!     11    4  Argon2 memory cost, KiB
//!     15    4  Argon2 iterations
//!     19    4  Argon2 parallelism
//!     23   16  salt (random, chosen when the vault is created or re-keyed)
//!     39    8  length of the encrypted body that follows the header
//!     47   24  XChaCha20-Poly1305 nonce (random, fresh on every write)
//!     71   16  header tag: Poly1305 tag of bytes 0..71, under the header key
//!     87    …  body: the JSON document encrypted under the data key, bytes 0..87 as
//!              associated data, followed by its 16-byte tag
//! ```
//!
//! Both keys come from one Argon2id derivation of the passphrase (64 bytes: data key,
//! header key). The header tag lets open tell a wrong passphrase (or a modified
//! header) from a modified body, and makes the length field trustworthy, so a cut
//! file is reported as truncated. Parsing here is pure and never panics on any input.

use super::kdf::KdfParams;

/// The magic bytes every vault file starts with.
pub(crate) const MAGIC: [u8; 8] = *b"ICVAULT\0";
/// The format version this build writes and reads.
pub(crate) const VERSION: u16 = 1;
/// KDF id of Argon2id, version 0x13.
pub(crate) const KDF_ARGON2ID_13: u8 = 1;
/// Salt length.
pub(crate) const SALT_LEN: usize = 16;
/// Nonce length of XChaCha20-Poly1305.
pub(crate) const NONCE_LEN: usize = 24;
/// Poly1305 tag length.
pub(crate) const TAG_LEN: usize = 16;
/// Where the header tag starts: everything before it is what it authenticates.
pub(crate) const HEADER_TAG_AT: usize = 71;
/// Header length, header tag included.
pub(crate) const HEADER_LEN: usize = HEADER_TAG_AT + TAG_LEN;
/// The largest vault file accepted (a document of thousands of users is far smaller).
pub(crate) const MAX_FILE_LEN: u64 = 64 * 1024 * 1024;

/// The parsed header (its tag not yet checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kdf: KdfParams,
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) body_len: u64,
    pub(crate) nonce: [u8; NONCE_LEN],
    pub(crate) tag: [u8; TAG_LEN],
}

/// Why a file's bytes are not a vault header; the caller adds the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    /// Shorter than `needed` bytes.
    Truncated { needed: u64 },
    /// Not our magic.
    BadMagic,
    /// Another format version.
    Version(u16),
    /// A KDF id or parameters we refuse.
    Kdf(String),
}

impl Header {
    /// The first [`HEADER_TAG_AT`] bytes: what the header tag authenticates.
    pub(crate) fn authenticated_part(&self) -> [u8; HEADER_TAG_AT] {
        let mut out = [0u8; HEADER_TAG_AT];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&VERSION.to_be_bytes());
        out[10] = KDF_ARGON2ID_13;
        out[11..15].copy_from_slice(&self.kdf.memory_kib.to_be_bytes());
        out[15..19].copy_from_slice(&self.kdf.iterations.to_be_bytes());
        out[19..23].copy_from_slice(&self.kdf.parallelism.to_be_bytes());
        out[23..39].copy_from_slice(&self.salt);
        out[39..47].copy_from_slice(&self.body_len.to_be_bytes());
        out[47..71].copy_from_slice(&self.nonce);
        out
    }

    /// The whole header, tag included: the body's associated data.
    pub(crate) fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..HEADER_TAG_AT].copy_from_slice(&self.authenticated_part());
        out[HEADER_TAG_AT..].copy_from_slice(&self.tag);
        out
    }

    /// Parses the header at the start of `file`, checking structure only (magic,
    /// version, KDF bounds, length); tags are checked by the caller with the keys.
    pub(crate) fn parse(file: &[u8]) -> Result<Self, HeaderProblem> {
        // Magic first, so a short foreign file is "not a vault", a short prefix of a
        // vault is "truncated".
        let magic_len = file.len().min(MAGIC.len());
        if file[..magic_len] != MAGIC[..magic_len] {
            return Err(HeaderProblem::BadMagic);
        }
        if file.len() < 10 {
            return Err(HeaderProblem::Truncated {
                needed: HEADER_LEN as u64,
            });
        }
        let version = u16::from_be_bytes([file[8], file[9]]);
        if version != VERSION {
            return Err(HeaderProblem::Version(version));
        }
        if file.len() < HEADER_LEN {
            return Err(HeaderProblem::Truncated {
                needed: HEADER_LEN as u64,
            });
        }
        if file[10] != KDF_ARGON2ID_13 {
            return Err(HeaderProblem::Kdf(format!(
                "unknown key-derivation function id {}",
                file[10]
            )));
        }
        let kdf = KdfParams {
            memory_kib: be_u32(&file[11..15]),
            iterations: be_u32(&file[15..19]),
            parallelism: be_u32(&file[19..23]),
        };
        kdf.check().map_err(HeaderProblem::Kdf)?;
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&file[23..39]);
        let mut len = [0u8; 8];
        len.copy_from_slice(&file[39..47]);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&file[47..71]);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&file[71..87]);
        Ok(Self {
            kdf,
            salt,
            body_len: u64::from_be_bytes(len),
            nonce,
            tag,
        })
    }
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    u32::from_be_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            kdf: KdfParams::insecure_fast_for_tests(),
            salt: [7; SALT_LEN],
            body_len: 1234,
            nonce: [9; NONCE_LEN],
            tag: [5; TAG_LEN],
        }
    }

    #[test]
    fn header_round_trips_and_layout_matches_the_doc() {
        let h = sample();
        let b = h.to_bytes();
        assert_eq!(&b[0..8], b"ICVAULT\0");
        assert_eq!(&b[8..10], &[0, 1]);
        assert_eq!(b[10], 1);
        assert_eq!(&b[11..15], &8u32.to_be_bytes());
        assert_eq!(&b[39..47], &1234u64.to_be_bytes());
        assert_eq!(&b[71..87], &[5; 16]);
        assert_eq!(Header::parse(&b).unwrap(), h);
    }

    #[test]
    fn every_prefix_is_truncated_or_ok_never_a_panic() {
        let b = sample().to_bytes();
        for n in 0..b.len() {
            assert!(
                matches!(Header::parse(&b[..n]), Err(HeaderProblem::Truncated { .. })),
                "prefix {n}"
            );
        }
    }

    #[test]
    fn bad_magic_version_and_kdf_are_told_apart() {
        let mut b = sample().to_bytes();
        b[0] = b'X';
        assert_eq!(Header::parse(&b), Err(HeaderProblem::BadMagic));
        assert_eq!(Header::parse(b"PK\x03\x04"), Err(HeaderProblem::BadMagic));
        let mut b = sample().to_bytes();
        b[9] = 2;
        assert_eq!(Header::parse(&b), Err(HeaderProblem::Version(2)));
        let mut b = sample().to_bytes();
        b[10] = 9;
        assert!(matches!(Header::parse(&b), Err(HeaderProblem::Kdf(_))));
        let mut b = sample().to_bytes();
        b[11] = 0xff; // memory cost of ~4 TiB
        assert!(matches!(Header::parse(&b), Err(HeaderProblem::Kdf(_))));
    }
}
