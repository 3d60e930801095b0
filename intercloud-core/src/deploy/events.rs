//! Progress events, streamed to the caller (a CLI draws bars, a portal forwards them).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::policy::DeployResult;
use crate::model::{SiteId, VmId};
use crate::vpn::LinkId;
use crate::ErrorInfo;

/// One thing that happened, with where and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Time since the pass started.
    pub elapsed: Duration,
    /// The site concerned, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<SiteId>,
    /// The node group (role) concerned, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
#[non_exhaustive]
pub enum EventKind {
    /// A pass began: how many nodes it wants, over how many sites and create calls.
    PlanStarted {
        /// Wanted nodes.
        nodes: usize,
        /// Sites used.
        sites: usize,
        /// Create calls planned.
        batches: usize,
    },
    /// A site's overlay endpoint is ready.
    EndpointReady,
    /// A link to `peer` was connected.
    LinkRequested {
        /// The other site.
        peer: SiteId,
    },
    /// A link to `peer` carries traffic.
    LinkUp {
        /// The other site.
        peer: SiteId,
        /// The link.
        link: LinkId,
    },
    /// A create call was made for `count` VMs with batch `key`.
    VmRequested {
        /// The batch key.
        key: String,
        /// How many VMs.
        count: u32,
    },
    /// A node's VM runs.
    VmRunning {
        /// The node.
        node: String,
        /// Its VM.
        vm_id: VmId,
    },
    /// A node's stopped VM was started again (same VM, disk and id); `VmRunning`
    /// follows when it runs.
    VmStarted {
        /// The node.
        node: String,
        /// Its VM.
        vm_id: VmId,
    },
    /// A call failed temporarily and will be tried again.
    Retry {
        /// What was tried (`create KEY`, `list`, `delete ID`).
        step: String,
        /// The attempt that failed (1-based).
        attempt: u32,
        /// The error; `Display` gives the text it always had.
        error: ErrorInfo,
    },
    /// A step failed for good.
    StepFailed {
        /// What failed.
        step: String,
        /// The error; `Display` gives the text it always had.
        error: ErrorInfo,
    },
    /// A node moved to another site (capacity, outage).
    Replaced {
        /// The node.
        node: String,
        /// The site it left.
        from: SiteId,
    },
    /// A VM was deleted (surplus, failed, rolled back or destroyed).
    VmDeleted {
        /// The VM.
        vm_id: VmId,
    },
    /// Everything this deployment made was deleted and the deletion verified.
    RolledBack {
        /// VMs deleted.
        deleted: usize,
    },
    /// A failed or missing node was recreated with the same identity.
    Repaired {
        /// The node.
        node: String,
    },
    /// A site is declared unreachable (its calls failed for `site_timeout`, or its
    /// listing `max_list_failures` times in a row): its nodes move or fail, the VMs it
    /// may still run are leftovers until it answers.
    SiteUnreachable {
        /// The last error, naming the site and the cause.
        error: ErrorInfo,
    },
    /// An unreachable site answers again: its leftovers are being deleted.
    SiteAnswers,
    /// At the end of a pass: VMs of this deployment that may still run on the site
    /// although no node owns them (it did not answer); deleted once it answers.
    Leftovers {
        /// How many (an upper bound).
        vms: usize,
    },
    /// The pass ended.
    Finished {
        /// How.
        result: DeployResult,
        /// Nodes running.
        running: usize,
        /// Nodes wanted.
        wanted: usize,
    },
}

/// Where events go: an unbounded channel (so a slow reader never stalls a deploy), or
/// nowhere.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: Option<mpsc::UnboundedSender<Event>>,
    start: Instant,
}

impl EventSink {
    /// A sink that drops every event.
    pub fn none() -> Self {
        Self {
            tx: None,
            start: Instant::now(),
        }
    }

    /// A sink and the receiver the caller reads events from.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                tx: Some(tx),
                start: Instant::now(),
            },
            rx,
        )
    }

    /// Sends one event (dropped when nobody listens).
    pub fn emit(&self, site: Option<&SiteId>, group: Option<&str>, kind: EventKind) {
        tracing::debug!(site = ?site, group = ?group, event = ?kind, "deploy event");
        if let Some(tx) = &self.tx {
            let _ = tx.send(Event {
                elapsed: self.start.elapsed(),
                site: site.cloned(),
                group: group.map(str::to_owned),
                kind,
            });
        }
    }
}
