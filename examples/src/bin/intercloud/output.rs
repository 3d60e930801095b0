//! Reports: the stable `--json` documents (see the README) and the human tables.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use intercloud_core::bootstrap::{ansible_ini, hosts_file, ClusterLayout, NodeInfo};
use intercloud_core::deploy::{
    DeployReport, DeployResult, DestroyReport, LinkReport, NodeReport, Plan, Record, SiteStatus,
};
use intercloud_core::planner::Placement;
use intercloud_core::{ClusterRequest, Error, ErrorKind, PlacementCounts, Result, SiteId};

use crate::state::ClusterState;
use crate::{EXIT_FAILED, EXIT_OK, EXIT_PARTIAL};

/// Prints one JSON document on stdout.
pub(crate) fn json(doc: &impl Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(doc)
        .map_err(|e| Error::protocol(format!("cannot render JSON: {e}")))?;
    text.push('\n');
    stdout(&text)
}

/// Writes `text` to stdout: every report goes through here, never `println!`.
///
/// A reader that stopped reading (`intercloud plan | head -1`: a closed pipe) is not
/// an error: the rest of the output is dropped quietly and the command finishes its
/// work and exits with its own code (`println!` would panic, exit 101).
pub(crate) fn stdout(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::new(
            ErrorKind::Unavailable,
            format!("cannot write to stdout: {e}"),
        )),
    }
}

/// [`stdout`] with a line break after `text`.
pub(crate) fn line(text: &str) -> Result<()> {
    stdout(&format!("{text}\n"))
}

/// `down --json`: `{cluster, deleted, remaining, unverified}`, or the text lines.
pub(crate) fn destroy_report(as_json: bool, r: &DestroyReport) -> Result<()> {
    if as_json {
        return json(&serde_json::json!({
            "cluster": r.cluster,
            "deleted": r.deleted,
            "remaining": r.remaining,
            "unverified": r.unverified.keys().collect::<Vec<_>>(),
        }));
    }
    let mut out = format!(
        "cluster {}: deleted {} VMs, {} remaining\n",
        r.cluster, r.deleted, r.remaining
    );
    for (site, n) in &r.remaining_by_site {
        let _ = writeln!(
            out,
            "  {site}: {n} still listed at the deadline; run `down` again"
        );
    }
    for (site, e) in &r.unverified {
        let _ = writeln!(
            out,
            "  {site}: not verified empty, it could not be listed ({e}); run `down` again \
             when it answers"
        );
    }
    stdout(&out)
}

/// The exit code of a pass's result.
pub(crate) fn exit_code(r: DeployResult) -> u8 {
    match r {
        DeployResult::Ok => EXIT_OK,
        DeployResult::Partial => EXIT_PARTIAL,
        DeployResult::RolledBack | DeployResult::Failed => EXIT_FAILED,
    }
}

/// `plan --json`: the planner's placement document plus the deployer's steps.
pub(crate) fn plan_doc(placement: &Placement, plan: &Plan) -> Result<serde_json::Value> {
    let mut doc = serde_json::to_value(placement).map_err(|e| Error::protocol(e.to_string()))?;
    doc["steps"] = serde_json::to_value(&plan.steps).map_err(|e| Error::protocol(e.to_string()))?;
    Ok(doc)
}

/// `up`/`status --json`: `{cluster, nodes, links, result}`.
pub(crate) fn cluster_doc(
    cluster: &str,
    nodes: &[NodeReport],
    links: &[LinkReport],
    result: DeployResult,
) -> serde_json::Value {
    serde_json::json!({
        "cluster": cluster,
        "nodes": nodes.iter().map(node_doc).collect::<Vec<_>>(),
        "links": links,
        "result": result.as_cli_str(),
    })
}

/// One node of `--json`: `{name, role, site, vm_id, state, overlay_ip, private_ip}`,
/// plus `error` when the node failed.
fn node_doc(n: &NodeReport) -> serde_json::Value {
    let mut doc = serde_json::json!({
        "name": n.name,
        "role": n.role,
        "site": n.site,
        "vm_id": n.vm_id,
        "state": n.state,
        "overlay_ip": n.overlay_ip,
        "private_ip": n.private_ip,
    });
    if let Some(e) = &n.error {
        // The contract: a string, the error's text (its typed fields stay in the library).
        doc["error"] = e.to_string().into();
    }
    doc
}

/// Prints a cluster report: JSON, or a node table and the links.
///
/// Every node's error is shown (`--json`: the node's `"error"`; text: a line per
/// failed node under the table). `errors` are the pass's failures that belong to no
/// node (a link, the journal, a rollback): shown when the pass did not end `ok` and
/// no node says why (`--json`: `"errors"`, only then).
pub(crate) fn cluster_report(
    as_json: bool,
    cluster: &str,
    nodes: &[NodeReport],
    links: &[LinkReport],
    result: DeployResult,
    errors: &[String],
) -> Result<()> {
    let unexplained = result != DeployResult::Ok && nodes.iter().all(|n| n.error.is_none());
    if as_json {
        let mut doc = cluster_doc(cluster, nodes, links, result);
        if unexplained && !errors.is_empty() {
            doc["errors"] = serde_json::json!(errors);
        }
        return json(&doc);
    }
    let mut out = format!("cluster {cluster}: {}\n", result.as_cli_str());
    let _ = writeln!(
        out,
        "{:<14} {:<8} {:<10} {:<10} {:<15} {:<15} VM",
        "NODE", "ROLE", "SITE", "STATE", "OVERLAY", "PRIVATE"
    );
    for n in nodes {
        let _ = writeln!(
            out,
            "{:<14} {:<8} {:<10} {:<10} {:<15} {:<15} {}",
            n.name,
            n.role,
            n.site,
            n.state,
            n.overlay_ip,
            n.private_ip.as_deref().unwrap_or("-"),
            n.vm_id.as_ref().map_or("-", |v| v.as_str())
        );
    }
    for n in nodes {
        if let Some(e) = &n.error {
            let _ = writeln!(out, "  {} failed: {e}", n.name);
        }
    }
    for l in links {
        let _ = writeln!(
            out,
            "link {} <-> {}: {} ({})",
            l.between[0], l.between[1], l.state, l.link
        );
    }
    if unexplained {
        for e in errors {
            let _ = writeln!(out, "error: {e}");
        }
    }
    stdout(&out)
}

/// A placement as a table: one row per group, one column per site.
pub(crate) fn placement_table(counts: &PlacementCounts) -> String {
    let sites: Vec<&SiteId> = {
        let mut s: Vec<&SiteId> = counts.values().flat_map(|m| m.keys()).collect();
        s.sort();
        s.dedup();
        s
    };
    let mut out = format!("{:<10}", "GROUP");
    for s in &sites {
        let _ = write!(out, " {:>10}", s.as_str());
    }
    out.push('\n');
    for (g, m) in counts {
        let _ = write!(out, "{g:<10}");
        for s in &sites {
            let _ = write!(out, " {:>10}", m.get(*s).copied().unwrap_or(0));
        }
        out.push('\n');
    }
    out
}

/// Per-site wanted versus observed.
pub(crate) fn site_table(sites: &BTreeMap<SiteId, SiteStatus>) -> String {
    let mut out = format!(
        "{:<10} {:>6} {:>7} {:>7} {:>6} {:>7} {:>7} {:>10} {:>9} {:>7}\n",
        "SITE",
        "WANTED",
        "RUNNING",
        "PENDING",
        "BROKEN",
        "MISSING",
        "SURPLUS",
        "UNVERIFIED",
        "UNTRACKED",
        "FOREIGN"
    );
    for (s, st) in sites {
        let _ = writeln!(
            out,
            "{:<10} {:>6} {:>7} {:>7} {:>6} {:>7} {:>7} {:>10} {:>9} {:>7}{}",
            s.as_str(),
            st.wanted,
            st.running,
            st.pending,
            st.broken,
            st.missing,
            st.surplus,
            st.unverified,
            st.untracked,
            st.foreign,
            st.error
                .as_deref()
                .map(|e| format!("  ({e})"))
                .unwrap_or_default()
        );
    }
    out
}

/// Whether the journal's last pass was cut short: its last record is neither a pass's
/// end (`Finished`) nor `Destroyed` (an `up`, `resume` or `repair` killed or
/// interrupted).
pub(crate) fn interrupted(records: &[Record]) -> bool {
    !matches!(
        records.last(),
        None | Some(Record::Finished { .. } | Record::Destroyed)
    )
}

/// On stderr, after `status` of an interrupted deployment: what the result means and
/// how to continue.
pub(crate) fn interrupted_hint(cluster: &str) {
    eprintln!(
        "note: the deployment of cluster {cluster} was interrupted before it finished, so \
         it is incomplete rather than failed; continue it with `intercloud resume -c \
         {cluster}` (or remove it with `intercloud down -c {cluster}`)"
    );
}

/// What a repair pass did, on stderr.
pub(crate) fn repair_summary(r: &DeployReport) {
    for n in &r.started {
        eprintln!("started {n} (its stopped VM: same VM, disk and id)");
    }
    for n in &r.recreated {
        eprintln!("recreated {n} (same name and overlay address)");
    }
    for m in &r.moved {
        eprintln!("moved {} from {} to {}", m.node, m.from, m.to);
    }
    if r.deleted > 0 {
        eprintln!("deleted {} surplus or failed VMs", r.deleted);
    }
}

/// The cluster as the bootstrap renderers see it.
pub(crate) fn layout(request: &ClusterRequest, nodes: &[NodeReport]) -> ClusterLayout {
    ClusterLayout {
        cluster: request.name.clone(),
        profile: request.profile,
        nodes: nodes
            .iter()
            .map(|n| NodeInfo {
                name: n.name.clone(),
                role: n.role.clone(),
                site: n.site.clone(),
                overlay_ip: n.overlay_ip.clone(),
                slots: request
                    .group(&n.role)
                    .map_or(1, |g| intercloud_vpn::slots_for_level(&g.level)),
            })
            .collect(),
    }
}

/// `inventory --json`: `{cluster, format, hosts: [{name, role, site, overlay_ip,
/// private_ip}], text}`, `text` being the inventory in `format` as printed without
/// `--json`.
pub(crate) fn inventory_doc(
    layout: &ClusterLayout,
    nodes: &[NodeReport],
    format: crate::InventoryFormat,
) -> serde_json::Value {
    use intercloud_core::bootstrap::ansible_yaml;
    let (name, text) = match format {
        crate::InventoryFormat::Ini => ("ini", ansible_ini(layout)),
        crate::InventoryFormat::Yaml => ("yaml", ansible_yaml(layout)),
        crate::InventoryFormat::Hosts => ("hosts", hosts_file(layout)),
    };
    serde_json::json!({
        "cluster": layout.cluster,
        "format": name,
        "hosts": layout.nodes.iter().map(|n| serde_json::json!({
            "name": n.name,
            "role": n.role,
            "site": n.site,
            "overlay_ip": n.overlay_ip,
            "private_ip": nodes.iter().find(|r| r.name == n.name).and_then(|r| r.private_ip.clone()),
        })).collect::<Vec<_>>(),
        "text": text,
    })
}

/// Writes `hosts` and `inventory.ini` into the cluster's state folder.
pub(crate) fn write_inventory(
    state: &ClusterState,
    request: &ClusterRequest,
    nodes: &[NodeReport],
) -> Result<()> {
    let l = layout(request, nodes);
    for (name, text) in [
        ("hosts", hosts_file(&l)),
        ("inventory.ini", ansible_ini(&l)),
    ] {
        let path = state.path(name);
        std::fs::write(&path, text)
            .map_err(|e| Error::config(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use intercloud_core::{ErrorInfo, ErrorKind, SiteId};

    #[test]
    fn a_node_error_stays_a_string_in_json() {
        let text = "site b: capacity exceeded: 2 alive of 2, 1 more requested [quota_exceeded]";
        let node = NodeReport {
            name: "w-1".into(),
            role: "worker".into(),
            site: SiteId::new("b"),
            vm_id: None,
            state: "missing".into(),
            overlay_ip: "10.77.0.3".into(),
            private_ip: None,
            error: Some(ErrorInfo::new(ErrorKind::QuotaExceeded, text).with_site("b")),
        };
        let doc = node_doc(&node);
        assert_eq!(doc["error"], serde_json::Value::String(text.into()));
        assert!(node_doc(&NodeReport {
            error: None,
            ..node
        })
        .get("error")
        .is_none());
    }
}
