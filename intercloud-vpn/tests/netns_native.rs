//! A node on a site linked by its cloud's own VPN gateway answers over IPsec at the
//! address the plan gave it (root only).
//!
//! Sites: `cs` (a CloudStack VPC: native gateway, guest network 10.100.1.0/24) and
//! `nii` (no native gateway: a strongSwan gateway VM and a member). The cluster is
//! planned and deployed on in-memory providers with the composite fabric, exactly as
//! the CLI does; then namespaces play the machines:
//! - `vr`, the VPC's virtual router: its charon is configured as CloudStack configures
//!   its own (the VPC CIDR 10.100.0.0/16 on its side, the customer gateway's CIDR list
//!   on the other, the policies and pre-shared key the fabric gave the cloud), and it
//!   routes the guest network to
//! - `csvm`, the cs node, holding the address its VM was created with on its NIC;
//! - `gw` and `member`, nii's nodes, on one LAN with `vr`'s public side, applying
//!   their rendered user data (the strongSwan configuration, routes, overlay
//!   addresses; this kernel has no `dummy` links, so overlay addresses go on `lo`).
//!
//! `member` must reach `csvm` from its overlay address through `gw` and the tunnel:
//! the strongSwan side's traffic selectors must name the guest network, and the
//! guest-network address must be the node's. Skips (loudly) without root or tools;
//! fails instead when `INTERCLOUD_REQUIRE_NETNS=1`.

mod common;
mod fakes;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::cloud_config::parse_cloud_config;
use common::{charon, must, ping_times, run, veth, wait_until, Lab};
use intercloud_core::deploy::{
    Batch, ConfigContext, DeployOptions, DeployResult, Deployer, FailurePolicy, MemoryJournal,
    NodeConfigurer, Plan, PlanOptions,
};
use intercloud_core::{
    Capabilities, CloudProvider, ClusterRequest, FabricChoice, MemoryProvider, Middleware,
    NodeGroup, PlacementCounts, Profile, ServiceLevel, SiteId, Spread, Topology, VpnFabric,
    VpnWish,
};
use intercloud_vpn::ipsec::{policy_from_attributes, swanctl_conf, SiteToSite};
use intercloud_vpn::{plan_cluster, ClusterConfigurer, OverlayBoot, SiteVpn};
use secrecy::SecretString;

use fakes::{link, site, FakeNative};

const TOOLS: &[&str] = &["ip", "ping", "charon-systemd", "swanctl"];
const GUEST: &str = "10.100.1.0/24";
const VPC: &str = "10.100.0.0/16";
/// FakeNative's gateway address for site `cs` (198.51.100.<length of the id>).
const VR_PUBLIC: &str = "198.51.100.2";
const NII_GATEWAY: &str = "198.51.100.7";

/// What the deployment left for the namespaces to play.
struct Deployed {
    plan: Plan,
    /// nii's nodes' cloud-init documents, by node name.
    nii_user_data: BTreeMap<String, String>,
    /// The pre-shared key the fabric handed cs's cloud.
    psk: String,
    /// nii's overlay subnet.
    nii_subnet: String,
}

async fn deploy() -> Deployed {
    let cs = Arc::new(
        MemoryProvider::builder("cs")
            .batch(false, 1)
            .guest_network(GUEST)
            .build(),
    );
    let nii = Arc::new(MemoryProvider::builder("nii").batch(false, 1).build());
    let native = Arc::new(FakeNative {
        up: true,
        ..FakeNative::default()
    });
    let request = ClusterRequest {
        name: "pinned".into(),
        profile: Profile::None,
        groups: vec![NodeGroup {
            role: "worker".into(),
            count: 3,
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
            site("nii", Middleware::OpenNebula),
        ],
        vec![link("cs", "nii")],
    );
    let counts: PlacementCounts = [(
        "worker".to_owned(),
        [(SiteId::new("cs"), 1), (SiteId::new("nii"), 2)].into(),
    )]
    .into();
    let caps: BTreeMap<SiteId, Capabilities> = [
        (
            SiteId::new("cs"),
            Capabilities {
                native_vpn: true,
                ..cs.capabilities()
            },
        ),
        (SiteId::new("nii"), nii.capabilities()),
    ]
    .into();
    let mut cs_vpn = SiteVpn::new(
        caps[&SiteId::new("cs")],
        Some(native.clone() as Arc<dyn VpnFabric>),
    );
    cs_vpn
        .read_network(cs.as_ref())
        .await
        .expect("guest network");
    let vpns: BTreeMap<SiteId, SiteVpn> = [
        (SiteId::new("cs"), cs_vpn),
        (
            SiteId::new("nii"),
            SiteVpn::new(caps[&SiteId::new("nii")], None),
        ),
    ]
    .into();
    let opts = PlanOptions {
        deployment_id: Some("d-pinned".into()),
        ..PlanOptions::default()
    };
    let (plan, overlay) = plan_cluster(&request, &topology, &counts, &caps, opts, &vpns, |s| {
        (s.as_str() == "nii").then(|| NII_GATEWAY.to_owned())
    })
    .expect("plans");
    let overlay = overlay.expect("two sites");
    let configurer = ClusterConfigurer::new(
        Profile::None,
        [
            (SiteId::new("cs"), 32 * 1024),
            (SiteId::new("nii"), 32 * 1024),
        ]
        .into(),
        None,
    )
    .with_overlay(Some(overlay.boot.clone()));
    let deployer = Deployer::new([cs.clone() as Arc<dyn CloudProvider>, nii.clone()])
        .with_fabric(overlay.fabric.clone())
        .with_configurer(Arc::new(configurer.clone()))
        .with_options(DeployOptions {
            poll_min: Duration::from_millis(10),
            poll_max: Duration::from_millis(20),
            ..DeployOptions::default()
        });
    let report = deployer
        .deploy(
            plan.clone(),
            FailurePolicy::AllOrNothing,
            &MemoryJournal::new(),
        )
        .await
        .expect("deploy");
    assert_eq!(report.result, DeployResult::Ok, "{report:?}");
    let cs_node = plan.nodes.iter().find(|n| n.site.as_str() == "cs").unwrap();
    let cs_vm = report
        .nodes
        .iter()
        .find(|n| n.name == cs_node.name)
        .unwrap();
    assert_eq!(
        cs_vm.private_ip.as_deref(),
        Some(cs_node.overlay_ip.as_str()),
        "the cs VM was created at its node's address"
    );
    // Each nii node's own user data, as one create call of that node would carry it.
    let OverlayBoot::Composite(composite) = &overlay.boot else {
        panic!("ipsec plans a composite");
    };
    let endpoints = BTreeMap::new();
    let ctx = ConfigContext {
        cluster: &plan.cluster,
        nodes: &plan.nodes,
        endpoints: &endpoints,
        fabric: None,
    };
    let mut nii_user_data = BTreeMap::new();
    for n in plan.nodes.iter().filter(|n| n.site.as_str() == "nii") {
        let mut batch: Batch = plan
            .batches
            .iter()
            .find(|b| b.nodes.contains(&n.name))
            .unwrap()
            .clone();
        batch.nodes = vec![n.name.clone()];
        let ud = configurer
            .user_data(&ctx, &batch)
            .expect("renders")
            .expect("overlay user data");
        nii_user_data.insert(n.name.clone(), ud.0);
    }
    let psk = native.psks.lock().unwrap().first().cloned().expect("a PSK");
    let contexts = native.contexts.lock().unwrap().clone();
    assert!(
        !contexts.is_empty() && contexts.iter().all(|c| c.overlay_subnet == GUEST),
        "cs announces its guest network: {contexts:?}"
    );
    Deployed {
        nii_subnet: composite.site_subnets()[&SiteId::new("nii")].clone(),
        plan,
        nii_user_data,
        psk,
    }
}

/// Applies a node's rendered runcmd in `ns`: everything but the service manager and
/// swanctl (charon runs under the lab), with overlay addresses on `lo`.
fn apply_commands(ns: &str, commands: &[String]) {
    for c in commands {
        if c.starts_with("systemctl") || c.starts_with("swanctl") {
            continue;
        }
        if c.starts_with("ip link add ic0") || c.starts_with("ip link set ic0") {
            continue;
        }
        let c = c.replace("dev ic0", "dev lo");
        must(Some(ns), &["sh", "-c", &c]);
    }
}

#[test]
fn a_node_on_its_guest_network_answers_through_the_native_gateway() {
    if !common::netns_ready(
        "a_node_on_its_guest_network_answers_through_the_native_gateway",
        TOOLS,
    ) {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let d = rt.block_on(deploy());
    let cs_node = d
        .plan
        .nodes
        .iter()
        .find(|n| n.site.as_str() == "cs")
        .unwrap();
    let nii: Vec<_> = d
        .plan
        .nodes
        .iter()
        .filter(|n| n.site.as_str() == "nii")
        .collect();
    let (gw_node, member_node) = (nii[0], nii[1]);

    let mut lab = Lab::new("native");
    let tmp = tempfile::tempdir().expect("tempdir");
    let lan = lab.add_ns("lan");
    let vr = lab.add_ns("vr");
    let csvm = lab.add_ns("csvm");
    let gw = lab.add_ns("gw");
    let member = lab.add_ns("member");
    must(Some(&lan), &["ip", "link", "add", "br0", "type", "bridge"]);
    must(Some(&lan), &["ip", "link", "set", "br0", "up"]);
    for (ns, port, addr) in [
        (&vr, "pvr", VR_PUBLIC),
        (&gw, "pgw", NII_GATEWAY),
        (&member, "pm", "198.51.100.8"),
    ] {
        veth(ns, "eth0", &lan, port);
        must(Some(&lan), &["ip", "link", "set", port, "master", "br0"]);
        must(
            None,
            &[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ],
        );
        must(None, &["ip", "-n", ns, "link", "set", "lo", "up"]);
        if ns != &vr {
            must(
                None,
                &[
                    "ip",
                    "-n",
                    ns,
                    "route",
                    "add",
                    "default",
                    "via",
                    "198.51.100.254",
                    "dev",
                    "eth0",
                    "onlink",
                ],
            );
        }
    }
    // The VPC router and the cs VM at the address the plan gave it.
    veth(&vr, "guest", &csvm, "eth0");
    must(
        None,
        &[
            "ip",
            "-n",
            &vr,
            "addr",
            "add",
            "10.100.1.1/24",
            "dev",
            "guest",
        ],
    );
    must(None, &["ip", "-n", &csvm, "link", "set", "lo", "up"]);
    must(
        None,
        &[
            "ip",
            "-n",
            &csvm,
            "addr",
            "add",
            &format!("{}/24", cs_node.overlay_ip),
            "dev",
            "eth0",
        ],
    );
    must(
        None,
        &[
            "ip",
            "-n",
            &csvm,
            "route",
            "add",
            "default",
            "via",
            "10.100.1.1",
        ],
    );
    must(Some(&vr), &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);

    // nii's nodes apply their user data.
    let mut gw_swanctl = None;
    for (ns, node) in [(&gw, gw_node), (&member, member_node)] {
        let (files, commands) = parse_cloud_config(&d.nii_user_data[&node.name]);
        if let Some((mode, conf)) = files.get("/etc/swanctl/conf.d/intercloud.conf") {
            assert_eq!(mode, "0600");
            gw_swanctl = Some(conf.clone());
        }
        apply_commands(ns, &commands);
    }
    let gw_swanctl = gw_swanctl.expect("nii's gateway node has a strongSwan configuration");
    assert!(
        gw_swanctl.contains(&format!("remote_ts = {GUEST}")),
        "nii's selectors name cs's guest network:\n{gw_swanctl}"
    );

    // The VPC router as CloudStack configures it for the customer gateway.
    let vr_conf = swanctl_conf(&[SiteToSite {
        name: "vpc".into(),
        local_addr: VR_PUBLIC.into(),
        remote_addr: NII_GATEWAY.into(),
        local_id: None,
        remote_id: None,
        local_ts: vec![VPC.into()],
        remote_ts: vec![d.nii_subnet.clone()],
        policy: policy_from_attributes(&FakeNative::policy_attributes()).expect("policy"),
        initiate: false,
        psk: SecretString::from(d.psk.clone()),
    }])
    .expect("render the router's side");
    let uri_vr = charon(&mut lab, &vr, &tmp.path().join("vr"), &vr_conf);
    let _uri_gw = charon(&mut lab, &gw, &tmp.path().join("gw"), &gw_swanctl);
    let up = wait_until(Duration::from_secs(15), || {
        run(None, &["swanctl", "--list-sas", "--uri", &uri_vr])
            .is_ok_and(|o| o.contains("INSTALLED"))
    });
    if !up {
        // nii's gateway starts the tunnel on traffic: send some.
        let _ = run(
            Some(&member),
            &["ping", "-c", "3", "-W", "1", &cs_node.overlay_ip],
        );
    }
    let rtt = wait_until(Duration::from_secs(15), || {
        ping_times(&member, &cs_node.overlay_ip, 3).is_ok()
    });
    assert!(
        rtt,
        "member {} cannot reach the cs node at {} through the tunnel; gw log:\n{}\nrouter SAs: {}",
        member_node.overlay_ip,
        cs_node.overlay_ip,
        std::fs::read_to_string(tmp.path().join("gw/charon.log")).unwrap_or_default(),
        run(None, &["swanctl", "--list-sas", "--uri", &uri_vr]).unwrap_or_default()
    );
    let times = ping_times(&member, &cs_node.overlay_ip, 5).expect("pings");
    // The replies came from the overlay address through ESP.
    let sas = must(None, &["swanctl", "--list-sas", "--uri", &uri_vr]);
    assert!(
        sas.contains(&format!("{}/32", member_node.overlay_ip)) || sas.contains(&d.nii_subnet),
        "the router's child SA covers nii's subnet: {sas}"
    );
    assert!(
        sas.lines()
            .any(|l| l.trim_start().starts_with("in ") && !l.contains(" 0 bytes")),
        "no bytes on the router's child SA: {sas}"
    );
    println!(
        "member {} -> cs node {} through nii's strongSwan VM and the VPC router: RTT {times:?} ms",
        member_node.overlay_ip, cs_node.overlay_ip
    );
    drop(lab);
}
