//! What a simulated site remembers: VMs, VPN objects, CloudStack async jobs, and the
//! public introspection view of them.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use intercloud_core::model::SiteId;
use tokio::time::Instant;

/// The kind of a simulated resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ResourceKind {
    /// A virtual machine / instance.
    Vm,
    /// A site-to-site VPN gateway (CloudStack `vpngateway`, EC2 `vgw-`).
    VpnGateway,
    /// A customer gateway (CloudStack `vpncustomergateway`, EC2 `cgw-`).
    CustomerGateway,
    /// A site-to-site VPN connection.
    VpnConnection,
    /// A CloudStack remote-access (L2TP/IPsec) VPN.
    RemoteAccessVpn,
    /// A CloudStack VPN user.
    VpnUser,
}

impl ResourceKind {
    /// A short lowercase name (`vm`, `vpn-gateway`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vm => "vm",
            Self::VpnGateway => "vpn-gateway",
            Self::CustomerGateway => "customer-gateway",
            Self::VpnConnection => "vpn-connection",
            Self::RemoteAccessVpn => "remote-access-vpn",
            Self::VpnUser => "vpn-user",
        }
    }
}

/// A middleware-neutral view of one resource, alive or deleted, for tests and benchmarks.
///
/// `Debug` shows the size of the user data, never its content (it may hold keys).
#[derive(Clone, PartialEq)]
pub struct ResourceRecord {
    /// The site holding it.
    pub site: SiteId,
    /// What it is.
    pub kind: ResourceKind,
    /// Its id as the middleware shows it (UUID, number, `i-…`).
    pub id: String,
    /// Its name (may be empty).
    pub name: String,
    /// Its tags (CloudStack tags, EC2 tags, OpenNebula USER_TEMPLATE attributes).
    pub tags: BTreeMap<String, String>,
    /// Wall-clock time since the federation started when it was created.
    pub created_at: Duration,
    /// Wall-clock time since start when it was deleted (or will be, for a pending delete).
    pub deleted_at: Option<Duration>,
    /// `pending`, `running`, `stopped` (powered off), `failed` or `deleted` for VMs;
    /// `available` or `deleted` otherwise.
    pub state: &'static str,
    /// The offering (VMs only; empty otherwise).
    pub offering: String,
    /// The user data the VM was created with, as sent (base64 for CloudStack and EC2,
    /// the CONTEXT `USER_DATA` value for OpenNebula); VMs only.
    pub user_data: Option<String>,
}

impl std::fmt::Debug for ResourceRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceRecord")
            .field("site", &self.site)
            .field("kind", &self.kind)
            .field("id", &self.id)
            .field("name", &self.name)
            .field("tags", &self.tags)
            .field("created_at", &self.created_at)
            .field("deleted_at", &self.deleted_at)
            .field("state", &self.state)
            .field("offering", &self.offering)
            .field("user_data_len", &self.user_data.as_ref().map(String::len))
            .finish()
    }
}

impl ResourceRecord {
    /// Whether it still exists (not deleted).
    pub fn is_alive(&self) -> bool {
        self.state != "deleted"
    }
}

/// Where a VM is in its life at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Booting,
    Running,
    Failed,
    Deleted,
}

#[derive(Clone)]
pub(crate) struct VmRec {
    pub(crate) id: String,
    pub(crate) num: u64,
    pub(crate) name: String,
    pub(crate) offering: usize,
    pub(crate) image: String,
    pub(crate) created: Instant,
    /// When its current boot began: creation, or the last power-on.
    pub(crate) booted: Instant,
    pub(crate) ready: Instant,
    pub(crate) fails: bool,
    pub(crate) deleted: Option<Instant>,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) ip: Ipv4Addr,
    pub(crate) user_data: Option<String>,
    /// Middleware-specific extras (EC2 reservation and client token, ONE template text).
    pub(crate) extra: Vec<(&'static str, String)>,
}

impl VmRec {
    pub(crate) fn phase(&self, now: Instant) -> Phase {
        if self.deleted.is_some_and(|d| d <= now) {
            Phase::Deleted
        } else if now < self.ready {
            Phase::Booting
        } else if self.fails {
            Phase::Failed
        } else {
            Phase::Running
        }
    }

    /// How it is powered off (`poweroff`, `stopped`, `suspended`, `undeployed`), or
    /// `None` when it is on. A powered-off VM keeps its id, disk and address.
    pub(crate) fn power(&self) -> Option<&str> {
        self.extra("power")
    }

    /// Powers it off (`how` as in [`VmRec::power`]).
    pub(crate) fn power_off(&mut self, how: &str) {
        self.extra.retain(|(k, _)| *k != "power");
        self.extra.push(("power", how.to_owned()));
    }

    pub(crate) fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn set_tag(&mut self, key: &str, value: &str) {
        match self.tags.iter_mut().find(|(k, _)| k == key) {
            Some(t) => t.1 = value.to_owned(),
            None => self.tags.push((key.to_owned(), value.to_owned())),
        }
    }

    pub(crate) fn extra(&self, key: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A VPN object (gateway, customer gateway, connection, remote-access VPN, VPN user).
#[derive(Clone)]
pub(crate) struct ObjRec {
    pub(crate) kind: ResourceKind,
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) created: Instant,
    pub(crate) deleted: Option<Instant>,
    pub(crate) attrs: BTreeMap<String, String>,
    pub(crate) tags: Vec<(String, String)>,
}

impl ObjRec {
    pub(crate) fn alive(&self, now: Instant) -> bool {
        self.deleted.is_none_or(|d| d > now)
    }

    pub(crate) fn attr(&self, key: &str) -> &str {
        self.attrs.get(key).map(String::as_str).unwrap_or("")
    }
}

/// What a CloudStack async job produces once done.
#[derive(Debug, Clone)]
pub(crate) enum JobResult {
    /// deployVirtualMachine: the VM (fails if the VM fails).
    Deploy(usize),
    /// destroyVirtualMachine: the VM, shown Destroyed.
    Destroy(usize),
    /// startVirtualMachine: the VM, shown Running (fails if it is not running then).
    Start(usize),
    /// stopVirtualMachine: the VM, shown Stopped.
    Stop(usize),
    /// `{"success":true}`.
    Success,
    /// A VPN object, under the given response object name.
    Object(usize, &'static str),
}

#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) cmd: &'static str,
    pub(crate) created: Instant,
    pub(crate) done: Instant,
    pub(crate) result: JobResult,
    pub(crate) instance_type: &'static str,
    pub(crate) instance_id: String,
}
