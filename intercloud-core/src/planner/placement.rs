//! A plan: counts per group × site, what they cost, how they were found, and the
//! alternatives a user may prefer.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use super::constraints::Binding;
use super::cost::Cost;
use super::objective::Objective;
use crate::model::{PlacementCounts, TrafficPattern};

/// How a placement was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Proven optimal for the objective (see [`Proof`]).
    Optimal,
    /// The best found within the budget; `gap` bounds how far from optimal it is.
    Heuristic,
}

/// Why an `optimal` placement is optimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Proof {
    /// The branch and bound explored (or pruned by a valid bound) every placement.
    ExhaustiveSearch,
    /// Its cost equals a lower bound no placement can beat.
    LowerBound,
}

/// Counters of the search, for the curious and for benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchStats {
    /// Branch-and-bound nodes visited (0 when the exact method was not run).
    pub nodes: u64,
    /// Whether the exact method ran.
    pub exact_attempted: bool,
    /// Whether the exact method finished its tree.
    pub exact_complete: bool,
}

/// Another plan for the same request under another objective, so the user sees the
/// money/time trade-off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    /// `cheapest`, `fastest` or `balanced`.
    pub name: String,
    /// The objective it was planned for.
    pub objective: Objective,
    /// Its counts per group × site.
    pub placement: PlacementCounts,
    /// Money per hour.
    pub money_per_hour: f64,
    /// Communication seconds per job.
    pub communication_s: f64,
    /// Its total under the main plan's objective (comparable with `cost.total`).
    pub total: f64,
    /// How it was found.
    pub method: Method,
}

/// The planner's answer; its JSON is the `plan --json` document (minus `steps`, which
/// the deployer adds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// The cluster's name.
    pub cluster: String,
    /// How many VMs of each group go to each site.
    pub placement: PlacementCounts,
    /// The cost breakdown.
    pub cost: Cost,
    /// `optimal` or `heuristic`.
    pub method: Method,
    /// For `optimal`: how it is proven.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Proof>,
    /// `(total − lower_bound) / total`: an upper bound on how far the plan may be from
    /// the optimum, as a fraction (0.01 = 1 %); 0 when optimal.
    pub gap: f64,
    /// A lower bound on the total of any feasible placement.
    pub lower_bound: f64,
    /// Constraints that are tight at this plan.
    pub binding: Vec<Binding>,
    /// The cheapest, fastest and balanced plans.
    pub alternatives: Vec<Alternative>,
    /// Search counters.
    pub search: SearchStats,
}

fn human_bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.3} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.3} MB", b / 1e6)
    } else {
        format!("{b:.0} B")
    }
}

fn pattern_formula(p: TrafficPattern) -> &'static str {
    match p {
        TrafficPattern::AllToAll => {
            "max over site pairs (s,t) of M·f_s·f_t / B_st  +  rounds × max RTT among used sites"
        }
        TrafficPattern::Hub => {
            "max over (site s, hub site t) of M·f_s·h_t / B_st  +  rounds × max RTT to the hub"
        }
        TrafficPattern::Halo => {
            "(sites − 1) × M / min B between used sites  +  rounds × max RTT between used sites"
        }
        TrafficPattern::LatencyBound => {
            "M / min B among used sites  +  rounds × max RTT among used sites"
        }
    }
}

fn counts_line(c: &std::collections::BTreeMap<crate::model::SiteId, u32>) -> String {
    c.iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes the cost and its formula, the way every plan prints it.
pub(crate) fn write_cost(out: &mut String, cost: &Cost) {
    let o = &cost.objective;
    let _ = writeln!(out, "objective ({}): {}", o.kind.as_str(), o.formula());
    let _ = writeln!(
        out,
        "  money_per_hour  = Σ count × price_per_hour = {:.4}",
        cost.money_per_hour
    );
    let _ = writeln!(
        out,
        "  communication_s = Σ over groups of bandwidth + latency terms = {:.4} s",
        cost.communication_s
    );
    for t in &cost.terms {
        let pattern = serde_json::to_value(t.pattern)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    {} [{pattern}, M = {}, rounds = {}, {} site(s)]: {}",
            t.group,
            human_bytes(t.bytes_per_job),
            t.rounds_per_job,
            t.sites_used,
            pattern_formula(t.pattern)
        );
        let _ = writeln!(
            out,
            "      = {:.4} s bandwidth + {:.4} s latency = {:.4} s",
            t.bandwidth_s, t.latency_s, t.seconds
        );
    }
    let (wm, wt) = o.weights();
    let _ = writeln!(
        out,
        "  total = {wm} × {:.4} + {wt} × {:.4} = {:.6} {}",
        cost.money_per_hour, cost.communication_s, cost.total, cost.unit
    );
    let _ = writeln!(
        out,
        "  (f_s = share of the group on site s; B_st = usable bandwidth after VPN overhead; RTT within a site {} ms, bandwidth {} Mbit/s)",
        crate::model::INTRA_SITE_RTT_MS,
        crate::model::INTRA_SITE_BANDWIDTH_MBPS
    );
}

impl Placement {
    /// The plan in words: counts, the formula with its figures, binding constraints
    /// and alternatives.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let how = match (self.method, self.proof) {
            (Method::Optimal, Some(Proof::LowerBound)) => {
                "optimal (its cost equals a lower bound)".to_owned()
            }
            (Method::Optimal, _) => format!(
                "optimal (exhaustive branch and bound, {} nodes)",
                self.search.nodes
            ),
            (Method::Heuristic, _) => format!(
                "heuristic (within {:.2} % of optimal: lower bound {:.6})",
                self.gap * 100.0,
                self.lower_bound
            ),
        };
        let _ = writeln!(out, "plan for cluster {}: {how}", self.cluster);
        for (role, per) in &self.placement {
            let _ = writeln!(out, "  {role}: {}", counts_line(per));
        }
        write_cost(&mut out, &self.cost);
        if self.binding.is_empty() {
            let _ = writeln!(out, "binding constraints: none");
        } else {
            let _ = writeln!(out, "binding constraints:");
            for b in &self.binding {
                let _ = writeln!(out, "  {}: {}", b.constraint, b.detail);
            }
        }
        if !self.alternatives.is_empty() {
            let _ = writeln!(
                out,
                "alternatives (money/h, communication s, total under this objective):"
            );
            for a in &self.alternatives {
                let groups = a
                    .placement
                    .iter()
                    .map(|(r, per)| format!("{r}: {}", counts_line(per)))
                    .collect::<Vec<_>>()
                    .join("; ");
                let _ = writeln!(
                    out,
                    "  {:<9} {:>10.4}/h {:>10.4} s {:>12.6}  {groups}",
                    a.name, a.money_per_hour, a.communication_s, a.total
                );
            }
        }
        out
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.explain())
    }
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        write_cost(&mut out, self);
        f.write_str(&out)
    }
}
