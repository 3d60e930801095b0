//! The deployment's state as the journal tells it: nodes, batches, endpoints, links.
//!
//! [`State::replay`] rebuilds it from the records alone, so a separate process can
//! resume, repair, report or destroy from the journal file.

use std::collections::{BTreeMap, BTreeSet};

use super::journal::Record;
use super::plan::{Batch, NodePlan, Plan};
use super::policy::{DeployResult, FailurePolicy};
use crate::model::{SiteId, Vm, VmId, VmState};
use crate::vpn::{LinkId, SiteEndpoint};
use crate::{Error, ErrorKind, Result};

/// Where a batch's create call stands.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BatchStatus {
    /// Planned; no intent journaled yet.
    Planned,
    /// Intent journaled and the call in flight in this pass.
    InFlight,
    /// To be issued again with the same key (idempotent provider, temporary error).
    Retry,
    /// Intent journaled, outcome unknown: resolved by the site's next listing.
    Unknown,
    /// The call returned these ids.
    Created(Vec<VmId>),
    /// Given up at this site; its nodes went elsewhere or failed.
    Failed,
}

#[derive(Debug, Clone)]
pub(crate) struct BatchState {
    pub(crate) batch: Batch,
    pub(crate) status: BatchStatus,
    pub(crate) attempts: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct NodeState {
    pub(crate) plan: NodePlan,
    /// The batch (index into `State::batches`) and VM index the node lives in.
    pub(crate) slot: Option<(usize, u32)>,
    /// Its VM as last listed.
    pub(crate) vm: Option<Vm>,
    pub(crate) running_reported: bool,
    /// Ticks its created VM has been absent from listings.
    pub(crate) missing_ticks: u32,
    /// Recreations in this pass.
    pub(crate) attempts: u32,
    /// Given up, with the reason.
    pub(crate) failed: Option<crate::ErrorInfo>,
    /// Given a new VM (new batch) in this pass.
    pub(crate) rebuilt: bool,
}

impl NodeState {
    pub(crate) fn is_running(&self) -> bool {
        self.vm
            .as_ref()
            .is_some_and(|v| v.state == VmState::Running)
    }
}

/// Everything known about one deployment.
#[derive(Debug, Clone)]
pub(crate) struct State {
    pub(crate) plan: Plan,
    pub(crate) policy: FailurePolicy,
    pub(crate) nodes: BTreeMap<String, NodeState>,
    pub(crate) batches: Vec<BatchState>,
    /// Every key this deployment ever journaled an intent for.
    pub(crate) keys: BTreeSet<String>,
    pub(crate) next_generation: u32,
    pub(crate) endpoints: BTreeMap<SiteId, SiteEndpoint>,
    pub(crate) links: BTreeMap<[SiteId; 2], LinkId>,
    /// Endpoints and links whose intent was journaled without their outcome: the
    /// fabric may have made them (found again by its idempotent calls at teardown).
    pub(crate) endpoint_intents: BTreeSet<SiteId>,
    pub(crate) link_intents: BTreeSet<[SiteId; 2]>,
    pub(crate) last_result: Option<DeployResult>,
    pub(crate) destroyed: bool,
    /// Rebuilt from a journal (resume, repair, status) rather than a fresh plan.
    pub(crate) replayed: bool,
    /// VMs whose delete the journal records as done.
    pub(crate) deleted: BTreeSet<(SiteId, VmId)>,
}

impl State {
    /// The state of a fresh plan (nothing journaled beyond `Started`).
    pub(crate) fn from_plan(plan: Plan, policy: FailurePolicy) -> Self {
        let batches: Vec<BatchState> = plan
            .batches
            .iter()
            .map(|b| BatchState {
                batch: b.clone(),
                status: BatchStatus::Planned,
                attempts: 0,
            })
            .collect();
        let mut nodes: BTreeMap<String, NodeState> = plan
            .nodes
            .iter()
            .map(|n| {
                (
                    n.name.clone(),
                    NodeState {
                        plan: n.clone(),
                        slot: None,
                        vm: None,
                        running_reported: false,
                        missing_ticks: 0,
                        attempts: 0,
                        failed: None,
                        rebuilt: false,
                    },
                )
            })
            .collect();
        for (bi, b) in batches.iter().enumerate() {
            for (i, name) in b.batch.nodes.iter().enumerate() {
                if let Some(n) = nodes.get_mut(name) {
                    n.slot = Some((bi, i as u32));
                }
            }
        }
        let next_generation = plan
            .batches
            .iter()
            .map(|b| b.generation + 1)
            .max()
            .unwrap_or(1);
        Self {
            plan,
            policy,
            nodes,
            batches,
            keys: BTreeSet::new(),
            next_generation,
            endpoints: BTreeMap::new(),
            links: BTreeMap::new(),
            endpoint_intents: BTreeSet::new(),
            link_intents: BTreeSet::new(),
            last_result: None,
            destroyed: false,
            replayed: false,
            deleted: BTreeSet::new(),
        }
    }

    /// Rebuilds the state from journal records.
    ///
    /// # Errors
    /// `Journal` when the records do not start with `Started`.
    pub(crate) fn replay(records: &[Record]) -> Result<Self> {
        let mut it = records.iter();
        let mut st = match it.next() {
            Some(Record::Started { plan, policy }) => Self::from_plan((**plan).clone(), *policy),
            Some(_) => {
                return Err(Error::new(
                    ErrorKind::Journal,
                    "the journal does not start with a Started record",
                ))
            }
            None => return Err(Error::new(ErrorKind::Journal, "the journal is empty")),
        };
        for r in it {
            st.apply(r);
        }
        st.replayed = true;
        Ok(st)
    }

    /// Applies one record (as the executor does after journaling it).
    pub(crate) fn apply(&mut self, r: &Record) {
        match r {
            Record::Started { .. } => {}
            Record::CreateIntent { batch } => {
                self.keys.insert(batch.key.as_str().to_owned());
                self.next_generation = self.next_generation.max(batch.generation + 1);
                let bi = match self.batch_index(batch.key.as_str()) {
                    Some(bi) => bi,
                    None => {
                        self.batches.push(BatchState {
                            batch: batch.clone(),
                            status: BatchStatus::Planned,
                            attempts: 0,
                        });
                        self.batches.len() - 1
                    }
                };
                self.batches[bi].status = BatchStatus::Unknown;
                for (i, name) in batch.nodes.iter().enumerate() {
                    if let Some(n) = self.nodes.get_mut(name) {
                        n.plan.site = batch.site.clone();
                        n.slot = Some((bi, i as u32));
                        n.failed = None;
                    }
                }
            }
            Record::CreateOutcome { key, vm_ids, .. } => {
                if let Some(bi) = self.batch_index(key) {
                    self.batches[bi].status = BatchStatus::Created(vm_ids.clone());
                }
            }
            Record::CreateFailed { key, .. } => {
                if let Some(bi) = self.batch_index(key) {
                    self.batches[bi].status = BatchStatus::Failed;
                    for n in self.nodes.values_mut() {
                        if n.slot.is_some_and(|(b, _)| b == bi) {
                            n.slot = None;
                        }
                    }
                }
            }
            Record::NodeMoved { node, to, .. } => {
                let batches = &self.batches;
                if let Some(n) = self.nodes.get_mut(node) {
                    n.plan.site = to.clone();
                    // It left its VM there for good (the VM's loss is not journaled):
                    // it gets a new one at `to`, never the old one's (a surplus VM).
                    if n.slot
                        .is_some_and(|(bi, _)| batches.get(bi).is_some_and(|b| &b.batch.site != to))
                    {
                        n.slot = None;
                    }
                }
            }
            Record::EndpointIntent { site } => {
                self.endpoint_intents.insert(site.clone());
            }
            Record::LinkIntent { between } => {
                self.link_intents.insert(between.clone());
            }
            Record::EndpointPrepared { endpoint } => {
                self.endpoint_intents.remove(&endpoint.site);
                self.endpoints
                    .insert(endpoint.site.clone(), endpoint.clone());
            }
            Record::LinkConnected { between, link } => {
                self.link_intents.remove(between);
                self.links.insert(between.clone(), link.clone());
            }
            Record::LinkRemoved { link } => self.links.retain(|_, l| l != link),
            Record::EndpointReleased { site } => {
                self.endpoints.remove(site);
            }
            Record::Finished { result } => self.last_result = Some(*result),
            Record::Destroyed => self.destroyed = true,
            Record::Deleted { site, vm_id } => {
                self.deleted.insert((site.clone(), vm_id.clone()));
            }
            Record::DeleteIntent { .. } => {}
        }
    }

    /// Per site, the keys whose create was journaled but whose VM ids were not: the
    /// create may have made VMs that lack some tags (see [`super::cleanup::Scope`]).
    pub(crate) fn unsettled_keys(&self) -> BTreeMap<SiteId, BTreeSet<String>> {
        let mut out: BTreeMap<SiteId, BTreeSet<String>> = BTreeMap::new();
        for b in &self.batches {
            let key = b.batch.key.as_str();
            let settled = matches!(b.status, BatchStatus::Planned | BatchStatus::Created(_));
            if !settled && self.keys.contains(key) {
                out.entry(b.batch.site.clone())
                    .or_default()
                    .insert(key.to_owned());
            }
        }
        out
    }

    pub(crate) fn batch_index(&self, key: &str) -> Option<usize> {
        self.batches
            .iter()
            .position(|b| b.batch.key.as_str() == key)
    }

    /// The node that VM (`key`, `index`) stands for, if it is a current node's VM.
    pub(crate) fn node_of(&self, key: &str, index: u32) -> Option<&str> {
        let bi = self.batch_index(key)?;
        self.nodes
            .iter()
            .find(|(_, n)| n.slot == Some((bi, index)))
            .map(|(name, _)| name.as_str())
    }

    /// Sites with at least one wanted node.
    pub(crate) fn sites_in_use(&self) -> BTreeSet<SiteId> {
        self.nodes
            .values()
            .filter(|n| n.failed.is_none())
            .map(|n| n.plan.site.clone())
            .collect()
    }

    /// Every site the deployment ever touched (for cleanup).
    pub(crate) fn sites_touched(&self) -> BTreeSet<SiteId> {
        let mut s: BTreeSet<SiteId> = self.batches.iter().map(|b| b.batch.site.clone()).collect();
        s.extend(self.nodes.values().map(|n| n.plan.site.clone()));
        s.extend(self.endpoints.keys().cloned());
        s
    }

    /// Current node identities (with their current sites).
    pub(crate) fn node_plans(&self) -> Vec<NodePlan> {
        self.nodes.values().map(|n| n.plan.clone()).collect()
    }

    /// VMs the journal says were made at `site` and not deleted (created batches' ids,
    /// and every VM of a create cut short), for reports when the site cannot be listed.
    pub(crate) fn created_at(&self, site: &SiteId) -> usize {
        self.batches
            .iter()
            .filter(|b| &b.batch.site == site && self.keys.contains(b.batch.key.as_str()))
            .map(|b| match &b.status {
                BatchStatus::Created(ids) => ids
                    .iter()
                    .filter(|id| !self.deleted.contains(&(site.clone(), (*id).clone())))
                    .count(),
                BatchStatus::Planned | BatchStatus::Failed => 0,
                _ => b.batch.nodes.len(),
            })
            .sum()
    }

    /// This deployment, as cleanups and status tell its VMs apart.
    pub(crate) fn owner(&self) -> super::cleanup::Owner<'_> {
        super::cleanup::Owner {
            id: &self.plan.deployment_id,
            keys: &self.keys,
        }
    }

    pub(crate) fn running(&self) -> usize {
        self.nodes.values().filter(|n| n.is_running()).count()
    }
}
