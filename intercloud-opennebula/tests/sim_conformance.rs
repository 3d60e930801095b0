//! The core conformance suite against the simulator's OpenNebula XML-RPC endpoint.

use std::time::Duration;

use intercloud_core::testkit::{self, Fixture};
use intercloud_opennebula::{OpenNebulaBuilder, OpenNebulaProvider};
use intercloud_sim::{Federation, FederationConfig, SiteHandle};

const SITE: &str = "nii";
const OFFERING: &str = "small";

fn provider(site: &SiteHandle) -> OpenNebulaProvider {
    OpenNebulaBuilder::new(site.id().clone())
        .endpoint(site.endpoint())
        .credentials(site.core_credentials())
        .poll_interval(Duration::from_millis(5))
        .build()
        .expect("valid builder")
}

fn fixture() -> Fixture {
    Fixture::new(OFFERING).missing_id("999999")
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
