//! What the clouds themselves list for a cluster name, without a journal: the check
//! before a deploy creates anything, and status and destroy from the clouds' tags
//! alone (a lost or damaged state folder must not leave VMs invisible).
//!
//! Every VM intercloud makes carries the cluster's name and its deployment's id
//! ([`TAG_DEPLOYMENT`](crate::model::TAG_DEPLOYMENT)), so the VMs of one name are told
//! apart by deployment: two state folders, or two users of a portal, that chose the
//! same name never touch each other's VMs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use futures::future::join_all;
use serde::{Deserialize, Serialize};

use super::cleanup::{purge, Owner, Scope};
use super::events::EventKind;
use super::plan::Plan;
use super::status::DestroyReport;
use super::Deployer;
use crate::model::{SiteId, Vm, VmFilter};
use crate::{Error, Result};

/// The name under which VMs without a deployment tag (made by an intercloud older
/// than deployment ids) are counted in a [`Census`].
pub const UNTAGGED_DEPLOYMENT: &str = "(untagged)";

/// One site's VMs of a cluster name, as the site lists them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SiteCensus {
    /// The cluster's VMs that still hold resources.
    pub vms: Vec<Vm>,
    /// Why the site could not be listed, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Every VM tagged with a cluster name on every site, as the clouds list them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Census {
    /// The cluster name.
    pub cluster: String,
    /// Per site.
    pub sites: BTreeMap<SiteId, SiteCensus>,
}

impl Census {
    /// VMs per deployment id (VMs without one under [`UNTAGGED_DEPLOYMENT`]).
    pub fn by_deployment(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for vm in self.sites.values().flat_map(|s| &s.vms) {
            let id = vm.deployment().unwrap_or(UNTAGGED_DEPLOYMENT).to_owned();
            *out.entry(id).or_default() += 1;
        }
        out
    }

    /// Every VM listed, over all sites.
    pub fn len(&self) -> usize {
        self.sites.values().map(|s| s.vms.len()).sum()
    }

    /// Whether no site listed any VM of the cluster.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sites that could not be listed, with the error.
    pub fn unverified(&self) -> BTreeMap<SiteId, String> {
        self.sites
            .iter()
            .filter_map(|(s, c)| c.error.clone().map(|e| (s.clone(), e)))
            .collect()
    }
}

impl Deployer {
    /// Lists every VM tagged with `cluster` on every site, concurrently, one call per
    /// site, each bounded by `timeout`. A site that fails is reported in its
    /// [`SiteCensus::error`], never dropped silently.
    pub async fn census(&self, cluster: &str, timeout: Duration) -> Census {
        Census {
            cluster: cluster.to_owned(),
            sites: self
                .list_everywhere(cluster, timeout)
                .await
                .into_iter()
                .map(|(site, r)| {
                    let c = match r {
                        Ok(vms) => SiteCensus { vms, error: None },
                        Err(e) => SiteCensus {
                            vms: Vec::new(),
                            error: Some(e.to_string()),
                        },
                    };
                    (site, c)
                })
                .collect(),
        }
    }

    /// The alive VMs tagged with `cluster`, per site; a temporary error is retried
    /// (after `poll_min`) until `timeout`, unless a retry layer spent its retries on
    /// it already ([`crate::Error::retries_spent`]).
    async fn list_everywhere(
        &self,
        cluster: &str,
        timeout: Duration,
    ) -> Vec<(SiteId, Result<Vec<Vm>>)> {
        let pause = self.options.poll_min;
        let events = &self.events;
        join_all(self.providers.iter().map(|(site, p)| async move {
            let filter = VmFilter::cluster(cluster);
            let mut last: Option<Error> = None;
            let attempts = async {
                let mut attempt = 0u32;
                loop {
                    attempt += 1;
                    match p.list_vms(&filter).await {
                        Ok(vms) => return Ok(vms),
                        // Not one a retry layer already spent its retries on.
                        Err(e) if e.is_temporary() && !e.retries_spent() => {
                            events.emit(
                                Some(site),
                                None,
                                EventKind::Retry {
                                    step: "list".into(),
                                    attempt,
                                    error: e.info(),
                                },
                            );
                            last = Some(e);
                            tokio::time::sleep(pause).await;
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            let out = match tokio::time::timeout(timeout, attempts).await {
                Ok(r) => r.map(|vms| {
                    vms.into_iter()
                        .filter(|v| v.state.is_alive() && v.cluster() == Some(cluster))
                        .collect()
                }),
                Err(_) => Err(last.unwrap_or_else(|| {
                    Error::new(
                        crate::ErrorKind::Timeout,
                        format!("no answer to a listing within {} s", timeout.as_secs()),
                    )
                    .with_site(site)
                })),
            };
            (site.clone(), out)
        }))
        .await
    }

    /// The check before a deployment creates anything: one signed listing of the
    /// cluster's name on every site, concurrently.
    ///
    /// # Errors
    /// - the site's own error (wrong credentials, an endpoint that is not a cloud,
    ///   no answer within `preflight_timeout`), naming the site, when a site the plan
    ///   places nodes on fails: nothing has been created;
    /// - `Config` when VMs tagged with the cluster's name made by another deployment
    ///   exist on any site (another state folder or user deployed this name), naming
    ///   the sites, the deployments and the command that removes them.
    ///
    /// Sites the plan does not use may fail without stopping the deployment.
    pub(crate) async fn preflight(&self, plan: &Plan) -> Result<()> {
        let lists = self
            .list_everywhere(&plan.cluster, self.options.preflight_timeout)
            .await;
        let used: BTreeSet<&SiteId> = plan.sites.iter().collect();
        let mut vms: Vec<(&SiteId, &Vm)> = Vec::new();
        for (site, r) in &lists {
            match r {
                Ok(list) => vms.extend(list.iter().map(|v| (site, v))),
                Err(e) if used.contains(site) => {
                    self.events.emit(
                        Some(site),
                        None,
                        EventKind::StepFailed {
                            step: "preflight".into(),
                            error: e.info(),
                        },
                    );
                    // The kind, class, retry state and site go on the new error, the
                    // cause's words in it.
                    return Err(e
                        .with_message(format!(
                            "failed its check before anything was created: {}; fix its \
                             endpoint or credentials in the federation, or leave the site out",
                            e.message()
                        ))
                        .with_site(site)
                        .with_temporary(false));
                }
                Err(e) => {
                    tracing::warn!(%site, error = %e, "a site the plan does not use cannot be listed");
                }
            }
        }
        let mut others: BTreeMap<&SiteId, BTreeMap<&str, usize>> = BTreeMap::new();
        for (site, vm) in vms {
            let id = vm.deployment().unwrap_or(UNTAGGED_DEPLOYMENT);
            if id != plan.deployment_id {
                *others.entry(site).or_default().entry(id).or_default() += 1;
            }
        }
        if others.is_empty() {
            return Ok(());
        }
        let mut what = String::new();
        let mut ids: BTreeSet<&str> = BTreeSet::new();
        for (site, per) in &others {
            for (id, n) in per {
                ids.insert(id);
                let _ = write!(what, "{}{n} on {site} (deployment {id})", sep(&what));
            }
        }
        let how = ids
            .iter()
            .map(|id| {
                if *id == UNTAGGED_DEPLOYMENT {
                    format!("`intercloud down -c {} --from-clouds --yes`", plan.cluster)
                } else {
                    format!(
                        "`intercloud down -c {} --from-clouds --deployment {id} --yes`",
                        plan.cluster
                    )
                }
            })
            .collect::<Vec<_>>()
            .join(" or ");
        Err(Error::config(format!(
            "cluster name {:?} is already in use by another deployment: {what} VMs; choose \
             another name, work on that deployment from its state folder, or remove its VMs \
             with {how}",
            plan.cluster
        )))
    }

    /// Deletes the VMs tagged with `cluster` — only those of `deployment` when given —
    /// on every site, from the clouds' tags alone (no journal: a lost or damaged state
    /// folder), and verifies by listing. Overlay resources recorded only in a journal
    /// are not found this way.
    ///
    /// # Errors
    /// None today; `Result` leaves room for stores that must be read.
    pub async fn destroy_tagged(
        &self,
        cluster: &str,
        deployment: Option<&str>,
    ) -> Result<DestroyReport> {
        let sites: BTreeSet<SiteId> = self.providers.keys().cloned().collect();
        let no_keys = BTreeSet::new();
        let no_unsettled = BTreeMap::new();
        let scope = Scope {
            owner: deployment.map(|id| Owner { id, keys: &no_keys }),
            unsettled: &no_unsettled,
        };
        let purged = purge(self, &sites, cluster, scope, None).await;
        Ok(self.destroy_report(cluster, purged, 0, None))
    }
}

fn sep(s: &str) -> &'static str {
    if s.is_empty() {
        ""
    } else {
        ", "
    }
}
