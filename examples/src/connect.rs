//! From a federation file's site entry and a user's credentials to that site's
//! clients: the middleware's backend and its native VPN fabrics. The one place the
//! CLI and the portal build them, so both talk to a site alike.

use std::sync::Arc;
use std::time::Duration;

use intercloud_cloudstack::{CloudStackBuilder, VpnMode};
use intercloud_core::config::SiteConfig;
use intercloud_core::wrap::SitePolicy;
use intercloud_core::{CloudProvider, Credentials, Error, Middleware, Result, VpnFabric};
use intercloud_ec2::Ec2Builder;
use intercloud_opennebula::OpenNebulaBuilder;

/// One site's clients.
#[derive(Debug, Clone)]
pub struct SiteClients {
    /// The backend, not wrapped: wrap it with [`intercloud_core::wrap::stack`] and
    /// [`SitePolicy::for_site`] before deploying with it.
    pub provider: Arc<dyn CloudProvider>,
    /// The cloud's IPsec site-to-site gateway (CloudStack VPC gateway, EC2 virtual
    /// private gateway); `None` where the middleware has none (OpenNebula).
    pub site_to_site: Option<Arc<dyn VpnFabric>>,
    /// The cloud's L2TP/IPsec remote-access VPN (CloudStack only).
    pub remote_access: Option<Arc<dyn VpnFabric>>,
}

/// Builds `site`'s clients with `credentials`. CloudStack takes a wire token bucket
/// from the site's `rate_limit` ([`SitePolicy::wire_limit`]) and leaves the boot to
/// the deployer's listing (`wait_for_running(false)`); `poll` sets how often the
/// CloudStack and OpenNebula clients poll jobs (their builders' 2 s otherwise).
///
/// # Errors
/// `Config` naming the site when the credentials are not the middleware's kind, or
/// when a builder refuses the entry (endpoint, zone).
pub fn connect(
    site: &SiteConfig,
    credentials: Credentials,
    poll: Option<Duration>,
) -> Result<SiteClients> {
    if !credentials.fits(site.middleware) {
        return Err(Error::config(format!(
            "the registered keys are not {} keys; register them again",
            site.middleware
        ))
        .with_site(&site.id));
    }
    Ok(match site.middleware {
        Middleware::CloudStack => {
            let mut b = CloudStackBuilder::new()
                .site(site.id.clone())
                .endpoint(site.endpoint.clone())
                .credentials(credentials)
                .wait_for_running(false);
            if let Some(z) = &site.zone {
                b = b.zone(z.clone());
            }
            if let Some(n) = &site.network {
                b = b.network(n.clone());
            }
            if let Some(every) = poll {
                b = b.poll_interval(every);
            }
            if let Some(bucket) = SitePolicy::wire_limit(&site.to_site()) {
                b = b.rate_limit(bucket);
            }
            SiteClients {
                site_to_site: Some(Arc::new(b.build_vpn(VpnMode::SiteToSite)?)),
                remote_access: Some(Arc::new(b.build_vpn(VpnMode::RemoteAccess)?)),
                provider: Arc::new(b.build()?),
            }
        }
        Middleware::OpenNebula => {
            let mut b = OpenNebulaBuilder::new(site.id.clone())
                .endpoint(site.endpoint.clone())
                .credentials(credentials);
            if let Some(every) = poll {
                b = b.poll_interval(every);
            }
            SiteClients {
                provider: Arc::new(b.build()?),
                site_to_site: None,
                remote_access: None,
            }
        }
        Middleware::Ec2 | Middleware::Eucalyptus => {
            let mut b = Ec2Builder::for_site(&site.to_site(), credentials);
            if let Some(n) = &site.network {
                b = b.subnet_id(n.clone());
            }
            let p = b.build()?;
            SiteClients {
                site_to_site: p
                    .capabilities()
                    .native_vpn
                    .then(|| Arc::new(p.vpn_fabric()) as Arc<dyn VpnFabric>),
                provider: Arc::new(p),
                remote_access: None,
            }
        }
    })
}
