//! Core's conformance kit ([`intercloud_core::testkit`]) against one simulated site:
//! the checks every backend runs on the simulator, in one place (feature
//! `conformance`).

use intercloud_core::testkit::{self, Fixture};
use intercloud_core::CloudProvider;

use crate::{Federation, FederationConfig, SiteHandle};

/// Stops a VM through the simulated cloud's own API ([`SiteHandle::stop_vm`]).
struct ThroughTheApi<'a>(&'a SiteHandle);

#[async_trait::async_trait]
impl testkit::StopVm for ThroughTheApi<'_> {
    async fn stop(&self, id: &intercloud_core::VmId) {
        self.0
            .stop_vm(id.as_str())
            .await
            .unwrap_or_else(|e| panic!("stopping {id} at {} failed: {e}", self.0.id()));
    }
}

/// Runs the whole suite ([`testkit::run_all`] and [`testkit::stopped_vm_starts_again`],
/// stopping a VM through the site's own API) on seed site `site` of the default
/// federation (time scale 0.001), through the backend `connect` builds for it.
///
/// # Panics
/// When the simulator cannot start, `site` is no seed site, a scenario fails, or a VM
/// is left alive at the site afterwards.
pub async fn suite<P: CloudProvider>(
    site: &str,
    connect: impl Fn(&SiteHandle) -> P,
    fixture: &Fixture,
) {
    let sim = Federation::start_default(0.001).await.expect("sim starts");
    let handle = sim.site(site).expect("a seed site");
    let provider = connect(handle);
    testkit::run_all(&provider, fixture).await;
    testkit::stopped_vm_starts_again(&provider, fixture, Some(&ThroughTheApi(handle))).await;
    assert!(
        handle.alive_vms().is_empty(),
        "the suite leaves nothing behind: {:?}",
        handle.alive_vms()
    );
}

/// Runs [`testkit::capacity_exceeded`] on seed site `site` alone, given room for 3
/// VMs, through the backend `connect` builds for it.
///
/// # Panics
/// As [`suite`].
pub async fn capacity<P: CloudProvider>(
    site: &str,
    connect: impl Fn(&SiteHandle) -> P,
    fixture: &Fixture,
) {
    let mut cfg = FederationConfig::seed_site(site, 3).expect("a seed site");
    cfg.time_scale = 0.001;
    let sim = Federation::start(cfg).await.expect("sim starts");
    let handle = sim.site(site).expect("the site");
    testkit::capacity_exceeded(&connect(handle), fixture, 3).await;
    assert!(
        handle.alive_vms().is_empty(),
        "nothing left: {:?}",
        handle.alive_vms()
    );
}
