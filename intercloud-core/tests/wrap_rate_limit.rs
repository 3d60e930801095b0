//! The rate limiter under tokio's virtual time: never above its rate, never above its
//! concurrency cap, fair, and cancellation-safe.

mod wrap_support;

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use intercloud_core::wrap::{RateLimit, RateLimitPolicy};
use intercloud_core::{CloudProvider, ErrorKind, MemoryProvider, VmFilter, VmId};
use tokio::time::Instant;
use wrap_support::{assert_rate_respected, spec, Probe};

fn policy(rate: Option<f64>, burst: u32, conc: Option<usize>) -> RateLimitPolicy {
    RateLimitPolicy {
        calls_per_second: rate,
        burst,
        max_concurrency: conc,
    }
}

/// One call of each method in turn, by caller number.
async fn call_some_method(p: &dyn CloudProvider, i: usize) {
    let _ = match i % 5 {
        0 => p.offerings().await.map(drop),
        1 => p.capacity().await.map(drop),
        2 => p.create_vms(&spec(&format!("k-{i}")), 1).await.map(drop),
        3 => p
            .list_vms(&VmFilter::cluster(format!("c{i}")))
            .await
            .map(drop),
        _ => p.delete_vm(&VmId::new(i.to_string())).await,
    };
}

#[tokio::test(start_paused = true)]
async fn rate_is_never_exceeded_over_any_window_with_many_callers() {
    // (rate, burst, concurrency, call time, callers)
    let cases = [
        (5.0, 3, None, Duration::from_millis(10), 60),
        (10.0, 1, Some(4), Duration::from_millis(250), 80),
        (2.5, 10, Some(64), Duration::from_millis(1), 50),
        (100.0, 5, Some(8), Duration::from_millis(30), 300),
    ];
    for (rate, burst, conc, call_time, callers) in cases {
        let probe = Arc::new(Probe::new("hokkaido").delay(call_time));
        let limited = RateLimit::new(probe.clone(), policy(Some(rate), burst, conc)).unwrap();
        let t0 = Instant::now();
        join_all((0..callers).map(|i| call_some_method(&limited, i))).await;

        let calls = probe.calls();
        assert_eq!(
            calls.len(),
            callers,
            "every method counts and every call ran"
        );
        let starts: Vec<Instant> = calls.iter().map(|c| c.start).collect();
        assert_rate_respected(&starts, rate, burst);
        if let Some(cap) = conc {
            assert!(probe.max_in_flight() <= cap);
        }
        // Not stricter than asked: with enough concurrency the last call starts when
        // the bucket allows it, (callers - burst) intervals after the first.
        if conc.is_none_or(|c| c as f64 >= rate * call_time.as_secs_f64() + 1.0) {
            let last = *starts.iter().max().unwrap();
            let expected = (callers - burst as usize) as f64 / rate;
            let took = (last - t0).as_secs_f64();
            assert!(
                (took - expected).abs() < 0.01,
                "rate {rate}: last call at {took:.3} s, expected {expected:.3} s"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn callers_arriving_over_time_never_exceed_the_rate() {
    let (rate, burst) = (4.0, 4);
    let probe = Arc::new(Probe::new("nii").delay(Duration::from_millis(50)));
    let limited =
        Arc::new(RateLimit::new(probe.clone(), policy(Some(rate), burst, Some(3))).unwrap());
    let mut tasks = Vec::new();
    // Waves of callers with quiet gaps, so the bucket refills between them.
    for i in 0..120u64 {
        let limited = limited.clone();
        let at = Duration::from_millis((i / 10) * 1700 + (i % 10) * 37);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(at).await;
            call_some_method(&*limited, i as usize).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let starts: Vec<Instant> = probe.calls().iter().map(|c| c.start).collect();
    assert_eq!(starts.len(), 120);
    assert_rate_respected(&starts, rate, burst);
    assert!(probe.max_in_flight() <= 3);
}

#[tokio::test(start_paused = true)]
async fn concurrency_cap_is_never_exceeded_and_is_reached() {
    for cap in [1, 4, 16] {
        let probe = Arc::new(Probe::new("tokyo").delay(Duration::from_millis(200)));
        let limited = RateLimit::new(probe.clone(), policy(None, 1, Some(cap))).unwrap();
        let t0 = Instant::now();
        join_all((0..50).map(|i| call_some_method(&limited, i))).await;
        assert_eq!(probe.count(), 50);
        assert_eq!(probe.max_in_flight(), cap, "cap {cap}");
        // Slots are reused at once: ceil(50 / cap) rounds of 200 ms.
        let rounds = 50usize.div_ceil(cap) as u32;
        assert_eq!(t0.elapsed(), Duration::from_millis(200) * rounds);
    }
}

#[tokio::test(start_paused = true)]
async fn memory_provider_behind_the_limiter_keeps_its_contract() {
    let mem = Arc::new(MemoryProvider::new("mem"));
    let limited = RateLimit::new(mem.clone(), policy(Some(10.0), 2, Some(2))).unwrap();
    let t0 = Instant::now();
    let specs: Vec<_> = (0..12).map(|i| spec(&format!("key-{i}"))).collect();
    let results = join_all(specs.iter().map(|s| limited.create_vms(s, 3))).await;
    assert!(results
        .iter()
        .all(|r| r.as_ref().map(Vec::len).ok() == Some(3)));
    assert_eq!(mem.all_vms().len(), 36);
    // 12 calls, burst 2, 10/s: the last starts 1 s after the first.
    assert_eq!(t0.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn site_and_capabilities_neither_wait_nor_take_tokens() {
    let probe = Arc::new(Probe::new("s"));
    let limited = RateLimit::new(probe.clone(), policy(Some(1.0), 3, Some(1))).unwrap();
    let t0 = Instant::now();
    for _ in 0..100 {
        assert_eq!(limited.site().as_str(), "s");
        let _ = limited.capabilities();
    }
    // The full burst is still there.
    for i in 0..3 {
        call_some_method(&limited, i).await;
    }
    assert_eq!(t0.elapsed(), Duration::ZERO);
    call_some_method(&limited, 3).await;
    assert_eq!(t0.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_in_arrival_order() {
    let probe = Arc::new(Probe::new("fifo").delay(Duration::from_millis(5)));
    let limited = Arc::new(RateLimit::new(probe.clone(), policy(Some(20.0), 1, Some(2))).unwrap());
    let mut tasks = Vec::new();
    for i in 0..30 {
        let limited = limited.clone();
        tasks.push(tokio::spawn(async move {
            limited.delete_vm(&VmId::new(i.to_string())).await
        }));
        // Let the task enqueue before the next one arrives.
        tokio::task::yield_now().await;
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let order: Vec<String> = probe.calls().into_iter().map(|c| c.label).collect();
    let expected: Vec<String> = (0..30).map(|i: i32| i.to_string()).collect();
    assert_eq!(order, expected);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_gives_back_its_token() {
    let probe = Arc::new(Probe::new("cancel"));
    let limited = RateLimit::new(probe.clone(), policy(Some(1.0), 1, None)).unwrap();
    let t0 = Instant::now();
    call_some_method(&limited, 0).await; // takes the only token at t0
                                         // A waiter that would run at t0 + 1 s gives up at t0 + 0.5 s.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(500),
        limited.list_vms(&VmFilter::default()),
    )
    .await;
    assert!(gave_up.is_err());
    assert_eq!(probe.count(), 1);
    // The next caller gets the token the cancelled one never took: at t0 + 1 s.
    limited.list_vms(&VmFilter::default()).await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_secs(1));
    assert_eq!(probe.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn cancelled_waiters_and_calls_give_back_their_slots() {
    let probe = Arc::new(Probe::new("slots").delay(Duration::from_secs(1)));
    let limited = Arc::new(RateLimit::new(probe.clone(), policy(None, 1, Some(2))).unwrap());
    // Two callers cancelled while in flight (at 300 ms), eight while waiting for a
    // slot (at 200 ms).
    let cancelled = join_all((0..10).map(|i| {
        let limit = Duration::from_millis(if i < 2 { 300 } else { 200 });
        tokio::time::timeout(limit, call_some_method(&*limited, i))
    }))
    .await;
    assert!(cancelled.iter().all(Result::is_err));
    assert_eq!(probe.count(), 2, "only two got a slot");
    // Both slots are free again: two calls run side by side, a third waits.
    let t0 = Instant::now();
    join_all((0..3).map(|i| call_some_method(&*limited, i))).await;
    assert_eq!(probe.max_in_flight(), 2);
    assert_eq!(t0.elapsed(), Duration::from_secs(2));
    assert_eq!(probe.count(), 5);
}

#[tokio::test(start_paused = true)]
async fn errors_pass_through_and_still_count() {
    let probe = Arc::new(Probe::new("e").always_fail(ErrorKind::Unavailable));
    let limited = RateLimit::new(probe.clone(), policy(Some(2.0), 1, Some(1))).unwrap();
    let t0 = Instant::now();
    for _ in 0..3 {
        let e = limited.capacity().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
    }
    assert_eq!(t0.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn works_over_arc_dyn_provider() {
    let p: Arc<dyn CloudProvider> = Arc::new(MemoryProvider::new("dyn"));
    let limited: Arc<dyn CloudProvider> =
        Arc::new(RateLimit::new(p, RateLimitPolicy::default()).unwrap());
    let ids = limited.create_vms(&spec("dyn-key"), 2).await.unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(limited.site().as_str(), "dyn");
    assert!(format!("{limited:?}").contains("RateLimit"));
}

#[test]
fn an_invalid_policy_is_refused_naming_the_site() {
    let e = RateLimit::new(MemoryProvider::new("osaka"), policy(Some(-1.0), 1, None)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("osaka"), "{e}");
}
