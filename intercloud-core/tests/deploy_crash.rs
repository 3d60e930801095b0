//! Crash safety: a deploy aborted at 20 random points (right after a cloud call took
//! effect, before the journal could record its outcome) is resumed, rolled back or
//! destroyed by a fresh deployer from the journal file alone — zero orphans, zero
//! duplicates. And a torn journal tail loses nothing before it.

mod deploy_support;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use deploy_support::*;
use intercloud_core::deploy::{
    DeployResult, Deployer, FailurePolicy, FileJournal, Journal, Record, ResumeMode, Tail,
};
use intercloud_core::{CloudProvider, ErrorKind, MemoryProvider, Topology};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Notify;

fn scenario(seed: u64) -> (Vec<Arc<MemoryProvider>>, Topology) {
    let (ps, topo) = federation(&[site("a", true), site("b", false), site("c", true)], seed);
    // b runs out of room: two of its nodes are re-placed during the deploy.
    ps[1].set_capacity(Some(3));
    (ps, topo)
}

fn req() -> intercloud_core::ClusterRequest {
    request(
        "crashy",
        vec![group("master", 1, None), group("worker", 11, None)],
    )
}

fn pl() -> intercloud_core::PlacementCounts {
    placement(&[
        ("master", "a", 1),
        ("worker", "a", 4),
        ("worker", "b", 5),
        ("worker", "c", 2),
    ])
}

/// Runs the deploy through `CrashAt` wrappers; returns whether it crashed.
async fn deploy_until_crash(
    ps: &[Arc<MemoryProvider>],
    topo: &Topology,
    crash_at: u64,
    path: &std::path::Path,
) -> (bool, u64) {
    let calls = Arc::new(AtomicU64::new(0));
    let crashed = Arc::new(Notify::new());
    let wrapped: Vec<Arc<dyn CloudProvider>> = ps
        .iter()
        .map(|p| {
            Arc::new(CrashAt {
                inner: p.clone(),
                calls: calls.clone(),
                crash_at,
                crashed: crashed.clone(),
            }) as Arc<dyn CloudProvider>
        })
        .collect();
    let d = Deployer::new(wrapped).with_options(options());
    let plan = d.plan(&req(), topo, &pl()).unwrap();
    let journal = FileJournal::open(path).unwrap();
    let crashed_now = tokio::select! {
        r = d.deploy(plan, FailurePolicy::AllOrNothing, &journal) => {
            assert_eq!(r.unwrap().result, DeployResult::Ok);
            false
        }
        () = crashed.notified() => true,
    };
    // The "process" dies here: deployer, journal handle and futures are dropped.
    (crashed_now, calls.load(Ordering::SeqCst))
}

#[tokio::test(start_paused = true)]
async fn a_deploy_killed_at_20_random_points_is_resumed_or_destroyed_from_its_journal() {
    // A clean run tells how many calls a deploy makes.
    let dir = tempfile::tempdir().unwrap();
    let (ps, topo) = scenario(1);
    let (crashed, total) =
        deploy_until_crash(&ps, &topo, u64::MAX, &dir.path().join("clean")).await;
    assert!(!crashed);
    assert!(total >= 10, "the scenario makes {total} calls");

    let mut rng = StdRng::seed_from_u64(2024);
    let mut unresolved_rounds = 0;
    for round in 0..20u64 {
        let crash_at = rng.random_range(1..=total);
        let (ps, topo) = scenario(round + 10);
        let path = dir.path().join(format!("journal-{round}.log"));
        let (crashed, _) = deploy_until_crash(&ps, &topo, crash_at, &path).await;
        assert!(crashed, "round {round}: crash point {crash_at} was reached");

        // A new "process": providers are the same clouds, the journal comes from disk.
        let fresh = deployer(&ps);
        let journal = FileJournal::open(&path).unwrap();
        let recs = journal.records().unwrap();
        if recs.is_empty() {
            // Killed during the check before the deployment starts: nothing was made.
            assert_none_left(&ps, "crashy");
            continue;
        }
        let intents = recs
            .iter()
            .filter(|r| matches!(r, Record::CreateIntent { .. }))
            .count();
        let outcomes = recs
            .iter()
            .filter(|r| {
                matches!(
                    r,
                    Record::CreateOutcome { .. } | Record::CreateFailed { .. }
                )
            })
            .count();
        if intents > outcomes {
            unresolved_rounds += 1;
        }
        match round % 3 {
            0 | 1 => {
                let report = fresh.resume(&journal, ResumeMode::Continue).await.unwrap();
                assert_eq!(
                    report.result,
                    DeployResult::Ok,
                    "round {round} at {crash_at}"
                );
                assert_exact(&ps, &report);
                // The identities survived the crash.
                let names: Vec<&str> = report.nodes.iter().map(|n| n.name.as_str()).collect();
                assert_eq!(names.len(), 12);
                assert_eq!(names[0], "master-1");
                let gone = fresh.destroy("crashy", Some(&journal)).await.unwrap();
                assert_eq!(gone.remaining, 0);
            }
            _ => {
                let report = fresh.resume(&journal, ResumeMode::RollBack).await.unwrap();
                assert_eq!(report.result, DeployResult::RolledBack, "round {round}");
            }
        }
        assert_none_left(&ps, "crashy");
        let every: usize = ps.iter().map(|p| p.all_vms().len()).sum();
        assert!(
            every <= 12 + 2 * 12,
            "round {round}: {every} VMs were ever made"
        );
    }
    // The interesting case — a create made by the cloud but not recorded — was hit.
    assert!(
        unresolved_rounds >= 3,
        "only {unresolved_rounds} rounds crashed mid-create"
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_during_rollback_is_finished_by_destroy_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.log");
    let (ps, topo) = federation(&[site("a", true), site("b", false)], 3);
    // Workers pinned to b, which is full: AllOrNothing must roll back.
    ps[1].set_capacity(Some(1));
    let calls = Arc::new(AtomicU64::new(0));
    let crashed = Arc::new(Notify::new());
    let wrapped: Vec<Arc<dyn CloudProvider>> = ps
        .iter()
        .map(|p| {
            Arc::new(CrashAt {
                inner: p.clone(),
                calls: calls.clone(),
                crash_at: u64::MAX,
                crashed: crashed.clone(),
            }) as Arc<dyn CloudProvider>
        })
        .collect();
    let d = Deployer::new(wrapped).with_options(options());
    let req = request(
        "rb",
        vec![group("master", 2, None), group("worker", 3, Some(&["b"]))],
    );
    let pl = placement(&[("master", "a", 2), ("worker", "b", 3)]);
    let plan = d.plan(&req, &topo, &pl).unwrap();
    // First learn when the first delete happens, then crash right after it.
    let journal = FileJournal::open(&path).unwrap();
    let report = d
        .deploy(plan.clone(), FailurePolicy::AllOrNothing, &journal)
        .await
        .unwrap();
    assert_eq!(report.result, DeployResult::RolledBack);
    assert_none_left(&ps, "rb");
    let deletes_at = ps
        .iter()
        .map(|p| p.calls(intercloud_core::Method::Delete))
        .sum::<u64>();
    assert!(deletes_at >= 3);

    // Same again, crashing after the first rollback delete.
    let (ps, topo) = federation(&[site("a", true), site("b", false)], 3);
    ps[1].set_capacity(Some(1));
    let counter = Arc::new(AtomicU64::new(0));
    let deletes_seen = Arc::new(AtomicU64::new(0));
    let _ = deletes_seen;
    // Count calls of the clean run up to its first delete.
    let before_first_delete = {
        let (ps2, _) = federation(&[site("a", true), site("b", false)], 3);
        ps2[1].set_capacity(Some(1));
        let d2 = deployer(&ps2);
        let j2 = FileJournal::open(dir.path().join("probe.log")).unwrap();
        d2.deploy(
            d2.plan(&req, &topo, &pl).unwrap(),
            FailurePolicy::AllOrNothing,
            &j2,
        )
        .await
        .unwrap();
        let recs = j2.records().unwrap();
        assert!(recs
            .iter()
            .any(|r| matches!(r, Record::DeleteIntent { .. })));
        ps2.iter()
            .map(|p| {
                p.calls(intercloud_core::Method::Create) + p.calls(intercloud_core::Method::List)
            })
            .sum::<u64>()
    };
    let crashed = Arc::new(Notify::new());
    let wrapped: Vec<Arc<dyn CloudProvider>> = ps
        .iter()
        .map(|p| {
            Arc::new(CrashAt {
                inner: p.clone(),
                calls: counter.clone(),
                crash_at: before_first_delete + 1,
                crashed: crashed.clone(),
            }) as Arc<dyn CloudProvider>
        })
        .collect();
    let d = Deployer::new(wrapped).with_options(options());
    let path = dir.path().join("j2.log");
    let journal = FileJournal::open(&path).unwrap();
    tokio::select! {
        r = d.deploy(d.plan(&req, &topo, &pl).unwrap(), FailurePolicy::AllOrNothing, &journal) => {
            panic!("expected a crash, got {r:?}");
        }
        () = crashed.notified() => {}
    }
    drop(journal);
    drop(d);
    let fresh = deployer(&ps);
    let gone = fresh
        .destroy("rb", Some(&FileJournal::open(&path).unwrap()))
        .await
        .unwrap();
    assert_eq!(gone.remaining, 0);
    assert_none_left(&ps, "rb");
}

#[tokio::test(start_paused = true)]
async fn a_torn_journal_tail_is_dropped_and_the_deployment_still_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.log");
    let (ps, topo) = federation(&[site("a", true), site("b", false)], 4);
    let req = request("torn", vec![group("worker", 4, None)]);
    let pl = placement(&[("worker", "a", 2), ("worker", "b", 2)]);
    let d = deployer(&ps);
    let journal = FileJournal::open(&path).unwrap();
    let report = d
        .deploy(
            d.plan(&req, &topo, &pl).unwrap(),
            FailurePolicy::AllOrNothing,
            &journal,
        )
        .await
        .unwrap();
    assert_eq!(report.result, DeployResult::Ok);
    let n_records = journal.records().unwrap().len();
    drop(journal);
    // A crash in the middle of writing the next record.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"0123456789abcdef {\"record\":\"delete_int")
        .unwrap();
    drop(f);
    let (journal, tail) = FileJournal::open_checked(&path).unwrap();
    assert!(matches!(tail, Tail::Discarded { .. }));
    assert_eq!(journal.records().unwrap().len(), n_records);
    let status = d.status(&journal).await.unwrap();
    assert_eq!(status.result, DeployResult::Ok);
    // A corrupted (checksum-failing) last record: same.
    drop(journal);
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    bytes[len - 3] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let (journal, tail) = FileJournal::open_checked(&path).unwrap();
    assert!(matches!(tail, Tail::Discarded { .. }));
    assert_eq!(journal.records().unwrap().len(), n_records - 1);
    let report = d.resume(&journal, ResumeMode::Continue).await.unwrap();
    assert_eq!(report.result, DeployResult::Ok);
    assert_exact(&ps, &report);
    d.destroy("torn", Some(&journal)).await.unwrap();
    assert_none_left(&ps, "torn");
    let _ = ErrorKind::Journal;
}

/// A backend that tags after creating (CloudStack: `deployVirtualMachine`, then
/// `createTags`), killed in between: the first create call's VMs exist but never got
/// the cluster's tags. Listed by cluster they are invisible; listed by their key they
/// show the key and index their names carry — as the CloudStack backend reports them.
///
/// It also logs every create call's key and [`VmSpec::fresh`] flag.
#[derive(Debug)]
struct TagsCutShort {
    inner: Arc<MemoryProvider>,
    /// Whether the first create call "kills the process".
    crash: bool,
    cut: std::sync::Mutex<std::collections::BTreeSet<String>>,
    crashed: Arc<Notify>,
    creates: std::sync::Mutex<Vec<(String, bool)>>,
}

impl TagsCutShort {
    fn wrap(ps: &[Arc<MemoryProvider>], crash: bool, crashed: &Arc<Notify>) -> Vec<Arc<Self>> {
        ps.iter()
            .map(|p| {
                Arc::new(Self {
                    inner: p.clone(),
                    crash,
                    cut: Default::default(),
                    crashed: crashed.clone(),
                    creates: Default::default(),
                })
            })
            .collect()
    }
}

/// Deploys through `providers` until one of them signals `crashed`; then the
/// "process" dies (deployer and journal handle dropped), leaving the journal at `path`.
async fn cut_short(
    providers: Vec<Arc<dyn CloudProvider>>,
    topo: &Topology,
    path: &std::path::Path,
    crashed: &Notify,
) {
    let d = Deployer::new(providers).with_options(options());
    let plan = d.plan(&req(), topo, &pl()).unwrap();
    let journal = FileJournal::open(path).unwrap();
    tokio::select! {
        r = d.deploy(plan, FailurePolicy::AllOrNothing, &journal) => {
            panic!("the deploy should have been cut short: {:?}", r.map(|r| r.result));
        }
        () = crashed.notified() => {}
    }
}

fn dyns_of(ws: &[Arc<TagsCutShort>]) -> Vec<Arc<dyn CloudProvider>> {
    ws.iter()
        .map(|w| w.clone() as Arc<dyn CloudProvider>)
        .collect()
}

#[async_trait::async_trait]
impl CloudProvider for TagsCutShort {
    fn site(&self) -> &intercloud_core::SiteId {
        self.inner.site()
    }
    fn capabilities(&self) -> intercloud_core::Capabilities {
        self.inner.capabilities()
    }
    async fn offerings(&self) -> intercloud_core::Result<Vec<intercloud_core::Offering>> {
        self.inner.offerings().await
    }
    async fn capacity(&self) -> intercloud_core::Result<intercloud_core::Capacity> {
        self.inner.capacity().await
    }
    async fn create_vms(
        &self,
        spec: &intercloud_core::VmSpec,
        count: u32,
    ) -> intercloud_core::Result<Vec<intercloud_core::VmId>> {
        self.creates
            .lock()
            .unwrap()
            .push((spec.key.as_str().to_owned(), spec.fresh));
        let made = self.inner.create_vms(spec, count).await;
        let first = {
            let mut cut = self.cut.lock().unwrap();
            let first = self.crash && cut.is_empty();
            if first {
                cut.insert(spec.key.as_str().to_owned());
            }
            first
        };
        if first {
            self.crashed.notify_one();
            std::future::pending::<()>().await;
        }
        made
    }
    async fn list_vms(
        &self,
        filter: &intercloud_core::VmFilter,
    ) -> intercloud_core::Result<Vec<intercloud_core::Vm>> {
        let all = self
            .inner
            .list_vms(&intercloud_core::VmFilter::default())
            .await?;
        let cut = self.cut.lock().unwrap().clone();
        Ok(all
            .into_iter()
            .map(|mut v| {
                if v.key().is_some_and(|k| cut.contains(k)) {
                    v.tags.retain(|k, _| {
                        k == intercloud_core::TAG_KEY || k == intercloud_core::TAG_INDEX
                    });
                }
                v
            })
            .filter(|v| filter.matches(v))
            .collect())
    }
    async fn delete_vm(&self, id: &intercloud_core::VmId) -> intercloud_core::Result<()> {
        self.inner.delete_vm(id).await
    }
    async fn start_vm(&self, id: &intercloud_core::VmId) -> intercloud_core::Result<()> {
        self.inner.start_vm(id).await
    }
}

#[tokio::test(start_paused = true)]
async fn vms_whose_tags_never_came_are_rolled_back_and_destroyed_by_their_journaled_key() {
    for rollback in [true, false] {
        let (ps, topo) = scenario(7);
        let crashed = Arc::new(Notify::new());
        let wrapped = TagsCutShort::wrap(&ps, true, &crashed);
        let dyns = || dyns_of(&wrapped);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        cut_short(dyns(), &topo, &path, &crashed).await;
        let untagged: usize = ps
            .iter()
            .map(|p| p.all_vms().iter().filter(|v| v.state.is_alive()).count())
            .sum();
        assert!(untagged > 0, "the cut-short create made VMs");
        // Listing by cluster does not show them: without the journal they would leak.
        let mut by_cluster = 0;
        for w in &wrapped {
            let filter = intercloud_core::VmFilter::cluster("crashy");
            by_cluster += w.list_vms(&filter).await.unwrap().len();
        }
        assert!(by_cluster < untagged, "{by_cluster} of {untagged} listed");

        let d = Deployer::new(dyns()).with_options(options());
        let journal = FileJournal::open(&path).unwrap();
        if rollback {
            let report = d.resume(&journal, ResumeMode::RollBack).await.unwrap();
            assert_eq!(report.result, DeployResult::RolledBack, "{report:?}");
        } else {
            let gone = d.destroy("crashy", Some(&journal)).await.unwrap();
            assert_eq!(gone.remaining, 0, "{gone:?}");
        }
        let left: Vec<_> = ps
            .iter()
            .flat_map(|p| p.all_vms())
            .filter(|v| v.state.is_alive())
            .map(|v| v.name)
            .collect();
        assert!(left.is_empty(), "rollback={rollback}: orphans {left:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn only_a_key_never_journaled_before_is_sent_fresh() {
    let (ps, topo) = scenario(11);
    let crashed = Arc::new(Notify::new());
    let first = TagsCutShort::wrap(&ps, true, &crashed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    cut_short(dyns_of(&first), &topo, &path, &crashed).await;
    let sent: Vec<(String, bool)> = first
        .iter()
        .flat_map(|w| w.creates.lock().unwrap().clone())
        .collect();
    assert!(!sent.is_empty());
    assert!(
        sent.iter().all(|(_, fresh)| *fresh),
        "a deploy's first calls skip the lookup: {sent:?}"
    );
    // The resumed process must look up every key the journal holds.
    let journaled: std::collections::BTreeSet<String> = FileJournal::open(&path)
        .unwrap()
        .records()
        .unwrap()
        .into_iter()
        .filter_map(|r| match r {
            Record::CreateIntent { batch } => Some(batch.key.as_str().to_owned()),
            _ => None,
        })
        .collect();
    let again = TagsCutShort::wrap(&ps, false, &crashed);
    let d = Deployer::new(dyns_of(&again)).with_options(options());
    let report = d
        .resume(&FileJournal::open(&path).unwrap(), ResumeMode::Continue)
        .await
        .unwrap();
    assert_eq!(report.result, DeployResult::Ok, "{report:?}");
    let resent: Vec<(String, bool)> = again
        .iter()
        .flat_map(|w| w.creates.lock().unwrap().clone())
        .collect();
    let wrong: Vec<_> = resent
        .iter()
        .filter(|(k, fresh)| *fresh && journaled.contains(k))
        .collect();
    assert!(wrong.is_empty(), "journaled keys sent fresh: {wrong:?}");
    assert!(
        resent.iter().any(|(k, _)| journaled.contains(k)),
        "the resume re-issued journaled creates: {resent:?}"
    );
    assert_exact(&ps, &report);
}
