//! The clusters users asked for: who owns each, its deployer and journal, its phase
//! and the log of deployer events the progress page streams.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use intercloud_core::deploy::{
    ClusterStatus, DeployOptions, DeployReport, Deployer, Event, FailurePolicy, MemoryJournal,
    Plan, PlanOptions,
};
use intercloud_core::wrap::{stack, SitePolicy};
use intercloud_core::{CloudProvider, PlacementCounts};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::render::describe_event;
use crate::AppState;
use intercloud_vpn::{plan_cluster, ClusterConfigurer, SiteVpn};

/// Where a cluster is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// The deployer is creating it.
    Deploying,
    /// Every node runs.
    Running,
    /// Some nodes run.
    Partial,
    /// The deployment failed (and was rolled back when possible).
    Failed(String),
    /// A repair pass runs.
    Repairing,
    /// Destroy runs.
    Destroying,
    /// Everything was deleted and verified gone.
    Destroyed,
}

impl Phase {
    /// A short label (`running`, `failed`, …).
    pub fn label(&self) -> &'static str {
        match self {
            Self::Deploying => "deploying",
            Self::Running => "running",
            Self::Partial => "partial",
            Self::Failed(_) => "failed",
            Self::Repairing => "repairing",
            Self::Destroying => "destroying",
            Self::Destroyed => "destroyed",
        }
    }

    /// Whether work is under way (the progress stream keeps going).
    pub fn busy(&self) -> bool {
        matches!(self, Self::Deploying | Self::Repairing | Self::Destroying)
    }
}

/// One line of a cluster's progress log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// The event's name (`vm_running`, …) or `portal`.
    pub kind: String,
    /// What happened, for people.
    pub text: String,
}

#[derive(Debug)]
struct Live {
    phase: Phase,
    log: Vec<LogLine>,
    report: Option<DeployReport>,
}

/// One user's cluster.
pub struct ClusterRecord {
    /// The portal's id (random; in URLs).
    pub id: String,
    /// The owner.
    pub owner: String,
    /// The name the user gave.
    pub name: String,
    /// The deployer's cluster name (tags every VM): the user's name plus a suffix, so
    /// two users' clusters never share a tag.
    pub tag: String,
    /// The counts deployed.
    pub placement: PlacementCounts,
    deployer: Deployer,
    journal: MemoryJournal,
    events: tokio::sync::Mutex<UnboundedReceiver<Event>>,
    live: Mutex<Live>,
}

impl fmt::Debug for ClusterRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterRecord")
            .field("id", &self.id)
            .field("owner", &self.owner)
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

impl ClusterRecord {
    fn lock(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.lock().phase.clone()
    }

    fn set_phase(&self, phase: Phase) {
        self.push("portal", format!("cluster is {}", phase.label()));
        self.lock().phase = phase;
    }

    /// Log lines from `from` on, and whether work is still under way.
    pub fn log_since(&self, from: usize) -> (Vec<LogLine>, bool) {
        let l = self.lock();
        (
            l.log
                .get(from..)
                .map(<[LogLine]>::to_vec)
                .unwrap_or_default(),
            l.phase.busy(),
        )
    }

    /// The last pass's report.
    pub fn report(&self) -> Option<DeployReport> {
        self.lock().report.clone()
    }

    fn push(&self, kind: &str, text: String) {
        self.lock().log.push(LogLine {
            kind: kind.to_owned(),
            text,
        });
    }

    fn push_event(&self, event: &Event) {
        let kind = serde_json::to_value(&event.kind)
            .ok()
            .and_then(|v| v.get("event").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_else(|| "event".into());
        self.push(&kind, describe_event(event));
    }

    /// Wanted vs observed, one listing per site.
    ///
    /// # Errors
    /// As [`Deployer::status`].
    pub async fn status(&self) -> intercloud_core::Result<ClusterStatus> {
        self.deployer.status(&self.journal).await
    }
}

/// Every cluster, by id.
#[derive(Debug, Default)]
pub struct Clusters {
    map: Mutex<BTreeMap<String, Arc<ClusterRecord>>>,
}

impl Clusters {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<ClusterRecord>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cluster `id` when `user` owns it; `None` otherwise (another user's cluster is
    /// indistinguishable from a missing one).
    pub fn owned(&self, id: &str, user: &str) -> Option<Arc<ClusterRecord>> {
        self.lock().get(id).filter(|c| c.owner == user).cloned()
    }

    /// `user`'s clusters.
    pub fn of(&self, user: &str) -> Vec<Arc<ClusterRecord>> {
        self.lock()
            .values()
            .filter(|c| c.owner == user)
            .cloned()
            .collect()
    }
}

/// `user`'s providers for every site where they registered keys, each wrapped in the
/// retry / rate-limit / timeout stack.
///
/// # Errors
/// A message when the vault cannot be read or a site cannot be connected.
pub async fn user_providers(
    app: &AppState,
    user: &str,
) -> Result<Vec<Arc<dyn CloudProvider>>, String> {
    let fed = app.backend.federation();
    let mut out: Vec<Arc<dyn CloudProvider>> = Vec::new();
    for site in app.vault.list(user).await.map_err(|e| e.to_string())? {
        let Some(cfg) = fed.site(&site) else { continue };
        let Some(creds) = app
            .vault
            .get(user, &site)
            .await
            .map_err(|e| e.to_string())?
        else {
            continue;
        };
        let provider = app
            .backend
            .connect(&site, &creds)
            .map_err(|e| e.to_string())?;
        let stacked =
            stack(provider, &SitePolicy::for_site(&cfg.to_site())).map_err(|e| e.to_string())?;
        out.push(Arc::new(stacked));
    }
    Ok(out)
}

/// What each of `user`'s sites offers the overlay for `wish`: its provider's
/// capabilities, its cloud's own VPN fabric, built from the user's own keys, and
/// the guest network that fabric routes.
async fn user_vpns(
    app: &AppState,
    user: &str,
    wish: intercloud_core::FabricChoice,
    providers: &[Arc<dyn CloudProvider>],
) -> Result<BTreeMap<intercloud_core::SiteId, SiteVpn>, String> {
    let mut out = BTreeMap::new();
    for p in providers {
        let native = match app
            .vault
            .get(user, p.site())
            .await
            .map_err(|e| e.to_string())?
        {
            Some(creds) => app
                .backend
                .connect_vpn(p.site(), &creds, wish)
                .map_err(|e| e.to_string())?,
            None => None,
        };
        let mut vpn = SiteVpn::new(p.capabilities(), native);
        vpn.read_network(p.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        out.insert(p.site().clone(), vpn);
    }
    Ok(out)
}

/// Builds the deployer from `user`'s own keys, plans `placement` and starts the
/// deployment in the background; returns the new cluster's record.
///
/// # Errors
/// A message for the user: keys missing for a placed site, a plan error.
pub async fn launch(
    app: &AppState,
    user: &str,
    name: &str,
    request: &intercloud_core::ClusterRequest,
    placement: &PlacementCounts,
    options: DeployOptions,
) -> Result<Arc<ClusterRecord>, String> {
    let providers = user_providers(app, user).await?;
    for (group, sites) in placement {
        for (site, n) in sites {
            if *n > 0 && !providers.iter().any(|p| p.site() == site) {
                return Err(format!(
                    "group {group} is placed on {site}, but you have not registered keys for {site}: add them on the Cloud keys page"
                ));
            }
        }
    }
    // Pre-flight: every placed site must accept this user's keys before anything is
    // created (a rejected key would otherwise surface mid-deployment).
    let placed: std::collections::BTreeSet<&intercloud_core::SiteId> = placement
        .values()
        .flat_map(|s| s.iter().filter(|(_, n)| **n > 0).map(|(s, _)| s))
        .collect();
    for p in providers.iter().filter(|p| placed.contains(p.site())) {
        if let Err(e) = p.offerings().await {
            return Err(format!(
                "{} did not accept your keys ({e}); fix them on the Cloud keys page",
                p.site()
            ));
        }
    }
    let topology = app.backend.federation().topology();
    let vpns = user_vpns(app, user, request.vpn.fabric, &providers).await?;
    let (deployer, plan) = build(
        app, request, &topology, placement, providers, &vpns, options,
    )?;
    let mut deployer = deployer;
    let events = deployer.subscribe();
    let record = Arc::new(ClusterRecord {
        id: crate::session::random_token()[..16].to_owned(),
        owner: user.to_owned(),
        name: name.to_owned(),
        tag: request.name.clone(),
        placement: placement.clone(),
        deployer,
        journal: MemoryJournal::new(),
        events: tokio::sync::Mutex::new(events),
        live: Mutex::new(Live {
            phase: Phase::Deploying,
            log: Vec::new(),
            report: None,
        }),
    });
    app.clusters
        .lock()
        .insert(record.id.clone(), Arc::clone(&record));
    tracing::info!(user, cluster = %record.tag, nodes = plan.nodes.len(), "deployment started");
    let rec = Arc::clone(&record);
    tokio::spawn(async move {
        let pass = rec
            .deployer
            .deploy(plan, FailurePolicy::AllOrNothing, &rec.journal);
        let out = forwarding(&rec, pass).await;
        finish_pass(&rec, out);
    });
    Ok(record)
}

/// The deployer over `providers` (with the overlay `[vpn] fabric` asks for when the
/// placement spans sites: WireGuard, or native gateways, strongSwan gateway VMs and
/// L2TP/IPsec clients from `vpns`) and its plan: a draft plan gives the nodes, the
/// overlay assigns their addresses, the final plan uses them and has the VPN steps.
fn build(
    app: &AppState,
    request: &intercloud_core::ClusterRequest,
    topology: &intercloud_core::Topology,
    placement: &PlacementCounts,
    providers: Vec<Arc<dyn CloudProvider>>,
    vpns: &BTreeMap<intercloud_core::SiteId, SiteVpn>,
    options: DeployOptions,
) -> Result<(Deployer, Plan), String> {
    let limits: std::collections::BTreeMap<_, _> = providers
        .iter()
        .map(|p| (p.site().clone(), p.capabilities().max_user_data))
        .collect();
    let caps = providers
        .iter()
        .map(|p| (p.site().clone(), p.capabilities()))
        .collect();
    let fed = app.backend.federation();
    let (plan, overlay) = plan_cluster(
        request,
        topology,
        placement,
        &caps,
        PlanOptions::default(),
        vpns,
        |site| fed.site(site).and_then(|c| c.gateway.clone()),
    )
    .map_err(|e| e.to_string())?;
    let configurer = ClusterConfigurer::new(request.profile, limits, None)
        .with_overlay(overlay.as_ref().map(|o| o.boot.clone()));
    let mut deployer = Deployer::new(providers)
        .with_options(options)
        .with_configurer(Arc::new(configurer));
    if let Some(o) = overlay {
        deployer = deployer.with_fabric(o.fabric);
    }
    Ok((deployer, plan))
}

/// Runs one pass of the deployer while copying its events into the log; every event
/// of the pass is in the log when this returns (so the phase changes after them).
async fn forwarding<T>(rec: &ClusterRecord, pass: impl std::future::Future<Output = T>) -> T {
    let mut rx = rec.events.lock().await;
    tokio::pin!(pass);
    loop {
        tokio::select! {
            out = &mut pass => {
                while let Ok(ev) = rx.try_recv() {
                    rec.push_event(&ev);
                }
                return out;
            }
            Some(ev) = rx.recv() => rec.push_event(&ev),
        }
    }
}

fn finish_pass(rec: &ClusterRecord, out: intercloud_core::Result<DeployReport>) {
    use intercloud_core::deploy::DeployResult;
    let phase = match &out {
        Ok(r) => match r.result {
            DeployResult::Ok => Phase::Running,
            DeployResult::Partial => Phase::Partial,
            DeployResult::RolledBack => Phase::Failed("rolled back: nothing is left".into()),
            DeployResult::Failed => Phase::Failed("failed; some resources may remain".into()),
        },
        Err(e) => Phase::Failed(e.to_string()),
    };
    if let Ok(r) = out {
        rec.lock().report = Some(r);
    } else if let Err(e) = &out {
        rec.push("portal", format!("error: {e}"));
    }
    tracing::info!(cluster = %rec.tag, phase = phase.label(), "pass finished");
    rec.set_phase(phase);
}

/// Starts a repair pass in the background.
pub fn start_repair(rec: Arc<ClusterRecord>) {
    rec.set_phase(Phase::Repairing);
    tokio::spawn(async move {
        let out = forwarding(&rec, rec.deployer.repair(&rec.journal)).await;
        finish_pass(&rec, out);
    });
}

/// Starts destroy in the background.
pub fn start_destroy(rec: Arc<ClusterRecord>) {
    rec.set_phase(Phase::Destroying);
    tokio::spawn(async move {
        let out = forwarding(&rec, rec.deployer.destroy(&rec.tag, Some(&rec.journal))).await;
        let phase = match out {
            Ok(r) if r.is_clean() => {
                rec.push(
                    "portal",
                    format!("deleted {} VMs; verified none left", r.deleted),
                );
                Phase::Destroyed
            }
            Ok(r) => Phase::Failed(format!(
                "destroy deleted {} VMs but {} remain and {} sites could not be checked ({}); \
                 destroy again",
                r.deleted,
                r.remaining,
                r.unverified.len(),
                r.unverified
                    .keys()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Err(e) => Phase::Failed(e.to_string()),
        };
        tracing::info!(cluster = %rec.tag, phase = phase.label(), "destroy finished");
        rec.set_phase(phase);
    });
}

#[cfg(test)]
mod vpn_fabric_tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use base64::Engine as _;
    use intercloud_core::{MemoryVault, SiteId, Vault};
    use intercloud_sim::ResourceKind;

    use super::*;
    use crate::sim::SimBackend;
    use crate::Portal;

    async fn portal_on_sim() -> (AppState, Arc<SimBackend>) {
        let sim = Arc::new(SimBackend::start(0.01).await.unwrap());
        let vault = Arc::new(MemoryVault::new());
        for site in ["hokkaido", "nii", "tokyo"] {
            let id = SiteId::new(site);
            let creds = sim.accepted_credentials(&id).unwrap();
            vault.put("alice", &id, creds).await.unwrap();
        }
        let portal = Arc::new(Portal {
            backend: sim.clone(),
            vault,
            sessions: crate::session::Sessions::new(true),
            users: crate::auth::LocalUsers::new(&[]).unwrap(),
            trusted_proxy: None,
            clusters: Clusters::default(),
            drafts: std::sync::Mutex::new(HashMap::new()),
            planner: intercloud_core::planner::Planner::default(),
            deploy: DeployOptions {
                poll_min: Duration::from_millis(20),
                poll_max: Duration::from_millis(100),
                ..DeployOptions::default()
            },
        });
        (portal, sim)
    }

    async fn settle(rec: &ClusterRecord) -> Phase {
        for _ in 0..500 {
            let p = rec.phase();
            if !p.busy() {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("still {:?}", rec.phase());
    }

    fn alive(sim: &SimBackend, kind: ResourceKind) -> Vec<intercloud_sim::ResourceRecord> {
        sim.sim()
            .resources()
            .into_iter()
            .filter(|r| r.kind == kind && r.is_alive())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_ipsec_cluster_is_deployed_and_destroyed_through_the_portal() {
        let (app, sim) = portal_on_sim().await;
        let request = intercloud_core::config::cluster_from_toml(
            "name = \"portal-ipsec\"\nprofile = \"hadoop\"\n[[group]]\nrole = \"master\"\n\
             count = 1\nlevel = \"S\"\n[[group]]\nrole = \"worker\"\ncount = 2\nlevel = \"S\"\n\
             [vpn]\nfabric = \"ipsec\"\n",
            "t",
        )
        .unwrap();
        let placement: PlacementCounts = serde_json::from_str(
            r#"{"master": {"hokkaido": 1}, "worker": {"nii": 1, "tokyo": 1}}"#,
        )
        .unwrap();
        let opts = app.deploy.clone();
        let rec = launch(&app, "alice", "demo", &request, &placement, opts)
            .await
            .unwrap();
        assert_eq!(settle(&rec).await, Phase::Running);
        let report = rec.report().unwrap();
        assert_eq!(report.links.len(), 3, "{report:?}");
        let mut gw: Vec<String> = alive(&sim, ResourceKind::VpnGateway)
            .iter()
            .map(|g| g.site.to_string())
            .collect();
        gw.sort();
        assert_eq!(
            gw,
            ["hokkaido", "tokyo"],
            "native gateways where clouds have them"
        );
        let nii: Vec<String> = alive(&sim, ResourceKind::Vm)
            .into_iter()
            .filter(|v| v.site.as_str() == "nii")
            .map(|v| {
                let raw = v.user_data.unwrap_or_default();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(raw.trim())
                    .unwrap();
                String::from_utf8(bytes).unwrap()
            })
            .collect();
        assert_eq!(nii.len(), 1);
        assert!(
            nii[0].contains("/etc/swanctl/conf.d/intercloud.conf"),
            "OpenNebula's node is the strongSwan gateway"
        );

        start_destroy(rec.clone());
        assert_eq!(settle(&rec).await, Phase::Destroyed);
        assert!(alive(&sim, ResourceKind::Vm).is_empty());
        for kind in [
            ResourceKind::VpnGateway,
            ResourceKind::CustomerGateway,
            ResourceKind::VpnConnection,
        ] {
            assert!(alive(&sim, kind).is_empty(), "{kind:?} left");
        }
    }
}
