//! The search over cluster site sets, after the heuristic's first answer.
//!
//! The communication terms depend mostly on *which* sites a group uses (the largest
//! RTT among them, the slowest link), and the block moves of the local search change
//! that set only one group and one site at a time: a plan whose groups would all be
//! better off on another set of sites is a local optimum for them. So the heuristic
//! also solves the problem restricted to other cluster site sets `U` (every group
//! may use only the sites of `U`) and keeps the best answer:
//! - with few usable sites ([`EXHAUSTIVE_SITES`] or fewer), every subset that can
//!   host the request and whose sites are pairwise linked;
//! - then, still with few sites, two descents that change one group's sites: forbid
//!   it one site, or take it out and place it again on each subset of its sites
//!   (alone, or before one other group so it can take that group's capacity).
//!
//! With more usable sites the first answer stands: each restricted solve costs about
//! as much as the first, and large plans must stay within their time targets.
//!
//! Each restricted problem is solved by the same fills and local search, so any
//! answer is feasible for the full problem.

use std::time::Instant;

use super::heuristic::{coverable, local_search, refill_groups, solve_once, usable};
use super::instance::Instance;

/// Up to this many usable sites, every site subset is tried.
pub(crate) const EXHAUSTIVE_SITES: usize = 6;

/// The instance with every group limited to the sites of `keep`.
fn restricted(inst: &Instance, keep: &[bool]) -> Instance {
    let mut r = inst.clone();
    for grp in &mut r.groups {
        for (s, ub) in grp.ub.iter_mut().enumerate() {
            if !keep[s] {
                *ub = 0;
            }
        }
    }
    r
}

/// Whether the sites of `set` are pairwise linked and can host the request.
fn admissible(inst: &Instance, set: &[usize]) -> bool {
    set.iter()
        .enumerate()
        .all(|(i, &a)| set[..i].iter().all(|&b| inst.linked[inst.pair(a, b)]))
        && coverable(inst, set)
}

/// Few usable sites: forbids one group one site of the best plan's cluster site set
/// (and nothing else) and solves again, keeping any improvement, until no such
/// restriction helps or the deadline passes. This changes the packing of the groups
/// (which group takes a site's shared capacity) in ways no single block move can.
fn group_site_descent(
    inst: &Instance,
    w: (f64, f64),
    mut best: (Vec<u32>, f64),
    deadline: Instant,
) -> (Vec<u32>, f64) {
    let n = inst.n_sites();
    'restart: loop {
        let set = used_sites(inst, &best.0);
        let mut keep = vec![false; n];
        for &s in &set {
            keep[s] = true;
        }
        let base = restricted(inst, &keep);
        for g in 0..inst.groups.len() {
            for &s in &set {
                if best.0[g * n + s] == 0 {
                    continue;
                }
                if Instant::now() >= deadline {
                    return best;
                }
                let mut r = base.clone();
                r.groups[g].ub[s] = 0;
                if let Some((x, t)) = solve_once(&r, w, deadline) {
                    if t < best.1 - 1e-12 * best.1.abs() {
                        best = (x, t);
                        continue 'restart;
                    }
                }
            }
        }
        return best;
    }
}

/// Few usable sites: takes one group out and places it again on each subset of its
/// sites in turn (the other groups stay, then the local search polishes), keeping
/// any improvement, until no group and subset helps or the deadline passes. A group's
/// best site set can be far from its current one (every step between them worse),
/// which block moves never cross.
fn group_subset_descent(
    inst: &Instance,
    w: (f64, f64),
    mut best: (Vec<u32>, f64),
    deadline: Instant,
) -> (Vec<u32>, f64) {
    let n = inst.n_sites();
    let ng = inst.groups.len();
    'restart: loop {
        for g in 0..ng {
            let allowed: Vec<usize> = (0..n).filter(|&s| inst.groups[g].ub[s] > 0).collect();
            for mask in 1u32..(1 << allowed.len()) {
                if Instant::now() >= deadline {
                    return best;
                }
                let mut r = inst.clone();
                for (i, &s) in allowed.iter().enumerate() {
                    if mask & (1 << i) == 0 {
                        r.groups[g].ub[s] = 0;
                    }
                }
                // The group alone, then with each other group placed again after it
                // (so it can take that group's capacity).
                let mut moves: Vec<Vec<usize>> = vec![vec![g]];
                moves.extend((0..ng).filter(|&h| h != g).map(|h| vec![g, h]));
                for gs in &moves {
                    for by_distance in [false, true] {
                        let Some(x) = refill_groups(&r, &best.0, gs, by_distance) else {
                            continue;
                        };
                        let (x, t) = local_search(&r, w, x, deadline);
                        if t < best.1 - 1e-12 * best.1.abs() {
                            best = (x, t);
                            continue 'restart;
                        }
                    }
                }
            }
        }
        return best;
    }
}

/// The heuristic's answer on the sites of `set` only.
fn solve_on(
    inst: &Instance,
    w: (f64, f64),
    set: &[usize],
    deadline: Instant,
) -> Option<(Vec<u32>, f64)> {
    let mut keep = vec![false; inst.n_sites()];
    for &s in set {
        keep[s] = true;
    }
    solve_once(&restricted(inst, &keep), w, deadline)
}

/// Sites the placement `x` uses.
fn used_sites(inst: &Instance, x: &[u32]) -> Vec<usize> {
    let n = inst.n_sites();
    (0..n)
        .filter(|&s| (0..inst.groups.len()).any(|g| x[g * n + s] > 0))
        .collect()
}

/// Improves `best` by solving on other cluster site sets (see the module docs).
pub(crate) fn improve(
    inst: &Instance,
    w: (f64, f64),
    mut best: (Vec<u32>, f64),
    deadline: Instant,
) -> (Vec<u32>, f64) {
    let sites = usable(inst);
    if sites.len() > EXHAUSTIVE_SITES {
        // Many sites: the first answer stands (each restricted solve costs about as
        // much as the first one, and the 2,000-VM plans must meet their time targets).
        return best;
    }
    for mask in 1u32..(1 << sites.len()) - 1 {
        if Instant::now() >= deadline {
            break;
        }
        let set: Vec<usize> = (0..sites.len())
            .filter(|&i| mask & (1 << i) != 0)
            .map(|i| sites[i])
            .collect();
        if admissible(inst, &set) {
            if let Some((x, t)) = solve_on(inst, w, &set, deadline) {
                if t < best.1 - 1e-12 * best.1.abs() {
                    best = (x, t);
                }
            }
        }
    }
    let best = group_site_descent(inst, w, best, deadline);
    group_subset_descent(inst, w, best, deadline)
}
