//! Starting a federation in-process, and looking inside it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use intercloud_core::model::{
    ImageRef, LevelOffering, Link, Middleware, ServiceLevel, Site, SiteId, Topology,
};
use intercloud_core::Credentials;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{Faults, FederationConfig, SimCredentials, SiteConfig};
use crate::engine::{Engine, ResourceKind, ResourceRecord};

/// A running simulated federation: one loopback HTTP server per site.
///
/// Dropping it stops the servers.
#[derive(Debug)]
pub struct Federation {
    sites: Vec<SiteHandle>,
    links: Vec<Link>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// One running site: its endpoint URL, credentials, faults and introspection.
#[derive(Debug, Clone)]
pub struct SiteHandle {
    engine: Arc<Engine>,
    addr: SocketAddr,
}

/// Starting failed: a port could not be bound, or the configuration is invalid.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid (the message names the site and what to fix).
    #[error("{0}")]
    Config(String),
    /// Binding the site's port failed.
    #[error("sim site {site}: cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        /// The site.
        site: SiteId,
        /// The port asked for (0 = ephemeral).
        port: u16,
        /// The cause.
        source: std::io::Error,
    },
}

impl Federation {
    /// Binds every site on 127.0.0.1 (ephemeral ports unless a site names one) and
    /// serves them on the current tokio runtime.
    ///
    /// # Errors
    /// [`StartError`] if the configuration is invalid or a port cannot be bound.
    pub async fn start(config: FederationConfig) -> Result<Self, StartError> {
        config.validate().map_err(StartError::Config)?;
        let (stop, rx) = watch::channel(false);
        let start = Instant::now();
        let mut sites = Vec::new();
        let mut tasks = Vec::new();
        for (i, site) in config.sites.into_iter().enumerate() {
            let port = site.port;
            let listener = TcpListener::bind(("127.0.0.1", port))
                .await
                .map_err(|source| StartError::Bind {
                    site: site.id.clone(),
                    port,
                    source,
                })?;
            let addr = listener.local_addr().map_err(|source| StartError::Bind {
                site: site.id.clone(),
                port,
                source,
            })?;
            let index = u8::try_from(i + 1).unwrap_or(u8::MAX);
            let engine = Arc::new(Engine::new(
                site,
                config.seed,
                config.time_scale,
                index,
                start,
            ));
            tasks.push(tokio::spawn(crate::server::serve(
                listener,
                engine.clone(),
                rx.clone(),
            )));
            sites.push(SiteHandle { engine, addr });
        }
        Ok(Self {
            sites,
            links: config.links,
            stop,
            tasks,
        })
    }

    /// The default seed federation (see [`FederationConfig::seed_default`]) with the
    /// given time scale.
    ///
    /// # Errors
    /// As [`Federation::start`].
    pub async fn start_default(time_scale: f64) -> Result<Self, StartError> {
        let mut cfg = FederationConfig::seed_default();
        cfg.time_scale = time_scale;
        Self::start(cfg).await
    }

    /// All sites, in configuration order.
    pub fn sites(&self) -> &[SiteHandle] {
        &self.sites
    }

    /// One site by id.
    pub fn site(&self, id: &str) -> Option<&SiteHandle> {
        self.sites.iter().find(|s| s.id().as_str() == id)
    }

    /// The links between sites, as configured.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// The federation as core's planner sees it: every site (see [`SiteHandle::site`])
    /// and the configured links.
    pub fn topology(&self) -> Topology {
        Topology::new(self.sites.iter().map(SiteHandle::site), self.links.clone())
    }

    /// The federation file a client of this simulator writes: every site as
    /// [`SiteHandle::site`] models it (endpoint, zone, levels, wall-clock rate limit),
    /// `credentials(site)` as its credential reference (`vault:…` or `env:…`), the
    /// configured links, and as each site's overlay `gateway` a documentation address
    /// (198.51.100.N, TEST-NET-2) standing for the one an operator would reserve.
    pub fn federation_file(
        &self,
        credentials: impl Fn(&SiteId) -> String,
    ) -> intercloud_core::config::FederationConfig {
        let sites = self
            .sites
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let site = h.site();
                intercloud_core::config::SiteConfig {
                    credentials: credentials(&site.id),
                    id: site.id,
                    middleware: site.middleware,
                    endpoint: site.endpoint,
                    zone: site.zone,
                    rate_limit: site.rate_limit,
                    max_concurrency: site.max_concurrency,
                    gateway: Some(format!("198.51.100.{}", i + 1)),
                    network: None,
                    levels: site.levels,
                }
            })
            .collect();
        intercloud_core::config::FederationConfig {
            sites,
            links: self.links.clone(),
        }
    }

    /// Every resource ever created on every site, deleted ones included.
    pub fn resources(&self) -> Vec<ResourceRecord> {
        self.sites.iter().flat_map(SiteHandle::resources).collect()
    }

    /// The orphan check: resources on any site still alive and tagged `key = value`.
    pub fn alive_with_tag(&self, key: &str, value: &str) -> Vec<ResourceRecord> {
        self.sites
            .iter()
            .flat_map(|s| s.alive_with_tag(key, value))
            .collect()
    }

    /// Stops every server and waits for the accept loops to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for Federation {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl SiteHandle {
    /// The site id.
    pub fn id(&self) -> &SiteId {
        &self.engine.cfg.id
    }

    /// The middleware it speaks.
    pub fn middleware(&self) -> Middleware {
        self.engine.cfg.middleware
    }

    /// Its configuration.
    pub fn config(&self) -> &SiteConfig {
        &self.engine.cfg
    }

    /// The socket it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API endpoint URL a client uses: `http://127.0.0.1:P/client/api` (CloudStack),
    /// `http://127.0.0.1:P/RPC2` (OpenNebula), `http://127.0.0.1:P/` (EC2).
    pub fn endpoint(&self) -> String {
        let path = match self.middleware() {
            Middleware::CloudStack => "/client/api",
            Middleware::OpenNebula => "/RPC2",
            Middleware::Ec2 | Middleware::Eucalyptus => "/",
        };
        format!("http://{}{}", self.addr, path)
    }

    /// The credentials it accepts.
    pub fn credentials(&self) -> &SimCredentials {
        &self.engine.cfg.credentials
    }

    /// The site as core models it: endpoint, zone, one level per offering (offering
    /// name, first image for CloudStack/EC2, price, capacity), and the rate limit in
    /// *wall-clock* calls per second (the configured rate divided by the time scale).
    pub fn site(&self) -> Site {
        let cfg = &self.engine.cfg;
        let image = match cfg.middleware {
            Middleware::OpenNebula => None,
            _ => cfg.images.first().cloned().map(ImageRef),
        };
        let levels = cfg
            .offerings
            .iter()
            .map(|o| {
                let lo = LevelOffering {
                    offering: o.name.clone(),
                    image: image.clone(),
                    price_per_hour: o.price_per_hour,
                    capacity: o.capacity,
                };
                (ServiceLevel::new(o.level.clone()), lo)
            })
            .collect();
        Site {
            id: cfg.id.clone(),
            middleware: cfg.middleware,
            endpoint: self.endpoint(),
            zone: cfg.zone.clone(),
            levels,
            rate_limit: cfg.rate_limit.map(|r| r / self.engine.scale),
            max_concurrency: None,
        }
    }

    /// The site's credentials as core's [`Credentials`] (secrets in `secrecy` types).
    pub fn core_credentials(&self) -> Credentials {
        match &self.engine.cfg.credentials {
            SimCredentials::Cloudstack {
                api_key,
                secret_key,
            } => Credentials::cloudstack(api_key, secret_key),
            SimCredentials::Opennebula { user, password } => {
                Credentials::opennebula(user, password)
            }
            SimCredentials::Ec2 {
                access_key_id,
                secret_access_key,
            } => Credentials::ec2(access_key_id, secret_access_key, None),
        }
    }

    /// Powers VM `id` off through the site's own API, as its users would (see
    /// [`crate::testing::stop_vm`]): the VM keeps its id, disk and address.
    ///
    /// # Errors
    /// I/O errors, or the cloud's refusal.
    pub async fn stop_vm(&self, id: &str) -> std::io::Result<()> {
        crate::testing::stop_vm(
            self.addr,
            self.credentials(),
            self.zone().unwrap_or("us-east-1"),
            id,
        )
        .await
    }

    /// The zone (CloudStack) or region (EC2) name.
    pub fn zone(&self) -> Option<&str> {
        self.engine.cfg.zone.as_deref()
    }

    /// Every resource ever created here, deleted ones included.
    pub fn resources(&self) -> Vec<ResourceRecord> {
        self.engine.records()
    }

    /// Alive VMs here.
    pub fn alive_vms(&self) -> Vec<ResourceRecord> {
        self.resources()
            .into_iter()
            .filter(|r| r.kind == ResourceKind::Vm && r.is_alive())
            .collect()
    }

    /// Resources here still alive and tagged `key = value`.
    pub fn alive_with_tag(&self, key: &str, value: &str) -> Vec<ResourceRecord> {
        self.resources()
            .into_iter()
            .filter(|r| r.is_alive() && r.tags.get(key).is_some_and(|v| v == value))
            .collect()
    }

    /// API calls received per method name (refused ones included).
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.engine.calls()
    }

    /// How many calls the rate limit refused.
    pub fn throttled(&self) -> u64 {
        self.engine.throttled()
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.engine.lock().faults.clone()
    }

    /// Replaces the faults in force (takes effect on the next call). An outage window is
    /// in simulated seconds since the federation started.
    pub fn set_faults(&self, faults: Faults) {
        self.engine.lock().faults = faults;
    }

    /// Simulated seconds since the federation started.
    pub fn sim_now(&self) -> f64 {
        self.engine
            .now()
            .duration_since(self.engine.start)
            .as_secs_f64()
            / self.engine.scale
    }
}
