//! [`Timeout`]: a deadline on every call.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;

use super::method_name;
use crate::model::{
    Capabilities, Capacity, GuestNetwork, Offering, SiteId, Vm, VmFilter, VmId, VmSpec,
};
use crate::provider::CloudProvider;
use crate::{Error, ErrorKind, Method, Result};

/// How long one call may take. Plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutPolicy {
    /// Deadline of `offerings`, `capacity`, `list_vms` and `delete_vm`.
    pub call: Duration,
    /// Deadline of `create_vms` (middlewares that create synchronously take longer).
    pub create: Duration,
}

impl Default for TimeoutPolicy {
    /// 30 s per call, 120 s per create.
    fn default() -> Self {
        Self {
            call: Duration::from_secs(30),
            create: Duration::from_secs(120),
        }
    }
}

impl TimeoutPolicy {
    /// The same deadline for every method.
    pub fn uniform(deadline: Duration) -> Self {
        Self {
            call: deadline,
            create: deadline,
        }
    }
}

/// Gives every call a deadline on tokio's clock.
///
/// A call that misses it is dropped (cancelled) and reported as
/// [`ErrorKind::Timeout`] — temporary, since whether it took effect is unknown — naming
/// the site and the method; for `create_vms` the resource is the idempotency key, for
/// `delete_vm` the VM id. `site()` and `capabilities()` are never timed.
#[derive(Debug)]
pub struct Timeout<P> {
    inner: P,
    policy: TimeoutPolicy,
}

impl<P: CloudProvider> Timeout<P> {
    /// Wraps `inner` with `policy`.
    pub fn new(inner: P, policy: TimeoutPolicy) -> Self {
        Self { inner, policy }
    }

    /// The policy in force.
    pub fn policy(&self) -> &TimeoutPolicy {
        &self.policy
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Unwraps the provider.
    pub fn into_inner(self) -> P {
        self.inner
    }

    async fn within<T>(
        &self,
        method: Method,
        resource: Option<&str>,
        call: impl Future<Output = Result<T>> + Send,
    ) -> Result<T> {
        let deadline = if method == Method::Create {
            self.policy.create
        } else {
            self.policy.call
        };
        match tokio::time::timeout(deadline, call).await {
            Ok(result) => result,
            Err(_elapsed) => {
                let mut err = Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "{} did not answer within {:.1} s; whether it took effect is unknown",
                        method_name(method),
                        deadline.as_secs_f64()
                    ),
                )
                .with_site(self.inner.site().clone());
                if let Some(resource) = resource {
                    err = err.with_resource(resource.to_owned());
                }
                Err(err)
            }
        }
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<P: CloudProvider> CloudProvider for Timeout<P> {
    fn site(&self) -> &SiteId {
        self.inner.site()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn offerings(&self) -> Result<Vec<Offering>> {
        self.within(Method::Offerings, None, self.inner.offerings())
            .await
    }

    async fn capacity(&self) -> Result<Capacity> {
        self.within(Method::Capacity, None, self.inner.capacity())
            .await
    }

    async fn create_vms(&self, spec: &VmSpec, count: u32) -> Result<Vec<VmId>> {
        self.within(
            Method::Create,
            Some(spec.key.as_str()),
            self.inner.create_vms(spec, count),
        )
        .await
    }

    async fn list_vms(&self, filter: &VmFilter) -> Result<Vec<Vm>> {
        self.within(Method::List, None, self.inner.list_vms(filter))
            .await
    }

    async fn delete_vm(&self, id: &VmId) -> Result<()> {
        self.within(Method::Delete, Some(id.as_str()), self.inner.delete_vm(id))
            .await
    }

    async fn start_vm(&self, id: &VmId) -> Result<()> {
        self.within(Method::Start, Some(id.as_str()), self.inner.start_vm(id))
            .await
    }
    async fn guest_network(&self) -> Result<Option<GuestNetwork>> {
        self.within(Method::List, None, self.inner.guest_network())
            .await
    }
}
