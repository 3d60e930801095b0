//! The core conformance suite against the simulator's CloudStack endpoint, which
//! verifies signatures as the management server does.

use std::time::Duration;

use intercloud_cloudstack::{CloudStackBuilder, CloudStackProvider};
use intercloud_core::testkit::{self, Fixture};
use intercloud_sim::{Federation, FederationConfig, SiteHandle};

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
    let mut cfg = FederationConfig::seed_default();
    cfg.time_scale = 0.001;
    cfg.links.clear();
    cfg.sites.retain(|s| s.id.as_str() == SITE);
    for o in &mut cfg.sites[0].offerings {
        o.capacity = 3;
    }
    let sim = Federation::start(cfg).await.expect("sim starts");
    let site = sim.site(SITE).expect("site");
    testkit::capacity_exceeded(&provider(site), &fixture(), 3).await;
    assert!(site.alive_vms().is_empty());
}
