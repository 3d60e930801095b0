//! The tags intercloud puts on every resource it creates, and idempotency keys.
//!
//! Listing by these tags is how the deployer polls, adopts after a crash and cleans up:
//! a resource without them was not created by intercloud and is never touched.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Common prefix of every intercloud tag key.
pub const TAG_PREFIX: &str = "intercloud-";
/// Tag key holding the cluster name.
pub const TAG_CLUSTER: &str = "intercloud-cluster";
/// Tag key holding the node group's role.
pub const TAG_ROLE: &str = "intercloud-role";
/// Tag key holding the idempotency key of the create call that made the resource.
pub const TAG_KEY: &str = "intercloud-key";
/// Tag key holding the VM's index within its create call (0-based).
pub const TAG_INDEX: &str = "intercloud-index";
/// Tag key holding the id of the deployment that made the resource. Two deployments
/// of one cluster name (from two state folders, two users of a portal) share the
/// cluster tag but never this one: rollback, repair, adoption and destroy act only on
/// their own deployment's resources.
pub const TAG_DEPLOYMENT: &str = "intercloud-deployment";

/// A unique key per create call. A retried create with the same key never makes a
/// second set of VMs: EC2 passes it as `ClientToken`; CloudStack and OpenNebula look
/// the key tag up before a retry and create only the missing indices.
///
/// Keys are short (at most 64 characters), ASCII alphanumerics and `-`, so they fit
/// every middleware's name and token rules.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Maximum length of a key (EC2's `ClientToken` allows 64 ASCII characters).
    pub const MAX_LEN: usize = 64;

    /// Validates and wraps a key.
    ///
    /// # Errors
    /// `InvalidRequest` when the key is empty, longer than [`Self::MAX_LEN`] or holds a
    /// character other than ASCII alphanumerics and `-`.
    pub fn new(key: impl Into<String>) -> crate::Result<Self> {
        let key = key.into();
        if key.is_empty()
            || key.len() > Self::MAX_LEN
            || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(crate::Error::invalid(format!(
                "idempotency key {key:?} must be 1-64 ASCII letters, digits or '-'"
            )));
        }
        Ok(Self(key))
    }

    /// A fresh random key with a readable prefix, e.g. `ic-hadoop-3f9a…`.
    pub fn random(prefix: &str) -> Self {
        use rand::Rng;
        let clean: String = prefix
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(40)
            .collect();
        let n: u64 = rand::rng().random();
        Self(format!("{clean}-{n:016x}"))
    }

    /// The key as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of the VM with `index` in this create call: `{key}-{index}`.
    pub fn vm_name(&self, index: u32) -> String {
        format!("{}-{index}", self.0)
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A resource's tags: key → value. Backends translate keys to their middleware's rules
/// (OpenNebula: upper-case `USER_TEMPLATE` attributes).
pub type Tags = BTreeMap<String, String>;
