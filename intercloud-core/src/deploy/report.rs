//! What a pass reports: per node, per link, per site; serialisable for `--json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::policy::DeployResult;
use super::state::{BatchStatus, State};
use crate::model::{SiteId, VmId};
use crate::vpn::LinkId;
use crate::ErrorInfo;

/// One node as the CLI prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeReport {
    /// The node's name.
    pub name: String,
    /// Its role.
    pub role: String,
    /// Its site.
    pub site: SiteId,
    /// Its VM, when one exists.
    pub vm_id: Option<VmId>,
    /// The VM's state (`running`, `pending`, …; `missing` without a VM).
    pub state: String,
    /// Its overlay address.
    pub overlay_ip: String,
    /// Its private address at the site, when listed.
    pub private_ip: Option<String>,
    /// Why it failed (or why its VM was replaced), when it did: typed, for a front end
    /// to act on; its `Display` is the text the CLI prints (`--json`: the node's
    /// `"error"` string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
}

/// One link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkReport {
    /// The two sites.
    pub between: [SiteId; 2],
    /// The fabric's id.
    pub link: LinkId,
    /// Its last known state: `connected` (carries traffic), `pending` (not up when
    /// the pass ended), `failed` (the fabric said so), or `unreachable` (a site at
    /// one end does not answer; the link is not verified).
    pub state: String,
}

/// A node moved from one site to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// The node.
    pub node: String,
    /// The site it left.
    pub from: SiteId,
    /// The site it went to.
    pub to: SiteId,
}

/// The outcome of a deploy, resume or repair pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployReport {
    /// The cluster.
    pub cluster: String,
    /// How it ended.
    pub result: DeployResult,
    /// Every node.
    pub nodes: Vec<NodeReport>,
    /// Every link.
    pub links: Vec<LinkReport>,
    /// Nodes moved to another site.
    pub moved: Vec<Move>,
    /// Nodes whose VM was recreated (same name and overlay address).
    pub recreated: Vec<String>,
    /// Nodes whose stopped VM was started again (same VM, disk and id); a stopped VM
    /// that could not be started is replaced instead, and counted in `recreated`
    /// with the reason in its node's `error`.
    #[serde(default)]
    pub started: Vec<String>,
    /// VMs deleted (surplus, failed, rolled back).
    pub deleted: usize,
    /// Alive VMs of this deployment that could not be deleted, by site (their site
    /// was unreachable); a later repair or destroy removes them. While any are
    /// reported the result is at best `Partial`.
    pub leftovers: BTreeMap<SiteId, usize>,
    /// Sites found unreachable in this pass that had not answered again by its end,
    /// with the error (site and cause).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unreachable: BTreeMap<SiteId, String>,
}

pub(crate) fn node_reports(st: &State) -> Vec<NodeReport> {
    // Role order as planned (the request's group order), then names in natural
    // order: `worker-2` before `worker-10`.
    let mut roles: Vec<&str> = Vec::new();
    for n in &st.plan.nodes {
        if !roles.contains(&n.role.as_str()) {
            roles.push(&n.role);
        }
    }
    let rank = |role: &str| roles.iter().position(|r| *r == role).unwrap_or(roles.len());
    let mut nodes: Vec<_> = st.nodes.values().collect();
    nodes.sort_by(|a, b| {
        rank(&a.plan.role)
            .cmp(&rank(&b.plan.role))
            .then_with(|| crate::natural_cmp(&a.plan.name, &b.plan.name))
    });
    nodes
        .into_iter()
        .map(|n| NodeReport {
            name: n.plan.name.clone(),
            role: n.plan.role.clone(),
            site: n.plan.site.clone(),
            vm_id: n.vm.as_ref().map(|v| v.id.clone()),
            state: n
                .vm
                .as_ref()
                .map_or_else(|| "missing".to_owned(), |v| v.state.as_str().to_owned()),
            overlay_ip: n.plan.overlay_ip.clone(),
            private_ip: n.vm.as_ref().and_then(|v| v.private_ip.clone()),
            error: n.failed.clone(),
        })
        .collect()
}

/// Per site, the VMs the journal says this deployment made there (created, or whose
/// create may have taken effect) and that no current node owns: after a site outage,
/// the VMs it may still run although their nodes moved or failed. An upper bound (a
/// VM deleted by hand, or a create whose outcome is unknown, counts until the site
/// is listed); what status reports as unverified leftovers for a site it cannot
/// list.
pub(crate) fn journaled_unowned(st: &State) -> BTreeMap<SiteId, usize> {
    let mut out: BTreeMap<SiteId, usize> = BTreeMap::new();
    if st.destroyed {
        return out;
    }
    for (bi, b) in st.batches.iter().enumerate() {
        if !st.keys.contains(b.batch.key.as_str()) {
            continue;
        }
        let site = &b.batch.site;
        let made: Vec<u32> = match &b.status {
            BatchStatus::Created(ids) => (0..ids.len() as u32)
                .filter(|i| {
                    !st.deleted
                        .contains(&(site.clone(), ids[*i as usize].clone()))
                })
                .collect(),
            BatchStatus::Planned | BatchStatus::Failed => continue,
            _ => (0..b.batch.count()).collect(),
        };
        let unowned = made
            .into_iter()
            .filter(|i| {
                !st.nodes
                    .values()
                    .any(|n| n.slot == Some((bi, *i)) && n.plan.site == b.batch.site)
            })
            .count();
        if unowned > 0 {
            *out.entry(b.batch.site.clone()).or_default() += unowned;
        }
    }
    out
}
