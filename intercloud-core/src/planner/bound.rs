//! Lower bounds: what no placement can beat. They prune the exact search and give
//! the heuristic its reported gap.

use super::instance::Instance;
use crate::model::TrafficPattern;

/// The cheapest money per hour of placing `r` VMs of group `g` on `sites` (already in
/// ascending price order) with at most `residual(s)` on site `s`; `None` when they do
/// not fit.
pub(crate) fn greedy_fill_cost(
    inst: &Instance,
    g: usize,
    mut r: u32,
    sites: &[usize],
    residual: impl Fn(usize) -> u32,
) -> Option<f64> {
    let grp = &inst.groups[g];
    let mut cost = 0.0;
    if r == 0 {
        return Some(0.0);
    }
    if grp.colocate && r == grp.count {
        // The whole group on one site: the cheapest site that can take it.
        return sites
            .iter()
            .filter(|&&s| residual(s) >= r)
            .map(|&s| grp.price[s] * f64::from(r))
            .min_by(f64::total_cmp);
    }
    for &s in sites {
        let take = r.min(residual(s));
        cost += grp.price[s] * f64::from(take);
        r -= take;
        if r == 0 {
            return Some(cost);
        }
    }
    None
}

/// A lower bound on group `g`'s communication seconds in any feasible placement,
/// from its own capacities alone.
pub(crate) fn standalone_comm_lb(inst: &Instance, g: usize) -> f64 {
    let grp = &inst.groups[g];
    let Some(flow) = grp.flow else { return 0.0 };
    let n = inst.n_sites();
    let allowed: Vec<usize> = (0..n).filter(|&s| grp.ub[s] > 0).collect();
    let k = allowed.len();
    if k == 0 {
        return 0.0;
    }
    let ub_max = allowed.iter().map(|&s| grp.ub[s]).max().unwrap_or(0);
    let must_split = ub_max < grp.count;
    let mut min_rtt = f64::INFINITY;
    let mut min_spb = f64::INFINITY;
    let mut min_wan_rtt = f64::INFINITY;
    let mut min_wan_spb = f64::INFINITY;
    for &a in &allowed {
        for &b in &allowed {
            let p = inst.pair(a, b);
            if !inst.linked[p] {
                continue;
            }
            min_rtt = min_rtt.min(inst.rtt_s[p]);
            min_spb = min_spb.min(inst.spb[p]);
            if a != b {
                min_wan_rtt = min_wan_rtt.min(inst.rtt_s[p]);
                min_wan_spb = min_wan_spb.min(inst.spb[p]);
            }
        }
    }
    let fin = |v: f64| if v.is_finite() { v } else { 0.0 };
    let (rtt, spb) = if must_split {
        (fin(min_wan_rtt), fin(min_wan_spb))
    } else {
        (fin(min_rtt), fin(min_spb))
    };
    let n_vm = f64::from(grp.count);
    match flow.pattern {
        TrafficPattern::AllToAll => {
            // max over pairs of f_a f_b ≥ (1/k)² (diagonal of the largest share);
            // when split, some cross pair has x_a x_b ≥ N (N − ub_max) / (k (k − 1)).
            let mut bw = flow.bytes * fin(min_spb) / (k * k) as f64;
            if must_split && k >= 2 {
                let cross = (n_vm - f64::from(ub_max)) / (n_vm * (k * (k - 1)) as f64);
                bw = bw.max(flow.bytes * spb * cross);
            }
            bw + flow.rounds * rtt
        }
        TrafficPattern::Halo | TrafficPattern::LatencyBound => flow.bytes * spb + flow.rounds * rtt,
        TrafficPattern::Hub => 0.0,
    }
}

/// A lower bound on the objective of any feasible placement.
pub(crate) fn root_lower_bound(inst: &Instance, w: (f64, f64)) -> f64 {
    let n = inst.n_sites();
    // Money, group by group, as if each group had the capacities to itself.
    let mut per_group = 0.0;
    for g in 0..inst.groups.len() {
        let order = super::exact::price_order(inst, g);
        let grp = &inst.groups[g];
        per_group += greedy_fill_cost(inst, g, grp.count, &order, |s| grp.ub[s]).unwrap_or(0.0);
    }
    // Money, level by level, pooling the groups of a level when they share one price
    // list and one set of sites (the usual case): capacity is then counted once.
    let mut pooled = 0.0;
    let mut pooled_ok = true;
    for l in 0..inst.levels.len() {
        let members: Vec<usize> = (0..inst.groups.len())
            .filter(|&g| inst.groups[g].level == l)
            .collect();
        let Some(&first) = members.first() else {
            continue;
        };
        let same = members.iter().all(|&g| {
            inst.groups[g].allowed == inst.groups[first].allowed
                && inst.groups[g].price == inst.groups[first].price
        });
        if !same {
            pooled_ok = false;
            break;
        }
        let demand: u32 = members.iter().map(|&g| inst.groups[g].count).sum();
        let grp = &inst.groups[first];
        let mut order: Vec<usize> = (0..n).filter(|&s| grp.allowed[s]).collect();
        order.sort_by(|&a, &b| grp.price[a].total_cmp(&grp.price[b]).then(a.cmp(&b)));
        let mut r = demand;
        for s in order {
            let take = r.min(inst.cap[l][s]);
            pooled += grp.price[s] * f64::from(take);
            r -= take;
        }
    }
    let money = if pooled_ok {
        per_group.max(pooled)
    } else {
        per_group
    };
    let comm: f64 = (0..inst.groups.len())
        .map(|g| standalone_comm_lb(inst, g))
        .sum();
    w.0 * money + w.1 * comm
}
