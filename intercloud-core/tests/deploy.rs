//! Deployer: happy path, events, status, destroy safety, API-call budget, journal
//! failure, VPN steps, best effort.

mod deploy_support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deploy_support::*;
use intercloud_core::deploy::{
    DeployResult, EventKind, FailurePolicy, FileJournal, FnConfigurer, Journal, MemoryJournal,
    Record,
};
use intercloud_core::{
    Bootstrap, CloudProvider, ErrorKind, FabricKind, IdempotencyKey, LinkId, LinkSpec, LinkState,
    Member, Method, Result, SiteContext, SiteEndpoint, UserData, VmSpec, VpnFabric, TAG_CLUSTER,
};

#[tokio::test(start_paused = true)]
async fn deploys_every_node_reports_events_status_and_destroys_only_its_own() {
    let (ps, topo) = federation(&[site("a", true), site("b", false)], 1);
    let req = request(
        "demo",
        vec![group("master", 1, None), group("worker", 5, None)],
    );
    let pl = placement(&[("master", "a", 1), ("worker", "a", 3), ("worker", "b", 2)]);
    // Bystanders: another cluster's VM and an untagged VM on the same sites.
    let other = VmSpec::new(
        "other",
        "worker",
        IdempotencyKey::new("other-1").unwrap(),
        "S",
        "Small",
    );
    ps[0].create_vms(&other, 1).await.unwrap();
    let mut untagged = other.clone();
    untagged.cluster = String::new();
    untagged.key = IdempotencyKey::new("manual-1").unwrap();
    ps[1].create_vms(&untagged, 1).await.unwrap();

    let mut d = deployer(&ps);
    let mut rx = d.subscribe();
    let plan = d.plan(&req, &topo, &pl).unwrap();
    assert!(plan.explain().contains("create    b worker x1"));
    let journal = MemoryJournal::new();
    let report = d
        .deploy(plan, FailurePolicy::AllOrNothing, &journal)
        .await
        .unwrap();
    assert_eq!(report.result, DeployResult::Ok);
    assert_exact(&ps, &report);
    let names: Vec<&str> = report.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        ["master-1", "worker-1", "worker-2", "worker-3", "worker-4", "worker-5"]
    );
    let ev = drain(&mut rx);
    assert!(matches!(
        ev[0].kind,
        EventKind::PlanStarted { nodes: 6, .. }
    ));
    assert_eq!(count(&ev, |k| matches!(k, EventKind::VmRunning { .. })), 6);
    // a: master batch + worker batch; b (one VM per call): two calls.
    assert_eq!(
        count(&ev, |k| matches!(k, EventKind::VmRequested { .. })),
        4
    );
    assert!(ev
        .iter()
        .any(|e| e.site.as_ref().map(|s| s.as_str()) == Some("b")
            && e.group.as_deref() == Some("worker")));
    assert!(matches!(
        ev.last().unwrap().kind,
        EventKind::Finished {
            result: DeployResult::Ok,
            running: 6,
            wanted: 6
        }
    ));
    // Every create had its intent journaled before, its outcome after.
    let recs = journal.records().unwrap();
    let intents = recs
        .iter()
        .filter(|r| matches!(r, Record::CreateIntent { .. }))
        .count();
    let outcomes = recs
        .iter()
        .filter(|r| matches!(r, Record::CreateOutcome { .. }))
        .count();
    assert_eq!((intents, outcomes), (4, 4));

    let status = d.status(&journal).await.unwrap();
    assert_eq!(status.result, DeployResult::Ok);
    assert_eq!(status.sites["a"].running, 4);
    assert_eq!(status.sites["b"].wanted, 2);
    assert_eq!(status.sites["a"].surplus, 0);

    let gone = d.destroy("demo", Some(&journal)).await.unwrap();
    assert_eq!((gone.deleted, gone.remaining), (6, 0));
    assert_none_left(&ps, "demo");
    assert_eq!(ps[0].alive_with_tag(TAG_CLUSTER, "other").len(), 1);
    assert_eq!(
        ps[1]
            .all_vms()
            .iter()
            .filter(|v| v.state.is_alive())
            .count(),
        1,
        "the untagged VM survives"
    );
    let status = d.status(&journal).await.unwrap();
    assert_eq!(status.result, DeployResult::Failed);
}

#[tokio::test(start_paused = true)]
async fn a_200_vm_cluster_costs_at_most_1_3_calls_per_vm() {
    let (ps, topo) = federation(&[site("a", true), site("b", true)], 2);
    let req = request(
        "big",
        vec![group("master", 1, None), group("worker", 199, None)],
    );
    let pl = placement(&[
        ("master", "a", 1),
        ("worker", "a", 99),
        ("worker", "b", 100),
    ]);
    let d = deployer(&ps);
    let plan = d.plan(&req, &topo, &pl).unwrap();
    let report = d
        .deploy(plan, FailurePolicy::AllOrNothing, &MemoryJournal::new())
        .await
        .unwrap();
    assert_eq!(report.result, DeployResult::Ok);
    assert_exact(&ps, &report);
    let calls: u64 = ps
        .iter()
        .map(|p| p.calls(Method::Create) + p.calls(Method::List))
        .sum();
    let per_vm = calls as f64 / 200.0;
    println!("API calls for 200 VMs: {calls} ({per_vm:.3} per VM)");
    assert!(per_vm <= 1.3, "{calls} calls for 200 VMs");
    // One list per site per tick, never one per VM.
    assert!(ps.iter().all(|p| p.calls(Method::List) < 20));
}

#[tokio::test(start_paused = true)]
async fn a_journal_write_failure_stops_creating_and_rolls_back() {
    // 3: Started + 2 of the 6 intents succeed, the third intent fails: nothing may be
    // created (the first tick's calls never leave). 7: Started + 6 intents succeed,
    // the 6 creates happen, the first outcome fails: the 6 VMs are rolled back.
    for (fail_after, creates) in [(3usize, 0u64), (7, 6)] {
        let (ps, topo) = federation(&[site("a", false)], 3);
        let req = request("jfail", vec![group("worker", 6, None)]);
        let pl = placement(&[("worker", "a", 6)]);
        let d = deployer(&ps);
        let plan = d.plan(&req, &topo, &pl).unwrap();
        let journal = MemoryJournal::new();
        journal.fail_after(fail_after);
        let e = d
            .deploy(plan, FailurePolicy::AllOrNothing, &journal)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Journal);
        assert_eq!(
            ps[0].calls(Method::Create),
            creates,
            "no create without a durable intent, none after the failure"
        );
        assert_eq!(ps[0].calls(Method::Delete), creates);
        assert_none_left(&ps, "jfail");
    }
}

#[tokio::test(start_paused = true)]
async fn best_effort_keeps_what_runs_and_reports_the_rest() {
    let (ps, topo) = federation(&[site("a", true), site("b", true)], 4);
    ps[1].set_capacity(Some(2));
    let req = request(
        "partial",
        vec![group("master", 1, None), group("worker", 4, Some(&["b"]))],
    );
    let pl = placement(&[("master", "a", 1), ("worker", "b", 4)]);
    let d = deployer(&ps);
    let plan = d.plan(&req, &topo, &pl).unwrap();
    let report = d
        .deploy(
            plan,
            FailurePolicy::BestEffort { min_fraction: 0.1 },
            &MemoryJournal::new(),
        )
        .await
        .unwrap();
    assert_eq!(report.result, DeployResult::Partial);
    let failed: Vec<_> = report.nodes.iter().filter(|n| n.error.is_some()).collect();
    assert_eq!(failed.len(), 4, "workers are pinned to the full site");
    let why = failed[0].error.as_ref().unwrap();
    assert!(why.to_string().contains("constraints"), "{why}");
    let alive = alive(&ps, "partial");
    assert_eq!(alive.len(), 1, "only the master is left: {alive:?}");

    // Same request under AllOrNothing: nothing is left.
    let (ps, topo) = federation(&[site("a", true), site("b", true)], 4);
    ps[1].set_capacity(Some(2));
    let d = deployer(&ps);
    let plan = d.plan(&req, &topo, &pl).unwrap();
    let report = d
        .deploy(plan, FailurePolicy::AllOrNothing, &MemoryJournal::new())
        .await
        .unwrap();
    assert_eq!(report.result, DeployResult::RolledBack);
    assert_none_left(&ps, "partial");
}

/// A fabric that records what it was asked.
#[derive(Debug, Default)]
struct FakeFabric {
    log: Mutex<Vec<String>>,
}

#[async_trait]
impl VpnFabric for FakeFabric {
    fn kind(&self) -> FabricKind {
        FabricKind::WireGuard
    }
    async fn prepare_site(&self, site: &SiteContext) -> Result<SiteEndpoint> {
        self.log
            .lock()
            .unwrap()
            .push(format!("prepare {}", site.site));
        Ok(SiteEndpoint {
            site: site.site.clone(),
            kind: FabricKind::WireGuard,
            public_address: Some("127.0.0.1".into()),
            overlay_subnet: site.overlay_subnet.clone(),
            resources: BTreeMap::new(),
            attributes: [("public_key".to_string(), format!("pk-{}", site.site))]
                .into_iter()
                .collect(),
        })
    }
    async fn connect(&self, a: &SiteEndpoint, b: &SiteEndpoint, _: &LinkSpec) -> Result<LinkId> {
        self.log
            .lock()
            .unwrap()
            .push(format!("connect {}-{}", a.site, b.site));
        Ok(LinkId(format!("{}-{}", a.site, b.site)))
    }
    fn member_bootstrap(&self, m: &Member) -> Result<Bootstrap> {
        Ok(Bootstrap {
            commands: vec![format!("ip addr add {} dev wg0", m.overlay_ip)],
            ..Bootstrap::default()
        })
    }
    async fn link_status(&self, _: &LinkId) -> Result<LinkState> {
        Ok(LinkState::Up)
    }
    async fn disconnect(&self, link: &LinkId) -> Result<()> {
        self.log.lock().unwrap().push(format!("disconnect {link}"));
        Ok(())
    }
    async fn release_site(&self, ep: &SiteEndpoint) -> Result<()> {
        self.log
            .lock()
            .unwrap()
            .push(format!("release {}", ep.site));
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn vpn_endpoints_and_links_come_first_and_go_last_and_user_data_stays_out_of_the_journal() {
    let (ps, topo) = federation(&[site("a", true), site("b", true), site("c", false)], 5);
    let req = request("vpn", vec![group("worker", 4, None)]);
    let pl = placement(&[("worker", "a", 2), ("worker", "b", 1), ("worker", "c", 1)]);
    let fabric = Arc::new(FakeFabric::default());
    let seen_endpoints = Arc::new(Mutex::new(0usize));
    let seen = seen_endpoints.clone();
    let configurer = FnConfigurer(
        move |ctx: &intercloud_core::deploy::ConfigContext<'_>,
              batch: &intercloud_core::deploy::Batch| {
            *seen.lock().unwrap() = ctx.endpoints.len();
            let fabric = ctx.fabric.expect("a fabric is set");
            let mut text = String::from("#cloud-config\n# PrivateKey = SECRET-KEY-XYZ\n");
            for name in &batch.nodes {
                let n = ctx.nodes.iter().find(|n| &n.name == name).unwrap();
                let b = fabric.member_bootstrap(&intercloud_core::Member {
                    name: n.name.clone(),
                    role: n.role.clone(),
                    site: n.site.clone(),
                    overlay_ip: n.overlay_ip.clone(),
                })?;
                text.push_str(&b.commands.join("\n"));
            }
            Ok(Some(UserData(text)))
        },
    );
    let mut d = deployer(&ps)
        .with_fabric(fabric.clone())
        .with_configurer(Arc::new(configurer));
    let mut rx = d.subscribe();
    let plan = d.plan(&req, &topo, &pl).unwrap();
    assert!(plan.explain().contains("link      a <-> b"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.log");
    let journal = FileJournal::open(&path).unwrap();
    let report = d
        .deploy(plan, FailurePolicy::AllOrNothing, &journal)
        .await
        .unwrap();
    assert_eq!(report.result, DeployResult::Ok);
    assert_exact(&ps, &report);
    assert_eq!(report.links.len(), 3);
    assert_eq!(
        *seen_endpoints.lock().unwrap(),
        3,
        "members see every endpoint"
    );
    let ev = drain(&mut rx);
    assert_eq!(count(&ev, |k| matches!(k, EventKind::EndpointReady)), 3);
    assert_eq!(count(&ev, |k| matches!(k, EventKind::LinkUp { .. })), 3);
    let first_vm = ev
        .iter()
        .position(|e| matches!(e.kind, EventKind::VmRequested { .. }))
        .unwrap();
    let last_endpoint = ev
        .iter()
        .rposition(|e| matches!(e.kind, EventKind::EndpointReady))
        .unwrap();
    assert!(last_endpoint < first_vm, "endpoints before members");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains("SECRET-KEY-XYZ"),
        "user data never journaled"
    );
    let events = serde_json::to_string(&ev).unwrap();
    assert!(!events.contains("SECRET-KEY-XYZ"), "nor sent as an event");
    assert!(!format!("{report:?} {d:?}").contains("SECRET-KEY-XYZ"));

    let gone = d.destroy("vpn", Some(&journal)).await.unwrap();
    assert_eq!(gone.remaining, 0);
    assert_none_left(&ps, "vpn");
    let log = fabric.log.lock().unwrap().clone();
    let first_disconnect = log
        .iter()
        .position(|l| l.starts_with("disconnect"))
        .unwrap();
    let first_release = log.iter().position(|l| l.starts_with("release")).unwrap();
    assert_eq!(log.iter().filter(|l| l.starts_with("release")).count(), 3);
    assert!(
        first_disconnect < first_release,
        "links go before endpoints: {log:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_journal_holding_a_deployment_is_not_reused() {
    let (ps, topo) = federation(&[site("a", true)], 6);
    let req = request("twice", vec![group("worker", 1, None)]);
    let pl = placement(&[("worker", "a", 1)]);
    let d = deployer(&ps);
    let journal = MemoryJournal::new();
    d.deploy(
        d.plan(&req, &topo, &pl).unwrap(),
        FailurePolicy::AllOrNothing,
        &journal,
    )
    .await
    .unwrap();
    let e = d
        .deploy(
            d.plan(&req, &topo, &pl).unwrap(),
            FailurePolicy::AllOrNothing,
            &journal,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("resume"), "{e}");
    assert_eq!(alive(&ps, "twice").len(), 1);
    let _ = Duration::ZERO;
}

/// A fabric whose endpoints and links live in a shared "cloud" set, so a second
/// deployer (a new process) sees what the first made. With `crash` the first
/// `connect` takes effect and then never returns.
#[derive(Debug)]
struct CloudFabric {
    live: Arc<Mutex<std::collections::BTreeSet<String>>>,
    crash: bool,
    crashed: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl VpnFabric for CloudFabric {
    fn kind(&self) -> FabricKind {
        FabricKind::WireGuard
    }
    async fn prepare_site(&self, site: &SiteContext) -> Result<SiteEndpoint> {
        self.live
            .lock()
            .unwrap()
            .insert(format!("ep {}", site.site));
        Ok(SiteEndpoint {
            site: site.site.clone(),
            kind: FabricKind::WireGuard,
            public_address: None,
            overlay_subnet: site.overlay_subnet.clone(),
            resources: BTreeMap::new(),
            attributes: BTreeMap::new(),
        })
    }
    async fn connect(&self, a: &SiteEndpoint, b: &SiteEndpoint, _: &LinkSpec) -> Result<LinkId> {
        let id = format!("{}-{}", a.site, b.site);
        self.live.lock().unwrap().insert(format!("link {id}"));
        if self.crash {
            self.crashed.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(LinkId(id))
    }
    fn member_bootstrap(&self, _: &Member) -> Result<Bootstrap> {
        Ok(Bootstrap::default())
    }
    async fn link_status(&self, _: &LinkId) -> Result<LinkState> {
        Ok(LinkState::Up)
    }
    async fn disconnect(&self, link: &LinkId) -> Result<()> {
        self.live.lock().unwrap().remove(&format!("link {link}"));
        Ok(())
    }
    async fn release_site(&self, ep: &SiteEndpoint) -> Result<()> {
        self.live.lock().unwrap().remove(&format!("ep {}", ep.site));
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_link_made_by_a_killed_deploy_is_found_from_its_intent_and_removed() {
    let (ps, topo) = federation(&[site("a", true), site("b", true)], 6);
    let req = request("vpnkill", vec![group("worker", 2, None)]);
    let pl = placement(&[("worker", "a", 1), ("worker", "b", 1)]);
    let live = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let crashed = Arc::new(tokio::sync::Notify::new());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.log");
    {
        let fabric = Arc::new(CloudFabric {
            live: live.clone(),
            crash: true,
            crashed: crashed.clone(),
        });
        let d = deployer(&ps).with_fabric(fabric);
        let plan = d.plan(&req, &topo, &pl).unwrap();
        let journal = FileJournal::open(&path).unwrap();
        tokio::select! {
            r = d.deploy(plan, FailurePolicy::AllOrNothing, &journal) => {
                panic!("the deploy should have died in connect: {:?}", r.map(|r| r.result));
            }
            () = crashed.notified() => {}
        }
    }
    assert!(
        live.lock().unwrap().contains("link a-b"),
        "the link was made"
    );
    let records = FileJournal::open(&path).unwrap().records().unwrap();
    assert!(records
        .iter()
        .any(|r| matches!(r, Record::LinkIntent { .. })));
    assert!(!records
        .iter()
        .any(|r| matches!(r, Record::LinkConnected { .. })));

    let fabric = Arc::new(CloudFabric {
        live: live.clone(),
        crash: false,
        crashed,
    });
    let d = deployer(&ps).with_fabric(fabric);
    let gone = d
        .destroy("vpnkill", Some(&FileJournal::open(&path).unwrap()))
        .await
        .unwrap();
    assert_eq!(gone.remaining, 0, "{gone:?}");
    assert!(
        live.lock().unwrap().is_empty(),
        "left in the cloud: {:?}",
        live.lock().unwrap()
    );
    assert_none_left(&ps, "vpnkill");
}
