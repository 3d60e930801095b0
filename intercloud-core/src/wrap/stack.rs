//! [`stack`]: the wrappers in the order the deployer uses them.

use super::{RateLimit, RateLimitPolicy, Retry, RetryPolicy, Timeout, TimeoutPolicy, TokenBucket};
use crate::model::Site;
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

impl SitePolicy {
    /// The defaults, with the site's own `rate_limit` and `max_concurrency` (from the
    /// federation file) where it sets them. A site's rate also sets the burst to one
    /// second's worth of calls (at least 1).
    pub fn for_site(site: &Site) -> Self {
        let mut policy = Self::default();
        if let Some(rate) = site.rate_limit {
            policy.rate_limit.calls_per_second = Some(rate);
            policy.rate_limit.burst = burst_of(rate);
        }
        if let Some(max) = site.max_concurrency {
            policy.rate_limit.max_concurrency = Some(usize::try_from(max).unwrap_or(usize::MAX));
        }
        policy
    }

    /// A bucket for the site's wire requests, for backends whose one provider call
    /// makes many requests (see [`TokenBucket`]): the site's `rate_limit` less one
    /// call per second (at most 10 % less), no burst. Evenly spaced requests at that
    /// rate never exceed the limit in any one-second window, so a client never meets
    /// the server's own throttling (CloudStack's `api.throttling` counts requests per
    /// fixed interval). `None` when the site sets no rate.
    pub fn wire_limit(site: &Site) -> Option<std::sync::Arc<TokenBucket>> {
        site.rate_limit
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(|r| std::sync::Arc::new(TokenBucket::new(Self::wire_rate(r), 1)))
    }

    /// The rate of [`Self::wire_limit`]'s bucket for a site rate `r` (calls per
    /// second): `r − 1`, but at least `0.9 r`.
    pub fn wire_rate(r: f64) -> f64 {
        (r - 1.0).max(r * 0.9)
    }
}

/// One second's worth of calls at `rate`, at least 1 (a bad rate is reported by
/// validation, not here).
fn burst_of(rate: f64) -> u32 {
    if rate.is_finite() && rate >= 1.0 {
        // Saturating float-to-int conversion.
        rate.ceil() as u32
    } else {
        1
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Middleware;

    fn site(rate: Option<f64>, max: Option<u32>) -> Site {
        Site {
            id: "hokkaido".into(),
            middleware: Middleware::CloudStack,
            endpoint: "https://cloud.example.ac.jp/client/api".into(),
            zone: None,
            levels: Default::default(),
            rate_limit: rate,
            max_concurrency: max,
        }
    }

    #[test]
    fn a_site_without_limits_gets_the_defaults() {
        assert_eq!(
            SitePolicy::for_site(&site(None, None)),
            SitePolicy::default()
        );
    }

    #[test]
    fn the_site_sets_rate_burst_and_concurrency() {
        let p = SitePolicy::for_site(&site(Some(25.0), Some(16)));
        assert_eq!(p.rate_limit.calls_per_second, Some(25.0));
        assert_eq!(p.rate_limit.burst, 25);
        assert_eq!(p.rate_limit.max_concurrency, Some(16));
        assert_eq!(
            SitePolicy::for_site(&site(Some(2.5), None))
                .rate_limit
                .burst,
            3
        );
        assert_eq!(
            SitePolicy::for_site(&site(Some(0.2), None))
                .rate_limit
                .burst,
            1
        );
    }

    #[test]
    fn the_wire_rate_leaves_one_call_per_second_at_most_ten_percent() {
        assert_eq!(SitePolicy::wire_rate(25.0), 24.0);
        assert_eq!(SitePolicy::wire_rate(100.0), 99.0);
        assert_eq!(SitePolicy::wire_rate(5.0), 4.5);
        assert!(SitePolicy::wire_limit(&site(None, None)).is_none());
        assert!(SitePolicy::wire_limit(&site(Some(f64::NAN), None)).is_none());
    }

    #[test]
    fn a_bad_site_rate_fails_in_stack_naming_the_site() {
        let s = site(Some(f64::NAN), None);
        let err = stack(
            crate::MemoryProvider::new("hokkaido"),
            &SitePolicy::for_site(&s),
        )
        .expect_err("NaN rate");
        assert_eq!(err.kind(), crate::ErrorKind::Config);
        assert!(err.to_string().contains("hokkaido"));
        let s = site(None, Some(0));
        assert!(stack(
            crate::MemoryProvider::new("hokkaido"),
            &SitePolicy::for_site(&s)
        )
        .is_err());
    }
}
