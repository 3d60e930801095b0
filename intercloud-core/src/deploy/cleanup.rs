//! Deleting a cluster's VMs on every site and verifying by listing that none is left.
//!
//! Used by rollback (only VMs whose key this deployment journaled) and destroy
//! (every VM tagged with the cluster). A VM is deleted only when its listed tags carry
//! the cluster's name, whatever the backend's filter returned — or, for a create the
//! journal shows cut short, when it carries that create's key (a backend that tags
//! after creating reports the key its VM's name stands for).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::future::join_all;
use tokio::time::Instant;

use super::events::{EventKind, EventSink};
use super::journal::{Journal, Record};
use super::Deployer;
use crate::model::{IdempotencyKey, SiteId, Vm, VmFilter, VmId};
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
pub(crate) struct Scope<'a> {
    /// `None`: every VM tagged with the cluster; `Some`: only VMs of these keys.
    pub(crate) only: Option<&'a BTreeSet<String>>,
    /// Per site, the keys whose create was journaled without an outcome: their VMs
    /// may not carry the cluster tag yet (CloudStack tags a VM after deploying it), so
    /// they are listed by key too, and deleted when their key is one of these.
    pub(crate) unsettled: &'a BTreeMap<SiteId, BTreeSet<String>>,
}

impl Scope<'_> {
    fn covers(&self, vm: &Vm, cluster: &str) -> bool {
        if !vm.state.is_alive() {
            return false;
        }
        let key = vm.key();
        match vm.cluster() {
            Some(c) => {
                c == cluster
                    && self
                        .only
                        .is_none_or(|keys| key.is_some_and(|k| keys.contains(k)))
            }
            // Untagged: ours only by a key this deployment journaled at this site.
            None => key.is_some_and(|k| {
                self.unsettled
                    .get(&vm.site)
                    .is_some_and(|keys| keys.contains(k))
            }),
        }
    }
}

/// The site's VMs of `cluster`, and those of the site's unsettled keys.
async fn list_scope(
    p: &dyn CloudProvider,
    cluster: &str,
    scope: Scope<'_>,
) -> crate::Result<Vec<Vm>> {
    let mut vms = p.list_vms(&VmFilter::cluster(cluster)).await?;
    let mut seen: BTreeSet<VmId> = vms.iter().map(|v| v.id.clone()).collect();
    for key in scope.unsettled.get(p.site()).into_iter().flatten() {
        let Ok(key) = IdempotencyKey::new(key.as_str()) else {
            continue;
        };
        for vm in p.list_vms(&VmFilter::key(&key)).await? {
            if seen.insert(vm.id.clone()) {
                vms.push(vm);
            }
        }
    }
    Ok(vms)
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
    let mut deleted = 0usize;
    let mut journaled = BTreeSet::new();
    let mut attempt = 0u32;
    let mut last_seen = usize::MAX;
    loop {
        match list_scope(p, cluster, scope).await {
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
