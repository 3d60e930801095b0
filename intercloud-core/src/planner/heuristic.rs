//! The fast method for large instances.
//!
//! 1. **Site sets, diameter first** (after Alicherry & Lakshman, INFOCOM 2012): for
//!    each site as a centre, add the nearest linked sites until the set can host every
//!    group and `min_sites` is met; keep that set and the next two larger ones. Under
//!    the triangle inequality the smallest such set is within twice the optimal
//!    diameter.
//! 2. **Fill** each set six times — cheapest or nearest sites first; co-located
//!    groups first, last, or the least slack first — under
//!    capacities, pins, survive-loss caps, RTT limits and links.
//! 3. **Local search** on the best fills: move blocks of VMs of one group from one
//!    site to another (block sizes halving from "all that fits" down to one VM; a
//!    co-located group moves whole), best improvement first, until no move helps or
//!    the deadline passes.
//! 4. **Site sets**, with few usable sites: the search over cluster site sets and
//!    group site sets of module `site_search`.
//!
//! Work depends on sites, groups and log(VMs), never on the number of VMs.

use std::time::Instant;

use super::constraints::feasible;
use super::cost::{group_soft, group_term, money_per_hour, score};
use super::exact::group_order;
use super::instance::Instance;

/// How many filled candidates go on to local search: all of them when the usable
/// sites are few (each search is cheap there, and starting points matter), else more
/// when sites are fewer, at least three.
fn polished(inst: &Instance) -> usize {
    let k = usable(inst).len();
    if k <= super::site_search::EXHAUSTIVE_SITES {
        usize::MAX
    } else {
        (120 / k).clamp(3, 12)
    }
}

/// The best placement found and its total, or `None` when nothing feasible was found:
/// [`solve_once`], then the search over cluster site sets
/// ([`site_search::improve`](super::site_search::improve)).
pub(crate) fn solve(inst: &Instance, w: (f64, f64), deadline: Instant) -> Option<(Vec<u32>, f64)> {
    let first = solve_once(inst, w, deadline)?;
    Some(super::site_search::improve(inst, w, first, deadline))
}

/// Steps 1–3 once: site sets, fills, local search.
pub(crate) fn solve_once(
    inst: &Instance,
    w: (f64, f64),
    deadline: Instant,
) -> Option<(Vec<u32>, f64)> {
    let mut fills: Vec<(f64, Vec<u32>)> = Vec::new();
    for (center, set) in candidate_sets(inst) {
        for order in 0..3 {
            for by_distance in [false, true] {
                if let Some(x) = fill(inst, &set, center, by_distance, order) {
                    let t = score(inst, &x, w).total;
                    if !fills.iter().any(|(_, y)| *y == x) {
                        fills.push((t, x));
                    }
                }
            }
        }
    }
    fills.sort_by(|a, b| a.0.total_cmp(&b.0));
    fills.truncate(polished(inst));
    let mut best: Option<(Vec<u32>, f64)> = None;
    for (t0, x) in fills {
        let start = x.clone();
        let (mut x, mut t) = local_search(inst, w, x, deadline);
        // Every move is checked incrementally; this full check guards the invariant.
        debug_assert!(feasible(inst, &x), "local search left the feasible set");
        if !feasible(inst, &x) {
            (x, t) = (start, t0);
        }
        if best.as_ref().is_none_or(|(_, b)| t < *b) {
            best = Some((x, t));
        }
    }
    best
}

/// Sites any group may use.
pub(crate) fn usable(inst: &Instance) -> Vec<usize> {
    (0..inst.n_sites())
        .filter(|&s| inst.groups.iter().any(|g| g.ub[s] > 0))
        .collect()
}

/// Whether the sites in `set` have room for every group (ignoring links and RTT).
pub(crate) fn coverable(inst: &Instance, set: &[usize]) -> bool {
    if (set.len() as u32) < inst.min_sites {
        return false;
    }
    for grp in &inst.groups {
        let room: u64 = set.iter().map(|&s| u64::from(grp.ub[s])).sum();
        let one = set.iter().map(|&s| grp.ub[s]).max().unwrap_or(0);
        if room < u64::from(grp.count) || (grp.colocate && one < grp.count) {
            return false;
        }
    }
    for l in 0..inst.levels.len() {
        let demand: u64 = inst
            .groups
            .iter()
            .filter(|g| g.level == l)
            .map(|g| u64::from(g.count))
            .sum();
        let room: u64 = set.iter().map(|&s| u64::from(inst.cap[l][s])).sum();
        if room < demand {
            return false;
        }
    }
    true
}

/// Diameter-first site sets: `(centre, sites nearest the centre first)`.
fn candidate_sets(inst: &Instance) -> Vec<(usize, Vec<usize>)> {
    let sites = usable(inst);
    let mut out: Vec<(usize, Vec<usize>)> = Vec::new();
    for &c in &sites {
        let mut near: Vec<usize> = sites
            .iter()
            .copied()
            .filter(|&s| inst.linked[inst.pair(c, s)])
            .collect();
        near.sort_by(|&a, &b| {
            inst.rtt_s[inst.pair(c, a)]
                .total_cmp(&inst.rtt_s[inst.pair(c, b)])
                .then(a.cmp(&b))
        });
        let mut set: Vec<usize> = Vec::new();
        let mut extra = 0;
        for s in near {
            if !set.iter().all(|&t| inst.linked[inst.pair(s, t)]) {
                continue;
            }
            set.push(s);
            if coverable(inst, &set) {
                if !out.iter().any(|(oc, o)| *oc == c && *o == set) {
                    out.push((c, set.clone()));
                }
                extra += 1;
                if extra == 3 {
                    break;
                }
            }
        }
    }
    out
}

/// Fills `set` group by group; `None` when some group does not fit.
fn fill(
    inst: &Instance,
    set: &[usize],
    center: usize,
    by_distance: bool,
    group_sequence: u8,
) -> Option<Vec<u32>> {
    let mut order = group_order(inst);
    match group_sequence {
        // Co-located groups last: they fit in what the others leave.
        1 => order.sort_by_key(|&g| inst.groups[g].colocate),
        // Least slack first (room on the set minus count): packs the tight groups
        // before the loose ones take their capacity.
        2 => order.sort_by_key(|&g| {
            let grp = &inst.groups[g];
            let room: u64 = set.iter().map(|&s| u64::from(grp.ub[s])).sum();
            (room.saturating_sub(u64::from(grp.count)), g)
        }),
        _ => {}
    }
    // A group that does not fit in what the groups before it left (a tight RTT limit,
    // a site only it can use) goes first, and the fill starts over.
    for _ in 0..inst.groups.len() {
        match fill_in_order(inst, set, center, by_distance, &order) {
            Ok(x) => return Some(x),
            Err(Some(g)) if order[0] != g => {
                order.retain(|&h| h != g);
                order.insert(0, g);
            }
            Err(_) => return None,
        }
    }
    None
}

/// Fills `set` with the groups in `order`; `Err(Some(g))` when group `g` does not fit,
/// `Err(None)` when `min_sites` or a cluster-wide constraint cannot be met.
fn fill_in_order(
    inst: &Instance,
    set: &[usize],
    center: usize,
    by_distance: bool,
    order: &[usize],
) -> Result<Vec<u32>, Option<usize>> {
    let n = inst.n_sites();
    let mut x = vec![0u32; inst.groups.len() * n];
    let mut level_used = vec![vec![0u32; n]; inst.levels.len()];
    let mut cluster = vec![false; n];
    for &g in order {
        let grp = &inst.groups[g];
        let hub_site = grp
            .hub
            .and_then(|h| (0..n).find(|&s| x[h * n + s] > 0))
            .unwrap_or(center);
        let mut order: Vec<usize> = set.iter().copied().filter(|&s| grp.ub[s] > 0).collect();
        let dist = |s: usize| inst.rtt_s[inst.pair(hub_site, s)];
        order.sort_by(|&a, &b| {
            let by_price = grp.price[a].total_cmp(&grp.price[b]);
            let by_dist = dist(a).total_cmp(&dist(b));
            let first = if by_distance {
                by_dist.then(by_price)
            } else {
                by_price.then(by_dist)
            };
            first.then(a.cmp(&b))
        });
        // First the plain order; if the group does not fit (RTT limits, links), anchor
        // it on each site in turn, keeping only the sites within its RTT limit.
        let mut placed = place_group(inst, g, &order, &mut x, &mut level_used, &mut cluster);
        for &anchor in &order {
            if placed {
                break;
            }
            let near: Vec<usize> = std::iter::once(anchor)
                .chain(order.iter().copied().filter(|&s| {
                    s != anchor
                        && inst.rtt_s[inst.pair(anchor, s)] <= grp.max_rtt_ms / 1000.0 + 1e-12
                }))
                .collect();
            placed = place_group(inst, g, &near, &mut x, &mut level_used, &mut cluster);
        }
        if !placed {
            return Err(Some(g));
        }
    }
    spread_to_min_sites(inst, set, &mut x).ok_or(None)?;
    if feasible(inst, &x) {
        Ok(x)
    } else {
        Err(None)
    }
}

/// `x` with the groups of `gs` taken out and placed again greedily, in that order, on
/// the sites they may use (cheapest first, or nearest their hub — else the cluster's
/// largest site — first), the other groups unchanged; `None` when one does not fit or
/// the result breaks a constraint.
pub(crate) fn refill_groups(
    inst: &Instance,
    x: &[u32],
    gs: &[usize],
    by_distance: bool,
) -> Option<Vec<u32>> {
    let n = inst.n_sites();
    let mut x = x.to_vec();
    for &g in gs {
        x[g * n..(g + 1) * n].fill(0);
    }
    let mut level_used = vec![vec![0u32; n]; inst.levels.len()];
    let mut load = vec![0u32; n];
    for (h, other) in inst.groups.iter().enumerate() {
        for s in 0..n {
            level_used[other.level][s] += x[h * n + s];
            load[s] += x[h * n + s];
        }
    }
    let mut cluster: Vec<bool> = load.iter().map(|&c| c > 0).collect();
    for &g in gs {
        let grp = &inst.groups[g];
        let anchor = grp
            .hub
            .filter(|&h| x[h * n..(h + 1) * n].iter().any(|&c| c > 0))
            .map(|h| (0..n).max_by_key(|&s| (x[h * n + s], std::cmp::Reverse(s))))
            .unwrap_or_else(|| (0..n).max_by_key(|&s| (load[s], std::cmp::Reverse(s))))
            .unwrap_or(0);
        let mut order: Vec<usize> = (0..n).filter(|&s| grp.ub[s] > 0).collect();
        let dist = |s: usize| inst.rtt_s[inst.pair(anchor, s)];
        order.sort_by(|&a, &b| {
            let by_price = grp.price[a].total_cmp(&grp.price[b]);
            let by_dist = dist(a).total_cmp(&dist(b));
            let first = if by_distance {
                by_dist.then(by_price)
            } else {
                by_price.then(by_dist)
            };
            first.then(a.cmp(&b))
        });
        if !place_group(inst, g, &order, &mut x, &mut level_used, &mut cluster) {
            return None;
        }
        for s in 0..n {
            load[s] += x[g * n + s];
        }
    }
    feasible(inst, &x).then_some(x)
}

/// Places group `g` on `order` greedily; on failure undoes its part and says so.
fn place_group(
    inst: &Instance,
    g: usize,
    order: &[usize],
    x: &mut [u32],
    level_used: &mut [Vec<u32>],
    cluster: &mut [bool],
) -> bool {
    let n = inst.n_sites();
    let grp = &inst.groups[g];
    let l = grp.level;
    let before = cluster.to_vec();
    let mut r = grp.count;
    for &s in order {
        let room = grp.ub[s].min(inst.cap[l][s] - level_used[l][s]);
        if room == 0 || (grp.colocate && room < r) {
            continue;
        }
        let ok = (0..n).all(|t| {
            t == s
                || ((!cluster[t] || inst.linked[inst.pair(s, t)])
                    && (x[g * n + t] == 0
                        || inst.rtt_s[inst.pair(s, t)] <= grp.max_rtt_ms / 1000.0 + 1e-12))
        });
        if !ok {
            continue;
        }
        let take = r.min(room);
        x[g * n + s] = take;
        level_used[l][s] += take;
        cluster[s] = true;
        r -= take;
        if r == 0 {
            return true;
        }
    }
    for s in 0..n {
        level_used[l][s] -= x[g * n + s];
        x[g * n + s] = 0;
    }
    cluster.copy_from_slice(&before);
    false
}

/// Moves single VMs to unused sites of `set` until `min_sites` is met.
fn spread_to_min_sites(inst: &Instance, set: &[usize], x: &mut [u32]) -> Option<()> {
    let n = inst.n_sites();
    loop {
        let used: Vec<bool> = (0..n)
            .map(|s| (0..inst.groups.len()).any(|g| x[g * n + s] > 0))
            .collect();
        if used.iter().filter(|&&u| u).count() as u32 >= inst.min_sites {
            return Some(());
        }
        let mut best: Option<(f64, usize, usize, usize)> = None;
        for (g, grp) in inst.groups.iter().enumerate() {
            if grp.colocate {
                continue;
            }
            for &to in set {
                if used[to] || grp.ub[to] == 0 {
                    continue;
                }
                for from in 0..n {
                    if x[g * n + from] >= 2 {
                        let key = grp.price[to] - grp.price[from];
                        if best.is_none_or(|b| key < b.0) {
                            best = Some((key, g, from, to));
                        }
                    }
                }
            }
        }
        let (_, g, from, to) = best?;
        x[g * n + from] -= 1;
        x[g * n + to] += 1;
    }
}

/// Whether moving `q` VMs of group `g` from `a` to `b` keeps every constraint, given
/// that `x` is feasible and the capacity at `b` has room (checked by the caller).
fn move_ok(
    inst: &Instance,
    x: &[u32],
    cluster: &[u32],
    g: usize,
    a: usize,
    b: usize,
    q: u32,
) -> bool {
    let n = inst.n_sites();
    let grp = &inst.groups[g];
    let vacates_a = x[g * n + a] == q;
    if grp.colocate && !vacates_a {
        return false;
    }
    if x[g * n + b] == 0 {
        let limit = grp.max_rtt_ms / 1000.0 + 1e-12;
        for t in 0..n {
            if t != b
                && x[g * n + t] > 0
                && !(t == a && vacates_a)
                && inst.rtt_s[inst.pair(b, t)] > limit
            {
                return false;
            }
        }
    }
    let a_empties = cluster[a] == q;
    if cluster[b] == 0 {
        for t in 0..n {
            if t != b && cluster[t] > 0 && !(t == a && a_empties) && !inst.linked[inst.pair(b, t)] {
                return false;
            }
        }
    }
    let used = cluster.iter().filter(|&&c| c > 0).count() as u32;
    let after = used - u32::from(a_empties) + u32::from(cluster[b] == 0);
    after >= inst.min_sites
}

/// Whether swapping `q` VMs of `g` (a → b) with `q` of `h` (b → a) keeps the RTT
/// limits; capacities, caps and the set of used sites are unchanged or checked by the
/// caller.
fn swap_ok(inst: &Instance, x: &[u32], g: usize, h: usize, a: usize, b: usize, q: u32) -> bool {
    let n = inst.n_sites();
    let fits = |grp: usize, from: usize, to: usize| {
        if x[grp * n + to] > 0 {
            return true;
        }
        let limit = inst.groups[grp].max_rtt_ms / 1000.0 + 1e-12;
        let vacates = x[grp * n + from] == q;
        (0..n).all(|t| {
            t == to
                || x[grp * n + t] == 0
                || (t == from && vacates)
                || inst.rtt_s[inst.pair(to, t)] <= limit
        })
    };
    fits(g, a, b) && fits(h, b, a)
}

/// The weight of the smooth companion in the local search's potential, relative to
/// the weight of communication time.
const SMOOTH_WEIGHT: f64 = 1e-3;

/// Block moves until none helps or the deadline passes: sweeps over (group, source
/// site), each applying the best move out of that site — to any site, block sizes
/// halving from "all that fits" to one VM — or the best swap with another group of
/// the same level when capacity blocks a plain move.
///
/// Moves must lower the potential `total + SMOOTH_WEIGHT × w_time × Σ group_soft`,
/// so a move that leaves a max-based term flat but relieves a non-bottleneck pair
/// still counts and the search leaves plateaus; the best total seen is returned.
/// Moves are scored incrementally: only the moved groups' terms (and the terms of
/// groups using them as their hub) change.
pub(crate) fn local_search(
    inst: &Instance,
    w: (f64, f64),
    mut x: Vec<u32>,
    deadline: Instant,
) -> (Vec<u32>, f64) {
    let n = inst.n_sites();
    let ng = inst.groups.len();
    let kappa = SMOOTH_WEIGHT * w.1;
    // A group's contribution to the potential, without money.
    let part = |x: &[u32], g: usize| {
        let (bw, lat, _) = group_term(inst, x, g);
        w.1 * (bw + lat) + kappa * group_soft(inst, x, g)
    };
    let dependents: Vec<Vec<usize>> = (0..ng)
        .map(|g| (0..ng).filter(|&h| inst.groups[h].hub == Some(g)).collect())
        .collect();
    let touched = |gs: &[usize]| {
        let mut v: Vec<usize> = gs.to_vec();
        for &g in gs {
            v.extend(dependents[g].iter().copied());
        }
        v.sort_unstable();
        v.dedup();
        v
    };
    let mut parts: Vec<f64> = (0..ng).map(|g| part(&x, g)).collect();
    let mut pot = w.0 * money_per_hour(inst, &x) + parts.iter().sum::<f64>();
    let mut best_total = score(inst, &x, w).total;
    let mut best_x = x.clone();
    let mut level_used = vec![vec![0u32; n]; inst.levels.len()];
    let mut cluster = vec![0u32; n];
    for (g, grp) in inst.groups.iter().enumerate() {
        for s in 0..n {
            level_used[grp.level][s] += x[g * n + s];
            cluster[s] += x[g * n + s];
        }
    }
    // Potential change of the counts in `x` (already moved) against `parts`.
    let delta_parts = |x: &[u32], gs: &[usize], parts: &[f64]| -> f64 {
        touched(gs).iter().map(|&h| part(x, h) - parts[h]).sum()
    };
    'sweep: loop {
        let mut improved = false;
        for (g, grp) in inst.groups.iter().enumerate() {
            for a in 0..n {
                if Instant::now() >= deadline {
                    break 'sweep;
                }
                let have = x[g * n + a];
                if have == 0 {
                    continue;
                }
                // Improvements below this are rounding, not progress (and could cycle).
                let margin = 1e-9 * pot.abs() + 1e-15;
                // (potential change, other group for a swap, target, block)
                let mut best: Option<(f64, Option<usize>, usize, u32)> = None;
                let mut consider = |d: f64, h: Option<usize>, b: usize, q: u32| {
                    if d < -margin && best.is_none_or(|m| d < m.0) {
                        best = Some((d, h, b, q));
                    }
                };
                for b in 0..n {
                    if b == a || grp.ub[b] == 0 {
                        continue;
                    }
                    let room = grp.ub[b]
                        .saturating_sub(x[g * n + b])
                        .min(inst.cap[grp.level][b].saturating_sub(level_used[grp.level][b]));
                    let q_max = have.min(room);
                    if q_max > 0 && !(grp.colocate && q_max < have) {
                        let mut q = q_max;
                        loop {
                            if move_ok(inst, &x, &cluster, g, a, b, q) {
                                x[g * n + a] -= q;
                                x[g * n + b] += q;
                                let d = w.0 * f64::from(q) * (grp.price[b] - grp.price[a])
                                    + delta_parts(&x, &[g], &parts);
                                x[g * n + a] += q;
                                x[g * n + b] -= q;
                                consider(d, None, b, q);
                            }
                            if grp.colocate || q == 1 {
                                break;
                            }
                            q /= 2;
                        }
                    }
                    // Swaps: q VMs of g go a → b while q of another group of the same
                    // level come b → a, so capacity at both sites is unchanged.
                    if grp.colocate {
                        continue;
                    }
                    for (h, other) in inst.groups.iter().enumerate() {
                        let theirs = x[h * n + b];
                        if h == g
                            || other.colocate
                            || other.level != grp.level
                            || theirs == 0
                            || other.ub[a] == 0
                        {
                            continue;
                        }
                        let mut q = have
                            .min(theirs)
                            .min(grp.ub[b].saturating_sub(x[g * n + b]))
                            .min(other.ub[a].saturating_sub(x[h * n + a]));
                        while q > 0 {
                            if swap_ok(inst, &x, g, h, a, b, q) {
                                x[g * n + a] -= q;
                                x[g * n + b] += q;
                                x[h * n + b] -= q;
                                x[h * n + a] += q;
                                let d = w.0
                                    * f64::from(q)
                                    * (grp.price[b] - grp.price[a] + other.price[a]
                                        - other.price[b])
                                    + delta_parts(&x, &[g, h], &parts);
                                x[g * n + a] += q;
                                x[g * n + b] -= q;
                                x[h * n + b] += q;
                                x[h * n + a] -= q;
                                consider(d, Some(h), b, q);
                            }
                            q /= 2;
                        }
                    }
                }
                let Some((_, swap_with, b, q)) = best else {
                    continue;
                };
                x[g * n + a] -= q;
                x[g * n + b] += q;
                level_used[grp.level][a] -= q;
                level_used[grp.level][b] += q;
                cluster[a] -= q;
                cluster[b] += q;
                let mut moved = vec![g];
                if let Some(h) = swap_with {
                    // The other group's q come back: capacity and usage unchanged.
                    x[h * n + b] -= q;
                    x[h * n + a] += q;
                    let l = inst.groups[h].level;
                    level_used[l][b] -= q;
                    level_used[l][a] += q;
                    cluster[b] -= q;
                    cluster[a] += q;
                    moved.push(h);
                }
                for h in touched(&moved) {
                    parts[h] = part(&x, h);
                }
                // Re-score in full so rounding never drifts.
                pot = w.0 * money_per_hour(inst, &x) + parts.iter().sum::<f64>();
                let total = score(inst, &x, w).total;
                if total < best_total {
                    best_total = total;
                    best_x.copy_from_slice(&x);
                }
                improved = true;
            }
        }
        if !improved {
            break;
        }
    }
    (best_x, best_total)
}
