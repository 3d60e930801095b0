//! What a site offers and how much of it is left, and what a backend can do.

use serde::{Deserialize, Serialize};

/// One offering as the middleware lists it (service offering, instance type, template).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offering {
    /// The middleware's id.
    pub id: String,
    /// The middleware's name.
    pub name: String,
    /// Virtual CPUs, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<u32>,
    /// Memory in MiB, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
}

/// Usage against a limit. `max: None` means the middleware reports no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    /// In use now.
    pub used: u64,
    /// The limit, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
}

impl Limit {
    /// A limit of `max` with `used` in use.
    pub fn new(used: u64, max: Option<u64>) -> Self {
        Self { used, max }
    }

    /// What is left, or `None` when unlimited.
    pub fn available(&self) -> Option<u64> {
        self.max.map(|m| m.saturating_sub(self.used))
    }
}

/// How much an account may still create at a site.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// VM instances.
    pub instances: Limit,
    /// Virtual CPUs.
    pub vcpus: Limit,
    /// Memory in MiB.
    pub memory_mb: Limit,
}

/// How the middleware takes user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserDataFormat {
    /// cloud-init user data, base64 on the wire (CloudStack, EC2).
    CloudInit,
    /// OpenNebula CONTEXT (`USER_DATA` + `USER_DATA_ENCODING=base64`).
    OneContext,
}

/// What a backend can do, as data read once before any network call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// `create_vms` with `count > 1` is one API call (EC2 `MinCount`/`MaxCount`).
    pub batch_create: bool,
    /// The largest `count` one `create_vms` call accepts.
    pub max_batch: u32,
    /// The provider keeps the idempotent-create contract of
    /// [`crate::CloudProvider`]; the retry wrapper retries a create whose outcome is
    /// unknown only when this is true. Every intercloud backend sets it.
    pub idempotent_create: bool,
    /// The server honours an idempotency token (EC2 `ClientToken`); otherwise the
    /// backend looks the key tag up before creating.
    pub server_idempotency: bool,
    /// The server filters `list_vms` by tag; otherwise the backend filters client-side.
    pub server_tag_filter: bool,
    /// The middleware has its own site-to-site VPN gateway.
    pub native_vpn: bool,
    /// How user data is delivered.
    pub user_data: UserDataFormat,
    /// The largest user data accepted, in bytes before base64 (CloudStack: 32 KiB).
    pub max_user_data: usize,
    /// [`crate::CloudProvider::start_vm`] powers a stopped VM on again (same VM, same
    /// disk, same id); otherwise it answers `Unsupported` and the deployer replaces a
    /// stopped VM instead. Default `false`: a provider that keeps the trait's default
    /// `start_vm` cannot start one.
    #[serde(default)]
    pub start_vm: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self {
            batch_create: false,
            max_batch: 1,
            idempotent_create: true,
            server_idempotency: false,
            server_tag_filter: false,
            native_vpn: false,
            user_data: UserDataFormat::CloudInit,
            max_user_data: 16 * 1024,
            start_vm: false,
        }
    }
}
