//! What can go wrong opening or writing an encrypted vault file.
//!
//! [`VaultError`] is precise (a portal or CLI can tell a truncated file from a wrong
//! passphrase); every vault method returns it wrapped in [`crate::Error`], as the
//! error's source, with a kind a caller acts on. Recover it with [`VaultError::of`].
//!
//! No variant carries the passphrase, a key, a credential or decrypted bytes: only
//! the file's path, sizes, version numbers and positions.

use std::io;
use std::path::PathBuf;

use crate::error::{Error, ErrorKind};

/// A precise failure of the encrypted file vault. Every message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The file does not exist and creating it was not asked for.
    #[error("vault file {} does not exist (open it with `create` to make an empty vault)", path.display())]
    Missing {
        /// The vault file.
        path: PathBuf,
    },
    /// The file system refused a read or write.
    #[error("vault file {}: cannot {action}: {source}", path.display())]
    Io {
        /// The vault file.
        path: PathBuf,
        /// What was being done (`read`, `write the temporary file`, `rename`…).
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The file is shorter than its header says it must be.
    #[error(
        "vault file {} is truncated: {len} bytes, at least {needed} expected; restore it from a backup",
        path.display()
    )]
    Truncated {
        /// The vault file.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The length its header needs.
        needed: u64,
    },
    /// The file does not start with the vault's magic bytes.
    #[error("{} is not an intercloud vault file (bad magic bytes)", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a format version this build does not read.
    #[error(
        "vault file {} has format version {version}; this intercloud reads version {supported} only{hint}",
        path.display(),
        supported = super::format::VERSION,
        hint = if *version > super::format::VERSION { " (it was written by a newer intercloud)" } else { "" }
    )]
    UnsupportedVersion {
        /// The vault file.
        path: PathBuf,
        /// The version found.
        version: u16,
    },
    /// The header names a key-derivation function or parameters this build refuses.
    #[error("vault file {} has unusable key-derivation parameters: {reason}", path.display())]
    BadKdfParams {
        /// The vault file.
        path: PathBuf,
        /// What is wrong (which parameter, which bound).
        reason: String,
    },
    /// The file is larger than any vault this build writes.
    #[error("vault file {} is {len} bytes, more than the {max} a vault may hold", path.display())]
    TooLarge {
        /// The vault file.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The largest accepted.
        max: u64,
    },
    /// The header's authentication tag does not match the key derived from the
    /// passphrase: the passphrase is wrong, or the header was modified.
    #[error("vault file {}: wrong passphrase, or the vault file was modified", path.display())]
    WrongPassphrase {
        /// The vault file.
        path: PathBuf,
    },
    /// The header is authentic (so the passphrase is right) but there are bytes after
    /// the encrypted data it describes.
    #[error(
        "vault file {} was modified: {extra} unexpected bytes after the encrypted data; restore it from a backup",
        path.display()
    )]
    TrailingBytes {
        /// The vault file.
        path: PathBuf,
        /// How many bytes too many.
        extra: u64,
    },
    /// The passphrase is right but the encrypted data failed authentication.
    #[error(
        "vault file {} was modified or damaged: the encrypted data failed authentication \
         (the passphrase is right); restore it from a backup",
        path.display()
    )]
    Tampered {
        /// The vault file.
        path: PathBuf,
    },
    /// The data decrypted but is not a vault document (a bug, or a file written by
    /// something else with the same key). The position only, never the content.
    #[error(
        "vault file {} decrypted but its content is not a vault document (near line {line}, column {column})",
        path.display()
    )]
    Corrupt {
        /// The vault file.
        path: PathBuf,
        /// Line of the first problem in the decrypted document.
        line: usize,
        /// Column of the first problem.
        column: usize,
    },
    /// The operating system's random number generator failed.
    #[error("vault file {}: no randomness for a salt or nonce: {reason}", path.display())]
    Random {
        /// The vault file.
        path: PathBuf,
        /// The generator's error text.
        reason: String,
    },
    /// Key derivation or encryption failed for a reason other than the above
    /// (parameters out of what the machine can allocate, for instance).
    #[error("vault file {}: {what} failed", path.display())]
    Crypto {
        /// The vault file.
        path: PathBuf,
        /// Which step (`key derivation`, `encryption`).
        what: &'static str,
    },
}

impl VaultError {
    /// The [`ErrorKind`] callers see for this failure.
    ///
    /// `Missing` is `NotFound`; `WrongPassphrase` is `Unauthenticated`; an I/O failure
    /// is `Unavailable`; everything about the file's content is `Config` (the
    /// federation's own state is wrong and a person must act).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Missing { .. } => ErrorKind::NotFound,
            Self::WrongPassphrase { .. } => ErrorKind::Unauthenticated,
            Self::Io { .. } | Self::Random { .. } => ErrorKind::Unavailable,
            _ => ErrorKind::Config,
        }
    }

    /// The `VaultError` behind an [`Error`] returned by a vault, if there is one.
    pub fn of(error: &Error) -> Option<&Self> {
        std::error::Error::source(error).and_then(|s| s.downcast_ref::<Self>())
    }
}

impl From<VaultError> for Error {
    fn from(e: VaultError) -> Self {
        // I/O errors are not worth retrying blindly (a full disk stays full).
        let temporary = false;
        Error::new(e.kind(), e.to_string())
            .with_temporary(temporary)
            .with_source(e)
    }
}
