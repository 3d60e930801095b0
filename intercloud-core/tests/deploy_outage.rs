//! Site outages during a deploy (issue #25, findings 4, 7 and 9): a dead site is
//! noticed within `poll_max + site_timeout` of its last answer, whether it answers
//! errors or nothing at all; nodes move only to healthy sites and only while every
//! constraint of the request holds; the VMs left on a dead site are reported (result
//! `partial` at best) and deleted as soon as it answers. Every test ends by listing
//! every site through the provider.

mod deploy_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deploy_support::*;
use intercloud_core::deploy::{
    DeployOptions, DeployReport, DeployResult, Deployer, Event, EventKind, FailurePolicy,
    MemoryJournal,
};
use intercloud_core::vpn::{
    Bootstrap, FabricKind, LinkId, LinkSpec, LinkState, Member, SiteContext, SiteEndpoint,
    VpnFabric,
};
use intercloud_core::{
    Capabilities, Capacity, CloudProvider, ErrorKind, FaultTiming, MemoryProvider, Method,
    Offering, Result, SiteId, Vm, VmFilter, VmId, VmSpec, TAG_CLUSTER,
};
use tokio::time::Instant;

/// A site that, once `silent` is set, never answers any call (a black-holed endpoint:
/// no error, no reply).
#[derive(Debug)]
struct Silent {
    inner: Arc<MemoryProvider>,
    silent: AtomicBool,
}

impl Silent {
    fn new(inner: Arc<MemoryProvider>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            silent: AtomicBool::new(false),
        })
    }

    fn set(&self, silent: bool) {
        self.silent.store(silent, Ordering::SeqCst);
    }

    async fn gate(&self) {
        while self.silent.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

#[async_trait]
impl CloudProvider for Silent {
    fn site(&self) -> &SiteId {
        self.inner.site()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn offerings(&self) -> Result<Vec<Offering>> {
        self.gate().await;
        self.inner.offerings().await
    }
    async fn capacity(&self) -> Result<Capacity> {
        self.gate().await;
        self.inner.capacity().await
    }
    async fn create_vms(&self, spec: &VmSpec, count: u32) -> Result<Vec<VmId>> {
        self.gate().await;
        self.inner.create_vms(spec, count).await
    }
    async fn list_vms(&self, filter: &VmFilter) -> Result<Vec<Vm>> {
        self.gate().await;
        self.inner.list_vms(filter).await
    }
    async fn delete_vm(&self, id: &VmId) -> Result<()> {
        self.gate().await;
        self.inner.delete_vm(id).await
    }
}

/// After `at` (virtual time), runs `f` once.
fn at(secs: u64, f: impl FnOnce() + Send + 'static) {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(secs)).await;
        f();
    });
}

/// The bound the options document: a dead site is noticed within this long of its
/// last answer.
fn detection_bound(o: &DeployOptions) -> Duration {
    o.poll_max + o.site_timeout
}

fn unreachable_event<'a>(events: &'a [Event], site: &str) -> Option<&'a Event> {
    events.iter().find(|e| {
        matches!(e.kind, EventKind::SiteUnreachable { .. })
            && e.site.as_ref().is_some_and(|s| s.as_str() == site)
    })
}

fn on(report: &DeployReport, site: &str) -> usize {
    report
        .nodes
        .iter()
        .filter(|n| n.site.as_str() == site)
        .count()
}

fn alive_on(p: &MemoryProvider, cluster: &str) -> usize {
    p.alive_with_tag(TAG_CLUSTER, cluster).len()
}

#[tokio::test(start_paused = true)]
async fn a_site_that_stops_answering_is_noticed_within_the_bound_and_its_vms_are_reported_until_it_answers(
) {
    let (ps, topo) = federation(&[site("a", true), site("b", true), site("c", true)], 31);
    let b = Silent::new(ps[1].clone());
    let providers: Vec<Arc<dyn CloudProvider>> = vec![ps[0].clone(), b.clone(), ps[2].clone()];
    let opts = options();
    let mut d = Deployer::new(providers).with_options(opts.clone());
    let mut rx = d.subscribe();
    let req = request("blackhole", vec![group("worker", 9, None)]);
    let pl = placement(&[("worker", "a", 3), ("worker", "b", 3), ("worker", "c", 3)]);
    let plan = d.plan(&req, &topo, &pl).unwrap();
    let journal = MemoryJournal::new();
    // b creates its 3 VMs at once, then stops answering at 3 s (before they run).
    let silent = b.clone();
    at(3, move || silent.set(true));
    let t0 = Instant::now();
    let report = d
        .deploy(plan, FailurePolicy::AllOrNothing, &journal)
        .await
        .unwrap();
    let took = t0.elapsed();
    let events = drain(&mut rx);

    let seen = unreachable_event(&events, "b").expect("b is declared unreachable");
    assert!(
        seen.elapsed <= Duration::from_secs(3) + detection_bound(&opts),
        "noticed after {:?}, bound {:?} after its death at 3 s",
        seen.elapsed,
        detection_bound(&opts)
    );
    // The moved nodes boot (5-7 s) and are seen within a few polls.
    assert!(
        took <= Duration::from_secs(3) + detection_bound(&opts) + Duration::from_secs(30),
        "deploy took {took:?}"
    );
    // Every node runs elsewhere, but b's 3 VMs are unverified: partial, not ok.
    assert_eq!(report.result, DeployResult::Partial, "{report:#?}");
    assert_eq!(on(&report, "b"), 0);
    assert!(report.nodes.iter().all(|n| n.state == "running"));
    assert_eq!(report.moved.len(), 3);
    assert_eq!(
        report.leftovers.get("b"),
        Some(&3),
        "{:?}",
        report.leftovers
    );
    let why = &report.unreachable[&SiteId::new("b")];
    assert!(why.contains("site b") && why.contains("no answer"), "{why}");
    assert_eq!(alive_on(&ps[1], "blackhole"), 3, "they do run on b");

    // A repair while b is still silent: everything runs, but b's VMs from the first
    // pass are still unverified, so it is partial again.
    let still = d.repair(&journal).await.unwrap();
    assert_eq!(still.result, DeployResult::Partial, "{still:#?}");
    assert_eq!(still.leftovers.get("b"), Some(&3), "{:?}", still.leftovers);
    assert!(still.moved.is_empty() && still.recreated.is_empty());

    // b answers again: the next pass deletes exactly those, verified by listing b.
    b.set(false);
    let later = d.repair(&journal).await.unwrap();
    assert_eq!(later.deleted, 3, "{later:#?}");
    assert_eq!(later.result, DeployResult::Ok, "{later:#?}");
    assert!(later.leftovers.is_empty() && later.unreachable.is_empty());
    assert_eq!(alive_on(&ps[1], "blackhole"), 0);
    assert_exact(&ps, &later);
    d.destroy("blackhole", Some(&journal)).await.unwrap();
    assert_none_left(&ps, "blackhole");
}

#[tokio::test(start_paused = true)]
async fn leftovers_of_a_dead_site_are_deleted_in_the_same_pass_when_it_answers_again() {
    // a boots slowly (150 s), so the pass is still running when b is back at 100 s.
    let a = Arc::new(
        MemoryProvider::builder("a")
            .offering("Small", 1, 1024)
            .boot_time(Duration::from_secs(150), Duration::ZERO)
            .build(),
    );
    let (mut ps, topo) = federation(&[site("a", true), site("b", true)], 32);
    ps[0] = a;
    let b = Silent::new(ps[1].clone());
    let providers: Vec<Arc<dyn CloudProvider>> = vec![ps[0].clone(), b.clone()];
    let mut d = Deployer::new(providers).with_options(options());
    let mut rx = d.subscribe();
    let req = request("comeback", vec![group("worker", 4, None)]);
    let plan = d
        .plan(
            &req,
            &topo,
            &placement(&[("worker", "a", 2), ("worker", "b", 2)]),
        )
        .unwrap();
    let (down, up) = (b.clone(), b.clone());
    at(3, move || down.set(true));
    at(100, move || up.set(false));
    let report = d
        .deploy(plan, FailurePolicy::AllOrNothing, &MemoryJournal::new())
        .await
        .unwrap();
    let events = drain(&mut rx);
    assert!(unreachable_event(&events, "b").is_some());
    assert_eq!(
        count(&events, |k| matches!(k, EventKind::SiteAnswers)),
        1,
        "b is heard again"
    );
    assert_eq!(report.result, DeployResult::Ok, "{report:#?}");
    assert_eq!(report.deleted, 2, "b's two stale VMs");
    assert!(report.leftovers.is_empty() && report.unreachable.is_empty());
    assert_eq!(on(&report, "a"), 4);
    assert_exact(&ps, &report);
}

/// Deploys 2 workers per site on a, b, c under `spread`, b failing every call from
/// 3 s on; returns the report and how long the deploy took.
async fn outage_under(
    name: &str,
    sites: &[&'static str],
    min_sites: u32,
    survive: Option<f64>,
    policy: FailurePolicy,
) -> (Vec<Arc<MemoryProvider>>, DeployReport, Duration) {
    let defs: Vec<SiteDef> = sites.iter().map(|s| site(s, true)).collect();
    let (ps, topo) = federation(&defs, 33);
    let d = deployer(&ps);
    let mut req = request(name, vec![group("worker", 2 * sites.len() as u32, None)]);
    req.spread.min_sites = min_sites;
    req.spread.survive_site_loss = survive;
    let entries: Vec<(&str, &str, u32)> = sites.iter().map(|s| ("worker", *s, 2)).collect();
    let plan = d.plan(&req, &topo, &placement(&entries)).unwrap();
    let b = ps[1].clone();
    at(3, move || b.set_outage(true));
    let t0 = Instant::now();
    let report = d.deploy(plan, policy, &MemoryJournal::new()).await.unwrap();
    (ps, report, t0.elapsed())
}

#[tokio::test(start_paused = true)]
async fn a_move_that_would_break_min_sites_is_refused_and_the_result_is_never_ok() {
    // Three sites, min_sites = 3: once b is gone no placement keeps three sites.
    let (ps, report, took) = outage_under(
        "spread3",
        &["a", "b", "c"],
        3,
        None,
        FailurePolicy::BestEffort { min_fraction: 0.5 },
    )
    .await;
    assert_eq!(report.result, DeployResult::Partial, "{report:#?}");
    assert!(report.moved.is_empty(), "{:?}", report.moved);
    let failed: Vec<_> = report.nodes.iter().filter(|n| n.error.is_some()).collect();
    assert_eq!(failed.len(), 2);
    for n in &failed {
        let why = n.error.as_ref().unwrap().to_string();
        assert_eq!(n.site.as_str(), "b");
        assert!(why.contains("site b") && why.contains("outage"), "{why}");
        assert!(
            why.contains("min-sites") && why.contains("spread.min_sites = 3"),
            "{why}"
        );
    }
    assert_eq!(report.leftovers.get("b"), Some(&2));
    assert!(took <= Duration::from_secs(3) + detection_bound(&options()) + Duration::from_secs(10));
    assert_eq!(alive_on(&ps[0], "spread3") + alive_on(&ps[2], "spread3"), 4);

    // All or nothing: rolled back where it can be verified, b's VMs reported; it
    // returns without waiting `cleanup_timeout` (300 s) for b.
    let (ps, report, took) = outage_under(
        "spread3b",
        &["a", "b", "c"],
        3,
        None,
        FailurePolicy::AllOrNothing,
    )
    .await;
    assert_eq!(report.result, DeployResult::Failed, "{report:#?}");
    assert_eq!(
        report.leftovers.get("b"),
        Some(&2),
        "{:?}",
        report.leftovers
    );
    assert!(took < Duration::from_secs(120), "took {took:?}");
    assert_eq!(
        alive_on(&ps[0], "spread3b") + alive_on(&ps[2], "spread3b"),
        0
    );
    // b back: destroy leaves nothing, checked on every site.
    ps[1].set_outage(false);
    let d = deployer(&ps);
    assert_eq!(d.destroy("spread3b", None).await.unwrap().remaining, 0);
    assert_none_left(&ps, "spread3b");
}

#[tokio::test(start_paused = true)]
async fn a_move_that_would_break_survive_site_loss_is_refused() {
    // a and b, 2 workers each, at most 2 per site (50 %): b's workers cannot go to a.
    let (ps, report, _) = outage_under(
        "survive",
        &["a", "b"],
        1,
        Some(0.5),
        FailurePolicy::BestEffort { min_fraction: 0.5 },
    )
    .await;
    assert_eq!(report.result, DeployResult::Partial, "{report:#?}");
    assert!(report.moved.is_empty(), "{:?}", report.moved);
    let failed: Vec<_> = report.nodes.iter().filter(|n| n.error.is_some()).collect();
    assert_eq!(failed.len(), 2);
    for n in failed {
        let why = n.error.as_ref().unwrap().to_string();
        assert!(why.contains("site b"), "{why}");
        assert!(why.contains("a would break survive-site-loss"), "{why}");
    }
    assert_eq!(alive_on(&ps[0], "survive"), 2, "a keeps its share");
    // Without the constraint the same outage moves b's workers to a.
    let (ps, report, _) = outage_under(
        "nosurvive",
        &["a", "b"],
        1,
        None,
        FailurePolicy::AllOrNothing,
    )
    .await;
    assert_eq!(report.moved.len(), 2, "{report:#?}");
    assert_eq!(
        report.result,
        DeployResult::Partial,
        "b's VMs are unverified"
    );
    assert_eq!(alive_on(&ps[0], "nosurvive"), 4);
}

#[tokio::test(start_paused = true)]
async fn nodes_never_move_onto_a_site_that_is_failing() {
    // c is the roomiest site but down from the start; it is in the federation only.
    let defs = [
        site("a", true),
        site("b", true),
        SiteDef {
            id: "c",
            batch: true,
            capacity: 100_000,
        },
    ];
    let (ps, topo) = federation(&defs, 34);
    ps[2].set_outage(true);
    let d = deployer(&ps);
    let req = request("avoid", vec![group("worker", 6, None)]);
    let plan = d
        .plan(
            &req,
            &topo,
            &placement(&[("worker", "a", 3), ("worker", "b", 3)]),
        )
        .unwrap();
    let b = ps[1].clone();
    at(3, move || b.set_outage(true));
    let report = d
        .deploy(plan, FailurePolicy::AllOrNothing, &MemoryJournal::new())
        .await
        .unwrap();
    assert_eq!(report.moved.len(), 3, "{report:#?}");
    assert!(
        report.moved.iter().all(|m| m.to.as_str() == "a"),
        "{:?}",
        report.moved
    );
    assert_eq!(ps[2].calls(Method::Create), 0, "nothing was tried on c");
    assert_eq!(report.result, DeployResult::Partial);
    assert_eq!(on(&report, "a"), 6);
}

#[tokio::test(start_paused = true)]
async fn when_every_site_dies_deploy_returns_within_its_bounds_naming_each_site() {
    // The simulator killed: nothing answers any more (no error, no reply).
    let (ps, topo) = federation(&[site("a", true), site("b", false)], 35);
    let silent: Vec<Arc<Silent>> = ps.iter().map(|p| Silent::new(p.clone())).collect();
    let providers: Vec<Arc<dyn CloudProvider>> = silent
        .iter()
        .map(|s| s.clone() as Arc<dyn CloudProvider>)
        .collect();
    let opts = options();
    let mut d = Deployer::new(providers).with_options(opts.clone());
    let mut rx = d.subscribe();
    let req = request("alldead", vec![group("worker", 6, None)]);
    let plan = d
        .plan(
            &req,
            &topo,
            &placement(&[("worker", "a", 3), ("worker", "b", 3)]),
        )
        .unwrap();
    for s in &silent {
        let s = s.clone();
        at(3, move || s.set(true));
    }
    let t0 = Instant::now();
    let report = d
        .deploy(plan, FailurePolicy::AllOrNothing, &MemoryJournal::new())
        .await
        .unwrap();
    let took = t0.elapsed();
    // Detection, then a rollback that does not wait for dead sites.
    assert!(
        took <= Duration::from_secs(3) + detection_bound(&opts) + opts.poll_max,
        "took {took:?}"
    );
    assert_eq!(report.result, DeployResult::Failed, "{report:#?}");
    assert!(report.moved.is_empty(), "no move onto a dying site");
    let events = drain(&mut rx);
    for s in ["a", "b"] {
        assert!(unreachable_event(&events, s).is_some(), "{s}");
        assert!(report.unreachable[&SiteId::new(s)].contains(&format!("site {s}")));
    }
    for n in &report.nodes {
        let why = n.error.as_ref().expect("every node failed with a reason");
        assert!(
            why.to_string().contains(&format!("site {}", n.site)),
            "{why}"
        );
        // Typed: the site that did not answer, and a class a front end acts on.
        assert_eq!(why.site.as_ref(), Some(&n.site), "{why:?}");
    }
    let total: usize = report.leftovers.values().sum();
    assert!(total >= 4, "{:?}", report.leftovers);
    // The sites come back: destroy leaves nothing.
    for s in &silent {
        s.set(false);
    }
    let gone = d.destroy("alldead", None).await.unwrap();
    assert_eq!(gone.remaining, 0);
    assert_none_left(&ps, "alldead");
}

#[tokio::test(start_paused = true)]
async fn a_site_refusing_credentials_mid_deploy_is_unreachable_at_once_and_cleaned_when_it_answers()
{
    let (ps, topo) = federation(&[site("a", true), site("b", true), site("c", true)], 36);
    let mut d = deployer(&ps);
    let mut rx = d.subscribe();
    let req = request("creds", vec![group("worker", 6, None)]);
    let plan = d
        .plan(
            &req,
            &topo,
            &placement(&[("worker", "a", 2), ("worker", "b", 2), ("worker", "c", 2)]),
        )
        .unwrap();
    // b passes the check before the deployment; once its creates are asked for, its
    // next listing says the key is refused.
    let b = ps[1].clone();
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut armed = false;
        while let Some(ev) = rx.recv().await {
            if !armed
                && ev.site.as_ref().is_some_and(|s| s.as_str() == "b")
                && matches!(ev.kind, EventKind::VmRequested { .. })
            {
                b.fail_next(
                    Method::List,
                    ErrorKind::Unauthenticated,
                    FaultTiming::Before,
                );
                armed = true;
            }
            seen.push(ev);
        }
        seen
    });
    let report = d
        .deploy(plan, FailurePolicy::AllOrNothing, &MemoryJournal::new())
        .await
        .unwrap();
    drop(d);
    let events = watcher.await.unwrap();
    let seen = unreachable_event(&events, "b").expect("b is unreachable");
    assert!(
        seen.elapsed < options().site_timeout,
        "not waited for: {:?}",
        seen.elapsed
    );
    match &seen.kind {
        EventKind::SiteUnreachable { error } => {
            let text = error.to_string();
            assert!(
                text.contains("site b") && text.contains("unauthenticated"),
                "{error}"
            );
            // Typed: refused credentials are the operator's to fix, not transient.
            assert_eq!(error.kind, intercloud_core::ErrorKind::Unauthenticated);
            assert_eq!(error.class, intercloud_core::ErrorClass::OperatorConfig);
            assert_eq!(error.site.as_ref().map(|s| s.as_str()), Some("b"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(report.moved.len(), 2, "{report:#?}");
    // b answers the next (background) listing: its 2 VMs are deleted in this pass.
    assert_eq!(report.result, DeployResult::Ok, "{report:#?}");
    assert_eq!(report.deleted, 2);
    assert_eq!(alive_on(&ps[1], "creds"), 0);
    assert_exact(&ps, &report);
}

#[test]
fn the_documented_defaults_bound_detection_to_80_seconds() {
    let o = DeployOptions::default();
    assert_eq!(o.site_timeout, Duration::from_secs(60));
    assert_eq!(o.poll_max, Duration::from_secs(20));
    assert_eq!(detection_bound(&o), Duration::from_secs(80));
}

/// A fabric whose links are made, but whose status calls fail (temporarily) forever:
/// the gateway of a site that went away.
#[derive(Debug, Default)]
struct SilentLinks;

#[async_trait]
impl VpnFabric for SilentLinks {
    fn kind(&self) -> FabricKind {
        FabricKind::WireGuard
    }
    async fn prepare_site(&self, site: &SiteContext) -> Result<SiteEndpoint> {
        Ok(SiteEndpoint {
            site: site.site.clone(),
            kind: FabricKind::WireGuard,
            public_address: Some("127.0.0.1".into()),
            overlay_subnet: site.overlay_subnet.clone(),
            resources: Default::default(),
            attributes: Default::default(),
        })
    }
    async fn connect(&self, a: &SiteEndpoint, b: &SiteEndpoint, _: &LinkSpec) -> Result<LinkId> {
        Ok(LinkId(format!("{}-{}", a.site, b.site)))
    }
    fn member_bootstrap(&self, _: &Member) -> Result<Bootstrap> {
        Ok(Bootstrap::default())
    }
    async fn link_status(&self, _: &LinkId) -> Result<LinkState> {
        Err(intercloud_core::Error::unavailable(
            "gateway does not answer (injected)",
        ))
    }
    async fn disconnect(&self, _: &LinkId) -> Result<()> {
        Ok(())
    }
    async fn release_site(&self, _: &SiteEndpoint) -> Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_link_whose_status_never_comes_is_reported_unreachable_within_site_timeout() {
    let (ps, topo) = federation(&[site("a", true), site("b", true)], 37);
    let opts = options();
    let d = Deployer::new(dyns(&ps))
        .with_options(opts.clone())
        .with_fabric(Arc::new(SilentLinks));
    let req = request("links", vec![group("worker", 4, None)]);
    let plan = d
        .plan(
            &req,
            &topo,
            &placement(&[("worker", "a", 2), ("worker", "b", 2)]),
        )
        .unwrap();
    let t0 = Instant::now();
    let report = d
        .deploy(
            plan,
            FailurePolicy::BestEffort { min_fraction: 0.5 },
            &MemoryJournal::new(),
        )
        .await
        .unwrap();
    // The VMs run within ~10 s; the link is given up site_timeout after its first
    // failed status (not after the 600 s pass timeout).
    assert!(
        t0.elapsed() <= Duration::from_secs(20) + opts.site_timeout + opts.poll_max,
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(report.result, DeployResult::Partial, "{report:#?}");
    assert_eq!(report.links.len(), 1);
    assert_eq!(report.links[0].state, "unreachable", "{:?}", report.links);
    assert!(report.nodes.iter().all(|n| n.state == "running"));
    d.destroy("links", None).await.unwrap();
    assert_none_left(&ps, "links");
}
