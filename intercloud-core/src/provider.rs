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
/// # Contract
/// - **Idempotent create by key.** `create_vms(spec, n)` makes VMs with indices
///   `0..n`, each named `spec.key.vm_name(i)` and tagged with `spec.tags_for(i)`.
///   Calling it again with the same key never makes a second VM for an index that
///   exists: the backend passes the key as the middleware's idempotency token, or
///   lists by the key tag and creates only the missing indices. It returns the ids of
///   all `n` VMs, those made earlier included, ordered by index.
/// - **Batch polling.** `list_vms` is one logical listing (the backend may page) and
///   returns exactly the VMs that pass [`VmFilter::matches`]; callers poll progress of
///   a whole cluster with one call per site per tick.
/// - **Delete is idempotent.** Deleting a VM that is gone already returns `Ok(())`.
/// - **No secrets** appear in errors, logs or `Debug` output.
///
/// # Errors
/// Every method returns [`crate::Error`] with the site set; kinds as documented on
/// [`crate::ErrorKind`]. A create that may or may not have happened (timeout, dropped
/// connection) is reported as a temporary error: retrying it with the same key is safe.
#[async_trait]
pub trait CloudProvider: Send + Sync + fmt::Debug {
    /// The site this provider talks to.
    fn site(&self) -> &SiteId;

    /// What the backend can do; plain data, no network call.
    fn capabilities(&self) -> Capabilities;

    /// The offerings the site lists (service offerings, instance types, templates).
    async fn offerings(&self) -> Result<Vec<Offering>>;

    /// What the account may still create at the site.
    async fn capacity(&self) -> Result<Capacity>;

    /// Creates `count` VMs from `spec` (see the contract); returns their ids by index.
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
