//! The planner: where each VM of a virtual cluster goes, by money, capacity, latency,
//! bandwidth and availability.
//!
//! Pure, synchronous and deterministic: `(Topology, ClusterRequest, Objective) →
//! Placement`, no I/O. The same inputs give the same plan unless the wall-clock
//! budget ([`Planner::budget`]) cuts a search short, in which case the plan says so
//! (`method = heuristic`, with its gap).
//!
//! # The model
//!
//! **Decision.** `x(g, s)`: how many VMs of group `g` go to site `s` — counts per
//! group × site, never one variable per VM, so the model's size does not grow with the
//! number of VMs.
//!
//! **Constraints** (each has a [`Constraint`] name used in errors and
//! [`check`] results):
//! - `demand`: Σ_s x(g, s) = count(g);
//! - `capacity`: for each site and service level, Σ over the groups of that level of
//!   x(g, s) ≤ capacity(s, level) (groups of one level share it); a site that does
//!   not offer the level has capacity 0;
//! - `pinning`: x(g, s) = 0 outside the group's `sites`;
//! - `colocate`: a `colocate = true` group uses one site;
//! - `max-rtt`: any two sites a group uses are within its `max_rtt_ms`;
//! - `link`: any two sites the cluster uses have a `[[link]]`;
//! - `vpn-bandwidth`: each such link has at least `vpn.bandwidth_mbps` usable;
//! - `min-sites`: the cluster uses at least `spread.min_sites` sites;
//! - `survive-site-loss` α: after losing any one site at least ⌈α·count⌉ of each
//!   non-co-located group survive, i.e. x(g, s) ≤ count − ⌈α·count⌉.
//!
//! **Objective** (see [`Objective`]): `total = w_money × money_per_hour × job_hours +
//! w_time × communication_s`, where `money_per_hour = Σ x(g, s) × price_per_hour`
//! and `communication_s = Σ_g T_g`, one term per group with `traffic`. With `f_s` the
//! group's share on site `s` (x(g, s)/count), `M` its `bytes_per_job`, `R` its
//! `rounds_per_job` (default [`DEFAULT_ROUNDS_PER_JOB`]), `B_st` the usable bandwidth
//! in bytes/s (nominal × (1 − vpn_overhead), default overhead 21 %, the figure
//! measured between Hokkaido and Tokyo over an L2VPN) and `RTT_st` in seconds — within
//! one site `RTT_ss` = [`INTRA_SITE_RTT_MS`](crate::model::INTRA_SITE_RTT_MS) and
//! `B_ss` = [`INTRA_SITE_BANDWIDTH_MBPS`](crate::model::INTRA_SITE_BANDWIDTH_MBPS):
//! - `all-to-all` (MapReduce shuffle): `M·f_s·f_t` bytes go from `s` to `t`; links are
//!   full duplex and run in parallel, so `T = max_{s,t} M·f_s·f_t / B_st + R × max
//!   RTT_st` over used sites (pairs `s = t` included: traffic inside a site);
//! - `hub` (master ↔ workers): with `h_t` the share of the hub group (the first other
//!   co-located group, else the first other group; alone, the group's largest site)
//!   on `t`, `T = max_{s,t} M·f_s·h_t / B_st + R × max RTT_st` over worker site `s`,
//!   hub site `t`;
//! - `halo` (MPI nearest neighbour, ranks in one slab per site): `k` used sites cut
//!   `k − 1` boundaries, each carrying `M` per job, paid against the slowest link:
//!   `T = (k − 1)·M / min B + R × max RTT` between used sites (`k = 1`: `M/B_ss + R ×
//!   RTT_ss`);
//! - `latency-bound` (transactional): `R` sequential round trips against the largest
//!   RTT: `T = R × max RTT_st + M / min B_st` over used sites.
//!
//! The seed reproduction and its calibration constants are in [`estimate`].
//!
//! # Methods
//! - **Exact**: a branch and bound over the counts (module `exact`), with bounds
//!   specific to this model; finishing it proves the plan optimal (`method =
//!   optimal`, `proof = exhaustive-search`). It runs when the number of count vectors
//!   is small enough ([`Planner::exact_limit_log10`]) and within the budget.
//! - **Heuristic** (module `heuristic`): diameter-first site sets after Alicherry &
//!   Lakshman, cheapest- and nearest-first fills under the caps, then local search
//!   moving blocks of VMs; with few usable sites, also the same on every other
//!   cluster site set and two descents that change one group's sites (module
//!   `site_search`). Its `gap` is measured against a lower bound (module `bound`:
//!   money by greedy fills, communication per group from the fewest sites its caps
//!   allow, their RTT/bandwidth spread and, for hub traffic, a water level per
//!   hub site); when the two meet the plan is `optimal` with `proof = lower-bound`.
//!
//! # Errors
//! Malformed topologies and requests give `Config`. Infeasible requests give
//! `QuotaExceeded` when more capacity would help — naming the constraint and the
//! shortfall, e.g. `capacity: need 2,000 × L, the federation can host 1,240: hokkaido
//! 800, tokyo 440 (short by 760)` — and `InvalidRequest` when the constraints
//! contradict each other (see [`infeasible`] for the list). `Timeout` means a
//! placement exists but the chosen method did not find one within the budget (only
//! possible with [`SearchMode::HeuristicOnly`] or a budget too short for the exact
//! search).
//!
//! An infeasible request's error also names its constraints machine-readably:
//! [`crate::Error::constraints`] (e.g. `[Constraint::Capacity]`, or
//! `[Pinning, SurviveSiteLoss]` when only both together fail), and its
//! [`crate::Error::class`] is [`crate::ErrorClass::UserInput`]: the request must
//! change (or the federation grow), retrying cannot help.

// Sites and groups are indices into dense matrices; index loops read as the formulas.
#![allow(clippy::needless_range_loop)]

mod bound;
mod constraints;
mod cost;
pub mod estimate;
mod exact;
#[cfg(feature = "testkit")]
pub mod generate;
mod heuristic;
pub mod infeasible;
mod instance;
mod objective;
mod placement;
mod site_search;

use std::time::{Duration, Instant};

pub use constraints::{Binding, Constraint, Violation};
pub use cost::{Cost, Term};
pub use instance::DEFAULT_ROUNDS_PER_JOB;
pub use objective::{Objective, ObjectiveKind, TIE_BREAK_WEIGHT};
pub use placement::{Alternative, Method, Placement, Proof, SearchStats};

use crate::model::{ClusterRequest, PlacementCounts, Topology};
use crate::{Error, Result};
use instance::Instance;

/// Which methods [`Planner::plan`] may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SearchMode {
    /// Heuristic first, then the exact method when the instance is small enough.
    #[default]
    Auto,
    /// The heuristic only (its gap is still reported).
    HeuristicOnly,
    /// The exact method whatever the size (still within the budget).
    ExactOnly,
}

/// The planner and its limits.
#[derive(Debug, Clone, Copy)]
pub struct Planner {
    /// Wall-clock budget of one `plan` call, alternatives included.
    pub budget: Duration,
    /// Which methods to use.
    pub mode: SearchMode,
    /// The exact method runs (in `Auto`) when log10 of the number of count vectors
    /// (Π over groups of C(count + sites − 1, sites − 1)) is at most this.
    pub exact_limit_log10: f64,
    /// Branch-and-bound nodes per exact search: a deterministic limit.
    pub max_nodes: u64,
    /// Whether to compute the cheapest / fastest / balanced alternatives.
    pub alternatives: bool,
}

impl Default for Planner {
    /// A one-second budget, `Auto`, exact up to 10^14 count vectors or 5 M nodes,
    /// with alternatives.
    fn default() -> Self {
        Self {
            budget: Duration::from_secs(1),
            mode: SearchMode::Auto,
            exact_limit_log10: 14.0,
            max_nodes: 5_000_000,
            alternatives: true,
        }
    }
}

/// One solved objective.
struct Solved {
    x: Vec<u32>,
    method: Method,
    proof: Option<Proof>,
    gap: f64,
    lower_bound: f64,
    stats: SearchStats,
}

/// log10 of the number of count vectors of the instance.
fn log10_space(inst: &Instance) -> f64 {
    let mut total = 0.0;
    for grp in &inst.groups {
        let k = grp.ub.iter().filter(|&&u| u > 0).count();
        if grp.colocate {
            total += (k.max(1) as f64).log10();
            continue;
        }
        let n = f64::from(grp.count);
        for i in 1..k {
            total += ((n + i as f64) / i as f64).log10();
        }
    }
    total
}

impl Planner {
    /// The default planner (see [`Planner::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// The same planner with another budget.
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// The same planner with another mode.
    pub fn with_mode(mut self, mode: SearchMode) -> Self {
        self.mode = mode;
        self
    }

    /// The same planner with or without alternatives.
    pub fn with_alternatives(mut self, on: bool) -> Self {
        self.alternatives = on;
        self
    }

    /// Places the request's groups on the topology's sites, minimising `objective`.
    ///
    /// ```
    /// use intercloud_core::config::{cluster_from_toml, FederationConfig};
    /// use intercloud_core::planner::{Constraint, Method, Objective, Planner};
    /// use intercloud_core::{ErrorClass, ErrorKind, SiteId};
    ///
    /// # fn main() -> intercloud_core::Result<()> {
    /// let site = |id: &str, price: f64, capacity: u32| {
    ///     format!(
    ///         "[[site]]\nid = \"{id}\"\nmiddleware = \"opennebula\"\n\
    ///          endpoint = \"http://{id}.example:2633/RPC2\"\ncredentials = \"env:X\"\n\
    ///          [site.levels.S]\noffering = \"small\"\n\
    ///          price_per_hour = {price}\ncapacity = {capacity}\n"
    ///     )
    /// };
    /// let federation = FederationConfig::from_toml(
    ///     &format!(
    ///         "{}{}[[link]]\nbetween = [\"hokkaido\", \"tokyo\"]\nrtt_ms = 20\n\
    ///          bandwidth_mbps = 1000\n",
    ///         site("hokkaido", 0.02, 4),
    ///         site("tokyo", 0.05, 10),
    ///     ),
    ///     "federation.toml",
    /// )?;
    /// let topology = federation.topology();
    /// let cluster = |count: u32| {
    ///     cluster_from_toml(
    ///         &format!("name = \"demo\"\n[[group]]\nrole = \"worker\"\ncount = {count}\nlevel = \"S\"\n"),
    ///         "cluster.toml",
    ///     )
    /// };
    ///
    /// // Six workers, cheapest first: hokkaido's four, then two on tokyo; proven optimal.
    /// let placed = Planner::new().plan(&topology, &cluster(6)?, &Objective::money())?;
    /// let workers = &placed.placement["worker"];
    /// assert_eq!(workers[&SiteId::new("hokkaido")], 4);
    /// assert_eq!(workers[&SiteId::new("tokyo")], 2);
    /// assert_eq!(placed.method, Method::Optimal);
    ///
    /// // Twenty do not fit: the error names the constraint, for people and programs.
    /// let err = Planner::new()
    ///     .plan(&topology, &cluster(20)?, &Objective::money())
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    /// assert_eq!(err.constraints(), &[Constraint::Capacity]);
    /// assert_eq!(err.class(), ErrorClass::UserInput);
    /// assert!(err.message().ends_with("(short by 6)"), "{err}");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// `Config` for a malformed topology or request; `InvalidRequest` for a bad
    /// objective or contradictory constraints; `QuotaExceeded` when capacity is short.
    /// Each message names the constraint and the shortfall; [`Error::constraints`]
    /// names them for programs (class [`crate::ErrorClass::UserInput`]).
    pub fn plan(
        &self,
        topology: &Topology,
        request: &ClusterRequest,
        objective: &Objective,
    ) -> Result<Placement> {
        objective.validate()?;
        let start = Instant::now();
        let inst = Instance::compile(topology, request)?;
        infeasible::precheck(&inst)?;
        let share = if self.alternatives { 0.6 } else { 1.0 };
        let main = self.solve(&inst, objective, start + self.budget.mul_f64(share))?;
        let cost = cost::cost(&inst, &main.x, objective);
        let mut alternatives = Vec::new();
        if self.alternatives {
            let money_lb = bound::root_lower_bound(&inst, (1.0, 0.0));
            let balanced = if objective.kind == ObjectiveKind::Balanced {
                *objective
            } else {
                // A second of communication is worth a second of the cluster's rent.
                Objective::balanced(money_lb / 3600.0).with_job_hours(objective.job_hours)
            };
            let kinds = [
                (
                    "cheapest",
                    Objective::money().with_job_hours(objective.job_hours),
                ),
                (
                    "fastest",
                    Objective::time().with_job_hours(objective.job_hours),
                ),
                ("balanced", balanced),
            ];
            let per = self.budget.mul_f64((1.0 - share) / 3.0);
            for (name, obj) in kinds {
                let solved = if obj == *objective {
                    None
                } else {
                    self.solve(&inst, &obj, Instant::now() + per).ok()
                };
                let (x, method) = match &solved {
                    Some(s) => (&s.x, s.method),
                    None => (&main.x, main.method),
                };
                let own = cost::score(&inst, x, obj.weights());
                alternatives.push(Alternative {
                    name: name.to_owned(),
                    objective: obj,
                    placement: inst.to_counts(x),
                    money_per_hour: own.money_per_hour,
                    communication_s: own.comm_s,
                    total: cost::score(&inst, x, objective.weights()).total,
                    method,
                });
            }
        }
        Ok(Placement {
            cluster: request.name.clone(),
            placement: inst.to_counts(&main.x),
            binding: constraints::binding(&inst, &main.x),
            cost,
            method: main.method,
            proof: main.proof,
            gap: main.gap,
            lower_bound: main.lower_bound,
            alternatives,
            search: main.stats,
        })
    }

    fn solve(&self, inst: &Instance, obj: &Objective, deadline: Instant) -> Result<Solved> {
        let w = obj.weights();
        let lower_bound = bound::root_lower_bound(inst, w);
        let heur = if self.mode == SearchMode::ExactOnly {
            None
        } else {
            heuristic::solve(inst, w, deadline)
        };
        // In `Auto`, the exact search also runs (within the budget) when the heuristic
        // found nothing, so a tight but feasible request is not refused.
        let run_exact = match self.mode {
            SearchMode::HeuristicOnly => false,
            SearchMode::ExactOnly => true,
            SearchMode::Auto => heur.is_none() || log10_space(inst) <= self.exact_limit_log10,
        };
        let mut stats = SearchStats::default();
        let (x, total, complete) = if run_exact {
            let out = exact::solve(
                inst,
                w,
                heur.as_ref().map(|(x, t)| (x.as_slice(), *t)),
                exact::Limits {
                    deadline: Some(deadline),
                    max_nodes: self.max_nodes,
                },
            );
            stats = SearchStats {
                nodes: out.nodes,
                exact_attempted: true,
                exact_complete: out.complete,
            };
            (out.x, out.total, out.complete)
        } else {
            match heur {
                Some((x, t)) => (Some(x), t, false),
                None => (None, f64::INFINITY, false),
            }
        };
        let Some(x) = x else {
            return Err(self.diagnose(inst, w));
        };
        let gap = if total > 0.0 {
            ((total - lower_bound) / total).max(0.0)
        } else {
            0.0
        };
        let (method, proof, gap) = if complete {
            (Method::Optimal, Some(Proof::ExhaustiveSearch), 0.0)
        } else if gap <= 1e-9 {
            (Method::Optimal, Some(Proof::LowerBound), 0.0)
        } else {
            (Method::Heuristic, None, gap)
        };
        Ok(Solved {
            x,
            method,
            proof,
            gap,
            lower_bound: lower_bound.min(total),
            stats,
        })
    }

    fn diagnose(&self, inst: &Instance, w: (f64, f64)) -> Error {
        let budget = self.budget;
        infeasible::diagnose(inst, |relaxed| {
            let deadline = Instant::now() + budget.mul_f64(0.1);
            heuristic::solve(relaxed, w, deadline).is_some()
                || exact::solve(
                    relaxed,
                    w,
                    None,
                    exact::Limits {
                        deadline: Some(deadline),
                        max_nodes: 200_000,
                    },
                )
                .x
                .is_some()
        })
    }
}

/// Scores any placement by the planner's formula (it does not check constraints:
/// use [`check`] for that).
///
/// # Errors
/// `Config` for a malformed topology or request; `InvalidRequest` when the placement
/// names an unknown group or site, places a different number of VMs than a group's
/// `count`, or uses two sites with no link between them (no time can be estimated).
pub fn evaluate(
    topology: &Topology,
    request: &ClusterRequest,
    placement: &PlacementCounts,
    objective: &Objective,
) -> Result<Cost> {
    objective.validate()?;
    let inst = Instance::compile(topology, request)?;
    let x = inst.read_counts(placement, true)?;
    if let Some(v) = constraints::violations(&inst, &x)
        .into_iter()
        .find(|v| v.constraint == Constraint::Link)
    {
        return Err(Error::invalid(v.message).with_constraint(v.constraint));
    }
    Ok(cost::cost(&inst, &x, objective))
}

/// Every constraint `placement` breaks (empty when it satisfies all of them): what
/// `plan --fixed` reports.
///
/// # Errors
/// `Config` for a malformed topology or request; `InvalidRequest` when the placement
/// names an unknown group or site.
pub fn check(
    topology: &Topology,
    request: &ClusterRequest,
    placement: &PlacementCounts,
) -> Result<Vec<Violation>> {
    let inst = Instance::compile(topology, request)?;
    let x = inst.read_counts(placement, false)?;
    Ok(constraints::violations(&inst, &x))
}
