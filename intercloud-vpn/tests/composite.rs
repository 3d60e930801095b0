//! The composite fabric: the per-pair decision table and delegation to inner fabrics.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use intercloud_core::{
    Bootstrap, Capabilities, ErrorKind, FabricChoice, FabricKind, LinkId, LinkSpec, LinkState,
    Member, Result, SiteContext, SiteEndpoint, SiteId, VpnFabric,
};
use intercloud_vpn::ipsec::{StrongSwanFabric, ATTR_ESP_POLICY, ATTR_IKE_POLICY};
use intercloud_vpn::{choose, CompositeFabric, Ipam, Mesh, PairFabric, Side, WireGuardFabric};
use secrecy::ExposeSecret;

fn caps(native: bool) -> Capabilities {
    Capabilities {
        native_vpn: native,
        ..Capabilities::default()
    }
}

#[test]
fn choose_table() {
    use FabricChoice::{Auto, Ipsec, L2tp, Wireguard};
    use PairFabric::*;
    let (n, p) = (true, false);
    let table = [
        // (a native, b native, wish) -> choice
        (n, n, Auto, Some(NativeIpsec)),
        (n, p, Auto, Some(NativeToStrongSwan { native: Side::A })),
        (p, n, Auto, Some(NativeToStrongSwan { native: Side::B })),
        (p, p, Auto, Some(WireGuard)),
        (n, n, Ipsec, Some(NativeIpsec)),
        (p, n, Ipsec, Some(NativeToStrongSwan { native: Side::B })),
        (p, p, Ipsec, Some(StrongSwan)),
        (n, n, Wireguard, Some(WireGuard)),
        (n, p, Wireguard, Some(WireGuard)),
        (p, p, Wireguard, Some(WireGuard)),
        (n, n, L2tp, Some(PairFabric::L2tp { server: Side::A })),
        (p, n, L2tp, Some(PairFabric::L2tp { server: Side::B })),
        (p, p, L2tp, None),
    ];
    for (a, b, wish, want) in table {
        let got = choose(&caps(a), &caps(b), wish);
        match want {
            Some(w) => assert_eq!(got.unwrap(), w, "{a} {b} {wish:?}"),
            None => {
                let e = got.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Unsupported);
                assert!(e.to_string().contains("wireguard"), "{e}");
            }
        }
    }
    assert_eq!(PairFabric::NativeIpsec.kind(), FabricKind::Ipsec);
    assert_eq!(PairFabric::WireGuard.kind(), FabricKind::WireGuard);
    assert_eq!(
        PairFabric::L2tp { server: Side::A }.kind(),
        FabricKind::L2tp
    );
}

/// A native cloud gateway that records what it was asked.
#[derive(Debug, Default)]
struct FakeNative {
    calls: Mutex<Vec<String>>,
    psks: Mutex<Vec<String>>,
}

#[async_trait]
impl VpnFabric for FakeNative {
    fn kind(&self) -> FabricKind {
        FabricKind::Ipsec
    }
    async fn prepare_site(&self, ctx: &SiteContext) -> Result<SiteEndpoint> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("prepare {}", ctx.site));
        Ok(SiteEndpoint {
            site: ctx.site.clone(),
            kind: FabricKind::Ipsec,
            public_address: Some(format!("198.51.100.{}", ctx.site.to_string().len())),
            overlay_subnet: ctx.overlay_subnet.clone(),
            resources: [("vpn_gateway".to_owned(), format!("vgw-{}", ctx.site))].into(),
            attributes: [
                (
                    ATTR_IKE_POLICY.to_owned(),
                    "aes128-sha1;modp1536".to_owned(),
                ),
                (ATTR_ESP_POLICY.to_owned(), "aes128-sha1".to_owned()),
            ]
            .into(),
        })
    }
    async fn connect(&self, a: &SiteEndpoint, b: &SiteEndpoint, link: &LinkSpec) -> Result<LinkId> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("connect {}->{}", a.site, b.site));
        if let Some(p) = &link.psk {
            self.psks.lock().unwrap().push(p.expose_secret().to_owned());
        }
        Ok(LinkId(format!("vpn-{}-{}", a.site, b.site)))
    }
    fn member_bootstrap(&self, _member: &Member) -> Result<Bootstrap> {
        Ok(Bootstrap::default())
    }
    async fn link_status(&self, _link: &LinkId) -> Result<LinkState> {
        Ok(LinkState::Pending)
    }
    async fn disconnect(&self, link: &LinkId) -> Result<()> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("disconnect {link}"));
        Ok(())
    }
    async fn release_site(&self, ep: &SiteEndpoint) -> Result<()> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("release {}", ep.site));
        Ok(())
    }
}

fn ctx(site: &str, subnet: &str, public: &str) -> SiteContext {
    SiteContext {
        site: site.into(),
        cluster: "c".into(),
        overlay_subnet: subnet.into(),
        local_cidrs: vec![],
        hints: [
            ("public_address".to_owned(), public.to_owned()),
            ("private_address".to_owned(), public.to_owned()),
        ]
        .into(),
    }
}

#[tokio::test]
async fn composite_delegates_per_pair() {
    // cs and ec2 have native gateways, one and nebula do not.
    let counts: BTreeMap<SiteId, u32> = ["cs", "ec2", "nebula", "one"]
        .into_iter()
        .map(|s| (SiteId::from(s), 2))
        .collect();
    let ipam = Ipam::plan("10.77.0.0/16", &counts).unwrap();
    let subnet = |s: &str| ipam.site(&s.into()).unwrap().subnet.to_string();
    let wg = Arc::new(WireGuardFabric::new(Mesh::new(ipam.clone(), "ic0", 51820)));
    let ss = Arc::new(StrongSwanFabric::new());
    let (cs, ec2) = (
        Arc::new(FakeNative::default()),
        Arc::new(FakeNative::default()),
    );
    let f = CompositeFabric::new(FabricChoice::Auto, wg.clone(), ss.clone())
        .with_site("cs", caps(true), Some(cs.clone() as Arc<dyn VpnFabric>))
        .with_site("ec2", caps(true), Some(ec2.clone() as Arc<dyn VpnFabric>))
        .with_site("one", caps(false), None)
        // claims native_vpn but has no native fabric: treated as none
        .with_site("nebula", caps(true), None);
    assert_eq!(
        f.plan(&"nebula".into(), &"one".into()).unwrap(),
        PairFabric::WireGuard
    );

    let mut eps = BTreeMap::new();
    for (i, s) in ["cs", "ec2", "nebula", "one"].into_iter().enumerate() {
        let ep = f
            .prepare_site(&ctx(s, &subnet(s), &format!("192.0.2.{}", i + 1)))
            .await
            .unwrap();
        assert_eq!(ep.kind, FabricKind::Composite);
        eps.insert(s, ep);
    }
    assert_eq!(eps["cs"].resources["native.vpn_gateway"], "vgw-cs");
    assert_eq!(
        eps["one"].attributes["strongswan.ipsec_gateway"],
        "strongswan"
    );
    assert!(eps["one"].attributes.contains_key("wireguard.public_key"));
    assert!(!eps["cs"].attributes.contains_key("wireguard.public_key"));

    // native <-> native: both clouds configure their side, with one PSK
    let l1 = f
        .connect(&eps["cs"], &eps["ec2"], &LinkSpec::default())
        .await
        .unwrap();
    assert_eq!(cs.calls.lock().unwrap().last().unwrap(), "connect cs->ec2");
    assert_eq!(ec2.calls.lock().unwrap().last().unwrap(), "connect ec2->cs");
    let psk_cs = cs.psks.lock().unwrap()[0].clone();
    assert_eq!(psk_cs, ec2.psks.lock().unwrap()[0]);
    assert_eq!(f.link_status(&l1).await.unwrap(), LinkState::Pending);

    // native <-> strongSwan: CloudStack's side plus a swanctl connection on `one`
    let l2 = f
        .connect(&eps["one"], &eps["cs"], &LinkSpec::default())
        .await
        .unwrap();
    assert_eq!(cs.calls.lock().unwrap().last().unwrap(), "connect cs->one");
    let conns = ss.connections(&"one".into());
    assert_eq!(conns.len(), 1);
    assert_eq!(
        conns[0].policy.ike, "aes128-sha1-modp1536",
        "CloudStack's policy"
    );
    assert_eq!(conns[0].remote_ts, [subnet("cs")]);
    assert_eq!(
        conns[0].psk.expose_secret(),
        cs.psks.lock().unwrap().last().unwrap(),
        "both sides got the same PSK"
    );

    // neither native: WireGuard
    let l3 = f
        .connect(&eps["nebula"], &eps["one"], &LinkSpec::default())
        .await
        .unwrap();
    assert_eq!(f.link_status(&l3).await.unwrap(), LinkState::Up);
    let boot = f
        .member_bootstrap(&Member {
            name: "w-1".into(),
            role: "worker".into(),
            site: "one".into(),
            overlay_ip: ipam
                .clone()
                .assign("w-1", &"one".into())
                .unwrap()
                .to_string(),
        })
        .unwrap();
    assert!(boot
        .files
        .iter()
        .any(|f| f.path == "/etc/wireguard/ic0.conf"));
    assert!(
        boot.commands
            .iter()
            .any(|c| c.starts_with("ip route replace")),
        "{boot:?}"
    );
    assert_eq!(
        f.connect(&eps["one"], &eps["nebula"], &LinkSpec::default())
            .await
            .unwrap(),
        l3,
        "connect is idempotent"
    );

    for l in [&l1, &l2, &l3] {
        f.disconnect(l).await.unwrap();
        assert!(f.link_status(l).await.is_err());
        f.disconnect(l).await.unwrap();
    }
    assert!(cs
        .calls
        .lock()
        .unwrap()
        .contains(&"disconnect vpn-cs-one".to_owned()));
    assert!(ss.connections(&"one".into()).is_empty());
    for ep in eps.values() {
        f.release_site(ep).await.unwrap();
    }
    assert_eq!(cs.calls.lock().unwrap().last().unwrap(), "release cs");
    assert!(ss.gateway_bootstrap(&"one".into()).is_err());
    assert!(wg.gateway_bootstrap(&"one".into()).is_err());
}

#[tokio::test]
async fn l2tp_pairs_and_unknown_sites_are_clear_errors() {
    let counts: BTreeMap<SiteId, u32> = [("a".into(), 1), ("b".into(), 1)].into();
    let ipam = Ipam::plan("10.77.0.0/16", &counts).unwrap();
    let f = CompositeFabric::new(
        FabricChoice::L2tp,
        Arc::new(WireGuardFabric::new(Mesh::new(ipam, "ic0", 51820))),
        Arc::new(StrongSwanFabric::new()),
    )
    .with_site("a", caps(false), None)
    .with_site("b", caps(false), None);
    let e = f.plan(&"a".into(), &"b".into()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let e = f.plan(&"a".into(), &"zz".into()).unwrap_err();
    assert!(e.to_string().contains("zz is not registered"), "{e}");
}
