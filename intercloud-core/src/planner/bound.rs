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

/// A lower bound on `scale(k) × max m(a, b)` over the pairs of the sites group `g`
/// uses, `k` their number (`scale` non-decreasing): for one site `a` it is
/// `scale(1)·m(a, a)`; for `k ≥ 2` sites with largest value `σ` between two of them,
/// every member `a` sees all the others within `σ`, so they lie among `a` and its
/// linked sites nearest by `m` up to `σ`, which must hold the group; the fewest of
/// those that can, `k'`, is at most `k`. Trying each `a` and each prefix of its
/// neighbours gives the bound.
fn spread_bound(inst: &Instance, g: usize, m: &[f64], scale: impl Fn(usize) -> f64) -> f64 {
    let grp = &inst.groups[g];
    let n = inst.n_sites();
    let allowed: Vec<usize> = (0..n).filter(|&s| grp.ub[s] > 0).collect();
    let mut best = f64::INFINITY;
    for &a in &allowed {
        if grp.ub[a] >= grp.count {
            best = best.min(scale(1) * m[inst.pair(a, a)]);
        }
        if grp.colocate {
            continue;
        }
        let mut near: Vec<usize> = allowed
            .iter()
            .copied()
            .filter(|&b| b != a && inst.linked[inst.pair(a, b)])
            .collect();
        near.sort_by(|&b, &c| m[inst.pair(a, b)].total_cmp(&m[inst.pair(a, c)]));
        let mut caps = vec![grp.ub[a]];
        let mut room = u64::from(grp.ub[a]);
        for &b in &near {
            caps.push(grp.ub[b]);
            room += u64::from(grp.ub[b]);
            if room < u64::from(grp.count) {
                continue;
            }
            let k = fewest_sites(grp.count, &mut caps.clone()).max(2);
            best = best.min(scale(k) * m[inst.pair(a, b)]);
            // Later prefixes only raise `m`; `k'` can only shrink down to its floor.
            if k == 2 {
                break;
            }
        }
    }
    if best.is_finite() {
        best
    } else {
        0.0
    }
}

/// Most distinct link values [`core_bound`] tries (beyond, it gives up: 0).
const CORE_VALUES: usize = 16;

/// Like [`spread_bound`], tighter when link values take few distinct levels
/// (bandwidth classes): at a level `τ`, every used site `b` has all the others
/// within `τ`, so its closed `τ`-neighbourhood must hold the group; sites failing
/// that are dropped, repeatedly, from the candidates. If none is left no placement on
/// `k ≥ 2` sites has its largest value at or below `τ`; else the fewest remaining
/// sites that hold the group bound `k`. One site `a` gives `scale(1)·m(a, a)`.
fn core_bound(inst: &Instance, g: usize, m: &[f64], scale: impl Fn(usize) -> f64) -> f64 {
    let grp = &inst.groups[g];
    let n = inst.n_sites();
    let allowed: Vec<usize> = (0..n).filter(|&s| grp.ub[s] > 0).collect();
    let mut values: Vec<f64> = Vec::new();
    for &a in &allowed {
        for &b in &allowed {
            if a < b && inst.linked[inst.pair(a, b)] {
                let v = m[inst.pair(a, b)];
                if !values.contains(&v) {
                    values.push(v);
                    if values.len() > CORE_VALUES {
                        return 0.0;
                    }
                }
            }
        }
    }
    values.sort_by(f64::total_cmp);
    let mut best = f64::INFINITY;
    for &a in &allowed {
        if grp.ub[a] >= grp.count {
            best = best.min(scale(1) * m[inst.pair(a, a)]);
        }
    }
    if !grp.colocate {
        let count = u64::from(grp.count);
        for &tau in &values {
            let near = |a: usize, b: usize| {
                a == b || (inst.linked[inst.pair(a, b)] && m[inst.pair(a, b)] <= tau)
            };
            let mut alive: Vec<usize> = allowed.clone();
            loop {
                let before = alive.len();
                let keep: Vec<usize> = alive
                    .iter()
                    .copied()
                    .filter(|&b| {
                        let room: u64 = alive
                            .iter()
                            .filter(|&&c| near(b, c))
                            .map(|&c| u64::from(grp.ub[c]))
                            .sum();
                        room >= count
                    })
                    .collect();
                alive = keep;
                if alive.len() == before {
                    break;
                }
            }
            if alive.is_empty() {
                continue;
            }
            let mut caps: Vec<u32> = alive.iter().map(|&c| grp.ub[c]).collect();
            let k = fewest_sites(grp.count, &mut caps).max(2);
            best = best.min(scale(k) * tau);
            if k == 2 {
                break;
            }
        }
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
    let rtt = rtt.max(spread_bound(inst, g, &inst.rtt_s, |_| 1.0));
    let n_vm = f64::from(grp.count);
    match flow.pattern {
        TrafficPattern::AllToAll => {
            // The largest site moves at least M·θ² inside it. When split, the two
            // largest shares f1 ≥ f2 have f2 ≥ (1 − f1)/(k_all − 1) with f1 in
            // [θ, ub_max/N]: f1·f2 is at least the concave f(1 − f)/(k_all − 1) at
            // one end of that interval.
            let mut bw = flow.bytes * min_diag(&allowed, &inst.spb) * theta * theta;
            let ka = allowed.len();
            let ub_max = caps.iter().copied().max().unwrap_or(0);
            if k >= 2 && ka >= 2 {
                let wan = min_spread(inst, &allowed, 2, &inst.spb);
                let u1 = f64::from(ub_max) / n_vm;
                let ends = (theta * (1.0 - theta)).min(u1 * (1.0 - u1));
                let cross = ends.max(0.0) / (ka - 1) as f64;
                bw = bw.max(flow.bytes * wan * cross);
            }
            bw + flow.rounds * rtt
        }
        TrafficPattern::Halo => {
            let boundaries = if k >= 2 { (k - 1) as f64 } else { 1.0 };
            let per = |k: usize| (k.max(2) - 1) as f64;
            let bw = (boundaries * spb)
                .max(spread_bound(inst, g, &inst.spb, per))
                .max(core_bound(inst, g, &inst.spb, per));
            flow.bytes * bw + flow.rounds * rtt
        }
        TrafficPattern::LatencyBound => {
            let bw = spb
                .max(spread_bound(inst, g, &inst.spb, |_| 1.0))
                .max(core_bound(inst, g, &inst.spb, |_| 1.0));
            flow.bytes * bw + flow.rounds * rtt
        }
        TrafficPattern::Hub => {
            let Some(h) = grp.hub else { return 0.0 };
            let hub = &inst.groups[h];
            if hub.colocate {
                return hub_lb(inst, g, h, 1.0);
            }
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
            (bw + flow.rounds * lat).max(hub_lb(inst, g, h, hub_theta))
        }
    }
}

/// Hub traffic towards hub group `h`, whose largest site holds a share of at least
/// `hub_theta` (1 when co-located): the least, over the sites `t` the hub may use, of
/// a bound for a hub site `t` (the largest one for the bandwidth part, any one for
/// the RTT part). At most `ub(t)` workers share site `t`; the rest are on other sites
/// `a` linked to `t`, each sending `M·f_a·h_t` over `(a, t)`: the bottleneck is at
/// least `hub_theta` times the water level `τ` with `Σ_a min(ub_a/N, τ/(M·spb_at)) =
/// 1 − ub_t/N`, and the RTT at least that of the farthest site the nearest-first
/// cover of the rest needs.
fn hub_lb(inst: &Instance, g: usize, h: usize, hub_theta: f64) -> f64 {
    let grp = &inst.groups[g];
    let Some(flow) = grp.flow else { return 0.0 };
    let n = inst.n_sites();
    let n_vm = f64::from(grp.count);
    let mut best = f64::INFINITY;
    for t in (0..n).filter(|&t| inst.groups[h].ub[t] > 0) {
        let rest = grp.count - grp.ub[t].min(grp.count);
        if rest == 0 {
            // All workers may share the hub's site: only the smallest RTT from `t`.
            let near = (0..n)
                .filter(|&a| grp.ub[a] > 0 && inst.linked[inst.pair(a, t)])
                .map(|a| inst.rtt_s[inst.pair(a, t)])
                .fold(inst.rtt_s[inst.pair(t, t)], f64::min);
            best = best.min(flow.rounds * near);
            continue;
        }
        let mut others: Vec<(f64, f64, u32)> = (0..n)
            .filter(|&a| a != t && grp.ub[a] > 0 && inst.linked[inst.pair(a, t)])
            .map(|a| {
                let p = inst.pair(a, t);
                (inst.rtt_s[p], flow.bytes * inst.spb[p] / n_vm, grp.ub[a])
            })
            .collect();
        let room: u64 = others.iter().map(|o| u64::from(o.2)).sum();
        if room < u64::from(rest) {
            continue; // the hub cannot be on `t`
        }
        // Latency: nearest sites first until the rest fits.
        others.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut covered = 0u64;
        let mut rtt = 0.0;
        for o in &others {
            covered += u64::from(o.2);
            rtt = o.0;
            if covered >= u64::from(rest) {
                break;
            }
        }
        // Bandwidth: the water level τ over seconds per VM c_a = M·spb_at/N, with
        // x_a = min(ub_a, τ/c_a) and Σ x_a = rest; found by bisection on τ.
        let placed = |tau: f64| -> f64 {
            others
                .iter()
                .map(|o| {
                    if o.1 > 0.0 {
                        f64::from(o.2).min(tau / o.1)
                    } else {
                        f64::from(o.2)
                    }
                })
                .sum()
        };
        let mut hi = others
            .iter()
            .map(|o| o.1 * f64::from(o.2))
            .fold(0.0, f64::max);
        let mut lo = 0.0;
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if placed(mid) >= f64::from(rest) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        best = best.min(hub_theta * lo + flow.rounds * rtt);
    }
    if best.is_finite() {
        best
    } else {
        0.0
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
