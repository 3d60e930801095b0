//! The core conformance suite against the simulator's OpenNebula XML-RPC endpoint.

use std::time::Duration;

use intercloud_core::testkit::Fixture;
use intercloud_opennebula::{OpenNebulaBuilder, OpenNebulaProvider};
use intercloud_sim::{conformance, SiteHandle};

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
    conformance::suite(SITE, provider, &fixture()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn capacity_exceeded_against_the_simulator() {
    conformance::capacity(SITE, provider, &fixture()).await;
}
