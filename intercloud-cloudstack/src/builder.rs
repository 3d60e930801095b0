//! [`CloudStackBuilder`]: configure once, build a provider and VPN fabrics.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use intercloud_core::wrap::TokenBucket;
use intercloud_core::{Credentials, Error, Result, SiteId};

use crate::client::{Client, Clock};
use crate::provider::{CloudStackProvider, DeployHook, DeployStarted, Settings};
use crate::sign::SignatureAlgorithm;
use crate::vpn::{CloudStackVpn, VpnMode, VpnSettings};

/// Configures a CloudStack site. Setters never fail; [`CloudStackBuilder::build`]
/// validates and says what to fix.
///
/// ```no_run
/// # use intercloud_core::Credentials;
/// # use intercloud_cloudstack::{CloudStackBuilder, VpnMode};
/// # fn main() -> intercloud_core::Result<()> {
/// let builder = CloudStackBuilder::new()
///     .site("hokkaido")
///     .endpoint("https://cloud.example.ac.jp/client/api")
///     .credentials(Credentials::cloudstack("API-KEY", "SECRET-KEY"))
///     .zone("zone1")
///     .template("centos-7");
/// let provider = builder.build()?;
/// let vpn = builder.vpc("vpc-id").build_vpn(VpnMode::SiteToSite)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CloudStackBuilder {
    site: Option<SiteId>,
    endpoint: Option<String>,
    credentials: Option<Credentials>,
    zone: Option<String>,
    template: Option<String>,
    networks: Vec<String>,
    keypair: Option<String>,
    poll_interval: Duration,
    job_timeout: Duration,
    request_timeout: Duration,
    wire_limit: Option<Arc<TokenBucket>>,
    deploy_concurrency: usize,
    page_size: u32,
    expires_after: Option<Duration>,
    algorithm: SignatureAlgorithm,
    clock: Option<Clock>,
    wait_for_running: bool,
    expunge: bool,
    on_deploy: Option<DeployHook>,
    vpn: VpnSettings,
    env_prefix: Option<String>,
}

impl Default for CloudStackBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl CloudStackBuilder {
    /// A builder with the defaults: poll every 2 s, jobs time out after 10 min, HTTP
    /// requests after 60 s, 8 deploys in flight, pages of 500, HMAC-SHA1 without
    /// expiry, wait for new VMs to leave `Starting`, destroy with `expunge=true`.
    pub fn new() -> Self {
        Self {
            site: None,
            endpoint: None,
            credentials: None,
            zone: None,
            template: None,
            networks: Vec::new(),
            keypair: None,
            poll_interval: Duration::from_secs(2),
            job_timeout: Duration::from_secs(600),
            wire_limit: None,
            request_timeout: Duration::from_secs(60),
            deploy_concurrency: 8,
            page_size: 500,
            expires_after: None,
            algorithm: SignatureAlgorithm::HmacSha1,
            clock: None,
            wait_for_running: true,
            expunge: true,
            on_deploy: None,
            vpn: VpnSettings::default(),
            env_prefix: None,
        }
    }

    /// A builder reading `CLOUDSTACK_API_URL`, `CLOUDSTACK_API_KEY` and
    /// `CLOUDSTACK_SECRET_KEY` (the names Terraform's provider and cloudmonkey users
    /// use), plus the optional `CLOUDSTACK_ZONE`.
    pub fn from_env() -> Self {
        Self::from_env_prefix("CLOUDSTACK")
    }

    /// Like [`Self::from_env`] with `{prefix}_API_URL`, `{prefix}_API_KEY`,
    /// `{prefix}_SECRET_KEY` and `{prefix}_ZONE` (the federation file's
    /// `credentials = "env:PREFIX"`). Missing variables are reported by `build()`.
    pub fn from_env_prefix(prefix: &str) -> Self {
        let var = |name: &str| {
            std::env::var(format!("{prefix}_{name}"))
                .ok()
                .filter(|v| !v.trim().is_empty())
        };
        let mut b = Self::new();
        b.env_prefix = Some(prefix.to_owned());
        b.endpoint = var("API_URL");
        b.zone = var("ZONE");
        if let (Some(key), Some(secret)) = (var("API_KEY"), var("SECRET_KEY")) {
            b.credentials = Some(Credentials::cloudstack(key.trim(), secret.trim()));
        }
        b
    }

    /// The federation's name for the site (default: the endpoint's host).
    pub fn site(mut self, site: impl Into<SiteId>) -> Self {
        self.site = Some(site.into());
        self
    }

    /// The API endpoint, e.g. `https://cloud.example.ac.jp/client/api` or
    /// `http://127.0.0.1:8080/client/api`.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// The account's API key and secret key ([`Credentials::CloudStack`]).
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// The zone VMs are deployed in and listed from (name or id). Required for a
    /// provider.
    pub fn zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = Some(zone.into());
        self
    }

    /// The template (name or id) used when a `VmSpec` names no image.
    pub fn template(mut self, template: impl Into<String>) -> Self {
        self.template = Some(template.into());
        self
    }

    /// A guest network (id) new VMs join (`networkids`); may be repeated.
    pub fn network(mut self, network_id: impl Into<String>) -> Self {
        self.networks.push(network_id.into());
        self
    }

    /// The SSH key pair name new VMs get (`keypair`).
    pub fn keypair(mut self, name: impl Into<String>) -> Self {
        self.keypair = Some(name.into());
        self
    }

    /// How often jobs and new VMs are polled.
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every;
        self
    }

    /// How long one call waits for its jobs before reporting them as unknown
    /// (`Timeout`, temporary; the work may still finish).
    pub fn job_timeout(mut self, timeout: Duration) -> Self {
        self.job_timeout = timeout;
        self
    }

    /// The timeout of one HTTP request.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Limits every HTTP request to the site (deploys, tag jobs, job and list polls)
    /// to `calls_per_second` with bursts of `burst`, as the management server's
    /// `api.throttling` does; without it one `create_vms` of many VMs can exceed the
    /// site's limit even when provider calls are rate-limited. Share one bucket
    /// between the provider and the VPN fabric of a site.
    pub fn rate_limit(mut self, bucket: Arc<TokenBucket>) -> Self {
        self.wire_limit = Some(bucket);
        self
    }

    /// How many `deployVirtualMachine` calls one `create_vms` keeps in flight.
    pub fn deploy_concurrency(mut self, n: usize) -> Self {
        self.deploy_concurrency = n;
        self
    }

    /// Items per page of list calls (at most the server's `default.page.size`, 500
    /// by default).
    pub fn page_size(mut self, n: u32) -> Self {
        self.page_size = n;
        self
    }

    /// Signs with `signatureVersion=3` and `expires` = now + `ttl` (needed when the
    /// server sets `enforce.post.requests.and.timestamps`).
    pub fn signature_expiry(mut self, ttl: Duration) -> Self {
        self.expires_after = Some(ttl);
        self
    }

    /// The HMAC (HMAC-SHA1 by default; HMAC-SHA512 for FIPS-mode servers).
    pub fn signature_algorithm(mut self, alg: SignatureAlgorithm) -> Self {
        self.algorithm = alg;
        self
    }

    /// The clock used for `expires` (tests pin it to get exact signed queries).
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Whether `create_vms` waits (up to the job timeout) for new VMs to leave
    /// `Starting`, so deploy failures surface as errors (default true). It always
    /// waits for the tags.
    pub fn wait_for_running(mut self, wait: bool) -> Self {
        self.wait_for_running = wait;
        self
    }

    /// Whether `delete_vm` asks for `expunge=true` (default true). Servers refuse it
    /// to non-admin accounts unless `allow.user.expunge.recover.vm` is set; the
    /// provider then falls back to a plain destroy by itself.
    pub fn expunge(mut self, expunge: bool) -> Self {
        self.expunge = expunge;
        self
    }

    /// Calls `hook` for every VM CloudStack accepted, with its id and job id, before
    /// `create_vms` waits: the place to journal them.
    pub fn on_deploy_started(
        mut self,
        hook: impl Fn(&DeployStarted) + Send + Sync + 'static,
    ) -> Self {
        self.on_deploy = Some(DeployHook(Arc::new(hook)));
        self
    }

    /// The VPC (id) whose VPN gateway site-to-site links use (else the
    /// `SiteContext` hint `vpc_id`).
    pub fn vpc(mut self, vpc_id: impl Into<String>) -> Self {
        self.vpn.vpc = Some(vpc_id.into());
        self
    }

    /// The public IP (id) remote-access VPN runs on (else the hint `public_ip_id`).
    pub fn public_ip(mut self, public_ip_id: impl Into<String>) -> Self {
        self.vpn.public_ip = Some(public_ip_id.into());
        self
    }

    /// IKE and ESP policies of customer gateways (default `aes256-sha256;modp2048`
    /// and `aes256-sha256`).
    pub fn ipsec_policies(mut self, ike: impl Into<String>, esp: impl Into<String>) -> Self {
        self.vpn.ike_policy = ike.into();
        self.vpn.esp_policy = esp.into();
        self
    }

    /// The address range remote-access VPN hands to clients (`iprange`).
    pub fn vpn_ip_range(mut self, range: impl Into<String>) -> Self {
        self.vpn.ip_range = Some(range.into());
        self
    }

    fn config_error(&self, what: &str, env: &str) -> Error {
        let hint = match &self.env_prefix {
            Some(p) => format!(" (set {p}_{env})"),
            None => String::new(),
        };
        let e = Error::config(format!("CloudStack site: {what}{hint}"));
        match &self.site {
            Some(s) => e.with_site(s.clone()),
            None => e,
        }
    }

    /// Validates everything but the zone and builds the HTTP client.
    pub(crate) fn build_client(&self) -> Result<Client> {
        let raw = self
            .endpoint
            .as_deref()
            .ok_or_else(|| self.config_error("no API endpoint", "API_URL"))?;
        let endpoint = Url::parse(raw.trim()).map_err(|e| {
            self.config_error(
                &format!("endpoint is not a URL ({e}); expected e.g. https://host/client/api"),
                "API_URL",
            )
        })?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(self.config_error("endpoint must be an http(s) URL with a host", "API_URL"));
        }
        if endpoint.password().is_some() || !endpoint.username().is_empty() {
            return Err(self.config_error(
                "endpoint must not carry a user or password; use credentials",
                "API_URL",
            ));
        }
        let site = self
            .site
            .clone()
            .unwrap_or_else(|| SiteId::new(endpoint.host_str().unwrap_or("cloudstack")));
        let (api_key, secret) = match &self.credentials {
            Some(Credentials::CloudStack {
                api_key,
                secret_key,
            }) => (api_key.clone(), secret_key.clone()),
            Some(_) => {
                return Err(self.config_error(
                    "credentials are not CloudStack credentials (API key + secret key)",
                    "API_KEY",
                ))
            }
            None => return Err(self.config_error("no credentials", "API_KEY and _SECRET_KEY")),
        };
        if api_key.trim().is_empty() || secret.expose_secret().trim().is_empty() {
            return Err(self.config_error("the API key or secret key is empty", "API_KEY"));
        }
        if self.page_size == 0 || self.deploy_concurrency == 0 {
            return Err(self.config_error("page_size and deploy_concurrency must be >= 1", "ZONE"));
        }
        let mut http = reqwest::Client::builder()
            .timeout(self.request_timeout)
            .connect_timeout(self.request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("intercloud-cloudstack/", env!("CARGO_PKG_VERSION")));
        let loopback = match endpoint.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        if loopback {
            // A proxy from the environment must never see loopback traffic.
            http = http.no_proxy();
        }
        let http = http.build().map_err(|e| {
            self.config_error(&format!("HTTP client: {}", e.without_url()), "API_URL")
        })?;
        Ok(Client {
            http,
            endpoint,
            api_key,
            secret: SecretString::from(secret.expose_secret().to_owned()),
            site,
            algorithm: self.algorithm,
            expires_after: self.expires_after,
            clock: self
                .clock
                .clone()
                .unwrap_or_else(|| Arc::new(SystemTime::now)),
            page_size: self.page_size,
            poll_interval: self.poll_interval,
            job_timeout: self.job_timeout,
            wire_limit: self.wire_limit.clone(),
        })
    }

    /// Builds the [`CloudStackProvider`].
    ///
    /// # Errors
    /// `Config` naming what is missing or malformed: endpoint, credentials, zone.
    pub fn build(&self) -> Result<CloudStackProvider> {
        let client = self.build_client()?;
        let zone = self
            .zone
            .clone()
            .filter(|z| !z.trim().is_empty())
            .ok_or_else(|| self.config_error("no zone (name or id)", "ZONE"))?;
        Ok(CloudStackProvider::new(
            client,
            Settings {
                zone,
                template: self.template.clone(),
                networks: self.networks.clone(),
                keypair: self.keypair.clone(),
                deploy_concurrency: self.deploy_concurrency,
                wait_for_running: self.wait_for_running,
                expunge: self.expunge,
                on_deploy: self.on_deploy.clone(),
            },
        ))
    }

    /// Builds a [`CloudStackVpn`] of `mode` (site-to-site or remote access).
    ///
    /// # Errors
    /// `Config` naming what is missing or malformed.
    pub fn build_vpn(&self, mode: VpnMode) -> Result<CloudStackVpn> {
        let client = self.build_client()?;
        Ok(CloudStackVpn::new(client, mode, self.vpn.clone()))
    }
}

impl fmt::Debug for CloudStackBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudStackBuilder")
            .field("site", &self.site)
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .field("zone", &self.zone)
            .field("template", &self.template)
            .field("networks", &self.networks)
            .field("keypair", &self.keypair)
            .field("poll_interval", &self.poll_interval)
            .field("job_timeout", &self.job_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("deploy_concurrency", &self.deploy_concurrency)
            .field("page_size", &self.page_size)
            .field("expires_after", &self.expires_after)
            .field("algorithm", &self.algorithm)
            .field("wait_for_running", &self.wait_for_running)
            .field("expunge", &self.expunge)
            .field("on_deploy", &self.on_deploy.is_some())
            .field("vpn", &self.vpn)
            .finish_non_exhaustive()
    }
}
