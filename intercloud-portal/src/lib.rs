//! # intercloud-portal
//!
//! An example web portal over the intercloud library — the seed's "InterCloud
//! manager": single sign-on, per-user cloud keys in the encrypted vault, cluster
//! requests with the planner's placement and alternatives, a live progress page fed by
//! the deployer's events (server-sent events), and a cluster page with repair and
//! destroy. Server-rendered HTML; a few lines of inline JS for the event stream.
//!
//! ## Security model
//! - **Sign-on**: with [`PortalConfig::trusted_proxy`] set, the identity header
//!   (`X-Remote-User` or `REMOTE_USER`) is trusted from that address only, and local
//!   login is off; otherwise local accounts ([`PortalConfig::local_users`]) for
//!   development.
//! - **Sessions**: random ids in `HttpOnly; SameSite=Strict; Secure` cookies,
//!   renewed at login; **CSRF**: every POST must carry its session's token.
//! - **Tenancy**: keys, drafts and clusters belong to one user; another user's look
//!   the same as missing ones (404). A user's deployments use only their own keys.
//! - **Secrets** are write-only: never rendered, never logged.

mod auth;
pub mod backend;
pub mod clouds;
pub mod clusters;
pub mod form;
pub mod html;
pub mod render;
mod routes;
pub mod session;
pub mod sim;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use intercloud_core::deploy::DeployOptions;
use intercloud_core::planner::{Placement, Planner};
use intercloud_core::{ClusterRequest, Vault};
use secrecy::SecretString;

pub use auth::{valid_user_name, IDENTITY_HEADERS};
pub use backend::{Backend, MemoryBackend};
pub use clouds::FederationBackend;
pub use sim::SimBackend;

/// How the portal runs.
pub struct PortalConfig {
    /// The SSO reverse proxy's address: identity headers are trusted from it only.
    pub trusted_proxy: Option<IpAddr>,
    /// Local accounts (development): user name and password.
    pub local_users: Vec<(String, SecretString)>,
    /// Whether cookies carry `Secure` (keep on; browsers accept it on loopback).
    pub secure_cookies: bool,
    /// Deployer timings (poll intervals, timeouts).
    pub deploy: DeployOptions,
}

impl fmt::Debug for PortalConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortalConfig")
            .field("trusted_proxy", &self.trusted_proxy)
            .field(
                "local_users",
                &self.local_users.iter().map(|(u, _)| u).collect::<Vec<_>>(),
            )
            .field("secure_cookies", &self.secure_cookies)
            .finish_non_exhaustive()
    }
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            trusted_proxy: None,
            local_users: Vec::new(),
            secure_cookies: true,
            deploy: DeployOptions::default(),
        }
    }
}

/// A planned request waiting for the user's confirmation.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub(crate) owner: String,
    pub(crate) name: String,
    pub(crate) request: ClusterRequest,
    pub(crate) placement: Placement,
    pub(crate) created: std::time::Instant,
}

/// Drafts kept per user; planning more drops the oldest.
pub(crate) const MAX_DRAFTS_PER_USER: usize = 20;

/// The portal's shared state.
#[derive(Debug)]
pub struct Portal {
    backend: Arc<dyn Backend>,
    vault: Arc<dyn Vault>,
    sessions: session::Sessions,
    users: auth::LocalUsers,
    trusted_proxy: Option<IpAddr>,
    clusters: clusters::Clusters,
    drafts: Mutex<HashMap<String, Draft>>,
    planner: Planner,
    deploy: DeployOptions,
}

/// What handlers share.
pub type AppState = Arc<Portal>;

/// The portal's router over `backend` and `vault`. Serve it with
/// [`serve`] (handlers need the peer address for the SSO check).
///
/// # Errors
/// A message when a local account is invalid.
pub fn app(
    backend: Arc<dyn Backend>,
    vault: Arc<dyn Vault>,
    config: PortalConfig,
) -> Result<Router, String> {
    let portal = Arc::new(Portal {
        backend,
        vault,
        sessions: session::Sessions::new(config.secure_cookies),
        users: auth::LocalUsers::new(&config.local_users)?,
        trusted_proxy: config.trusted_proxy,
        clusters: clusters::Clusters::default(),
        drafts: Mutex::new(HashMap::new()),
        planner: Planner::default(),
        deploy: config.deploy,
    });
    Ok(routes::router(portal))
}

/// Serves `router` on `listener` until the future is dropped, passing each
/// connection's peer address to the handlers.
///
/// # Errors
/// When accepting connections fails.
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
