//! [`stack`]: the wrappers in the order the deployer uses them.

use super::{RateLimit, RateLimitPolicy, Retry, RetryPolicy, Timeout, TimeoutPolicy};
use crate::provider::CloudProvider;
use crate::Result;

/// Everything that shapes the calls to one site. Plain data.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SitePolicy {
    /// Backoff and its caps.
    pub retry: RetryPolicy,
    /// Rate and concurrency limits.
    pub rate_limit: RateLimitPolicy,
    /// Per-call deadlines.
    pub timeout: TimeoutPolicy,
}

/// A provider wrapped by [`stack`].
pub type Stacked<P> = Retry<RateLimit<Timeout<P>>>;

/// Wraps `provider` as `Retry(RateLimit(Timeout(provider)))`, which is the order
/// documented in [`crate::wrap`]: every attempt waits for a token and a slot, and every
/// attempt has its own deadline. Set the retry hook or a seed on the result
/// ([`Retry::on_retry`], [`Retry::with_seed`]).
///
/// # Errors
/// [`crate::ErrorKind::Config`] naming the site when the rate limit policy is invalid.
pub fn stack<P: CloudProvider>(provider: P, policy: &SitePolicy) -> Result<Stacked<P>> {
    let timed = Timeout::new(provider, policy.timeout);
    let limited = RateLimit::new(timed, policy.rate_limit)?;
    Ok(Retry::new(limited, policy.retry))
}
