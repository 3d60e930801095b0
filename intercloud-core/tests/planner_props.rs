//! Property tests of the planner: every plan satisfies every constraint, and on small
//! instances its cost equals the brute-force optimum of `evaluate`.

use std::collections::BTreeMap;
use std::time::Duration;

use intercloud_core::model::{ClusterRequest, PlacementCounts, SiteId, Topology};
use intercloud_core::planner::generate::{generate, GenParams};
use intercloud_core::planner::{check, evaluate, Method, Objective, Planner, SearchMode};
use intercloud_core::ErrorKind;
use proptest::prelude::*;

/// Most placements the brute force enumerates per instance.
const BRUTE_LIMIT: u64 = 6_000;

fn compositions(n: u32, parts: usize) -> Vec<Vec<u32>> {
    if parts == 1 {
        return vec![vec![n]];
    }
    let mut out = Vec::new();
    for first in 0..=n {
        for mut rest in compositions(n - first, parts - 1) {
            rest.insert(0, first);
            out.push(rest);
        }
    }
    out
}

fn binom(n: u64, k: u64) -> u64 {
    (1..=k).fold(1u64, |acc, i| acc * (n + 1 - i) / i)
}

fn space(req: &ClusterRequest, sites: usize) -> u64 {
    req.groups
        .iter()
        .map(|g| binom(u64::from(g.count) + sites as u64 - 1, sites as u64 - 1))
        .product()
}

/// The best total over every placement `check` accepts, by enumeration.
fn brute_force(
    topo: &Topology,
    req: &ClusterRequest,
    obj: &Objective,
) -> Option<(f64, PlacementCounts)> {
    let sites: Vec<SiteId> = topo.sites.keys().cloned().collect();
    let per_group: Vec<Vec<Vec<u32>>> = req
        .groups
        .iter()
        .map(|g| compositions(g.count, sites.len()))
        .collect();
    let mut idx = vec![0usize; per_group.len()];
    let mut best: Option<(f64, PlacementCounts)> = None;
    loop {
        let placement: PlacementCounts = req
            .groups
            .iter()
            .enumerate()
            .map(|(g, grp)| {
                let v = &per_group[g][idx[g]];
                let per: BTreeMap<SiteId, u32> = sites
                    .iter()
                    .zip(v)
                    .filter(|(_, &c)| c > 0)
                    .map(|(s, &c)| (s.clone(), c))
                    .collect();
                (grp.role.clone(), per)
            })
            .collect();
        if check(topo, req, &placement).unwrap().is_empty() {
            let total = evaluate(topo, req, &placement, obj).unwrap().total;
            if best.as_ref().is_none_or(|(b, _)| total < *b) {
                best = Some((total, placement));
            }
        }
        // Next index vector.
        let mut g = 0;
        loop {
            if g == idx.len() {
                return best;
            }
            idx[g] += 1;
            if idx[g] < per_group[g].len() {
                break;
            }
            idx[g] = 0;
            g += 1;
        }
    }
}

fn objective(kind: u8, lambda_exp: i32) -> Objective {
    match kind {
        0 => Objective::money(),
        1 => Objective::time(),
        _ => Objective::balanced(10f64.powi(lambda_exp)),
    }
}

fn small_instance(sites: usize, groups: usize, vms: u32, seed: u64) -> (Topology, ClusterRequest) {
    let (topo, mut req) = generate(&GenParams {
        sites,
        groups,
        vms,
        seed,
        constraints: true,
    });
    while space(&req, sites) > BRUTE_LIMIT {
        let big = (0..req.groups.len())
            .max_by_key(|&g| req.groups[g].count)
            .unwrap();
        req.groups[big].count -= 1;
    }
    (topo, req)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn planner_cost_equals_the_brute_force_optimum(
        sites in 1usize..=4,
        groups in 1usize..=3,
        vms in 1u32..=40,
        seed in any::<u64>(),
        kind in 0u8..3,
        lambda_exp in -4i32..=1,
    ) {
        let (topo, req) = small_instance(sites, groups, vms, seed);
        let obj = objective(kind, lambda_exp);
        let planner = Planner::default().with_budget(Duration::from_secs(60)).with_alternatives(false);
        let brute = brute_force(&topo, &req, &obj);
        match (planner.plan(&topo, &req, &obj), brute) {
            (Ok(plan), Some((best, at))) => {
                prop_assert!(check(&topo, &req, &plan.placement).unwrap().is_empty());
                let again = evaluate(&topo, &req, &plan.placement, &obj).unwrap().total;
                prop_assert!((again - plan.cost.total).abs() <= 1e-12 * again.abs().max(1.0));
                prop_assert!(
                    (plan.cost.total - best).abs() <= 1e-8 * best.abs().max(1.0),
                    "planner {} ({:?}) vs brute force {} ({:?})\n{}",
                    plan.cost.total, plan.placement, best, at, plan
                );
                prop_assert_eq!(plan.method, Method::Optimal);
                prop_assert_eq!(plan.gap, 0.0);
                prop_assert!(plan.lower_bound <= best + 1e-9 * best.abs().max(1.0));
                // The heuristic alone: feasible, never below the optimum, and its
                // lower bound (hence its reported gap) is valid.
                let heur = planner.with_mode(SearchMode::HeuristicOnly).plan(&topo, &req, &obj);
                if let Ok(h) = heur {
                    prop_assert!(check(&topo, &req, &h.placement).unwrap().is_empty());
                    prop_assert!(h.cost.total >= best - 1e-9 * best.abs().max(1.0));
                    prop_assert!(h.lower_bound <= best + 1e-9 * best.abs().max(1.0));
                    prop_assert!(h.gap >= (h.cost.total - best) / h.cost.total - 1e-9);
                }
            }
            (Err(e), None) => {
                prop_assert!(
                    matches!(e.kind(), ErrorKind::QuotaExceeded | ErrorKind::InvalidRequest),
                    "{e}"
                );
            }
            (Ok(plan), None) => prop_assert!(false, "planner found {:?}, brute force nothing", plan.placement),
            (Err(e), Some((best, at))) => prop_assert!(false, "planner failed ({e}) but {at:?} costs {best}"),
        }
    }

    #[test]
    fn every_plan_and_alternative_satisfies_every_constraint(
        sites in 1usize..=8,
        groups in 1usize..=4,
        vms in 1u32..=300,
        seed in any::<u64>(),
        kind in 0u8..3,
    ) {
        let (topo, req) = generate(&GenParams { sites, groups, vms, seed, constraints: true });
        let obj = objective(kind, -2);
        let planner = Planner::default().with_budget(Duration::from_millis(300));
        match planner.plan(&topo, &req, &obj) {
            Ok(plan) => {
                let v = check(&topo, &req, &plan.placement).unwrap();
                prop_assert!(v.is_empty(), "{v:?}");
                let cost = evaluate(&topo, &req, &plan.placement, &obj).unwrap();
                prop_assert!((cost.total - plan.cost.total).abs() <= 1e-12 * cost.total.abs().max(1.0));
                prop_assert!(plan.gap >= 0.0 && plan.gap <= 1.0);
                prop_assert!(plan.lower_bound <= plan.cost.total + 1e-9);
                for alt in &plan.alternatives {
                    prop_assert!(check(&topo, &req, &alt.placement).unwrap().is_empty());
                    prop_assert!(plan.cost.total <= alt.total + 1e-9 * alt.total.abs().max(1.0) || plan.method == Method::Heuristic);
                }
            }
            Err(e) => prop_assert!(
                matches!(e.kind(), ErrorKind::QuotaExceeded | ErrorKind::InvalidRequest),
                "{e}"
            ),
        }
    }
}

#[test]
fn brute_force_oracle_enumerates_every_composition() {
    assert_eq!(
        compositions(3, 2),
        vec![vec![0, 3], vec![1, 2], vec![2, 1], vec![3, 0]]
    );
    assert_eq!(compositions(40, 4).len() as u64, binom(43, 3));
}

#[test]
fn forty_vms_on_four_sites_match_the_brute_force() {
    // One group of 40 on 4 sites: 12,341 placements.
    for seed in 0..3 {
        let (topo, req) = generate(&GenParams {
            sites: 4,
            groups: 1,
            vms: 40,
            seed,
            constraints: false,
        });
        let obj = Objective::balanced(0.01);
        let plan = Planner::default()
            .with_budget(Duration::from_secs(60))
            .plan(&topo, &req, &obj)
            .unwrap();
        let (best, _) = brute_force(&topo, &req, &obj).unwrap();
        assert!(
            (plan.cost.total - best).abs() <= 1e-8 * best.max(1.0),
            "{plan}\n{best}"
        );
    }
}

#[test]
fn generated_small_instances_are_mostly_feasible_and_often_split() {
    // Keeps the brute-force property meaningful: most instances have a plan, and
    // many of those use several sites for one group.
    let (mut feasible, mut split, mut total) = (0, 0, 0);
    for seed in 0..120u64 {
        let sites = 1 + (seed % 4) as usize;
        let groups = 1 + (seed % 3) as usize;
        let (topo, req) = small_instance(sites, groups, 10 + (seed % 31) as u32, seed);
        total += 1;
        if let Ok(plan) = Planner::default().with_alternatives(false).plan(
            &topo,
            &req,
            &Objective::balanced(0.01),
        ) {
            feasible += 1;
            if plan.placement.values().any(|per| per.len() > 1) {
                split += 1;
            }
        }
    }
    println!("{feasible}/{total} feasible, {split} with a split group");
    assert!(feasible * 2 > total, "{feasible}/{total}");
    assert!(split * 5 > feasible, "{split}/{feasible}");
}

/// The bench's medium instances (`benches/benches/planner.rs`, `medium`).
fn medium(seed: u64) -> (Topology, ClusterRequest) {
    generate(&GenParams {
        sites: 4 + (seed % 2) as usize,
        groups: 3,
        vms: 30 + (seed % 5) as u32 * 15,
        seed,
        constraints: true,
    })
}

/// Medium instances where the heuristic alone once missed the optimum by far (seed 19
/// under `time`: 38 %, it used a site whose RTT set every latency term; 99: 11.6 %,
/// the store's best site set was unreachable by block moves; 73: 6 %, a co-located
/// master held the capacity the workers needed; 37 under `balanced`: 1.5 %). The
/// optima are the exact search's (`SearchMode::ExactOnly`, proved exhaustive); the
/// heuristic must now come within 1 %.
#[test]
fn heuristic_is_within_one_percent_on_its_former_failures() {
    for (seed, objective, optimum) in [
        (19, Objective::time(), 1.959_353_984_470_824_8),
        (99, Objective::time(), 1.757_256_431_942_278_3),
        (73, Objective::time(), 0.494_455_195_054_519_4),
        (37, Objective::balanced(0.01), 2.792_092_715_577_519),
    ] {
        let (topo, req) = medium(seed);
        let plan = Planner::default()
            .with_mode(SearchMode::HeuristicOnly)
            .with_alternatives(false)
            .with_budget(Duration::from_secs(30))
            .plan(&topo, &req, &objective)
            .expect("the instance is feasible");
        assert!(check(&topo, &req, &plan.placement).unwrap().is_empty());
        let total = evaluate(&topo, &req, &plan.placement, &objective)
            .unwrap()
            .total;
        assert!(
            total >= optimum * (1.0 - 1e-9),
            "seed {seed}: {total} beats the proved optimum {optimum}"
        );
        assert!(
            total <= optimum * 1.01,
            "seed {seed}: heuristic {total} is {:.2} % above the optimum {optimum}",
            (total / optimum - 1.0) * 100.0
        );
    }
}
