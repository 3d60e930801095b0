//! End-to-end WireGuard overlay over network namespaces (root only).
//!
//! A simulated 3-site cluster: site a (gateway + 2 members), b (gateway + 1 member),
//! c (gateway + 1 member), addresses planned first. [`WireGuardFabric`] is driven as
//! the deployer drives it (`prepare_site` with the gateway VMs' addresses, `connect`
//! per pair, `gateway_bootstrap` / `member_bootstrap` user data). Every "VM" is a
//! namespace that applies the wg-quick file of its user data the way `wg-quick up`
//! would: userspace `wireguard-go`, `wg setconf` with the file's WireGuard part, then
//! `ip addr`/`ip route` and the file's `PostUp` commands.
//!
//! Underlay: namespace `wan` holds bridge `br0` joining the gateways' uplinks
//! (192.168.200.<site>/24); each gateway holds bridge `lan0` for its members
//! (172.16.<site>.0/24). Members reach only their gateway's LAN address.
//!
//! Checked: every node pings every other over the overlay; a UDP relay (this file's
//! `udp_delay_relay`, started in `wan` as a child process) adds 10 ms each way between
//! gateways a and b: cross-site RTT ≥ 20 ms, in-site < 2 ms; `htb` at 100 Mbit/s on
//! gateway a's uplink caps cross-site TCP while in-site TCP exceeds it; a member
//! replaced by repair keeps its address and rejoins with no gateway change; a
//! member's key is rotated with the fabric's `wg set` commands on the live gateway.
//!
//! Skips (loudly) without root or tools; fails instead when
//! `INTERCLOUD_REQUIRE_NETNS=1`. Install the tools with `scripts/vpn-deps.sh`.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{median, must, ping_ok, ping_times, run, run_input, veth, wait_until, Lab};
use intercloud_core::{Bootstrap, LinkSpec, Member, SiteContext, SiteId, VpnFabric};
use intercloud_vpn::{Ipam, Mesh, WireGuardFabric, DEFAULT_OVERLAY_CIDR};

const TOOLS: &[&str] = &[
    "ip",
    "wg",
    "wireguard-go",
    "ping",
    "iperf3",
    "tc",
    "sysctl",
    "ss",
];
const RELAY_PORT: u16 = 40_010;
const RELAY_IP: &str = "192.168.200.254";
const LIMIT_MBIT: f64 = 100.0;

/// One simulated VM.
#[derive(Debug, Clone)]
struct Node {
    name: String,
    site: SiteId,
    ns: String,
    iface: String,
    overlay: String,
    wg_pid: u32,
}

/// A wg-quick file split the way wg-quick does: the part `wg setconf` reads, and
/// wg-quick's own keys.
#[derive(Debug, Default)]
struct WgQuick {
    setconf: String,
    addresses: Vec<String>,
    mtu: Option<String>,
    post_up: Vec<String>,
}

fn split_wg_quick(text: &str) -> WgQuick {
    let mut out = WgQuick::default();
    let mut in_interface = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_interface = t.eq_ignore_ascii_case("[Interface]");
        }
        if in_interface {
            if let Some((k, v)) = t.split_once('=') {
                let (k, v) = (k.trim(), v.trim());
                match k {
                    "Address" => {
                        out.addresses
                            .extend(v.split(',').map(|a| a.trim().to_owned()));
                        continue;
                    }
                    "MTU" => {
                        out.mtu = Some(v.to_owned());
                        continue;
                    }
                    "PostUp" => {
                        out.post_up.push(v.to_owned());
                        continue;
                    }
                    "DNS" | "Table" | "PreUp" | "PreDown" | "PostDown" | "SaveConfig" => continue,
                    _ => {}
                }
            }
        }
        out.setconf.push_str(line);
        out.setconf.push('\n');
    }
    out
}

/// Starts WireGuard in `node.ns` from the wg-quick file `conf`; returns the daemon PID.
fn wg_up(lab: &mut Lab, ns: &str, iface: &str, conf: &str) -> u32 {
    let q = split_wg_quick(conf);
    let sock = format!("/var/run/wireguard/{iface}.sock");
    lab.track_file(&sock);
    let pid = lab.spawn(
        ns,
        &["wireguard-go", "-f", iface],
        &[("WG_PROCESS_FOREGROUND", "1")],
    );
    assert!(
        wait_until(Duration::from_secs(5), || std::path::Path::new(&sock)
            .exists()),
        "wireguard-go {iface} in {ns} made no UAPI socket"
    );
    run_input(
        Some(ns),
        &["wg", "setconf", iface, "/dev/stdin"],
        Some(&q.setconf),
    )
    .unwrap_or_else(|e| panic!("rendered config rejected: {e}"));
    for a in &q.addresses {
        must(None, &["ip", "-n", ns, "addr", "add", a, "dev", iface]);
    }
    let mtu = q.mtu.unwrap_or_else(|| "1420".into());
    must(
        None,
        &["ip", "-n", ns, "link", "set", iface, "mtu", &mtu, "up"],
    );
    for line in must(Some(ns), &["wg", "show", iface, "allowed-ips"]).lines() {
        for net in line.split_whitespace().skip(1) {
            if net != "(none)" {
                must(
                    None,
                    &["ip", "-n", ns, "route", "replace", net, "dev", iface],
                );
            }
        }
    }
    for c in &q.post_up {
        must(Some(ns), &["sh", "-c", &c.replace("%i", iface)]);
    }
    pid
}

fn site_index(site: &SiteId) -> u8 {
    match site.to_string().as_str() {
        "a" => 1,
        "b" => 2,
        _ => 3,
    }
}

/// A member's namespace, its veth into its gateway's `lan0` and its LAN address.
fn member_underlay(lab: &mut Lab, gw_ns: &str, name: &str, site: &SiteId, slot: u8) -> String {
    let ns = lab.add_ns(name);
    let port = format!("m{slot}");
    veth(&ns, "eth0", gw_ns, &port);
    must(
        None,
        &["ip", "-n", gw_ns, "link", "set", &port, "master", "lan0"],
    );
    let ip = format!("172.16.{}.{}/24", site_index(site), 10 + slot);
    must(None, &["ip", "-n", &ns, "addr", "add", &ip, "dev", "eth0"]);
    ns
}

fn iperf_mbit(lab: &mut Lab, server_ns: &str, server_ip: &str, client_ns: &str) -> f64 {
    let pid = lab.spawn(server_ns, &["iperf3", "-s", "-1", "-B", server_ip], &[]);
    assert!(
        wait_until(Duration::from_secs(5), || run(
            Some(server_ns),
            &["ss", "-Htln", "sport", "=", ":5201"]
        )
        .is_ok_and(|o| !o.trim().is_empty())),
        "iperf3 server in {server_ns} did not listen"
    );
    let out = must(
        Some(client_ns),
        &["iperf3", "-c", server_ip, "-t", "2", "-J"],
    );
    lab.kill(pid);
    let v: serde_json::Value = serde_json::from_str(&out).expect("iperf3 -J prints JSON");
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("iperf3 result has end.sum_received.bits_per_second")
        / 1e6
}

fn assert_all_ping(nodes: &[Node]) {
    // Members first reach their gateway (the gateway learns their endpoint from it).
    for n in nodes.iter().filter(|n| !n.name.starts_with("gw")) {
        let gw = nodes
            .iter()
            .find(|g| g.name == format!("gw{}", n.site))
            .expect("gateway");
        assert!(
            ping_ok(&n.ns, &gw.overlay, Duration::from_secs(10)),
            "{} cannot reach its gateway {} over the overlay",
            n.name,
            gw.overlay
        );
    }
    for a in nodes {
        for b in nodes {
            if a.name != b.name {
                assert!(
                    ping_ok(&a.ns, &b.overlay, Duration::from_secs(10)),
                    "overlay ping {} -> {} ({}) failed",
                    a.name,
                    b.name,
                    b.overlay
                );
            }
        }
    }
}

#[test]
fn three_site_overlay_in_namespaces() {
    if !common::netns_ready("three_site_overlay_in_namespaces", TOOLS) {
        return;
    }
    let t0 = Instant::now();
    let mut lab = Lab::new("wg");
    let pid = std::process::id();
    let iface = |n: usize| format!("icv{pid}w{n}");

    // --- plan: 3 sites, members a1 a2 | b1 | c1 -------------------------------------
    let sites: Vec<SiteId> = ["a", "b", "c"].into_iter().map(SiteId::from).collect();
    let counts: BTreeMap<SiteId, u32> = [("a", 2u32), ("b", 1), ("c", 1)]
        .into_iter()
        .map(|(s, n)| (SiteId::from(s), n))
        .collect();
    // addresses assigned at plan time, before any VM exists
    let mut ipam = Ipam::plan(DEFAULT_OVERLAY_CIDR, &counts).expect("plan");
    let members = [("a1", "a"), ("a2", "a"), ("b1", "b"), ("c1", "c")];
    for (m, s) in members {
        ipam.assign(m, &SiteId::from(s)).expect("member address");
    }
    let member = |name: &str| {
        let (site, ip) = ipam.node(name).expect("planned");
        Member {
            name: name.into(),
            role: "worker".into(),
            site: site.clone(),
            overlay_ip: ip.to_string(),
        }
    };
    // The fabric as the deployer drives it: prepare each site with its gateway VM's
    // addresses, link every pair, render user data.
    let fabric = WireGuardFabric::new(Mesh::new(ipam.clone(), "ic0", 51820));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut endpoints = BTreeMap::new();
    for s in &sites {
        let k = site_index(s);
        let ctx = SiteContext {
            site: s.clone(),
            cluster: "icv".into(),
            overlay_subnet: ipam.site(s).expect("subnet").subnet.to_string(),
            local_cidrs: vec![],
            hints: [
                ("public_address".to_owned(), format!("192.168.200.{k}")),
                ("private_address".to_owned(), format!("172.16.{k}.1")),
            ]
            .into(),
        };
        let ep = rt
            .block_on(fabric.prepare_site(&ctx))
            .expect("prepare_site");
        endpoints.insert(s.clone(), ep);
    }
    for (i, a) in sites.iter().enumerate() {
        for b in &sites[i + 1..] {
            rt.block_on(fabric.connect(&endpoints[a], &endpoints[b], &LinkSpec::default()))
                .expect("connect");
        }
    }
    let all: Vec<Member> = members.iter().map(|(m, _)| member(m)).collect();
    fabric.plan_members(&all).expect("plan members");
    // What a node's user data writes to /etc/wireguard/ic0.conf.
    let wg_file = |boot: Bootstrap| {
        boot.files
            .into_iter()
            .find(|f| f.path == "/etc/wireguard/ic0.conf")
            .expect("user data writes the wg-quick file")
            .content
    };

    // --- underlay: every namespace first (gotcha: daemons started before their peers'
    // underlay lose the first handshakes) ----------------------------------------------
    let wan = lab.add_ns("wan");
    must(
        None,
        &["ip", "-n", &wan, "link", "add", "br0", "type", "bridge"],
    );
    must(None, &["ip", "-n", &wan, "link", "set", "br0", "up"]);
    must(
        None,
        &[
            "ip",
            "-n",
            &wan,
            "addr",
            "add",
            &format!("{RELAY_IP}/24"),
            "dev",
            "br0",
        ],
    );
    let mut gw_ns = BTreeMap::new();
    for s in &sites {
        let k = site_index(s);
        let ns = lab.add_ns(&format!("gw{s}"));
        veth(&ns, "up0", &wan, &format!("p{k}"));
        must(
            None,
            &[
                "ip",
                "-n",
                &wan,
                "link",
                "set",
                &format!("p{k}"),
                "master",
                "br0",
            ],
        );
        must(
            None,
            &[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("192.168.200.{k}/24"),
                "dev",
                "up0",
            ],
        );
        must(
            None,
            &["ip", "-n", &ns, "link", "add", "lan0", "type", "bridge"],
        );
        must(None, &["ip", "-n", &ns, "link", "set", "lan0", "up"]);
        must(
            None,
            &[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("172.16.{k}.1/24"),
                "dev",
                "lan0",
            ],
        );
        gw_ns.insert(s.clone(), ns);
    }
    let mut member_ns = BTreeMap::new();
    for (slot, (m, s)) in members.iter().enumerate() {
        let site = SiteId::from(*s);
        let ns = member_underlay(&mut lab, &gw_ns[&site], m, &site, slot as u8 + 1);
        member_ns.insert(*m, ns);
    }

    // --- WireGuard on every node, from its rendered wg-quick file ---------------------
    let mut nodes = Vec::new();
    for s in &sites {
        let conf = wg_file(fabric.gateway_bootstrap(s).expect("gateway user data"));
        let i = iface(nodes.len());
        let ns = gw_ns[s].clone();
        let wg_pid = wg_up(&mut lab, &ns, &i, &conf);
        let overlay = endpoints[s].attributes["overlay_gateway"].clone();
        nodes.push(Node {
            name: format!("gw{s}"),
            site: s.clone(),
            ns,
            iface: i,
            overlay,
            wg_pid,
        });
    }
    for (m, s) in members {
        let conf = wg_file(
            fabric
                .member_bootstrap(&member(m))
                .expect("member user data"),
        );
        let i = iface(nodes.len());
        let ns = member_ns[m].clone();
        let wg_pid = wg_up(&mut lab, &ns, &i, &conf);
        let overlay = member(m).overlay_ip;
        nodes.push(Node {
            name: m.into(),
            site: SiteId::from(s),
            ns,
            iface: i,
            overlay,
            wg_pid,
        });
    }
    let setup = t0.elapsed();
    let node = |name: &str| {
        nodes
            .iter()
            .find(|n| n.name == name)
            .cloned()
            .expect("node")
    };

    // --- 1. every node pings every other ------------------------------------------------
    assert_all_ping(&nodes);
    let t_ping = t0.elapsed();

    // --- 2. 10 ms each way between gateways a and b through a UDP relay ---------------
    let (gwa, gwb, a1, a2, b1) = (node("gwa"), node("gwb"), node("a1"), node("a2"), node("b1"));
    let gwb_pub = wg_public_key(&gwb);
    let gwa_pub = wg_public_key(&gwa);
    let exe = std::env::current_exe().expect("test binary path");
    let exe = exe.to_str().expect("utf-8 path");
    let spec = format!("{RELAY_IP}:{RELAY_PORT},192.168.200.2:51820,10,30");
    let relay = lab.spawn(
        &wan,
        &[
            exe,
            "--exact",
            "udp_delay_relay",
            "--ignored",
            "--nocapture",
        ],
        &[("ICV_RELAY", &spec)],
    );
    assert!(
        wait_until(Duration::from_secs(10), || run(
            Some(&wan),
            &["ss", "-Hunl", "sport", "=", &format!(":{RELAY_PORT}")]
        )
        .is_ok_and(|o| !o.trim().is_empty())),
        "the delay relay did not bind"
    );
    // live endpoint change, no restart
    must(
        Some(&gwa.ns),
        &[
            "wg",
            "set",
            &gwa.iface,
            "peer",
            &gwb_pub,
            "endpoint",
            &format!("{RELAY_IP}:{RELAY_PORT}"),
        ],
    );
    assert!(ping_ok(&a1.ns, &b1.overlay, Duration::from_secs(10)));
    let cross = ping_times(&a1.ns, &b1.overlay, 10).expect("cross-site ping via relay");
    let inside = ping_times(&a1.ns, &a2.overlay, 10).expect("in-site ping");
    let cross_min = cross.iter().copied().fold(f64::MAX, f64::min);
    let inside_median = median(&inside);
    println!(
        "RTT a1->b1 via 10 ms relay: min {cross_min:.2} ms median {:.2} ms; a1->a2 median {inside_median:.3} ms",
        median(&cross)
    );
    assert!(
        cross_min >= 20.0,
        "cross-site RTT {cross:?} below 20 ms: relay not in path"
    );
    assert!(inside_median < 2.0, "in-site RTT {inside:?} not below 2 ms");
    // back to the direct path on both sides, then the relay goes
    must(
        Some(&gwa.ns),
        &[
            "wg",
            "set",
            &gwa.iface,
            "peer",
            &gwb_pub,
            "endpoint",
            "192.168.200.2:51820",
        ],
    );
    must(
        Some(&gwb.ns),
        &[
            "wg",
            "set",
            &gwb.iface,
            "peer",
            &gwa_pub,
            "endpoint",
            "192.168.200.1:51820",
        ],
    );
    lab.kill(relay);
    let direct = ping_times(&a1.ns, &b1.overlay, 5).expect("direct again");
    assert!(median(&direct) < 10.0, "still slow after relay: {direct:?}");
    let t_delay = t0.elapsed();

    // --- 3. htb 100 Mbit/s on gateway a's uplink ---------------------------------------
    must(
        Some(&gwa.ns),
        &[
            "tc", "qdisc", "replace", "dev", "up0", "root", "handle", "1:", "htb", "default", "10",
        ],
    );
    must(
        Some(&gwa.ns),
        &[
            "tc", "class", "replace", "dev", "up0", "parent", "1:", "classid", "1:10", "htb",
            "rate", "100mbit", "ceil", "100mbit",
        ],
    );
    let cross_mbit = iperf_mbit(&mut lab, &b1.ns, &b1.overlay, &a1.ns);
    let inside_mbit = iperf_mbit(&mut lab, &gwa.ns, &gwa.overlay, &a1.ns);
    println!(
        "TCP with htb {LIMIT_MBIT} Mbit/s on gwa uplink: a1->b1 {cross_mbit:.1} Mbit/s, a1->gwa {inside_mbit:.1} Mbit/s"
    );
    assert!(
        cross_mbit <= LIMIT_MBIT * 1.05,
        "cross-site {cross_mbit} Mbit/s exceeds the {LIMIT_MBIT} Mbit/s shaping"
    );
    assert!(
        cross_mbit >= LIMIT_MBIT * 0.5,
        "cross-site {cross_mbit} Mbit/s: the link is far below its shaped rate"
    );
    assert!(
        inside_mbit > LIMIT_MBIT * 1.3,
        "in-site {inside_mbit} Mbit/s is not clearly above the {LIMIT_MBIT} Mbit/s uplink limit"
    );
    must(Some(&gwa.ns), &["tc", "qdisc", "del", "dev", "up0", "root"]);
    let t_htb = t0.elapsed();

    // --- 4. repair: b1 replaced by a new VM, same name --------------------------------
    let site_b = SiteId::from("b");
    let gw_before = wg_file(fabric.gateway_bootstrap(&site_b).expect("gw"));
    lab.kill(b1.wg_pid);
    lab.del_ns(&b1.ns);
    assert!(
        run(
            Some(&a1.ns),
            &["ping", "-n", "-c", "1", "-W", "1", &b1.overlay]
        )
        .is_err(),
        "b1 still answers after its namespace was deleted"
    );
    // repair renders the new VM's user data for the same member name (the fabric
    // refuses it if the address differs from the planned one)
    let b1_conf = wg_file(fabric.member_bootstrap(&member("b1")).expect("re-render"));
    assert!(
        b1_conf.contains(&format!("Address = {}/", b1.overlay)),
        "a replaced node keeps its address: {}",
        b1_conf.lines().nth(2).unwrap_or_default()
    );
    assert_eq!(
        wg_file(fabric.gateway_bootstrap(&site_b).expect("gw")),
        gw_before,
        "replacing a node must not change its gateway"
    );
    let ns = member_underlay(&mut lab, &gwb.ns, "b1", &site_b, 3);
    let b1_iface = iface(nodes.len());
    let pid_new = wg_up(&mut lab, &ns, &b1_iface, &b1_conf);
    assert!(
        ping_ok(&ns, &gwb.overlay, Duration::from_secs(10)),
        "replaced b1 cannot reach its gateway"
    );
    assert!(
        ping_ok(&a1.ns, &b1.overlay, Duration::from_secs(10)),
        "replaced b1 is not reachable from another site"
    );
    let _ = pid_new;
    let t_repair = t0.elapsed();

    // --- 5. live key rotation of c1, gateway c not restarted ---------------------------
    let (gwc, c1) = (node("gwc"), node("c1"));
    let site_c = SiteId::from("c");
    let update = fabric.rotate_member_key("c1").expect("rotate");
    assert_eq!(update.site, site_c);
    let key_of = |peers: &[intercloud_vpn::wireguard::Peer],
                  other: &[intercloud_vpn::wireguard::Peer]| {
        peers
            .iter()
            .find(|p| !other.iter().any(|o| o.public_key == p.public_key))
            .map(|p| p.public_key.clone())
            .expect("one peer changed")
    };
    let old_key = key_of(&update.before, &update.after);
    let new_key = key_of(&update.after, &update.before);
    let cmds = update.commands(&gwc.iface);
    assert_eq!(cmds.len(), 2, "{cmds:?}");
    for c in &cmds {
        let args: Vec<&str> = c.split_whitespace().collect();
        must(Some(&gwc.ns), &args);
    }
    // the member applies its new file to its running interface
    let q = split_wg_quick(&wg_file(
        fabric.member_bootstrap(&member("c1")).expect("c1"),
    ));
    run_input(
        Some(&c1.ns),
        &["wg", "setconf", &c1.iface, "/dev/stdin"],
        Some(&q.setconf),
    )
    .expect("member setconf");
    assert!(
        ping_ok(&c1.ns, &gwc.overlay, Duration::from_secs(10)),
        "c1 with its new key cannot reach its gateway"
    );
    assert!(
        ping_ok(&c1.ns, &a1.overlay, Duration::from_secs(10)),
        "c1 with its new key cannot reach a1"
    );
    let peers = must(Some(&gwc.ns), &["wg", "show", &gwc.iface, "peers"]);
    assert!(
        peers.contains(&new_key) && !peers.contains(&old_key),
        "{peers}"
    );
    assert!(lab.alive(gwc.wg_pid), "gateway c's daemon was restarted");
    let t_rotate = t0.elapsed();

    println!(
        "timings (s): setup {:.1}, all-pairs ping {:.1}, delay {:.1}, htb {:.1}, repair {:.1}, rotation {:.1}",
        setup.as_secs_f64(),
        t_ping.as_secs_f64(),
        t_delay.as_secs_f64(),
        t_htb.as_secs_f64(),
        t_repair.as_secs_f64(),
        t_rotate.as_secs_f64()
    );
    let socks: Vec<String> = nodes
        .iter()
        .map(|n| n.iface.as_str())
        .chain([b1_iface.as_str()])
        .map(|i| format!("/var/run/wireguard/{i}.sock"))
        .collect();
    let prefix = format!("icv-{pid}-wg-");
    drop(lab);
    let left = must(None, &["ip", "netns", "list"]);
    assert!(!left.contains(&prefix), "namespaces left behind: {left}");
    for s in socks {
        assert!(!std::path::Path::new(&s).exists(), "{s} left behind");
    }
}

#[test]
fn lab_cleans_up_when_a_test_fails() {
    if !common::netns_ready("lab_cleans_up_when_a_test_fails", &["ip", "sleep"]) {
        return;
    }
    let (mut ns, mut pid) = (String::new(), 0u32);
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut lab = Lab::new("guard");
        ns = lab.add_ns("x");
        pid = lab.spawn(&ns, &["sleep", "30"], &[]);
        panic!("a simulated failing test (expected in this test's output)");
    }));
    assert!(failed.is_err());
    assert!(!ns.is_empty() && pid != 0);
    let left = must(None, &["ip", "netns", "list"]);
    assert!(
        !left.contains(&ns),
        "{ns} left after a failing test: {left}"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "daemon {pid} survived a failing test"
    );
}

fn wg_public_key(n: &Node) -> String {
    must(Some(&n.ns), &["wg", "show", &n.iface, "public-key"])
        .trim()
        .to_owned()
}

#[test]
fn wg_quick_split_keeps_only_setconf_keys() {
    let q = split_wg_quick(
        "[Interface]\nPrivateKey = k\nAddress = 10.0.0.1/16, 10.1.0.1/16\nListenPort = 1\n\
         PostUp = sysctl -w net.ipv4.ip_forward=1\n\n[Peer]\nPublicKey = p\nAllowedIPs = 10.0.0.0/16\n",
    );
    assert_eq!(q.addresses, ["10.0.0.1/16", "10.1.0.1/16"]);
    assert_eq!(q.post_up, ["sysctl -w net.ipv4.ip_forward=1"]);
    assert!(!q.setconf.contains("Address") && !q.setconf.contains("PostUp"));
    assert!(q.setconf.contains("ListenPort = 1\n") && q.setconf.contains("[Peer]\n"));
}

/// The UDP delay relay, run by `three_site_overlay_in_namespaces` as a child process
/// inside the `wan` namespace (`ICV_RELAY=listen,target,delay_ms,lifetime_s`). Each
/// client address gets its own upstream socket, so the far side sees one peer per
/// client and replies are delayed the same way. It exits after its lifetime.
#[test]
#[ignore = "helper process started by three_site_overlay_in_namespaces"]
fn udp_delay_relay() {
    let Ok(spec) = std::env::var("ICV_RELAY") else {
        return;
    };
    let f: Vec<&str> = spec.split(',').collect();
    let listen: SocketAddr = f[0].parse().expect("listen address");
    let target: SocketAddr = f[1].parse().expect("target address");
    let delay = Duration::from_millis(f[2].parse().expect("delay ms"));
    let life = Duration::from_secs(f[3].parse().expect("lifetime s"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let _ = tokio::time::timeout(life, relay(listen, target, delay)).await;
    });
}

async fn relay(listen: SocketAddr, target: SocketAddr, delay: Duration) -> std::io::Result<()> {
    use tokio::net::UdpSocket;
    let front = Arc::new(UdpSocket::bind(listen).await?);
    let mut ups: BTreeMap<SocketAddr, Arc<UdpSocket>> = BTreeMap::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, client) = front.recv_from(&mut buf).await?;
        let up = match ups.get(&client) {
            Some(u) => u.clone(),
            None => {
                let u = Arc::new(UdpSocket::bind((listen.ip(), 0)).await?);
                u.connect(target).await?;
                let (back, front2) = (u.clone(), front.clone());
                tokio::spawn(async move {
                    let mut b = vec![0u8; 65_536];
                    while let Ok(n) = back.recv(&mut b).await {
                        let data = b[..n].to_vec();
                        let f = front2.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            let _ = f.send_to(&data, client).await;
                        });
                    }
                });
                ups.insert(client, u.clone());
                u
            }
        };
        let data = buf[..n].to_vec();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = up.send(&data).await;
        });
    }
}
