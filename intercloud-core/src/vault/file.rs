//! [`EncryptedFileVault`]: every user's credentials in one encrypted file.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use rand::rngs::OsRng;
use rand::TryRngCore;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use super::atomic::write_atomically;
use super::entries::{check_key, check_user, Entries};
use super::error::VaultError;
use super::format::{MAX_FILE_LEN, NONCE_LEN, SALT_LEN};
use super::kdf::KdfParams;
use super::seal::{seal, unseal, SealingKey};
use super::Vault;
use crate::credentials::Credentials;
use crate::model::SiteId;
use crate::{Error, Result};

/// A [`Vault`] kept in one file, encrypted under a key derived from a passphrase.
///
/// - **Key**: Argon2id over the passphrase and a random 16-byte salt, with the cost
///   ([`KdfParams`]) stored in the file's header, so a vault made with other costs
///   still opens. The key is derived once at open and kept (zeroized on drop).
/// - **Encryption**: XChaCha20-Poly1305, a fresh random 24-byte nonce on every write;
///   the versioned header (magic bytes, format version, KDF parameters, salt, length,
///   nonce) is authenticated as associated data and by its own tag, so any change to
///   any byte is detected. The layout is documented in the `format` module source.
/// - **Writes** are atomic (temp file in the same directory, fsync, rename, fsync of
///   the directory; mode 0600) and serialised within the process by a mutex. A write
///   that fails leaves both the file and the in-memory contents as they were.
/// - **Reads** are served from memory: the file is read once, at open.
///
/// # Concurrency across processes
/// Nothing here locks the file against other processes: two processes writing the
/// same vault lose one another's changes (never corrupt the file: the rename is
/// atomic). Taking a lock file around open-modify-drop is the caller's job (the CLI
/// does it); a portal should own its vault in one process.
///
/// # Errors
/// Opening and writing fail with a [`VaultError`] (recover it with
/// [`VaultError::of`]) inside a [`crate::Error`]: `NotFound` for a missing file,
/// `Unauthenticated` for a wrong passphrase, `Config` for a damaged, truncated,
/// foreign or newer file, `Unavailable` for I/O failures. A failed open never writes.
pub struct EncryptedFileVault {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    key: SealingKey,
    entries: Entries,
}

impl fmt::Debug for EncryptedFileVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedFileVault")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// How to open an [`EncryptedFileVault`]: whether to create a missing file, and the
/// KDF cost for a new one.
#[derive(Debug, Clone, Copy, Default)]
pub struct VaultOptions {
    create: bool,
    kdf: KdfParams,
}

impl VaultOptions {
    /// Open an existing file only, production KDF cost for any new salt.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a missing file is created as an empty vault (default: no).
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// The Argon2id cost for a vault created here, or re-keyed later (default:
    /// [`KdfParams::production`]). An existing file keeps the cost in its header.
    pub fn kdf(mut self, kdf: KdfParams) -> Self {
        self.kdf = kdf;
        self
    }

    /// Opens (or creates) the vault at `path`.
    ///
    /// # Errors
    /// See [`EncryptedFileVault`]; also `InvalidRequest` when creating with an empty
    /// passphrase or with KDF parameters out of bounds.
    pub async fn open(
        self,
        path: impl Into<PathBuf>,
        passphrase: &SecretString,
    ) -> Result<EncryptedFileVault> {
        let path = path.into();
        let passphrase = passphrase.clone();
        let opened = {
            let path = path.clone();
            blocking(move || open_blocking(&path, &passphrase, self)).await?
        };
        let (key, entries) = opened?;
        Ok(EncryptedFileVault {
            path,
            state: Mutex::new(State { key, entries }),
        })
    }
}

/// Runs `f` on the blocking pool (KDF and file I/O stay off the async executor).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::unavailable(format!("vault: background task failed: {e}")))
}

fn random<const N: usize>(path: &Path) -> std::result::Result<[u8; N], VaultError> {
    let mut out = [0u8; N];
    OsRng
        .try_fill_bytes(&mut out)
        .map_err(|e| VaultError::Random {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(out)
}

fn check_new_key(passphrase: &SecretString, kdf: KdfParams) -> Result<()> {
    if passphrase.expose_secret().is_empty() {
        return Err(Error::invalid("vault: the passphrase is empty"));
    }
    kdf.check()
        .map_err(|reason| Error::invalid(format!("vault: KDF parameters: {reason}")))
}

fn open_blocking(
    path: &Path,
    passphrase: &SecretString,
    options: VaultOptions,
) -> Result<(SealingKey, Entries)> {
    let io = |action, source| VaultError::Io {
        path: path.to_owned(),
        action,
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() > MAX_FILE_LEN => {
            return Err(VaultError::TooLarge {
                path: path.to_owned(),
                len: meta.len(),
                max: MAX_FILE_LEN,
            }
            .into())
        }
        Ok(meta) => warn_if_readable_by_others(path, &meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if !options.create {
                return Err(VaultError::Missing {
                    path: path.to_owned(),
                }
                .into());
            }
            check_new_key(passphrase, options.kdf)?;
            let key = SealingKey::derive(path, passphrase, options.kdf, random::<SALT_LEN>(path)?)?;
            let entries = Entries::default();
            let bytes = seal(path, &key, &entries, random::<NONCE_LEN>(path)?)?;
            write_atomically(path, &bytes)?;
            return Ok((key, entries));
        }
        Err(e) => return Err(io("read metadata of", e).into()),
    }
    let bytes = std::fs::read(path).map_err(|e| io("read", e))?;
    Ok(unseal(path, &bytes, passphrase)?)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path, meta: &std::fs::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{:o}", mode & 0o777),
            "vault file is accessible to other users; it will be 0600 after the next write"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path, _meta: &std::fs::Metadata) {}

impl EncryptedFileVault {
    /// Options for opening or creating a vault.
    pub fn options() -> VaultOptions {
        VaultOptions::new()
    }

    /// Opens an existing vault (shorthand for `options().open(path, passphrase)`).
    ///
    /// # Errors
    /// See the type's documentation.
    pub async fn open(path: impl Into<PathBuf>, passphrase: &SecretString) -> Result<Self> {
        Self::options().open(path, passphrase).await
    }

    /// The vault file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The KDF cost of the file as it is now.
    pub async fn kdf(&self) -> KdfParams {
        self.state.lock().await.key.kdf
    }

    /// Re-encrypts the vault under a new passphrase (new salt, cost `kdf`); the old
    /// passphrase no longer opens it.
    ///
    /// # Errors
    /// `InvalidRequest` for an empty passphrase or KDF parameters out of bounds; write
    /// errors as for [`Vault::put`], after which the old passphrase still works.
    pub async fn change_passphrase(
        &self,
        new_passphrase: &SecretString,
        kdf: KdfParams,
    ) -> Result<()> {
        check_new_key(new_passphrase, kdf)?;
        let mut state = self.state.lock().await;
        let path = self.path.clone();
        let passphrase = new_passphrase.clone();
        let entries = state.entries.clone();
        let key = blocking(move || -> Result<SealingKey> {
            let key = SealingKey::derive(&path, &passphrase, kdf, random::<SALT_LEN>(&path)?)?;
            let bytes = seal(&path, &key, &entries, random::<NONCE_LEN>(&path)?)?;
            write_atomically(&path, &bytes)?;
            Ok(key)
        })
        .await??;
        state.key = key;
        Ok(())
    }

    /// Writes `next` to the file and, only if that succeeded, makes it the contents.
    async fn commit(&self, state: &mut State, next: Entries) -> Result<()> {
        let path = self.path.clone();
        let key = state.key.clone();
        let next = blocking(move || -> Result<Entries> {
            let bytes = seal(&path, &key, &next, random::<NONCE_LEN>(&path)?)?;
            write_atomically(&path, &bytes)?;
            Ok(next)
        })
        .await??;
        state.entries = next;
        Ok(())
    }
}

#[async_trait]
impl Vault for EncryptedFileVault {
    async fn get(&self, user: &str, site: &SiteId) -> Result<Option<Credentials>> {
        check_key(user, site)?;
        Ok(self.state.lock().await.entries.get(user, site))
    }

    async fn put(&self, user: &str, site: &SiteId, credentials: Credentials) -> Result<()> {
        check_key(user, site)?;
        let mut state = self.state.lock().await;
        let mut next = state.entries.clone();
        next.put(user, site, credentials);
        self.commit(&mut state, next).await
    }

    async fn remove(&self, user: &str, site: &SiteId) -> Result<bool> {
        check_key(user, site)?;
        let mut state = self.state.lock().await;
        if !state.entries.contains(user, site) {
            return Ok(false);
        }
        let mut next = state.entries.clone();
        next.remove(user, site);
        self.commit(&mut state, next).await?;
        Ok(true)
    }

    async fn list(&self, user: &str) -> Result<Vec<SiteId>> {
        check_user(user)?;
        Ok(self.state.lock().await.entries.list(user))
    }
}
