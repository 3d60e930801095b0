//! Reports: the stable `--json` documents (see the README) and the human tables.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use intercloud_core::bootstrap::{ansible_ini, hosts_file, ClusterLayout, NodeInfo};
use intercloud_core::deploy::{
    DeployReport, DeployResult, DestroyReport, LinkReport, NodeReport, Plan, SiteStatus,
};
use intercloud_core::planner::Placement;
use intercloud_core::{ClusterRequest, Error, PlacementCounts, Result, SiteId};

use crate::state::ClusterState;
use crate::{EXIT_FAILED, EXIT_OK, EXIT_PARTIAL};

/// Prints one JSON document on stdout.
pub(crate) fn json(doc: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(doc)
        .map_err(|e| Error::protocol(format!("cannot render JSON: {e}")))?;
    println!("{text}");
    Ok(())
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
    println!(
        "cluster {}: deleted {} VMs, {} remaining",
        r.cluster, r.deleted, r.remaining
    );
    for (site, n) in &r.remaining_by_site {
        println!("  {site}: {n} still listed at the deadline; run `down` again");
    }
    for (site, e) in &r.unverified {
        println!("  {site}: not verified empty, it could not be listed ({e}); run `down` again when it answers");
    }
    Ok(())
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
        "nodes": nodes.iter().map(|n| serde_json::json!({
            "name": n.name,
            "role": n.role,
            "site": n.site,
            "vm_id": n.vm_id,
            "state": n.state,
            "overlay_ip": n.overlay_ip,
            "private_ip": n.private_ip,
        })).collect::<Vec<_>>(),
        "links": links,
        "result": result.as_cli_str(),
    })
}

/// Prints a cluster report: JSON, or a node table and the links.
pub(crate) fn cluster_report(
    as_json: bool,
    cluster: &str,
    nodes: &[NodeReport],
    links: &[LinkReport],
    result: DeployResult,
) -> Result<()> {
    if as_json {
        return json(&cluster_doc(cluster, nodes, links, result));
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
    for l in links {
        let _ = writeln!(
            out,
            "link {} <-> {}: {} ({})",
            l.between[0], l.between[1], l.state, l.link
        );
    }
    print!("{out}");
    Ok(())
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
        "{:<10} {:>6} {:>7} {:>7} {:>6} {:>7} {:>7} {:>9} {:>7}\n",
        "SITE",
        "WANTED",
        "RUNNING",
        "PENDING",
        "BROKEN",
        "MISSING",
        "SURPLUS",
        "UNTRACKED",
        "FOREIGN"
    );
    for (s, st) in sites {
        let _ = writeln!(
            out,
            "{:<10} {:>6} {:>7} {:>7} {:>6} {:>7} {:>7} {:>9} {:>7}{}",
            s.as_str(),
            st.wanted,
            st.running,
            st.pending,
            st.broken,
            st.missing,
            st.surplus,
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

/// What a repair pass did, on stderr.
pub(crate) fn repair_summary(r: &DeployReport) {
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
