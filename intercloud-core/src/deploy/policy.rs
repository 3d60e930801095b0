//! What the caller decides: the failure policy, timings, and how a pass ended.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What to do when some nodes cannot be brought up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "policy")]
pub enum FailurePolicy {
    /// Every node runs, or everything this deployment created is deleted (in reverse
    /// order: members, then links, then endpoints) and the deletion verified by listing.
    #[default]
    AllOrNothing,
    /// Keep what runs when at least `min_fraction` of the nodes run (the result is
    /// `Partial`); below that, roll back as `AllOrNothing` does.
    BestEffort {
        /// The fraction of nodes (0..=1) that must run.
        min_fraction: f64,
    },
}

/// How a deploy, resume or repair pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployResult {
    /// Every node runs (and every link is up).
    Ok,
    /// Some nodes failed; the policy kept the rest.
    Partial,
    /// The pass failed and what it made was rolled back (nothing is left).
    RolledBack,
    /// The pass failed and could not clean up everything (see the report's leftovers).
    Failed,
}

impl DeployResult {
    /// The CLI's `result` word: `ok`, `partial` or `failed`.
    pub fn as_cli_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Partial => "partial",
            Self::RolledBack | Self::Failed => "failed",
        }
    }
}

/// Timings and limits of the executor.
///
/// # Bounds
/// - **A dead site is noticed within `poll_max + site_timeout`** (defaults: 20 s +
///   60 s = 80 s) of its last answer: every tick of a site (its creates, deletes,
///   poll wait and listing) is cut at `site_timeout` after the first call of the
///   site's current failing streak (or after the tick's wait plus `site_timeout` when
///   the site was healthy), and a site whose calls have failed for `site_timeout`, or
///   whose listing failed `max_list_failures` times in a row (or once with an error
///   that is not temporary: refused credentials, an answer that is not a cloud's; or
///   once with an error a retry layer spent its retries on),
///   is unreachable. Its nodes
///   then move to other healthy sites only when the request's constraints still hold
///   after the move; its VMs are reported as leftovers and deleted as soon as it
///   answers (in this pass, or by the next resume, repair or destroy).
/// - **A pass returns within `timeout` + the link wait (at most `timeout`) +
///   `cleanup_timeout`** (rollback); a site found unreachable is not waited for by the
///   rollback (every site is probed once, within `poll_max`, before it) or the link
///   wait: its VMs and links are reported instead, and a link whose status calls
///   fail or hang for `site_timeout` is reported `unreachable`.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// The first poll interval after a site's creates, and the interval after a change.
    pub poll_min: Duration,
    /// The longest poll interval; the interval grows 1.5x per unchanged tick up to it.
    pub poll_max: Duration,
    /// Create attempts per batch on temporary errors before the site counts as unusable.
    /// An error whose retries are spent ([`crate::Error::retries_spent`], set by
    /// [`crate::wrap::Retry`]) counts as the last attempt: the wrapper's attempts are
    /// not multiplied by these.
    pub max_create_attempts: u32,
    /// Consecutive failed listings before a site counts as unreachable (one, when the
    /// listing's error has its retries spent).
    pub max_list_failures: u32,
    /// How long a site may fail every call (or not answer) before it counts as
    /// unreachable, whatever `max_list_failures` says; also the longest a single tick
    /// of a site may take beyond its poll wait.
    pub site_timeout: Duration,
    /// Times one node may be recreated (failed VM) in one pass before it counts as failed.
    pub max_node_attempts: u32,
    /// Ticks a created VM may be absent from listings before it counts as lost.
    pub missing_grace_ticks: u32,
    /// How long a pass may take before nodes not yet running count as failed.
    pub timeout: Duration,
    /// How long rollback and destroy keep retrying deletes and verifying (a site
    /// failing `max_list_failures` listings in a row is given up sooner and reported
    /// unverified).
    pub cleanup_timeout: Duration,
    /// How long the check before a deployment waits for each site's listing
    /// ([`crate::deploy::Deployer::census`]); default 60 s.
    pub preflight_timeout: Duration,
}

impl Default for DeployOptions {
    fn default() -> Self {
        Self {
            poll_min: Duration::from_secs(2),
            poll_max: Duration::from_secs(20),
            max_create_attempts: 8,
            max_list_failures: 6,
            site_timeout: Duration::from_secs(60),
            max_node_attempts: 3,
            missing_grace_ticks: 3,
            timeout: Duration::from_secs(30 * 60),
            cleanup_timeout: Duration::from_secs(10 * 60),
            preflight_timeout: Duration::from_secs(60),
        }
    }
}
