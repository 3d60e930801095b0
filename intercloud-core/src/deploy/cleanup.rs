//! Deleting a cluster's VMs on every site and verifying by listing that none is left.
//!
//! Used by rollback (only VMs whose key this deployment journaled) and destroy
//! (every VM tagged with the cluster). A VM is deleted only when its listed tags carry
//! the cluster's name, whatever the backend's filter returned.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::future::join_all;
use tokio::time::Instant;

use super::events::{EventKind, EventSink};
use super::journal::{Journal, Record};
use super::Deployer;
use crate::model::{SiteId, Vm, VmFilter};
use crate::provider::CloudProvider;

/// What a purge did.
#[derive(Debug, Default)]
pub(crate) struct Purged {
    pub(crate) deleted: usize,
    /// Sites where VMs remain (or could not be listed) at the deadline, and how many.
    pub(crate) remaining: BTreeMap<SiteId, usize>,
}

/// Which VMs a purge deletes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// Every VM tagged with the cluster.
    Cluster,
    /// Only VMs whose key is one of these.
    Keys(&'a BTreeSet<String>),
}

impl Scope<'_> {
    fn covers(&self, vm: &Vm, cluster: &str) -> bool {
        if vm.cluster() != Some(cluster) || !vm.state.is_alive() {
            return false;
        }
        match self {
            Self::Cluster => true,
            Self::Keys(keys) => vm.key().is_some_and(|k| keys.contains(k)),
        }
    }
}

/// Deletes every VM in `scope` on every site in `sites`, concurrently per site, until
/// a listing shows none or `timeout` passes.
pub(crate) async fn purge(
    d: &Deployer,
    sites: &BTreeSet<SiteId>,
    cluster: &str,
    scope: Scope<'_>,
    journal: Option<&dyn Journal>,
) -> Purged {
    let (providers, events) = (&d.providers, &d.events);
    let backoff = d.options.poll_min;
    let deadline = Instant::now() + d.options.cleanup_timeout;
    let runs = sites.iter().map(|site| async move {
        let Some(p) = providers.get(site) else {
            events.emit(
                Some(site),
                None,
                EventKind::StepFailed {
                    step: "cleanup".into(),
                    error: format!("no provider for site {site}; cannot verify it is empty"),
                },
            );
            return (site.clone(), 0, Some(usize::MAX));
        };
        let (deleted, left) = purge_site(
            p.as_ref(),
            cluster,
            scope,
            journal,
            events,
            deadline,
            backoff,
        )
        .await;
        (site.clone(), deleted, left)
    });
    let mut out = Purged::default();
    for (site, deleted, left) in join_all(runs).await {
        out.deleted += deleted;
        if let Some(n) = left {
            out.remaining.insert(site, n);
        }
    }
    out
}

/// Returns (deleted, remaining at the deadline or `None` when verified empty).
async fn purge_site(
    p: &dyn CloudProvider,
    cluster: &str,
    scope: Scope<'_>,
    journal: Option<&dyn Journal>,
    events: &EventSink,
    deadline: Instant,
    backoff: Duration,
) -> (usize, Option<usize>) {
    let site = p.site().clone();
    let filter = VmFilter::cluster(cluster);
    let mut deleted = 0usize;
    let mut journaled = BTreeSet::new();
    let mut attempt = 0u32;
    let mut last_seen = usize::MAX;
    loop {
        match p.list_vms(&filter).await {
            Ok(vms) => {
                let doomed: Vec<Vm> = vms
                    .into_iter()
                    .filter(|v| scope.covers(v, cluster))
                    .collect();
                last_seen = doomed.len();
                if doomed.is_empty() {
                    return (deleted, None);
                }
                let calls = doomed.iter().map(|vm| {
                    if journaled.insert(vm.id.clone()) {
                        append(
                            journal,
                            &Record::DeleteIntent {
                                site: site.clone(),
                                vm_id: vm.id.clone(),
                                key: vm.key().map(str::to_owned),
                            },
                        );
                    }
                    async move { (vm, p.delete_vm(&vm.id).await) }
                });
                let mut any_failed = false;
                for (vm, res) in join_all(calls.collect::<Vec<_>>()).await {
                    match res {
                        Ok(()) => {
                            deleted += 1;
                            append(
                                journal,
                                &Record::Deleted {
                                    site: site.clone(),
                                    vm_id: vm.id.clone(),
                                },
                            );
                            events.emit(
                                Some(&site),
                                vm.role(),
                                EventKind::VmDeleted {
                                    vm_id: vm.id.clone(),
                                },
                            );
                        }
                        Err(e) => {
                            attempt += 1;
                            any_failed = true;
                            events.emit(
                                Some(&site),
                                vm.role(),
                                EventKind::Retry {
                                    step: format!("delete {}", vm.id),
                                    attempt,
                                    error: e.to_string(),
                                },
                            );
                        }
                    }
                }
                if Instant::now() >= deadline {
                    return (deleted, Some(last_seen));
                }
                if any_failed {
                    tracing::debug!(%site, "some deletes failed; retrying after a pause");
                }
            }
            Err(e) => {
                attempt += 1;
                events.emit(
                    Some(&site),
                    None,
                    EventKind::Retry {
                        step: "list".into(),
                        attempt,
                        error: e.to_string(),
                    },
                );
            }
        }
        if Instant::now() >= deadline {
            return (deleted, Some(last_seen));
        }
        tokio::time::sleep(backoff).await;
    }
}

/// Appends a record during cleanup; a failure is logged, not fatal (deleting is safe
/// to repeat and is verified by listing).
fn append(journal: Option<&dyn Journal>, r: &Record) {
    if let Some(j) = journal {
        if let Err(e) = j.append(r) {
            tracing::warn!(error = %e, "journal write failed during cleanup; continuing");
        }
    }
}
