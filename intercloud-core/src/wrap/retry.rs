//! [`Retry`]: exponential backoff with full jitter, capped in attempts and in time.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use tokio::time::Instant;

use super::method_name;
use crate::model::{
    Capabilities, Capacity, GuestNetwork, Offering, SiteId, Vm, VmFilter, VmId, VmSpec,
};
use crate::provider::CloudProvider;
use crate::{Error, ErrorKind, Method, Result};

/// When and how long [`Retry`] waits before trying a call again. Plain data.
///
/// The delay before retry `n` (1-based) is drawn uniformly from
/// `0 ..= min(max_delay, base * 2^(n-1))` ("full jitter"), rounded down to whole
/// milliseconds, where `base` is [`rate_limited_delay`](Self::rate_limited_delay) when the
/// site said [`ErrorKind::RateLimited`] and [`base_delay`](Self::base_delay) otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most attempts of one call, the first included (0 behaves as 1: no retry).
    pub max_attempts: u32,
    /// Base of the exponential backoff.
    pub base_delay: Duration,
    /// Base of the backoff after a `RateLimited` error (longer: the site asked us to
    /// slow down).
    pub rate_limited_delay: Duration,
    /// Longest single wait between attempts.
    pub max_delay: Duration,
    /// Longest time from the first attempt's start to the start of the last one: no
    /// attempt starts later than this. An attempt in progress is not cut short (that is
    /// [`super::Timeout`]'s job).
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, 250 ms base (2 s when rate limited), at most 10 s between attempts,
    /// no attempt later than 60 s after the first.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            rate_limited_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }
}

/// The delay before retrying after attempt `failed_attempt` (1-based) failed with
/// `kind`, drawn from `rng` (see [`RetryPolicy`] for the formula).
pub fn backoff(
    policy: &RetryPolicy,
    failed_attempt: u32,
    kind: ErrorKind,
    rng: &mut dyn RngCore,
) -> Duration {
    let base = if kind == ErrorKind::RateLimited {
        policy.rate_limited_delay
    } else {
        policy.base_delay
    };
    let doublings = failed_attempt.saturating_sub(1).min(31);
    let ceiling = base.saturating_mul(1u32 << doublings).min(policy.max_delay);
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rng.random_range(0..=ceiling_ms))
}

/// What [`Retry`] tells its hook before it waits to try a call again.
#[derive(Debug)]
#[non_exhaustive]
pub struct RetryEvent<'a> {
    /// The site of the call.
    pub site: &'a SiteId,
    /// The method being retried.
    pub method: Method,
    /// The attempt that just failed (1-based).
    pub attempt: u32,
    /// How long the wrapper waits before the next attempt.
    pub delay: Duration,
    /// Why the attempt failed.
    pub error: &'a Error,
}

impl RetryEvent<'_> {
    /// The trait method's name (`create_vms`, `list_vms`, …).
    pub fn method_name(&self) -> &'static str {
        method_name(self.method)
    }
}

/// A callback told of every retry, e.g. to emit the deployer's `Retry` event. It runs
/// inside the call; keep it short and non-blocking.
pub type RetryHook = Arc<dyn Fn(&RetryEvent<'_>) + Send + Sync>;

/// Retries temporary failures of any provider with exponential backoff and full jitter.
///
/// - Only errors with [`Error::is_temporary`] are retried; any other error is returned
///   at once.
/// - A `create_vms` that failed with a temporary error may have taken effect. It is
///   retried only when the inner provider's
///   [`Capabilities::idempotent_create`] is true: the contract of
///   [`CloudProvider`] then guarantees that the repeated call with the same key makes no
///   second set of VMs. Otherwise the error is returned at once and the caller must
///   look the key up before trying again.
/// - Retries stop at [`RetryPolicy::max_attempts`] and when the next attempt would start
///   later than [`RetryPolicy::max_elapsed`] after the first, measured on tokio's clock
///   (so `tokio::time::pause()` drives it). The last error is returned, its message
///   saying how many attempts were made; the original error is its source.
/// - An error it would have retried but for those caps comes back with
///   [`Error::retries_spent`] set (it stays temporary): outer loops — the deployer's
///   executor among them — do not retry it again at once. Not with a policy of one
///   attempt ([`RetryPolicy::none`]: nothing was spent), nor for errors it does not
///   retry (not temporary, a create on a provider that is not idempotent).
/// - Jitter comes from an injectable RNG: [`Retry::with_seed`] makes it reproducible.
pub struct Retry<P> {
    inner: P,
    policy: RetryPolicy,
    rng: Mutex<Box<dyn RngCore + Send>>,
    on_retry: Option<RetryHook>,
}

impl<P: fmt::Debug> fmt::Debug for Retry<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .field("on_retry", &self.on_retry.is_some())
            .finish_non_exhaustive()
    }
}

impl<P: CloudProvider> Retry<P> {
    /// Wraps `inner` with `policy`, jitter drawn from an RNG seeded by the OS.
    pub fn new(inner: P, policy: RetryPolicy) -> Self {
        Self {
            inner,
            policy,
            rng: Mutex::new(Box::new(StdRng::from_os_rng())),
            on_retry: None,
        }
    }

    /// Draws jitter from a [`StdRng`] seeded with `seed`: the same seed and the same
    /// failures give the same delays.
    pub fn with_seed(self, seed: u64) -> Self {
        self.with_rng(Box::new(StdRng::seed_from_u64(seed)))
    }

    /// Draws jitter from `rng`.
    pub fn with_rng(mut self, rng: Box<dyn RngCore + Send>) -> Self {
        self.rng = Mutex::new(rng);
        self
    }

    /// Calls `hook` before every wait for a retry.
    pub fn on_retry(mut self, hook: RetryHook) -> Self {
        self.on_retry = Some(hook);
        self
    }

    /// The policy in force.
    pub fn policy(&self) -> &RetryPolicy {
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

    fn may_retry(&self, method: Method, err: &Error) -> bool {
        err.is_temporary()
            && (method != Method::Create || self.inner.capabilities().idempotent_create)
    }

    fn next_delay(&self, failed_attempt: u32, kind: ErrorKind) -> Duration {
        // A panic in another caller cannot leave an RNG in a state that matters.
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        backoff(&self.policy, failed_attempt, kind, &mut **rng)
    }

    async fn run<T, F, Fut>(&self, method: Method, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send,
        T: Send,
    {
        let start = Instant::now();
        let max_attempts = self.policy.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let err = match call().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if !self.may_retry(method, &err) {
                return Err(gave_up(err, attempt, start, false));
            }
            // Retries were allowed and their budget ran out.
            let spent = max_attempts > 1;
            if attempt >= max_attempts {
                return Err(gave_up(err, attempt, start, spent));
            }
            let delay = self.next_delay(attempt, err.kind());
            if start.elapsed().saturating_add(delay) > self.policy.max_elapsed {
                return Err(gave_up(err, attempt, start, spent));
            }
            tracing::debug!(
                site = %self.inner.site(),
                method = method_name(method),
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %err,
                "retrying"
            );
            if let Some(hook) = &self.on_retry {
                hook(&RetryEvent {
                    site: self.inner.site(),
                    method,
                    attempt,
                    delay,
                    error: &err,
                });
            }
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

/// The error a caller sees after `attempts` attempts: after one attempt the same
/// error; after several, the same kind, site, resource, class and constraints with
/// the count in the message and the last attempt's error as source. Either way marked
/// [`Error::retries_spent`] when `spent` (or when an inner layer had spent its own).
fn gave_up(err: Error, attempts: u32, start: Instant, spent: bool) -> Error {
    let spent = spent || err.retries_spent();
    if attempts <= 1 {
        return err.with_retries_spent(spent);
    }
    err.with_message(format!(
        "{} (gave up after {attempts} attempts in {:.1} s)",
        err.message(),
        start.elapsed().as_secs_f64()
    ))
    .with_temporary(err.is_temporary())
    .with_retries_spent(spent)
    .with_source(err)
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<P: CloudProvider> CloudProvider for Retry<P> {
    fn site(&self) -> &SiteId {
        self.inner.site()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn offerings(&self) -> Result<Vec<Offering>> {
        self.run(Method::Offerings, || self.inner.offerings()).await
    }

    async fn capacity(&self) -> Result<Capacity> {
        self.run(Method::Capacity, || self.inner.capacity()).await
    }

    async fn create_vms(&self, spec: &VmSpec, count: u32) -> Result<Vec<VmId>> {
        // A retry follows an attempt that may have taken effect: never `fresh`.
        let retry_spec = spec.fresh.then(|| VmSpec {
            fresh: false,
            ..spec.clone()
        });
        let mut first = true;
        self.run(Method::Create, || {
            let s = match (&retry_spec, std::mem::take(&mut first)) {
                (Some(again), false) => again,
                _ => spec,
            };
            self.inner.create_vms(s, count)
        })
        .await
    }

    async fn list_vms(&self, filter: &VmFilter) -> Result<Vec<Vm>> {
        self.run(Method::List, || self.inner.list_vms(filter)).await
    }

    async fn delete_vm(&self, id: &VmId) -> Result<()> {
        self.run(Method::Delete, || self.inner.delete_vm(id)).await
    }

    async fn start_vm(&self, id: &VmId) -> Result<()> {
        // Starting is idempotent (starting a running VM is Ok): safe to repeat.
        self.run(Method::Start, || self.inner.start_vm(id)).await
    }
    async fn guest_network(&self) -> Result<Option<GuestNetwork>> {
        self.run(Method::List, || self.inner.guest_network()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            rate_limited_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(3),
            max_elapsed: Duration::from_secs(60),
        }
    }

    #[test]
    fn backoff_stays_under_the_exponential_ceiling_and_the_cap() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 1..=40 {
            let ceiling = p
                .base_delay
                .saturating_mul(1u32 << (attempt - 1).min(31))
                .min(p.max_delay);
            for _ in 0..50 {
                let d = backoff(&p, attempt, ErrorKind::Unavailable, &mut rng);
                assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
            }
        }
    }

    #[test]
    fn backoff_is_jittered_over_the_whole_range() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(1);
        let draws: Vec<Duration> = (0..2000)
            .map(|_| backoff(&p, 3, ErrorKind::Timeout, &mut rng))
            .collect();
        // ceiling for attempt 3: 400 ms; full jitter covers both halves.
        assert!(draws.iter().any(|d| *d < Duration::from_millis(100)));
        assert!(draws.iter().any(|d| *d > Duration::from_millis(300)));
        assert!(draws.iter().all(|d| *d <= Duration::from_millis(400)));
    }

    #[test]
    fn rate_limited_errors_back_off_longer() {
        let p = policy();
        let mean = |kind| {
            let mut rng = StdRng::seed_from_u64(3);
            let total: Duration = (0..1000).map(|_| backoff(&p, 1, kind, &mut rng)).sum();
            total / 1000
        };
        // attempt 1: ceilings 100 ms vs 1 s, means about half of those.
        assert!(mean(ErrorKind::Unavailable) < Duration::from_millis(70));
        assert!(mean(ErrorKind::RateLimited) > Duration::from_millis(400));
    }

    #[test]
    fn backoff_is_reproducible_from_a_seed() {
        let p = policy();
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (1..=8)
                .map(|a| backoff(&p, a, ErrorKind::Unavailable, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn huge_attempt_numbers_do_not_overflow() {
        let p = RetryPolicy {
            max_delay: Duration::MAX,
            ..policy()
        };
        let mut rng = StdRng::seed_from_u64(0);
        let _ = backoff(&p, u32::MAX, ErrorKind::Unavailable, &mut rng);
    }
}
