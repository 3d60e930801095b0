//! A deployment acts only on what it made: two deployments of one cluster name never
//! touch each other's VMs; a site that fails its check stops a deploy before anything
//! is created; the clouds' tags alone are enough to find and remove a deployment
//! whose journal is lost; a journal cut short is resumed by adopting what exists.

mod deploy_support;

use std::collections::BTreeSet;
use std::sync::Arc;

use deploy_support::*;
use intercloud_core::deploy::{
    DeployResult, FailurePolicy, FileJournal, Journal, MemoryJournal, ResumeMode,
    UNTAGGED_DEPLOYMENT,
};
use intercloud_core::{
    CloudProvider, ErrorKind, FaultTiming, IdempotencyKey, MemoryProvider, Method, VmId, VmSpec,
    TAG_DEPLOYMENT,
};

fn two_sites() -> (Vec<Arc<MemoryProvider>>, intercloud_core::Topology) {
    federation(&[site("a", true), site("b", false)], 7)
}

fn ids(ps: &[Arc<MemoryProvider>], cluster: &str) -> BTreeSet<(String, VmId)> {
    alive(ps, cluster)
        .into_iter()
        .map(|v| (v.site.as_str().to_owned(), v.id))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_second_deployment_of_a_name_is_refused_and_never_deletes_the_first() {
    let (ps, topo) = two_sites();
    let req = request("same", vec![group("worker", 4, None)]);
    let pl = placement(&[("worker", "a", 2), ("worker", "b", 2)]);

    // Deployment A (its own state folder / journal).
    let a = deployer(&ps);
    let ja = MemoryJournal::new();
    let plan_a = a.plan(&req, &topo, &pl).unwrap();
    let dep_a = plan_a.deployment_id.clone();
    let report = a
        .deploy(plan_a, FailurePolicy::AllOrNothing, &ja)
        .await
        .unwrap();
    assert_eq!(report.result, DeployResult::Ok);
    let first = ids(&ps, "same");
    assert_eq!(first.len(), 4);
    for vm in alive(&ps, "same") {
        assert_eq!(vm.tags.get(TAG_DEPLOYMENT), Some(&dep_a), "{vm:?}");
    }

    // Deployment B of the same name from another state folder: refused, naming A.
    let b = deployer(&ps);
    let jb = MemoryJournal::new();
    let plan_b = b.plan(&req, &topo, &pl).unwrap();
    let e = b
        .deploy(plan_b, FailurePolicy::AllOrNothing, &jb)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&dep_a), "names the other deployment: {msg}");
    assert!(msg.contains("--from-clouds"), "names the command: {msg}");
    assert!(jb.records().unwrap().is_empty(), "B journaled nothing");
    assert_eq!(ids(&ps, "same"), first, "B created nothing");

    // B's `down` (its journal is empty: it made nothing) deletes nothing.
    let gone = b.destroy("same", Some(&jb)).await.unwrap();
    assert_eq!((gone.deleted, gone.remaining), (0, 0));
    assert_eq!(ids(&ps, "same"), first, "B's down kept A's VMs");

    // A VM of the same cluster name made by a third deployment survives A's destroy.
    let mut spec = VmSpec::new(
        "same",
        "worker",
        IdempotencyKey::new("same-worker-intruder").unwrap(),
        "S",
        "Small",
    );
    spec.extra_tags
        .insert(TAG_DEPLOYMENT.into(), "d-someone-else".into());
    let intruder = ps[0].create_vms(&spec, 1).await.unwrap();
    let gone = a.destroy("same", Some(&ja)).await.unwrap();
    assert!(gone.is_clean(), "{gone:?}");
    assert_eq!(gone.deleted, 4);
    assert_eq!(
        ids(&ps, "same")
            .into_iter()
            .map(|(_, id)| id)
            .collect::<Vec<_>>(),
        intruder,
        "only the third deployment's VM is left"
    );
}

#[tokio::test(start_paused = true)]
async fn a_site_with_wrong_credentials_stops_the_deploy_before_anything_is_created() {
    let (ps, topo) = federation(&[site("a", true), site("b", false), site("c", true)], 3);
    ps[1].fail_next(
        Method::List,
        ErrorKind::Unauthenticated,
        FaultTiming::Before,
    );
    let req = request("creds", vec![group("worker", 6, None)]);
    let pl = placement(&[("worker", "a", 2), ("worker", "b", 2), ("worker", "c", 2)]);
    let d = deployer(&ps);
    let journal = MemoryJournal::new();
    let plan = d.plan(&req, &topo, &pl).unwrap();
    let e = d
        .deploy(plan, FailurePolicy::AllOrNothing, &journal)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert_eq!(e.site().map(|s| s.as_str()), Some("b"), "{e}");
    assert!(journal.records().unwrap().is_empty());
    for p in &ps {
        assert_eq!(
            p.calls(Method::Create),
            0,
            "{} was asked to create",
            p.site()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_site_the_plan_does_not_use_may_fail_its_check() {
    let (ps, topo) = federation(&[site("a", true), site("b", false), site("c", true)], 3);
    ps[2].set_outage(true);
    let req = request("unused", vec![group("worker", 4, None)]);
    let pl = placement(&[("worker", "a", 2), ("worker", "b", 2)]);
    let d = deployer(&ps);
    let plan = d.plan(&req, &topo, &pl).unwrap();
    let report = d
        .deploy(plan, FailurePolicy::AllOrNothing, &MemoryJournal::new())
        .await
        .unwrap();
    assert_eq!(report.result, DeployResult::Ok);
}

#[tokio::test(start_paused = true)]
async fn the_clouds_tags_alone_list_and_remove_one_deployment() {
    let (ps, topo) = two_sites();
    let req = request("lost", vec![group("worker", 3, None)]);
    let pl = placement(&[("worker", "a", 2), ("worker", "b", 1)]);
    let d = deployer(&ps);
    let plan = d.plan(&req, &topo, &pl).unwrap();
    let dep = plan.deployment_id.clone();
    d.deploy(plan, FailurePolicy::AllOrNothing, &MemoryJournal::new())
        .await
        .unwrap();
    // VMs of the name without a deployment tag (an older intercloud).
    let spec = VmSpec::new(
        "lost",
        "worker",
        IdempotencyKey::new("lost-worker-old").unwrap(),
        "S",
        "Small",
    );
    ps[0].create_vms(&spec, 2).await.unwrap();

    // The journal is gone: the census still sees both deployments.
    let census = d.census("lost", std::time::Duration::from_secs(5)).await;
    assert_eq!(census.len(), 5);
    let by = census.by_deployment();
    assert_eq!(by.get(dep.as_str()), Some(&3), "{by:?}");
    assert_eq!(by.get(UNTAGGED_DEPLOYMENT), Some(&2), "{by:?}");
    assert!(census.unverified().is_empty());

    // Removing one deployment leaves the other.
    let gone = d.destroy_tagged("lost", Some(&dep)).await.unwrap();
    assert!(gone.is_clean(), "{gone:?}");
    assert_eq!(gone.deleted, 3);
    assert_eq!(alive(&ps, "lost").len(), 2);
    // The whole name.
    let gone = d.destroy_tagged("lost", None).await.unwrap();
    assert_eq!(gone.deleted, 2);
    assert_none_left(&ps, "lost");
}

#[tokio::test(start_paused = true)]
async fn down_with_an_unreachable_site_is_bounded_and_names_it() {
    let (ps, topo) = two_sites();
    let req = request("island", vec![group("worker", 4, None)]);
    let pl = placement(&[("worker", "a", 2), ("worker", "b", 2)]);
    let d = deployer(&ps);
    let journal = MemoryJournal::new();
    let plan = d.plan(&req, &topo, &pl).unwrap();
    d.deploy(plan, FailurePolicy::AllOrNothing, &journal)
        .await
        .unwrap();
    ps[1].set_outage(true);
    let started = tokio::time::Instant::now();
    let gone = d.destroy("island", Some(&journal)).await.unwrap();
    let took = started.elapsed();
    assert_eq!(gone.deleted, 2);
    assert_eq!(gone.remaining, 0, "no count is invented: {gone:?}");
    assert!(!gone.is_clean());
    assert_eq!(
        gone.unverified
            .keys()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
        ["b"]
    );
    // max_list_failures (6) listings, a poll_min (2 s) apart, not the 300 s deadline.
    assert!(took < std::time::Duration::from_secs(60), "took {took:?}");
    // The site answers again: the second `down` finishes the job.
    ps[1].set_outage(false);
    let gone = d.destroy("island", Some(&journal)).await.unwrap();
    assert!(gone.is_clean(), "{gone:?}");
    assert_eq!(gone.deleted, 2);
    assert_none_left(&ps, "island");
}

/// Cuts a journal file inside the record that starts after `keep` whole lines.
fn cut_inside_record(path: &std::path::Path, keep: usize) {
    let text = std::fs::read(path).unwrap();
    let mut ends = text
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1);
    let start = ends.nth(keep.saturating_sub(1)).unwrap_or(0);
    let next_end = text[start..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(text.len(), |p| start + p);
    let cut = start + (next_end - start) / 2;
    std::fs::write(path, &text[..cut]).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_journal_cut_inside_a_record_is_resumed_by_adopting_what_exists() {
    for keep in [1usize, 2, 3, 4, 5] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.log");
        let (ps, topo) = federation(&[site("a", true), site("b", false), site("c", false)], 11);
        let req = request(
            "cut",
            vec![group("master", 1, None), group("worker", 8, None)],
        );
        let pl = placement(&[
            ("master", "a", 1),
            ("worker", "a", 2),
            ("worker", "b", 3),
            ("worker", "c", 3),
        ]);
        let d = deployer(&ps);
        let plan = d.plan(&req, &topo, &pl).unwrap();
        let report = d
            .deploy(
                plan,
                FailurePolicy::AllOrNothing,
                &FileJournal::open(&path).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(report.result, DeployResult::Ok);
        let before = ids(&ps, "cut");
        assert_eq!(before.len(), 9);
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        if keep >= lines {
            continue;
        }
        cut_inside_record(&path, keep);

        let fresh = deployer(&ps);
        let (journal, tail) = FileJournal::open_checked(&path).unwrap();
        assert!(
            !matches!(tail, intercloud_core::deploy::Tail::Clean),
            "keep {keep}: the cut is seen"
        );
        let report = fresh.resume(&journal, ResumeMode::Continue).await.unwrap();
        assert_eq!(report.result, DeployResult::Ok, "keep {keep}: {report:?}");
        assert!(report.moved.is_empty(), "keep {keep}: nothing moves");
        assert_exact(&ps, &report);
        assert_eq!(
            ids(&ps, "cut"),
            before,
            "keep {keep}: every running VM was adopted, none deleted or made again"
        );
        let gone = fresh.destroy("cut", Some(&journal)).await.unwrap();
        assert!(gone.is_clean(), "{gone:?}");
        assert_none_left(&ps, "cut");
    }
}
