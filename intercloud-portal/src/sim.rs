//! [`SimBackend`]: the portal's default — the simulated federation of `intercloud-sim`
//! started in-process on loopback, reached through the real middleware clients
//! ([`FederationBackend`]), exactly as real clouds would be.

use std::sync::Arc;
use std::time::Duration;

use intercloud_core::config::FederationConfig;
use intercloud_core::{CloudProvider, Credentials, Result, SiteId};
use intercloud_sim::Federation;

use crate::backend::Backend;
use crate::clouds::FederationBackend;

/// The running simulated federation and the portal's view of it.
#[derive(Debug)]
pub struct SimBackend {
    sim: Federation,
    inner: FederationBackend,
}

impl SimBackend {
    /// Starts the simulator's default federation on the current runtime;
    /// `time_scale` is wall-clock seconds per simulated second (1.0 = real time, 0.02
    /// makes a 5 s boot last 100 ms).
    ///
    /// # Errors
    /// A message when a site cannot be started.
    pub async fn start(time_scale: f64) -> std::result::Result<Self, String> {
        let sim = Federation::start_default(time_scale)
            .await
            .map_err(|e| format!("the simulated federation did not start: {e}"))?;
        let config = federation_of(&sim)
            .map_err(|e| format!("the simulated federation is not usable: {e}"))?;
        Ok(Self {
            inner: FederationBackend::new(
                config,
                "simulated federation (intercloud-sim, loopback)",
            )
            .with_poll_interval(Duration::from_millis(200)),
            sim,
        })
    }

    /// The keys `site` accepts (what a user registers in development and tests).
    pub fn accepted_credentials(&self, site: &SiteId) -> Option<Credentials> {
        self.sim.site(site.as_str()).map(|s| s.core_credentials())
    }

    /// The simulator (tests look inside it).
    pub fn sim(&self) -> &Federation {
        &self.sim
    }
}

/// The core federation config of the running simulator: each site as the simulator
/// models it for core (endpoint, zone, levels with prices and capacities, wall-clock
/// rate limit) and its links.
fn federation_of(sim: &Federation) -> Result<FederationConfig> {
    let config = sim.federation_file(|id| format!("vault:{id}"));
    // Round-trip through the validator so errors read like a federation file's.
    let text = toml::to_string(&config)
        .map_err(|e| intercloud_core::Error::config(format!("cannot render: {e}")))?;
    FederationConfig::from_toml(&text, "simulated federation")
}

impl Backend for SimBackend {
    fn federation(&self) -> &FederationConfig {
        self.inner.federation()
    }

    fn connect(&self, site: &SiteId, credentials: &Credentials) -> Result<Arc<dyn CloudProvider>> {
        self.inner.connect(site, credentials)
    }

    fn connect_vpn(
        &self,
        site: &SiteId,
        credentials: &Credentials,
        wish: intercloud_core::FabricChoice,
    ) -> Result<Option<Arc<dyn intercloud_core::VpnFabric>>> {
        self.inner.connect_vpn(site, credentials, wish)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}
