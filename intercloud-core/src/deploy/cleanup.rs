//! Deleting a cluster's VMs on every site and verifying by listing that none is left.
//!
//! Used by rollback and destroy. A VM is deleted only when its listed tags carry the
//! cluster's name and, for a deployment's own cleanup, its deployment id (or a key the
//! deployment journaled, for VMs made before deployments were tagged) — whatever the
//! backend's filter returned. For a create the journal shows cut short, a VM without
//! tags is deleted when it carries that create's key (a backend that tags after
//! creating reports the key its VM's name stands for).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Sites where VMs were still listed at the deadline, and how many.
    pub(crate) remaining: BTreeMap<SiteId, usize>,
    /// Sites that could not be listed (so could not be verified empty), with the
    /// last error.
    pub(crate) unverified: BTreeMap<SiteId, String>,
}

impl Purged {
    /// Whether every site was verified empty.
    pub(crate) fn is_clean(&self) -> bool {
        self.remaining.is_empty() && self.unverified.is_empty()
    }
}

/// The deployment a cleanup is limited to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner<'a> {
    /// Its id ([`crate::model::TAG_DEPLOYMENT`]).
    pub(crate) id: &'a str,
    /// Every key it journaled (VMs made before deployments were tagged carry no id).
    pub(crate) keys: &'a BTreeSet<String>,
}

impl Owner<'_> {
    /// Whether `vm` (tagged with the cluster) was made by this deployment.
    pub(crate) fn owns(&self, vm: &Vm) -> bool {
        match vm.deployment() {
            Some(d) => d == self.id,
            None => vm.key().is_some_and(|k| self.keys.contains(k)),
        }
    }
}

/// Which VMs a purge deletes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope<'a> {
    /// `None`: every VM tagged with the cluster (destroy from the clouds' tags alone);
    /// `Some`: only this deployment's.
    pub(crate) owner: Option<Owner<'a>>,
    /// Per site, the keys whose create was journaled without an outcome: their VMs
    /// may not carry the cluster tag yet (CloudStack tags a VM after deploying it), so
    /// they are listed by key too, and deleted when their key is one of these.
    pub(crate) unsettled: &'a BTreeMap<SiteId, BTreeSet<String>>,
}

impl Scope<'_> {
    /// Whether the purge deletes `vm`.
    pub(crate) fn covers(&self, vm: &Vm, cluster: &str) -> bool {
        if !vm.state.is_alive() {
            return false;
        }
        match vm.cluster() {
            Some(c) => c == cluster && self.owner.is_none_or(|o| o.owns(vm)),
            // Untagged: ours only by a key this deployment journaled at this site.
            None => vm.key().is_some_and(|k| {
                self.unsettled
                    .get(&vm.site)
                    .is_some_and(|keys| keys.contains(k))
            }),
        }
    }
}

/// The site's VMs of `cluster`, and those of the site's unsettled keys.
pub(crate) async fn list_scope(
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
/// a listing shows none, `cleanup_timeout` passes, or a site fails
/// `max_list_failures` listings in a row (then it is reported unverified).
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
    let log = CleanupLog {
        journal,
        failed: AtomicBool::new(false),
    };
    let log = &log;
    let runs = sites.iter().map(|site| async move {
        let Some(p) = providers.get(site) else {
            let error = format!("no provider for site {site}; cannot verify it is empty");
            events.emit(
                Some(site),
                None,
                EventKind::StepFailed {
                    step: "cleanup".into(),
                    error: crate::ErrorInfo::new(crate::ErrorKind::Config, error.clone())
                        .with_site(site.clone()),
                },
            );
            return (site.clone(), 0, Left::Unverified(error));
        };
        let limits = Limits {
            deadline,
            backoff,
            max_list_failures: d.options.max_list_failures.max(1),
        };
        let (deleted, left) = purge_site(p.as_ref(), cluster, scope, log, events, limits).await;
        (site.clone(), deleted, left)
    });
    let mut out = Purged::default();
    for (site, deleted, left) in join_all(runs).await {
        out.deleted += deleted;
        match left {
            Left::Verified => {}
            Left::Listed(n) => {
                out.remaining.insert(site, n);
            }
            Left::Unverified(e) => {
                out.unverified.insert(site, e);
            }
        }
    }
    out
}

/// How a site ended a purge.
#[derive(Debug)]
enum Left {
    /// A listing showed none.
    Verified,
    /// The last listing showed this many at the deadline.
    Listed(usize),
    /// It could not be listed; the last error.
    Unverified(String),
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    deadline: Instant,
    backoff: Duration,
    max_list_failures: u32,
}

/// Returns how many it deleted and how the site ended.
async fn purge_site(
    p: &dyn CloudProvider,
    cluster: &str,
    scope: Scope<'_>,
    log: &CleanupLog<'_>,
    events: &EventSink,
    limits: Limits,
) -> (usize, Left) {
    let site = p.site().clone();
    let mut deleted = 0usize;
    let mut journaled = BTreeSet::new();
    let mut attempt = 0u32;
    let mut list_failures = 0u32;
    // Nothing listed yet: the site is unverified until a listing succeeds.
    let mut last: Left = Left::Unverified("not listed before the deadline".into());
    loop {
        match list_scope(p, cluster, scope).await {
            Ok(vms) => {
                list_failures = 0;
                let doomed: Vec<Vm> = vms
                    .into_iter()
                    .filter(|v| scope.covers(v, cluster))
                    .collect();
                if doomed.is_empty() {
                    return (deleted, Left::Verified);
                }
                last = Left::Listed(doomed.len());
                let calls = doomed.iter().map(|vm| {
                    if journaled.insert(vm.id.clone()) {
                        log.append(&Record::DeleteIntent {
                            site: site.clone(),
                            vm_id: vm.id.clone(),
                            key: vm.key().map(str::to_owned),
                        });
                    }
                    async move { (vm, p.delete_vm(&vm.id).await) }
                });
                let mut any_failed = false;
                for (vm, res) in join_all(calls.collect::<Vec<_>>()).await {
                    match res {
                        Ok(()) => {
                            deleted += 1;
                            log.append(&Record::Deleted {
                                site: site.clone(),
                                vm_id: vm.id.clone(),
                            });
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
                                    error: e.info(),
                                },
                            );
                        }
                    }
                }
                if Instant::now() >= limits.deadline {
                    return (deleted, last);
                }
                if any_failed {
                    tracing::debug!(%site, "some deletes failed; retrying after a pause");
                }
            }
            Err(e) => {
                attempt += 1;
                list_failures += 1;
                events.emit(
                    Some(&site),
                    None,
                    EventKind::Retry {
                        step: "list".into(),
                        attempt,
                        error: e.info(),
                    },
                );
                if list_failures >= limits.max_list_failures {
                    // A site that keeps failing is not waited for: it is reported
                    // unverified, and `down` can be run again when it answers.
                    return (deleted, Left::Unverified(e.to_string()));
                }
                if matches!(last, Left::Unverified(_)) {
                    last = Left::Unverified(e.to_string());
                }
            }
        }
        if Instant::now() >= limits.deadline {
            return (deleted, last);
        }
        tokio::time::sleep(limits.backoff).await;
    }
}

/// The journal a cleanup appends to, if any. A failed append is logged once per
/// purge, not fatal: deleting is safe to repeat and is verified by listing (a full disk
/// must not print a warning per VM).
struct CleanupLog<'a> {
    journal: Option<&'a dyn Journal>,
    failed: AtomicBool,
}

impl CleanupLog<'_> {
    fn append(&self, r: &Record) {
        if let Some(j) = self.journal {
            if let Err(e) = j.append(r) {
                if !self.failed.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        error = %e,
                        "the journal cannot be written during cleanup; deleting and verifying \
                         by listing anyway (further journal failures are not reported)"
                    );
                }
            }
        }
    }
}
