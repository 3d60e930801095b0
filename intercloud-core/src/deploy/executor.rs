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
//! - a site that refuses creates for good (capacity, credentials, a temporary error
//!   a retry layer already [spent its retries on](crate::Error::retries_spent): it is
//!   not retried again here) or stops answering is excluded, and its nodes move to other healthy sites when the request's
//!   constraints still hold after the move ([`super::replace`]); otherwise they fail
//!   with the site's error and the constraint.
//!
//! # Dead sites
//! Every tick is cut at a deadline: `site_timeout` after the start of the site's
//! current failing streak, or its poll wait plus `site_timeout` for a healthy site. A
//! site whose calls keep failing for `site_timeout` (or whose listing fails
//! `max_list_failures` times in a row, or once with an error that is not temporary:
//! credentials refused, an answer that is not a cloud's — or once with an error whose
//! [retries are spent](crate::Error::retries_spent)) is **unreachable**: its
//! nodes are freed, the VMs it may still run are counted as leftovers, and it keeps
//! being listed in the background (every `poll_max`, without delaying the end of the
//! pass): as soon as it answers, those VMs are deleted (the pass then waits for those
//! deletes). Leftovers still unverified when the pass ends are in the report and make
//! its result `Partial` at best; the next resume, repair or destroy deletes them.
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
use crate::{Error, ErrorInfo, ErrorKind, Result};

/// Per-site runtime bookkeeping.
#[derive(Debug, Clone)]
pub(crate) struct SiteRt {
    interval: Duration,
    list_failures: u32,
    observed: bool,
    /// Declared unreachable in this pass: no node is placed there; only background
    /// cleanup ticks (deletes and a listing) run.
    pub(crate) unreachable: bool,
    active: bool,
    /// The start of the first tick of the current streak of failed listings.
    pub(crate) failing_since: Option<Instant>,
    /// The start of the first create of the current streak of failed creates.
    create_failing_since: Option<Instant>,
    /// The last successful listing.
    pub(crate) last_ok: Option<Instant>,
    /// Why the site is unusable (unreachable, or refusing creates), while it is.
    pub(crate) error: Option<ErrorInfo>,
}

struct TickOut {
    site: SiteId,
    started: Instant,
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
    /// VMs presumably still alive on sites that became unreachable, whose nodes moved
    /// or failed: unverified until the site answers again.
    stale: BTreeMap<SiteId, usize>,
    pub(crate) sites: BTreeMap<SiteId, SiteRt>,
    pub(crate) pending_deletes: BTreeMap<SiteId, BTreeSet<VmId>>,
    delete_journaled: BTreeSet<(SiteId, VmId)>,
    /// Stopped VMs being started ([`super::start`]).
    pub(crate) starts: Starts,
    /// Each link's state as last polled (`connected`, `pending`, `failed`).
    pub(crate) link_states: BTreeMap<[SiteId; 2], String>,
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
            link_states: BTreeMap::new(),
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
                    format!("journal write failed, deployment stopped: {}", e.message()),
                );
                self.d.events.emit(
                    None,
                    None,
                    EventKind::StepFailed {
                        step: "journal".into(),
                        error: err.info(),
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
            failing_since: None,
            create_failing_since: None,
            last_ok: None,
            error: None,
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
                if rt.active {
                    continue;
                }
                let start = if rt.unreachable {
                    // Background cleanup: only while it may hold VMs of ours.
                    self.stale.get(&site).is_some_and(|n| *n > 0)
                        || self
                            .pending_deletes
                            .get(&site)
                            .is_some_and(|s| !s.is_empty())
                } else {
                    self.has_work(&site)
                };
                if start {
                    if let Some(f) = self.start_tick(&site)? {
                        ticks.push(f);
                    }
                }
            }
            if self.halted.is_some() {
                // Stop at once: in-flight calls are journaled intents, found again later.
                return Ok(());
            }
            // Background ticks of unreachable sites never keep the pass alive; once
            // such a site answers again, its deletes do.
            if !self
                .sites
                .values()
                .any(|r| r.active && (!r.unreachable || r.error.is_none()))
            {
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
                n.failed = Some(
                    ErrorInfo::new(ErrorKind::Timeout, format!("not running after {secs} s"))
                        .with_site(n.plan.site.clone()),
                );
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
        let background = self.site_rt(site).unreachable;
        let mut creates: Vec<(usize, VmSpec, u32)> = Vec::new();
        let idx: Vec<usize> = (0..self.st.batches.len())
            .filter(|&i| {
                let b = &self.st.batches[i];
                !background
                    && &b.batch.site == site
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
                    self.fail_batch_nodes(bi, e.info().with_message(format!("user data: {e}")));
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
        let site_timeout = self.d.options.site_timeout;
        let rt = self.site_rt(site);
        rt.active = true;
        let delay = rt.interval;
        let started = Instant::now();
        // A tick never outlives the site's bound (see the module docs).
        let deadline = match (background, rt.failing_since) {
            (false, Some(since)) => (since + site_timeout).max(started),
            _ => started + delay + site_timeout,
        };
        let cluster = self.st.plan.cluster.clone();
        let site = site.clone();
        Ok(Some(Box::pin(async move {
            let create_idx: Vec<usize> = creates.iter().map(|(bi, _, _)| *bi).collect();
            let delete_ids = deletes.clone();
            let start_ids = starts.clone();
            let work = async {
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
                (creates, deletes, starts, list)
            };
            match tokio::time::timeout_at(deadline, work).await {
                Ok((creates, deletes, starts, list)) => TickOut {
                    site,
                    started,
                    creates,
                    deletes,
                    starts,
                    list,
                },
                Err(_) => {
                    // Cut short: every call's outcome is unknown (creates are resolved
                    // by a later listing, by key; a start is tried again).
                    let secs = site_timeout.as_secs();
                    let err = || {
                        Error::new(
                            ErrorKind::Timeout,
                            format!("no answer by its deadline (site_timeout = {secs} s)"),
                        )
                        .with_site(&site)
                    };
                    TickOut {
                        creates: create_idx.into_iter().map(|bi| (bi, Err(err()))).collect(),
                        deletes: delete_ids.into_iter().map(|id| (id, Err(err()))).collect(),
                        starts: start_ids.into_iter().map(|s| (s, Err(err()))).collect(),
                        list: Err(err()),
                        site,
                        started,
                    }
                }
            }
        })))
    }

    async fn process(&mut self, out: TickOut) {
        let site = out.site.clone();
        let caps = self.d.providers.get(&site).map(|p| p.capabilities());
        let idempotent = caps.is_none_or(|c| c.idempotent_create);
        let background = self.site_rt(&site).unreachable;
        let site_timeout = self.d.options.site_timeout;
        let mut changed = !out.creates.is_empty() || !out.deletes.is_empty();
        for (bi, res) in out.creates {
            let key = self.st.batches[bi].batch.key.to_string();
            let role = self.st.batches[bi].batch.role.clone();
            match res {
                Ok(ids) => {
                    self.site_rt(&site).create_failing_since = None;
                    let _ = self.record(Record::CreateOutcome {
                        site: site.clone(),
                        key,
                        vm_ids: ids,
                    });
                }
                // A retry layer that spent its retries on it already waited: trying
                // again here would multiply its attempts (see `Error::retries_spent`).
                Err(e) if e.is_temporary() && !e.retries_spent() => {
                    let since = *self
                        .site_rt(&site)
                        .create_failing_since
                        .get_or_insert(out.started);
                    let b = &mut self.st.batches[bi];
                    b.attempts += 1;
                    let attempt = b.attempts;
                    if attempt >= self.d.options.max_create_attempts
                        || since.elapsed() >= site_timeout
                    {
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
                                error: e.info(),
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
                        error: e.info(),
                    },
                ),
            }
        }
        changed |= self.started(&site, out.starts);
        match out.list {
            Ok(vms) => {
                let rt = self.site_rt(&site);
                rt.list_failures = 0;
                rt.observed = true;
                rt.failing_since = None;
                rt.last_ok = Some(Instant::now());
                if background {
                    // It answers again: what it lists replaces the unverified count,
                    // and the VMs no node owns are deleted by the next ticks.
                    if rt.error.take().is_some() {
                        self.d
                            .events
                            .emit(Some(&site), None, EventKind::SiteAnswers);
                    }
                    self.stale.remove(&site);
                } else if !self.excluded.contains(&site) {
                    self.site_rt(&site).error = None;
                }
                changed |= self.observe(&site, vms, idempotent);
            }
            Err(e) if background => {
                tracing::debug!(site = %site, error = %e, "unreachable site still silent");
                self.site_rt(&site).error = Some(e.info());
            }
            Err(e) => {
                let rt = self.site_rt(&site);
                rt.list_failures += 1;
                let attempt = rt.list_failures;
                // The streak began with the earliest failed call (a probe may have
                // failed after this tick's calls were made).
                let since = rt.failing_since.map_or(out.started, |t| t.min(out.started));
                rt.failing_since = Some(since);
                self.d.events.emit(
                    Some(&site),
                    None,
                    EventKind::Retry {
                        step: "list".into(),
                        attempt,
                        error: e.info(),
                    },
                );
                // An error that is not temporary (credentials refused, not a cloud's
                // answer) will not go away by waiting; one a retry layer spent its
                // retries on has been waited for already.
                if !e.is_temporary()
                    || e.retries_spent()
                    || attempt >= self.d.options.max_list_failures
                    || since.elapsed() >= site_timeout
                {
                    let secs = since.elapsed().as_secs();
                    let why = e
                        .with_message(format!(
                            "{} (no successful call for {secs} s, {attempt} failed listings)",
                            e.message()
                        ))
                        .with_site(&site);
                    self.unreachable(&site, &why);
                }
            }
        }
        let (min, max) = (self.d.options.poll_min, self.d.options.poll_max);
        let rt = self.site_rt(&site);
        rt.active = false;
        rt.interval = if rt.unreachable {
            max
        } else if changed || rt.failing_since.is_some() {
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
                error: e.info(),
            },
        );
        self.excluded.insert(site.clone());
        self.site_rt(&site).error.get_or_insert_with(|| e.info());
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

    fn fail_batch_nodes(&mut self, bi: usize, why: ErrorInfo) {
        self.st.batches[bi].status = BatchStatus::Failed;
        let b = &self.st.batches[bi].batch;
        self.d.events.emit(
            Some(&b.site),
            Some(&b.role),
            EventKind::StepFailed {
                step: format!("create {}", b.key),
                error: why.clone(),
            },
        );
        for n in self.st.nodes.values_mut() {
            if n.slot.is_some_and(|(b, _)| b == bi) {
                n.failed = Some(why.clone());
            }
        }
    }

    /// A site stopped answering: exclude it, free every node on it (running ones too:
    /// they cannot be verified) so they move or fail, and count the VMs it may still
    /// run as leftovers.
    pub(crate) fn unreachable(&mut self, site: &SiteId, e: &Error) {
        let poll_max = self.d.options.poll_max;
        let rt = self.site_rt(site);
        rt.unreachable = true;
        rt.interval = poll_max;
        rt.error = Some(e.info());
        self.excluded.insert(site.clone());
        self.d.events.emit(
            Some(site),
            None,
            EventKind::SiteUnreachable { error: e.info() },
        );
        self.d.events.emit(
            Some(site),
            None,
            EventKind::StepFailed {
                step: "site".into(),
                error: e.info().with_message(format!("site unreachable: {e}")),
            },
        );
        let mut stale = 0;
        for n in self.st.nodes.values_mut() {
            if &n.plan.site == site && n.failed.is_none() {
                if n.slot.is_some_and(|(bi, _)| {
                    matches!(
                        self.st.batches[bi].status,
                        BatchStatus::Created(_)
                            | BatchStatus::Unknown
                            | BatchStatus::Retry
                            | BatchStatus::InFlight
                    )
                }) {
                    stale += 1;
                }
                n.slot = None;
                n.vm = None;
                n.running_reported = false;
                n.missing_ticks = 0;
            }
        }
        stale += self.pending_deletes.get(site).map_or(0, BTreeSet::len);
        self.pending_deletes.remove(site);
        // VMs left there by earlier passes (nodes moved away before) count too.
        let journaled = super::report::journaled_unowned(&self.st)
            .get(site)
            .copied()
            .unwrap_or(0);
        let stale = stale.max(journaled);
        if stale > 0 {
            let e = self.stale.entry(site.clone()).or_default();
            *e = (*e).max(stale);
        }
    }

    /// Every journaled link with its real state: `unreachable` when a site at either
    /// end is, else as last polled (`connected` when the pass never polled it: no
    /// fabric wait, e.g. a status-free resume).
    pub(crate) fn link_reports(&self) -> Vec<super::report::LinkReport> {
        let dead = self.unreachable_sites();
        self.st
            .links
            .iter()
            .map(|(between, link)| super::report::LinkReport {
                between: between.clone(),
                link: link.clone(),
                state: if between.iter().any(|s| dead.contains_key(s)) {
                    "unreachable".to_owned()
                } else {
                    self.link_states
                        .get(between)
                        .cloned()
                        .unwrap_or_else(|| "connected".to_owned())
                },
            })
            .collect()
    }

    /// Sites that do not answer at the end of this pass, with the error: declared
    /// unreachable and not heard since, or failing their last call (a probe, a
    /// listing). Rollback and the link wait do not wait for them.
    pub(crate) fn unreachable_sites(&self) -> BTreeMap<SiteId, String> {
        self.sites
            .iter()
            .filter(|(_, r)| r.unreachable || r.failing_since.is_some())
            .filter_map(|(s, r)| r.error.as_ref().map(|e| (s.clone(), e.to_string())))
            .collect()
    }

    /// Whether nodes may be placed on `site` now: not excluded, not failing, and
    /// answering (its last listing, if any, succeeded).
    pub(crate) fn healthy(&self, site: &SiteId) -> bool {
        !self.excluded.contains(site)
            && self
                .sites
                .get(site)
                .is_none_or(|r| !r.unreachable && r.failing_since.is_none())
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
