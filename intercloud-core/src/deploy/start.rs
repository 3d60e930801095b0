//! Stopped VMs are started again, not replaced: the same VM, disk, addresses and id.
//!
//! [`Executor::observe`] hands every node whose VM is listed `Stopped` to
//! [`Starts::on_stopped`], which decides between queueing a
//! [`CloudProvider::start_vm`](crate::CloudProvider::start_vm) call for the site's next
//! tick and giving up, in which case the node is replaced like a failed one, with the
//! reason kept for the report (`stopped VM could not be started: …`). It gives up when
//! the site cannot start VMs ([`crate::Capabilities::start_vm`] false), when a start
//! failed for good (anything but a temporary error), or when the VM is still stopped
//! after `max_node_attempts` starts in this pass.
//!
//! Starts are not journaled: a start neither creates nor deletes anything, so a pass
//! that crashes mid-start leaves the same VM, which the next pass lists as stopped or
//! running and handles again. They are evented ([`EventKind::VmStarted`]).

use std::collections::BTreeMap;

use super::events::EventKind;
use super::executor::Executor;
use crate::model::{SiteId, VmId};
use crate::{Error, ErrorClass, ErrorInfo, ErrorKind, Result};

/// What to do with a node whose VM is stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OnStopped {
    /// A start is queued for the site's next tick: keep the VM.
    Start,
    /// Replace the VM (delete it, recreate the node), for this reason.
    Replace(ErrorInfo),
}

/// The deployer's starts of one pass.
#[derive(Debug, Default)]
pub(crate) struct Starts {
    /// Starts to issue at each site's next tick: VM id → node.
    pending: BTreeMap<SiteId, BTreeMap<VmId, String>>,
    /// Start calls made per node in this pass.
    attempts: BTreeMap<String, u32>,
    /// Nodes whose VM could not be started, with the reason.
    given_up: BTreeMap<String, ErrorInfo>,
    /// Nodes whose stopped VM was started (in order, once each).
    pub(crate) started: Vec<String>,
    /// Nodes replaced because their stopped VM could not be started, with the reason.
    pub(crate) replaced: BTreeMap<String, ErrorInfo>,
}

impl Starts {
    /// Decides what happens to `node`, whose VM `vm_id` at `site` is listed `Stopped`.
    pub(crate) fn on_stopped(
        &mut self,
        site: &SiteId,
        node: &str,
        vm_id: &VmId,
        can_start: bool,
        max_attempts: u32,
    ) -> OnStopped {
        let reason = if let Some(why) = self.given_up.remove(node) {
            Some(why)
        } else if !can_start {
            Some(
                ErrorInfo::new(
                    ErrorKind::Unsupported,
                    format!(
                        "stopped VM could not be started: site {site} cannot start VMs \
                         through intercloud (unsupported), so it was replaced"
                    ),
                )
                .with_site(site.clone()),
            )
        } else {
            let n = self.attempts.entry(node.to_owned()).or_default();
            if *n >= max_attempts {
                Some(
                    ErrorInfo::new(
                        ErrorKind::Unavailable,
                        format!(
                            "stopped VM could not be started: still stopped after {n} \
                             starts, so it was replaced"
                        ),
                    )
                    .with_class(ErrorClass::CloudRefused)
                    .with_site(site.clone()),
                )
            } else {
                *n += 1;
                None
            }
        };
        match reason {
            Some(why) => {
                self.attempts.remove(node);
                self.started.retain(|n| n != node);
                self.replaced.insert(node.to_owned(), why.clone());
                OnStopped::Replace(why)
            }
            None => {
                self.pending
                    .entry(site.clone())
                    .or_default()
                    .insert(vm_id.clone(), node.to_owned());
                OnStopped::Start
            }
        }
    }

    /// The starts to issue at `site`'s tick now beginning (VM id, node).
    pub(crate) fn take(&mut self, site: &SiteId) -> Vec<(VmId, String)> {
        self.pending
            .remove(site)
            .unwrap_or_default()
            .into_iter()
            .collect()
    }

    /// Whether `site` has starts waiting for a tick.
    pub(crate) fn has_pending(&self, site: &SiteId) -> bool {
        self.pending.get(site).is_some_and(|p| !p.is_empty())
    }
}

impl Executor<'_> {
    /// Applies the results of one tick's starts at `site`; returns whether anything
    /// changed. A temporary failure is tried again at the next listing that shows the
    /// VM stopped; `NotFound` is left to the listing (the node's VM is missing); any
    /// other error gives the node up to replacement.
    pub(crate) fn started(
        &mut self,
        site: &SiteId,
        results: Vec<((VmId, String), Result<()>)>,
    ) -> bool {
        let changed = !results.is_empty();
        for ((vm_id, node), res) in results {
            let role = self.st.nodes.get(&node).map(|n| n.plan.role.clone());
            match res {
                Ok(()) => {
                    if !self.starts.started.contains(&node) {
                        self.starts.started.push(node.clone());
                    }
                    self.d.events.emit(
                        Some(site),
                        role.as_deref(),
                        EventKind::VmStarted { node, vm_id },
                    );
                }
                Err(e) => {
                    let attempt = self.starts.attempts.get(&node).copied().unwrap_or(1);
                    let kind = e.kind();
                    let event = if e.is_temporary() || kind == ErrorKind::NotFound {
                        EventKind::Retry {
                            step: format!("start {vm_id}"),
                            attempt,
                            error: e.info(),
                        }
                    } else {
                        self.starts
                            .given_up
                            .insert(node.clone(), give_up_reason(&e));
                        EventKind::StepFailed {
                            step: format!("start {vm_id}"),
                            error: e.info(),
                        }
                    };
                    self.d.events.emit(Some(site), role.as_deref(), event);
                }
            }
        }
        changed
    }
}

fn give_up_reason(e: &Error) -> ErrorInfo {
    e.info().with_message(format!(
        "stopped VM could not be started: {e}; it was replaced"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_vm_is_started_until_the_attempts_run_out() {
        let mut s = Starts::default();
        let site = SiteId::new("a");
        let vm = VmId::new("7");
        assert_eq!(s.on_stopped(&site, "w-1", &vm, true, 2), OnStopped::Start);
        assert!(s.has_pending(&site));
        assert_eq!(s.take(&site), vec![(vm.clone(), "w-1".to_owned())]);
        assert!(!s.has_pending(&site));
        assert_eq!(s.on_stopped(&site, "w-1", &vm, true, 2), OnStopped::Start);
        let OnStopped::Replace(why) = s.on_stopped(&site, "w-1", &vm, true, 2) else {
            panic!("a third stop within two attempts must be replaced");
        };
        assert!(why
            .message
            .starts_with("stopped VM could not be started: still stopped after 2"));
        assert_eq!(why.class, ErrorClass::CloudRefused);
        assert_eq!(s.replaced.get("w-1"), Some(&why));
    }

    #[test]
    fn a_site_that_cannot_start_replaces_at_once_and_says_so() {
        let mut s = Starts::default();
        let site = SiteId::new("b");
        let OnStopped::Replace(why) = s.on_stopped(&site, "w-2", &VmId::new("1"), false, 3) else {
            panic!("unsupported start must replace");
        };
        assert!(why.message.contains("site b cannot start VMs"), "{why}");
        assert_eq!(why.kind, ErrorKind::Unsupported);
        assert!(!s.has_pending(&site));
    }
}
