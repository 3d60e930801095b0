//! [`MemoryVault`]: credentials held in memory only.

use std::fmt;
use std::sync::RwLock;

use async_trait::async_trait;

use super::entries::{check_key, check_user, Entries};
use super::Vault;
use crate::credentials::Credentials;
use crate::model::SiteId;
use crate::Result;

/// A [`Vault`] in memory: for tests, examples, and portals that keep credentials in
/// their own store and hand them over per request. Nothing is written anywhere;
/// secrets are zeroized when removed or when the vault is dropped.
#[derive(Default)]
pub struct MemoryVault {
    entries: RwLock<Entries>,
}

impl MemoryVault {
    /// An empty vault.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of (user, site) entries, all users together.
    pub fn len(&self) -> usize {
        self.read(|e| e.len())
    }

    /// Whether no user has any entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read<T>(&self, f: impl FnOnce(&Entries) -> T) -> T {
        // A panic while holding the lock cannot leave `Entries` half-updated (each
        // update is one map operation), so a poisoned lock is still usable.
        f(&self.entries.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn write<T>(&self, f: impl FnOnce(&mut Entries) -> T) -> T {
        f(&mut self.entries.write().unwrap_or_else(|p| p.into_inner()))
    }
}

impl fmt::Debug for MemoryVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryVault")
            .field("entries", &self.len())
            .finish()
    }
}

#[async_trait]
impl Vault for MemoryVault {
    async fn get(&self, user: &str, site: &SiteId) -> Result<Option<Credentials>> {
        check_key(user, site)?;
        Ok(self.read(|e| e.get(user, site)))
    }

    async fn put(&self, user: &str, site: &SiteId, credentials: Credentials) -> Result<()> {
        check_key(user, site)?;
        self.write(|e| e.put(user, site, credentials));
        Ok(())
    }

    async fn remove(&self, user: &str, site: &SiteId) -> Result<bool> {
        check_key(user, site)?;
        Ok(self.write(|e| e.remove(user, site)))
    }

    async fn list(&self, user: &str) -> Result<Vec<SiteId>> {
        check_user(user)?;
        Ok(self.read(|e| e.list(user)))
    }
}
