//! Repair: same identity for recreated nodes, moves off a site that goes down during
//! repair, cleanup once it is back, and the `watch` loop with cancellation.

mod deploy_support;

use std::collections::BTreeMap;
use std::time::Duration;

use deploy_support::*;
use intercloud_core::deploy::{
    DeployReport, DeployResult, EventKind, FailurePolicy, Journal, MemoryJournal,
};
use intercloud_core::{
    CloudProvider, ErrorKind, FaultTiming, MemoryProvider, Method, Topology, VmState,
};

async fn up(
    ps: &[std::sync::Arc<MemoryProvider>],
    topo: &Topology,
    name: &str,
    entries: &[(&str, &str, u32)],
) -> (MemoryJournal, DeployReport) {
    let total: u32 = entries.iter().map(|e| e.2).sum();
    let req = request(name, vec![group("worker", total, None)]);
    let d = deployer(ps);
    let journal = MemoryJournal::new();
    let report = d
        .deploy(
            d.plan(&req, topo, &placement(entries)).unwrap(),
            FailurePolicy::AllOrNothing,
            &journal,
        )
        .await
        .unwrap();
    assert_eq!(report.result, DeployResult::Ok);
    (journal, report)
}

fn provider<'a>(
    ps: &'a [std::sync::Arc<MemoryProvider>],
    site: &str,
) -> &'a std::sync::Arc<MemoryProvider> {
    ps.iter()
        .find(|p| intercloud_core::CloudProvider::site(p.as_ref()).as_str() == site)
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn failed_and_missing_nodes_come_back_with_the_same_identity() {
    let (ps, topo) = federation(&[site("a", true), site("b", false)], 21);
    let (journal, before) = up(
        &ps,
        &topo,
        "heal",
        &[("worker", "a", 3), ("worker", "b", 3)],
    )
    .await;
    let by_name: BTreeMap<&str, _> = before.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let w2 = by_name["worker-2"];
    let w5 = by_name["worker-5"];
    provider(&ps, w2.site.as_str()).force_state(w2.vm_id.as_ref().unwrap(), VmState::Failed);
    provider(&ps, w5.site.as_str()).force_state(w5.vm_id.as_ref().unwrap(), VmState::Terminated);

    let mut d = deployer(&ps);
    let status = d.status(&journal).await.unwrap();
    assert_eq!(status.result, DeployResult::Partial);
    assert_eq!(status.sites[&w2.site].broken, 1);
    assert_eq!(status.sites[&w5.site].missing, 1);

    let mut rx = d.subscribe();
    let after = d.repair(&journal).await.unwrap();
    assert_eq!(after.result, DeployResult::Ok);
    assert_exact(&ps, &after);
    let mut recreated = after.recreated.clone();
    recreated.sort();
    assert_eq!(recreated, ["worker-2", "worker-5"]);
    assert!(after.moved.is_empty());
    for n in &after.nodes {
        let old = by_name[n.name.as_str()];
        assert_eq!(
            (&n.site, &n.overlay_ip),
            (&old.site, &old.overlay_ip),
            "{}",
            n.name
        );
        if ["worker-2", "worker-5"].contains(&n.name.as_str()) {
            assert_ne!(n.vm_id, old.vm_id, "{} has a new VM", n.name);
        } else {
            assert_eq!(n.vm_id, old.vm_id, "{} was left alone", n.name);
        }
    }
    let ev = drain(&mut rx);
    assert_eq!(count(&ev, |k| matches!(k, EventKind::Repaired { .. })), 2);
    // The failed VM was deleted; a second repair has nothing to do, and writes nothing.
    let records = journal.records().unwrap().len();
    let again = d.repair(&journal).await.unwrap();
    assert!(again.recreated.is_empty() && again.moved.is_empty() && again.deleted == 0);
    assert_eq!(journal.records().unwrap().len(), records);
    d.destroy("heal", Some(&journal)).await.unwrap();
    assert_none_left(&ps, "heal");
}

#[tokio::test(start_paused = true)]
async fn a_site_outage_during_repair_moves_its_nodes_and_a_later_repair_cleans_up() {
    let (ps, topo) = federation(&[site("a", true), site("b", false), site("c", true)], 22);
    let (journal, before) = up(
        &ps,
        &topo,
        "dr",
        &[("worker", "a", 3), ("worker", "b", 3), ("worker", "c", 3)],
    )
    .await;
    let w1 = before.nodes.iter().find(|n| n.name == "worker-1").unwrap();
    assert_eq!(w1.site.as_str(), "a");
    ps[0].force_state(w1.vm_id.as_ref().unwrap(), VmState::Failed);
    ps[1].set_outage(true);

    let d = deployer(&ps);
    let after = d.repair(&journal).await.unwrap();
    // Every node runs again, but b's 3 VMs are unverified: partial, not ok.
    assert_eq!(after.result, DeployResult::Partial, "{after:#?}");
    assert!(after.nodes.iter().all(|n| n.state == "running"));
    assert!(
        after
            .unreachable
            .get("b")
            .is_some_and(|e| e.contains("site b")),
        "{:?}",
        after.unreachable
    );
    assert_eq!(after.moved.len(), 3);
    assert!(after.moved.iter().all(|m| m.from.as_str() == "b"));
    assert_eq!(
        after.leftovers.get("b"),
        Some(&3),
        "the down site's VMs are reported"
    );
    for n in &after.nodes {
        let old = before.nodes.iter().find(|o| o.name == n.name).unwrap();
        assert_eq!(n.overlay_ip, old.overlay_ip, "{} keeps its address", n.name);
        assert_ne!(n.site.as_str(), "b");
        assert_eq!(n.state, "running");
    }

    // b comes back with its 3 stale VMs: the next repair deletes exactly those.
    ps[1].set_outage(false);
    assert_eq!(alive(&ps, "dr").len(), 12);
    let later = d.repair(&journal).await.unwrap();
    assert_eq!(later.result, DeployResult::Ok);
    assert_eq!(later.deleted, 3);
    assert!(later.moved.is_empty() && later.recreated.is_empty());
    assert_exact(&ps, &later);
    d.destroy("dr", Some(&journal)).await.unwrap();
    assert_none_left(&ps, "dr");
}

#[tokio::test(start_paused = true)]
async fn watch_repairs_at_its_interval_until_cancelled() {
    let (ps, topo) = federation(&[site("a", true)], 23);
    let (journal, before) = up(&ps, &topo, "watched", &[("worker", "a", 4)]).await;
    let d = deployer(&ps);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let victim = before.nodes[2].vm_id.clone().unwrap();
    let driver = async {
        tokio::time::sleep(Duration::from_secs(95)).await;
        ps[0].force_state(&victim, VmState::Failed);
        tokio::time::sleep(Duration::from_secs(300)).await;
        stop_tx.send(()).unwrap();
    };
    let watch = d.watch(&journal, Duration::from_secs(60), async {
        let _ = stop_rx.await;
    });
    let ((), reports) = tokio::join!(driver, watch);
    let reports = reports.unwrap();
    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert_eq!(reports[0].recreated, [before.nodes[2].name.clone()]);
    let status = d.status(&journal).await.unwrap();
    assert_eq!(status.result, DeployResult::Ok);
    assert_eq!(alive(&ps, "watched").len(), 4);
    d.destroy("watched", Some(&journal)).await.unwrap();
    assert_none_left(&ps, "watched");
}

/// Every VM each site ever made, as (site, id, state), terminated ones included.
fn every_vm(ps: &[std::sync::Arc<MemoryProvider>]) -> Vec<(String, String, VmState)> {
    ps.iter()
        .flat_map(|p| p.all_vms())
        .map(|v| (v.site.to_string(), v.id.to_string(), v.state))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_stopped_vm_is_started_again_not_deleted_and_recreated() {
    let (ps, topo) = federation(&[site("a", true), site("b", false)], 5);
    let (journal, before) = up(
        &ps,
        &topo,
        "poweroff",
        &[("worker", "a", 2), ("worker", "b", 2)],
    )
    .await;
    let stopped: Vec<_> = before
        .nodes
        .iter()
        .filter(|n| ["worker-1", "worker-4"].contains(&n.name.as_str()))
        .collect();
    assert_eq!(stopped.len(), 2);
    for n in &stopped {
        provider(&ps, n.site.as_str()).force_state(n.vm_id.as_ref().unwrap(), VmState::Stopped);
    }
    let creates: Vec<u64> = ps.iter().map(|p| p.calls(Method::Create)).collect();
    let vms_before = every_vm(&ps);

    let mut d = deployer(&ps);
    let mut rx = d.subscribe();
    let after = d.repair(&journal).await.unwrap();

    assert_eq!(after.result, DeployResult::Ok);
    assert_exact(&ps, &after);
    assert_eq!(after.started, ["worker-1", "worker-4"]);
    assert!(after.recreated.is_empty(), "{:?}", after.recreated);
    assert_eq!(after.deleted, 0);
    for (n, old) in after.nodes.iter().zip(&before.nodes) {
        assert_eq!(n.name, old.name);
        assert_eq!(n.vm_id, old.vm_id, "{} keeps its VM", n.name);
        assert_eq!(n.state, "running", "{}", n.name);
        assert_eq!(n.error, None);
    }
    // Nothing deleted, nothing made: the same VMs, all running again.
    for p in &ps {
        assert_eq!(
            p.calls(Method::Delete),
            0,
            "{}",
            CloudProvider::site(p.as_ref())
        );
    }
    assert_eq!(
        ps.iter()
            .map(|p| p.calls(Method::Create))
            .collect::<Vec<_>>(),
        creates
    );
    let vms_after = every_vm(&ps);
    assert_eq!(vms_after.len(), vms_before.len());
    assert!(
        vms_after.iter().all(|v| v.2 == VmState::Running),
        "{vms_after:?}"
    );
    let ev = drain(&mut rx);
    assert_eq!(count(&ev, |k| matches!(k, EventKind::VmStarted { .. })), 2);
    assert_eq!(count(&ev, |k| matches!(k, EventKind::VmDeleted { .. })), 0);
    assert_eq!(
        count(&ev, |k| matches!(k, EventKind::VmRequested { .. })),
        0
    );

    // Nothing is left to do: the next pass changes nothing.
    let again = d.repair(&journal).await.unwrap();
    assert!(again.started.is_empty() && again.recreated.is_empty() && again.deleted == 0);
    d.destroy("poweroff", Some(&journal)).await.unwrap();
    assert_none_left(&ps, "poweroff");
}

#[tokio::test(start_paused = true)]
async fn a_stopped_vm_that_cannot_be_started_is_replaced_and_the_report_says_why() {
    let (ps, topo) = federation(&[site("a", true)], 6);
    let (journal, before) = up(&ps, &topo, "stuck", &[("worker", "a", 2)]).await;
    let w1 = &before.nodes[0];
    let old_id = w1.vm_id.clone().unwrap();
    ps[0].force_state(&old_id, VmState::Stopped);
    ps[0].fail_next(
        Method::Start,
        ErrorKind::InvalidRequest,
        FaultTiming::Before,
    );

    let d = deployer(&ps);
    let after = d.repair(&journal).await.unwrap();

    assert_eq!(after.result, DeployResult::Ok);
    assert_exact(&ps, &after);
    assert!(after.started.is_empty());
    assert_eq!(after.recreated, std::slice::from_ref(&w1.name));
    assert_eq!(after.deleted, 1);
    assert_eq!(ps[0].calls(Method::Start), 1);
    let n = &after.nodes[0];
    assert_eq!(n.name, w1.name);
    assert_ne!(n.vm_id.as_ref(), Some(&old_id), "a new VM replaced it");
    let why = n
        .error
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(
        why.starts_with("stopped VM could not be started:") && why.contains("injected fault"),
        "{why}"
    );
    assert_eq!(after.nodes[1].vm_id, before.nodes[1].vm_id);
}

#[tokio::test(start_paused = true)]
async fn failed_vms_are_still_replaced_not_started() {
    let (ps, topo) = federation(&[site("a", true)], 8);
    let (journal, before) = up(&ps, &topo, "broken", &[("worker", "a", 1)]).await;
    let old_id = before.nodes[0].vm_id.clone().unwrap();
    ps[0].force_state(&old_id, VmState::Failed);
    let after = deployer(&ps).repair(&journal).await.unwrap();
    assert_eq!(after.result, DeployResult::Ok);
    assert_eq!(ps[0].calls(Method::Start), 0);
    assert_eq!(after.recreated, ["worker-1"]);
    assert_ne!(after.nodes[0].vm_id.as_ref(), Some(&old_id));
}
