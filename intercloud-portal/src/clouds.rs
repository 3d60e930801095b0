//! [`FederationBackend`]: real clouds (or the simulated federation's loopback
//! endpoints) described by a `federation.toml`, each user's provider built from that
//! user's keys with the middleware's own builder.

use std::sync::Arc;
use std::time::Duration;

use intercloud_cloudstack::{CloudStackBuilder, VpnMode};
use intercloud_core::config::FederationConfig;
use intercloud_core::{
    CloudProvider, Credentials, Error, FabricChoice, Middleware, Result, SiteId, VpnFabric,
};
use intercloud_ec2::Ec2Builder;
use intercloud_opennebula::OpenNebulaBuilder;

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
}

impl Backend for FederationBackend {
    fn federation(&self) -> &FederationConfig {
        &self.config
    }

    fn connect(&self, site: &SiteId, credentials: &Credentials) -> Result<Arc<dyn CloudProvider>> {
        let cfg = self
            .config
            .site(site)
            .ok_or_else(|| Error::config(format!("unknown site {site}")).with_site(site))?;
        if !credentials.fits(cfg.middleware) {
            return Err(Error::config(format!(
                "the registered keys are not {} keys; register them again",
                cfg.middleware
            ))
            .with_site(site));
        }
        let provider: Arc<dyn CloudProvider> = match cfg.middleware {
            Middleware::CloudStack => {
                let mut b = CloudStackBuilder::new()
                    .site(site.clone())
                    .endpoint(cfg.endpoint.clone())
                    .credentials(credentials.clone());
                if let Some(z) = &cfg.zone {
                    b = b.zone(z.clone());
                }
                if let Some(every) = self.poll_interval {
                    b = b.poll_interval(every);
                }
                if let Some(bucket) = intercloud_core::wrap::SitePolicy::wire_limit(&cfg.to_site())
                {
                    b = b.rate_limit(bucket);
                }
                Arc::new(b.wait_for_running(false).build()?)
            }
            Middleware::OpenNebula => {
                let mut b = OpenNebulaBuilder::new(site.clone())
                    .endpoint(cfg.endpoint.clone())
                    .credentials(credentials.clone());
                if let Some(every) = self.poll_interval {
                    b = b.poll_interval(every);
                }
                Arc::new(b.build()?)
            }
            _ => Arc::new(Ec2Builder::for_site(&cfg.to_site(), credentials.clone()).build()?),
        };
        Ok(provider)
    }

    fn connect_vpn(
        &self,
        site: &SiteId,
        credentials: &Credentials,
        wish: FabricChoice,
    ) -> Result<Option<Arc<dyn VpnFabric>>> {
        let cfg = self
            .config
            .site(site)
            .ok_or_else(|| Error::config(format!("unknown site {site}")).with_site(site))?;
        if !credentials.fits(cfg.middleware) {
            return Ok(None);
        }
        Ok(match (cfg.middleware, wish) {
            (Middleware::CloudStack, FabricChoice::Ipsec | FabricChoice::L2tp) => {
                let mut b = CloudStackBuilder::new()
                    .site(site.clone())
                    .endpoint(cfg.endpoint.clone())
                    .credentials(credentials.clone());
                if let Some(z) = &cfg.zone {
                    b = b.zone(z.clone());
                }
                if let Some(every) = self.poll_interval {
                    b = b.poll_interval(every);
                }
                let mode = if wish == FabricChoice::Ipsec {
                    VpnMode::SiteToSite
                } else {
                    VpnMode::RemoteAccess
                };
                Some(Arc::new(b.build_vpn(mode)?))
            }
            (Middleware::Ec2, FabricChoice::Ipsec) => {
                let p = Ec2Builder::for_site(&cfg.to_site(), credentials.clone()).build()?;
                p.capabilities()
                    .native_vpn
                    .then(|| Arc::new(p.vpn_fabric()) as Arc<dyn VpnFabric>)
            }
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
