//! The core conformance suite and a VPN round trip against a real moto 5.2.5 EC2
//! server, started here on an ephemeral loopback port with SigV4 enforced.
//!
//! The Python venv holding moto comes from `INTERCLOUD_VENV`, or else from the
//! project's `scripts/pyenv.sh` (which creates and caches it; a first run downloads
//! moto from PyPI). When neither works the tests fail with a message saying so:
//! they never pass silently without moto.
//!
//! Auth: moto checks signatures against its own IAM users, so the server starts with
//! `INITIAL_NO_AUTH_ACTION_COUNT=3`; the three unchecked calls create an IAM user, its
//! access key and an `ec2:*` policy. Every later call must carry a valid SigV4
//! signature made with that key (a wrong secret is refused: see
//! `moto_refuses_a_wrong_secret`).

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use intercloud_core::testkit::{self, Fixture};
use intercloud_core::{
    CloudProvider, Credentials, ErrorKind, FabricKind, LinkSpec, LinkState, SiteContext,
    SiteEndpoint, VmFilter, VpnFabric, TAG_INDEX, TAG_KEY,
};
use intercloud_ec2::model::TAG_INDEX_BASE;
use intercloud_ec2::query::QueryRequest;
use intercloud_ec2::query::{filter, ALIVE_STATES};
use intercloud_ec2::{Ec2Builder, Ec2Provider};

/// The venv with `moto_server`, found or created once per test binary.
fn venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        if let Some(v) = std::env::var_os("INTERCLOUD_VENV").filter(|v| !v.is_empty()) {
            let v = PathBuf::from(v);
            assert!(
                v.join("bin/moto_server").exists(),
                "INTERCLOUD_VENV={} has no bin/moto_server; unset it to let scripts/pyenv.sh make the venv",
                v.display()
            );
            return v;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pyenv.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| {
                panic!("moto tests need a Python venv: running {} failed: {e}", script.display())
            });
        assert!(
            out.status.success(),
            "moto tests need a Python venv: {} exited with {} (needs python3 with venv and PyPI access, or set INTERCLOUD_VENV)",
            script.display(),
            out.status
        );
        let v = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(
            v.join("bin/moto_server").exists(),
            "{} printed {}, which has no bin/moto_server",
            script.display(),
            v.display()
        );
        v
    })
}

/// A moto server process, killed (and reaped) on drop, even when a test panics.
struct Moto {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Moto {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    fn log_tail(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("no free loopback port");
        let log = std::env::temp_dir().join(format!("intercloud-ec2-moto-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("moto log file");
        let err_file = log_file.try_clone().expect("moto log file");
        let child = Command::new(venv().join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto_server from {}: {e}", venv().display()));
        let mut moto = Moto { child, port, log };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = http
                .get(format!("{}moto-api/data.json", moto.url()))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return moto;
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!(
                    "moto_server exited early ({status}); log:\n{}",
                    moto.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "moto_server not ready on port {} after 60 s; log:\n{}",
                moto.port,
                moto.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn provider(&self, id: &str, secret: &str) -> Ec2Provider {
        Ec2Builder::aws()
            .site("moto")
            .region("us-east-1")
            .endpoint(self.url())
            .credentials(Credentials::ec2(id, secret, None))
            .build()
            .expect("provider")
    }

    /// The three unchecked calls: an IAM user with an access key allowed `ec2:*`.
    /// Returns (access key id, secret).
    async fn iam_key(&self) -> (String, String) {
        let boot = self.provider("AKIDBOOTSTRAP", "bootstrap-secret");
        let iam = |action: &'static str| QueryRequest::with_version(action, "2010-05-08");
        let c = boot.client();
        c.call_service("iam", &iam("CreateUser").param("UserName", "intercloud"))
            .await
            .expect("IAM CreateUser");
        let key = c
            .call_service(
                "iam",
                &iam("CreateAccessKey").param("UserName", "intercloud"),
            )
            .await
            .expect("IAM CreateAccessKey");
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*"}]}"#;
        c.call_service(
            "iam",
            &iam("PutUserPolicy")
                .param("UserName", "intercloud")
                .param("PolicyName", "ec2-all")
                .param("PolicyDocument", policy),
        )
        .await
        .expect("IAM PutUserPolicy");
        let id = key
            .text_at("CreateAccessKeyResult/AccessKey/AccessKeyId")
            .expect("AccessKeyId")
            .to_owned();
        let secret = key
            .text_at("CreateAccessKeyResult/AccessKey/SecretAccessKey")
            .expect("SecretAccessKey")
            .to_owned();
        (id, secret)
    }

    /// A provider signing with a valid IAM key (auth enforced from here on).
    async fn authorised(&self) -> Ec2Provider {
        let (id, secret) = self.iam_key().await;
        self.provider(&id, &secret)
    }
}

/// Stops an instance with EC2's own `StopInstances`, as an AWS user would.
struct StopThroughEc2<'a>(&'a Ec2Provider);

#[async_trait::async_trait]
impl testkit::StopVm for StopThroughEc2<'_> {
    async fn stop(&self, id: &intercloud_core::VmId) {
        self.0
            .client()
            .call(&intercloud_ec2::query::stop_instances(&[id.as_str()]))
            .await
            .unwrap_or_else(|e| panic!("StopInstances {id}: {e}"));
    }
}

fn fixture() -> Fixture {
    Fixture::new("t3.micro")
        .image("ami-1e749f67")
        .missing_id("i-0123456789abcdef0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_conformance_suite_with_sigv4_enforced() {
    let moto = Moto::start().await;
    let p = moto.authorised().await;
    // `run_all` but `chosen_address_is_honoured`, whose refusal half moto cannot
    // answer (see `moto_places_an_instance_at_the_requested_address`).
    let fx = fixture();
    testkit::create_list_delete(&p, &fx).await;
    testkit::retried_create_is_idempotent(&p, &fx).await;
    testkit::delete_is_idempotent(&p, &fx).await;
    testkit::filters_select_exactly(&p, &fx).await;
    testkit::state_progresses_to_running(&p, &fx).await;
    testkit::delete_is_idempotent(&p, &fx).await;
    testkit::stopped_vm_starts_again(&p, &fx, Some(&StopThroughEc2(&p))).await;

    // Capacity from moto's account attributes (max-instances 20), nothing alive now.
    let cap = p.capacity().await.expect("capacity");
    assert_eq!(cap.instances.max, Some(20));
    assert_eq!(cap.instances.used, Some(0), "the suite cleaned up: {cap:?}");
    let zones = p.availability_zones().await.expect("zones");
    assert!(zones.iter().any(|z| z.name == "us-east-1a"), "{zones:?}");
    let images = p
        .images(&["amazon"], Some("ubuntu/images/hvm-ssd/ubuntu-xenial*"))
        .await
        .expect("images");
    assert!(images.iter().any(|i| i.id == "ami-785db401"), "{images:?}");
}

/// On moto, which lists its default VPC's default subnets and takes `RunInstances`
/// with `PrivateIpAddress` + `SubnetId`: the guest network is the lowest zone's default
/// subnet, an instance gets exactly the requested address, and the network then
/// reports it in use. moto refuses an address in use with a plain Python exception
/// (`Subnet.request_ip` raises "IP already in use": an HTTP 500 page), not AWS's
/// `InvalidIPAddress.InUse`, so that half of the conformance scenario runs against
/// the simulator only; here it must merely fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_places_an_instance_at_the_requested_address() {
    let moto = Moto::start().await;
    let p = moto.authorised().await;
    let net = p
        .guest_network()
        .await
        .expect("guest_network")
        .expect("a subnet");
    assert!(net.id.starts_with("subnet-"), "{net:?}");
    assert!(
        net.vpc.as_deref().is_some_and(|v| v.starts_with("vpc-")),
        "{net:?}"
    );
    let subnet = p.guest_subnet().await.unwrap().unwrap();
    assert_eq!(
        subnet.zone.as_deref(),
        Some("us-east-1a"),
        "the lowest zone"
    );
    let (base, _) = net.cidr.split_once('/').expect("a CIDR");
    let octets: Vec<u8> = base.split('.').map(|o| o.parse().unwrap()).collect();
    let address = format!("{}.{}.{}.77", octets[0], octets[1], octets[2]);
    assert!(!net.in_use.contains(&address), "{:?}", net.in_use);

    let cluster = testkit::fresh_cluster("addr");
    let mut spec = fixture().spec(&cluster, "worker");
    spec.addresses = vec![address.clone()];
    let ids = p.create_vms(&spec, 1).await.expect("create at an address");
    let vms = p.list_vms(&VmFilter::key(&spec.key)).await.expect("list");
    assert_eq!(vms.len(), 1);
    assert_eq!(vms[0].id, ids[0]);
    assert_eq!(vms[0].private_ip.as_deref(), Some(address.as_str()));
    let after = p.guest_network().await.unwrap().unwrap();
    assert!(after.in_use.contains(&address), "{:?}", after.in_use);

    let mut clash = fixture().spec(&cluster, "worker");
    clash.addresses = vec![address.clone()];
    assert!(p.create_vms(&clash, 1).await.is_err());
    let mut two = fixture().spec(&cluster, "worker");
    two.addresses = vec![address.clone(), address.clone()];
    let err = p.create_vms(&two, 2).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    assert!(err.to_string().contains("one per call"), "{err}");
    testkit::cleanup(&p, &cluster).await;
}

/// On moto: a batch is indexed by `intercloud-index-base` + `amiLaunchIndex` alone (no
/// instance carries an explicit index, so no CreateTags was sent); top-ups of a
/// contiguous range and of a range with a gap both restore indices `0..5`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_batch_is_indexed_by_its_base_and_top_ups_fill_gaps() {
    let moto = Moto::start().await;
    let p = moto.authorised().await;
    let cluster = testkit::fresh_cluster("base");
    let spec = fixture().spec(&cluster, "worker");
    let ids = p.create_vms(&spec, 5).await.expect("create 5");

    let key_filter = [
        filter(format!("tag:{TAG_KEY}"), [spec.key.as_str()]),
        filter("instance-state-name", ALIVE_STATES),
    ];
    let raw = p.describe_instances(&key_filter).await.expect("describe");
    assert_eq!(raw.len(), 5);
    for inst in &raw {
        assert_eq!(inst.tags.get(TAG_INDEX_BASE).map(String::as_str), Some("0"));
        assert!(
            !inst.tags.contains_key(TAG_INDEX) && !inst.tags.contains_key("Name"),
            "no per-instance tags: {inst:?}"
        );
    }
    let indexed = |vms: Vec<intercloud_core::Vm>| {
        let mut v: Vec<_> = vms
            .into_iter()
            .map(|vm| (vm.index(), vm.name, vm.id))
            .collect();
        v.sort();
        v
    };
    let listed = indexed(p.list_vms(&VmFilter::key(&spec.key)).await.expect("list"));
    assert_eq!(
        listed,
        (0..5u32)
            .map(|i| (Some(i), spec.key.vm_name(i), ids[i as usize].clone()))
            .collect::<Vec<_>>()
    );

    // Contiguous top-up: 1 and 2 gone, one RunInstances with base 1.
    p.delete_vm(&ids[1]).await.expect("delete 1");
    p.delete_vm(&ids[2]).await.expect("delete 2");
    let again = p.create_vms(&spec, 5).await.expect("top-up 1..3");
    assert_eq!(
        (again[0].clone(), again[3].clone(), again[4].clone()),
        (ids[0].clone(), ids[3].clone(), ids[4].clone())
    );
    assert!(again[1] != ids[1] && again[2] != ids[2]);
    let raw = p.describe_instances(&key_filter).await.expect("describe");
    let base1 = raw
        .iter()
        .filter(|i| i.tags.get(TAG_INDEX_BASE).map(String::as_str) == Some("1"))
        .count();
    assert_eq!(base1, 2, "{raw:?}");
    assert!(raw.iter().all(|i| !i.tags.contains_key(TAG_INDEX)));

    // Top-up with a gap: 1 and 3 gone, tagged one by one.
    p.delete_vm(&again[1]).await.expect("delete 1");
    p.delete_vm(&again[3]).await.expect("delete 3");
    let third = p.create_vms(&spec, 5).await.expect("top-up 1, 3");
    let listed = indexed(p.list_vms(&VmFilter::key(&spec.key)).await.expect("list"));
    assert_eq!(
        listed,
        (0..5u32)
            .map(|i| (Some(i), spec.key.vm_name(i), third[i as usize].clone()))
            .collect::<Vec<_>>()
    );
    let raw = p.describe_instances(&key_filter).await.expect("describe");
    assert_eq!(
        raw.iter()
            .filter(|i| i.tags.contains_key(TAG_INDEX))
            .count(),
        2,
        "the gap's instances carry explicit indices"
    );
    testkit::cleanup(&p, &cluster).await;
    assert!(p
        .list_vms(&VmFilter::cluster(&cluster))
        .await
        .expect("list")
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_refuses_a_wrong_secret() {
    let moto = Moto::start().await;
    let (id, _) = moto.iam_key().await;
    let wrong = moto.provider(&id, "S3CRET-wrong-secret");
    let e = wrong
        .list_vms(&Default::default())
        .await
        .expect_err("a wrong secret must be refused");
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    let text = format!("{e} {e:?}");
    assert!(!text.contains("S3CRET"), "{text}");
    assert!(text.contains("AuthFailure"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_vpn_gateway_customer_gateway_connection_round_trip() {
    let moto = Moto::start().await;
    let p = moto.authorised().await;
    let vpc = p
        .client()
        .call(&QueryRequest::new("CreateVpc").param("CidrBlock", "10.50.0.0/16"))
        .await
        .expect("CreateVpc");
    let vpc_id = vpc.text_at("vpc/vpcId").expect("vpcId").to_owned();
    // moto 5.2.5 has no CreateVpnConnectionRoute (HTTP 500): routes are off here and
    // covered by the replay tests.
    let fabric = p.vpn_fabric().static_routes(false);
    assert_eq!(fabric.kind(), FabricKind::Ipsec);
    let ctx = SiteContext {
        site: p.site().clone(),
        cluster: "vpnc".into(),
        overlay_subnet: "10.8.1.0/24".into(),
        local_cidrs: vec!["10.50.0.0/16".into()],
        hints: [("vpc_id".to_owned(), vpc_id.clone())].into(),
    };
    let ep = fabric.prepare_site(&ctx).await.expect("prepare_site");
    let vgw = ep.resources["vpn_gateway"].clone();
    assert!(vgw.starts_with("vgw-"), "{vgw}");
    let again = fabric.prepare_site(&ctx).await.expect("prepare_site again");
    assert_eq!(
        again.resources["vpn_gateway"], vgw,
        "prepare_site is idempotent"
    );

    let remote = SiteEndpoint {
        site: "hokkaido".into(),
        kind: FabricKind::Ipsec,
        public_address: Some("203.0.113.10".into()),
        overlay_subnet: "10.8.2.0/24".into(),
        resources: Default::default(),
        attributes: Default::default(),
    };
    let link = fabric
        .connect(&ep, &remote, &LinkSpec::default())
        .await
        .expect("connect");
    assert!(link.0.starts_with("vpn-"), "{link}");
    let link2 = fabric
        .connect(&remote, &ep, &LinkSpec::default())
        .await
        .expect("connect again");
    assert_eq!(
        link2, link,
        "connect is idempotent, whatever the endpoint order"
    );
    assert_eq!(
        fabric.link_status(&link).await.expect("status"),
        LinkState::Up
    );
    let tunnels = fabric.tunnels(&link).await.expect("tunnels");
    assert!(!tunnels.is_empty());
    for t in &tunnels {
        use secrecy::ExposeSecret;
        assert!(!t.vpn_gateway_outside_address.is_empty());
        let psk = t.pre_shared_key.expose_secret().to_owned();
        assert!(psk.len() >= 8, "a pre-shared key");
        assert!(!format!("{t:?} {tunnels:?}").contains(&psk), "PSK in Debug");
    }

    fabric.disconnect(&link).await.expect("disconnect");
    match fabric.link_status(&link).await.expect("status after") {
        LinkState::Failed(why) => assert!(why.contains("deleted"), "{why}"),
        other => panic!("a deleted link is not {other:?}"),
    }
    fabric
        .disconnect(&link)
        .await
        .expect("disconnect again is Ok");
    fabric.release_site(&ep).await.expect("release_site");
    fabric
        .release_site(&ep)
        .await
        .expect("release_site again is Ok");
    let gws = p
        .client()
        .call(&QueryRequest::new("DescribeVpnGateways").param("VpnGatewayId.1", &vgw))
        .await
        .expect("DescribeVpnGateways");
    assert_eq!(
        gws.items("vpnGatewaySet")[0].text_at("state"),
        Some("deleted")
    );
    let cgws = p
        .client()
        .call(&QueryRequest::new("DescribeCustomerGateways"))
        .await
        .expect("DescribeCustomerGateways");
    assert!(
        cgws.items("customerGatewaySet")
            .iter()
            .all(|c| c.text_at("state") == Some("deleted")),
        "the customer gateway is deleted with its last connection"
    );
}
