//! The executor: a reconcile loop that brings every node of a [`State`] to `Running`.
//!
//! Sites proceed independently: each has its own tick — issue this site's creates and
//! deletes, wait the site's poll interval, then **one** `list_vms` by cluster tag —
//! and the ticks of all sites run concurrently. After each tick the loop compares
//! what the site listed with what is wanted:
//!
//! - a batch whose outcome is unknown (crash, ambiguous error) is adopted when its VMs
//!   are listed, or created again with the same key (idempotent);
//! - a node whose VM failed or vanished is recreated with the same name and overlay
//!   address, in a new batch with a new key;
//! - a VM of this deployment that no node owns (a failed VM, an adopted duplicate) is
//!   deleted;
//! - a site that refuses creates for good (capacity, credentials) or stops answering
//!   is excluded, and its waiting nodes move to other sites within the request's
//!   constraints ([`super::replace`]).
//!
//! Every intent is journaled before its call; a journal write failure halts the loop
//! before any further create.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;

use super::configure::ConfigContext;
use super::events::EventKind;
use super::journal::{Journal, Record};
use super::report::Move;
use super::start::Starts;
use super::state::{BatchStatus, State};
use super::Deployer;
use crate::model::{SiteId, Vm, VmFilter, VmId, VmSpec};
use crate::provider::CloudProvider;
use crate::{Error, ErrorKind, Result};

/// Per-site runtime bookkeeping.
#[derive(Debug, Clone)]
pub(crate) struct SiteRt {
    interval: Duration,
    list_failures: u32,
    observed: bool,
    unreachable: bool,
    active: bool,
}

struct TickOut {
    site: SiteId,
    creates: Vec<(usize, Result<Vec<VmId>>)>,
    deletes: Vec<(VmId, Result<()>)>,
    starts: Vec<((VmId, String), Result<()>)>,
    list: Result<Vec<Vm>>,
}

type TickFuture = Pin<Box<dyn Future<Output = TickOut> + Send>>;

/// What a pass did, beyond the state.
#[derive(Debug, Default)]
pub(crate) struct Actions {
    pub(crate) moved: Vec<Move>,
    pub(crate) recreated: Vec<String>,
    pub(crate) deleted: usize,
}

pub(crate) struct Executor<'a> {
    pub(crate) d: &'a Deployer,
    pub(crate) journal: &'a dyn Journal,
    pub(crate) st: State,
    pub(crate) actions: Actions,
    /// Sites no node may be placed on in this pass.
    pub(crate) excluded: BTreeSet<SiteId>,
    /// The first journal failure; no create is issued after it.
    pub(crate) halted: Option<Error>,
    /// Emit `Repaired` when a recreated node runs; a listing without a node's VM is
    /// believed at once (no grace ticks).
    pub(crate) repairing: bool,
    /// VMs rollback could not delete, by site.
    pub(crate) rollback_leftovers: BTreeMap<SiteId, usize>,
    /// VMs presumably still alive on sites that became unreachable, whose nodes moved.
    stale: BTreeMap<SiteId, usize>,
    sites: BTreeMap<SiteId, SiteRt>,
    pub(crate) pending_deletes: BTreeMap<SiteId, BTreeSet<VmId>>,
    delete_journaled: BTreeSet<(SiteId, VmId)>,
    /// Stopped VMs being started ([`super::start`]).
    pub(crate) starts: Starts,
}

impl<'a> Executor<'a> {
    pub(crate) fn new(d: &'a Deployer, journal: &'a dyn Journal, st: State) -> Self {
        Self {
            d,
            journal,
            st,
            actions: Actions::default(),
            excluded: BTreeSet::new(),
            halted: None,
            repairing: false,
            rollback_leftovers: BTreeMap::new(),
            stale: BTreeMap::new(),
            sites: BTreeMap::new(),
            pending_deletes: BTreeMap::new(),
            delete_journaled: BTreeSet::new(),
            starts: Starts::default(),
        }
    }

    /// Journals `r` and applies it to the state; on failure halts the pass.
    pub(crate) fn record(&mut self, r: Record) -> Result<()> {
        if let Some(e) = &self.halted {
            return Err(Error::new(ErrorKind::Journal, e.message().to_owned()));
        }
        match self.journal.append(&r) {
            Ok(()) => {
                self.st.apply(&r);
                Ok(())
            }
            Err(e) => {
                let err = Error::new(
                    ErrorKind::Journal,
                    format!("journal write failed, deployment stopped: {e}"),
                );
                self.d.events.emit(
                    None,
                    None,
                    EventKind::StepFailed {
                        step: "journal".into(),
                        error: err.to_string(),
                    },
                );
                self.halted = Some(Error::new(ErrorKind::Journal, err.message().to_owned()));
                Err(err)
            }
        }
    }

    fn provider(&self, site: &SiteId) -> Result<Arc<dyn CloudProvider>> {
        self.d.providers.get(site).cloned().ok_or_else(|| {
            Error::config(format!(
                "no provider for site {site}: add the site (with credentials) to the federation"
            ))
            .with_site(site)
        })
    }

    pub(crate) fn site_rt(&mut self, site: &SiteId) -> &mut SiteRt {
        let min = self.d.options.poll_min;
        self.sites.entry(site.clone()).or_insert(SiteRt {
            interval: min,
            list_failures: 0,
            observed: false,
            unreachable: false,
            active: false,
        })
    }

    /// Marks `site` as observed already (deploy: nothing there to adopt yet).
    pub(crate) fn mark_observed(&mut self, site: &SiteId) {
        self.site_rt(site).observed = true;
    }

    /// Runs the reconcile loop until no site has work left or the timeout passes.
    pub(crate) async fn run(&mut self) -> Result<()> {
        let deadline = Instant::now() + self.d.options.timeout;
        for site in self.st.sites_touched() {
            self.provider(&site)?;
            self.site_rt(&site);
        }
        let mut ticks: FuturesUnordered<TickFuture> = FuturesUnordered::new();
        loop {
            if self.halted.is_none() {
                self.place_homeless().await;
            }
            let sites: Vec<SiteId> = self.sites.keys().cloned().collect();
            for site in sites {
                let rt = &self.sites[&site];
                if !rt.active && !rt.unreachable && self.has_work(&site) {
                    if let Some(f) = self.start_tick(&site)? {
                        ticks.push(f);
                    }
                }
            }
            if self.halted.is_some() {
                // Stop at once: in-flight calls are journaled intents, found again later.
                return Ok(());
            }
            if ticks.is_empty() {
                return Ok(());
            }
            let out = tokio::select! {
                out = ticks.next() => out,
                () = tokio::time::sleep_until(deadline) => None,
            };
            let Some(out) = out else {
                self.time_out();
                return Ok(());
            };
            self.process(out).await;
        }
    }

    fn time_out(&mut self) {
        let secs = self.d.options.timeout.as_secs();
        for n in self.st.nodes.values_mut() {
            if !n.is_running() && n.failed.is_none() {
                n.failed = Some(format!("not running after {secs} s"));
            }
        }
    }

    /// Whether `site` needs another tick.
    fn has_work(&self, site: &SiteId) -> bool {
        if self
            .pending_deletes
            .get(site)
            .is_some_and(|s| !s.is_empty())
            || self.starts.has_pending(site)
        {
            return true;
        }
        let observed = self.sites.get(site).is_some_and(|r| r.observed);
        let touched = self.st.batches.iter().any(|b| &b.batch.site == site);
        if !observed && touched {
            return true;
        }
        let open_batch = self.st.batches.iter().any(|b| {
            &b.batch.site == site
                && matches!(
                    b.status,
                    BatchStatus::Planned
                        | BatchStatus::InFlight
                        | BatchStatus::Retry
                        | BatchStatus::Unknown
                )
                && b.batch.nodes.iter().any(|n| self.wants(n, site))
        });
        open_batch
            || self
                .st
                .nodes
                .values()
                .any(|n| &n.plan.site == site && n.failed.is_none() && !n.is_running())
    }

    fn wants(&self, node: &str, site: &SiteId) -> bool {
        self.st
            .nodes
            .get(node)
            .is_some_and(|n| &n.plan.site == site && n.failed.is_none())
    }

    /// Journals intents and launches one tick of `site`.
    fn start_tick(&mut self, site: &SiteId) -> Result<Option<TickFuture>> {
        let p = self.provider(site)?;
        let mut creates: Vec<(usize, VmSpec, u32)> = Vec::new();
        let idx: Vec<usize> = (0..self.st.batches.len())
            .filter(|&i| {
                let b = &self.st.batches[i];
                &b.batch.site == site
                    && matches!(b.status, BatchStatus::Planned | BatchStatus::Retry)
            })
            .collect();
        for bi in idx {
            if self.halted.is_some() {
                break;
            }
            let owned = self
                .st
                .nodes
                .values()
                .any(|n| n.failed.is_none() && n.slot.is_some_and(|(b, _)| b == bi));
            if !owned {
                // Every node of the batch went elsewhere or failed: nothing to create.
                self.st.batches[bi].status = BatchStatus::Failed;
                continue;
            }
            let batch = self.st.batches[bi].batch.clone();
            let nodes = self.st.node_plans();
            let ctx = ConfigContext {
                cluster: &self.st.plan.cluster,
                nodes: &nodes,
                endpoints: &self.st.endpoints,
                fabric: self.d.fabric.as_deref(),
            };
            let user_data = match self.d.configurer.user_data(&ctx, &batch) {
                Ok(u) => u,
                Err(e) => {
                    self.fail_batch_nodes(bi, &format!("user data: {e}"));
                    continue;
                }
            };
            // A key journaled for the first time now has never been sent: the
            // provider may skip its lookup by key. Not so after a replay: a journal
            // cut short may have lost the intent of a create that was made.
            let fresh = self.st.batches[bi].status == BatchStatus::Planned
                && !self.st.replayed
                && !self.st.keys.contains(batch.key.as_str());
            if self.st.batches[bi].status == BatchStatus::Planned
                && self
                    .record(Record::CreateIntent {
                        batch: batch.clone(),
                    })
                    .is_err()
            {
                break;
            }
            self.st.batches[bi].status = BatchStatus::InFlight;
            self.d.events.emit(
                Some(site),
                Some(&batch.role),
                EventKind::VmRequested {
                    key: batch.key.to_string(),
                    count: batch.count(),
                },
            );
            let mut spec = batch.spec(&self.st.plan.cluster, user_data);
            spec.fresh = fresh;
            creates.push((bi, spec, batch.count()));
        }
        let mut deletes = Vec::new();
        for id in self.pending_deletes.get(site).cloned().unwrap_or_default() {
            if self.delete_journaled.insert((site.clone(), id.clone())) {
                let key = None;
                if self
                    .record(Record::DeleteIntent {
                        site: site.clone(),
                        vm_id: id.clone(),
                        key,
                    })
                    .is_err()
                {
                    break;
                }
            }
            deletes.push(id);
        }
        let starts = self.starts.take(site);
        let rt = self.site_rt(site);
        rt.active = true;
        let delay = rt.interval;
        let cluster = self.st.plan.cluster.clone();
        let site = site.clone();
        Ok(Some(Box::pin(async move {
            let create_calls = creates.iter().map(|(bi, spec, n)| {
                let p = &p;
                async move { (*bi, p.create_vms(spec, *n).await) }
            });
            let delete_calls = deletes.iter().map(|id| {
                let p = &p;
                async move { (id.clone(), p.delete_vm(id).await) }
            });
            let start_calls = starts.into_iter().map(|s| {
                let p = &p;
                async move {
                    let res = p.start_vm(&s.0).await;
                    (s, res)
                }
            });
            let (creates, deletes, starts) = futures::join!(
                join_all(create_calls),
                join_all(delete_calls),
                join_all(start_calls)
            );
            tokio::time::sleep(delay).await;
            let list = p.list_vms(&VmFilter::cluster(cluster)).await;
            TickOut {
                site,
                creates,
                deletes,
                starts,
                list,
            }
        })))
    }

    async fn process(&mut self, out: TickOut) {
        let site = out.site.clone();
        let caps = self.d.providers.get(&site).map(|p| p.capabilities());
        let idempotent = caps.is_none_or(|c| c.idempotent_create);
        let mut changed = !out.creates.is_empty() || !out.deletes.is_empty();
        for (bi, res) in out.creates {
            let key = self.st.batches[bi].batch.key.to_string();
            let role = self.st.batches[bi].batch.role.clone();
            match res {
                Ok(ids) => {
                    let _ = self.record(Record::CreateOutcome {
                        site: site.clone(),
                        key,
                        vm_ids: ids,
                    });
                }
                Err(e) if e.is_temporary() => {
                    let b = &mut self.st.batches[bi];
                    b.attempts += 1;
                    let attempt = b.attempts;
                    if attempt >= self.d.options.max_create_attempts {
                        self.give_up(bi, &e);
                    } else {
                        b.status = if idempotent {
                            BatchStatus::Retry
                        } else {
                            BatchStatus::Unknown
                        };
                        self.d.events.emit(
                            Some(&site),
                            Some(&role),
                            EventKind::Retry {
                                step: format!("create {key}"),
                                attempt,
                                error: e.to_string(),
                            },
                        );
                    }
                }
                Err(e) => self.give_up(bi, &e),
            }
        }
        for (id, res) in out.deletes {
            match res {
                Ok(()) => {
                    self.actions.deleted += 1;
                    if let Some(s) = self.pending_deletes.get_mut(&site) {
                        s.remove(&id);
                    }
                    let _ = self.record(Record::Deleted {
                        site: site.clone(),
                        vm_id: id.clone(),
                    });
                    self.d
                        .events
                        .emit(Some(&site), None, EventKind::VmDeleted { vm_id: id });
                }
                Err(e) => self.d.events.emit(
                    Some(&site),
                    None,
                    EventKind::Retry {
                        step: format!("delete {id}"),
                        attempt: 1,
                        error: e.to_string(),
                    },
                ),
            }
        }
        changed |= self.started(&site, out.starts);
        match out.list {
            Ok(vms) => {
                self.site_rt(&site).list_failures = 0;
                self.site_rt(&site).observed = true;
                changed |= self.observe(&site, vms, idempotent);
            }
            Err(e) => {
                let rt = self.site_rt(&site);
                rt.list_failures += 1;
                let attempt = rt.list_failures;
                self.d.events.emit(
                    Some(&site),
                    None,
                    EventKind::Retry {
                        step: "list".into(),
                        attempt,
                        error: e.to_string(),
                    },
                );
                if attempt >= self.d.options.max_list_failures {
                    self.unreachable(&site, &e);
                }
            }
        }
        let (min, max) = (self.d.options.poll_min, self.d.options.poll_max);
        let rt = self.site_rt(&site);
        rt.active = false;
        rt.interval = if changed {
            min
        } else {
            rt.interval.mul_f64(1.5).min(max)
        };
    }

    /// A create failed for good at this site: exclude the site, free the nodes.
    fn give_up(&mut self, bi: usize, e: &Error) {
        let b = &self.st.batches[bi];
        let site = b.batch.site.clone();
        let role = b.batch.role.clone();
        let key = b.batch.key.to_string();
        self.d.events.emit(
            Some(&site),
            Some(&role),
            EventKind::StepFailed {
                step: format!("create {key}"),
                error: e.to_string(),
            },
        );
        self.excluded.insert(site.clone());
        let _ = self.record(Record::CreateFailed {
            site,
            key,
            kind: e.kind(),
            message: e.message().to_owned(),
        });
        // Replay of CreateFailed freed the nodes; make sure even when journaling failed.
        self.st.batches[bi].status = BatchStatus::Failed;
        for n in self.st.nodes.values_mut() {
            if n.slot.is_some_and(|(b, _)| b == bi) {
                n.slot = None;
            }
        }
    }

    fn fail_batch_nodes(&mut self, bi: usize, why: &str) {
        self.st.batches[bi].status = BatchStatus::Failed;
        let b = &self.st.batches[bi].batch;
        self.d.events.emit(
            Some(&b.site),
            Some(&b.role),
            EventKind::StepFailed {
                step: format!("create {}", b.key),
                error: why.to_owned(),
            },
        );
        for n in self.st.nodes.values_mut() {
            if n.slot.is_some_and(|(b, _)| b == bi) {
                n.failed = Some(why.to_owned());
            }
        }
    }

    /// A site stopped answering: exclude it and move its waiting nodes.
    pub(crate) fn unreachable(&mut self, site: &SiteId, e: &Error) {
        self.site_rt(site).unreachable = true;
        self.excluded.insert(site.clone());
        self.d.events.emit(
            Some(site),
            None,
            EventKind::StepFailed {
                step: "site".into(),
                error: format!("site unreachable: {e}"),
            },
        );
        let mut stale = 0;
        for n in self.st.nodes.values_mut() {
            if &n.plan.site == site && n.failed.is_none() && !n.is_running() {
                if n.slot.is_some_and(|(bi, _)| {
                    matches!(
                        self.st.batches[bi].status,
                        BatchStatus::Created(_) | BatchStatus::Unknown | BatchStatus::Retry
                    )
                }) {
                    stale += 1;
                }
                n.slot = None;
                n.vm = None;
            }
        }
        stale += self.pending_deletes.get(site).map_or(0, BTreeSet::len);
        self.pending_deletes.remove(site);
        if stale > 0 {
            *self.stale.entry(site.clone()).or_default() += stale;
        }
    }

    /// VMs of this deployment left on sites that could not be cleaned.
    pub(crate) fn leftovers(&self) -> BTreeMap<SiteId, usize> {
        let mut out: BTreeMap<SiteId, usize> = self
            .pending_deletes
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(k, s)| (k.clone(), s.len()))
            .collect();
        for (site, n) in &self.stale {
            *out.entry(site.clone()).or_default() += n;
        }
        out
    }
}
