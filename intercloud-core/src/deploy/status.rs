//! Status (wanted vs observed per site) and destroy (everything tagged, verified).

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use serde::{Deserialize, Serialize};

use super::cleanup::{purge, Scope};
use super::events::EventKind;
use super::executor::{list_site, Executor};
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
    /// VMs tagged with the cluster but not made by this deployment (never touched
    /// except by destroy).
    pub foreign: usize,
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
    /// VMs (or unreachable sites' unknown counts as 1) left; 0 means verified empty.
    pub remaining: usize,
    /// Sites that could not be verified empty, with what is left there.
    pub remaining_by_site: BTreeMap<SiteId, usize>,
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
        let lists = join_all(sites.iter().map(|s| {
            let p = self.providers.get(s).cloned();
            let cluster = cluster.clone();
            async move {
                match p {
                    Some(p) => list_site(p.as_ref(), &cluster).await,
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
                        if vm.cluster() != Some(cluster.as_str()) || !vm.state.is_alive() {
                            continue;
                        }
                        match (vm.key().map(str::to_owned), vm.index()) {
                            (Some(k), Some(i)) if st.keys.contains(&k) => {
                                by_slot.insert((k, i), vm);
                            }
                            _ => s.foreign += 1,
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
        let running = st.running();
        let result = if st.destroyed || running == 0 {
            DeployResult::Failed
        } else if running == st.nodes.len() {
            DeployResult::Ok
        } else {
            DeployResult::Partial
        };
        Ok(ClusterStatus {
            cluster,
            result,
            nodes: super::report::node_reports(&st),
            links: st
                .links
                .iter()
                .map(|(between, link)| LinkReport {
                    between: between.clone(),
                    link: link.clone(),
                    state: "connected".into(),
                })
                .collect(),
            sites: out,
        })
    }

    /// Deletes every VM tagged with `cluster` on every site (and, with the journal and
    /// a fabric, the links and endpoints it records), then verifies by listing that
    /// none is left. VMs without the cluster's tag are never touched.
    ///
    /// # Errors
    /// `Journal` when a given journal cannot be read.
    pub async fn destroy(
        &self,
        cluster: &str,
        journal: Option<&dyn Journal>,
    ) -> Result<DestroyReport> {
        let mut sites: BTreeSet<SiteId> = self.providers.keys().cloned().collect();
        let state = match journal {
            Some(j) => {
                let records = j.records()?;
                if records.is_empty() {
                    None
                } else {
                    Some(State::replay(&records)?)
                }
            }
            None => None,
        };
        if let Some(st) = &state {
            sites.extend(st.sites_touched());
        }
        let unsettled = state
            .as_ref()
            .map(State::unsettled_keys)
            .unwrap_or_default();
        let scope = Scope {
            only: None,
            unsettled: &unsettled,
        };
        let purged = purge(self, &sites, cluster, scope, journal).await;
        let mut overlay_left = 0;
        if let (Some(st), Some(j)) = (state, journal) {
            let mut ex = Executor::new(self, j, st);
            overlay_left = ex.teardown_overlay().await;
        }
        let remaining: usize = purged
            .remaining
            .values()
            .map(|n| (*n).min(1_000_000))
            .sum::<usize>()
            + overlay_left;
        if remaining == 0 {
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
        Ok(DestroyReport {
            cluster: cluster.to_owned(),
            deleted: purged.deleted,
            remaining,
            remaining_by_site: purged.remaining,
        })
    }
}
