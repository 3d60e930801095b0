//! Reproduces the seed experiment with the planner's estimator.
//!
//! Two sites (Hokkaido, Tokyo) joined by a 1 Gbit/s VPN losing 21 % (0.79 Gbit/s
//! usable) with 20 ms RTT. Prints a Hadoop sort's time inside one site and across
//! both (≈ +10 %), a transactional workload's rate in both cases (it collapses), and
//! what the planner does with each.
//!
//! `cargo run -p intercloud-core --example seed_estimate`

use std::collections::BTreeMap;

use intercloud_core::model::{PlacementCounts, SiteId};
use intercloud_core::planner::estimate::{
    hadoop_sort_request, hadoop_sort_seconds, seed_topology, transaction_rate,
    transactional_request, SEED_BANDWIDTH_MBPS, SEED_RTT_MS, SEED_VPN_OVERHEAD,
    SORT_BYTES_PER_S_PER_VM, TXN_ROUND_TRIPS, TXN_SERVICE_S,
};
use intercloud_core::planner::{Objective, Planner};

fn placement(role: &str, per: &[(&str, u32)]) -> PlacementCounts {
    BTreeMap::from([(
        role.to_owned(),
        per.iter().map(|(s, c)| (SiteId::new(*s), *c)).collect(),
    )])
}

fn main() -> intercloud_core::Result<()> {
    let topo = seed_topology(16);
    println!(
        "seed testbed: hokkaido <-> tokyo, {SEED_BANDWIDTH_MBPS} Mbit/s nominal, {:.0} % VPN overhead ({:.0} Mbit/s usable), {SEED_RTT_MS} ms RTT",
        SEED_VPN_OVERHEAD * 100.0,
        SEED_BANDWIDTH_MBPS * (1.0 - SEED_VPN_OVERHEAD)
    );

    let bytes = 10e9;
    let sort = hadoop_sort_request(8, bytes);
    let one = hadoop_sort_seconds(&topo, &sort, &placement("worker", &[("hokkaido", 8)]))?;
    let two = hadoop_sort_seconds(
        &topo,
        &sort,
        &placement("worker", &[("hokkaido", 4), ("tokyo", 4)]),
    )?;
    println!(
        "\nHadoop sort of {:.0} GB on 8 workers (calibration: {:.1} MB/s sorted per worker)",
        bytes / 1e9,
        SORT_BYTES_PER_S_PER_VM / 1e6
    );
    println!(
        "  one site      : compute {:7.1} s + shuffle {:6.1} s = {:7.1} s",
        one.compute_s, one.communication_s, one.total_s
    );
    println!(
        "  4 + 4 sites   : compute {:7.1} s + shuffle {:6.1} s = {:7.1} s",
        two.compute_s, two.communication_s, two.total_s
    );
    println!(
        "  across sites  : {:+.1} % (seed: about +10 %)",
        (two.total_s / one.total_s - 1.0) * 100.0
    );

    let txn = transactional_request(2);
    let local = transaction_rate(&topo, &txn, &placement("db", &[("hokkaido", 2)]))?;
    let split = transaction_rate(
        &topo,
        &txn,
        &placement("db", &[("hokkaido", 1), ("tokyo", 1)]),
    )?;
    println!(
        "\ntransactions ({TXN_ROUND_TRIPS} sequential round trips + {:.1} ms local work each)",
        TXN_SERVICE_S * 1e3
    );
    println!("  one site      : {local:7.1} tx/s per client");
    println!(
        "  across sites  : {split:7.1} tx/s per client ({:.0}× slower: the rate collapses)",
        local / split
    );

    println!("\nwhat the planner does (objective: time):");
    let planner = Planner::default();
    let plan = planner.plan(&topo, &sort, &Objective::time())?;
    println!("{plan}");
    let mut spread = sort.clone();
    spread.spread.survive_site_loss = Some(0.5);
    let plan = planner.plan(&topo, &spread, &Objective::time())?;
    println!("with survive_site_loss = 0.5:\n{plan}");
    Ok(())
}
