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

/// The fewest sites among `allowed` that can hold `count` VMs with at most `ub(s)`
/// each (the largest first).
fn fewest_sites(count: u32, caps: &mut [u32]) -> usize {
    caps.sort_unstable_by(|a, b| b.cmp(a));
    let mut room = 0u64;
    for (i, &c) in caps.iter().enumerate() {
        room += u64::from(c);
        if room >= u64::from(count) {
            return i + 1;
        }
    }
    caps.len().max(1)
}

/// The smallest share `θ` the group's largest site can have: `Σ_s min(ub_s, θ·N) ≥ N`
/// (water filling over the caps).
fn min_largest_share(count: u32, caps: &[u32]) -> f64 {
    let mut c: Vec<u32> = caps.iter().copied().filter(|&u| u > 0).collect();
    c.sort_unstable();
    let mut left = f64::from(count);
    let mut k = c.len();
    for &u in &c {
        let level = left / k as f64;
        if f64::from(u) >= level {
            return level / f64::from(count);
        }
        left -= f64::from(u);
        k -= 1;
    }
    1.0
}

/// A lower bound on the largest value of `m(a, b)` over the pairs of any `k` distinct
/// sites of `allowed` (pairwise linked): for any such set and any member `a`, the
/// largest `m(a, ·)` to the others is at least the `(k − 1)`-th smallest value from
/// `a`, so the least of those over `a` bounds every set.
fn min_spread(inst: &Instance, allowed: &[usize], k: usize, m: &[f64]) -> f64 {
    if k < 2 {
        return 0.0;
    }
    let mut best = f64::INFINITY;
    for &a in allowed {
        let mut row: Vec<f64> = allowed
            .iter()
            .filter(|&&b| b != a && inst.linked[inst.pair(a, b)])
            .map(|&b| m[inst.pair(a, b)])
            .collect();
        if row.len() + 1 < k {
            continue;
        }
        row.sort_by(f64::total_cmp);
        best = best.min(row[k - 2]);
    }
    if best.is_finite() {
        best
    } else {
        0.0
    }
}

/// A lower bound on group `g`'s communication seconds in any feasible placement,
/// from its own capacities alone (and, for `hub` traffic, the hub group's).
///
/// With `k` the fewest sites the group's caps allow and `θ` the smallest possible
/// largest share: the largest RTT (and seconds per byte) among `k ≥ 2` used sites is
/// at least [`min_spread`]'s; an all-to-all shuffle moves at least `M·θ²` inside its
/// largest site; a halo cuts at least `k − 1` boundaries; a hub's workers send at
/// least `M·θ·θ_hub` over one pair, and when either side must split some worker is
/// on another site than some hub VM.
pub(crate) fn standalone_comm_lb(inst: &Instance, g: usize) -> f64 {
    let grp = &inst.groups[g];
    let Some(flow) = grp.flow else { return 0.0 };
    let n = inst.n_sites();
    let allowed: Vec<usize> = (0..n).filter(|&s| grp.ub[s] > 0).collect();
    if allowed.is_empty() {
        return 0.0;
    }
    let caps: Vec<u32> = allowed.iter().map(|&s| grp.ub[s]).collect();
    let k = if grp.colocate {
        1
    } else {
        fewest_sites(grp.count, &mut caps.clone())
    };
    let theta = if grp.colocate {
        1.0
    } else {
        min_largest_share(grp.count, &caps)
    };
    let fin = |v: f64| if v.is_finite() { v } else { 0.0 };
    let min_diag = |sites: &[usize], m: &[f64]| {
        fin(sites
            .iter()
            .map(|&s| m[inst.pair(s, s)])
            .fold(f64::INFINITY, f64::min))
    };
    // The largest RTT / seconds per byte among the used sites (pairs s = s included).
    let (rtt, spb) = if k >= 2 {
        (
            min_spread(inst, &allowed, k, &inst.rtt_s),
            min_spread(inst, &allowed, k, &inst.spb),
        )
    } else {
        // One site may do, but the group may still split: the least over all pairs.
        let least = |m: &[f64]| {
            fin(allowed
                .iter()
                .flat_map(|&a| allowed.iter().map(move |&b| (a, b)))
                .filter(|&(a, b)| inst.linked[inst.pair(a, b)])
                .map(|(a, b)| m[inst.pair(a, b)])
                .fold(f64::INFINITY, f64::min))
        };
        (least(&inst.rtt_s), least(&inst.spb))
    };
    let n_vm = f64::from(grp.count);
    match flow.pattern {
        TrafficPattern::AllToAll => {
            // The largest site moves at least M·θ² inside it; when split, some cross
            // pair has x_a x_b ≥ N (N − ub_max) / (k_all (k_all − 1)).
            let mut bw = flow.bytes * min_diag(&allowed, &inst.spb) * theta * theta;
            let ka = allowed.len();
            let ub_max = caps.iter().copied().max().unwrap_or(0);
            if k >= 2 && ka >= 2 {
                let wan = min_spread(inst, &allowed, 2, &inst.spb);
                let cross = (n_vm - f64::from(ub_max)) / (n_vm * (ka * (ka - 1)) as f64);
                bw = bw.max(flow.bytes * wan * cross);
            }
            bw + flow.rounds * rtt
        }
        TrafficPattern::Halo => {
            if k >= 2 {
                (k - 1) as f64 * flow.bytes * spb + flow.rounds * rtt
            } else {
                flow.bytes * spb + flow.rounds * rtt
            }
        }
        TrafficPattern::LatencyBound => flow.bytes * spb + flow.rounds * rtt,
        TrafficPattern::Hub => {
            let Some(h) = grp.hub else { return 0.0 };
            let hub = &inst.groups[h];
            let hub_sites: Vec<usize> = (0..n).filter(|&s| hub.ub[s] > 0).collect();
            let hub_caps: Vec<u32> = hub_sites.iter().map(|&s| hub.ub[s]).collect();
            let (hub_k, hub_theta) = if hub.colocate {
                (1, 1.0)
            } else {
                (
                    fewest_sites(hub.count, &mut hub_caps.clone()),
                    min_largest_share(hub.count, &hub_caps),
                )
            };
            let mut both: Vec<usize> = allowed.clone();
            both.extend(hub_sites.iter().copied());
            both.sort_unstable();
            both.dedup();
            let all_spb = fin(both
                .iter()
                .flat_map(|&a| both.iter().map(move |&b| (a, b)))
                .filter(|&(a, b)| inst.linked[inst.pair(a, b)])
                .map(|(a, b)| inst.spb[inst.pair(a, b)])
                .fold(f64::INFINITY, f64::min));
            let bw = flow.bytes * theta * hub_theta * all_spb;
            // Either side split: a worker site and a hub site differ.
            let lat = if k >= 2 || hub_k >= 2 {
                min_spread(inst, &both, 2, &inst.rtt_s)
            } else {
                0.0
            };
            bw + flow.rounds * lat
        }
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
