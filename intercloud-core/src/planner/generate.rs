//! Random but reproducible planner instances, for property tests and benchmarks
//! (feature `testkit`).
//!
//! Sites sit on a 1,500 × 1,500 km plane; the RTT between two sites is the SINET-like
//! estimate `2 ms + 0.0127 ms/km × 1.7 × distance` (fibre at 4.9 ms per 1,000 km
//! one way, routes 1.3× the straight line, measured RTTs 1.6–1.9× that floor), so RTTs
//! obey the triangle inequality up to the constant. Links are 1, 2.5 or 10 Gbit/s
//! with 21 % VPN overhead. Prices vary ±50 % per site around S = 0.02, M = 0.05,
//! L = 0.12 per hour; capacities add up to about 1.6× the demand of each level.

use std::collections::BTreeMap;

use crate::model::{
    ClusterRequest, LevelOffering, Link, Middleware, NodeGroup, Profile, ServiceLevel, Site,
    SiteId, Spread, Topology, Traffic, TrafficPattern, VpnWish,
};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenParams {
    /// Number of sites.
    pub sites: usize,
    /// Number of node groups (the first may be a small co-located master).
    pub groups: usize,
    /// Total VMs over all groups (at least one per group).
    pub vms: u32,
    /// The random seed.
    pub seed: u64,
    /// Add random pins, RTT limits, missing links, survive-loss and min-sites.
    pub constraints: bool,
}

/// A small deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform integer in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

const LEVELS: [(&str, f64); 3] = [("S", 0.02), ("M", 0.05), ("L", 0.12)];

/// A topology and a request drawn from `p`.
pub fn generate(p: &GenParams) -> (Topology, ClusterRequest) {
    let mut rng = Rng::new(p.seed ^ 0x5EED);
    let n_groups = p.groups.max(1);
    let vms = p.vms.max(n_groups as u32);
    // Groups: a master first when there are several, then the others share the rest.
    let mut counts = vec![1u32; n_groups];
    let master = n_groups >= 2 && rng.chance(0.6);
    let mut left = vms - n_groups as u32;
    if master {
        let extra = left.min(rng.range(0, 2) as u32);
        counts[0] += extra;
        left -= extra;
    }
    let first_free = usize::from(master);
    let weights: Vec<f64> = (first_free..n_groups).map(|_| 0.2 + rng.unit()).collect();
    let wsum: f64 = weights.iter().sum();
    let mut given = 0;
    for (i, w) in weights.iter().enumerate() {
        let g = first_free + i;
        let share = if g + 1 == n_groups {
            left - given
        } else {
            ((f64::from(left) * w / wsum).floor() as u32).min(left - given)
        };
        counts[g] += share;
        given += share;
    }
    let level_of: Vec<usize> = (0..n_groups)
        .map(|g| {
            if master && g == 0 {
                2
            } else {
                rng.range(0, 2) as usize
            }
        })
        .collect();
    let mut demand = [0u32; 3];
    for g in 0..n_groups {
        demand[level_of[g]] += counts[g];
    }
    // Sites.
    let coords: Vec<(f64, f64)> = (0..p.sites)
        .map(|_| (rng.unit() * 1500.0, rng.unit() * 1500.0))
        .collect();
    let mut sites = Vec::with_capacity(p.sites);
    let shares: Vec<Vec<f64>> = (0..3)
        .map(|_| (0..p.sites).map(|_| 0.1 + rng.unit()).collect())
        .collect();
    for s in 0..p.sites {
        let factor = 0.5 + rng.unit();
        let mut levels = BTreeMap::new();
        for (l, (name, base)) in LEVELS.iter().enumerate() {
            if demand[l] == 0 && rng.chance(0.5) {
                continue;
            }
            let total: f64 = shares[l].iter().sum();
            let cap = (1.6 * f64::from(demand[l].max(1)) * shares[l][s] / total).ceil() as u32;
            let price = (base * factor * (0.9 + 0.2 * rng.unit()) * 1e4).round() / 1e4;
            levels.insert(
                ServiceLevel::new(*name),
                LevelOffering {
                    offering: format!("{name}-offering"),
                    image: None,
                    price_per_hour: price,
                    capacity: cap,
                },
            );
        }
        sites.push(Site {
            id: SiteId::new(format!("site{s:02}")),
            middleware: Middleware::CloudStack,
            endpoint: format!("https://site{s:02}.example.invalid/api"),
            zone: None,
            levels,
            rate_limit: None,
            max_concurrency: None,
        });
    }
    let mut links = Vec::new();
    for a in 0..p.sites {
        for b in a + 1..p.sites {
            if p.constraints && rng.chance(0.08) {
                continue;
            }
            let (xa, ya) = coords[a];
            let (xb, yb) = coords[b];
            let km = ((xa - xb).powi(2) + (ya - yb).powi(2)).sqrt();
            let bw = [1000.0, 2500.0, 10000.0][rng.range(0, 2) as usize];
            links.push(Link {
                between: [sites[a].id.clone(), sites[b].id.clone()],
                rtt_ms: ((2.0 + 0.0127 * 1.7 * km) * 10.0).round() / 10.0,
                bandwidth_mbps: bw,
                vpn_overhead: crate::model::DEFAULT_VPN_OVERHEAD,
            });
        }
    }
    let patterns = [
        TrafficPattern::AllToAll,
        TrafficPattern::Hub,
        TrafficPattern::Halo,
        TrafficPattern::LatencyBound,
    ];
    let roles = ["master", "worker", "store", "mpi", "front", "cache"];
    let groups: Vec<NodeGroup> = (0..n_groups)
        .map(|g| {
            let colocate = (master && g == 0) || (counts[g] <= 3 && rng.chance(0.15));
            let traffic = if master && g == 0 {
                None
            } else {
                let pattern = patterns[rng.range(0, 3) as usize];
                let bytes = 10f64.powf(6.0 + 4.0 * rng.unit()).round();
                Some(Traffic {
                    pattern,
                    bytes_per_job: bytes,
                    rounds_per_job: Some(rng.range(1, 40) as f64),
                })
            };
            let sites_pin = if p.constraints && p.sites > 1 && rng.chance(0.15) {
                let pins: Vec<SiteId> = sites
                    .iter()
                    .filter(|_| rng.chance(0.7))
                    .map(|s| s.id.clone())
                    .collect();
                (!pins.is_empty()).then_some(pins)
            } else {
                None
            };
            let max_rtt_ms = (p.constraints && rng.chance(0.15)).then(|| rng.range(5, 40) as f64);
            NodeGroup {
                role: roles
                    .get(g)
                    .map_or_else(|| format!("group{g}"), |r| (*r).to_owned()),
                count: counts[g],
                level: ServiceLevel::new(LEVELS[level_of[g]].0),
                colocate,
                traffic,
                sites: sites_pin,
                max_rtt_ms,
            }
        })
        .collect();
    let spread = if p.constraints {
        Spread {
            min_sites: if p.sites >= 2 && rng.chance(0.3) {
                2
            } else {
                1
            },
            survive_site_loss: rng.chance(0.25).then_some(0.5),
        }
    } else {
        Spread::default()
    };
    let request = ClusterRequest {
        name: "generated".into(),
        profile: Profile::None,
        groups,
        spread,
        vpn: VpnWish {
            bandwidth_mbps: (p.constraints && rng.chance(0.1)).then_some(1500.0),
            ..VpnWish::default()
        },
    };
    (Topology::new(sites, links), request)
}
