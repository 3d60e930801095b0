//! The seed experiment's scale through the CLI (issue #25): `intercloud up` deploys a
//! 2,000-node Hadoop cluster over the simulator's three sites (CloudStack,
//! OpenNebula, EC2) with a WireGuard overlay, every node running, and `down` leaves
//! no VM, as the clouds' own APIs list them.
//!
//! Before the compact user data (`intercloud_vpn::cluster`, "User data of constant
//! size") every node of such a cluster carried the whole membership, over
//! CloudStack's and EC2's user-data limits, and every node came out `missing`. The
//! simulator refuses user data over each middleware's limit as the clouds do.
//!
//! Sized for CI: time scale 0.002 (a 5 s boot lasts 10 ms), a few minutes of wall
//! time in a debug build on two cores; the time is printed.

mod common;

use std::time::Instant;

use common::{alive, cli, hadoop_cluster, start_sim_with};

const WORKERS: usize = 1999;
const NODES: usize = WORKERS + 1;

#[test]
fn two_thousand_node_hadoop_cluster_deploys_and_goes_away() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    // The seed federation, each site able to hold the whole cluster.
    let mut cfg = intercloud_sim::FederationConfig::seed_default();
    for site in &mut cfg.sites {
        for o in &mut site.offerings {
            o.capacity = o.capacity.max(NODES as u32);
        }
    }
    let config = dir.path().join("sim.toml");
    std::fs::write(&config, toml::to_string(&cfg).unwrap()).unwrap();
    let sim = start_sim_with(dir.path(), "0.002", Some(&config));
    let state = dir.path().join("state");
    let file = dir.path().join("cluster.toml");
    std::fs::write(&file, hadoop_cluster("hadoop-2k", WORKERS)).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();

    let t0 = Instant::now();
    let (code, doc, err) = cli(&sim, &state, &["up", "-f", file.to_str().unwrap()]);
    let up_s = t0.elapsed().as_secs_f64();
    let nodes = doc["nodes"].as_array().cloned().unwrap_or_default();
    let missing: Vec<_> = nodes
        .iter()
        .filter(|n| n["state"] != "running")
        .take(5)
        .collect();
    assert_eq!(
        code,
        0,
        "up failed ({} nodes, e.g. not running: {missing:?}):\n{}",
        nodes.len(),
        &err[err.len().saturating_sub(4000)..]
    );
    assert_eq!(doc["result"], "ok");
    assert_eq!(nodes.len(), NODES);
    assert!(missing.is_empty(), "{missing:?}");
    let sites: std::collections::BTreeSet<_> =
        nodes.iter().filter_map(|n| n["site"].as_str()).collect();
    assert_eq!(sites.len(), 3, "{sites:?}");
    let listed = alive(&sim, &rt, "hadoop-2k");
    // the nodes plus nothing else: one VM per node (gateways are nodes)
    assert_eq!(listed.len(), NODES, "VMs the clouds list");

    let t1 = Instant::now();
    let (code, doc, err) = cli(&sim, &state, &["down", "-c", "hadoop-2k"]);
    let down_s = t1.elapsed().as_secs_f64();
    assert_eq!(code, 0, "down failed: {err}\n{doc}");
    assert_eq!(doc["remaining"], 0, "{doc}");
    let left = alive(&sim, &rt, "hadoop-2k");
    assert!(left.is_empty(), "{} VMs left after down", left.len());
    println!(
        "scale: {NODES} nodes over {sites:?}: up {up_s:.1} s, down {down_s:.1} s, test {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
