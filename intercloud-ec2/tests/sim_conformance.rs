//! The core conformance suite against the simulator's EC2 endpoint, which verifies
//! SigV4 signatures.

use std::time::Duration;

use intercloud_core::testkit::Fixture;
use intercloud_ec2::{Ec2Builder, Ec2Provider};
use intercloud_sim::{conformance, SiteHandle};

const SITE: &str = "tokyo";
const OFFERING: &str = "t3.small";

fn provider(site: &SiteHandle) -> Ec2Provider {
    Ec2Builder::aws()
        .site(site.id().clone())
        .endpoint(site.endpoint())
        .region(site.zone().expect("an EC2 site has a region"))
        .credentials(site.core_credentials())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("valid builder")
}

fn fixture() -> Fixture {
    Fixture::new(OFFERING)
        .image("ami-0c3fd0f5d33134a76")
        .missing_id("i-0123456789abcdef0")
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_suite_against_the_simulator() {
    conformance::suite(SITE, provider, &fixture()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn capacity_exceeded_against_the_simulator() {
    conformance::capacity(SITE, provider, &fixture()).await;
}

/// The simulator's site has a default subnet, so the conformance suite's
/// chosen-address scenario runs for real (it passes trivially on `None`).
#[tokio::test(flavor = "multi_thread")]
async fn the_simulated_site_reports_its_default_subnet() {
    use intercloud_core::CloudProvider;

    let sim = intercloud_sim::Federation::start_default(0.001)
        .await
        .expect("sim starts");
    let p = provider(sim.site("tokyo").expect("seed site"));
    let net = p.guest_network().await.unwrap().expect("a default subnet");
    assert_eq!(net.cidr, "172.31.0.0/20");
    assert!(net.vpc.as_deref().is_some_and(|v| v.starts_with("vpc-")));
    assert!(net.in_use.is_empty(), "{:?}", net.in_use);
}
