//! The composite fabric: the per-pair decision table and delegation to inner fabrics.

mod fakes;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use fakes::FakeNative;
use intercloud_core::{
    Bootstrap, Capabilities, ErrorKind, FabricChoice, FabricKind, LinkId, LinkSpec, LinkState,
    Member, PeerAccess, Result, SiteContext, SiteEndpoint, SiteId, VpnFabric,
};
use intercloud_vpn::ipsec::StrongSwanFabric;
use intercloud_vpn::{choose, CompositeFabric, Ipam, Mesh, PairFabric, Side, WireGuardFabric};
use secrecy::{ExposeSecret, SecretString};

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
        Arc::new(FakeNative {
            addressless: true,
            ..FakeNative::default()
        }),
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

    // native <-> native: both clouds configure their side. EC2's gateway has no
    // address before its connection: it goes first, and CloudStack's customer gateway
    // points at the tunnel address EC2 reports, with the key EC2 holds.
    let l1 = f
        .connect(&eps["cs"], &eps["ec2"], &LinkSpec::default())
        .await
        .unwrap();
    assert_eq!(
        ec2.calls.lock().unwrap().last().unwrap(),
        "connect ec2->cs at 198.51.100.2"
    );
    assert_eq!(
        cs.calls.lock().unwrap().last().unwrap(),
        "connect cs->ec2 at 52.10.1.100"
    );
    let offered = ec2.psks.lock().unwrap()[0].clone();
    assert_eq!(offered.len(), 40);
    assert!(
        !offered.starts_with('0'),
        "EC2 refuses keys starting with 0"
    );
    assert_eq!(cs.psks.lock().unwrap()[0], "Tunnel_psk_from_cloud");
    assert!(!l1.0.contains("Tunnel_psk") && !l1.0.contains(&offered));
    assert_eq!(f.link_status(&l1).await.unwrap(), LinkState::Pending);

    // native <-> strongSwan: CloudStack's side plus a swanctl connection on `one`
    let l2 = f
        .connect(&eps["one"], &eps["cs"], &LinkSpec::default())
        .await
        .unwrap();
    assert_eq!(
        cs.calls.lock().unwrap().last().unwrap(),
        "connect cs->one at 192.0.2.4"
    );
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
    assert_eq!(
        cs.calls.lock().unwrap().last().unwrap(),
        "release cs vgw-cs"
    );
    assert!(ss.gateway_bootstrap(&"one".into()).is_err());
    assert!(wg.gateway_bootstrap(&"one".into()).is_err());
}

const RA_PSK: &str = "RA-psk-S3CRET-42";

/// CloudStack's remote-access VPN as the composite sees it through the trait.
#[derive(Default)]
struct FakeRemoteAccess {
    /// Forget passwords (a user left from an earlier run).
    forget: bool,
    calls: Mutex<Vec<String>>,
    passwords: Mutex<BTreeMap<String, String>>,
}

#[async_trait]
impl VpnFabric for FakeRemoteAccess {
    fn kind(&self) -> FabricKind {
        FabricKind::L2tp
    }
    async fn prepare_site(&self, ctx: &SiteContext) -> Result<SiteEndpoint> {
        self.calls.lock().unwrap().push(format!(
            "createRemoteAccessVpn {} {}",
            ctx.site, ctx.overlay_subnet
        ));
        Ok(SiteEndpoint {
            site: ctx.site.clone(),
            kind: FabricKind::L2tp,
            public_address: Some("203.0.113.10".into()),
            overlay_subnet: ctx.overlay_subnet.clone(),
            resources: [
                ("public_ip".to_owned(), "ip-1".to_owned()),
                ("remote_access_vpn".to_owned(), "ra-1".to_owned()),
            ]
            .into(),
            attributes: [
                ("created".to_owned(), "true".to_owned()),
                ("cluster".to_owned(), ctx.cluster.clone()),
            ]
            .into(),
        })
    }
    async fn connect(&self, a: &SiteEndpoint, b: &SiteEndpoint, link: &LinkSpec) -> Result<LinkId> {
        let user = format!("ic-{}-{}", a.attributes["cluster"], b.site);
        self.calls
            .lock()
            .unwrap()
            .push(format!("addVpnUser {user}"));
        let pw = link.psk.as_ref().unwrap().expose_secret().to_owned();
        self.passwords.lock().unwrap().insert(user.clone(), pw);
        Ok(LinkId(format!(
            "l2tp:{}:{user}",
            a.resources["remote_access_vpn"]
        )))
    }
    fn member_bootstrap(&self, _member: &Member) -> Result<Bootstrap> {
        Ok(Bootstrap::default())
    }
    async fn link_status(&self, link: &LinkId) -> Result<LinkState> {
        let user = link.0.rsplit(':').next().unwrap();
        if self.passwords.lock().unwrap().contains_key(user) {
            Ok(LinkState::Up)
        } else {
            Err(intercloud_core::Error::not_found(format!("no user {user}")))
        }
    }
    async fn peer_access(&self, link: &LinkId) -> Result<Option<PeerAccess>> {
        let user = link.0.rsplit(':').next().unwrap().to_owned();
        let password = if self.forget {
            None
        } else {
            self.passwords
                .lock()
                .unwrap()
                .get(&user)
                .map(|p| SecretString::from(p.clone()))
        };
        Ok(Some(PeerAccess {
            address: Some("203.0.113.10".into()),
            psk: Some(SecretString::from(RA_PSK)),
            username: Some(user),
            password,
        }))
    }
    async fn disconnect(&self, link: &LinkId) -> Result<()> {
        let user = link.0.rsplit(':').next().unwrap().to_owned();
        self.calls
            .lock()
            .unwrap()
            .push(format!("removeVpnUser {user}"));
        self.passwords.lock().unwrap().remove(&user);
        Ok(())
    }
    async fn release_site(&self, ep: &SiteEndpoint) -> Result<()> {
        self.calls.lock().unwrap().push(format!(
            "deleteRemoteAccessVpn {}",
            ep.resources["public_ip"]
        ));
        Ok(())
    }
}

impl std::fmt::Debug for FakeRemoteAccess {
    // like the real backend: no password in Debug
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRemoteAccess").finish_non_exhaustive()
    }
}

fn l2tp_composite(ra: &Arc<FakeRemoteAccess>, ipam: &Ipam) -> CompositeFabric {
    let subnet = |s: &str| Some(ipam.site(&s.into()).unwrap().subnet.to_string());
    CompositeFabric::new(
        FabricChoice::L2tp,
        Arc::new(WireGuardFabric::new(Mesh::new(ipam.clone(), "ic0", 51820))),
        Arc::new(StrongSwanFabric::new()),
    )
    .with_site("cs", caps(true), Some(ra.clone() as Arc<dyn VpnFabric>))
    .with_site("one", caps(false), None)
    .with_site_context(&"cs".into(), subnet("cs"), BTreeMap::new())
    .unwrap()
    .with_site_context(
        &"one".into(),
        subnet("one"),
        [("public_address".to_owned(), "192.0.2.9".to_owned())].into(),
    )
    .unwrap()
}

fn whole_cidr_ctx(site: &str) -> SiteContext {
    // what the deployer passes: the cluster's CIDR, no hints
    SiteContext {
        site: site.into(),
        cluster: "c".into(),
        overlay_subnet: "10.77.0.0/16".into(),
        local_cidrs: vec![],
        hints: BTreeMap::new(),
    }
}

#[tokio::test]
async fn l2tp_pair_end_to_end_and_teardown_from_the_journal() {
    let counts: BTreeMap<SiteId, u32> = [("cs".into(), 2), ("one".into(), 2)].into();
    let ipam = Ipam::plan("10.77.0.0/16", &counts).unwrap();
    let cs_subnet = ipam.site(&"cs".into()).unwrap().subnet.to_string();
    let ra = Arc::new(FakeRemoteAccess::default());
    let f = l2tp_composite(&ra, &ipam);
    f.validate().unwrap();
    assert_eq!(
        f.plan(&"one".into(), &"cs".into()).unwrap(),
        PairFabric::L2tp { server: Side::B }
    );
    assert!(
        f.gateway_vm_sites().is_empty(),
        "an L2TP client only dials out"
    );

    let cs = f.prepare_site(&whole_cidr_ctx("cs")).await.unwrap();
    let one = f.prepare_site(&whole_cidr_ctx("one")).await.unwrap();
    assert_eq!(
        ra.calls.lock().unwrap()[0],
        format!("createRemoteAccessVpn cs {cs_subnet}"),
        "the site's own subnet replaces the cluster's CIDR"
    );
    assert_eq!(cs.resources["native.remote_access_vpn"], "ra-1");
    assert_eq!(one.attributes["composite.holders"], "l2tp-client");

    let link = f.connect(&cs, &one, &LinkSpec::default()).await.unwrap();
    assert_eq!(link.0, "composite:cs~one;native@cs=l2tp:ra-1:ic-c-one");
    assert_eq!(f.link_status(&link).await.unwrap(), LinkState::Up);
    let password = ra.passwords.lock().unwrap()["ic-c-one"].clone();
    assert_eq!(password.len(), 40);

    // The server side is the cloud's: no gateway VM. The client's gateway VM gets
    // xl2tpd, pppd and strongSwan files dialling the server with the user and PSK.
    assert!(f.gateway_bootstrap(&"cs".into()).unwrap().is_none());
    let boot = f.gateway_bootstrap(&"one".into()).unwrap().unwrap();
    let file = |path: &str| {
        boot.files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("{path} in {boot:?}"))
    };
    let xl2tpd = file("/etc/xl2tpd/xl2tpd.conf");
    assert!(xl2tpd.content.contains("[lac ic-cs]"), "{}", xl2tpd.content);
    assert!(xl2tpd.content.contains("lns = 203.0.113.10"));
    let ppp = file("/etc/ppp/options.l2tpd.ic-cs");
    assert_eq!(ppp.mode, "0600");
    assert!(ppp.content.contains("name ic-c-one"));
    assert!(ppp.content.contains(&format!("password \"{password}\"")));
    let swan = file("/etc/swanctl/conf.d/intercloud-ic-cs.conf");
    assert_eq!(swan.mode, "0600");
    let hex: String = RA_PSK.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(swan.content.contains(&format!("secret = 0x{hex}")));
    let up = file("/etc/ppp/ip-up.d/intercloud-ic-cs");
    assert!(
        up.content
            .contains(&format!("ip route replace {cs_subnet} dev")),
        "routes the server site's subnet into the tunnel: {}",
        up.content
    );
    assert!(boot.packages.contains(&"xl2tpd".to_owned()));
    // Secrets only inside mode-0600 files; never in Debug, ids or endpoints.
    for f in &boot.files {
        if f.content.contains(&password) || f.content.contains(&hex) {
            assert_eq!(f.mode, "0600", "{}", f.path);
        }
    }
    let shown = format!(
        "{f:?} {boot:?} {link} {} {}",
        serde_json::to_string(&cs).unwrap(),
        serde_json::to_string(&one).unwrap()
    );
    for secret in [password.as_str(), RA_PSK, hex.as_str()] {
        assert!(!shown.contains(secret), "{shown}");
    }

    // Another process (`down`) with the journal only: endpoints and link ids
    // as JSON, a fresh composite over the same clouds.
    let cs: SiteEndpoint = serde_json::from_str(&serde_json::to_string(&cs).unwrap()).unwrap();
    let one: SiteEndpoint = serde_json::from_str(&serde_json::to_string(&one).unwrap()).unwrap();
    let later = l2tp_composite(&ra, &ipam);
    let e = later.gateway_bootstrap(&"one".into()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("site one"), "{e}");
    assert_eq!(later.link_status(&link).await.unwrap(), LinkState::Up);
    later.disconnect(&link).await.unwrap();
    later.release_site(&one).await.unwrap();
    later.release_site(&cs).await.unwrap();
    let calls = ra.calls.lock().unwrap().clone();
    assert_eq!(
        calls[calls.len() - 2..],
        ["removeVpnUser ic-c-one", "deleteRemoteAccessVpn ip-1"]
    );
    assert!(later.link_status(&link).await.is_err(), "the user is gone");
}

#[tokio::test]
async fn l2tp_without_the_users_password_is_undone_and_explained() {
    let counts: BTreeMap<SiteId, u32> = [("cs".into(), 1), ("one".into(), 1)].into();
    let ipam = Ipam::plan("10.77.0.0/16", &counts).unwrap();
    let ra = Arc::new(FakeRemoteAccess {
        forget: true,
        ..FakeRemoteAccess::default()
    });
    let f = l2tp_composite(&ra, &ipam);
    let cs = f.prepare_site(&whole_cidr_ctx("cs")).await.unwrap();
    let one = f.prepare_site(&whole_cidr_ctx("one")).await.unwrap();
    let e = f
        .connect(&one, &cs, &LinkSpec::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let m = e.to_string();
    assert!(
        m.contains("site cs") && m.contains("site one") && m.contains("password"),
        "{m}"
    );
    assert_eq!(
        ra.calls.lock().unwrap().last().unwrap(),
        "removeVpnUser ic-c-one",
        "the half-made link is undone"
    );
}

#[tokio::test]
async fn two_remote_access_sites_agree_on_the_server_whatever_the_order() {
    let counts: BTreeMap<SiteId, u32> = [("cs-a".into(), 1), ("cs-b".into(), 1)].into();
    let ipam = Ipam::plan("10.77.0.0/16", &counts).unwrap();
    let (ra_a, ra_b) = (
        Arc::new(FakeRemoteAccess::default()),
        Arc::new(FakeRemoteAccess::default()),
    );
    let f = CompositeFabric::new(
        FabricChoice::L2tp,
        Arc::new(WireGuardFabric::new(Mesh::new(ipam, "ic0", 51820))),
        Arc::new(StrongSwanFabric::new()),
    )
    .with_site("cs-a", caps(true), Some(ra_a.clone() as Arc<dyn VpnFabric>))
    .with_site("cs-b", caps(true), Some(ra_b.clone() as Arc<dyn VpnFabric>));
    let (a, b) = (SiteId::from("cs-a"), SiteId::from("cs-b"));
    assert_eq!(
        f.plan(&a, &b).unwrap(),
        PairFabric::L2tp { server: Side::A }
    );
    assert_eq!(
        f.plan(&b, &a).unwrap(),
        PairFabric::L2tp { server: Side::B }
    );
    // prepared in either order, linked in either order: cs-a serves, cs-b dials
    let eb = f.prepare_site(&whole_cidr_ctx("cs-b")).await.unwrap();
    let ea = f.prepare_site(&whole_cidr_ctx("cs-a")).await.unwrap();
    assert_eq!(eb.attributes["composite.holders"], "l2tp-client");
    let link = f.connect(&eb, &ea, &LinkSpec::default()).await.unwrap();
    assert!(link.0.contains("native@cs-a=l2tp:"), "{link}");
    assert!(
        ra_b.calls.lock().unwrap().is_empty(),
        "cs-b's VPN is not used"
    );
    assert!(f.gateway_bootstrap(&b).unwrap().is_some());
    assert!(f.gateway_bootstrap(&a).unwrap().is_none());
}

#[tokio::test]
async fn impossible_wishes_name_the_sites_and_the_alternatives() {
    let counts: BTreeMap<SiteId, u32> = [("a".into(), 1), ("b".into(), 1)].into();
    let ipam = Ipam::plan("10.77.0.0/16", &counts).unwrap();
    let f = CompositeFabric::new(
        FabricChoice::L2tp,
        Arc::new(WireGuardFabric::new(Mesh::new(ipam, "ic0", 51820))),
        Arc::new(StrongSwanFabric::new()),
    )
    .with_site("a", caps(false), None)
    .with_site("b", caps(false), None);
    let e = f.validate().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let m = e.to_string();
    assert!(
        m.contains("sites a and b") && m.contains("CloudStack") && m.contains("`ipsec`"),
        "{m}"
    );
    let e = f.plan(&"a".into(), &"zz".into()).unwrap_err();
    assert!(e.to_string().contains("zz is not registered"), "{e}");
    let e = f.prepare_site(&whole_cidr_ctx("a")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "nothing is prepared");
    assert!(
        format!(
            "{:?}",
            PeerAccess {
                psk: Some(SecretString::from("S3CRET")),
                password: Some(SecretString::from("S3CRET")),
                ..PeerAccess::default()
            }
        )
        .matches("redacted")
        .count()
            == 2
    );
}
