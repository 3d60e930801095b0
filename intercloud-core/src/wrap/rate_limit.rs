//! [`RateLimit`]: a token bucket (calls per second plus burst) and a cap on calls in
//! flight, for one site.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Mutex, Semaphore, SemaphorePermit};
use tokio::time::Instant;

use crate::model::{
    Capabilities, Capacity, GuestNetwork, Offering, SiteId, Vm, VmFilter, VmId, VmSpec,
};
use crate::provider::CloudProvider;
use crate::{Error, Result};

/// How fast and how many at once one site may be called. Plain data.
///
/// Over any window of `w` seconds at most `calls_per_second × w + burst` calls start,
/// and never more than `max_concurrency` are in flight. `None` lifts that limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimitPolicy {
    /// Sustained calls per second (`rate_limit` in the federation file), at least
    /// [`Self::MIN_RATE`].
    pub calls_per_second: Option<f64>,
    /// Calls that may start at once after a quiet period (at least 1).
    pub burst: u32,
    /// Calls in flight at once (`max_concurrency` in the federation file).
    pub max_concurrency: Option<usize>,
}

impl Default for RateLimitPolicy {
    /// 20 calls per second, bursts of 20, 16 in flight.
    fn default() -> Self {
        Self {
            calls_per_second: Some(20.0),
            burst: 20,
            max_concurrency: Some(16),
        }
    }
}

impl RateLimitPolicy {
    /// The slowest rate accepted: one call every 1000 s.
    pub const MIN_RATE: f64 = 0.001;

    /// No limit at all.
    pub fn unlimited() -> Self {
        Self {
            calls_per_second: None,
            burst: 1,
            max_concurrency: None,
        }
    }

    /// Checks the numbers; `site` names the site in the error.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Config`] when the rate is not a finite number of at least
    /// [`Self::MIN_RATE`], the burst is 0 or the concurrency is 0.
    pub fn validate(&self, site: &SiteId) -> Result<()> {
        if let Some(rate) = self.calls_per_second {
            if !(rate.is_finite() && rate >= Self::MIN_RATE) {
                return Err(Error::config(format!(
                    "rate_limit must be a number of calls per second of at least {}, not {rate}",
                    Self::MIN_RATE
                ))
                .with_site(site.clone()));
            }
            if self.burst == 0 {
                return Err(Error::config("the rate limit's burst must be at least 1")
                    .with_site(site.clone()));
            }
        }
        if self.max_concurrency == Some(0) {
            return Err(Error::config("max_concurrency must be at least 1").with_site(site.clone()));
        }
        Ok(())
    }
}

/// A token bucket in its "generic cell rate" form: one instant, the theoretical
/// arrival time of the next call (`tat`), instead of a token count.
///
/// A call may start at `now` when `max(tat, now) + interval - now <= burst × interval`;
/// it then moves `tat` to `max(tat, now) + interval`. Waiters queue on a FIFO async
/// mutex and take their token only at the instant they proceed, so a waiter that is
/// dropped leaves the bucket exactly as it found it.
///
/// [`RateLimit`] uses one per site around provider calls; a backend whose one provider
/// call makes many wire requests (CloudStack's create: a deploy and a tag job per VM)
/// takes a token per request from its own bucket, so the site's limit holds on the
/// wire too. Share one bucket per site behind an `Arc`.
#[derive(Debug)]
pub struct TokenBucket {
    interval: Duration,
    span: Duration,
    tat: Mutex<Option<Instant>>,
}

impl TokenBucket {
    /// A bucket admitting `calls_per_second` on average and `burst` at once.
    /// Rates below [`RateLimitPolicy::MIN_RATE`] (or not finite) are clamped to it.
    pub fn new(calls_per_second: f64, burst: u32) -> Self {
        let calls_per_second = if calls_per_second.is_finite() {
            calls_per_second.max(RateLimitPolicy::MIN_RATE)
        } else {
            RateLimitPolicy::MIN_RATE
        };
        // Round the interval up so rounding can only slow calls down; the rate was
        // validated (>= MIN_RATE), the clamp only guards against misuse.
        let nanos = (1e9 / calls_per_second).ceil().clamp(1.0, 1e12);
        let interval = Duration::from_nanos(nanos as u64);
        Self {
            interval,
            span: interval.saturating_mul(burst.max(1)),
            tat: Mutex::new(None),
        }
    }

    /// Waits (in FIFO order) until a call may start, and takes its token.
    pub async fn take(&self) {
        let mut tat = self.tat.lock().await;
        let mut slept_until: Option<Instant> = None;
        loop {
            match self.step(*tat, Instant::now(), slept_until) {
                Ok(next) => {
                    *tat = Some(next);
                    return;
                }
                Err(ready_at) => {
                    tokio::time::sleep_until(ready_at).await;
                    slept_until = Some(ready_at);
                }
            }
        }
    }

    /// One admission decision (pure): `Ok(new tat)` when a call may start at `now`,
    /// else `Err(instant to wake at)`. A caller that slept until `slept_until` for its
    /// slot counts from that slot, not from a timer that woke it late (tokio's timer
    /// has millisecond steps), so lateness does not lower the rate; no call ever
    /// starts before its slot.
    fn step(
        &self,
        tat: Option<Instant>,
        now: Instant,
        slept_until: Option<Instant>,
    ) -> std::result::Result<Instant, Instant> {
        let from = match slept_until {
            Some(slot) if now.saturating_duration_since(slot) < self.interval => slot,
            _ => now,
        };
        let next = tat.map_or(from, |t| t.max(from)) + self.interval;
        // The earliest instant `next - at <= span` holds.
        let ready_at = next.checked_sub(self.span).unwrap_or(now);
        if ready_at <= now {
            Ok(next)
        } else {
            Err(ready_at)
        }
    }
}

/// Limits the calls one site receives: a token bucket of
/// [`RateLimitPolicy::calls_per_second`] and [`RateLimitPolicy::burst`], and at most
/// [`RateLimitPolicy::max_concurrency`] calls in flight.
///
/// Every method that makes a call waits for a concurrency slot, then for a token, then
/// calls; the slot is held until the call ends. `site()` and `capabilities()` never
/// wait. Waiting is fair: callers are served in the order they started waiting (tokio's
/// semaphore and mutex are FIFO). It is cancellation-safe: a caller dropped while
/// waiting takes no token and holds no slot.
///
/// Use one wrapper per provider instance (per site); clones of the provider behind an
/// `Arc` share it.
pub struct RateLimit<P> {
    inner: P,
    policy: RateLimitPolicy,
    bucket: Option<TokenBucket>,
    slots: Option<Semaphore>,
}

impl<P: fmt::Debug> fmt::Debug for RateLimit<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .field(
                "free_slots",
                &self.slots.as_ref().map(Semaphore::available_permits),
            )
            .finish_non_exhaustive()
    }
}

impl<P: CloudProvider> RateLimit<P> {
    /// Wraps `inner` with `policy`.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Config`] naming the site when the policy is invalid (see
    /// [`RateLimitPolicy::validate`]).
    pub fn new(inner: P, policy: RateLimitPolicy) -> Result<Self> {
        policy.validate(inner.site())?;
        Ok(Self {
            bucket: policy
                .calls_per_second
                .map(|rate| TokenBucket::new(rate, policy.burst)),
            slots: policy.max_concurrency.map(Semaphore::new),
            inner,
            policy,
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> &RateLimitPolicy {
        &self.policy
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Unwraps the provider.
    pub fn into_inner(self) -> P {
        self.inner
    }

    /// Waits for a slot, then for a token. The returned permit (if any) frees the slot
    /// when dropped.
    async fn admit(&self) -> Option<SemaphorePermit<'_>> {
        // The semaphore is never closed, so `acquire` cannot fail.
        let permit = match &self.slots {
            Some(slots) => slots.acquire().await.ok(),
            None => None,
        };
        if let Some(bucket) = &self.bucket {
            bucket.take().await;
        }
        permit
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<P: CloudProvider> CloudProvider for RateLimit<P> {
    fn site(&self) -> &SiteId {
        self.inner.site()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn offerings(&self) -> Result<Vec<Offering>> {
        let _slot = self.admit().await;
        self.inner.offerings().await
    }

    async fn capacity(&self) -> Result<Capacity> {
        let _slot = self.admit().await;
        self.inner.capacity().await
    }

    async fn create_vms(&self, spec: &VmSpec, count: u32) -> Result<Vec<VmId>> {
        let _slot = self.admit().await;
        self.inner.create_vms(spec, count).await
    }

    async fn list_vms(&self, filter: &VmFilter) -> Result<Vec<Vm>> {
        let _slot = self.admit().await;
        self.inner.list_vms(filter).await
    }

    async fn delete_vm(&self, id: &VmId) -> Result<()> {
        let _slot = self.admit().await;
        self.inner.delete_vm(id).await
    }

    async fn start_vm(&self, id: &VmId) -> Result<()> {
        let _slot = self.admit().await;
        self.inner.start_vm(id).await
    }
    async fn guest_network(&self) -> Result<Option<GuestNetwork>> {
        let _slot = self.admit().await;
        self.inner.guest_network().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_rounds_up() {
        let b = TokenBucket::new(3.0, 2);
        assert_eq!(b.interval, Duration::from_nanos(333_333_334));
        assert_eq!(b.span, Duration::from_nanos(666_666_668));
        let slowest = TokenBucket::new(RateLimitPolicy::MIN_RATE, 1);
        assert_eq!(slowest.interval, Duration::from_secs(1000));
    }

    #[test]
    fn a_late_wake_up_keeps_the_rate() {
        let ms = Duration::from_millis;
        let b = TokenBucket::new(250.0, 1); // one call per 4 ms
        let t0 = Instant::now();
        let mut tat = Some(b.step(None, t0, None).expect("the first call goes at once"));
        // A caller arriving at once must wait for the slot at 4 ms ...
        assert_eq!(b.step(tat, t0, None), Err(t0 + ms(4)));
        // ... and its timer fires 1.5 ms late: it still holds the 4 ms slot, so the
        // next slot is 8 ms, not 9.5 ms.
        tat = Some(
            b.step(tat, t0 + ms(4) + ms(3) / 2, Some(t0 + ms(4)))
                .unwrap(),
        );
        assert_eq!(tat, Some(t0 + ms(8)));
        // Without having slept (or later than a whole interval) time lost is lost:
        // the bucket never admits a burst it did not have.
        assert_eq!(b.step(tat, t0 + ms(20), None), Ok(t0 + ms(24)));
        assert_eq!(
            b.step(Some(t0 + ms(8)), t0 + ms(20), Some(t0 + ms(8))),
            Ok(t0 + ms(24))
        );
        // Never before the slot.
        assert_eq!(b.step(tat, t0 + ms(7), Some(t0 + ms(4))), Err(t0 + ms(8)));
    }

    #[test]
    fn bad_policies_are_config_errors_naming_the_site() {
        let site = SiteId::new("nii");
        for bad in [
            RateLimitPolicy {
                calls_per_second: Some(0.0),
                ..RateLimitPolicy::default()
            },
            RateLimitPolicy {
                calls_per_second: Some(-5.0),
                ..RateLimitPolicy::default()
            },
            RateLimitPolicy {
                calls_per_second: Some(f64::INFINITY),
                ..RateLimitPolicy::default()
            },
            RateLimitPolicy {
                calls_per_second: Some(f64::NAN),
                ..RateLimitPolicy::default()
            },
            RateLimitPolicy {
                burst: 0,
                ..RateLimitPolicy::default()
            },
            RateLimitPolicy {
                max_concurrency: Some(0),
                ..RateLimitPolicy::default()
            },
        ] {
            let e = bad.validate(&site).expect_err("invalid policy");
            assert_eq!(e.kind(), crate::ErrorKind::Config);
            assert_eq!(e.site(), Some(&site));
        }
        assert!(RateLimitPolicy::default().validate(&site).is_ok());
        assert!(RateLimitPolicy::unlimited().validate(&site).is_ok());
    }
}
