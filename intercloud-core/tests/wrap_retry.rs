//! The retry wrapper under tokio's virtual time: both caps, what is retried and what
//! is not, ambiguous creates, and reproducible jitter.

mod wrap_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use intercloud_core::wrap::{Retry, RetryEvent, RetryHook, RetryPolicy};
use intercloud_core::{
    CloudProvider, ErrorClass, ErrorKind, FaultTiming, MemoryProvider, Method, VmFilter, VmId,
    TAG_KEY,
};
use tokio::time::Instant;
use wrap_support::{spec, Probe};

/// What the hook saw: (method, attempt, delay, error kind, site).
type Seen = Arc<Mutex<Vec<(Method, u32, Duration, ErrorKind, String)>>>;

fn recorder() -> (Seen, RetryHook) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let hook: RetryHook = Arc::new(move |e: &RetryEvent<'_>| {
        s.lock().unwrap().push((
            e.method,
            e.attempt,
            e.delay,
            e.error.kind(),
            e.site.to_string(),
        ));
    });
    (seen, hook)
}

fn policy(max_attempts: u32, max_elapsed: Duration) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(100),
        rate_limited_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(2),
        max_elapsed,
    }
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_attempt_cap() {
    let probe = Arc::new(
        Probe::new("hokkaido")
            .delay(Duration::from_millis(20))
            .always_fail(ErrorKind::Unavailable),
    );
    let (seen, hook) = recorder();
    let retry = Retry::new(probe.clone(), policy(4, Duration::from_secs(600)))
        .with_seed(9)
        .on_retry(hook);
    let t0 = Instant::now();
    let err = retry.list_vms(&VmFilter::default()).await.unwrap_err();

    assert_eq!(probe.count(), 4);
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_temporary());
    assert_eq!(err.site().map(|s| s.as_str()), Some("hokkaido"));
    assert!(
        err.to_string().contains("gave up after 4 attempts"),
        "{err}"
    );
    // Temporary → spent: still transient, but outer loops must not retry it at once.
    assert!(err.retries_spent());
    assert_eq!(err.class(), ErrorClass::Transient);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().map(|s| s.1).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "one event per retry, numbered by the failed attempt"
    );
    assert!(seen
        .iter()
        .all(|s| s.0 == Method::List && s.3 == ErrorKind::Unavailable && s.4 == "hokkaido"));
    // Virtual time: 4 calls of 20 ms plus exactly the announced waits.
    let waited: Duration = seen.iter().map(|s| s.2).sum();
    assert_eq!(t0.elapsed(), Duration::from_millis(80) + waited);
    // Each wait stays under its exponential ceiling: 100, 200, 400 ms.
    for (i, s) in seen.iter().enumerate() {
        assert!(s.2 <= Duration::from_millis(100 << i), "{s:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_time_cap() {
    for seed in 0..20 {
        let probe = Arc::new(Probe::new("nii").always_fail(ErrorKind::Timeout));
        let (seen, hook) = recorder();
        let p = RetryPolicy {
            max_attempts: 1000,
            base_delay: Duration::from_secs(1),
            rate_limited_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(1),
            max_elapsed: Duration::from_secs(10),
        };
        let retry = Retry::new(probe.clone(), p).with_seed(seed).on_retry(hook);
        let t0 = Instant::now();
        let err = retry.capacity().await.unwrap_err();
        let elapsed = t0.elapsed();
        let attempts = probe.count();

        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(
            err.retries_spent(),
            "seed {seed}: the time cap spends retries too"
        );
        // No attempt started after the cap; each wait is at most 1 s, so giving up
        // means the next wait would have crossed it: more than 9 s have passed.
        assert!(
            elapsed <= Duration::from_secs(10),
            "seed {seed}: {elapsed:?}"
        );
        assert!(elapsed > Duration::from_secs(9), "seed {seed}: {elapsed:?}");
        let last_start = probe.calls().last().unwrap().start - t0;
        assert!(last_start <= Duration::from_secs(10));
        assert!((11..1000).contains(&attempts), "seed {seed}: {attempts}");
        assert_eq!(seen.lock().unwrap().len(), attempts - 1);
    }
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_returned_at_once_unchanged() {
    for kind in [
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::Unauthenticated,
        ErrorKind::PermissionDenied,
        ErrorKind::QuotaExceeded,
        ErrorKind::InvalidRequest,
        ErrorKind::Unsupported,
        ErrorKind::Protocol,
        ErrorKind::Config,
    ] {
        let probe = Arc::new(Probe::new("s").always_fail(kind));
        let (seen, hook) = recorder();
        let retry = Retry::new(probe.clone(), RetryPolicy::default()).on_retry(hook);
        let t0 = Instant::now();
        let err = retry.delete_vm(&VmId::new("7")).await.unwrap_err();
        assert_eq!(err.kind(), kind);
        assert_eq!(err.message(), "delete_vm failed (scripted)");
        assert!(!err.retries_spent(), "{kind} was never retried");
        assert_eq!(probe.count(), 1, "{kind} must not be retried");
        assert!(seen.lock().unwrap().is_empty());
        assert_eq!(t0.elapsed(), Duration::ZERO);
    }
}

#[tokio::test(start_paused = true)]
async fn an_error_marked_permanent_is_not_retried_whatever_its_kind() {
    // MemoryProvider's quota error is permanent; a temporary kind forced permanent by
    // the backend must be honoured too, which only `is_temporary()` can tell.
    #[derive(Debug)]
    struct Forced(intercloud_core::SiteId);
    #[async_trait::async_trait]
    impl CloudProvider for Forced {
        fn site(&self) -> &intercloud_core::SiteId {
            &self.0
        }
        fn capabilities(&self) -> intercloud_core::Capabilities {
            intercloud_core::Capabilities::default()
        }
        async fn offerings(&self) -> intercloud_core::Result<Vec<intercloud_core::Offering>> {
            Err(
                intercloud_core::Error::unavailable("maintenance until Monday")
                    .with_temporary(false),
            )
        }
        async fn capacity(&self) -> intercloud_core::Result<intercloud_core::Capacity> {
            unreachable!()
        }
        async fn create_vms(
            &self,
            _: &intercloud_core::VmSpec,
            _: u32,
        ) -> intercloud_core::Result<Vec<VmId>> {
            unreachable!()
        }
        async fn list_vms(
            &self,
            _: &VmFilter,
        ) -> intercloud_core::Result<Vec<intercloud_core::Vm>> {
            unreachable!()
        }
        async fn delete_vm(&self, _: &VmId) -> intercloud_core::Result<()> {
            unreachable!()
        }
    }
    let (seen, hook) = recorder();
    let retry = Retry::new(Forced("x".into()), RetryPolicy::default()).on_retry(hook);
    let err = retry.offerings().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(!err.is_temporary());
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn temporary_failures_are_retried_until_success() {
    let probe = Arc::new(Probe::new("s").script(&[
        ErrorKind::Unavailable,
        ErrorKind::Timeout,
        ErrorKind::RateLimited,
    ]));
    let (seen, hook) = recorder();
    let retry = Retry::new(probe.clone(), policy(5, Duration::from_secs(60)))
        .with_seed(1)
        .on_retry(hook);
    let offerings = retry.offerings().await.unwrap();
    assert!(offerings.is_empty());
    assert_eq!(probe.count(), 4);
    let kinds: Vec<ErrorKind> = seen.lock().unwrap().iter().map(|s| s.3).collect();
    assert_eq!(
        kinds,
        vec![
            ErrorKind::Unavailable,
            ErrorKind::Timeout,
            ErrorKind::RateLimited
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limited_errors_wait_longer() {
    let mean_wait = |kind| async move {
        let probe = Arc::new(Probe::new("s").always_fail(kind));
        let (seen, hook) = recorder();
        let p = RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(10),
            rate_limited_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(600),
        };
        let mut total = Duration::ZERO;
        for seed in 0..50 {
            let retry = Retry::new(probe.clone(), p)
                .with_seed(seed)
                .on_retry(hook.clone());
            let t0 = Instant::now();
            let _ = retry.list_vms(&VmFilter::default()).await;
            total += t0.elapsed();
        }
        assert_eq!(seen.lock().unwrap().len(), 50);
        total / 50
    };
    let throttled = mean_wait(ErrorKind::RateLimited).await;
    let unavailable = mean_wait(ErrorKind::Unavailable).await;
    assert!(unavailable <= Duration::from_millis(10), "{unavailable:?}");
    assert!(throttled >= Duration::from_millis(500), "{throttled:?}");
}

#[tokio::test(start_paused = true)]
async fn ambiguous_create_is_retried_into_exactly_one_set_of_vms() {
    let mem = Arc::new(MemoryProvider::new("hokkaido"));
    assert!(mem.capabilities().idempotent_create);
    mem.fail_next(Method::Create, ErrorKind::Unavailable, FaultTiming::After);
    let (seen, hook) = recorder();
    let retry = Retry::new(mem.clone(), RetryPolicy::default())
        .with_seed(3)
        .on_retry(hook);
    let s = spec("amb-1");
    let ids = retry.create_vms(&s, 3).await.unwrap();

    assert_eq!(mem.calls(Method::Create), 2, "the create was retried once");
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(ids.len(), 3);
    let made = mem.alive_with_tag(TAG_KEY, "amb-1");
    assert_eq!(made.len(), 3, "exactly one set of VMs");
    assert_eq!(mem.all_vms().len(), 3);
    let mut made_ids: Vec<VmId> = made.into_iter().map(|v| v.id).collect();
    made_ids.sort();
    let mut got = ids.clone();
    got.sort();
    assert_eq!(
        got, made_ids,
        "the retry returns the VMs the first call made"
    );
}

#[tokio::test(start_paused = true)]
async fn ambiguous_create_is_not_retried_without_idempotent_create() {
    let mem = Arc::new(
        MemoryProvider::builder("legacy")
            .idempotent_create(false)
            .build(),
    );
    mem.fail_next(Method::Create, ErrorKind::Unavailable, FaultTiming::After);
    let (seen, hook) = recorder();
    let retry = Retry::new(mem.clone(), RetryPolicy::default()).on_retry(hook);
    let t0 = Instant::now();
    let err = retry.create_vms(&spec("amb-2"), 2).await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.site().map(|s| s.as_str()), Some("legacy"));
    assert_eq!(mem.calls(Method::Create), 1, "not retried");
    assert!(
        !err.retries_spent(),
        "nothing was spent: the caller may look up and retry"
    );
    assert!(seen.lock().unwrap().is_empty());
    assert_eq!(t0.elapsed(), Duration::ZERO, "returned at once");
    // The first call did take effect: the caller must look the key up, not retry.
    assert_eq!(mem.alive_with_tag(TAG_KEY, "amb-2").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn other_methods_are_retried_without_idempotent_create() {
    let probe = Arc::new(
        Probe::new("legacy")
            .idempotent_create(false)
            .script(&[ErrorKind::Unavailable, ErrorKind::Unavailable]),
    );
    let retry = Retry::new(probe.clone(), RetryPolicy::default()).with_seed(0);
    retry.delete_vm(&VmId::new("1")).await.unwrap();
    assert_eq!(probe.count(), 3);
    // A create is not, even when the error came before any effect: nobody can tell.
    let probe = Arc::new(
        Probe::new("legacy")
            .idempotent_create(false)
            .script(&[ErrorKind::RateLimited]),
    );
    let retry = Retry::new(probe.clone(), RetryPolicy::default());
    let err = retry.create_vms(&spec("k"), 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(probe.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn jitter_is_reproducible_from_a_seed() {
    let delays = |seed| async move {
        let probe = Arc::new(Probe::new("s").always_fail(ErrorKind::Unavailable));
        let (seen, hook) = recorder();
        let retry = Retry::new(probe, policy(8, Duration::from_secs(600)))
            .with_seed(seed)
            .on_retry(hook);
        let t0 = Instant::now();
        let _ = retry.list_vms(&VmFilter::default()).await;
        let waits: Vec<Duration> = seen.lock().unwrap().iter().map(|s| s.2).collect();
        (waits, t0.elapsed())
    };
    let (a, ta) = delays(2024).await;
    let (b, tb) = delays(2024).await;
    let (c, _) = delays(2025).await;
    assert_eq!(a.len(), 7);
    assert_eq!(a, b);
    assert_eq!(ta, tb);
    assert_ne!(a, c);
}

#[tokio::test(start_paused = true)]
async fn zero_attempts_means_one_attempt() {
    let probe = Arc::new(Probe::new("s").always_fail(ErrorKind::Unavailable));
    let retry = Retry::new(probe.clone(), policy(0, Duration::from_secs(60)));
    let err = retry.offerings().await.unwrap_err();
    assert_eq!(probe.count(), 1);
    assert_eq!(err.message(), "offerings failed (scripted)");
    // A policy of one attempt retries nothing, so it spends nothing either.
    assert!(!err.retries_spent());
}

#[tokio::test(start_paused = true)]
async fn a_success_after_retries_and_a_permanent_error_after_retries_are_not_spent() {
    let probe = Arc::new(Probe::new("s").script(&[ErrorKind::Unavailable, ErrorKind::NotFound]));
    let retry = Retry::new(probe.clone(), policy(5, Duration::from_secs(60))).with_seed(1);
    let err = retry.delete_vm(&VmId::new("9")).await.unwrap_err();
    assert_eq!(probe.count(), 2);
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(!err.is_temporary());
    assert!(
        !err.retries_spent(),
        "the last error was not one the layer retries"
    );
    assert_eq!(err.class(), ErrorClass::CloudRefused);
}

#[tokio::test(start_paused = true)]
async fn a_spent_error_stays_spent_through_an_outer_retry_layer() {
    let probe = Arc::new(Probe::new("s").always_fail(ErrorKind::RateLimited));
    let inner = Retry::new(probe.clone(), policy(2, Duration::from_secs(600))).with_seed(3);
    // An outer layer of one attempt keeps what the inner one spent.
    let outer = Retry::new(inner, RetryPolicy::none());
    let err = outer.list_vms(&VmFilter::default()).await.unwrap_err();
    assert_eq!(probe.count(), 2);
    assert!(err.retries_spent());
    assert_eq!(err.kind(), ErrorKind::RateLimited);
}

#[tokio::test(start_paused = true)]
async fn works_over_arc_dyn_and_forwards_site_and_capabilities() {
    let mem: Arc<dyn CloudProvider> =
        Arc::new(MemoryProvider::builder("dyn").batch(false, 1).build());
    let retry: Arc<dyn CloudProvider> = Arc::new(Retry::new(mem, RetryPolicy::default()));
    assert_eq!(retry.site().as_str(), "dyn");
    assert!(!retry.capabilities().batch_create);
    let ids = retry.create_vms(&spec("dyn-1"), 1).await.unwrap();
    assert_eq!(retry.list_vms(&VmFilter::default()).await.unwrap().len(), 1);
    retry.delete_vm(&ids[0]).await.unwrap();
    assert!(retry.offerings().await.unwrap().is_empty());
    assert_eq!(retry.capacity().await.unwrap().instances.used, Some(0));
    assert!(format!("{retry:?}").contains("Retry"));
}

#[tokio::test(start_paused = true)]
async fn a_fresh_create_is_retried_as_not_fresh() {
    let probe = Arc::new(
        Probe::new("hokkaido")
            .idempotent_create(true)
            .script(&[ErrorKind::Unavailable, ErrorKind::Timeout]),
    );
    let retry = Retry::new(probe.clone(), RetryPolicy::default()).with_seed(1);
    let mut s = spec("fresh-1");
    s.fresh = true;
    retry.create_vms(&s, 2).await.unwrap();
    let labels: Vec<String> = probe.calls().into_iter().map(|c| c.label).collect();
    assert_eq!(
        labels,
        ["fresh-1 (fresh)", "fresh-1", "fresh-1"],
        "the attempts after one that may have taken effect look the key up"
    );
}

#[tokio::test(start_paused = true)]
async fn a_start_is_retried_like_any_idempotent_call() {
    let probe = Arc::new(Probe::new("s").script(&[ErrorKind::Unavailable, ErrorKind::Timeout]));
    let (seen, hook) = recorder();
    let retry = Retry::new(probe.clone(), policy(5, Duration::from_secs(60)))
        .with_seed(2)
        .on_retry(hook);
    retry.start_vm(&VmId::new("i-7")).await.unwrap();
    assert_eq!(probe.count(), 3);
    assert!(probe.calls().iter().all(|c| c.method == "start_vm"));
    assert_eq!(seen.lock().unwrap().len(), 2);
    // A permanent error (the VM is gone) is returned at once.
    let probe = Arc::new(Probe::new("s").script(&[ErrorKind::NotFound]));
    let retry = Retry::new(probe.clone(), policy(5, Duration::from_secs(60)));
    let e = retry.start_vm(&VmId::new("i-7")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(probe.count(), 1);
}
