//! The constraints a placement must satisfy, checked one by one with a message a
//! user can act on, and the ones that are tight (binding) at a plan.

use serde::{Deserialize, Serialize};

use super::instance::Instance;
use crate::model::SiteId;

/// The constraints of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Constraint {
    /// Each group gets exactly its `count`.
    Demand,
    /// Per site and service level: Σ of the groups of that level ≤ the capacity.
    Capacity,
    /// A group only on its `sites` (and only where its level is offered).
    Pinning,
    /// A `colocate = true` group on one site.
    Colocate,
    /// Any two sites of a group within its `max_rtt_ms`.
    MaxRtt,
    /// Any two sites the cluster uses are linked.
    Link,
    /// Every link between used sites has at least `vpn.bandwidth_mbps` usable.
    VpnBandwidth,
    /// The cluster uses at least `spread.min_sites` sites.
    MinSites,
    /// After losing any one site, at least `survive_site_loss` of each group remains.
    SurviveSiteLoss,
}

impl Constraint {
    /// The kebab-case name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Demand => "demand",
            Self::Capacity => "capacity",
            Self::Pinning => "pinning",
            Self::Colocate => "colocate",
            Self::MaxRtt => "max-rtt",
            Self::Link => "link",
            Self::VpnBandwidth => "vpn-bandwidth",
            Self::MinSites => "min-sites",
            Self::SurviveSiteLoss => "survive-site-loss",
        }
    }
}

impl std::fmt::Display for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A constraint a placement breaks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// Which constraint.
    pub constraint: Constraint,
    /// The group concerned, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The site concerned, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<SiteId>,
    /// What is wrong, with the figures.
    pub message: String,
}

/// A constraint that is tight at a plan: relaxing it could make the plan cheaper or
/// faster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    /// Which constraint.
    pub constraint: Constraint,
    /// The group concerned, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The site concerned, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<SiteId>,
    /// Why it is tight, with the figures.
    pub detail: String,
}

fn used_sites(inst: &Instance, x: &[u32]) -> Vec<bool> {
    let n = inst.n_sites();
    let mut used = vec![false; n];
    for g in 0..inst.groups.len() {
        for (s, u) in used.iter_mut().enumerate() {
            *u |= x[g * n + s] > 0;
        }
    }
    used
}

/// Whether `x` satisfies every constraint (the fast form of [`violations`]).
pub(crate) fn feasible(inst: &Instance, x: &[u32]) -> bool {
    let n = inst.n_sites();
    let mut level_used = vec![vec![0u32; n]; inst.levels.len()];
    for (g, grp) in inst.groups.iter().enumerate() {
        let row = &x[g * n..(g + 1) * n];
        let mut sum = 0u64;
        let mut k = 0;
        for s in 0..n {
            let c = row[s];
            if c == 0 {
                continue;
            }
            if !grp.allowed[s] || (!grp.colocate && c > grp.survive_cap) {
                return false;
            }
            level_used[grp.level][s] += c;
            sum += u64::from(c);
            k += 1;
            for t in 0..s {
                if row[t] > 0 && inst.rtt_s[inst.pair(s, t)] > grp.max_rtt_ms / 1000.0 + 1e-12 {
                    return false;
                }
            }
        }
        if sum != u64::from(grp.count) || (grp.colocate && k > 1) {
            return false;
        }
    }
    for (l, row) in level_used.iter().enumerate() {
        if row.iter().zip(&inst.cap[l]).any(|(u, c)| u > c) {
            return false;
        }
    }
    let used = used_sites(inst, x);
    let mut k = 0;
    for s in 0..n {
        if !used[s] {
            continue;
        }
        k += 1;
        for t in 0..s {
            if used[t] && !inst.linked[inst.pair(s, t)] {
                return false;
            }
        }
    }
    k >= inst.min_sites
}

/// Every constraint `x` breaks, with messages.
pub(crate) fn violations(inst: &Instance, x: &[u32]) -> Vec<Violation> {
    let n = inst.n_sites();
    let mut out = Vec::new();
    let v = |c, g: Option<&str>, s: Option<usize>, m: String| Violation {
        constraint: c,
        group: g.map(str::to_owned),
        site: s.map(|s| inst.sites[s].clone()),
        message: m,
    };
    let mut level_used = vec![vec![0u32; n]; inst.levels.len()];
    for (g, grp) in inst.groups.iter().enumerate() {
        let row = &x[g * n..(g + 1) * n];
        let role = grp.role.as_str();
        let sum: u64 = row.iter().map(|&c| u64::from(c)).sum();
        if sum != u64::from(grp.count) {
            out.push(v(
                Constraint::Demand,
                Some(role),
                None,
                format!(
                    "group {role}: {sum} VMs placed, the request asks for {}",
                    grp.count
                ),
            ));
        }
        let used: Vec<usize> = (0..n).filter(|&s| row[s] > 0).collect();
        for &s in &used {
            level_used[grp.level][s] += row[s];
            if !grp.allowed[s] {
                let why = if inst.cap[grp.level][s] == 0 && grp.price[s] == 0.0 {
                    format!(
                        "site {} does not offer level {}",
                        inst.sites[s], inst.levels[grp.level]
                    )
                } else {
                    "the group is pinned to other sites".to_owned()
                };
                out.push(v(
                    Constraint::Pinning,
                    Some(role),
                    Some(s),
                    format!(
                        "group {role} has {} VMs on {}: {why}",
                        row[s], inst.sites[s]
                    ),
                ));
            }
            if !grp.colocate && row[s] > grp.survive_cap {
                out.push(v(
                    Constraint::SurviveSiteLoss,
                    Some(role),
                    Some(s),
                    format!(
                        "group {role} has {} of {} VMs on {}: losing it leaves {}, below the survive_site_loss share (at most {} per site)",
                        row[s],
                        grp.count,
                        inst.sites[s],
                        grp.count.saturating_sub(row[s]),
                        grp.survive_cap
                    ),
                ));
            }
        }
        if grp.colocate && used.len() > 1 {
            out.push(v(
                Constraint::Colocate,
                Some(role),
                None,
                format!(
                    "group {role} must sit on one site (colocate) but uses {}",
                    used.len()
                ),
            ));
        }
        for (i, &a) in used.iter().enumerate() {
            for &b in &used[..i] {
                let rtt = inst.rtt_s[inst.pair(a, b)] * 1000.0;
                if rtt > grp.max_rtt_ms + 1e-9 && inst.linked[inst.pair(a, b)] {
                    out.push(v(
                        Constraint::MaxRtt,
                        Some(role),
                        None,
                        format!(
                            "group {role} uses {} and {}, {rtt} ms apart, above its max_rtt_ms = {}",
                            inst.sites[b], inst.sites[a], grp.max_rtt_ms
                        ),
                    ));
                }
            }
        }
    }
    for (l, row) in level_used.iter().enumerate() {
        for s in 0..n {
            if row[s] > inst.cap[l][s] {
                out.push(v(
                    Constraint::Capacity,
                    None,
                    Some(s),
                    format!(
                        "{} × {} on {}, which can host {} ({} more than capacity)",
                        row[s],
                        inst.levels[l],
                        inst.sites[s],
                        inst.cap[l][s],
                        row[s] - inst.cap[l][s]
                    ),
                ));
            }
        }
    }
    let used = used_sites(inst, x);
    for a in 0..n {
        for b in 0..a {
            if !(used[a] && used[b]) || inst.linked[inst.pair(a, b)] {
                continue;
            }
            if inst.rtt_s[inst.pair(a, b)].is_finite() {
                out.push(v(
                    Constraint::VpnBandwidth,
                    None,
                    None,
                    format!(
                        "the link {} <-> {} has {:.0} Mbit/s usable, below vpn.bandwidth_mbps = {}",
                        inst.sites[b],
                        inst.sites[a],
                        8.0 / inst.spb[inst.pair(a, b)] / 1e6,
                        inst.vpn_mbps.unwrap_or(0.0)
                    ),
                ));
            } else {
                out.push(v(
                    Constraint::Link,
                    None,
                    None,
                    format!(
                        "the cluster uses {} and {}, which have no [[link]] between them",
                        inst.sites[b], inst.sites[a]
                    ),
                ));
            }
        }
    }
    let k = used.iter().filter(|&&u| u).count() as u32;
    if k < inst.min_sites {
        out.push(v(
            Constraint::MinSites,
            None,
            None,
            format!(
                "the cluster uses {k} sites, spread.min_sites = {}",
                inst.min_sites
            ),
        ));
    }
    out
}

/// The constraints that are tight at the feasible counts `x`.
pub(crate) fn binding(inst: &Instance, x: &[u32]) -> Vec<Binding> {
    let n = inst.n_sites();
    let mut out = Vec::new();
    let mut level_used = vec![vec![0u32; n]; inst.levels.len()];
    for (g, grp) in inst.groups.iter().enumerate() {
        for s in 0..n {
            level_used[grp.level][s] += x[g * n + s];
        }
    }
    for (l, row) in level_used.iter().enumerate() {
        for s in 0..n {
            if row[s] > 0 && row[s] == inst.cap[l][s] {
                out.push(Binding {
                    constraint: Constraint::Capacity,
                    group: None,
                    site: Some(inst.sites[s].clone()),
                    detail: format!(
                        "{}/{}: all {} VMs of capacity used",
                        inst.sites[s], inst.levels[l], inst.cap[l][s]
                    ),
                });
            }
        }
    }
    for (g, grp) in inst.groups.iter().enumerate() {
        let row = &x[g * n..(g + 1) * n];
        for s in 0..n {
            if !grp.colocate
                && grp.survive_cap < grp.count
                && row[s] == grp.survive_cap
                && row[s] > 0
            {
                out.push(Binding {
                    constraint: Constraint::SurviveSiteLoss,
                    group: Some(grp.role.clone()),
                    site: Some(inst.sites[s].clone()),
                    detail: format!(
                        "group {} holds the most a site may ({} of {}) on {}",
                        grp.role, row[s], grp.count, inst.sites[s]
                    ),
                });
            }
        }
        let max_price = (0..n)
            .filter(|&s| row[s] > 0)
            .map(|s| grp.price[s])
            .fold(0.0, f64::max);
        let pinned_out_cheaper = (0..n).any(|s| {
            !grp.allowed[s] && inst.cap[grp.level][s] > level_used[grp.level][s] && {
                // Offered there (a price or a capacity) but excluded by the pins.
                inst.cap[grp.level][s] > 0 && grp.price[s] < max_price
            }
        });
        if pinned_out_cheaper {
            out.push(Binding {
                constraint: Constraint::Pinning,
                group: Some(grp.role.clone()),
                site: None,
                detail: format!(
                    "group {} is pinned away from cheaper free capacity",
                    grp.role
                ),
            });
        }
        if grp.max_rtt_ms.is_finite() {
            let used: Vec<usize> = (0..n).filter(|&s| row[s] > 0).collect();
            let excluded = (0..n).any(|t| {
                grp.ub[t] > 0
                    && row[t] == 0
                    && inst.cap[grp.level][t] > level_used[grp.level][t]
                    && used
                        .iter()
                        .any(|&a| inst.rtt_s[inst.pair(a, t)] * 1000.0 > grp.max_rtt_ms)
            });
            if excluded {
                out.push(Binding {
                    constraint: Constraint::MaxRtt,
                    group: Some(grp.role.clone()),
                    site: None,
                    detail: format!(
                        "group {}: sites with free capacity are farther than max_rtt_ms = {}",
                        grp.role, grp.max_rtt_ms
                    ),
                });
            }
        }
    }
    let k = used_sites(inst, x).iter().filter(|&&u| u).count() as u32;
    if inst.min_sites > 1 && k == inst.min_sites {
        out.push(Binding {
            constraint: Constraint::MinSites,
            group: None,
            site: None,
            detail: format!("the cluster uses exactly spread.min_sites = {k} sites"),
        });
    }
    out
}
