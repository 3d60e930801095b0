//! Sites linked by their cloud's own VPN gateway: their nodes take addresses of the
//! site's guest network (the only network such a gateway routes), planned before any
//! VM exists and requested at create; the peers' traffic selectors name that network.

mod fakes;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use intercloud_core::deploy::{
    DeployOptions, DeployResult, Deployer, FailurePolicy, MemoryJournal, Plan, PlanOptions,
};
use intercloud_core::{
    Capabilities, CloudProvider, ClusterRequest, FabricChoice, MemoryProvider, Middleware,
    NodeGroup, PlacementCounts, Profile, ServiceLevel, SiteId, Spread, Topology, VmFilter, VmSpec,
    VpnWish,
};
use intercloud_vpn::{plan_cluster, plan_overlay, ClusterConfigurer, OverlayBoot, SiteVpn};
use ipnet::Ipv4Net;

use fakes::{link, site, FakeNative};

const CS_NET: &str = "10.1.1.0/24";
const EC2_NET: &str = "172.31.16.0/20";

fn in_net(ip: &str, cidr: &str) -> bool {
    let net: Ipv4Net = cidr.parse().unwrap();
    net.contains(&ip.parse::<Ipv4Addr>().unwrap())
}

/// cs (CloudStack-like: native gateway, one request per VM), ec2 (native, batch
/// create) and one (no native gateway: a strongSwan VM), with 3 workers each.
struct Lab {
    providers: BTreeMap<SiteId, Arc<MemoryProvider>>,
    natives: BTreeMap<SiteId, Arc<FakeNative>>,
    request: ClusterRequest,
    topology: Topology,
    counts: PlacementCounts,
}

impl Lab {
    async fn new() -> Self {
        let caps = |batch: bool| (batch, if batch { 500 } else { 1 });
        let mut providers = BTreeMap::new();
        for (id, net, batch) in [("cs", Some(CS_NET), false), ("ec2", Some(EC2_NET), true)]
            .into_iter()
            .chain([("one", None, false)])
        {
            let (b, max) = caps(batch);
            let mut p = MemoryProvider::builder(id).batch(b, max);
            if let Some(net) = net {
                p = p.guest_network(net);
            }
            providers.insert(SiteId::new(id), Arc::new(p.build()));
        }
        // Another tenant's VM already holds the cs network's first member address.
        let mut other = VmSpec::new(
            "someone-else",
            "db",
            intercloud_core::IdempotencyKey::new("other-db-0000").unwrap(),
            "M",
            "medium",
        );
        other.addresses = vec!["10.1.1.10".into()];
        providers[&SiteId::new("cs")]
            .create_vms(&other, 1)
            .await
            .expect("the other tenant's VM");
        let natives = ["cs", "ec2"]
            .into_iter()
            .map(|s| {
                let f = FakeNative {
                    addressless: s == "ec2",
                    up: true,
                    ..FakeNative::default()
                };
                (SiteId::new(s), Arc::new(f))
            })
            .collect();
        let request = ClusterRequest {
            name: "hpc".into(),
            profile: Profile::Hosts,
            groups: vec![NodeGroup {
                role: "worker".into(),
                count: 9,
                level: ServiceLevel::new("M"),
                colocate: false,
                traffic: None,
                sites: None,
                max_rtt_ms: None,
            }],
            spread: Spread::default(),
            vpn: VpnWish {
                fabric: FabricChoice::Ipsec,
                ..VpnWish::default()
            },
        };
        let topology = Topology::new(
            [
                site("cs", Middleware::CloudStack),
                site("ec2", Middleware::Ec2),
                site("one", Middleware::OpenNebula),
            ],
            vec![link("cs", "ec2"), link("cs", "one"), link("ec2", "one")],
        );
        let counts: PlacementCounts = [(
            "worker".to_owned(),
            ["cs", "ec2", "one"]
                .into_iter()
                .map(|s| (SiteId::new(s), 3))
                .collect(),
        )]
        .into();
        Self {
            providers,
            natives,
            request,
            topology,
            counts,
        }
    }

    fn dyns(&self) -> Vec<Arc<dyn CloudProvider>> {
        self.providers
            .values()
            .map(|p| p.clone() as Arc<dyn CloudProvider>)
            .collect()
    }

    fn caps(&self) -> BTreeMap<SiteId, Capabilities> {
        self.providers
            .iter()
            .map(|(s, p)| {
                let mut c = p.capabilities();
                c.native_vpn = self.natives.contains_key(s);
                (s.clone(), c)
            })
            .collect()
    }

    /// The sites as a front end describes them, guest networks read.
    async fn vpns(&self) -> BTreeMap<SiteId, SiteVpn> {
        let caps = self.caps();
        let mut out = BTreeMap::new();
        for (s, p) in &self.providers {
            let native = self
                .natives
                .get(s)
                .map(|f| f.clone() as Arc<dyn intercloud_core::VpnFabric>);
            let mut v = SiteVpn::new(caps[s], native);
            v.read_network(p.as_ref()).await.expect("guest network");
            out.insert(s.clone(), v);
        }
        out
    }

    /// The draft plan, the overlay and the final plan, as the CLI builds them.
    async fn plan(&self) -> (Plan, intercloud_vpn::ClusterOverlay) {
        let caps = self.caps();
        let opts = PlanOptions {
            deployment_id: Some("d-guest".into()),
            ..PlanOptions::default()
        };
        let vpns = self.vpns().await;
        let (plan, overlay) = plan_cluster(
            &self.request,
            &self.topology,
            &self.counts,
            &caps,
            opts,
            &vpns,
            |s| (s.as_str() == "one").then(|| "203.0.113.7".to_owned()),
        )
        .expect("plans");
        let overlay = overlay.expect("three sites");
        (plan, overlay)
    }
}

#[tokio::test]
async fn native_sites_take_free_guest_network_addresses_and_announce_that_network() {
    let lab = Lab::new().await;
    let (plan, overlay) = lab.plan().await;
    let pinned: Vec<&str> = overlay.pinned_sites.iter().map(SiteId::as_str).collect();
    assert_eq!(pinned, ["cs", "ec2"], "the sites with native gateways");
    let addr = |site: &str| -> Vec<String> {
        plan.nodes
            .iter()
            .filter(|n| n.site.as_str() == site)
            .map(|n| n.overlay_ip.clone())
            .collect()
    };
    // .10 is the other tenant's: skipped.
    assert_eq!(addr("cs"), ["10.1.1.11", "10.1.1.12", "10.1.1.13"]);
    assert_eq!(
        addr("ec2"),
        ["172.31.16.10", "172.31.16.11", "172.31.16.12"]
    );
    assert!(addr("one").iter().all(|a| in_net(a, "10.77.0.0/16")));
    // EC2-like batch create: one VM per call, each with its address; CloudStack-like
    // keeps its call with an address per VM.
    for b in &plan.batches {
        match b.site.as_str() {
            "ec2" => assert_eq!((b.count(), b.addresses.len()), (1, 1), "{b:?}"),
            "cs" => assert_eq!(b.addresses.len(), b.nodes.len(), "{b:?}"),
            _ => assert!(b.addresses.is_empty(), "{b:?}"),
        }
    }
    // The native gateways are prepared with the guest network as the site's subnet,
    // in the VMs' VPC; the strongSwan peer's selectors name those networks.
    let OverlayBoot::Composite(c) = &overlay.boot else {
        panic!("ipsec plans a composite");
    };
    let subnets = c.site_subnets();
    assert_eq!(subnets[&SiteId::new("cs")], CS_NET);
    assert_eq!(subnets[&SiteId::new("ec2")], EC2_NET);
}

#[tokio::test(start_paused = true)]
async fn native_site_vms_hold_their_overlay_address_and_keep_it_when_replaced() {
    let lab = Lab::new().await;
    let (plan, overlay) = lab.plan().await;
    let limits = lab
        .providers
        .keys()
        .map(|s| (s.clone(), 32 * 1024))
        .collect();
    let configurer = ClusterConfigurer::new(Profile::Hosts, limits, None)
        .with_overlay(Some(overlay.boot.clone()));
    let deployer = Deployer::new(lab.dyns())
        .with_fabric(overlay.fabric.clone())
        .with_configurer(Arc::new(configurer))
        .with_options(DeployOptions {
            poll_min: Duration::from_secs(1),
            poll_max: Duration::from_secs(2),
            ..DeployOptions::default()
        });
    let journal = MemoryJournal::new();
    let report = deployer
        .deploy(plan.clone(), FailurePolicy::AllOrNothing, &journal)
        .await
        .expect("deploy");
    assert_eq!(report.result, DeployResult::Ok, "{report:?}");

    let vms = |site: &str| {
        let p = lab.providers[&SiteId::new(site)].clone();
        async move {
            p.list_vms(&VmFilter::cluster("hpc"))
                .await
                .unwrap()
                .into_iter()
                .filter(|v| v.state.is_alive())
                .collect::<Vec<_>>()
        }
    };
    for site in ["cs", "ec2"] {
        let held: BTreeSet<String> = vms(site)
            .await
            .iter()
            .map(|v| v.private_ip.clone().unwrap())
            .collect();
        let planned: BTreeSet<String> = plan
            .nodes
            .iter()
            .filter(|n| n.site.as_str() == site)
            .map(|n| n.overlay_ip.clone())
            .collect();
        assert_eq!(
            held, planned,
            "site {site}: every VM holds its node's address"
        );
    }
    // The strongSwan gateway's configuration (on the site without a native gateway)
    // routes both guest networks through the tunnels.
    let OverlayBoot::Composite(c) = &overlay.boot else {
        panic!("composite");
    };
    let gw = c
        .gateway_bootstrap(&SiteId::new("one"))
        .unwrap()
        .expect("one has a gateway VM");
    let swanctl = gw
        .files
        .iter()
        .find(|f| f.path.ends_with("swanctl.conf") || f.path.contains("swanctl"))
        .expect("a swanctl file");
    for net in [CS_NET, EC2_NET] {
        assert!(
            swanctl.content.contains(&format!("remote_ts = {net}")),
            "remote_ts names {net}:\n{}",
            swanctl.content
        );
    }
    // The native fabrics were asked for the guest network as the site's subnet.
    for (site, net) in [("cs", CS_NET), ("ec2", EC2_NET)] {
        let ctxs = lab.natives[&SiteId::new(site)]
            .contexts
            .lock()
            .unwrap()
            .clone();
        assert!(!ctxs.is_empty());
        assert!(
            ctxs.iter().all(|c| c.overlay_subnet == net),
            "{site}: {ctxs:?}"
        );
        assert!(
            ctxs.iter()
                .all(|c| c.hints.get("vpc_id").map(String::as_str) == Some("vpc-1")),
            "{site}: the gateway serves the VMs' VPC: {ctxs:?}"
        );
    }

    // A cs VM dies: repair recreates the node on cs at the same address.
    let victim = vms("cs").await.into_iter().next().unwrap();
    let ip = victim.private_ip.clone().unwrap();
    lab.providers[&SiteId::new("cs")]
        .delete_vm(&victim.id)
        .await
        .unwrap();
    let report = deployer.repair(&journal).await.expect("repair");
    assert_eq!(report.result, DeployResult::Ok, "{report:?}");
    assert!(
        report.moved.is_empty(),
        "a pinned node never moves: {report:?}"
    );
    let again: Vec<String> = vms("cs")
        .await
        .iter()
        .filter_map(|v| v.private_ip.clone())
        .collect();
    assert!(again.contains(&ip), "{ip} held again: {again:?}");
    assert_eq!(again.len(), 3);

    let gone = deployer
        .destroy("hpc", Some(&journal))
        .await
        .expect("destroy");
    assert_eq!(gone.remaining, 0, "{gone:?}");
    for site in ["cs", "ec2", "one"] {
        assert!(vms(site).await.is_empty(), "{site} has VMs left");
    }
}

#[tokio::test]
async fn a_native_site_without_a_guest_network_or_with_an_overlapping_one_is_refused() {
    let lab = Lab::new().await;
    let caps = lab.caps();
    let draft = Plan::build(
        &lab.request,
        &lab.topology,
        &lab.counts,
        &caps,
        PlanOptions::default(),
    )
    .unwrap();
    let gw = |s: &SiteId| (s.as_str() == "one").then(|| "203.0.113.7".to_owned());

    let mut vpns = lab.vpns().await;
    vpns.get_mut(&SiteId::new("ec2")).unwrap().network = None;
    let e = plan_overlay(&lab.request, &draft, &vpns, gw).unwrap_err();
    assert_eq!(e.site().map(SiteId::as_str), Some("ec2"), "{e}");
    assert!(e.to_string().contains("guest network"), "{e}");

    let mut vpns = lab.vpns().await;
    let ec2 = vpns.get_mut(&SiteId::new("ec2")).unwrap();
    ec2.network.as_mut().unwrap().cidr = "10.1.0.0/16".into();
    let e = plan_overlay(&lab.request, &draft, &vpns, gw).unwrap_err();
    assert!(
        e.to_string().contains("overlap") && e.to_string().contains("cs"),
        "{e}"
    );
}
