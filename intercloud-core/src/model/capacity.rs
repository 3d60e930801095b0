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

/// Usage against a limit, each figure `None` when the middleware does not say.
///
/// - `used: None`: the middleware does not report the usage (or reports it in a
///   form that cannot be read); it is **unknown**, not zero.
/// - `max: None`: no limit is reported — the account may be unlimited, or the
///   middleware does not expose its limit; intercloud cannot tell them apart and
///   treats the figure as unknown: nothing is refused on its account, and the site's
///   own answer to a create ([`crate::ErrorKind::QuotaExceeded`]) decides.
///
/// The planner never reads these figures: it plans against the capacity the
/// federation file declares per service level ([`crate::LevelOffering::capacity`]).
///
/// ```
/// use intercloud_core::Limit;
///
/// let quota = Limit::new(3, Some(20));
/// assert_eq!(quota.available(), Some(17));
/// assert_eq!(Limit::new(3, None).available(), None); // no limit reported
/// assert_eq!(Limit::unknown().available(), None);
/// assert_eq!(Limit::reported(None, Some(20)).available(), None); // usage unknown
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    /// In use now; `None` when the middleware does not report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<u64>,
    /// The limit; `None` when none is reported (unlimited or not exposed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
}

impl Limit {
    /// A limit of `max` with `used` in use (a known usage).
    pub fn new(used: u64, max: Option<u64>) -> Self {
        Self {
            used: Some(used),
            max,
        }
    }

    /// A limit with whichever figures the middleware reported.
    pub fn reported(used: Option<u64>, max: Option<u64>) -> Self {
        Self { used, max }
    }

    /// Nothing reported: usage and limit unknown (also [`Limit::default`]).
    pub fn unknown() -> Self {
        Self::default()
    }

    /// What is left: `None` when no limit is reported or the usage is unknown.
    pub fn available(&self) -> Option<u64> {
        Some(self.max?.saturating_sub(self.used?))
    }
}

/// How much an account may still create at a site: what
/// [`CloudProvider::capacity`](crate::CloudProvider::capacity) answers.
///
/// Each figure is a [`Limit`] whose parts are `None` when unknown; a backend never
/// invents a zero or a limit it was not told. [`Capacity::default`] is "nothing
/// known".
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
///
/// [`CloudProvider::capabilities`](crate::CloudProvider::capabilities) returns it
/// without any I/O; the deployer, the wrappers and the overlay read it before they
/// call the site. A backend states what its middleware does — a wrong `true` makes
/// the deployer rely on something the site does not do.
///
/// | field | `Default` | read by |
/// |---|---|---|
/// | `batch_create` | `false` | the plan's batch size ([`crate::deploy::plan::batch_size`]) |
/// | `max_batch` | `1` | the plan's batch size; `create_vms` refuses more (`InvalidRequest`) |
/// | `idempotent_create` | `true` | [`crate::wrap::Retry`] and the executor: whether an ambiguous create may be repeated |
/// | `server_idempotency` | `false` | nobody (informational: how the backend keeps the contract) |
/// | `server_tag_filter` | `false` | nobody (informational: whether `list_vms` filters server-side) |
/// | `native_vpn` | `false` | the composite overlay: whether a link may use the site's own VPN gateway |
/// | `user_data` | [`UserDataFormat::CloudInit`] | the node configurer: the format of the user data |
/// | `max_user_data` | `16384` (16 KiB) | the node configurer: larger user data is refused (`InvalidRequest`) before the call |
/// | `start_vm` | `false` | repair: start a stopped VM (`true`) or replace it (`false`) |
///
/// The defaults are those of the most limited middleware — one VM per call, no
/// native VPN, cloud-init of at most 16 KiB, no start — except `idempotent_create`,
/// which every provider must honour (see [`crate::CloudProvider`]'s contract).
/// Start from `Capabilities::default()` and set what the middleware does better.
///
/// ```
/// use intercloud_core::{Capabilities, CloudProvider, MemoryProvider};
///
/// let caps = Capabilities::default();
/// assert!(!caps.batch_create && caps.max_batch == 1);
/// assert!(caps.idempotent_create);
/// // The in-memory cloud batches, filters by tag and starts stopped VMs.
/// let mem = MemoryProvider::new("tokyo").capabilities();
/// assert!(mem.batch_create && mem.server_tag_filter && mem.start_vm);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// `create_vms` with `count > 1` is one API call (EC2 `MinCount`/`MaxCount`), so
    /// the deployer makes batches of up to `max_batch` VMs. Otherwise the backend
    /// makes one request per VM and the deployer groups at most
    /// [`NON_BATCH_CALL_SIZE`](crate::deploy::plan::NON_BATCH_CALL_SIZE) VMs per
    /// call. Default `false`.
    pub batch_create: bool,
    /// The largest `count` one `create_vms` call accepts; a larger count is refused
    /// with `InvalidRequest` before any request. Default `1`.
    pub max_batch: u32,
    /// The provider keeps the idempotent-create contract of
    /// [`crate::CloudProvider`]; the retry wrapper retries a create whose outcome is
    /// unknown only when this is true, and the deployer otherwise waits for a listing
    /// to adopt what an ambiguous create made. Every intercloud backend sets it.
    /// Default `true`.
    pub idempotent_create: bool,
    /// The server honours an idempotency token (EC2 `ClientToken`); otherwise the
    /// backend looks the key tag up before creating. Informational. Default `false`.
    pub server_idempotency: bool,
    /// The server filters `list_vms` by tag; otherwise the backend filters
    /// client-side (same result, more data on the wire). Informational. Default
    /// `false`.
    pub server_tag_filter: bool,
    /// The middleware has its own site-to-site VPN gateway, which the composite
    /// overlay may use for links between two such sites. Default `false`.
    pub native_vpn: bool,
    /// How user data is delivered. Default [`UserDataFormat::CloudInit`].
    pub user_data: UserDataFormat,
    /// The largest user data accepted, in bytes before base64 (CloudStack: 32 KiB);
    /// the node configurer refuses larger user data (`InvalidRequest` naming the site)
    /// before any call. Default 16 KiB.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_figures_stay_unknown_and_old_json_still_reads() {
        // A known usage, as every backend reported it so far.
        let old: Limit = serde_json::from_str(r#"{"used":3,"max":20}"#).unwrap();
        assert_eq!(old, Limit::new(3, Some(20)));
        assert_eq!(old.available(), Some(17));
        // Nothing reported: unknown, and serialised without invented figures.
        let none: Limit = serde_json::from_str("{}").unwrap();
        assert_eq!(none, Limit::unknown());
        assert_eq!(serde_json::to_string(&none).unwrap(), "{}");
        // A limit without a usage tells nothing about what is left.
        assert_eq!(Limit::reported(None, Some(20)).available(), None);
        assert_eq!(Limit::new(25, Some(20)).available(), Some(0));
        assert_eq!(Capacity::default().instances, Limit::unknown());
    }
}
