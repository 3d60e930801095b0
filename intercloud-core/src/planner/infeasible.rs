//! Infeasible requests: which constraint cannot be met, and by how much.
//!
//! Error kinds: [`ErrorKind::QuotaExceeded`] when more capacity would make the
//! request feasible (the message gives the shortfall and each site's share);
//! [`ErrorKind::InvalidRequest`] when the constraints contradict each other whatever
//! the capacity (a pin to an unknown site, `survive_site_loss = 1`, `min_sites`
//! above the sites that can host anything, sites with no link between them).
//!
//! Every such error names its constraints machine-readably too
//! ([`Error::constraints`], the same names as the message's prefix), which makes its
//! class [`crate::ErrorClass::UserInput`]. The one exception is the planner's
//! `Timeout` (a placement exists but was not found in the budget): it names none.

use super::instance::{thousands, Instance};
use super::Constraint;
use crate::{Error, ErrorKind, Result};

fn site_list(inst: &Instance, per_site: &[(usize, u32)]) -> String {
    let mut v: Vec<(usize, u32)> = per_site.iter().copied().filter(|p| p.1 > 0).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    if v.is_empty() {
        return "no site offers it".to_owned();
    }
    v.iter()
        .map(|&(s, c)| format!("{} {}", inst.sites[s], thousands(u64::from(c))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The links that exist but fall short of the VPN wish, between sites able to host
/// a node: `a <-> b (790 Mbit/s usable)`, narrowest first.
fn narrow_links(inst: &Instance) -> String {
    let n = inst.n_sites();
    let hosts = |s: usize| inst.groups.iter().any(|g| g.ub[s] > 0);
    let mut v: Vec<(f64, usize, usize)> = Vec::new();
    for a in 0..n {
        for b in 0..a {
            let p = inst.pair(a, b);
            if hosts(a) && hosts(b) && inst.rtt_s[p].is_finite() && !inst.linked[p] {
                v.push((8.0 / inst.spb[p] / 1e6, b, a));
            }
        }
    }
    v.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    v.iter()
        .map(|&(mbps, a, b)| {
            format!(
                "{} <-> {} ({mbps:.0} Mbit/s usable)",
                inst.sites[a], inst.sites[b]
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks what makes a request infeasible on its own: one constraint at a time.
///
/// # Errors
/// See the module documentation.
pub(crate) fn precheck(inst: &Instance) -> Result<()> {
    let n = inst.n_sites();
    for grp in &inst.groups {
        if grp.survive_cap == 0 {
            return Err(Error::invalid(format!(
                "group {}: spread.survive_site_loss leaves no site able to hold any of its {} VMs; lower it below 1",
                grp.role, grp.count
            ))
            .with_constraint(Constraint::SurviveSiteLoss));
        }
    }
    // Each level against the sites any of its groups may use.
    for (l, level) in inst.levels.iter().enumerate() {
        let demand: u64 = inst
            .groups
            .iter()
            .filter(|g| g.level == l)
            .map(|g| u64::from(g.count))
            .sum();
        let per: Vec<(usize, u32)> = (0..n)
            .filter(|&s| inst.groups.iter().any(|g| g.level == l && g.allowed[s]))
            .map(|s| (s, inst.cap[l][s]))
            .collect();
        let room: u64 = per.iter().map(|p| u64::from(p.1)).sum();
        if room < demand {
            return Err(Error::new(
                ErrorKind::QuotaExceeded,
                format!(
                    "capacity: need {} × {level}, the federation can host {}: {} (short by {})",
                    thousands(demand),
                    thousands(room),
                    site_list(inst, &per),
                    thousands(demand - room)
                ),
            )
            .with_constraint(Constraint::Capacity));
        }
    }
    for grp in &inst.groups {
        let level = &inst.levels[grp.level];
        let per: Vec<(usize, u32)> = (0..n).map(|s| (s, grp.ub[s])).collect();
        if grp.colocate {
            let (best, most) = per
                .iter()
                .copied()
                .max_by_key(|p| (p.1, std::cmp::Reverse(p.0)))
                .unwrap_or((0, 0));
            if most < grp.count {
                return Err(Error::new(
                    ErrorKind::QuotaExceeded,
                    format!(
                        "colocate: group {} must sit on one site and needs {} × {level}; the largest allowed site, {}, can host {} (short by {})",
                        grp.role,
                        thousands(u64::from(grp.count)),
                        inst.sites[best],
                        thousands(u64::from(most)),
                        thousands(u64::from(grp.count - most))
                    ),
                )
                .with_constraint(Constraint::Colocate));
            }
            continue;
        }
        let room: u64 = per.iter().map(|p| u64::from(p.1)).sum();
        if room < u64::from(grp.count) {
            let mut named = Vec::new();
            if grp.allowed.iter().any(|a| !a) {
                named.push(Constraint::Pinning);
            }
            if grp.survive_cap < grp.count {
                named.push(Constraint::SurviveSiteLoss);
            }
            if named.is_empty() {
                named.push(Constraint::Capacity);
            }
            let why = named
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(" + ");
            let cap_note = if grp.survive_cap < grp.count {
                format!(
                    " (survive_site_loss allows at most {} per site)",
                    grp.survive_cap
                )
            } else {
                String::new()
            };
            let err = Error::new(
                ErrorKind::QuotaExceeded,
                format!(
                    "{why}: group {} needs {} × {level}, its allowed sites can host {}{cap_note}: {} (short by {})",
                    grp.role,
                    thousands(u64::from(grp.count)),
                    thousands(room),
                    site_list(inst, &per),
                    thousands(u64::from(grp.count) - room)
                ),
            );
            return Err(named.into_iter().fold(err, |e, c| e.with_constraint(c)));
        }
    }
    let hosts: Vec<usize> = (0..n)
        .filter(|&s| inst.groups.iter().any(|g| g.ub[s] > 0))
        .collect();
    if (hosts.len() as u32) < inst.min_sites {
        return Err(Error::invalid(format!(
            "min-sites: spread.min_sites = {} but only {} sites can host a node of this cluster ({}); lower min_sites or add sites",
            inst.min_sites,
            hosts.len(),
            hosts.iter().map(|&s| inst.sites[s].as_str()).collect::<Vec<_>>().join(", ")
        ))
        .with_constraint(Constraint::MinSites));
    }
    Ok(())
}

/// When each constraint holds alone but no placement meets all of them: names the
/// constraint whose relaxation restores feasibility. `solvable` answers whether a
/// (relaxed) instance has a feasible placement; when the instance itself is solvable
/// the search ran out of budget, and the error is a `Timeout`.
pub(crate) fn diagnose(inst: &Instance, solvable: impl Fn(&Instance) -> bool) -> Error {
    let n = inst.n_sites();
    if solvable(inst) {
        return Error::new(
            ErrorKind::Timeout,
            "no placement found within the planner's budget, though one exists; raise the budget or use SearchMode::Auto",
        );
    }
    let mut relaxed = inst.clone();
    for g in &mut relaxed.groups {
        g.max_rtt_ms = f64::INFINITY;
    }
    let has_rtt_limit = inst.groups.iter().any(|g| g.max_rtt_ms.is_finite());
    if has_rtt_limit && solvable(&relaxed) {
        let groups: Vec<String> = inst
            .groups
            .iter()
            .filter(|g| g.max_rtt_ms.is_finite())
            .map(|g| format!("{} ({} ms)", g.role, g.max_rtt_ms))
            .collect();
        return Error::invalid(format!(
            "max-rtt: no placement keeps every group within its max_rtt_ms [{}] with the capacity near enough; raise max_rtt_ms or add capacity at nearby sites",
            groups.join(", ")
        ))
        .with_constraint(Constraint::MaxRtt);
    }
    let mut relaxed = inst.clone();
    for a in 0..n {
        for b in 0..n {
            let p = a * n + b;
            if relaxed.rtt_s[p].is_finite() {
                relaxed.linked[p] = true;
            }
        }
    }
    if let Some(wish) = inst.vpn_mbps.filter(|_| solvable(&relaxed)) {
        return Error::invalid(format!(
            "vpn-bandwidth: the cluster needs sites joined by links below vpn.bandwidth_mbps = {wish}: {}; lower [vpn] bandwidth_mbps to at most what a link has usable or add bandwidth",
            narrow_links(inst)
        ))
        .with_constraint(Constraint::VpnBandwidth);
    }
    let mut relaxed = inst.clone();
    relaxed.linked.iter_mut().for_each(|l| *l = true);
    if relaxed.linked != inst.linked && solvable(&relaxed) {
        return Error::invalid(
            "link: the sites needed to host the cluster are not all linked to each other; add [[link]] entries between them",
        )
        .with_constraint(Constraint::Link);
    }
    let mut relaxed = inst.clone();
    relaxed.min_sites = 1;
    if inst.min_sites > 1 && solvable(&relaxed) {
        return Error::invalid(format!(
            "min-sites: no placement spreads over spread.min_sites = {} sites under the other constraints",
            inst.min_sites
        ))
        .with_constraint(Constraint::MinSites);
    }
    Error::new(
        ErrorKind::QuotaExceeded,
        "capacity: groups of the same level together exceed the capacity left on the sites they may share; add capacity or relax pinning",
    )
    .with_constraint(Constraint::Capacity)
}
