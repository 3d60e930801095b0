//! The core conformance suite against the simulator's EC2 endpoint, which verifies
//! SigV4 signatures.

use std::time::Duration;

use intercloud_core::testkit::{self, Fixture};
use intercloud_ec2::{Ec2Builder, Ec2Provider};
use intercloud_sim::{Federation, FederationConfig, SiteHandle};

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
    let sim = Federation::start_default(0.001).await.expect("sim starts");
    let site = sim.site(SITE).expect("seed site");
    testkit::run_all(&provider(site), &fixture()).await;
    assert!(
        site.alive_vms().is_empty(),
        "the suite leaves nothing behind: {:?}",
        site.alive_vms()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn capacity_exceeded_against_the_simulator() {
    let mut cfg = FederationConfig::seed_site(SITE, 3).expect("a seed site");
    cfg.time_scale = 0.001;
    let sim = Federation::start(cfg).await.expect("sim starts");
    let site = sim.site(SITE).expect("site");
    testkit::capacity_exceeded(&provider(site), &fixture(), 3).await;
    assert!(site.alive_vms().is_empty());
}
