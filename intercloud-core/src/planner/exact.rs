//! The exact method: branch and bound over counts per group × site.
//!
//! Groups are assigned one after the other (co-located groups and hubs first), each
//! group's sites in ascending price order, trying the largest feasible count first.
//! A node is pruned when its lower bound cannot beat the incumbent. The bound is
//! the sum of
//! - money: what is assigned, plus each unassigned VM at the cheapest price a
//!   residual capacity still allows (a greedy fill, exact for one group alone);
//! - communication: the exact term of every finished group, a partial term of the
//!   group being assigned (its assigned pairs are final, and one more site will be
//!   used while VMs remain), and a stand-alone bound for the groups not started.
//!
//! Every term is monotone in the set of used sites and in the counts already fixed,
//! so the bound never exceeds the cost of any completion: finishing the search
//! without hitting a limit proves the incumbent optimal.

use std::time::Instant;

use super::bound::{greedy_fill_cost, standalone_comm_lb};
use super::cost::{group_term, money_per_hour, score};
use super::instance::Instance;
use crate::model::TrafficPattern;

/// How far the exact search may go.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) deadline: Option<Instant>,
    pub(crate) max_nodes: u64,
}

/// What the search found.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) x: Option<Vec<u32>>,
    pub(crate) total: f64,
    /// The whole tree was explored: `x` is optimal (or nothing is feasible).
    pub(crate) complete: bool,
    pub(crate) nodes: u64,
}

struct Search<'a> {
    inst: &'a Instance,
    w: (f64, f64),
    order: Vec<usize>,
    sites_of: Vec<Vec<usize>>,
    x: Vec<u32>,
    level_used: Vec<Vec<u32>>,
    cluster_used: Vec<u32>,
    done: Vec<bool>,
    future_comm_lb: Vec<f64>,
    best: f64,
    best_x: Option<Vec<u32>>,
    nodes: u64,
    limits: Limits,
    aborted: bool,
}

/// The order in which groups are assigned: co-located groups, then hubs, then the
/// rest, larger first.
pub(crate) fn group_order(inst: &Instance) -> Vec<usize> {
    let mut order: Vec<usize> = (0..inst.groups.len()).collect();
    let is_hub = |g: usize| inst.groups.iter().any(|o| o.hub == Some(g));
    order.sort_by_key(|&g| {
        let grp = &inst.groups[g];
        (!grp.colocate, !is_hub(g), std::cmp::Reverse(grp.count), g)
    });
    order
}

/// Sites a group may use, cheapest first (ties by index).
pub(crate) fn price_order(inst: &Instance, g: usize) -> Vec<usize> {
    let grp = &inst.groups[g];
    let mut v: Vec<usize> = (0..inst.n_sites()).filter(|&s| grp.ub[s] > 0).collect();
    v.sort_by(|&a, &b| grp.price[a].total_cmp(&grp.price[b]).then(a.cmp(&b)));
    v
}

/// Searches for the optimum, starting from an incumbent (its counts and total) if any.
pub(crate) fn solve(
    inst: &Instance,
    w: (f64, f64),
    incumbent: Option<(&[u32], f64)>,
    limits: Limits,
) -> Outcome {
    let n = inst.n_sites();
    let order = group_order(inst);
    let sites_of = (0..inst.groups.len())
        .map(|g| price_order(inst, g))
        .collect();
    let future_comm_lb = (0..inst.groups.len())
        .map(|g| standalone_comm_lb(inst, g))
        .collect();
    let mut s = Search {
        inst,
        w,
        order,
        sites_of,
        x: vec![0; inst.groups.len() * n],
        level_used: vec![vec![0; n]; inst.levels.len()],
        cluster_used: vec![0; n],
        done: vec![false; inst.groups.len()],
        future_comm_lb,
        best: f64::INFINITY,
        best_x: None,
        nodes: 0,
        limits,
        aborted: false,
    };
    if let Some((x, total)) = incumbent {
        s.best = total;
        s.best_x = Some(x.to_vec());
    }
    s.group(0);
    Outcome {
        total: s.best,
        x: s.best_x,
        complete: !s.aborted,
        nodes: s.nodes,
    }
}

impl Search<'_> {
    fn residual(&self, g: usize, s: usize) -> u32 {
        let grp = &self.inst.groups[g];
        let l = grp.level;
        grp.ub[s].min(self.inst.cap[l][s].saturating_sub(self.level_used[l][s]))
    }

    fn prune_margin(&self) -> f64 {
        if self.best.is_finite() {
            self.best - 1e-9 * self.best.abs().max(1.0)
        } else {
            f64::INFINITY
        }
    }

    /// Starts the group at position `gpos` (or scores the leaf after the last one).
    fn group(&mut self, gpos: usize) {
        if gpos == self.order.len() {
            self.leaf();
            return;
        }
        let g = self.order[gpos];
        let final_comm = self.final_comm();
        self.site(gpos, 0, self.inst.groups[g].count, final_comm);
    }

    fn final_comm(&self) -> f64 {
        let mut c = 0.0;
        for (g, grp) in self.inst.groups.iter().enumerate() {
            if self.done[g] && grp.hub.is_none_or(|h| self.done[h]) {
                let (bw, lat, _) = group_term(self.inst, &self.x, g);
                c += bw + lat;
            }
        }
        c
    }

    fn leaf(&mut self) {
        let used = self.cluster_used.iter().filter(|&&c| c > 0).count() as u32;
        if used < self.inst.min_sites {
            return;
        }
        let sc = score(self.inst, &self.x, self.w);
        if sc.total < self.prune_margin() || self.best_x.is_none() {
            self.best = sc.total;
            self.best_x = Some(self.x.clone());
        }
    }

    fn tick(&mut self) -> bool {
        self.nodes += 1;
        if self.nodes >= self.limits.max_nodes {
            self.aborted = true;
        } else if self.nodes.is_multiple_of(4096) {
            if let Some(d) = self.limits.deadline {
                if Instant::now() >= d {
                    self.aborted = true;
                }
            }
        }
        self.aborted
    }

    fn site(&mut self, gpos: usize, spos: usize, r: u32, final_comm: f64) {
        if self.tick() {
            return;
        }
        let g = self.order[gpos];
        let n_sites = self.sites_of[g].len();
        if spos == n_sites {
            if r == 0 {
                self.done[g] = true;
                self.group(gpos + 1);
                self.done[g] = false;
            }
            return;
        }
        let s = self.sites_of[g][spos];
        let res = self.residual(g, s);
        let later: u64 = self.sites_of[g][spos + 1..]
            .iter()
            .map(|&t| u64::from(self.residual(g, t)))
            .sum();
        let hi = r.min(res);
        let lo = u64::from(r).saturating_sub(later) as u32;
        if lo > hi {
            return;
        }
        let grp = &self.inst.groups[g];
        let values: Vec<u32> = if grp.colocate {
            let mut v = Vec::with_capacity(2);
            if r > 0 && hi == r && r == grp.count {
                v.push(r);
            }
            if lo == 0 {
                v.push(0);
            }
            v
        } else {
            (lo..=hi).rev().collect()
        };
        let n = self.inst.n_sites();
        let l = grp.level;
        for v in values {
            if v > 0 && !self.site_ok(g, s) {
                continue;
            }
            self.x[g * n + s] = v;
            self.level_used[l][s] += v;
            self.cluster_used[s] += v;
            let bound = self.bound(gpos, spos, r - v, final_comm);
            if bound < self.prune_margin() {
                self.site(gpos, spos + 1, r - v, final_comm);
            }
            self.x[g * n + s] = 0;
            self.level_used[l][s] -= v;
            self.cluster_used[s] -= v;
            if self.aborted {
                return;
            }
        }
    }

    /// Whether group `g` may add site `s`: linked to every site the cluster uses, and
    /// within the group's RTT limit of every site the group uses.
    fn site_ok(&self, g: usize, s: usize) -> bool {
        let inst = self.inst;
        let n = inst.n_sites();
        let max_rtt = inst.groups[g].max_rtt_ms / 1000.0;
        for t in 0..n {
            if t == s {
                continue;
            }
            if self.cluster_used[t] > 0 && !inst.linked[inst.pair(s, t)] {
                return false;
            }
            if self.x[g * n + t] > 0 && inst.rtt_s[inst.pair(s, t)] > max_rtt + 1e-12 {
                return false;
            }
        }
        true
    }

    /// A lower bound on every completion of the current node: group at `gpos` has
    /// its sites up to `spos` assigned and `r` VMs left.
    fn bound(&self, gpos: usize, spos: usize, r: u32, final_comm: f64) -> f64 {
        let inst = self.inst;
        let g = self.order[gpos];
        let mut money = money_per_hour(inst, &self.x);
        // The current group's remainder.
        let rest: Vec<usize> = self.sites_of[g][spos + 1..].to_vec();
        match greedy_fill_cost(inst, g, r, &rest, |t| self.residual(g, t)) {
            Some(m) => money += m,
            None => return f64::INFINITY,
        }
        let mut comm = final_comm + self.partial_comm_lb(g, spos, r);
        for &h in &self.order[gpos + 1..] {
            let all = &self.sites_of[h];
            match greedy_fill_cost(inst, h, inst.groups[h].count, all, |t| self.residual(h, t)) {
                Some(m) => money += m,
                None => return f64::INFINITY,
            }
            comm += self.future_comm_lb[h];
        }
        self.w.0 * money + self.w.1 * comm
    }

    /// A lower bound on the final term of group `g`, whose sites up to `spos` (in its
    /// order) are fixed, with `r` VMs still to place on the later ones.
    fn partial_comm_lb(&self, g: usize, spos: usize, r: u32) -> f64 {
        let inst = self.inst;
        let grp = &inst.groups[g];
        let Some(flow) = grp.flow else { return 0.0 };
        let n = inst.n_sites();
        let row = &self.x[g * n..(g + 1) * n];
        let used: Vec<usize> = self.sites_of[g][..=spos]
            .iter()
            .copied()
            .filter(|&s| row[s] > 0)
            .collect();
        let mut max_rtt: f64 = 0.0;
        let mut max_spb: f64 = 0.0;
        let mut wan_rtt: f64 = 0.0;
        let mut wan_spb: f64 = 0.0;
        let mut worst_pair: f64 = 0.0;
        for &a in &used {
            for &b in &used {
                let p = inst.pair(a, b);
                max_rtt = max_rtt.max(inst.rtt_s[p]);
                max_spb = max_spb.max(inst.spb[p]);
                worst_pair = worst_pair.max(f64::from(row[a]) * f64::from(row[b]) * inst.spb[p]);
                if a != b {
                    wan_rtt = wan_rtt.max(inst.rtt_s[p]);
                    wan_spb = wan_spb.max(inst.spb[p]);
                }
            }
        }
        // One more site will hold the remaining VMs: the RTT to it is at least the
        // smallest "largest RTT to a used site" over the sites still open.
        let mut next_rtt: f64 = 0.0;
        if r > 0 {
            next_rtt = f64::INFINITY;
            for &t in &self.sites_of[g][spos + 1..] {
                if self.residual(g, t) == 0 {
                    continue;
                }
                let mut m = inst.rtt_s[inst.pair(t, t)];
                for &a in &used {
                    m = m.max(inst.rtt_s[inst.pair(a, t)]);
                }
                next_rtt = next_rtt.min(m);
            }
            if !next_rtt.is_finite() {
                next_rtt = 0.0;
            }
        }
        let total = f64::from(grp.count);
        match flow.pattern {
            TrafficPattern::AllToAll => {
                flow.bytes * worst_pair / (total * total) + flow.rounds * max_rtt.max(next_rtt)
            }
            TrafficPattern::LatencyBound => {
                flow.bytes * max_spb + flow.rounds * max_rtt.max(next_rtt)
            }
            TrafficPattern::Halo => {
                let k_lb = used.len() + usize::from(r > 0);
                if k_lb >= 2 {
                    let lat = if used.is_empty() {
                        0.0
                    } else {
                        wan_rtt.max(next_rtt)
                    };
                    (k_lb - 1) as f64 * flow.bytes * wan_spb + flow.rounds * lat
                } else {
                    0.0
                }
            }
            TrafficPattern::Hub => match grp.hub {
                Some(h) if self.done[h] => {
                    let hub_total = f64::from(inst.groups[h].count);
                    let mut bw: f64 = 0.0;
                    let mut lat: f64 = 0.0;
                    for &a in &used {
                        for t in 0..n {
                            let hc = self.x[h * n + t];
                            if hc > 0 {
                                let p = inst.pair(a, t);
                                let share = f64::from(row[a]) / total * f64::from(hc) / hub_total;
                                bw = bw.max(flow.bytes * share * inst.spb[p]);
                                lat = lat.max(inst.rtt_s[p]);
                            }
                        }
                    }
                    bw + flow.rounds * lat
                }
                _ => 0.0,
            },
        }
    }
}
