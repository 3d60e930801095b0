//! The federation a command works on: a `federation.toml`, or the built-in simulated
//! federation started in-process; the wrapped providers of its sites and their
//! clouds' own VPN fabrics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use intercloud_core::config::{FederationConfig, SiteConfig};
use intercloud_core::wrap::{stack, SitePolicy};
use intercloud_core::{
    CloudProvider, CredentialRef, Credentials, Error, FabricChoice, Result, SiteId, Vault,
    VpnFabric,
};
use intercloud_vpn::SiteVpn;

use crate::creds;

/// Where the federation came from; stored with each deployment so later commands use
/// the same one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A federation file (absolute path).
    File(PathBuf),
    /// The built-in simulated federation.
    Embedded,
}

impl Origin {
    /// The text stored in the state folder.
    pub(crate) fn to_text(&self) -> String {
        match self {
            Self::File(p) => p.display().to_string(),
            Self::Embedded => "embedded".into(),
        }
    }

    /// Parses the stored text.
    pub(crate) fn from_text(s: &str) -> Self {
        match s.trim() {
            "embedded" => Self::Embedded,
            p => Self::File(PathBuf::from(p)),
        }
    }
}

/// A site's cloud-native VPN fabrics (none for OpenNebula).
#[derive(Debug, Clone, Default)]
pub(crate) struct NativeVpn {
    /// IPsec site-to-site gateway (CloudStack VPC gateway, EC2 virtual private gateway).
    site_to_site: Option<Arc<dyn VpnFabric>>,
    /// L2TP/IPsec remote-access VPN (CloudStack).
    remote_access: Option<Arc<dyn VpnFabric>>,
}

/// A federation ready to use: its configuration, one wrapped provider per site and
/// each site's native VPN fabrics.
#[derive(Debug)]
pub(crate) struct Federation {
    pub(crate) origin: Origin,
    pub(crate) config: FederationConfig,
    pub(crate) providers: Vec<Arc<dyn CloudProvider>>,
    native_vpn: BTreeMap<SiteId, NativeVpn>,
    /// Keeps the embedded simulator serving while the command runs.
    _sim: Option<intercloud_sim::Federation>,
}

/// Time scale of the embedded simulator: its seed sites boot in 5-40 simulated
/// seconds; at 0.05 a cluster comes up in a few wall-clock seconds.
const EMBEDDED_TIME_SCALE: f64 = 0.05;

/// Opens the federation: `file` if given, else the stored `origin`, else the
/// built-in simulated federation.
pub(crate) async fn open(
    file: Option<&Path>,
    stored: Option<Origin>,
    user: &str,
    vault: Option<&Path>,
) -> Result<Federation> {
    let origin = match (file, stored) {
        (Some(f), _) => Origin::File(
            std::fs::canonicalize(f)
                .map_err(|e| Error::config(format!("cannot read {}: {e}", f.display())))?,
        ),
        (None, Some(o)) => o,
        (None, None) => Origin::Embedded,
    };
    match &origin {
        Origin::Embedded => embedded().await,
        Origin::File(path) => {
            let config = FederationConfig::load(path)?;
            let (providers, native_vpn) = providers(&config, user, vault).await?;
            Ok(Federation {
                origin,
                config,
                providers,
                native_vpn,
                _sim: None,
            })
        }
    }
}

impl Federation {
    /// What each of `sites` offers an overlay of `wish`: capabilities and the native
    /// fabric that wish uses (site-to-site for `ipsec`, remote access for `l2tp`);
    /// networks are read by [`Federation::read_networks`].
    pub(crate) fn site_vpns(
        &self,
        wish: FabricChoice,
        sites: &[SiteId],
    ) -> BTreeMap<SiteId, SiteVpn> {
        self.providers
            .iter()
            .filter(|p| sites.contains(p.site()))
            .map(|p| {
                let n = self.native_vpn.get(p.site()).cloned().unwrap_or_default();
                let native = match wish {
                    FabricChoice::Ipsec => n.site_to_site,
                    FabricChoice::L2tp => n.remote_access,
                    _ => None,
                };
                (p.site().clone(), SiteVpn::new(p.capabilities(), native))
            })
            .collect()
    }

    /// Reads the guest network of every site in `vpns` that has a native fabric.
    ///
    /// # Errors
    /// The first site's error.
    pub(crate) async fn read_networks(&self, vpns: &mut BTreeMap<SiteId, SiteVpn>) -> Result<()> {
        for p in &self.providers {
            if let Some(v) = vpns.get_mut(p.site()) {
                v.read_network(p.as_ref()).await?;
            }
        }
        Ok(())
    }
}

/// Starts the built-in simulated federation and describes it as a federation file
/// would, with its credentials passed directly (no vault).
async fn embedded() -> Result<Federation> {
    let sim = intercloud_sim::Federation::start_default(EMBEDDED_TIME_SCALE)
        .await
        .map_err(|e| Error::unavailable(format!("cannot start the simulated federation: {e}")))?;
    let (config, creds) = describe_sim(&sim);
    let mut providers = Vec::new();
    let mut native_vpn = BTreeMap::new();
    for (site, c) in config.sites.iter().zip(creds) {
        let (p, n) = provider(site, c, Duration::from_millis(250))?;
        providers.push(p);
        native_vpn.insert(site.id.clone(), n);
    }
    Ok(Federation {
        origin: Origin::Embedded,
        config,
        providers,
        native_vpn,
        _sim: Some(sim),
    })
}

/// The federation file (and the credentials) describing a running simulator. Its
/// credentials are written as `env:SIM_<SITE>` references.
pub(crate) fn describe_sim(
    sim: &intercloud_sim::Federation,
) -> (FederationConfig, Vec<Credentials>) {
    let mut config = sim
        .federation_file(|id| format!("env:SIM_{}", id.as_str().to_uppercase().replace('-', "_")));
    for site in &mut config.sites {
        site.max_concurrency = site.max_concurrency.or(Some(16));
    }
    let creds = sim.sites().iter().map(|s| s.core_credentials()).collect();
    (config, creds)
}

/// The environment variables that `env:SIM_<SITE>` references read, for a simulator's
/// credentials (what `intercloud sim` prints).
pub(crate) fn sim_env(site: &SiteConfig, c: &Credentials) -> Vec<(String, String)> {
    use secrecy::ExposeSecret;
    let prefix = site.credentials.trim_start_matches("env:");
    match c {
        Credentials::CloudStack {
            api_key,
            secret_key,
        } => vec![
            (format!("{prefix}_API_KEY"), api_key.clone()),
            (
                format!("{prefix}_SECRET_KEY"),
                secret_key.expose_secret().to_owned(),
            ),
        ],
        Credentials::OpenNebula { user, password } => {
            vec![(
                format!("{prefix}_AUTH"),
                format!("{user}:{}", password.expose_secret()),
            )]
        }
        Credentials::Ec2 {
            access_key_id,
            secret_access_key,
            ..
        } => vec![
            (format!("{prefix}_ACCESS_KEY_ID"), access_key_id.clone()),
            (
                format!("{prefix}_SECRET_ACCESS_KEY"),
                secret_access_key.expose_secret().to_owned(),
            ),
        ],
        _ => Vec::new(),
    }
}

/// One wrapped provider (and its native VPN fabrics) per site, with credentials from
/// the vault or the environment.
async fn providers(
    config: &FederationConfig,
    user: &str,
    vault_path: Option<&Path>,
) -> Result<(Vec<Arc<dyn CloudProvider>>, BTreeMap<SiteId, NativeVpn>)> {
    let needs_vault = config
        .sites
        .iter()
        .any(|s| s.credentials.starts_with("vault:"));
    let vault: Arc<dyn Vault> = if needs_vault {
        let path = vault_path.map_or_else(creds::default_vault_path, Path::to_path_buf);
        Arc::new(creds::open_vault(&path, false).await?)
    } else {
        Arc::new(intercloud_core::MemoryVault::new())
    };
    let mut out = Vec::new();
    let mut natives = BTreeMap::new();
    for site in &config.sites {
        let reference: CredentialRef = site
            .credentials
            .parse()
            .map_err(|e: Error| e.with_site(&site.id))?;
        let c = reference
            .resolve(vault.as_ref(), user, site.middleware, |k| {
                std::env::var(k).ok()
            })
            .await
            .map_err(|e| Error::config(e.message().to_owned()).with_site(&site.id))?;
        let (p, n) = provider(site, c, Duration::from_secs(2))?;
        out.push(p);
        natives.insert(site.id.clone(), n);
    }
    Ok((out, natives))
}

/// The backend for one site, wrapped in retry, rate limit and timeout, and its
/// cloud's VPN fabrics (their calls are retried by the deployer's VPN steps).
fn provider(
    site: &SiteConfig,
    c: Credentials,
    poll: Duration,
) -> Result<(Arc<dyn CloudProvider>, NativeVpn)> {
    let clients = intercloud_examples::connect::connect(site, c, Some(poll))?;
    let native = NativeVpn {
        site_to_site: clients.site_to_site,
        remote_access: clients.remote_access,
    };
    let policy = SitePolicy::for_site(&site.to_site());
    Ok((Arc::new(stack(clients.provider, &policy)?), native))
}
