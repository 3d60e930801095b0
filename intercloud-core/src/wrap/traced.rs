//! [`Traced`]: a tracing span around every call, and one event with its outcome.

use std::future::Future;

use async_trait::async_trait;
use tokio::time::Instant;
use tracing::Instrument;

use super::method_name;
use crate::model::{
    Capabilities, Capacity, GuestNetwork, Offering, SiteId, Vm, VmFilter, VmId, VmSpec,
};
use crate::provider::CloudProvider;
use crate::{Method, Result};

/// Runs every call inside a `provider_call` span (DEBUG level) with the fields `site`,
/// `method` and `resource` (the idempotency key of a create, the VM id of a delete,
/// empty otherwise), and ends it with one event: DEBUG `ok` or, on failure, `failed`
/// with `kind`, `temporary` and `error` — at DEBUG for a temporary error (a retry
/// usually follows), at WARN otherwise. Both carry `elapsed_ms` on tokio's clock.
///
/// Nothing else is logged: no filter, spec or user data, so no secret can leak through
/// it (error texts are secret-free by the [`CloudProvider`] contract).
///
/// Where to put it: outermost, `Traced(stack(..))`, gives one span per logical call
/// with the retry wrapper's `retrying` events inside it; directly around the provider
/// it traces every attempt.
#[derive(Debug)]
pub struct Traced<P> {
    inner: P,
}

impl<P: CloudProvider> Traced<P> {
    /// Wraps `inner`.
    pub fn new(inner: P) -> Self {
        Self { inner }
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Unwraps the provider.
    pub fn into_inner(self) -> P {
        self.inner
    }

    async fn traced<T>(
        &self,
        method: Method,
        resource: Option<&str>,
        call: impl Future<Output = Result<T>> + Send,
    ) -> Result<T> {
        let span = tracing::debug_span!(
            "provider_call",
            site = %self.inner.site(),
            method = method_name(method),
            resource = resource.unwrap_or(""),
        );
        async move {
            let start = Instant::now();
            let result = call.await;
            let elapsed_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
            match &result {
                Ok(_) => tracing::debug!(elapsed_ms, "ok"),
                Err(e) if e.is_temporary() => tracing::debug!(
                    elapsed_ms,
                    kind = %e.kind(),
                    temporary = true,
                    error = %e,
                    "failed"
                ),
                Err(e) => tracing::warn!(
                    elapsed_ms,
                    kind = %e.kind(),
                    temporary = false,
                    error = %e,
                    "failed"
                ),
            }
            result
        }
        .instrument(span)
        .await
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<P: CloudProvider> CloudProvider for Traced<P> {
    fn site(&self) -> &SiteId {
        self.inner.site()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn offerings(&self) -> Result<Vec<Offering>> {
        self.traced(Method::Offerings, None, self.inner.offerings())
            .await
    }

    async fn capacity(&self) -> Result<Capacity> {
        self.traced(Method::Capacity, None, self.inner.capacity())
            .await
    }

    async fn create_vms(&self, spec: &VmSpec, count: u32) -> Result<Vec<VmId>> {
        self.traced(
            Method::Create,
            Some(spec.key.as_str()),
            self.inner.create_vms(spec, count),
        )
        .await
    }

    async fn list_vms(&self, filter: &VmFilter) -> Result<Vec<Vm>> {
        self.traced(Method::List, None, self.inner.list_vms(filter))
            .await
    }

    async fn delete_vm(&self, id: &VmId) -> Result<()> {
        self.traced(Method::Delete, Some(id.as_str()), self.inner.delete_vm(id))
            .await
    }

    async fn start_vm(&self, id: &VmId) -> Result<()> {
        self.traced(Method::Start, Some(id.as_str()), self.inner.start_vm(id))
            .await
    }
    async fn guest_network(&self) -> Result<Option<GuestNetwork>> {
        self.traced(Method::List, None, self.inner.guest_network())
            .await
    }
}
