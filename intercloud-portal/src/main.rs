//! `intercloud-portal`: the example portal's binary.
//!
//! ```text
//! intercloud-portal --listen 127.0.0.1:8080 --local-user alice   # password from
//!     INTERCLOUD_PORTAL_PASSWORD_ALICE; vault passphrase from INTERCLOUD_VAULT_PASSPHRASE
//! intercloud-portal --trusted-proxy 127.0.0.1                     # behind an SSO proxy
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use intercloud_core::config::FederationConfig;
use intercloud_core::deploy::DeployOptions;
use intercloud_core::{EncryptedFileVault, Vault};
use intercloud_portal::{
    app, serve, Backend, FederationBackend, MemoryBackend, PortalConfig, SimBackend,
};
use secrecy::SecretString;

/// The InterCloud example portal.
#[derive(Debug, Parser)]
#[command(name = "intercloud-portal", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The SSO reverse proxy's address: trust its X-Remote-User / REMOTE_USER header
    /// (local login is then off).
    #[arg(long)]
    trusted_proxy: Option<IpAddr>,
    /// A local account (development); its password is read from
    /// INTERCLOUD_PORTAL_PASSWORD_<NAME> (upper case, '-' and '.' as '_').
    #[arg(long = "local-user")]
    local_users: Vec<String>,
    /// State folder: the encrypted vault and the simulated clouds' keys.
    #[arg(long, default_value = "portal-state")]
    state_dir: PathBuf,
    /// A `federation.toml` of real clouds; without it the portal runs on the embedded
    /// simulated federation (intercloud-sim on loopback).
    #[arg(long)]
    federation: Option<PathBuf>,
    /// Use the built-in in-memory clouds instead of the simulated federation.
    #[arg(long, conflicts_with = "federation")]
    in_memory: bool,
    /// Simulated federation: wall-clock seconds per simulated second (0.2 = 5x faster).
    #[arg(long, default_value_t = 0.2)]
    time_scale: f64,
    /// Serve cookies without `Secure` (only for plain-HTTP access other than loopback).
    #[arg(long)]
    insecure_cookies: bool,
}

fn password_var(user: &str) -> String {
    let up: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("INTERCLOUD_PORTAL_PASSWORD_{up}")
}

async fn run(args: Args) -> Result<(), String> {
    let passphrase = std::env::var("INTERCLOUD_VAULT_PASSPHRASE").map_err(|_| {
        "set INTERCLOUD_VAULT_PASSPHRASE: the passphrase of the portal's encrypted vault".to_owned()
    })?;
    let mut local_users = Vec::new();
    for u in &args.local_users {
        let var = password_var(u);
        let pw = std::env::var(&var)
            .map_err(|_| format!("local user {u}: set {var} to the account's password"))?;
        local_users.push((u.clone(), SecretString::from(pw)));
    }
    if local_users.is_empty() && args.trusted_proxy.is_none() {
        return Err(
            "nobody can sign in: pass --trusted-proxy ADDR (SSO) or --local-user NAME".into(),
        );
    }
    std::fs::create_dir_all(&args.state_dir)
        .map_err(|e| format!("cannot create {}: {e}", args.state_dir.display()))?;
    let vault = EncryptedFileVault::options()
        .create(true)
        .open(
            args.state_dir.join("vault.icv"),
            &SecretString::from(passphrase),
        )
        .await
        .map_err(|e| e.to_string())?;
    let keys_file = args.state_dir.join("simulated-cloud-keys.txt");
    let backend: Arc<dyn Backend> = match &args.federation {
        Some(path) => {
            let config = FederationConfig::load(path).map_err(|e| e.to_string())?;
            Arc::new(FederationBackend::new(config, path.display().to_string()))
        }
        None if args.in_memory => {
            let backend = MemoryBackend::new(Duration::from_secs(2)).map_err(|e| e.to_string())?;
            let sites = backend.federation().sites.clone();
            write_sim_keys(
                &sites,
                |s| backend.accepted_credentials(s).cloned(),
                &keys_file,
            )?;
            Arc::new(backend)
        }
        None => {
            let backend = SimBackend::start(args.time_scale).await?;
            let sites = backend.federation().sites.clone();
            write_sim_keys(&sites, |s| backend.accepted_credentials(s), &keys_file)?;
            Arc::new(backend)
        }
    };
    if args.federation.is_none() {
        tracing::info!(keys = %keys_file.display(), "the simulated clouds' keys");
    }
    tracing::info!(federation = %backend.describe(), "federation ready");
    let config = PortalConfig {
        trusted_proxy: args.trusted_proxy,
        local_users,
        secure_cookies: !args.insecure_cookies,
        deploy: DeployOptions {
            poll_min: Duration::from_millis(500),
            poll_max: Duration::from_secs(3),
            ..DeployOptions::default()
        },
    };
    let router = app(backend, Arc::new(vault) as Arc<dyn Vault>, config)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    tracing::info!(address = %args.listen, "portal listening");
    serve(listener, router).await.map_err(|e| e.to_string())
}

/// The simulated clouds' accepted keys, for the developer to register (mode 0600).
fn write_sim_keys(
    sites: &[intercloud_core::config::SiteConfig],
    accepted: impl Fn(&intercloud_core::SiteId) -> Option<intercloud_core::Credentials>,
    path: &std::path::Path,
) -> Result<(), String> {
    use secrecy::ExposeSecret;
    let mut text = String::from("# keys the simulated clouds accept\n");
    for s in sites {
        let line = match accepted(&s.id) {
            Some(intercloud_core::Credentials::CloudStack {
                api_key,
                secret_key,
            }) => {
                format!(
                    "{} api_key={api_key} secret_key={}\n",
                    s.id,
                    secret_key.expose_secret()
                )
            }
            Some(intercloud_core::Credentials::OpenNebula { user, password }) => {
                format!(
                    "{} user={user} password={}\n",
                    s.id,
                    password.expose_secret()
                )
            }
            Some(intercloud_core::Credentials::Ec2 {
                access_key_id,
                secret_access_key,
                ..
            }) => {
                format!(
                    "{} access_key_id={access_key_id} secret_access_key={}\n",
                    s.id,
                    secret_access_key.expose_secret()
                )
            }
            _ => continue,
        };
        text.push_str(&line);
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    std::io::Write::write_all(&mut f, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("intercloud-portal: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
