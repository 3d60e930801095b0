//! [`FederationBackend`]: real clouds (or the simulated federation's loopback
//! endpoints) described by a `federation.toml`, each user's provider built from that
//! user's keys by [`intercloud_examples::connect`], as the CLI builds them.

use std::sync::Arc;
use std::time::Duration;

use intercloud_core::config::{FederationConfig, SiteConfig};
use intercloud_core::{CloudProvider, Credentials, Error, FabricChoice, Result, SiteId, VpnFabric};
use intercloud_examples::connect::connect;

use crate::backend::Backend;

/// The sites of a federation file, reached over their wire protocols.
#[derive(Debug, Clone)]
pub struct FederationBackend {
    config: FederationConfig,
    label: String,
    poll_interval: Option<Duration>,
}

impl FederationBackend {
    /// Serves the sites of `config`; `label` says where they come from (a file name,
    /// "simulated federation").
    pub fn new(config: FederationConfig, label: impl Into<String>) -> Self {
        Self {
            config,
            label: label.into(),
            poll_interval: None,
        }
    }

    /// How often the CloudStack and OpenNebula clients poll jobs and boots (their
    /// builders' default, 2 s, otherwise): shorter suits loopback clouds.
    pub fn with_poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = Some(every);
        self
    }

    fn site(&self, site: &SiteId) -> Result<&SiteConfig> {
        self.config
            .site(site)
            .ok_or_else(|| Error::config(format!("unknown site {site}")).with_site(site))
    }
}

impl Backend for FederationBackend {
    fn federation(&self) -> &FederationConfig {
        &self.config
    }

    fn connect(&self, site: &SiteId, credentials: &Credentials) -> Result<Arc<dyn CloudProvider>> {
        Ok(connect(self.site(site)?, credentials.clone(), self.poll_interval)?.provider)
    }

    fn connect_vpn(
        &self,
        site: &SiteId,
        credentials: &Credentials,
        wish: FabricChoice,
    ) -> Result<Option<Arc<dyn VpnFabric>>> {
        let cfg = self.site(site)?;
        if !credentials.fits(cfg.middleware) {
            return Ok(None);
        }
        let clients = connect(cfg, credentials.clone(), self.poll_interval)?;
        Ok(match wish {
            FabricChoice::Ipsec => clients.site_to_site,
            FabricChoice::L2tp => clients.remote_access,
            _ => None,
        })
    }

    fn describe(&self) -> String {
        self.label.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BUILTIN_FEDERATION;

    fn backend() -> FederationBackend {
        let text = BUILTIN_FEDERATION.replace("http://127.0.0.1/", "http://127.0.0.1:9/");
        FederationBackend::new(FederationConfig::from_toml(&text, "t").unwrap(), "test")
    }

    #[test]
    fn keys_of_the_wrong_middleware_or_an_unknown_site_are_refused() {
        let b = backend();
        let e = b
            .connect(&"hokkaido".into(), &Credentials::opennebula("u", "p"))
            .unwrap_err();
        assert!(e.to_string().contains("not cloudstack keys"), "{e}");
        assert!(b
            .connect(&"mars".into(), &Credentials::cloudstack("k", "s"))
            .is_err());
    }

    #[tokio::test]
    async fn each_middleware_gets_its_own_provider_and_a_dead_endpoint_is_a_clear_error() {
        let b = backend();
        let secret = "very-secret-value-123";
        for (site, creds) in [
            ("hokkaido", Credentials::cloudstack("k", secret)),
            ("nii", Credentials::opennebula("u", secret)),
            ("tokyo", Credentials::ec2("AKIA", secret, None)),
        ] {
            let p = b.connect(&site.into(), &creds).unwrap();
            assert_eq!(p.site().as_str(), site);
            let e = p.capacity().await.unwrap_err();
            let text = format!("{e} {e:?} {p:?}");
            assert!(text.contains(site), "{text}");
            assert!(!text.contains(secret), "{text}");
        }
    }
}
