//! The stacked wrappers: `Retry(RateLimit(Timeout(provider)))`.

mod wrap_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use intercloud_core::testkit::{self, Fixture};
use intercloud_core::wrap::{
    stack, RateLimitPolicy, RetryEvent, RetryPolicy, SitePolicy, TimeoutPolicy,
};
use intercloud_core::{
    CloudProvider, ErrorKind, FaultTiming, MemoryProvider, Method, VmFilter, TAG_KEY,
};
use tokio::time::Instant;
use wrap_support::{assert_rate_respected, spec, Probe};

fn site_policy() -> SitePolicy {
    SitePolicy {
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(10),
            rate_limited_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(50),
            max_elapsed: Duration::from_secs(60),
        },
        rate_limit: RateLimitPolicy {
            calls_per_second: Some(2.0),
            burst: 1,
            max_concurrency: Some(2),
        },
        timeout: TimeoutPolicy::uniform(Duration::from_millis(500)),
    }
}

#[tokio::test(start_paused = true)]
async fn waiting_for_the_rate_limit_never_times_out() {
    // Ten fast calls at 2/s take 4.5 s; each call's deadline (0.5 s) covers only the
    // call, not its wait in the queue.
    let probe = Arc::new(Probe::new("s").delay(Duration::from_millis(100)));
    let stacked = stack(probe.clone(), &site_policy()).unwrap();
    let t0 = Instant::now();
    let results = join_all((0..10).map(|_| stacked.capacity())).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(probe.count(), 10, "no call was retried");
    assert_eq!(t0.elapsed(), Duration::from_millis(4600));
}

#[tokio::test(start_paused = true)]
async fn every_attempt_takes_a_token_and_has_its_own_deadline() {
    // Every attempt hangs: each one is cut at 0.5 s, retried, and the retries respect
    // the site's rate.
    let probe = Arc::new(Probe::new("slow").delay(Duration::from_secs(60)));
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let stacked = stack(probe.clone(), &site_policy())
        .unwrap()
        .with_seed(5)
        .on_retry(Arc::new(move |e: &RetryEvent<'_>| {
            ev.lock()
                .unwrap()
                .push((e.error.kind(), e.method_name().to_owned()));
        }));
    let specs: Vec<_> = (0..3).map(|i| spec(&format!("stack-{i}"))).collect();
    let results = join_all(specs.iter().map(|s| stacked.create_vms(s, 1))).await;
    for r in &results {
        let err = r.as_ref().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert_eq!(err.site().map(|s| s.as_str()), Some("slow"));
        assert!(err.resource().is_some_and(|k| k.starts_with("stack-")));
        assert!(
            err.to_string().contains("gave up after 4 attempts"),
            "{err}"
        );
    }
    assert_eq!(probe.count(), 12, "3 calls x 4 attempts");
    assert!(probe.max_in_flight() <= 2);
    let starts: Vec<Instant> = probe.calls().iter().map(|c| c.start).collect();
    assert_rate_respected(&starts, 2.0, 1);
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 9);
    assert!(events
        .iter()
        .all(|(k, m)| *k == ErrorKind::Timeout && m == "create_vms"));
}

#[tokio::test(start_paused = true)]
async fn ambiguous_create_through_the_stack_yields_one_set_of_vms() {
    let mem = Arc::new(MemoryProvider::new("hokkaido"));
    mem.fail_next(Method::Create, ErrorKind::Unavailable, FaultTiming::After);
    mem.fail_next(Method::Create, ErrorKind::RateLimited, FaultTiming::Before);
    let stacked = stack(mem.clone(), &site_policy()).unwrap().with_seed(11);
    let ids = stacked.create_vms(&spec("once"), 5).await.unwrap();
    assert_eq!(ids.len(), 5);
    assert_eq!(mem.calls(Method::Create), 3);
    assert_eq!(mem.alive_with_tag(TAG_KEY, "once").len(), 5);
    assert_eq!(mem.all_vms().len(), 5);
}

#[tokio::test(start_paused = true)]
async fn the_stack_passes_the_conformance_suite_over_arc_dyn() {
    let mem: Arc<dyn CloudProvider> = Arc::new(
        MemoryProvider::builder("stacked")
            .offering("Small", 1, 1024)
            .boot_time(Duration::from_millis(30), Duration::from_millis(20))
            .build(),
    );
    let stacked: Arc<dyn CloudProvider> =
        Arc::new(stack(mem, &SitePolicy::default()).unwrap().with_seed(1));
    testkit::run_all(&*stacked, &Fixture::new("Small")).await;
    assert!(stacked
        .list_vms(&VmFilter::default())
        .await
        .unwrap()
        .is_empty());
    let debug = format!("{stacked:?}");
    for layer in ["Retry", "RateLimit", "Timeout", "MemoryProvider"] {
        assert!(debug.contains(layer), "{debug}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_suite_passes_with_random_faults_below_the_stack() {
    let mem = Arc::new(
        MemoryProvider::builder("flaky")
            .offering("Small", 1, 1024)
            .seed(99)
            .build(),
    );
    mem.set_error_rate(0.2);
    let policy = SitePolicy {
        retry: RetryPolicy {
            max_attempts: 12,
            ..RetryPolicy::default()
        },
        ..SitePolicy::default()
    };
    let retries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r = retries.clone();
    let stacked = stack(mem.clone(), &policy)
        .unwrap()
        .with_seed(2)
        .on_retry(Arc::new(move |_: &RetryEvent<'_>| {
            r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }));
    testkit::create_list_delete(&stacked, &Fixture::new("Small")).await;
    testkit::retried_create_is_idempotent(&stacked, &Fixture::new("Small")).await;
    assert!(mem.all_vms().iter().all(|v| !v.state.is_alive()));
    assert!(
        retries.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "faults were injected"
    );
}

#[test]
fn an_invalid_policy_is_a_config_error() {
    let bad = SitePolicy {
        rate_limit: RateLimitPolicy {
            max_concurrency: Some(0),
            ..RateLimitPolicy::default()
        },
        ..SitePolicy::default()
    };
    let err = stack(MemoryProvider::new("tokyo"), &bad).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(err.site().map(|s| s.as_str()), Some("tokyo"));
}

/// Stops a memory VM from outside, as an operator would.
struct ForceStop(Arc<MemoryProvider>);

#[async_trait::async_trait]
impl testkit::StopVm for ForceStop {
    async fn stop(&self, id: &intercloud_core::VmId) {
        self.0.force_state(id, intercloud_core::VmState::Stopped);
    }
}

#[tokio::test(start_paused = true)]
async fn the_stack_forwards_start_vm_and_its_capability() {
    let mem = Arc::new(
        MemoryProvider::builder("stacked")
            .boot_time(Duration::from_millis(30), Duration::ZERO)
            .build(),
    );
    let stacked: Arc<dyn CloudProvider> = Arc::new(
        stack(
            mem.clone() as Arc<dyn CloudProvider>,
            &SitePolicy::default(),
        )
        .unwrap()
        .with_seed(1),
    );
    assert!(stacked.capabilities().start_vm);
    let stop = ForceStop(mem.clone());
    testkit::stopped_vm_starts_again(&*stacked, &Fixture::new("any"), Some(&stop)).await;
    assert_eq!(
        mem.calls(Method::Start),
        5,
        "every start reached the provider once"
    );
}
