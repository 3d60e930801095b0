//! The core conformance suite against the simulator's CloudStack endpoint, which
//! verifies signatures as the management server does.

use std::time::Duration;

use intercloud_cloudstack::{CloudStackBuilder, CloudStackProvider};
use intercloud_core::testkit::Fixture;
use intercloud_sim::{conformance, Federation, FederationConfig, SiteHandle};

const SITE: &str = "hokkaido";
const OFFERING: &str = "Small Instance";

fn provider(site: &SiteHandle) -> CloudStackProvider {
    CloudStackBuilder::new()
        .site(site.id().clone())
        .endpoint(site.endpoint())
        .zone(site.zone().expect("a CloudStack site has a zone"))
        .credentials(site.core_credentials())
        .poll_interval(Duration::from_millis(5))
        .build()
        .expect("valid builder")
}

fn fixture() -> Fixture {
    Fixture::new(OFFERING)
        .image("centos-7")
        .missing_id("6f1c0e4e-0000-4000-8000-000000000000")
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_suite_against_the_simulator() {
    conformance::suite(SITE, provider, &fixture()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn capacity_exceeded_against_the_simulator() {
    conformance::capacity(SITE, provider, &fixture()).await;
}

/// One `create_vms` of many VMs makes a deploy request per VM; with the wire limit the
/// site's own throttling never answers, without it it does.
#[tokio::test(flavor = "multi_thread")]
async fn the_wire_limit_keeps_a_large_create_under_the_sites_throttling() {
    use std::sync::Arc;

    use intercloud_core::wrap::TokenBucket;
    use intercloud_core::{CloudProvider, IdempotencyKey, VmSpec};

    let mut cfg = FederationConfig::seed_default();
    cfg.links.clear();
    cfg.sites.retain(|s| s.id.as_str() == SITE);
    let site_cfg = &mut cfg.sites[0];
    site_cfg.rate_limit = Some(40.0);
    site_cfg.burst = Some(4.0);
    site_cfg.latency_ms = 0.0;
    site_cfg.boot_s = 0.05;
    site_cfg.boot_jitter = 0.0;
    let sim = Federation::start(cfg).await.expect("sim starts");
    let site = sim.site(SITE).expect("site");
    let spec = |name: &str| {
        let mut s = VmSpec::new(name, "worker", IdempotencyKey::random(name), "S", OFFERING);
        s.image = Some(intercloud_core::ImageRef("centos-7".into()));
        s
    };

    let limited = CloudStackBuilder::new()
        .site(site.id().clone())
        .endpoint(site.endpoint())
        .zone(site.zone().expect("zone"))
        .credentials(site.core_credentials())
        .poll_interval(Duration::from_millis(50))
        .rate_limit(Arc::new(TokenBucket::new(35.0, 1)))
        .build()
        .expect("valid builder");
    limited
        .create_vms(&spec("limited"), 20)
        .await
        .expect("create under the limit");
    assert_eq!(
        site.throttled(),
        0,
        "the wire limit keeps every request under the site's"
    );

    provider(site).create_vms(&spec("unlimited"), 20).await.ok();
    assert!(
        site.throttled() > 0,
        "without it the same create is throttled (the test can fail)"
    );
}

/// The simulator's site has one VPC tier, so the conformance suite's chosen-address
/// scenario runs for real (it passes trivially on `None`).
#[tokio::test(flavor = "multi_thread")]
async fn the_simulated_site_reports_its_vpc_tier() {
    use intercloud_core::CloudProvider;

    let sim = Federation::start_default(0.001).await.expect("sim starts");
    let p = provider(sim.site(SITE).expect("seed site"));
    let net = p.guest_network().await.unwrap().expect("a VPC tier");
    assert_eq!(
        net.cidr, "10.101.0.0/20",
        "hokkaido is the federation's site 1"
    );
    assert!(net.vpc.is_some());
    assert!(net.in_use.is_empty(), "{:?}", net.in_use);
}
