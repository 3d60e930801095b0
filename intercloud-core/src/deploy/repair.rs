//! Repair: recreate failed or missing nodes with the same identity, move nodes off
//! sites that are down or full, delete what no node owns; and `watch`, which repairs
//! at an interval until told to stop.

use std::future::Future;
use std::time::Duration;

use super::executor::Executor;
use super::journal::Journal;
use super::report::DeployReport;
use super::state::State;
use super::{events::EventKind, Deployer};
use crate::{Error, Result};

impl Deployer {
    /// One repair pass over the deployment recorded in `journal`.
    ///
    /// Every site is listed; a node whose VM is failed, stopped or missing gets a new
    /// VM with the same name, role and overlay address (new batch key) on the same
    /// site, or — when that site is unreachable or refuses creates — on another site
    /// allowed by the request. VMs of this deployment that no node owns are deleted
    /// (on unreachable sites they are reported as leftovers for a later pass). Repair
    /// never rolls the cluster back: the result is `Ok` or `Partial`.
    ///
    /// # Errors
    /// `Journal` when the journal cannot be read or written; `Config` when the
    /// cluster was destroyed or a site has no provider.
    pub async fn repair(&self, journal: &dyn Journal) -> Result<DeployReport> {
        let st = State::replay(&journal.records()?)?;
        if st.destroyed {
            return Err(Error::config(format!(
                "cluster {:?} was destroyed; deploy it again instead of repairing",
                st.plan.cluster
            )));
        }
        self.check_providers(st.sites_touched().iter())?;
        let mut ex = Executor::new(self, journal, st);
        ex.repairing = true;
        self.events.emit(
            None,
            None,
            EventKind::PlanStarted {
                nodes: ex.st.nodes.len(),
                sites: ex.st.sites_in_use().len(),
                batches: ex.st.batches.len(),
            },
        );
        self.drive(ex, false).await
    }

    /// Repairs every `interval` until `shutdown` completes; returns the reports of the
    /// passes that changed something (moved, recreated, started or deleted).
    ///
    /// # Errors
    /// The first pass error that is not temporary (journal, configuration).
    pub async fn watch(
        &self,
        journal: &dyn Journal,
        interval: Duration,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<Vec<DeployReport>> {
        let mut reports = Vec::new();
        tokio::pin!(shutdown);
        loop {
            let pass = tokio::select! {
                r = self.repair(journal) => r,
                () = &mut shutdown => return Ok(reports),
            };
            match pass {
                Ok(r) => {
                    if !r.moved.is_empty()
                        || !r.recreated.is_empty()
                        || !r.started.is_empty()
                        || r.deleted > 0
                    {
                        reports.push(r);
                    }
                }
                Err(e) if e.is_temporary() => {
                    tracing::warn!(error = %e, "repair pass failed; trying again later");
                }
                Err(e) => return Err(e),
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = &mut shutdown => return Ok(reports),
            }
        }
    }
}
