//! The cost formula: money per hour plus the estimated communication time per job.
//!
//! One function, [`score`], computes it on the planner's matrix of counts; the exact
//! search, the heuristic, [`evaluate`](super::evaluate) and the tests all use it, so a
//! plan is always judged by the formula it is printed with.

use serde::{Deserialize, Serialize};

use super::instance::Instance;
use super::objective::Objective;
use crate::model::TrafficPattern;

/// One group's communication estimate per job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Term {
    /// The group's role.
    pub group: String,
    /// The traffic pattern that produced the term.
    pub pattern: TrafficPattern,
    /// Bytes per job the term is computed from.
    pub bytes_per_job: f64,
    /// Rounds per job (sequential round trips, halo iterations, fetch waves).
    pub rounds_per_job: f64,
    /// Sites the group uses.
    pub sites_used: u32,
    /// The bandwidth part: bytes over usable bandwidth, in seconds.
    pub bandwidth_s: f64,
    /// The latency part: rounds × RTT, in seconds.
    pub latency_s: f64,
    /// `bandwidth_s + latency_s`.
    pub seconds: f64,
}

/// What a placement costs under an objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// The objective's value (unit in `unit`): what the planner minimises.
    pub total: f64,
    /// `"money"` or `"s"`.
    pub unit: String,
    /// Σ count × price_per_hour, in money units per hour.
    pub money_per_hour: f64,
    /// `money_per_hour × job_hours`.
    pub money_per_job: f64,
    /// Σ of the groups' terms, in seconds per job.
    pub communication_s: f64,
    /// One term per group with traffic.
    pub terms: Vec<Term>,
    /// The objective the total was computed under.
    pub objective: Objective,
}

/// The numbers [`score`] computes, before they are dressed as a [`Cost`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Score {
    pub(crate) total: f64,
    pub(crate) money_per_hour: f64,
    pub(crate) comm_s: f64,
}

/// `(bandwidth_s, latency_s, sites_used)` of group `g` under counts `x`.
pub(crate) fn group_term(inst: &Instance, x: &[u32], g: usize) -> (f64, f64, u32) {
    let grp = &inst.groups[g];
    let Some(flow) = grp.flow else {
        return (0.0, 0.0, used_count(inst, x, g));
    };
    let n = inst.n_sites();
    let row = &x[g * n..(g + 1) * n];
    let used: Vec<usize> = (0..n).filter(|&s| row[s] > 0).collect();
    let total = f64::from(grp.count);
    let k = used.len() as u32;
    let mut max_rtt: f64 = 0.0;
    let mut max_spb: f64 = 0.0;
    for &a in &used {
        for &b in &used {
            max_rtt = max_rtt.max(inst.rtt_s[inst.pair(a, b)]);
            max_spb = max_spb.max(inst.spb[inst.pair(a, b)]);
        }
    }
    match flow.pattern {
        TrafficPattern::AllToAll => {
            let mut worst: f64 = 0.0;
            for &a in &used {
                for &b in &used {
                    let prod = f64::from(row[a]) * f64::from(row[b]);
                    worst = worst.max(prod * inst.spb[inst.pair(a, b)]);
                }
            }
            (
                flow.bytes * worst / (total * total),
                flow.rounds * max_rtt,
                k,
            )
        }
        TrafficPattern::Hub => {
            // The hub's shares: the hub group's sites, or this group's largest site.
            let (hub_row, hub_total): (Vec<f64>, f64) = match grp.hub {
                Some(h) => (
                    x[h * n..(h + 1) * n]
                        .iter()
                        .map(|&c| f64::from(c))
                        .collect(),
                    f64::from(inst.groups[h].count),
                ),
                None => {
                    let mut best = 0;
                    for s in 0..n {
                        if row[s] > row[best] {
                            best = s;
                        }
                    }
                    let mut v = vec![0.0; n];
                    v[best] = 1.0;
                    (v, 1.0)
                }
            };
            let mut bw: f64 = 0.0;
            let mut lat: f64 = 0.0;
            for &a in &used {
                for (t, &h) in hub_row.iter().enumerate() {
                    if h > 0.0 {
                        let share = f64::from(row[a]) / total * h / hub_total;
                        bw = bw.max(flow.bytes * share * inst.spb[inst.pair(a, t)]);
                        lat = lat.max(inst.rtt_s[inst.pair(a, t)]);
                    }
                }
            }
            (bw, flow.rounds * lat, k)
        }
        TrafficPattern::Halo => {
            if k <= 1 {
                (flow.bytes * max_spb, flow.rounds * max_rtt, k)
            } else {
                let mut wan_rtt: f64 = 0.0;
                let mut wan_spb: f64 = 0.0;
                for &a in &used {
                    for &b in &used {
                        if a != b {
                            wan_rtt = wan_rtt.max(inst.rtt_s[inst.pair(a, b)]);
                            wan_spb = wan_spb.max(inst.spb[inst.pair(a, b)]);
                        }
                    }
                }
                (
                    f64::from(k - 1) * flow.bytes * wan_spb,
                    flow.rounds * wan_rtt,
                    k,
                )
            }
        }
        TrafficPattern::LatencyBound => (flow.bytes * max_spb, flow.rounds * max_rtt, k),
    }
}

fn used_count(inst: &Instance, x: &[u32], g: usize) -> u32 {
    let n = inst.n_sites();
    x[g * n..(g + 1) * n].iter().filter(|&&c| c > 0).count() as u32
}

/// Money per hour of counts `x`.
pub(crate) fn money_per_hour(inst: &Instance, x: &[u32]) -> f64 {
    let n = inst.n_sites();
    let mut m = 0.0;
    for (g, grp) in inst.groups.iter().enumerate() {
        for s in 0..n {
            m += f64::from(x[g * n + s]) * grp.price[s];
        }
    }
    m
}

/// The objective's value of counts `x` (matrix `g * S + s`).
pub(crate) fn score(inst: &Instance, x: &[u32], weights: (f64, f64)) -> Score {
    let money = money_per_hour(inst, x);
    let mut comm = 0.0;
    for g in 0..inst.groups.len() {
        let (bw, lat, _) = group_term(inst, x, g);
        comm += bw + lat;
    }
    Score {
        total: weights.0 * money + weights.1 * comm,
        money_per_hour: money,
        comm_s: comm,
    }
}

/// The full breakdown of counts `x`.
pub(crate) fn cost(inst: &Instance, x: &[u32], obj: &Objective) -> Cost {
    let sc = score(inst, x, obj.weights());
    let terms = inst
        .groups
        .iter()
        .enumerate()
        .filter_map(|(g, grp)| {
            let flow = grp.flow?;
            let (bw, lat, k) = group_term(inst, x, g);
            Some(Term {
                group: grp.role.clone(),
                pattern: flow.pattern,
                bytes_per_job: flow.bytes,
                rounds_per_job: flow.rounds,
                sites_used: k,
                bandwidth_s: bw,
                latency_s: lat,
                seconds: bw + lat,
            })
        })
        .collect();
    Cost {
        total: sc.total,
        unit: obj.unit().to_owned(),
        money_per_hour: sc.money_per_hour,
        money_per_job: sc.money_per_hour * obj.job_hours,
        communication_s: sc.comm_s,
        terms,
        objective: *obj,
    }
}

/// A smooth companion of [`group_term`] for the local search: the sum over pairs of
/// distinct used sites of the pair's traffic time (`f_s·f_t·(M·spb_st + R·RTT_st)`,
/// with the hub's shares for `hub` traffic). Where the max-based term is flat (moving
/// VMs between pairs that are not the bottleneck), this still says which way is
/// better; it never enters a plan's cost.
pub(crate) fn group_soft(inst: &Instance, x: &[u32], g: usize) -> f64 {
    let grp = &inst.groups[g];
    let Some(flow) = grp.flow else { return 0.0 };
    let n = inst.n_sites();
    let row = &x[g * n..(g + 1) * n];
    let total = f64::from(grp.count);
    let (other, other_total): (&[u32], f64) = match (flow.pattern, grp.hub) {
        (TrafficPattern::Hub, Some(h)) => (&x[h * n..(h + 1) * n], f64::from(inst.groups[h].count)),
        _ => (row, total),
    };
    let mine: Vec<usize> = (0..n).filter(|&s| row[s] > 0).collect();
    let theirs: Vec<usize> = (0..n).filter(|&s| other[s] > 0).collect();
    let mut sum = 0.0;
    for &a in &mine {
        for &b in &theirs {
            if b == a {
                continue;
            }
            let p = inst.pair(a, b);
            let share = f64::from(row[a]) / total * f64::from(other[b]) / other_total;
            sum += share * (flow.bytes * inst.spb[p] + flow.rounds * inst.rtt_s[p]);
        }
    }
    sum
}
