//! Planner scenarios: the seed reproduction, errors, the JSON contract, constraints.

use std::collections::BTreeMap;
use std::time::Duration;

use intercloud_core::model::{
    ClusterRequest, LevelOffering, Link, Middleware, NodeGroup, PlacementCounts, Profile,
    ServiceLevel, Site, SiteId, Spread, Topology, Traffic, TrafficPattern,
};
use intercloud_core::planner::estimate::{
    hadoop_sort_request, hadoop_sort_seconds, seed_topology, transaction_rate,
    transactional_request,
};
use intercloud_core::planner::{
    check, evaluate, Constraint, Method, Objective, Planner, Proof, SearchMode,
};
use intercloud_core::{ErrorClass, ErrorKind};

fn counts(groups: &[(&str, &[(&str, u32)])]) -> PlacementCounts {
    groups
        .iter()
        .map(|(g, per)| {
            (
                (*g).to_owned(),
                per.iter().map(|(s, c)| (SiteId::new(*s), *c)).collect(),
            )
        })
        .collect()
}

fn site(id: &str, levels: &[(&str, f64, u32)]) -> Site {
    Site {
        id: SiteId::new(id),
        middleware: Middleware::CloudStack,
        endpoint: format!("https://{id}.example.invalid/api"),
        zone: None,
        levels: levels
            .iter()
            .map(|(l, price, cap)| {
                (
                    ServiceLevel::new(*l),
                    LevelOffering {
                        offering: format!("{l}-offering"),
                        image: None,
                        price_per_hour: *price,
                        capacity: *cap,
                    },
                )
            })
            .collect(),
        rate_limit: None,
        max_concurrency: None,
    }
}

fn link(a: &str, b: &str, rtt_ms: f64, mbps: f64) -> Link {
    Link {
        between: [SiteId::new(a), SiteId::new(b)],
        rtt_ms,
        bandwidth_mbps: mbps,
        vpn_overhead: 0.21,
    }
}

fn group(role: &str, count: u32, level: &str) -> NodeGroup {
    NodeGroup {
        role: role.into(),
        count,
        level: ServiceLevel::new(level),
        colocate: false,
        traffic: None,
        sites: None,
        max_rtt_ms: None,
    }
}

fn request(groups: Vec<NodeGroup>) -> ClusterRequest {
    ClusterRequest {
        name: "demo".into(),
        profile: Profile::None,
        groups,
        spread: Spread::default(),
        vpn: Default::default(),
    }
}

fn planner() -> Planner {
    Planner::default().with_budget(Duration::from_secs(30))
}

#[test]
fn seed_hadoop_sort_across_both_sites_is_about_ten_percent_slower() {
    let topo = seed_topology(16);
    let req = hadoop_sort_request(8, 10e9);
    let one = hadoop_sort_seconds(&topo, &req, &counts(&[("worker", &[("hokkaido", 8)])])).unwrap();
    let two = hadoop_sort_seconds(
        &topo,
        &req,
        &counts(&[("worker", &[("hokkaido", 4), ("tokyo", 4)])]),
    )
    .unwrap();
    let slowdown = two.total_s / one.total_s - 1.0;
    println!(
        "one site {one:?}\ntwo sites {two:?}\nslowdown {:.1} %",
        slowdown * 100.0
    );
    assert!((0.08..=0.12).contains(&slowdown), "slowdown {slowdown}");
    // The shuffle across the 0.79 Gbit/s link: 2.5 GB each way at 98.75 MB/s.
    assert!(
        (two.communication_s - (25.3165 + 0.32)).abs() < 0.01,
        "{two:?}"
    );
    // The slowdown does not depend on the data size (both parts scale with it).
    let big = hadoop_sort_request(8, 100e9);
    let b1 = hadoop_sort_seconds(&topo, &big, &counts(&[("worker", &[("hokkaido", 8)])])).unwrap();
    let b2 = hadoop_sort_seconds(
        &topo,
        &big,
        &counts(&[("worker", &[("hokkaido", 4), ("tokyo", 4)])]),
    )
    .unwrap();
    assert!(((b2.total_s / b1.total_s - 1.0) - slowdown).abs() < 0.005);
}

#[test]
fn seed_transaction_rate_collapses_across_sites() {
    let topo = seed_topology(16);
    let req = transactional_request(2);
    let local = transaction_rate(&topo, &req, &counts(&[("db", &[("hokkaido", 2)])])).unwrap();
    let split = transaction_rate(
        &topo,
        &req,
        &counts(&[("db", &[("hokkaido", 1), ("tokyo", 1)])]),
    )
    .unwrap();
    println!(
        "local {local:.1} tx/s, across {split:.1} tx/s, ratio {:.3}",
        split / local
    );
    assert!(local > 500.0 && local < 600.0, "{local}");
    assert!(split < 13.0, "{split}");
    assert!(split / local < 0.05);
}

#[test]
fn planner_keeps_the_sort_on_one_site_unless_availability_forces_a_split() {
    let topo = seed_topology(16);
    let req = hadoop_sort_request(8, 10e9);
    let plan = planner().plan(&topo, &req, &Objective::time()).unwrap();
    assert_eq!(plan.placement["worker"].len(), 1, "{plan}");
    assert_eq!(plan.method, Method::Optimal);
    let mut spread = req.clone();
    spread.spread.survive_site_loss = Some(0.5);
    let plan = planner().plan(&topo, &spread, &Objective::time()).unwrap();
    assert_eq!(
        plan.placement["worker"],
        BTreeMap::from([(SiteId::new("hokkaido"), 4), (SiteId::new("tokyo"), 4)])
    );
    assert!(plan
        .binding
        .iter()
        .any(|b| b.constraint == Constraint::SurviveSiteLoss));
}

#[test]
fn capacity_shortfall_names_the_level_the_sites_and_the_gap() {
    let topo = Topology::new(
        [
            site("hokkaido", &[("L", 0.1, 800)]),
            site("tokyo", &[("L", 0.1, 440)]),
        ],
        vec![link("hokkaido", "tokyo", 20.0, 1000.0)],
    );
    let req = request(vec![group("worker", 2000, "L")]);
    let err = planner()
        .plan(&topo, &req, &Objective::money())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(
        err.message(),
        "capacity: need 2,000 × L, the federation can host 1,240: hokkaido 800, tokyo 440 (short by 760)"
    );
    // Machine-readable: the constraint, and a class a front end acts on (the
    // request must change, though the kind is the cloud's `QuotaExceeded`).
    assert_eq!(err.constraints(), &[Constraint::Capacity]);
    assert_eq!(err.class(), ErrorClass::UserInput);
}

#[test]
fn colocated_group_larger_than_any_site_is_refused_with_the_largest_site() {
    let topo = Topology::new(
        [site("a", &[("L", 0.1, 2)]), site("b", &[("L", 0.1, 3)])],
        vec![link("a", "b", 5.0, 1000.0)],
    );
    let mut g = group("master", 4, "L");
    g.colocate = true;
    let err = planner()
        .plan(&topo, &request(vec![g]), &Objective::money())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    assert!(err.message().starts_with("colocate: group master"), "{err}");
    assert_eq!(err.constraints(), &[Constraint::Colocate]);
    assert!(
        err.message().contains("b, can host 3 (short by 1)"),
        "{err}"
    );
}

#[test]
fn pin_to_unknown_site_and_impossible_spread_are_invalid_requests() {
    let topo = Topology::new([site("a", &[("S", 0.1, 10)])], vec![]);
    let mut g = group("worker", 2, "S");
    g.sites = Some(vec![SiteId::new("nowhere")]);
    let err = planner()
        .plan(&topo, &request(vec![g]), &Objective::money())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.message().contains("site nowhere,"), "{err}");
    assert!(!err.message().contains("SiteId"), "{err}");
    assert_eq!(err.constraints(), &[Constraint::Pinning]);
    assert_eq!(err.class(), ErrorClass::UserInput);

    let mut req = request(vec![group("worker", 2, "S")]);
    req.spread.min_sites = 2;
    let err = planner()
        .plan(&topo, &req, &Objective::money())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.message().starts_with("min-sites:"), "{err}");
    assert_eq!(err.constraints(), &[Constraint::MinSites]);
}

#[test]
fn constraints_that_fail_only_together_are_all_named() {
    // Pinned to two sites of 3 each, and at most 2 per site to survive a loss.
    let topo = Topology::new(
        [
            site("a", &[("S", 0.1, 3)]),
            site("b", &[("S", 0.1, 3)]),
            site("c", &[("S", 0.1, 30)]),
        ],
        vec![
            link("a", "b", 5.0, 1000.0),
            link("a", "c", 5.0, 1000.0),
            link("b", "c", 5.0, 1000.0),
        ],
    );
    let mut g = group("worker", 5, "S");
    g.sites = Some(vec![SiteId::new("a"), SiteId::new("b")]);
    let mut req = request(vec![g]);
    req.spread.survive_site_loss = Some(0.5);
    let err = planner()
        .plan(&topo, &req, &Objective::money())
        .unwrap_err();
    assert!(
        err.message().starts_with("pinning + survive-site-loss:"),
        "{err}"
    );
    assert_eq!(
        err.constraints(),
        &[Constraint::Pinning, Constraint::SurviveSiteLoss]
    );
    assert_eq!(err.class(), ErrorClass::UserInput);
}

#[test]
fn rtt_limit_that_no_capacity_meets_is_named() {
    let topo = Topology::new(
        [site("a", &[("S", 0.1, 6)]), site("b", &[("S", 0.1, 6)])],
        vec![link("a", "b", 20.0, 1000.0)],
    );
    let mut g = group("worker", 10, "S");
    g.max_rtt_ms = Some(5.0);
    let err = planner()
        .plan(&topo, &request(vec![g]), &Objective::money())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.message().starts_with("max-rtt:"), "{err}");
    assert_eq!(err.constraints(), &[Constraint::MaxRtt]);
}

#[test]
fn vpn_bandwidth_shortfall_names_the_link_and_its_usable_bandwidth() {
    // The seed portal's request: pinned to two sites whose link has 790 Mbit/s usable.
    let topo = Topology::new(
        [
            site("hokkaido", &[("S", 0.1, 10)]),
            site("nii", &[("L", 0.2, 10)]),
        ],
        vec![link("hokkaido", "nii", 20.0, 1000.0)],
    );
    let mut small = group("small", 3, "S");
    small.sites = Some(vec![SiteId::new("hokkaido")]);
    let mut large = group("large", 2, "L");
    large.sites = Some(vec![SiteId::new("nii")]);
    let mut req = request(vec![small, large]);
    req.vpn.bandwidth_mbps = Some(1000.0);
    let err = planner()
        .plan(&topo, &req, &Objective::money())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    let m = err.message();
    assert!(m.starts_with("vpn-bandwidth:"), "{m}");
    assert_eq!(err.constraints(), &[Constraint::VpnBandwidth]);
    assert!(m.contains("hokkaido <-> nii (790 Mbit/s usable)"), "{m}");
    assert!(m.contains("vpn.bandwidth_mbps = 1000"), "{m}");
    req.vpn.bandwidth_mbps = Some(790.0);
    assert!(planner().plan(&topo, &req, &Objective::money()).is_ok());
}

#[test]
fn fixed_placement_far_above_the_request_reports_no_wrapped_numbers() {
    let topo = Topology::new([site("a", &[("S", 0.1, 10)])], vec![]);
    let mut req = request(vec![group("worker", 4, "S")]);
    req.spread.survive_site_loss = Some(0.5);
    let v = check(&topo, &req, &counts(&[("worker", &[("a", 4000)])])).unwrap();
    let text: Vec<&str> = v.iter().map(|v| v.message.as_str()).collect();
    assert!(
        text.iter().all(|m| !m.contains("4294")),
        "no u32 wrap-around: {text:#?}"
    );
    assert!(
        text.iter()
            .any(|m| m.contains("can host 10 (3990 more than capacity)")),
        "{text:#?}"
    );
    assert!(
        text.iter().any(|m| m.contains("losing it leaves 0")),
        "{text:#?}"
    );
}

#[test]
fn unlinked_sites_are_never_used_together() {
    let topo = Topology::new(
        [site("a", &[("S", 0.1, 6)]), site("b", &[("S", 0.1, 6)])],
        vec![],
    );
    let err = planner()
        .plan(
            &topo,
            &request(vec![group("worker", 10, "S")]),
            &Objective::money(),
        )
        .unwrap_err();
    assert!(err.message().starts_with("link:"), "{err}");
    let v = check(
        &topo,
        &request(vec![group("worker", 10, "S")]),
        &counts(&[("worker", &[("a", 5), ("b", 5)])]),
    )
    .unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].constraint, Constraint::Link);
}

fn tradeoff() -> (Topology, ClusterRequest) {
    // "far" is cheap but 60 ms and 100 Mbit/s away; "near" is dear.
    let topo = Topology::new(
        [
            site("near", &[("S", 0.10, 10), ("L", 0.3, 1)]),
            site("far", &[("S", 0.02, 10)]),
        ],
        vec![link("near", "far", 60.0, 100.0)],
    );
    let mut master = group("master", 1, "L");
    master.colocate = true;
    let mut worker = group("worker", 6, "S");
    worker.traffic = Some(Traffic {
        pattern: TrafficPattern::Hub,
        bytes_per_job: 5e9,
        rounds_per_job: Some(10.0),
    });
    (topo, request(vec![master, worker]))
}

#[test]
fn alternatives_show_the_money_time_trade_off() {
    let (topo, req) = tradeoff();
    let plan = planner()
        .plan(&topo, &req, &Objective::balanced(0.001))
        .unwrap();
    let alt = |n: &str| plan.alternatives.iter().find(|a| a.name == n).unwrap();
    assert_eq!(plan.alternatives.len(), 3);
    assert_eq!(
        alt("cheapest").placement["worker"],
        BTreeMap::from([(SiteId::new("far"), 6)])
    );
    assert_eq!(
        alt("fastest").placement["worker"],
        BTreeMap::from([(SiteId::new("near"), 6)])
    );
    assert!(alt("cheapest").money_per_hour < alt("fastest").money_per_hour);
    assert!(alt("cheapest").communication_s > alt("fastest").communication_s);
    // The plan is at least as good as each alternative under its own objective.
    for a in &plan.alternatives {
        assert!(plan.cost.total <= a.total + 1e-9, "{plan}");
    }
    // Hub traffic: 5 GB from far to near over 79 Mbit/s usable.
    let cheap = evaluate(&topo, &req, &alt("cheapest").placement, &Objective::time()).unwrap();
    assert!((cheap.terms[0].bandwidth_s - 5e9 * 8.0 / 79e6).abs() < 1e-6);
    assert!((cheap.terms[0].latency_s - 0.6).abs() < 1e-9);
}

#[test]
fn plan_json_has_the_cli_contract_shape() {
    let (topo, req) = tradeoff();
    let plan = planner().plan(&topo, &req, &Objective::money()).unwrap();
    let v = serde_json::to_value(&plan).unwrap();
    assert_eq!(v["cluster"], "demo");
    assert_eq!(v["placement"]["master"]["near"], 1);
    assert_eq!(v["placement"]["worker"]["far"], 6);
    assert!(v["cost"]["total"].is_number());
    assert!((v["cost"]["money_per_hour"].as_f64().unwrap() - 0.42).abs() < 1e-9);
    assert!(v["cost"]["communication_s"].as_f64().unwrap() > 500.0);
    assert_eq!(v["cost"]["terms"][0]["group"], "worker");
    assert_eq!(v["method"], "optimal");
    assert_eq!(v["gap"], 0.0);
    assert!(v["binding"].is_array());
    assert_eq!(v["alternatives"].as_array().unwrap().len(), 3);
    assert_eq!(v["alternatives"][1]["name"], "fastest");
    // And the placement round-trips as the `plan --fixed` input.
    let fixed: PlacementCounts = serde_json::from_value(v["placement"].clone()).unwrap();
    assert!(check(&topo, &req, &fixed).unwrap().is_empty());
}

#[test]
fn explain_prints_the_formula_with_its_figures() {
    let (topo, req) = tradeoff();
    let plan = planner()
        .plan(&topo, &req, &Objective::balanced(0.001))
        .unwrap();
    let text = plan.to_string();
    println!("{text}");
    assert!(text.contains("plan for cluster demo: optimal"));
    assert!(text.contains("λ = 0.001 money/s"));
    assert!(text.contains("M·f_s·h_t / B_st"));
    assert!(text.contains(&format!("{:.6}", plan.cost.total)));
    assert!(text.contains("alternatives"));
}

#[test]
fn check_names_each_broken_constraint() {
    let topo = Topology::new(
        [
            site("a", &[("S", 0.1, 4), ("L", 0.2, 1)]),
            site("b", &[("S", 0.1, 10)]),
            site("c", &[("S", 0.1, 10)]),
        ],
        vec![
            link("a", "b", 30.0, 1000.0),
            link("a", "c", 5.0, 1000.0),
            link("b", "c", 5.0, 1000.0),
        ],
    );
    let mut master = group("master", 2, "S");
    master.colocate = true;
    let mut worker = group("worker", 8, "S");
    worker.max_rtt_ms = Some(10.0);
    worker.sites = Some(vec![SiteId::new("a"), SiteId::new("b")]);
    let mut req = request(vec![master, worker]);
    req.spread.survive_site_loss = Some(0.5);
    req.spread.min_sites = 3;
    let bad = counts(&[
        ("master", &[("a", 1), ("b", 1)]),
        ("worker", &[("a", 4), ("b", 2), ("c", 3)]),
    ]);
    let v = check(&topo, &req, &bad).unwrap();
    let kinds: Vec<Constraint> = v.iter().map(|v| v.constraint).collect();
    for k in [
        Constraint::Demand,
        Constraint::Colocate,
        Constraint::Pinning,
        Constraint::MaxRtt,
        Constraint::Capacity,
    ] {
        assert!(kinds.contains(&k), "{k} missing from {v:#?}");
    }
    let bad = counts(&[("master", &[("c", 2)]), ("worker", &[("b", 6), ("a", 2)])]);
    let v = check(&topo, &req, &bad).unwrap();
    let kinds: Vec<Constraint> = v.iter().map(|v| v.constraint).collect();
    assert!(kinds.contains(&Constraint::SurviveSiteLoss), "{v:#?}");
    assert!(kinds.contains(&Constraint::MaxRtt), "{v:#?}");
    assert!(!kinds.contains(&Constraint::MinSites), "{v:#?}");
    // The planner's answer breaks nothing.
    let mut ok = req.clone();
    ok.groups[1].max_rtt_ms = None;
    let plan = planner().plan(&topo, &ok, &Objective::money()).unwrap();
    assert!(
        check(&topo, &ok, &plan.placement).unwrap().is_empty(),
        "{plan}"
    );
}

#[test]
fn evaluate_refuses_placements_it_cannot_read() {
    let (topo, req) = tradeoff();
    let o = Objective::money();
    let e = evaluate(
        &topo,
        &req,
        &counts(&[("master", &[("near", 1)]), ("worker", &[("mars", 6)])]),
        &o,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(e.message().contains("mars"));
    let e = evaluate(
        &topo,
        &req,
        &counts(&[("master", &[("near", 1)]), ("worker", &[("far", 5)])]),
        &o,
    )
    .unwrap_err();
    assert!(e.message().contains("5 VMs of group \"worker\""), "{e}");
    let e = evaluate(&topo, &req, &counts(&[("boss", &[("near", 1)])]), &o).unwrap_err();
    assert!(e.message().contains("boss"));
    let e = Planner::default()
        .plan(&topo, &req, &Objective::balanced(-1.0))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
}

#[test]
fn shared_capacity_of_one_level_is_respected_across_groups() {
    let topo = Topology::new(
        [
            site("cheap", &[("S", 0.01, 5)]),
            site("dear", &[("S", 0.05, 20)]),
        ],
        vec![link("cheap", "dear", 2.0, 10000.0)],
    );
    let req = request(vec![group("a", 4, "S"), group("b", 4, "S")]);
    let plan = planner().plan(&topo, &req, &Objective::money()).unwrap();
    let on_cheap: u32 = plan.placement.values().filter_map(|p| p.get("cheap")).sum();
    assert_eq!(on_cheap, 5, "{plan}");
    assert!((plan.cost.money_per_hour - (5.0 * 0.01 + 3.0 * 0.05)).abs() < 1e-9);
    assert!(plan
        .binding
        .iter()
        .any(|b| b.constraint == Constraint::Capacity));
}

#[test]
fn large_instance_is_planned_heuristically_within_budget_with_a_gap() {
    use intercloud_core::planner::generate::{generate, GenParams};
    let (topo, req) = generate(&GenParams {
        sites: 10,
        groups: 3,
        vms: 2000,
        seed: 7,
        constraints: false,
    });
    let p = Planner::default()
        .with_budget(Duration::from_secs(20))
        .with_alternatives(false);
    let plan = p.plan(&topo, &req, &Objective::balanced(0.01)).unwrap();
    assert!(check(&topo, &req, &plan.placement).unwrap().is_empty());
    assert!(!plan.search.exact_attempted);
    assert!(plan.gap >= 0.0 && plan.gap < 1.0, "{plan}");
    if plan.method == Method::Optimal {
        assert_eq!(plan.proof, Some(Proof::LowerBound));
    }
    let again = p.plan(&topo, &req, &Objective::balanced(0.01)).unwrap();
    assert_eq!(plan.placement, again.placement, "deterministic");
    let heur = Planner::default()
        .with_mode(SearchMode::HeuristicOnly)
        .with_alternatives(false)
        .plan(&topo, &req, &Objective::money())
        .unwrap();
    assert!(check(&topo, &req, &heur.placement).unwrap().is_empty());
}

/// The `time` objective's lower bound on a large instance: a latency-bound group
/// that must split (the fewest sites its caps allow and their bandwidth classes)
/// and a hub group around a co-located master (a water level per master site) bound
/// the plan within a few per cent, where the per-group bound alone said 81 %.
#[test]
fn time_lower_bound_is_informative_on_a_large_instance() {
    use intercloud_core::planner::generate::{generate, GenParams};
    let (topo, req) = generate(&GenParams {
        sites: 10,
        groups: 3,
        vms: 2000,
        seed: 2,
        constraints: false,
    });
    let plan = Planner::default()
        .with_budget(Duration::from_secs(20))
        .with_alternatives(false)
        .plan(&topo, &req, &Objective::time())
        .unwrap();
    assert!(plan.lower_bound <= plan.cost.total);
    assert!(plan.gap < 0.05, "gap {:.1} %\n{plan}", plan.gap * 100.0);
}

#[test]
fn halo_and_latency_bound_terms_follow_their_formulas() {
    let topo = Topology::new(
        [
            site("a", &[("S", 0.1, 10)]),
            site("b", &[("S", 0.1, 10)]),
            site("c", &[("S", 0.1, 10)]),
        ],
        vec![
            link("a", "b", 10.0, 1000.0),
            link("b", "c", 30.0, 10000.0),
            link("a", "c", 25.0, 2500.0),
        ],
    );
    let mut halo = group("mpi", 9, "S");
    halo.traffic = Some(Traffic {
        pattern: TrafficPattern::Halo,
        bytes_per_job: 1e9,
        rounds_per_job: Some(100.0),
    });
    let mut txn = group("db", 2, "S");
    txn.traffic = Some(Traffic {
        pattern: TrafficPattern::LatencyBound,
        bytes_per_job: 0.0,
        rounds_per_job: Some(50.0),
    });
    let req = request(vec![halo, txn]);
    let p = counts(&[
        ("mpi", &[("a", 3), ("b", 3), ("c", 3)]),
        ("db", &[("a", 1), ("c", 1)]),
    ]);
    let c = evaluate(&topo, &req, &p, &Objective::time()).unwrap();
    // Halo: 2 cut boundaries × 1 GB over the slowest link (a-b, 790 Mbit/s usable),
    // 100 rounds × the largest RTT (30 ms).
    let slow = 8.0 / (1000.0 * 0.79 * 1e6);
    assert!(
        (c.terms[0].bandwidth_s - 2.0 * 1e9 * slow).abs() < 1e-9,
        "{c}"
    );
    assert!((c.terms[0].latency_s - 3.0).abs() < 1e-9);
    // Latency-bound: 50 sequential round trips × 25 ms.
    assert!((c.terms[1].latency_s - 1.25).abs() < 1e-9);
    assert!((c.communication_s - (c.terms[0].seconds + c.terms[1].seconds)).abs() < 1e-12);
    assert_eq!(c.unit, "s");
    // The planner keeps both on one site when it can.
    let plan = planner().plan(&topo, &req, &Objective::time()).unwrap();
    assert!(plan.cost.communication_s < 0.9, "{plan}");
}

#[test]
fn objective_kinds_parse_from_the_command_line_names() {
    use intercloud_core::planner::ObjectiveKind;
    for k in [
        ObjectiveKind::Money,
        ObjectiveKind::Time,
        ObjectiveKind::Balanced,
    ] {
        assert_eq!(k.as_str().parse::<ObjectiveKind>().unwrap(), k);
    }
    let e = "fast".parse::<ObjectiveKind>().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(e.message().contains("money, time or balanced"));
}
