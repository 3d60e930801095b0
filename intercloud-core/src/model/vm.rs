//! VMs: what to create ([`VmSpec`]), what exists ([`Vm`]) and how to ask ([`VmFilter`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::site::{ImageRef, ServiceLevel, SiteId};
use super::tags::{
    IdempotencyKey, Tags, TAG_CLUSTER, TAG_DEPLOYMENT, TAG_INDEX, TAG_KEY, TAG_ROLE,
};

/// A VM's id in its middleware's terms (CloudStack UUID or number, OpenNebula number,
/// EC2 `i-…`), as a string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VmId(pub String);

impl VmId {
    /// A VM id from any string.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// User data handed to the VM at boot: a cloud-init document (CloudStack, EC2) or the
/// same text placed in OpenNebula's `CONTEXT/USER_DATA`. Backends base64-encode it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserData(pub String);

impl fmt::Debug for UserData {
    // User data may carry overlay private keys: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserData({} bytes)", self.0.len())
    }
}

/// What to create: `count` VMs of one level, one role, one create call.
///
/// The backend names VM `i` of the call `{key}-{i}` and tags it with
/// [`TAG_CLUSTER`], [`TAG_ROLE`], [`TAG_KEY`] and [`TAG_INDEX`] plus `extra_tags`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmSpec {
    /// The cluster the VMs belong to.
    pub cluster: String,
    /// The node group's role (`master`, `worker`, …).
    pub role: String,
    /// The idempotency key of this create call.
    pub key: IdempotencyKey,
    /// The service level, for reports.
    pub level: ServiceLevel,
    /// The site's offering for that level (service offering, instance type, template).
    pub offering: String,
    /// The image (CloudStack template, EC2 AMI); `None` where the offering carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageRef>,
    /// User data for every VM of the call; a node finds its own part by its index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<UserData>,
    /// Further tags, beyond the four intercloud sets itself.
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub extra_tags: Tags,
    /// The caller guarantees that no earlier create call with this key can have taken
    /// effect (the deployer sets it on the first call of a key it has just journaled
    /// for the first time), so a backend may skip its lookup by key. `false`, the
    /// default, is always safe; [`crate::wrap::Retry`] clears it for its retries.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fresh: bool,
    /// The private address VM `i` of the call must have on the site's guest network
    /// ([`GuestNetwork`]), by index; empty lets the cloud choose. Only a provider whose
    /// [`crate::CloudProvider::guest_network`] is `Some` honours it; one that takes
    /// several VMs per request (EC2) needs `count == 1` for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

/// The network a site's new VMs join, as its cloud reports it: the CloudStack VPC
/// tier, the EC2 subnet. A cloud's own VPN gateway routes only this kind of network,
/// so nodes of a site linked through it take addresses from here
/// ([`VmSpec::addresses`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestNetwork {
    /// The network's id (CloudStack network id, EC2 subnet id).
    pub id: String,
    /// Its IPv4 CIDR.
    pub cidr: String,
    /// The VPC it belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<String>,
    /// Addresses already taken by other machines when it was read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_use: Vec<String>,
}

impl VmSpec {
    /// A spec with no image, user data or extra tags.
    pub fn new(
        cluster: impl Into<String>,
        role: impl Into<String>,
        key: IdempotencyKey,
        level: impl Into<ServiceLevel>,
        offering: impl Into<String>,
    ) -> Self {
        Self {
            cluster: cluster.into(),
            role: role.into(),
            key,
            level: level.into(),
            offering: offering.into(),
            image: None,
            user_data: None,
            extra_tags: Tags::new(),
            fresh: false,
            addresses: Vec::new(),
        }
    }

    /// The complete tag set of VM `index` of this call.
    pub fn tags_for(&self, index: u32) -> Tags {
        let mut tags = self.extra_tags.clone();
        tags.insert(TAG_CLUSTER.into(), self.cluster.clone());
        tags.insert(TAG_ROLE.into(), self.role.clone());
        tags.insert(TAG_KEY.into(), self.key.as_str().into());
        tags.insert(TAG_INDEX.into(), index.to_string());
        tags
    }
}

impl From<String> for ServiceLevel {
    fn from(s: String) -> Self {
        ServiceLevel::new(s)
    }
}

/// The normalised state of a VM.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmState {
    /// Accepted, being scheduled, copied or booted.
    Pending,
    /// Running.
    Running,
    /// Stopped or suspended by someone; it still exists.
    Stopped,
    /// The middleware reports it failed; it still exists and must be deleted.
    Failed,
    /// Deleted or being deleted; it will not come back.
    Terminated,
    /// A state the backend does not know, with the middleware's raw name.
    Unknown(String),
}

impl VmState {
    /// Whether the VM still holds resources at the site (everything but `Terminated`).
    pub fn is_alive(&self) -> bool {
        !matches!(self, Self::Terminated)
    }

    /// A short lowercase name for reports (`"unknown"` for `Unknown`).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
            Self::Terminated => "terminated",
            Self::Unknown(_) => "unknown",
        }
    }
}

impl fmt::Display for VmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(raw) => write!(f, "unknown({raw})"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// A VM as a site lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vm {
    /// The middleware's id.
    pub id: VmId,
    /// The site it runs on.
    pub site: SiteId,
    /// Its name (for intercloud's VMs `{key}-{index}`).
    pub name: String,
    /// Its normalised state.
    pub state: VmState,
    /// Its tags, in core's key spelling.
    #[serde(default)]
    pub tags: Tags,
    /// The middleware's own offering id or name, when listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offering: Option<String>,
    /// The first private address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
    /// The public address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<String>,
}

impl Vm {
    /// The cluster tag, if any.
    pub fn cluster(&self) -> Option<&str> {
        self.tags.get(TAG_CLUSTER).map(String::as_str)
    }

    /// The role tag, if any.
    pub fn role(&self) -> Option<&str> {
        self.tags.get(TAG_ROLE).map(String::as_str)
    }

    /// The idempotency key tag, if any.
    pub fn key(&self) -> Option<&str> {
        self.tags.get(TAG_KEY).map(String::as_str)
    }

    /// The index within its create call, if tagged.
    pub fn index(&self) -> Option<u32> {
        self.tags.get(TAG_INDEX).and_then(|v| v.parse().ok())
    }

    /// The id of the deployment that made it, if tagged ([`TAG_DEPLOYMENT`]).
    pub fn deployment(&self) -> Option<&str> {
        self.tags.get(TAG_DEPLOYMENT).map(String::as_str)
    }
}

/// Which VMs to list. All set fields must match (AND); an empty filter lists every VM
/// the credentials can see.
///
/// Backends push what they can to the server (tag filters, state filters) and must then
/// apply [`VmFilter::matches`] to what comes back, so results are exact either way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VmFilter {
    /// Only VMs with these exact tags.
    #[serde(default)]
    pub tags: Tags,
    /// Only VMs with one of these ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<VmId>>,
    /// Include terminated VMs (default: only VMs that are alive).
    #[serde(default)]
    pub include_terminated: bool,
}

impl VmFilter {
    /// Every VM of `cluster`.
    pub fn cluster(cluster: impl Into<String>) -> Self {
        Self::default().tag(TAG_CLUSTER, cluster)
    }

    /// Every VM of `cluster` made by the deployment `deployment`.
    pub fn deployment(cluster: impl Into<String>, deployment: impl Into<String>) -> Self {
        Self::cluster(cluster).tag(TAG_DEPLOYMENT, deployment)
    }

    /// Every VM made by the create call with `key`.
    pub fn key(key: &IdempotencyKey) -> Self {
        Self::default().tag(TAG_KEY, key.as_str())
    }

    /// Adds a required tag.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Restricts to these ids.
    pub fn ids(mut self, ids: impl IntoIterator<Item = VmId>) -> Self {
        self.ids = Some(ids.into_iter().collect());
        self
    }

    /// Also lists terminated VMs.
    pub fn with_terminated(mut self) -> Self {
        self.include_terminated = true;
        self
    }

    /// Whether `vm` passes this filter.
    pub fn matches(&self, vm: &Vm) -> bool {
        if !self.include_terminated && !vm.state.is_alive() {
            return false;
        }
        if let Some(ids) = &self.ids {
            if !ids.contains(&vm.id) {
                return false;
            }
        }
        self.tags.iter().all(|(k, v)| vm.tags.get(k) == Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(state: VmState, tags: &[(&str, &str)]) -> Vm {
        Vm {
            id: VmId::new("1"),
            site: SiteId::new("s"),
            name: "n".into(),
            state,
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            offering: None,
            private_ip: None,
            public_ip: None,
        }
    }

    #[test]
    fn filter_matches_tags_ids_and_liveness() {
        let f = VmFilter::cluster("c1").tag(TAG_ROLE, "worker");
        assert!(f.matches(&vm(
            VmState::Running,
            &[(TAG_CLUSTER, "c1"), (TAG_ROLE, "worker")]
        )));
        assert!(!f.matches(&vm(
            VmState::Running,
            &[(TAG_CLUSTER, "c1"), (TAG_ROLE, "master")]
        )));
        assert!(!f.matches(&vm(
            VmState::Running,
            &[(TAG_CLUSTER, "c2"), (TAG_ROLE, "worker")]
        )));
        let dead = vm(
            VmState::Terminated,
            &[(TAG_CLUSTER, "c1"), (TAG_ROLE, "worker")],
        );
        assert!(!f.matches(&dead));
        assert!(f.clone().with_terminated().matches(&dead));
        assert!(!f.ids([VmId::new("2")]).matches(&vm(
            VmState::Running,
            &[(TAG_CLUSTER, "c1"), (TAG_ROLE, "worker")]
        )));
    }

    #[test]
    fn spec_tags_carry_identity() {
        let key = IdempotencyKey::new("ic-c1-abc").unwrap();
        let spec = VmSpec::new("c1", "worker", key.clone(), "S", "Small");
        let t = spec.tags_for(3);
        assert_eq!(t[TAG_CLUSTER], "c1");
        assert_eq!(t[TAG_ROLE], "worker");
        assert_eq!(t[TAG_KEY], "ic-c1-abc");
        assert_eq!(t[TAG_INDEX], "3");
        assert_eq!(key.vm_name(3), "ic-c1-abc-3");
    }

    #[test]
    fn keys_are_validated() {
        assert!(IdempotencyKey::new("").is_err());
        assert!(IdempotencyKey::new("a b").is_err());
        assert!(IdempotencyKey::new("x".repeat(65)).is_err());
        let k = IdempotencyKey::random("hadoop demo!");
        assert!(k.as_str().starts_with("hadoopdemo-"));
        assert!(IdempotencyKey::new(k.as_str()).is_ok());
    }

    #[test]
    fn user_data_debug_hides_content() {
        let u = UserData("PrivateKey = abc".into());
        assert_eq!(format!("{u:?}"), "UserData(16 bytes)");
    }
}
