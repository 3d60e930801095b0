//! The in-memory table both vaults keep: user → site → credentials.

use std::collections::BTreeMap;
use std::fmt;

use crate::credentials::Credentials;
use crate::model::SiteId;
use crate::{Error, Result};

/// Every user's credentials, by site. Users never see each other's maps: every
/// operation is keyed by the user first.
#[derive(Clone, Default)]
pub(crate) struct Entries {
    users: BTreeMap<String, BTreeMap<SiteId, Credentials>>,
}

impl fmt::Debug for Entries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entries")
            .field("users", &self.users.len())
            .field("credentials", &self.len())
            .finish()
    }
}

impl Entries {
    pub(crate) fn get(&self, user: &str, site: &SiteId) -> Option<Credentials> {
        self.users.get(user)?.get(site).cloned()
    }

    /// Stores `credentials`; returns whether an entry was replaced.
    pub(crate) fn put(&mut self, user: &str, site: &SiteId, credentials: Credentials) -> bool {
        self.users
            .entry(user.to_owned())
            .or_default()
            .insert(site.clone(), credentials)
            .is_some()
    }

    pub(crate) fn remove(&mut self, user: &str, site: &SiteId) -> bool {
        let Some(sites) = self.users.get_mut(user) else {
            return false;
        };
        let removed = sites.remove(site).is_some();
        if sites.is_empty() {
            self.users.remove(user);
        }
        removed
    }

    pub(crate) fn list(&self, user: &str) -> Vec<SiteId> {
        self.users
            .get(user)
            .map(|sites| sites.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn contains(&self, user: &str, site: &SiteId) -> bool {
        self.users.get(user).is_some_and(|s| s.contains_key(site))
    }

    /// Number of (user, site) entries.
    pub(crate) fn len(&self) -> usize {
        self.users.values().map(BTreeMap::len).sum()
    }

    /// All entries, users and sites in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &SiteId, &Credentials)> {
        self.users.iter().flat_map(|(user, sites)| {
            sites
                .iter()
                .map(move |(site, creds)| (user.as_str(), site, creds))
        })
    }
}

/// Refuses an empty (or blank) user or site name before any lookup.
pub(crate) fn check_key(user: &str, site: &SiteId) -> Result<()> {
    check_user(user)?;
    if site.as_str().trim().is_empty() {
        return Err(Error::invalid("vault: the site name is empty"));
    }
    Ok(())
}

/// Refuses an empty (or blank) user name.
pub(crate) fn check_user(user: &str) -> Result<()> {
    if user.trim().is_empty() {
        return Err(Error::invalid("vault: the user name is empty"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_separate_and_empty_users_disappear() {
        let mut e = Entries::default();
        let s = SiteId::new("s");
        assert!(!e.put("a", &s, Credentials::opennebula("u", "p")));
        assert!(e.put("a", &s, Credentials::opennebula("u", "q")));
        assert!(e.get("b", &s).is_none());
        assert!(e.list("b").is_empty());
        assert!(!e.remove("b", &s));
        assert_eq!(e.len(), 1);
        assert!(e.remove("a", &s));
        assert!(e.users.is_empty());
        assert!(check_key(" ", &s).is_err());
        assert!(check_key("a", &SiteId::new("")).is_err());
    }
}
