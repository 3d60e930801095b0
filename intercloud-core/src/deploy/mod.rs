//! The deployer: one operation that brings a planned cluster up on every site —
//! overlay endpoints, links, member VMs — with a crash-safe journal, a failure policy,
//! resume, repair, status and destroy.
//!
//! Plan a small cluster over two sites, deploy it on in-memory clouds with a journal,
//! check it, then destroy it (virtual time: the polls take no real seconds):
//!
//! ```
//! use std::sync::Arc;
//!
//! use intercloud_core::config::{cluster_from_toml, FederationConfig};
//! use intercloud_core::deploy::{DeployResult, Deployer, FailurePolicy, MemoryJournal};
//! use intercloud_core::planner::{Objective, Planner};
//! use intercloud_core::{CloudProvider, MemoryProvider};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> intercloud_core::Result<()> {
//! let federation = FederationConfig::from_toml(
//!     r#"
//! [[site]]
//! id = "hokkaido"
//! middleware = "opennebula"
//! endpoint = "http://one.hokkaido.example:2633/RPC2"
//! credentials = "env:HOKKAIDO"
//! [site.levels.S]
//! offering = "small"
//! price_per_hour = 0.02
//! capacity = 2
//!
//! [[site]]
//! id = "tokyo"
//! middleware = "opennebula"
//! endpoint = "http://one.tokyo.example:2633/RPC2"
//! credentials = "env:TOKYO"
//! [site.levels.S]
//! offering = "small"
//! price_per_hour = 0.03
//! capacity = 10
//!
//! [[link]]
//! between = ["hokkaido", "tokyo"]
//! rtt_ms = 20
//! bandwidth_mbps = 1000
//! "#,
//!     "federation.toml",
//! )?;
//! let request = cluster_from_toml(
//!     "name = \"demo\"\n[[group]]\nrole = \"worker\"\ncount = 3\nlevel = \"S\"\n",
//!     "cluster.toml",
//! )?;
//! let topology = federation.topology();
//! // The cheapest placement: hokkaido's 2, then 1 on tokyo.
//! let placed = Planner::new().plan(&topology, &request, &Objective::money())?;
//!
//! // One provider per site: a backend (wrapped by `wrap::stack`) in production.
//! let providers: Vec<Arc<dyn CloudProvider>> = ["hokkaido", "tokyo"]
//!     .into_iter()
//!     .map(|site| {
//!         let cloud = MemoryProvider::builder(site).offering("small", 1, 1024).build();
//!         Arc::new(cloud) as Arc<dyn CloudProvider>
//!     })
//!     .collect();
//! let mut deployer = Deployer::new(providers);
//! let mut events = deployer.subscribe(); // progress, for a CLI or a portal
//!
//! let plan = deployer.plan(&request, &topology, &placed.placement)?;
//! let journal = MemoryJournal::new(); // `FileJournal` survives a crash
//! let report = deployer.deploy(plan, FailurePolicy::AllOrNothing, &journal).await?;
//! assert_eq!(report.result, DeployResult::Ok);
//! assert_eq!(report.nodes.len(), 3);
//! assert!(report.nodes.iter().all(|n| n.state == "running" && n.error.is_none()));
//! assert!(events.try_recv().is_ok());
//!
//! // Wanted versus what the sites list, from the journal alone.
//! let status = deployer.status(&journal).await?;
//! assert_eq!(status.result, DeployResult::Ok);
//!
//! let gone = deployer.destroy("demo", Some(&journal)).await?;
//! assert_eq!((gone.deleted, gone.remaining), (3, 0));
//! # Ok(())
//! # }
//! ```
//!
//! The same deployer resumes an interrupted deployment from its journal
//! ([`Deployer::resume`]), repairs a running one ([`Deployer::repair`]) and links
//! the sites when given a fabric ([`Deployer::with_fabric`]); a
//! [`NodeConfigurer`] ([`Deployer::with_configurer`]) writes each node's user data.
//!
//! # Guarantees
//! - Before every create, the journal durably holds its intent (site, key, spec
//!   without user data, node names); after it, the VM ids. Every delete is journaled.
//!   A journal write failure stops the pass before any further create.
//! - VMs are created per (site, role) batch with one idempotency key per batch
//!   ([`plan::batch_key`]); batch-capable providers get one call per batch of up to
//!   `max_batch` VMs, others one call per [`plan::NON_BATCH_CALL_SIZE`] VMs. A node is VM `index` of
//!   batch `key`; a retried or resumed create reuses the key, so nothing is created
//!   twice.
//! - Progress comes from one `list_vms` by cluster tag per site per poll tick, with an
//!   interval growing 1.5x per unchanged tick from `poll_min` to `poll_max`.
//! - Every VM carries the deployment's id ([`crate::model::TAG_DEPLOYMENT`]).
//!   Rollback, repair, adoption and destroy act only on this deployment's VMs (by that
//!   tag, or a key it journaled); VMs of another deployment of the same cluster name
//!   are never touched, and a deploy refuses to start while they exist. Nothing
//!   touches a VM without the cluster tag; deletes are verified by listing.

pub mod census;
mod cleanup;
pub mod configure;
pub mod events;
mod executor;
pub mod ipam;
pub mod journal;
mod observe;
mod overlay;
pub mod plan;
pub mod policy;
mod repair;
mod replace;
pub mod report;
mod start;
mod state;
mod status;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;

pub use census::{Census, SiteCensus, UNTAGGED_DEPLOYMENT};
pub use configure::{ConfigContext, FnConfigurer, NoUserData, NodeConfigurer};
pub use events::{Event, EventKind, EventSink};
pub use journal::{FileJournal, Journal, MemoryJournal, Record, Tail};
pub use plan::{Batch, NodePlan, Plan, PlanOptions, Step, StepId, StepKind};
pub use policy::{DeployOptions, DeployResult, FailurePolicy};
pub use report::{DeployReport, LinkReport, Move, NodeReport};
pub use status::{ClusterStatus, DestroyReport, SiteStatus};

use cleanup::{purge, Owner, Scope};
use executor::Executor;
use state::State;

use crate::model::{Capabilities, ClusterRequest, PlacementCounts, SiteId, Topology};
use crate::provider::CloudProvider;
use crate::vpn::VpnFabric;
use crate::{Error, Result};

/// What [`Deployer::resume`] does with an interrupted deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeMode {
    /// Adopt what exists, create what is missing, apply the journaled policy.
    Continue,
    /// Delete everything the deployment created (verified), as a rollback would.
    RollBack,
}

/// Brings clusters up, keeps them up and tears them down, over one provider per site.
///
/// Providers are used as given: wrap them (retry, rate limit, concurrency cap) before.
#[derive(Debug)]
pub struct Deployer {
    providers: BTreeMap<SiteId, Arc<dyn CloudProvider>>,
    fabric: Option<Arc<dyn VpnFabric>>,
    configurer: Arc<dyn NodeConfigurer>,
    options: DeployOptions,
    events: EventSink,
}

impl Deployer {
    /// A deployer over these providers, keyed by [`CloudProvider::site`].
    pub fn new(providers: impl IntoIterator<Item = Arc<dyn CloudProvider>>) -> Self {
        Self {
            providers: providers
                .into_iter()
                .map(|p| (p.site().clone(), p))
                .collect(),
            fabric: None,
            configurer: Arc::new(NoUserData),
            options: DeployOptions::default(),
            events: EventSink::none(),
        }
    }

    /// Links the sites with this VPN fabric (plans then have endpoint and link steps).
    pub fn with_fabric(mut self, fabric: Arc<dyn VpnFabric>) -> Self {
        self.fabric = Some(fabric);
        self
    }

    /// Renders each create call's user data with this hook.
    pub fn with_configurer(mut self, configurer: Arc<dyn NodeConfigurer>) -> Self {
        self.configurer = configurer;
        self
    }

    /// Sets timings and limits.
    pub fn with_options(mut self, options: DeployOptions) -> Self {
        self.options = options;
        self
    }

    /// Starts delivering events to the returned receiver (replacing an earlier one).
    pub fn subscribe(&mut self) -> mpsc::UnboundedReceiver<Event> {
        let (sink, rx) = EventSink::channel();
        self.events = sink;
        rx
    }

    /// Each site's provider capabilities (plain data, no network call).
    pub fn capabilities(&self) -> BTreeMap<SiteId, Capabilities> {
        self.providers
            .iter()
            .map(|(s, p)| (s.clone(), p.capabilities()))
            .collect()
    }

    /// Turns placement counts into a plan using these providers' batch sizes, with VPN
    /// steps when a fabric is set.
    ///
    /// # Errors
    /// `Config` as [`Plan::build`], or when a placed site has no provider.
    pub fn plan(
        &self,
        request: &ClusterRequest,
        topology: &Topology,
        placement: &PlacementCounts,
    ) -> Result<Plan> {
        let plan = Plan::build(
            request,
            topology,
            placement,
            &self.capabilities(),
            PlanOptions {
                vpn: self.fabric.is_some(),
                ..PlanOptions::default()
            },
        )?;
        self.check_providers(plan.sites.iter())?;
        Ok(plan)
    }

    fn check_providers<'a>(&self, sites: impl Iterator<Item = &'a SiteId>) -> Result<()> {
        for s in sites {
            if !self.providers.contains_key(s) {
                return Err(Error::config(format!(
                    "no provider for site {s}: add the site (with credentials) to the federation"
                ))
                .with_site(s));
            }
        }
        Ok(())
    }

    /// Executes `plan` under `policy`, journaling into `journal` (which must be empty).
    ///
    /// Returns the report for every outcome the policy handles (`Ok`, `Partial`,
    /// `RolledBack`, `Failed` with leftovers).
    ///
    /// Before anything is created, every site is listed once ([`Deployer::census`]):
    /// a site of the plan that fails (credentials, endpoint) stops the deployment
    /// with its error, and so do VMs of another deployment of the same cluster name.
    ///
    /// # Errors
    /// `Config` when the journal already holds a deployment, a site has no provider,
    /// or another deployment's VMs carry the cluster's name; the failing site's error
    /// when a site of the plan cannot be listed; `Journal` when the journal cannot be
    /// written (after rolling back under
    /// `AllOrNothing`; otherwise resume or destroy later).
    pub async fn deploy(
        &self,
        plan: Plan,
        policy: FailurePolicy,
        journal: &dyn Journal,
    ) -> Result<DeployReport> {
        if !journal.records()?.is_empty() {
            return Err(Error::config(format!(
                "the journal already holds a deployment; resume, repair or destroy cluster {:?} \
                 instead, or use a new journal",
                plan.cluster
            )));
        }
        self.check_providers(plan.sites.iter())?;
        self.preflight(&plan).await?;
        let started = journal::Record::Started {
            plan: Box::new(plan.clone()),
            policy,
        };
        let mut ex = Executor::new(self, journal, State::from_plan(plan, policy));
        ex.record(started)?;
        self.events.emit(
            None,
            None,
            EventKind::PlanStarted {
                nodes: ex.st.plan.nodes.len(),
                sites: ex.st.plan.sites.len(),
                batches: ex.st.plan.batches.len(),
            },
        );
        for site in ex.st.plan.sites.clone() {
            ex.mark_observed(&site);
        }
        self.drive(ex, true).await
    }

    /// Continues (or rolls back) the deployment recorded in `journal`, e.g. after a
    /// crash, from the journal and a list-by-tag on every site.
    ///
    /// # Errors
    /// `Journal` when the journal is empty or unreadable; `Config` when a site it
    /// names has no provider.
    pub async fn resume(&self, journal: &dyn Journal, mode: ResumeMode) -> Result<DeployReport> {
        let st = State::replay(&journal.records()?)?;
        self.check_providers(st.sites_touched().iter())?;
        let ex = Executor::new(self, journal, st);
        if ex.st.destroyed {
            return Ok(self.report(&ex, DeployResult::RolledBack));
        }
        self.events.emit(
            None,
            None,
            EventKind::PlanStarted {
                nodes: ex.st.nodes.len(),
                sites: ex.st.sites_in_use().len(),
                batches: ex.st.batches.len(),
            },
        );
        match mode {
            ResumeMode::Continue => self.drive(ex, true).await,
            ResumeMode::RollBack => {
                let mut ex = ex;
                let result = self.rollback(&mut ex).await;
                self.close(&mut ex, result)
            }
        }
    }

    /// Overlay, reconcile loop, links, then the policy.
    async fn drive(&self, mut ex: Executor<'_>, may_roll_back: bool) -> Result<DeployReport> {
        for site in ex.st.sites_in_use() {
            if ex.halted.is_some() {
                break;
            }
            if ex.ensure_site_overlay(&site).await.is_err() && ex.halted.is_none() {
                let e = Error::unavailable("its VPN endpoint could not be prepared");
                ex.unreachable(&site, &e);
            }
        }
        if ex.halted.is_none() {
            ex.run().await?;
        }
        let links_ok = ex.halted.is_some() || ex.wait_links().await;
        if let Some(e) = ex.halted.take() {
            if may_roll_back && ex.st.policy == FailurePolicy::AllOrNothing {
                let _ = self.rollback(&mut ex).await;
            }
            return Err(e);
        }
        let wanted = ex.st.nodes.len();
        let running = ex.st.running();
        let complete = running == wanted && links_ok;
        let result = if complete && ex.leftovers().is_empty() {
            DeployResult::Ok
        } else if complete {
            // Every node runs, but VMs on a site that stopped answering are unverified.
            DeployResult::Partial
        } else {
            let enough = match ex.st.policy {
                FailurePolicy::BestEffort { min_fraction } => {
                    wanted > 0 && running as f64 / wanted as f64 >= min_fraction
                }
                FailurePolicy::AllOrNothing => false,
            };
            if enough || !may_roll_back {
                DeployResult::Partial
            } else {
                self.rollback(&mut ex).await
            }
        };
        self.close(&mut ex, result)
    }

    fn close(&self, ex: &mut Executor<'_>, result: DeployResult) -> Result<DeployReport> {
        let idle = ex.repairing
            && ex.actions.moved.is_empty()
            && ex.actions.recreated.is_empty()
            && ex.starts.started.is_empty()
            && ex.actions.deleted == 0
            && ex.st.last_result == Some(result);
        if !idle {
            // A repair pass that changed nothing leaves the journal alone (`watch`).
            ex.record(journal::Record::Finished { result })?;
        }
        let report = self.report(ex, result);
        for (site, vms) in &report.leftovers {
            self.events
                .emit(Some(site), None, EventKind::Leftovers { vms: *vms });
        }
        self.events.emit(
            None,
            None,
            EventKind::Finished {
                result,
                running: ex.st.running(),
                wanted: ex.st.nodes.len(),
            },
        );
        Ok(report)
    }

    /// Deletes what this deployment made (members, then links, then endpoints) and
    /// verifies by listing.
    async fn rollback(&self, ex: &mut Executor<'_>) -> DeployResult {
        let keys = ex.st.keys.clone();
        let unsettled = ex.st.unsettled_keys();
        let deployment = ex.st.plan.deployment_id.clone();
        let scope = Scope {
            owner: Some(Owner {
                id: &deployment,
                keys: &keys,
            }),
            unsettled: &unsettled,
        };
        // A site found unreachable in this pass is not waited for (`cleanup_timeout`):
        // what the journal says it holds is reported as leftovers instead.
        let known_dead = ex.unreachable_sites();
        let unsure: Vec<SiteId> = ex
            .st
            .sites_touched()
            .into_iter()
            .filter(|s| !known_dead.contains_key(s))
            .collect();
        // One bounded listing first, so that a site that died quietly (nothing to do
        // there lately) is not waited for either.
        ex.probe(unsure).await;
        let dead = ex.unreachable_sites();
        let reachable: std::collections::BTreeSet<SiteId> = ex
            .st
            .sites_touched()
            .into_iter()
            .filter(|s| !dead.contains_key(s))
            .collect();
        // A site that cannot be listed holds, as far as anyone knows, every VM the
        // journal says this deployment made there and did not delete.
        let unlisted: BTreeMap<SiteId, usize> = dead
            .keys()
            .map(|s| (s.clone(), ex.st.created_at(s)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let mut purged = purge(
            self,
            &reachable,
            &ex.st.plan.cluster,
            scope,
            Some(ex.journal),
        )
        .await;
        purged.remaining.extend(unlisted);
        ex.actions.deleted += purged.deleted;
        let overlay_left = ex.teardown_overlay().await;
        for n in ex.st.nodes.values_mut() {
            n.vm = None;
        }
        if purged.is_clean() && overlay_left == 0 {
            let _ = ex.journal.append(&journal::Record::Destroyed);
            ex.st.destroyed = true;
            self.events.emit(
                None,
                None,
                EventKind::RolledBack {
                    deleted: purged.deleted,
                },
            );
            DeployResult::RolledBack
        } else {
            let mut left = purged.remaining;
            for site in purged.unverified.keys() {
                // It stopped answering during the purge: counted as a dead site is.
                left.insert(site.clone(), ex.st.created_at(site));
            }
            ex.rollback_leftovers = left;
            DeployResult::Failed
        }
    }

    fn report(&self, ex: &Executor<'_>, result: DeployResult) -> DeployReport {
        let mut leftovers = ex.leftovers();
        for (s, n) in &ex.rollback_leftovers {
            // Both count the same VMs on an unreachable site: keep the larger.
            let e = leftovers.entry(s.clone()).or_default();
            *e = (*e).max(*n);
        }
        let mut nodes = report::node_reports(&ex.st);
        for n in &mut nodes {
            if n.error.is_none() {
                n.error = ex.starts.replaced.get(&n.name).cloned();
            }
        }
        DeployReport {
            cluster: ex.st.plan.cluster.clone(),
            result,
            nodes,
            links: ex.link_reports(),
            moved: ex.actions.moved.clone(),
            recreated: ex.actions.recreated.clone(),
            started: ex.starts.started.clone(),
            deleted: ex.actions.deleted,
            leftovers,
            unreachable: ex.unreachable_sites(),
        }
    }
}
