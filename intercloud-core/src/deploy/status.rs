//! Status (wanted vs observed per site) and destroy (everything tagged, verified).

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use serde::{Deserialize, Serialize};

use super::cleanup::{list_scope, purge, Purged, Scope};
use super::events::EventKind;
use super::executor::Executor;
use super::journal::{Journal, Record};
use super::policy::DeployResult;
use super::report::{LinkReport, NodeReport};
use super::state::State;
use super::Deployer;
use crate::model::{SiteId, Vm, VmState};
use crate::Result;

/// One site: what the deployment wants there and what the site lists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SiteStatus {
    /// Nodes placed on the site.
    pub wanted: usize,
    /// Of those, running.
    pub running: usize,
    /// Of those, pending (booting).
    pub pending: usize,
    /// Of those, whose VM is failed or stopped.
    pub broken: usize,
    /// Of those, with no VM listed.
    pub missing: usize,
    /// VMs of this deployment that no node owns (a repair deletes them).
    pub surplus: usize,
    /// VMs tagged with the cluster's name but made by another deployment (another
    /// state folder or user): never touched.
    pub foreign: usize,
    /// VMs of this deployment (by their deployment tag) that its journal does not
    /// know, e.g. after the journal was cut short: a resume adopts the ones it can
    /// place, and destroy deletes them.
    #[serde(default)]
    pub untracked: usize,
    /// When the site could not be listed: the VMs its journal says this deployment
    /// made there and no node owns (nodes moved away), which may still run there
    /// unverified; a repair, resume or destroy deletes them once the site answers.
    #[serde(default)]
    pub unverified: usize,
    /// The listing error, when the site could not be listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Wanted vs observed, per node and per site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The cluster.
    pub cluster: String,
    /// `Ok` when every node runs, `Partial` when some do, `Failed` when none does or
    /// the cluster was destroyed.
    pub result: DeployResult,
    /// Every node with its observed VM.
    pub nodes: Vec<NodeReport>,
    /// Every link.
    pub links: Vec<LinkReport>,
    /// Per site.
    pub sites: BTreeMap<SiteId, SiteStatus>,
}

/// What destroy did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestroyReport {
    /// The cluster.
    pub cluster: String,
    /// VMs deleted.
    pub deleted: usize,
    /// VMs still listed at the deadline, plus overlay resources left; 0 with no
    /// [`unverified`](Self::unverified) site means verified empty.
    pub remaining: usize,
    /// Sites still listing VMs at the deadline, with how many.
    pub remaining_by_site: BTreeMap<SiteId, usize>,
    /// Sites that could not be listed, so could not be verified empty (their count
    /// is unknown), with the last error: run destroy again when they answer.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unverified: BTreeMap<SiteId, String>,
}

impl DestroyReport {
    /// Whether every site was verified empty and nothing is left.
    pub fn is_clean(&self) -> bool {
        self.remaining == 0 && self.unverified.is_empty()
    }
}

impl Deployer {
    /// Wanted (from the journal) vs observed (one listing per site).
    ///
    /// # Errors
    /// `Journal` when the journal is empty or unreadable.
    pub async fn status(&self, journal: &dyn Journal) -> Result<ClusterStatus> {
        let mut st = State::replay(&journal.records()?)?;
        let cluster = st.plan.cluster.clone();
        let sites: Vec<SiteId> = st.sites_touched().into_iter().collect();
        // Listed as a cleanup would: by the cluster's tag and by the keys of creates
        // cut short (a VM made just before a kill may not carry its tags yet).
        let unsettled = st.unsettled_keys();
        let scope = Scope {
            owner: Some(st.owner()),
            unsettled: &unsettled,
        };
        let lists = join_all(sites.iter().map(|s| {
            let p = self.providers.get(s).cloned();
            let cluster = cluster.clone();
            async move {
                match p {
                    Some(p) => list_scope(p.as_ref(), &cluster, scope).await,
                    None => Err(crate::Error::config("no provider for this site").with_site(s)),
                }
            }
        }))
        .await;
        let mut out: BTreeMap<SiteId, SiteStatus> = BTreeMap::new();
        let mut owned: BTreeSet<(String, u32)> = BTreeSet::new();
        let mut by_slot: BTreeMap<(String, u32), Vm> = BTreeMap::new();
        for (site, list) in sites.iter().zip(lists) {
            let s = out.entry(site.clone()).or_default();
            match list {
                Ok(vms) => {
                    for vm in vms {
                        if !vm.state.is_alive() {
                            continue;
                        }
                        if !scope.covers(&vm, &cluster) {
                            if vm.cluster() == Some(cluster.as_str()) {
                                s.foreign += 1;
                            }
                            continue;
                        }
                        match (vm.key().map(str::to_owned), vm.index()) {
                            (Some(k), Some(i)) if st.keys.contains(&k) => {
                                by_slot.insert((k, i), vm);
                            }
                            _ => s.untracked += 1,
                        }
                    }
                }
                Err(e) => s.error = Some(e.to_string()),
            }
        }
        if st.destroyed {
            for n in st.nodes.values_mut() {
                n.vm = None;
            }
        }
        let names: Vec<String> = st.nodes.keys().cloned().collect();
        for name in names {
            let n = &st.nodes[&name];
            let slot = n
                .slot
                .map(|(bi, i)| (st.batches[bi].batch.key.to_string(), i));
            let vm = if st.destroyed {
                None
            } else {
                slot.as_ref().and_then(|k| by_slot.get(k)).cloned()
            };
            if let Some(k) = slot {
                if vm.as_ref().is_some_and(|v| v.site == n.plan.site) {
                    owned.insert(k);
                }
            }
            let s = out.entry(n.plan.site.clone()).or_default();
            s.wanted += 1;
            match vm.as_ref().map(|v| &v.state) {
                Some(VmState::Running) => s.running += 1,
                Some(VmState::Failed | VmState::Stopped) => s.broken += 1,
                Some(_) => s.pending += 1,
                None => s.missing += 1,
            }
            if let Some(n) = st.nodes.get_mut(&name) {
                n.vm = vm;
            }
        }
        for (slot, vm) in &by_slot {
            if !owned.contains(slot) {
                out.entry(vm.site.clone()).or_default().surplus += 1;
            }
        }
        let unowned = super::report::journaled_unowned(&st);
        for (site, s) in &mut out {
            if s.error.is_some() {
                s.unverified = unowned.get(site).copied().unwrap_or(0);
            }
        }
        let running = st.running();
        // A pass that was interrupted (no `Finished` record) is incomplete, not failed:
        // `resume` goes on with it.
        let interrupted = st.last_result.is_none();
        // Every node runs, but VMs to remove remain or a site cannot be checked.
        let unclean = out
            .values()
            .any(|s| s.surplus > 0 || s.unverified > 0 || s.error.is_some());
        let result = if st.destroyed || (running == 0 && !interrupted) {
            DeployResult::Failed
        } else if running == st.nodes.len() && !unclean {
            DeployResult::Ok
        } else {
            DeployResult::Partial
        };
        let links = st
            .links
            .iter()
            .map(|(between, link)| LinkReport {
                between: between.clone(),
                link: link.clone(),
                // What a listing can tell: a link to a site that does not answer is
                // unreachable; the fabric is asked by `resume` and `repair`.
                state: if between
                    .iter()
                    .any(|s| out.get(s).is_some_and(|s| s.error.is_some()))
                {
                    "unreachable".into()
                } else {
                    "connected".into()
                },
            })
            .collect();
        Ok(ClusterStatus {
            cluster,
            result,
            nodes: super::report::node_reports(&st),
            links,
            sites: out,
        })
    }

    /// Deletes what a deployment made: with its journal, every VM tagged with its
    /// deployment id (or a key it journaled) on every site, and the links and
    /// endpoints it records; then verifies by listing that none is left. VMs of
    /// another deployment of the same cluster name are never touched; an empty
    /// journal made nothing and deletes nothing. Without a journal, every VM tagged
    /// with `cluster` ([`Deployer::destroy_tagged`]).
    ///
    /// # Errors
    /// `Journal` when a given journal cannot be read.
    pub async fn destroy(
        &self,
        cluster: &str,
        journal: Option<&dyn Journal>,
    ) -> Result<DestroyReport> {
        let Some(j) = journal else {
            return self.destroy_tagged(cluster, None).await;
        };
        let records = j.records()?;
        if records.is_empty() {
            // Intents are journaled before every create: this deployment made nothing.
            return Ok(self.destroy_report(cluster, Purged::default(), 0, None));
        }
        let st = State::replay(&records)?;
        let mut sites: BTreeSet<SiteId> = self.providers.keys().cloned().collect();
        sites.extend(st.sites_touched());
        let unsettled = st.unsettled_keys();
        let scope = Scope {
            owner: Some(st.owner()),
            unsettled: &unsettled,
        };
        let purged = purge(self, &sites, cluster, scope, journal).await;
        let mut ex = Executor::new(self, j, st);
        let overlay_left = ex.teardown_overlay().await;
        Ok(self.destroy_report(cluster, purged, overlay_left, journal))
    }

    /// The report of a purge; journals `Destroyed` and emits `RolledBack` when
    /// everything was verified gone.
    pub(crate) fn destroy_report(
        &self,
        cluster: &str,
        purged: Purged,
        overlay_left: usize,
        journal: Option<&dyn Journal>,
    ) -> DestroyReport {
        let clean = purged.is_clean() && overlay_left == 0;
        if clean {
            if let Some(j) = journal {
                if let Err(e) = j.append(&Record::Destroyed) {
                    tracing::warn!(error = %e, "cannot journal the destroy");
                }
            }
            self.events.emit(
                None,
                None,
                EventKind::RolledBack {
                    deleted: purged.deleted,
                },
            );
        }
        DestroyReport {
            cluster: cluster.to_owned(),
            deleted: purged.deleted,
            remaining: purged.remaining.values().sum::<usize>() + overlay_left,
            remaining_by_site: purged.remaining,
            unverified: purged.unverified,
        }
    }
}
