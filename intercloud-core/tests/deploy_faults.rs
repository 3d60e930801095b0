//! Fault tests: each ends with zero orphaned resources (every site listed) and no
//! duplicate VM.

mod deploy_support;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use deploy_support::*;
use intercloud_core::deploy::{DeployResult, Deployer, EventKind, FailurePolicy, MemoryJournal};
use intercloud_core::{CloudProvider, ErrorKind, FaultTiming, Method};

#[tokio::test(start_paused = true)]
async fn five_percent_random_errors_still_deploy_exactly_and_destroy_everything() {
    for seed in 1..=6u64 {
        let (ps, topo) = federation(&[site("a", true), site("b", false), site("c", true)], seed);
        for p in &ps {
            p.set_error_rate(0.05);
        }
        // Plus ambiguous failures: the create happened, the reply was lost.
        ps[0].fail_next(Method::Create, ErrorKind::Unavailable, FaultTiming::After);
        ps[1].fail_next(Method::Create, ErrorKind::Timeout, FaultTiming::After);
        let req = request(
            "noisy",
            vec![group("master", 1, None), group("worker", 29, None)],
        );
        let pl = placement(&[
            ("master", "a", 1),
            ("worker", "a", 10),
            ("worker", "b", 9),
            ("worker", "c", 10),
        ]);
        let mut d = deployer(&ps);
        let mut rx = d.subscribe();
        let plan = d.plan(&req, &topo, &pl).unwrap();
        let journal = MemoryJournal::new();
        let report = d
            .deploy(plan, FailurePolicy::AllOrNothing, &journal)
            .await
            .unwrap();
        assert_eq!(report.result, DeployResult::Ok, "seed {seed}: {report:#?}");
        assert_exact(&ps, &report);
        let ev = drain(&mut rx);
        assert!(count(&ev, |k| matches!(k, EventKind::Retry { .. })) > 0);
        let gone = d.destroy("noisy", Some(&journal)).await.unwrap();
        assert_eq!(gone.remaining, 0, "seed {seed}");
        assert_none_left(&ps, "noisy");
    }
}

#[tokio::test(start_paused = true)]
async fn a_site_failing_every_create_mid_deploy_has_its_nodes_moved() {
    for kind in [ErrorKind::Unavailable, ErrorKind::QuotaExceeded] {
        let (ps, topo) = federation(&[site("a", true), site("b", false), site("c", true)], 7);
        let b = Arc::new(FailCreatesAfter {
            inner: ps[1].clone(),
            after: 3,
            done: AtomicU64::new(0),
            kind,
        });
        let providers: Vec<Arc<dyn CloudProvider>> = vec![ps[0].clone(), b, ps[2].clone()];
        let d = Deployer::new(providers).with_options(options());
        let req = request("movers", vec![group("worker", 12, None)]);
        let pl = placement(&[("worker", "a", 4), ("worker", "b", 6), ("worker", "c", 2)]);
        let plan = d.plan(&req, &topo, &pl).unwrap();
        let report = d
            .deploy(plan, FailurePolicy::AllOrNothing, &MemoryJournal::new())
            .await
            .unwrap();
        assert_eq!(report.result, DeployResult::Ok, "{kind}: {report:#?}");
        assert_exact(&ps, &report);
        assert_eq!(report.moved.len(), 3, "{kind}: {:?}", report.moved);
        assert!(report
            .moved
            .iter()
            .all(|m| m.from.as_str() == "b" && m.to.as_str() != "b"));
        assert_eq!(
            ps[1].alive_with_tag("intercloud-cluster", "movers").len(),
            3
        );
        d.destroy("movers", None).await.unwrap();
        assert_none_left(&ps, "movers");
    }
}

#[tokio::test(start_paused = true)]
async fn a_pinned_group_on_a_failing_site_rolls_back_everything() {
    let (ps, topo) = federation(&[site("a", true), site("b", false)], 8);
    let b = Arc::new(FailCreatesAfter {
        inner: ps[1].clone(),
        after: 2,
        done: AtomicU64::new(0),
        kind: ErrorKind::PermissionDenied,
    });
    let providers: Vec<Arc<dyn CloudProvider>> = vec![ps[0].clone(), b];
    let mut d = Deployer::new(providers).with_options(options());
    let mut rx = d.subscribe();
    let req = request(
        "pinned",
        vec![group("master", 1, None), group("worker", 5, Some(&["b"]))],
    );
    let pl = placement(&[("master", "a", 1), ("worker", "b", 5)]);
    let plan = d.plan(&req, &topo, &pl).unwrap();
    let report = d
        .deploy(plan, FailurePolicy::AllOrNothing, &MemoryJournal::new())
        .await
        .unwrap();
    assert_eq!(report.result, DeployResult::RolledBack);
    assert_eq!(report.deleted, 3, "master + the 2 workers b created");
    assert_none_left(&ps, "pinned");
    let ev = drain(&mut rx);
    assert_eq!(
        count(&ev, |k| matches!(k, EventKind::RolledBack { deleted: 3 })),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limit_answers_are_retried_without_duplicates() {
    let (ps, topo) = federation(&[site("a", true), site("b", false)], 9);
    for _ in 0..3 {
        ps[0].fail_next(Method::Create, ErrorKind::RateLimited, FaultTiming::Before);
        ps[1].fail_next(Method::Create, ErrorKind::RateLimited, FaultTiming::Before);
    }
    for _ in 0..4 {
        ps[0].fail_next(Method::List, ErrorKind::RateLimited, FaultTiming::Before);
        ps[1].fail_next(Method::Delete, ErrorKind::RateLimited, FaultTiming::Before);
    }
    let req = request("throttled", vec![group("worker", 8, None)]);
    let pl = placement(&[("worker", "a", 4), ("worker", "b", 4)]);
    let mut d = deployer(&ps);
    let mut rx = d.subscribe();
    let plan = d.plan(&req, &topo, &pl).unwrap();
    let report = d
        .deploy(plan, FailurePolicy::AllOrNothing, &MemoryJournal::new())
        .await
        .unwrap();
    assert_eq!(report.result, DeployResult::Ok);
    assert!(report.moved.is_empty(), "throttling is no reason to move");
    assert_exact(&ps, &report);
    let ev = drain(&mut rx);
    assert!(count(&ev, |k| matches!(k, EventKind::Retry { .. })) >= 7);
    let gone = d.destroy("throttled", None).await.unwrap();
    assert_eq!((gone.deleted, gone.remaining), (8, 0));
    assert_none_left(&ps, "throttled");
}

#[tokio::test(start_paused = true)]
async fn capacity_at_one_site_replaces_within_pinning_and_capacity() {
    let mut defs = [site("a", true), site("b", false), site("c", true)];
    defs[2].capacity = 1; // the topology says c hosts at most one S
    let (ps, topo) = federation(&defs, 10);
    ps[1].set_capacity(Some(2));
    let req = request("full", vec![group("worker", 6, Some(&["b", "c"]))]);
    let pl = placement(&[("worker", "b", 5), ("worker", "c", 1)]);
    let d = deployer(&ps);
    let plan = d.plan(&req, &topo, &pl).unwrap();
    let report = d
        .deploy(
            plan,
            FailurePolicy::BestEffort { min_fraction: 0.5 },
            &MemoryJournal::new(),
        )
        .await
        .unwrap();
    // b holds 2, c is full by the topology, a is not allowed: 3 nodes fail.
    assert_eq!(report.result, DeployResult::Partial, "{report:#?}");
    assert_eq!(report.nodes.iter().filter(|n| n.error.is_some()).count(), 3);
    assert!(alive(&ps, "full").iter().all(|v| v.site.as_str() != "a"));
    assert_eq!(alive(&ps, "full").len(), 3);
    d.destroy("full", None).await.unwrap();
    assert_none_left(&ps, "full");
}

#[tokio::test(start_paused = true)]
async fn without_idempotent_create_an_ambiguous_create_is_adopted_not_repeated() {
    let a = Arc::new(
        intercloud_core::MemoryProvider::builder("a")
            .offering("Small", 1, 1024)
            .boot_time(std::time::Duration::from_secs(5), std::time::Duration::ZERO)
            .batch(true, 50)
            .idempotent_create(false)
            .build(),
    );
    let (_, topo) = federation(&[site("a", true)], 11);
    // The create takes effect but its reply is lost.
    a.fail_next(Method::Create, ErrorKind::Unavailable, FaultTiming::After);
    let ps = vec![a.clone()];
    let req = request("ambiguous", vec![group("worker", 5, None)]);
    let pl = placement(&[("worker", "a", 5)]);
    let d = deployer(&ps);
    let report = d
        .deploy(
            d.plan(&req, &topo, &pl).unwrap(),
            FailurePolicy::AllOrNothing,
            &MemoryJournal::new(),
        )
        .await
        .unwrap();
    assert_eq!(report.result, DeployResult::Ok);
    assert_exact(&ps, &report);
    assert_eq!(
        a.calls(Method::Create),
        1,
        "adopted from the listing, not created again"
    );
    assert_eq!(a.all_vms().len(), 5);
}

/// A site behind `wrap::Retry` whose creates keep failing temporarily: the wrapper's
/// spent error is final for the executor, which moves the nodes at once instead of
/// calling the wrapper again (`max_create_attempts` × the wrapper's attempts).
#[tokio::test(start_paused = true)]
async fn a_create_whose_retries_are_spent_is_not_retried_by_the_executor() {
    use intercloud_core::wrap::{Retry, RetryPolicy};
    use intercloud_core::ErrorClass;
    use std::time::Duration;

    let (ps, topo) = federation(&[site("a", true), site("b", true)], 12);
    for _ in 0..100 {
        ps[1].fail_next(Method::Create, ErrorKind::Unavailable, FaultTiming::Before);
    }
    let policy = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(100),
        rate_limited_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(400),
        max_elapsed: Duration::from_secs(30),
    };
    let b = Arc::new(Retry::new(ps[1].clone(), policy).with_seed(5));
    let providers: Vec<Arc<dyn CloudProvider>> = vec![ps[0].clone(), b];
    let mut d = Deployer::new(providers).with_options(options());
    let mut rx = d.subscribe();
    let req = request("spent", vec![group("worker", 4, None)]);
    let pl = placement(&[("worker", "a", 2), ("worker", "b", 2)]);
    let plan = d.plan(&req, &topo, &pl).unwrap();
    let report = d
        .deploy(plan, FailurePolicy::AllOrNothing, &MemoryJournal::new())
        .await
        .unwrap();
    assert_eq!(report.result, DeployResult::Ok, "{report:#?}");
    assert_exact(&ps, &report);
    assert_eq!(report.moved.len(), 2, "{:?}", report.moved);
    // One executor attempt: exactly the wrapper's three calls, never more.
    assert_eq!(ps[1].calls(Method::Create), 3);
    let ev = drain(&mut rx);
    assert_eq!(
        count(
            &ev,
            |k| matches!(k, EventKind::Retry { step, .. } if step.starts_with("create"))
        ),
        0,
        "the executor announced no retry of its own"
    );
    let failed: Vec<_> = ev
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StepFailed { step, error } if step.starts_with("create") => Some(error),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].retries_spent, "{:?}", failed[0]);
    assert_eq!(failed[0].class, ErrorClass::Transient);
    assert_eq!(failed[0].kind, ErrorKind::Unavailable);
    assert!(failed[0].to_string().contains("gave up after 3 attempts"));
    d.destroy("spent", None).await.unwrap();
    assert_none_left(&ps, "spent");
}

/// A site behind `wrap::Retry` that stops answering mid-deploy: the first listing
/// whose retries are spent makes it unreachable (not `max_list_failures` of them),
/// its nodes move, and its VMs are deleted once it answers again.
#[tokio::test(start_paused = true)]
async fn a_listing_whose_retries_are_spent_makes_the_site_unreachable_at_once() {
    use intercloud_core::wrap::{Retry, RetryPolicy};
    use std::time::Duration;

    let (ps, topo) = federation(&[site("a", true), site("b", true)], 13);
    let policy = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(100),
        rate_limited_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(100),
        max_elapsed: Duration::from_secs(30),
    };
    let b = Arc::new(Retry::new(ps[1].clone(), policy).with_seed(2));
    let providers: Vec<Arc<dyn CloudProvider>> = vec![ps[0].clone(), b];
    let mut d = Deployer::new(providers).with_options(options());
    let mut rx = d.subscribe();
    let req = request("listing", vec![group("worker", 4, None)]);
    let pl = placement(&[("worker", "a", 2), ("worker", "b", 2)]);
    let plan = d.plan(&req, &topo, &pl).unwrap();
    // b's creates go through; then it fails every call until 60 s.
    let down = ps[1].clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        down.set_outage(true);
        tokio::time::sleep(Duration::from_secs(59)).await;
        down.set_outage(false);
    });
    let report = d
        .deploy(plan, FailurePolicy::AllOrNothing, &MemoryJournal::new())
        .await
        .unwrap();
    // Every node runs on a; b's two VMs are leftovers until it answers: partial.
    assert_eq!(report.result, DeployResult::Partial, "{report:#?}");
    assert!(report
        .nodes
        .iter()
        .all(|n| n.site.as_str() == "a" && n.error.is_none()));
    assert_eq!(report.moved.len(), 2, "{:?}", report.moved);
    assert_eq!(report.leftovers.get("b"), Some(&2));
    assert!(
        report.unreachable["b"].contains("1 failed listings"),
        "{:?}",
        report.unreachable
    );
    let ev = drain(&mut rx);
    let on_b =
        |e: &&intercloud_core::deploy::Event| e.site.as_ref().is_some_and(|s| s.as_str() == "b");
    let unreachable = ev
        .iter()
        .filter(on_b)
        .position(|e| matches!(e.kind, EventKind::SiteUnreachable { .. }))
        .expect("b is unreachable");
    let b_events: Vec<_> = ev.iter().filter(on_b).collect();
    let failed_lists = b_events[..unreachable]
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Retry { step, .. } if step == "list"))
        .count();
    assert_eq!(
        failed_lists, 1,
        "one spent listing is enough: {b_events:#?}"
    );
    match &b_events[unreachable].kind {
        EventKind::SiteUnreachable { error } => {
            assert!(error.retries_spent, "{error:?}");
            assert_eq!(error.class, intercloud_core::ErrorClass::Transient);
        }
        other => panic!("{other:?}"),
    }
    tokio::time::sleep(Duration::from_secs(61)).await; // b answers again
    d.destroy("listing", None).await.unwrap();
    assert_none_left(&ps, "listing");
}

/// The check before a deployment does not retry a listing whose retries a
/// `wrap::Retry` spent: it fails at once, naming the site, with nothing created.
#[tokio::test(start_paused = true)]
async fn the_site_check_does_not_retry_a_spent_listing() {
    use intercloud_core::wrap::{Retry, RetryPolicy};
    use std::time::Duration;

    let (ps, topo) = federation(&[site("a", true), site("b", true)], 14);
    ps[1].set_outage(true);
    let policy = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(100),
        rate_limited_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(100),
        max_elapsed: Duration::from_secs(30),
    };
    let b = Arc::new(Retry::new(ps[1].clone(), policy).with_seed(4));
    let providers: Vec<Arc<dyn CloudProvider>> = vec![ps[0].clone(), b];
    let d = Deployer::new(providers).with_options(options());
    let req = request("checked", vec![group("worker", 2, None)]);
    let pl = placement(&[("worker", "a", 1), ("worker", "b", 1)]);
    let plan = d.plan(&req, &topo, &pl).unwrap();
    let t0 = tokio::time::Instant::now();
    let err = d
        .deploy(plan, FailurePolicy::AllOrNothing, &MemoryJournal::new())
        .await
        .unwrap_err();
    assert_eq!(err.site().map(|s| s.as_str()), Some("b"), "{err}");
    assert!(err.retries_spent(), "{err:?}");
    assert_eq!(ps[1].calls(Method::List), 3, "the wrapper's attempts only");
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    assert!(alive(&ps, "checked").is_empty());
}
