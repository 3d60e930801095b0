//! The [`VpnFabric`] trait: how sites of a cluster are linked into one overlay.
//!
//! A fabric prepares an endpoint per site (a native VPN gateway, or a gateway VM's
//! configuration), connects pairs of endpoints, and renders what each member VM needs
//! at boot to join. Native gateways live in the backend crates (CloudStack, EC2);
//! WireGuard, strongSwan and L2TP/IPsec live in `intercloud-vpn`.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::model::SiteId;
use crate::Result;

/// Which kind of fabric this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FabricKind {
    /// A WireGuard overlay between gateway nodes and members.
    WireGuard,
    /// IPsec site-to-site (a native gateway or strongSwan).
    Ipsec,
    /// L2TP/IPsec remote access (CloudStack's VPN, xl2tpd clients).
    L2tp,
    /// A fabric choosing one of the others per site pair.
    Composite,
}

/// What a fabric needs to know about one site of one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteContext {
    /// The site.
    pub site: SiteId,
    /// The cluster, for tags and names.
    pub cluster: String,
    /// The site's overlay subnet (CIDR) from the IPAM.
    pub overlay_subnet: String,
    /// The site's own private networks (CIDR) to route to the others.
    #[serde(default)]
    pub local_cidrs: Vec<String>,
    /// Middleware-specific hints (VPC id, network id, public IP id), by name.
    #[serde(default)]
    pub hints: BTreeMap<String, String>,
}

/// A prepared site endpoint: what other sites connect to.
///
/// `resources` lists every cloud resource created for it, so the journal can record
/// them and teardown can find them. Secrets (pre-shared keys) are never serialised.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteEndpoint {
    /// The site.
    pub site: SiteId,
    /// The fabric kind that made it.
    pub kind: FabricKind,
    /// The public address peers connect to, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_address: Option<String>,
    /// The site's overlay subnet (CIDR).
    pub overlay_subnet: String,
    /// Ids of the cloud resources created for this endpoint, by role
    /// (`vpn_gateway`, `public_ip`, …).
    #[serde(default)]
    pub resources: BTreeMap<String, String>,
    /// Non-secret attributes (WireGuard public key, IKE/ESP proposals), by name.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// What a link between two endpoints must provide.
#[derive(Debug, Clone, Default)]
pub struct LinkSpec {
    /// Wanted bandwidth in Mbit/s, if any.
    pub bandwidth_mbps: Option<f64>,
    /// A pre-shared key to use; `None` lets the fabric generate one.
    pub psk: Option<SecretString>,
}

/// A link's id in the fabric's terms (a VPN connection id, a peer pair name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LinkId(pub String);

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A link's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Being set up.
    Pending,
    /// Carrying traffic.
    Up,
    /// Configured but not carrying traffic.
    Down,
    /// Failed, with the fabric's reason.
    Failed(String),
}

/// One member VM of the overlay, known at plan time (before the VM exists).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The node's name in the cluster (`worker-3`).
    pub name: String,
    /// Its role.
    pub role: String,
    /// Its site.
    pub site: SiteId,
    /// Its overlay address.
    pub overlay_ip: String,
}

/// A file placed on a member at boot.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootFile {
    /// Absolute path on the VM.
    pub path: String,
    /// File mode, octal text (`"0600"`).
    pub mode: String,
    /// Content.
    pub content: String,
}

impl fmt::Debug for BootFile {
    // Boot files may hold private keys: print only path and size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootFile")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .field("bytes", &self.content.len())
            .finish()
    }
}

/// What a member needs at boot to join a fabric: the cloud-init part a fabric adds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bootstrap {
    /// Debian/RHEL package names to install.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Files to write.
    #[serde(default)]
    pub files: Vec<BootFile>,
    /// Shell commands to run, in order, after the files are written.
    #[serde(default)]
    pub commands: Vec<String>,
}

/// What the far side of a link needs from this fabric's side to bring the link up,
/// when the fabric (not the caller) chose it: a native gateway's tunnel address and
/// pre-shared key (EC2), a remote-access VPN's server, pre-shared key and user
/// (CloudStack L2TP/IPsec). Secrets are redacted in `Debug`.
#[derive(Clone, Default)]
pub struct PeerAccess {
    /// The public address the peer connects to.
    pub address: Option<String>,
    /// The IPsec pre-shared key.
    pub psk: Option<SecretString>,
    /// A VPN user name (remote access).
    pub username: Option<String>,
    /// The VPN user's password (remote access).
    pub password: Option<SecretString>,
}

impl fmt::Debug for PeerAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |s: &Option<SecretString>| s.as_ref().map(|_| "[redacted]");
        f.debug_struct("PeerAccess")
            .field("address", &self.address)
            .field("psk", &redact(&self.psk))
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .finish()
    }
}

/// A way of linking a cluster's sites.
///
/// # Contract
/// - `prepare_site` and `connect` are idempotent for the same cluster and site pair:
///   repeating them finds what exists (by tag or name) instead of making a second one.
/// - `disconnect` and `release_site` of something already gone return `Ok(())`; call
///   `disconnect` on every link before `release_site` on its endpoints.
/// - `member_bootstrap` is pure: it renders configuration, no network call.
/// - Pre-shared keys and private keys never appear in `Debug`, errors or logs.
///
/// # Errors
/// [`crate::Error`] with the site set; `Unsupported` when the site cannot host this
/// fabric (the composite fabric then chooses another).
#[async_trait]
pub trait VpnFabric: Send + Sync + fmt::Debug {
    /// The fabric's kind.
    fn kind(&self) -> FabricKind;

    /// Creates or finds the site's endpoint (gateway) for a cluster.
    async fn prepare_site(&self, site: &SiteContext) -> Result<SiteEndpoint>;

    /// Links two prepared endpoints.
    async fn connect(&self, a: &SiteEndpoint, b: &SiteEndpoint, link: &LinkSpec) -> Result<LinkId>;

    /// Renders what `member` needs at boot to join (no network call).
    fn member_bootstrap(&self, member: &Member) -> Result<Bootstrap>;

    /// The link's current state.
    async fn link_status(&self, link: &LinkId) -> Result<LinkState>;

    /// What the other side of `link` needs to join it (see [`PeerAccess`]); `None`
    /// when the caller already has everything (the default).
    ///
    /// # Errors
    /// `NotFound` when the link is gone.
    async fn peer_access(&self, _link: &LinkId) -> Result<Option<PeerAccess>> {
        Ok(None)
    }

    /// Removes a link.
    async fn disconnect(&self, link: &LinkId) -> Result<()>;

    /// Removes what `prepare_site` created for the endpoint.
    async fn release_site(&self, endpoint: &SiteEndpoint) -> Result<()>;
}
