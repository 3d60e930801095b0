//! Job estimates on top of the communication model, calibrated on the seed testbed.
//!
//! The reference experiment: Hokkaido (CloudStack) and Tokyo (NII) joined by an L2VPN,
//! 1 Gbit/s nominal with 21 % lost through the VPN (0.79 Gbit/s usable) and ~20 ms
//! RTT. A Hadoop job across both sites ran ~10 % slower than inside one site, while
//! transactional workloads degraded badly. This module turns the planner's
//! `communication_s` into those two figures.
//!
//! **Hadoop sort.** `job_s = compute_s + communication_s`, with
//! `compute_s = bytes / (workers × SORT_BYTES_PER_S_PER_VM)` and `communication_s`
//! the planner's all-to-all term for a shuffle of `bytes` in
//! [`SORT_SHUFFLE_ROUNDS`] fetch waves. [`SORT_BYTES_PER_S_PER_VM`] is the one
//! calibrated constant: chosen so the seed's 8-worker sort, split 4 + 4, is ≈ 10 %
//! slower than on one site. Compute and shuffle both scale with the bytes sorted, so
//! the slowdown does not depend on the data size; it grows with the share of the
//! shuffle crossing the WAN and with the workers' speed. The HDFS output write (one
//! replica crosses the WAN when rack = site) is folded into that constant.
//!
//! **Transactions.** A transaction is [`TXN_ROUND_TRIPS`] sequential round trips
//! between the nodes of a `latency-bound` group (e.g. lock, prepare, commit and
//! acknowledge in a two-phase commit) plus [`TXN_SERVICE_S`] of local work, so one
//! client's rate is `1 / (TXN_SERVICE_S + communication_s)`. Both constants are
//! assumptions, not fitted: the seed gives no transactional figure beyond "much
//! slower".

use std::collections::BTreeMap;

use super::objective::Objective;
use crate::model::{
    ClusterRequest, LevelOffering, Link, Middleware, NodeGroup, PlacementCounts, ServiceLevel,
    Site, SiteId, Spread, Topology, Traffic, TrafficPattern,
};
use crate::Result;

/// The seed's RTT between Hokkaido and Tokyo, ms.
pub const SEED_RTT_MS: f64 = 20.0;
/// The seed's nominal bandwidth, Mbit/s.
pub const SEED_BANDWIDTH_MBPS: f64 = 1000.0;
/// The seed's VPN overhead (0.79 Gbit/s usable).
pub const SEED_VPN_OVERHEAD: f64 = 0.21;
/// Bytes one worker sorts per second, shuffle aside: the calibrated constant.
pub const SORT_BYTES_PER_S_PER_VM: f64 = 7.4e6;
/// Shuffle fetch waves per sort job: maps / `mapreduce.reduce.shuffle.parallelcopies`
/// (default 5), for 80 map tasks.
pub const SORT_SHUFFLE_ROUNDS: f64 = 16.0;
/// Sequential round trips per transaction.
pub const TXN_ROUND_TRIPS: f64 = 4.0;
/// Local work per transaction, seconds.
pub const TXN_SERVICE_S: f64 = 0.001;
/// Bytes a transaction moves.
pub const TXN_BYTES: f64 = 4096.0;

fn site(id: &str, middleware: Middleware, capacity: u32) -> Site {
    let level = |price: f64| LevelOffering {
        offering: "Small Instance".into(),
        image: None,
        price_per_hour: price,
        capacity,
    };
    Site {
        id: SiteId::new(id),
        middleware,
        endpoint: format!("https://{id}.example.invalid/api"),
        zone: None,
        levels: BTreeMap::from([
            (ServiceLevel::new("S"), level(0.02)),
            (ServiceLevel::new("L"), level(0.08)),
        ]),
        rate_limit: None,
        max_concurrency: None,
    }
}

/// The seed testbed: `hokkaido` and `tokyo`, levels `S` and `L` with `capacity` VMs
/// each, one 1 Gbit/s link with 21 % VPN overhead and 20 ms RTT.
pub fn seed_topology(capacity: u32) -> Topology {
    Topology::new(
        [
            site("hokkaido", Middleware::CloudStack, capacity),
            site("tokyo", Middleware::OpenNebula, capacity),
        ],
        vec![Link {
            between: [SiteId::new("hokkaido"), SiteId::new("tokyo")],
            rtt_ms: SEED_RTT_MS,
            bandwidth_mbps: SEED_BANDWIDTH_MBPS,
            vpn_overhead: SEED_VPN_OVERHEAD,
        }],
    )
}

fn group(role: &str, count: u32, traffic: Traffic) -> NodeGroup {
    NodeGroup {
        role: role.into(),
        count,
        level: ServiceLevel::new("S"),
        colocate: false,
        traffic: Some(traffic),
        sites: None,
        max_rtt_ms: None,
    }
}

/// A Hadoop sort of `bytes` on `workers` workers (all-to-all shuffle of `bytes`).
pub fn hadoop_sort_request(workers: u32, bytes: f64) -> ClusterRequest {
    ClusterRequest {
        name: "hadoop-sort".into(),
        profile: crate::model::Profile::Hadoop,
        groups: vec![group(
            "worker",
            workers,
            Traffic {
                pattern: TrafficPattern::AllToAll,
                bytes_per_job: bytes,
                rounds_per_job: Some(SORT_SHUFFLE_ROUNDS),
            },
        )],
        spread: Spread::default(),
        vpn: Default::default(),
    }
}

/// A replicated transactional store on `nodes` nodes (latency-bound).
pub fn transactional_request(nodes: u32) -> ClusterRequest {
    ClusterRequest {
        name: "txn".into(),
        profile: crate::model::Profile::Hosts,
        groups: vec![group(
            "db",
            nodes,
            Traffic {
                pattern: TrafficPattern::LatencyBound,
                bytes_per_job: TXN_BYTES,
                rounds_per_job: Some(TXN_ROUND_TRIPS),
            },
        )],
        spread: Spread::default(),
        vpn: Default::default(),
    }
}

/// A job's estimated duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobEstimate {
    /// Compute (and local I/O), seconds.
    pub compute_s: f64,
    /// Communication as the planner estimates it, seconds.
    pub communication_s: f64,
    /// The sum, seconds.
    pub total_s: f64,
}

/// The duration of the sort of [`hadoop_sort_request`] under `placement`.
///
/// # Errors
/// As [`super::evaluate`].
pub fn hadoop_sort_seconds(
    topology: &Topology,
    request: &ClusterRequest,
    placement: &PlacementCounts,
) -> Result<JobEstimate> {
    let cost = super::evaluate(topology, request, placement, &Objective::time())?;
    let workers: f64 = request.groups.iter().map(|g| f64::from(g.count)).sum();
    let bytes: f64 = request
        .groups
        .iter()
        .filter_map(|g| g.traffic.as_ref())
        .map(|t| t.bytes_per_job)
        .sum();
    let compute_s = bytes / (workers * SORT_BYTES_PER_S_PER_VM);
    Ok(JobEstimate {
        compute_s,
        communication_s: cost.communication_s,
        total_s: compute_s + cost.communication_s,
    })
}

/// Transactions per second one client gets from [`transactional_request`] under
/// `placement`.
///
/// # Errors
/// As [`super::evaluate`].
pub fn transaction_rate(
    topology: &Topology,
    request: &ClusterRequest,
    placement: &PlacementCounts,
) -> Result<f64> {
    let cost = super::evaluate(topology, request, placement, &Objective::time())?;
    Ok(1.0 / (TXN_SERVICE_S + cost.communication_s))
}
