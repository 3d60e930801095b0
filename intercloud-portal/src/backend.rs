//! The seam between the portal and the clouds: which federation it fronts and how a
//! user's credentials become a provider.
//!
//! [`MemoryBackend`] serves a built-in 3-site federation (hokkaido / nii / tokyo) from
//! in-memory providers that check credentials like a real cloud would; a backend over
//! the simulated federation or real clouds implements the same trait.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use intercloud_core::config::FederationConfig;
use intercloud_core::{
    Capabilities, Capacity, CloudProvider, Credentials, Error, ErrorKind, MemoryProvider, Offering,
    Result, SiteId, Vm, VmFilter, VmId, VmSpec,
};

/// Where the portal's clusters go.
pub trait Backend: Send + Sync + fmt::Debug {
    /// The sites and links users may request.
    fn federation(&self) -> &FederationConfig;

    /// A provider for `site` acting with `credentials` (one user's keys). Wrong keys
    /// are not detected here: the cloud rejects the first call with `Unauthenticated`.
    ///
    /// # Errors
    /// `Config` when the site is unknown or the credentials do not fit its middleware.
    fn connect(&self, site: &SiteId, credentials: &Credentials) -> Result<Arc<dyn CloudProvider>>;

    /// The cloud's own VPN fabric of `site` for the `[vpn] fabric` wish, acting with
    /// `credentials`: its site-to-site gateway for `ipsec`, its remote-access VPN for
    /// `l2tp`. `None` (the default) when the site has none: the overlay then puts a
    /// gateway VM there.
    ///
    /// # Errors
    /// As [`Backend::connect`].
    fn connect_vpn(
        &self,
        _site: &SiteId,
        _credentials: &Credentials,
        _wish: intercloud_core::FabricChoice,
    ) -> Result<Option<Arc<dyn intercloud_core::VpnFabric>>> {
        Ok(None)
    }

    /// A short human description ("built-in in-memory federation", …).
    fn describe(&self) -> String;
}

/// The built-in federation: hokkaido (CloudStack), nii (OpenNebula), tokyo (EC2).
pub const BUILTIN_FEDERATION: &str = r#"
[[site]]
id = "hokkaido"
middleware = "cloudstack"
endpoint = "http://127.0.0.1/hokkaido/client/api"
zone = "zone1"
credentials = "vault:hokkaido"
gateway = "198.51.100.1"
[site.levels.S]
offering = "Small Instance"
image = "centos-7"
price_per_hour = 0.02
capacity = 200
[site.levels.L]
offering = "Large Instance"
image = "centos-7"
price_per_hour = 0.12
capacity = 40

[[site]]
id = "nii"
middleware = "opennebula"
endpoint = "http://127.0.0.1/nii/RPC2"
credentials = "vault:nii"
gateway = "198.51.100.2"
[site.levels.S]
offering = "small"
price_per_hour = 0.03
capacity = 100
[site.levels.L]
offering = "large"
price_per_hour = 0.10
capacity = 60

[[site]]
id = "tokyo"
middleware = "ec2"
endpoint = "http://127.0.0.1/tokyo/"
zone = "ap-northeast-1"
credentials = "vault:tokyo"
gateway = "198.51.100.3"
[site.levels.S]
offering = "t3.small"
image = "ami-0123456789abcdef0"
price_per_hour = 0.026
capacity = 500
[site.levels.L]
offering = "m5.2xlarge"
image = "ami-0123456789abcdef0"
price_per_hour = 0.384
capacity = 500

[[link]]
between = ["hokkaido", "nii"]
rtt_ms = 20
bandwidth_mbps = 2500

[[link]]
between = ["nii", "tokyo"]
rtt_ms = 5
bandwidth_mbps = 10000

[[link]]
between = ["hokkaido", "tokyo"]
rtt_ms = 22
bandwidth_mbps = 2500
"#;

/// The built-in federation on in-memory clouds, each accepting one set of keys.
pub struct MemoryBackend {
    config: FederationConfig,
    clouds: BTreeMap<SiteId, Arc<MemoryProvider>>,
    accepted: BTreeMap<SiteId, Credentials>,
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("sites", &self.clouds.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl MemoryBackend {
    /// The built-in federation; VMs take `boot_time` to reach `Running`. Each site
    /// accepts the keys [`MemoryBackend::accepted_credentials`] returns (random per
    /// instance, so they are never in the source).
    ///
    /// # Errors
    /// `Config` if the built-in federation does not parse (a bug).
    pub fn new(boot_time: Duration) -> Result<Self> {
        let config = FederationConfig::from_toml(BUILTIN_FEDERATION, "built-in federation")?;
        let mut clouds = BTreeMap::new();
        let mut accepted = BTreeMap::new();
        for site in &config.sites {
            let mut b = MemoryProvider::builder(site.id.clone())
                .boot_time(boot_time, boot_time / 2)
                .seed(7);
            for (level, off) in &site.levels {
                let (cpus, mem) = if level.as_str() == "L" {
                    (8, 32_768)
                } else {
                    (1, 2048)
                };
                b = b.offering(&off.offering, cpus, mem);
            }
            clouds.insert(site.id.clone(), Arc::new(b.build()));
            let secret = crate::session::random_token();
            let creds = match site.middleware {
                intercloud_core::Middleware::CloudStack => {
                    Credentials::cloudstack(format!("api-{}", site.id), secret)
                }
                intercloud_core::Middleware::OpenNebula => {
                    Credentials::opennebula(format!("oneadmin-{}", site.id), secret)
                }
                _ => Credentials::ec2(
                    format!("AKIA{}", site.id.as_str().to_uppercase()),
                    secret,
                    None,
                ),
            };
            accepted.insert(site.id.clone(), creds);
        }
        Ok(Self {
            config,
            clouds,
            accepted,
        })
    }

    /// The keys `site` accepts (what a user registers in development and tests).
    pub fn accepted_credentials(&self, site: &SiteId) -> Option<&Credentials> {
        self.accepted.get(site)
    }

    /// The in-memory cloud behind `site` (tests inspect what exists there).
    pub fn cloud(&self, site: &SiteId) -> Option<&Arc<MemoryProvider>> {
        self.clouds.get(site)
    }
}

impl Backend for MemoryBackend {
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
        let cloud = self
            .clouds
            .get(site)
            .cloned()
            .ok_or_else(|| Error::config("no cloud for this site").with_site(site))?;
        let authenticated = self
            .accepted
            .get(site)
            .is_some_and(|a| a.same_as(credentials));
        Ok(Arc::new(Checked {
            cloud,
            authenticated,
        }))
    }

    fn describe(&self) -> String {
        "built-in federation on in-memory clouds (hokkaido, nii, tokyo)".into()
    }
}

/// An in-memory cloud seen through one set of keys: every call fails with
/// `Unauthenticated` when the keys are wrong, as a real endpoint would.
#[derive(Debug)]
struct Checked {
    cloud: Arc<MemoryProvider>,
    authenticated: bool,
}

impl Checked {
    fn check(&self) -> Result<()> {
        if self.authenticated {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Unauthenticated,
                "the site rejected the API keys (check the key and secret)",
            )
            .with_site(self.cloud.site()))
        }
    }
}

#[async_trait]
impl CloudProvider for Checked {
    fn site(&self) -> &SiteId {
        self.cloud.site()
    }
    fn capabilities(&self) -> Capabilities {
        self.cloud.capabilities()
    }
    async fn offerings(&self) -> Result<Vec<Offering>> {
        self.check()?;
        self.cloud.offerings().await
    }
    async fn capacity(&self) -> Result<Capacity> {
        self.check()?;
        self.cloud.capacity().await
    }
    async fn create_vms(&self, spec: &VmSpec, count: u32) -> Result<Vec<VmId>> {
        self.check()?;
        self.cloud.create_vms(spec, count).await
    }
    async fn list_vms(&self, filter: &VmFilter) -> Result<Vec<Vm>> {
        self.check()?;
        self.cloud.list_vms(filter).await
    }
    async fn delete_vm(&self, id: &VmId) -> Result<()> {
        self.check()?;
        self.cloud.delete_vm(id).await
    }
    async fn start_vm(&self, id: &VmId) -> Result<()> {
        self.check()?;
        self.cloud.start_vm(id).await
    }
    async fn guest_network(&self) -> Result<Option<intercloud_core::GuestNetwork>> {
        self.check()?;
        self.cloud.guest_network().await
    }
}
