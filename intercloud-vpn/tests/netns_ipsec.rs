//! strongSwan site-to-site tunnels between two namespaces, from rendered configs
//! (root only).
//!
//! Each namespace is a gateway VM: underlay 192.168.88.{1,2} on a veth pair, its site
//! network 10.{1,2}.0.1 on `lo`. A throwaway `charon-systemd` per namespace runs with a
//! private `strongswan.conf` (ESP in userspace: `kernel-libipsec`, since this kernel
//! has no ESP), loads the rendered `swanctl.conf`, and traffic must flow 10.1 → 10.2.
//! Three policies: two intercloud strongSwan gateways (IKEv2 default), a strongSwan
//! gateway facing an emulated CloudStack VPC gateway (`aes128-sha1;modp1536`), and
//! one facing an emulated EC2 tunnel (IKEv1 main mode, `aes-128-cbc`/`sha1`/`group2`),
//! and two gateways whose files come from `StrongSwanFabric`'s user data.
//!
//! Skips (loudly) without root or tools; fails instead when
//! `INTERCLOUD_REQUIRE_NETNS=1`. Install the tools with `scripts/vpn-deps.sh`.

mod common;

use std::time::{Duration, Instant};

use common::{charon, must, ping_times, run, veth, wait_until, Lab};
use intercloud_core::{LinkSpec, SiteContext, VpnFabric};
use intercloud_vpn::ipsec::{swanctl_conf, Ec2Phase, IpsecPolicy, SiteToSite, StrongSwanFabric};
use secrecy::SecretString;

const TOOLS: &[&str] = &["ip", "ping", "charon-systemd", "swanctl"];

fn conn(a: bool, policy: &IpsecPolicy, psk: &str) -> SiteToSite {
    let (l, r, lts, rts) = if a {
        ("192.168.88.1", "192.168.88.2", "10.1.0.0/16", "10.2.0.0/16")
    } else {
        ("192.168.88.2", "192.168.88.1", "10.2.0.0/16", "10.1.0.0/16")
    };
    SiteToSite {
        name: "s2s".into(),
        local_addr: l.into(),
        remote_addr: r.into(),
        local_id: None,
        remote_id: None,
        local_ts: vec![lts.into()],
        remote_ts: vec![rts.into()],
        policy: policy.clone(),
        initiate: a,
        psk: SecretString::from(psk.to_owned()),
    }
}

/// Brings up both gateways with `policy` (a initiates); returns the RTTs through ESP.
fn tunnel(label: &str, policy: &IpsecPolicy, want: [&str; 3]) -> Vec<f64> {
    let psk = "Iw2IAN9XUsQeYUrkMGP3kP59ugFDkfHg";
    tunnel_with(
        label,
        &swanctl_conf(&[conn(true, policy, psk)]).expect("render a"),
        &swanctl_conf(&[conn(false, policy, psk)]).expect("render b"),
        want,
    )
}

/// Brings up gateway a with `conf_a` and b with `conf_b` (a initiates); returns the
/// RTTs from 10.1.0.1 to 10.2.0.1 through ESP.
fn tunnel_with(label: &str, conf_a: &str, conf_b: &str, want: [&str; 3]) -> Vec<f64> {
    let mut lab = Lab::new(&format!("ipsec{label}"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let ga = lab.add_ns("a");
    let gb = lab.add_ns("b");
    veth(&ga, "va", &gb, "vb");
    must(
        None,
        &[
            "ip",
            "-n",
            &ga,
            "addr",
            "add",
            "192.168.88.1/24",
            "dev",
            "va",
        ],
    );
    must(
        None,
        &[
            "ip",
            "-n",
            &gb,
            "addr",
            "add",
            "192.168.88.2/24",
            "dev",
            "vb",
        ],
    );
    must(
        None,
        &["ip", "-n", &ga, "addr", "add", "10.1.0.1/32", "dev", "lo"],
    );
    must(
        None,
        &["ip", "-n", &gb, "addr", "add", "10.2.0.1/32", "dev", "lo"],
    );
    let ub = charon(&mut lab, &gb, &tmp.path().join("b"), conf_b);
    let ua = charon(&mut lab, &ga, &tmp.path().join("a"), conf_a);
    // a's start_action = start brings the tunnel up by itself.
    let up = wait_until(Duration::from_secs(10), || {
        run(None, &["swanctl", "--list-sas", "--uri", &ub]).is_ok_and(|o| o.contains("INSTALLED"))
    });
    assert!(
        up,
        "{label}: no CHILD_SA installed; a's log:\n{}",
        std::fs::read_to_string(tmp.path().join("a/charon.log")).unwrap_or_default()
    );
    let sas = must(None, &["swanctl", "--list-sas", "--uri", &ua]);
    for w in want {
        assert!(sas.contains(w), "{label}: negotiated SAs lack {w}: {sas}");
    }
    let rtt = ping_times(&ga, "10.2.0.1", 5)
        .or_else(|_| ping_times(&ga, "10.2.0.1", 5))
        .unwrap_or_else(|e| panic!("{label}: no traffic through the tunnel: {e}"));
    // The traffic really went through ESP: the child SA counted bytes.
    let sas = must(None, &["swanctl", "--list-sas", "--uri", &ua]);
    assert!(
        sas.lines()
            .any(|l| l.trim_start().starts_with("in ") && !l.contains(" 0 bytes")),
        "{label}: no bytes on the child SA: {sas}"
    );
    drop(lab);
    rtt
}

#[test]
fn strongswan_site_to_site_carries_traffic() {
    if !common::netns_ready("strongswan_site_to_site_carries_traffic", TOOLS) {
        return;
    }
    let t0 = Instant::now();
    let default = IpsecPolicy::strongswan_default();
    let cloudstack = IpsecPolicy::cloudstack(
        "aes128-sha1;modp1536",
        "aes128-sha1;modp1536",
        86_400,
        3_600,
        Some("ike"),
        true,
    )
    .expect("cloudstack policy");
    let phase = |lifetime_s, mode: &str| Ec2Phase {
        encryption: "aes-128-cbc".into(),
        authentication: "sha1".into(),
        pfs_group: Some("group2".into()),
        lifetime_s,
        mode: Some(mode.into()),
    };
    let ec2 = IpsecPolicy::ec2(&phase(28_800, "main"), &phase(3_600, "tunnel"), Some(10))
        .expect("ec2 policy");
    for (label, policy, want) in [
        (
            "v2",
            &default,
            [
                "IKEv2",
                "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
                "ESP:AES_CBC-256/HMAC_SHA2_256_128",
            ],
        ),
        (
            "cs",
            &cloudstack,
            [
                "IKEv2",
                "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1536",
                "ESP:AES_CBC-128/HMAC_SHA1_96",
            ],
        ),
        (
            "ec2",
            &ec2,
            [
                "IKEv1",
                "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024",
                "ESP:AES_CBC-128/HMAC_SHA1_96/MODP_1024",
            ],
        ),
    ] {
        let t = Instant::now();
        let rtt = tunnel(label, policy, want);
        println!(
            "{label}: IKE {} ESP {} v{:?}: tunnel up and pinged in {:.2} s, RTT {rtt:?} ms",
            policy.ike,
            policy.esp,
            policy.version,
            t.elapsed().as_secs_f64()
        );
    }
    // The same through StrongSwanFabric, as the deployer drives it: the gateways'
    // user data (`gateway_bootstrap`) is what charon loads.
    let t = Instant::now();
    let fabric = StrongSwanFabric::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let ctx = |site: &str, addr: &str, net: &str| SiteContext {
        site: site.into(),
        cluster: "icv".into(),
        overlay_subnet: net.into(),
        local_cidrs: vec![],
        hints: [
            ("public_address".to_owned(), addr.to_owned()),
            ("private_address".to_owned(), addr.to_owned()),
        ]
        .into(),
    };
    // Gateway a does not know its private address (as before its VM exists): its
    // charon binds `%any` and identifies as its public address.
    let mut ctx_a = ctx("a", "192.168.88.1", "10.1.0.0/16");
    ctx_a.hints.remove("private_address");
    let ea = rt.block_on(fabric.prepare_site(&ctx_a)).expect("prepare a");
    let eb = rt
        .block_on(fabric.prepare_site(&ctx("b", "192.168.88.2", "10.2.0.0/16")))
        .expect("prepare b");
    rt.block_on(fabric.connect(&eb, &ea, &LinkSpec::default()))
        .expect("connect");
    let user_data = |site: &str| {
        let boot = fabric
            .gateway_bootstrap(&site.into())
            .expect("gateway user data");
        assert_eq!(boot.files[0].mode, "0600");
        boot.files[0].content.clone()
    };
    assert!(user_data("a").contains("local_addrs = %any"));
    let rtt = tunnel_with(
        "fabric",
        &user_data("a"),
        &user_data("b"),
        [
            "IKEv2",
            "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
            "ESP:AES_CBC-256/HMAC_SHA2_256_128",
        ],
    );
    println!(
        "fabric: StrongSwanFabric user data, generated PSK: up and pinged in {:.2} s, RTT {rtt:?} ms",
        t.elapsed().as_secs_f64()
    );
    println!("all IPsec cases: {:.1} s", t0.elapsed().as_secs_f64());
}
