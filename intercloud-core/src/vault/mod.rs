//! Credential vaults: many users' credentials for many sites, behind one trait.
//!
//! - [`Vault`]: the trait a deployer asks for `(user, site)` credentials and a
//!   portal plugs its own store into; use it as `Arc<dyn Vault>`.
//! - [`EncryptedFileVault`]: the embedded default, one file encrypted under a
//!   passphrase (Argon2id + XChaCha20-Poly1305, atomic writes).
//! - [`MemoryVault`]: in memory, for tests and portals.
//!
//! Site configs name their credentials with a [`crate::credentials::CredentialRef`]:
//! `vault:NAME` (an entry of this vault) or `env:PREFIX` (environment variables).

use std::fmt;

use async_trait::async_trait;

use crate::credentials::Credentials;
use crate::model::SiteId;
use crate::Result;

mod atomic;
mod document;
mod entries;
mod error;
mod file;
mod format;
mod kdf;
mod memory;
mod seal;

pub use error::VaultError;
pub use file::{EncryptedFileVault, VaultOptions};
pub use kdf::KdfParams;
pub use memory::MemoryVault;

/// A store of credentials per (user, site), shared by many users.
///
/// `user` is whatever the front end authenticates (a portal's account id, the CLI's
/// local user name); `site` is the federation's site id (or the `NAME` of a
/// `vault:NAME` reference).
///
/// # Contract
/// - **Tenant isolation.** Every operation acts on `user`'s entries only: nothing
///   done for user A reads, lists, replaces or removes an entry of user B, whatever
///   the site names.
/// - `put` stores or replaces; after it returns `Ok`, `get` returns those credentials
///   (for a persistent vault, also after reopening). `remove` returns whether there
///   was an entry; removing a missing one is `Ok(false)`, not an error.
/// - `list` returns the user's site ids, sorted, and never secrets.
/// - A failed `put` or `remove` changes nothing.
/// - No secret appears in `Debug` output, errors or logs of the implementation.
///
/// # Errors
/// `InvalidRequest` for an empty user or site name; for a persistent vault,
/// `Unavailable` when it cannot write and `Config`/`Unauthenticated` from opening
/// (see [`EncryptedFileVault`]). A missing entry is `Ok(None)`, never an error.
#[async_trait]
pub trait Vault: Send + Sync + fmt::Debug {
    /// The credentials `user` registered for `site`, if any.
    async fn get(&self, user: &str, site: &SiteId) -> Result<Option<Credentials>>;

    /// Stores (or replaces) `user`'s credentials for `site`.
    async fn put(&self, user: &str, site: &SiteId, credentials: Credentials) -> Result<()>;

    /// Removes `user`'s credentials for `site`; returns whether there were any.
    async fn remove(&self, user: &str, site: &SiteId) -> Result<bool>;

    /// The sites `user` has credentials for, sorted (names only, never secrets).
    async fn list(&self, user: &str) -> Result<Vec<SiteId>>;
}
