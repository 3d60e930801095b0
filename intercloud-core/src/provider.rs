//! The [`CloudProvider`] trait every middleware backend implements, and conveniences.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::model::{
    Capabilities, Capacity, GuestNetwork, IdempotencyKey, Offering, SiteId, Vm, VmFilter, VmId,
    VmSpec,
};
use crate::Result;

/// One site's VM API, in the federation's terms.
///
/// Backends (CloudStack, OpenNebula, EC2) implement it over their wire protocol;
/// [`crate::MemoryProvider`] implements it in memory. Cross-cutting behaviour —
/// retry, rate limit, timeout — wraps any provider (see [`crate::wrap`]) and is never
/// written inside a backend. Use it as `Arc<dyn CloudProvider>`.
///
/// ```
/// use intercloud_core::{
///     CloudProvider, IdempotencyKey, MemoryProvider, VmFilter, VmSpec, VmState,
/// };
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> intercloud_core::Result<()> {
/// let site = MemoryProvider::builder("tokyo").offering("Small", 1, 1024).build();
/// let key = IdempotencyKey::new("ic-demo-1")?;
/// let spec = VmSpec::new("demo", "worker", key.clone(), "S", "Small");
///
/// let ids = site.create_vms(&spec, 2).await?;
/// // Same key again: no new VM, the same ids by index.
/// assert_eq!(site.create_vms(&spec, 2).await?, ids);
///
/// // Progress comes from one listing, by cluster tag (or by key).
/// let vms = site.list_vms(&VmFilter::cluster("demo")).await?;
/// assert_eq!(vms.len(), 2);
/// assert!(vms.iter().all(|v| v.state == VmState::Running)); // instant boot here
///
/// for id in &ids {
///     site.delete_vm(id).await?;
///     site.delete_vm(id).await?; // gone already: still Ok
/// }
/// assert!(site.list_vms(&VmFilter::key(&key)).await?.is_empty());
/// # Ok(())
/// # }
/// ```
///
/// # Contract
/// - **Idempotent create by key.** `create_vms(spec, n)` makes VMs with indices
///   `0..n`, each named `spec.key.vm_name(i)` and tagged with `spec.tags_for(i)`.
///   Calling it again with the same key never makes a second VM for an index that
///   exists: the backend passes the key as the middleware's idempotency token, or
///   lists by the key tag and creates only the missing indices. It returns the ids of
///   all `n` VMs, those made earlier included, ordered by index.
/// - **Create does not wait for `Running`.** `Ok` means the middleware accepted every
///   VM: each is listed from then on, `Pending` or already `Running`. Callers poll
///   [`list_vms`](Self::list_vms) for `Running` (the testkit's
///   `state_progresses_to_running`). A backend may wait longer to surface failures
///   as errors — CloudStack waits, by default, for its deploy jobs to finish
///   (`wait_for_running`) — but no caller may rely on it.
/// - **Partial failure is an error, never a short list.** When some VMs of the call
///   could not be made, `create_vms` returns `Err`; the VMs that were made (and, for
///   a temporary error, possibly more: the reply was lost) exist tagged with the key
///   and their index. Repeating the call with the same key makes only the missing
///   indices (the testkit's `retried_create_is_idempotent`); listing by
///   [`VmFilter::key`] finds the rest for deletion. A backend may remove what the
///   call made when the error is permanent (CloudStack does; OpenNebula keeps them
///   for the retry; EC2's `RunInstances` and the memory provider make all or
///   none), so callers must not assume either. Capacity is refused as
///   `QuotaExceeded` (the testkit's `capacity_exceeded`).
/// - **Batch polling.** `list_vms` is one logical listing (the backend may page) and
///   returns exactly the VMs that pass [`VmFilter::matches`]; callers poll progress of
///   a whole cluster with one call per site per tick.
/// - **Delete is idempotent.** Deleting a VM that is gone already returns `Ok(())`.
/// - **Unknown figures stay unknown.** [`capacity`](Self::capacity) reports `None` for
///   any figure the middleware does not give (see [`Limit`](crate::Limit)); it never
///   invents a zero or a limit.
/// - **Capabilities are honest data.** [`capabilities`](Self::capabilities) makes no
///   call; see [`Capabilities`] for every field's meaning and default.
/// - **No secrets** appear in errors, logs or `Debug` output.
///
/// The conformance scenarios in `testkit` (feature `testkit`) check these on any
/// provider; every backend runs them.
///
/// # Errors
/// Every method returns [`crate::Error`] with the site set; kinds as documented on
/// [`crate::ErrorKind`], classes on [`crate::ErrorClass`]. A create that may or may
/// not have happened (timeout, dropped connection) is reported as a temporary error:
/// retrying it with the same key is safe.
#[async_trait]
pub trait CloudProvider: Send + Sync + fmt::Debug {
    /// The site this provider talks to.
    fn site(&self) -> &SiteId;

    /// What the backend can do; plain data, no network call.
    fn capabilities(&self) -> Capabilities;

    /// The offerings the site lists (service offerings, instance types, templates).
    async fn offerings(&self) -> Result<Vec<Offering>>;

    /// What the account may still create at the site: usage and limits of instances,
    /// vCPUs and memory, each part `None` when the middleware does not report it.
    async fn capacity(&self) -> Result<Capacity>;

    /// Creates `count` VMs from `spec` (see the contract); returns the ids of all
    /// `count` VMs by index once the middleware accepted them, before they run.
    ///
    /// # Errors
    /// `InvalidRequest` for a `count` above [`Capabilities::max_batch`] or an unknown
    /// offering (before any call); `QuotaExceeded` when the site has no room; a
    /// temporary error when the outcome is unknown. After an error some VMs of the
    /// call may exist (see the contract): retry with the same key or delete by key.
    async fn create_vms(&self, spec: &VmSpec, count: u32) -> Result<Vec<VmId>>;

    /// Lists the VMs passing `filter`, in one logical call.
    async fn list_vms(&self, filter: &VmFilter) -> Result<Vec<Vm>>;

    /// Deletes (terminates, expunges) one VM; a VM already gone is `Ok`.
    async fn delete_vm(&self, id: &VmId) -> Result<()>;

    /// Powers a stopped (powered-off, suspended) VM on again: the same VM with the
    /// same disk, addresses and id, in the state `Pending` then `Running`.
    ///
    /// # Contract
    /// - **Idempotent.** Starting a VM that is running or starting already is `Ok(())`;
    ///   a retried start never makes a second VM.
    /// - The call returns once the cloud accepted the start; callers poll
    ///   [`CloudProvider::list_vms`] to see it run.
    /// - A provider that implements it sets [`Capabilities::start_vm`].
    ///
    /// # Errors
    /// - `NotFound` when the VM is gone (terminated, expunged, never existed).
    /// - `Unsupported` naming the site from the default implementation, for providers
    ///   that cannot start a VM: replace the VM instead.
    /// - `InvalidRequest` when the cloud refuses to start it from its current state
    ///   (being deleted, in error); otherwise as the other calls.
    async fn start_vm(&self, id: &VmId) -> Result<()> {
        Err(crate::Error::unsupported(format!(
            "site {} cannot start a stopped VM through intercloud: start it with the \
             cloud's own tools, or let repair replace it",
            self.site()
        ))
        .with_site(self.site().clone())
        .with_resource(id.as_str()))
    }

    /// The guest network new VMs join, read from the cloud, with the addresses taken
    /// in it; `None` (the default) when the backend cannot place a VM at a chosen
    /// address. A backend that answers `Some` honours [`VmSpec::addresses`] and
    /// creates its VMs in this network.
    ///
    /// # Errors
    /// As the other calls; `Config` naming the site when the network cannot be
    /// chosen (no VPC tier, several candidates and none configured).
    async fn guest_network(&self) -> Result<Option<GuestNetwork>> {
        Ok(None)
    }
}

#[async_trait]
impl<T: CloudProvider + ?Sized> CloudProvider for Arc<T> {
    fn site(&self) -> &SiteId {
        (**self).site()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn offerings(&self) -> Result<Vec<Offering>> {
        (**self).offerings().await
    }
    async fn capacity(&self) -> Result<Capacity> {
        (**self).capacity().await
    }
    async fn create_vms(&self, spec: &VmSpec, count: u32) -> Result<Vec<VmId>> {
        (**self).create_vms(spec, count).await
    }
    async fn list_vms(&self, filter: &VmFilter) -> Result<Vec<Vm>> {
        (**self).list_vms(filter).await
    }
    async fn delete_vm(&self, id: &VmId) -> Result<()> {
        (**self).delete_vm(id).await
    }
    async fn start_vm(&self, id: &VmId) -> Result<()> {
        (**self).start_vm(id).await
    }
    async fn guest_network(&self) -> Result<Option<GuestNetwork>> {
        (**self).guest_network().await
    }
}

/// Conveniences over any [`CloudProvider`]; implemented for all of them.
#[async_trait]
pub trait CloudProviderExt: CloudProvider {
    /// The alive VMs of the create call with `key`, ordered by index.
    async fn find_by_key(&self, key: &IdempotencyKey) -> Result<Vec<Vm>> {
        let mut vms = self.list_vms(&VmFilter::key(key)).await?;
        vms.sort_by_key(|v| v.index());
        Ok(vms)
    }

    /// Deletes every alive VM of `cluster` at this site; returns how many it deleted.
    async fn delete_cluster(&self, cluster: &str) -> Result<usize> {
        let vms = self.list_vms(&VmFilter::cluster(cluster)).await?;
        for vm in &vms {
            self.delete_vm(&vm.id).await?;
        }
        Ok(vms.len())
    }
}

impl<T: CloudProvider + ?Sized> CloudProviderExt for T {}
