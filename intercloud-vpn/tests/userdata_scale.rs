//! User data stays under every site's limit at the seed experiment's scale (issue
//! #25): a 2,000-node cluster over the simulator's three sites — CloudStack (32 KiB,
//! 20 VMs per call), OpenNebula (64 KiB, 20 per call) and EC2 (16 KiB, one
//! RunInstances for all of a site's workers) — planned and rendered exactly as the
//! CLI does ([`plan_cluster`], [`ClusterConfigurer`]).
//!
//! And the compact user data means the same files: VMs of a few calls apply theirs
//! with the real `sh` (and `openssl`, `wg` for WireGuard keys), and every file they
//! write is compared byte for byte with the Rust renderers' — profile files for the
//! 2,000 nodes, members' and gateways' wg-quick files.

mod common;

use std::collections::BTreeMap;

use common::expand::expand;
use intercloud_core::bootstrap::{profile_bootstrap, ClusterLayout, NodeInfo};
use intercloud_core::deploy::{ConfigContext, NodeConfigurer, NodePlan, Plan, PlanOptions};
use intercloud_core::{
    Capabilities, ClusterRequest, LevelOffering, Link, Middleware, NodeGroup, PlacementCounts,
    Profile, ServiceLevel, Site, SiteId, Spread, Topology, VpnWish,
};
use intercloud_vpn::{plan_cluster, slots_for_level, ClusterConfigurer, OverlayBoot, SiteVpn};

const NODES: u32 = 2000;

/// (site, middleware, capabilities as its backend reports them).
fn sites() -> Vec<(&'static str, Middleware, Capabilities)> {
    let one_by_one = |max_user_data| Capabilities {
        batch_create: false,
        max_batch: 1000,
        max_user_data,
        ..Capabilities::default()
    };
    vec![
        ("hokkaido", Middleware::CloudStack, one_by_one(32 * 1024)),
        ("nii", Middleware::OpenNebula, one_by_one(64 * 1024)),
        (
            "tokyo",
            Middleware::Ec2,
            Capabilities {
                batch_create: true,
                max_batch: 1000,
                server_idempotency: true,
                max_user_data: 16 * 1024,
                ..Capabilities::default()
            },
        ),
    ]
}

/// Where the master goes and how many workers each site gets.
struct Placed {
    master: &'static str,
    workers: [(&'static str, u32); 3],
}

/// Spread over the three sites.
const SPREAD: Placed = Placed {
    master: "hokkaido",
    workers: [("hokkaido", 999), ("nii", 400), ("tokyo", 600)],
};

/// What the planner chooses for the seed federation (`examples/tests/scale.rs`):
/// most workers on the cheapest CloudStack site, whose gateway has the most peers.
const SEED_PLAN: Placed = Placed {
    master: "nii",
    workers: [("hokkaido", 1598), ("nii", 400), ("tokyo", 1)],
};

fn topology() -> Topology {
    let site = |id: &str, middleware| Site {
        id: SiteId::new(id),
        middleware,
        endpoint: "http://127.0.0.1:9/api".into(),
        zone: None,
        levels: ["S", "L"]
            .iter()
            .map(|l| {
                (
                    ServiceLevel::new(*l),
                    LevelOffering {
                        offering: format!("offering-{l}"),
                        image: None,
                        price_per_hour: 0.1,
                        capacity: NODES,
                    },
                )
            })
            .collect(),
        rate_limit: None,
        max_concurrency: None,
    };
    let link = |a: &str, b: &str| Link {
        between: [SiteId::new(a), SiteId::new(b)],
        rtt_ms: 20.0,
        bandwidth_mbps: 1000.0,
        vpn_overhead: 0.21,
    };
    Topology::new(
        sites()
            .iter()
            .map(|(s, m, _)| site(s, *m))
            .collect::<Vec<_>>(),
        vec![
            link("hokkaido", "nii"),
            link("hokkaido", "tokyo"),
            link("nii", "tokyo"),
        ],
    )
}

struct Planned {
    plan: Plan,
    configurer: ClusterConfigurer,
    boot: OverlayBoot,
}

/// The 2,000-node cluster placed as `placed` and planned as the CLI plans it,
/// `limit` overriding every site's user-data limit when given.
fn planned(
    profile: Profile,
    limit: Option<usize>,
    placed: &Placed,
) -> intercloud_core::Result<Planned> {
    let group = |role: &str, count, level: &str| NodeGroup {
        role: role.into(),
        count,
        level: ServiceLevel::new(level),
        colocate: false,
        traffic: None,
        sites: None,
        max_rtt_ms: None,
    };
    let request = ClusterRequest {
        name: "hadoop-2k".into(),
        profile,
        groups: vec![group("master", 1, "L"), group("worker", NODES - 1, "S")],
        spread: Spread::default(),
        vpn: VpnWish::default(),
    };
    let mut counts: PlacementCounts = BTreeMap::new();
    counts
        .entry("master".into())
        .or_default()
        .insert(SiteId::new(placed.master), 1);
    for (s, n) in placed.workers {
        counts
            .entry("worker".into())
            .or_default()
            .insert(SiteId::new(s), n);
    }
    let mut caps = BTreeMap::new();
    let mut vpns = BTreeMap::new();
    for (s, _, mut c) in sites() {
        if let Some(l) = limit {
            c.max_user_data = l;
        }
        caps.insert(SiteId::new(s), c);
        vpns.insert(SiteId::new(s), SiteVpn::new(c, None));
    }
    let opts = PlanOptions {
        deployment_id: Some("d-scale".into()),
        ..PlanOptions::default()
    };
    let (plan, overlay) = plan_cluster(
        &request,
        &topology(),
        &counts,
        &caps,
        opts,
        &vpns,
        |s: &SiteId| Some(format!("203.0.113.{}", s.as_str().len())),
    )?;
    let overlay = overlay.expect("three sites have an overlay");
    let limits = caps
        .iter()
        .map(|(s, c)| (s.clone(), c.max_user_data))
        .collect();
    let configurer =
        ClusterConfigurer::new(profile, limits, None).with_overlay(Some(overlay.boot.clone()));
    Ok(Planned {
        plan,
        configurer,
        boot: overlay.boot,
    })
}

/// The nodes as the deployer hands them to the configurer: by name.
fn by_name(plan: &Plan) -> Vec<NodePlan> {
    let mut nodes = plan.nodes.clone();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    nodes
}

fn ctx<'a>(plan: &'a Plan, nodes: &'a [NodePlan]) -> ConfigContext<'a> {
    static NONE: std::sync::OnceLock<BTreeMap<SiteId, intercloud_core::SiteEndpoint>> =
        std::sync::OnceLock::new();
    ConfigContext {
        cluster: &plan.cluster,
        nodes,
        endpoints: NONE.get_or_init(BTreeMap::new),
        fabric: None,
    }
}

#[test]
fn largest_user_data_of_2000_nodes_is_under_every_limit() {
    let cases = [
        (Profile::Hadoop, &SPREAD),
        (Profile::Hadoop, &SEED_PLAN),
        (Profile::Mpi, &SPREAD),
        (Profile::Slurm, &SPREAD),
        (Profile::Hosts, &SPREAD),
    ];
    for (profile, placed) in cases {
        let p = planned(profile, None, placed).expect("a 2,000-node cluster plans");
        assert_eq!(p.plan.nodes.len(), NODES as usize);
        let limits: BTreeMap<&str, usize> = sites()
            .iter()
            .map(|(s, _, c)| (*s, c.max_user_data))
            .collect();
        let nodes = by_name(&p.plan);
        let mut largest: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for b in &p.plan.batches {
            let ud = p
                .configurer
                .user_data(&ctx(&p.plan, &nodes), b)
                .expect("renders")
                .expect("a profile gives user data");
            let e = largest.entry(b.site.to_string()).or_default();
            if ud.0.len() > e.0 {
                *e = (ud.0.len(), b.nodes.len());
            }
        }
        for (site, (bytes, vms)) in &largest {
            let limit = limits[site.as_str()];
            println!(
                "{profile:?} {:?} {site}: largest user data {bytes} bytes ({vms} VMs in the \
                 call), limit {limit}",
                placed.workers
            );
            assert!(bytes < &limit, "{site}: {bytes} >= {limit}");
        }
        // EC2 makes a site's workers in one call: the bound holds for hundreds of VMs
        let tokyo = p.plan.batches.iter().filter(|b| b.site.as_str() == "tokyo");
        let on_tokyo = placed.workers[2].1 as usize;
        assert_eq!(tokyo.map(|b| b.nodes.len()).max(), Some(on_tokyo));
    }
}

/// A cluster whose user data a site cannot take is refused at plan time, before
/// anything is created, naming the site, the size and the limit.
#[test]
fn plan_refuses_user_data_over_a_site_limit() {
    let e = planned(Profile::Hadoop, Some(1024), &SPREAD)
        .err()
        .expect("1 KiB cannot hold the cluster's files");
    assert_eq!(e.kind(), intercloud_core::ErrorKind::InvalidRequest);
    let m = e.to_string();
    assert!(
        m.contains("user data is ") && m.contains("limit of 1024 bytes"),
        "{m}"
    );
    assert!(e.site().is_some(), "{m}");
}

#[test]
fn compact_user_data_writes_the_rust_rendered_files() {
    let wg_tools = common::prerequisites(
        "compact_user_data_writes_the_rust_rendered_files (WireGuard keys)",
        false,
        &["openssl", "wg", "base64"],
        "`scripts/vpn-deps.sh`",
    );
    let p = planned(Profile::Hadoop, None, &SPREAD).expect("plans");
    let layout = ClusterLayout {
        cluster: p.plan.cluster.clone(),
        profile: Profile::Hadoop,
        // the files list nodes by overlay address
        nodes: {
            let mut by_ip = p.plan.nodes.clone();
            by_ip.sort_by_key(|n| n.overlay_ip.parse::<std::net::Ipv4Addr>().unwrap());
            by_ip
        }
        .iter()
        .map(|n| NodeInfo {
            name: n.name.clone(),
            role: n.role.clone(),
            site: n.site.clone(),
            overlay_ip: n.overlay_ip.clone(),
            slots: slots_for_level(&n.level),
        })
        .collect(),
    };
    let profile_files = profile_bootstrap(&layout).files;
    let nodes = by_name(&p.plan);
    assert!(profile_files
        .iter()
        .any(|f| f.content.lines().count() >= NODES as usize));
    let OverlayBoot::WireGuard(wg) = &p.boot else {
        panic!("a WireGuard overlay");
    };
    let mesh = wg.mesh();
    let mut checked_gateways = 0;
    // Per site: its first call (it holds the site's gateway) and its last.
    let mut picks = Vec::new();
    for (s, ..) in sites() {
        let of_site: Vec<_> = p
            .plan
            .batches
            .iter()
            .filter(|b| b.site.as_str() == s)
            .collect();
        picks.push(of_site[0]);
        picks.push(of_site[of_site.len() - 1]);
    }
    picks.dedup_by_key(|b| b.key.clone());
    for b in picks {
        let ud = p
            .configurer
            .user_data(&ctx(&p.plan, &nodes), b)
            .expect("renders")
            .expect("user data");
        let gateway = nodes
            .iter()
            .find(|n| n.site == b.site)
            .map(|n| n.name.clone());
        let n = b.nodes.len();
        let indices: std::collections::BTreeSet<usize> = [0, 1, n - 1].into_iter().collect();
        for i in indices {
            let Some(name) = b.nodes.get(i) else { continue };
            let is_gateway = Some(name) == gateway.as_ref();
            let root = tempfile::tempdir().expect("tempdir");
            let files = expand(&ud.0, i, root.path(), wg_tools);
            for f in &profile_files {
                let (mode, got) = files
                    .get(&f.path)
                    .unwrap_or_else(|| panic!("{name}: no {}", f.path));
                assert_eq!(mode, &f.mode, "{name}: {}", f.path);
                assert!(got == &f.content, "{name}: {} differs from Rust's", f.path);
            }
            if !wg_tools {
                continue;
            }
            let (mode, conf) = files
                .get("/etc/wireguard/ic0.conf")
                .unwrap_or_else(|| panic!("{name}: no wg-quick file"));
            assert_eq!(mode, "0600");
            let want = if is_gateway {
                checked_gateways += 1;
                mesh.gateway_config(&b.site).unwrap()
            } else {
                mesh.member_config(name).unwrap()
            };
            assert!(
                conf == &want,
                "{name}: wg-quick file differs:\n--- sh\n{}\n--- rust\n{}",
                &conf[conf.len().saturating_sub(600)..],
                &want[want.len().saturating_sub(600)..]
            );
        }
    }
    if wg_tools {
        assert_eq!(checked_gateways, 3, "every site's gateway file was derived");
    }
}
