//! Shared fixtures of the deployer tests: a federation of in-memory sites, requests,
//! and the orphan / duplicate checks every fault test ends with.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use intercloud_core::deploy::{DeployOptions, DeployReport, Deployer, Event, EventKind};
use intercloud_core::{
    Capabilities, Capacity, CloudProvider, ClusterRequest, LevelOffering, Link, MemoryProvider,
    Middleware, NodeGroup, Offering, PlacementCounts, Result, ServiceLevel, Site, SiteId, Topology,
    Vm, VmFilter, VmId, VmSpec, TAG_CLUSTER,
};
use tokio::sync::Notify;

/// A site of the test federation.
pub struct SiteDef {
    pub id: &'static str,
    pub batch: bool,
    pub capacity: u32,
}

pub fn site(id: &'static str, batch: bool) -> SiteDef {
    SiteDef {
        id,
        batch,
        capacity: 1000,
    }
}

/// In-memory providers (5 s boot + up to 2 s jitter) and the matching topology, every
/// pair linked.
pub fn federation(defs: &[SiteDef], seed: u64) -> (Vec<Arc<MemoryProvider>>, Topology) {
    let mut providers = Vec::new();
    let mut sites = Vec::new();
    for (i, d) in defs.iter().enumerate() {
        let b = MemoryProvider::builder(d.id)
            .offering("Small", 1, 1024)
            .boot_time(Duration::from_secs(5), Duration::from_secs(2))
            .seed(seed.wrapping_mul(31).wrapping_add(i as u64));
        let b = if d.batch {
            b.batch(true, 50)
        } else {
            b.batch(false, 1)
        };
        providers.push(Arc::new(b.build()));
        sites.push(Site {
            id: SiteId::new(d.id),
            middleware: Middleware::CloudStack,
            endpoint: "http://127.0.0.1:9/client/api".into(),
            zone: None,
            levels: [(
                ServiceLevel::new("S"),
                LevelOffering {
                    offering: "Small".into(),
                    image: None,
                    price_per_hour: 0.1,
                    capacity: d.capacity,
                },
            )]
            .into_iter()
            .collect(),
            rate_limit: None,
            max_concurrency: None,
        });
    }
    let mut links = Vec::new();
    for (i, a) in defs.iter().enumerate() {
        for b in &defs[i + 1..] {
            links.push(Link {
                between: [SiteId::new(a.id), SiteId::new(b.id)],
                rtt_ms: 10.0,
                bandwidth_mbps: 1000.0,
                vpn_overhead: 0.21,
            });
        }
    }
    (providers, Topology::new(sites, links))
}

pub fn group(role: &str, count: u32, sites: Option<&[&str]>) -> NodeGroup {
    NodeGroup {
        role: role.into(),
        count,
        level: ServiceLevel::new("S"),
        colocate: false,
        traffic: None,
        sites: sites.map(|s| s.iter().map(|x| SiteId::new(*x)).collect()),
        max_rtt_ms: None,
    }
}

pub fn request(name: &str, groups: Vec<NodeGroup>) -> ClusterRequest {
    ClusterRequest {
        name: name.into(),
        profile: Default::default(),
        groups,
        spread: Default::default(),
        vpn: Default::default(),
    }
}

pub fn placement(entries: &[(&str, &str, u32)]) -> PlacementCounts {
    let mut p: PlacementCounts = BTreeMap::new();
    for (role, site, n) in entries {
        p.entry((*role).to_string())
            .or_default()
            .insert(SiteId::new(*site), *n);
    }
    p
}

/// Fast options for virtual time.
pub fn options() -> DeployOptions {
    DeployOptions {
        poll_min: Duration::from_secs(2),
        poll_max: Duration::from_secs(10),
        timeout: Duration::from_secs(600),
        cleanup_timeout: Duration::from_secs(300),
        ..DeployOptions::default()
    }
}

pub fn dyns(ps: &[Arc<MemoryProvider>]) -> Vec<Arc<dyn CloudProvider>> {
    ps.iter()
        .map(|p| p.clone() as Arc<dyn CloudProvider>)
        .collect()
}

pub fn deployer(ps: &[Arc<MemoryProvider>]) -> Deployer {
    Deployer::new(dyns(ps)).with_options(options())
}

/// Every alive VM of `cluster` on every site (the orphan check lists every site).
pub fn alive(ps: &[Arc<MemoryProvider>], cluster: &str) -> Vec<Vm> {
    ps.iter()
        .flat_map(|p| p.alive_with_tag(TAG_CLUSTER, cluster))
        .collect()
}

/// Zero orphans and zero duplicates: the alive VMs of the cluster are exactly the
/// report's nodes' VMs, one per node, all running.
pub fn assert_exact(ps: &[Arc<MemoryProvider>], report: &DeployReport) {
    let vms = alive(ps, &report.cluster);
    let alive_ids: BTreeSet<(SiteId, VmId)> =
        vms.iter().map(|v| (v.site.clone(), v.id.clone())).collect();
    let mut node_ids = BTreeSet::new();
    for n in &report.nodes {
        let id = n
            .vm_id
            .clone()
            .unwrap_or_else(|| panic!("node {} has no VM: {n:?}", n.name));
        assert_eq!(n.state, "running", "node {} is not running: {n:?}", n.name);
        assert!(
            node_ids.insert((n.site.clone(), id)),
            "node {} shares a VM",
            n.name
        );
    }
    assert_eq!(
        alive_ids, node_ids,
        "alive VMs of the cluster must be exactly one per node (orphans or duplicates)"
    );
    let overlay: BTreeSet<&str> = report.nodes.iter().map(|n| n.overlay_ip.as_str()).collect();
    assert_eq!(
        overlay.len(),
        report.nodes.len(),
        "overlay addresses are unique"
    );
}

pub fn assert_none_left(ps: &[Arc<MemoryProvider>], cluster: &str) {
    let left = alive(ps, cluster);
    assert!(left.is_empty(), "orphans left: {left:#?}");
}

pub fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Event>) -> Vec<Event> {
    let mut v = Vec::new();
    while let Ok(e) = rx.try_recv() {
        v.push(e);
    }
    v
}

pub fn count(events: &[Event], f: impl Fn(&EventKind) -> bool) -> usize {
    events.iter().filter(|e| f(&e.kind)).count()
}

/// A provider that forwards to a memory site and, at the N-th call counted over all
/// wrapped sites, lets the call take effect and then never returns (the process
/// "dies" right after the cloud acted, before the journal could record it).
#[derive(Debug)]
pub struct CrashAt {
    pub inner: Arc<MemoryProvider>,
    pub calls: Arc<AtomicU64>,
    pub crash_at: u64,
    pub crashed: Arc<Notify>,
}

impl CrashAt {
    async fn step(&self) {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.crash_at {
            self.crashed.notify_one();
            std::future::pending::<()>().await;
        }
    }
}

#[async_trait]
impl CloudProvider for CrashAt {
    fn site(&self) -> &SiteId {
        self.inner.site()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn offerings(&self) -> Result<Vec<Offering>> {
        let r = self.inner.offerings().await;
        self.step().await;
        r
    }
    async fn capacity(&self) -> Result<Capacity> {
        let r = self.inner.capacity().await;
        self.step().await;
        r
    }
    async fn create_vms(&self, spec: &VmSpec, count: u32) -> Result<Vec<VmId>> {
        let r = self.inner.create_vms(spec, count).await;
        self.step().await;
        r
    }
    async fn list_vms(&self, filter: &VmFilter) -> Result<Vec<Vm>> {
        let r = self.inner.list_vms(filter).await;
        self.step().await;
        r
    }
    async fn delete_vm(&self, id: &VmId) -> Result<()> {
        let r = self.inner.delete_vm(id).await;
        self.step().await;
        r
    }
    async fn start_vm(&self, id: &VmId) -> Result<()> {
        let r = self.inner.start_vm(id).await;
        self.step().await;
        r
    }
}

/// A provider whose creates all fail with `kind` once `after` creates succeeded.
#[derive(Debug)]
pub struct FailCreatesAfter {
    pub inner: Arc<MemoryProvider>,
    pub after: u64,
    pub done: AtomicU64,
    pub kind: intercloud_core::ErrorKind,
}

#[async_trait]
impl CloudProvider for FailCreatesAfter {
    fn site(&self) -> &SiteId {
        self.inner.site()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn offerings(&self) -> Result<Vec<Offering>> {
        self.inner.offerings().await
    }
    async fn capacity(&self) -> Result<Capacity> {
        self.inner.capacity().await
    }
    async fn create_vms(&self, spec: &VmSpec, count: u32) -> Result<Vec<VmId>> {
        if self.done.fetch_add(1, Ordering::SeqCst) >= self.after {
            return Err(
                intercloud_core::Error::new(self.kind, "create refused (injected)")
                    .with_site(self.inner.site()),
            );
        }
        self.inner.create_vms(spec, count).await
    }
    async fn list_vms(&self, filter: &VmFilter) -> Result<Vec<Vm>> {
        self.inner.list_vms(filter).await
    }
    async fn delete_vm(&self, id: &VmId) -> Result<()> {
        self.inner.delete_vm(id).await
    }
    async fn start_vm(&self, id: &VmId) -> Result<()> {
        self.inner.start_vm(id).await
    }
}
