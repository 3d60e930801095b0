//! A test double for the wrapper tests: a provider that records when each call starts,
//! how many are in flight, takes a set time per call and fails as scripted.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use intercloud_core::{
    Capabilities, Capacity, CloudProvider, Error, ErrorKind, IdempotencyKey, Offering, Result,
    SiteId, Vm, VmFilter, VmId, VmSpec,
};
use tokio::time::Instant;

/// One recorded call.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) method: &'static str,
    /// A label: the VM id of a delete, the key of a create (`KEY (fresh)` for a
    /// [`VmSpec::fresh`] one), the cluster tag of a list.
    pub(crate) label: String,
    pub(crate) start: Instant,
}

/// A provider that sleeps `delay` in every call and fails as scripted.
#[derive(Debug)]
pub(crate) struct Probe {
    site: SiteId,
    caps: Capabilities,
    delay: Duration,
    script: Mutex<VecDeque<ErrorKind>>,
    always: Option<ErrorKind>,
    calls: Mutex<Vec<Call>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Probe {
    pub(crate) fn new(site: &str) -> Self {
        Self {
            site: SiteId::new(site),
            caps: Capabilities::default(),
            delay: Duration::ZERO,
            script: Mutex::new(VecDeque::new()),
            always: None,
            calls: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        }
    }

    /// Every call takes `delay` (on tokio's clock).
    pub(crate) fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Every call fails with `kind` (after any scripted errors).
    pub(crate) fn always_fail(mut self, kind: ErrorKind) -> Self {
        self.always = Some(kind);
        self
    }

    /// The next calls fail with these kinds, in order.
    pub(crate) fn script(self, kinds: &[ErrorKind]) -> Self {
        self.script.lock().unwrap().extend(kinds.iter().copied());
        self
    }

    pub(crate) fn idempotent_create(mut self, yes: bool) -> Self {
        self.caps.idempotent_create = yes;
        self
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub(crate) fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    pub(crate) fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    async fn call(&self, method: &'static str, label: String) -> Result<()> {
        self.calls.lock().unwrap().push(Call {
            method,
            label,
            start: Instant::now(),
        });
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let _guard = InFlight(&self.in_flight);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let scripted = self.script.lock().unwrap().pop_front();
        match scripted.or(self.always) {
            Some(kind) => Err(Error::new(kind, format!("{method} failed (scripted)"))
                .with_site(self.site.clone())),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl CloudProvider for Probe {
    fn site(&self) -> &SiteId {
        &self.site
    }
    fn capabilities(&self) -> Capabilities {
        self.caps
    }
    async fn offerings(&self) -> Result<Vec<Offering>> {
        self.call("offerings", String::new()).await?;
        Ok(Vec::new())
    }
    async fn capacity(&self) -> Result<Capacity> {
        self.call("capacity", String::new()).await?;
        Ok(Capacity::default())
    }
    async fn create_vms(&self, spec: &VmSpec, count: u32) -> Result<Vec<VmId>> {
        let label = if spec.fresh {
            format!("{} (fresh)", spec.key)
        } else {
            spec.key.to_string()
        };
        self.call("create_vms", label).await?;
        Ok((0..count).map(|i| VmId::new(spec.key.vm_name(i))).collect())
    }
    async fn list_vms(&self, filter: &VmFilter) -> Result<Vec<Vm>> {
        let label = filter
            .tags
            .get(intercloud_core::TAG_CLUSTER)
            .cloned()
            .unwrap_or_default();
        self.call("list_vms", label).await?;
        Ok(Vec::new())
    }
    async fn delete_vm(&self, id: &VmId) -> Result<()> {
        self.call("delete_vm", id.to_string()).await
    }
    async fn start_vm(&self, id: &VmId) -> Result<()> {
        self.call("start_vm", id.to_string()).await
    }
}

/// A spec with the given key.
pub(crate) fn spec(key: &str) -> VmSpec {
    VmSpec::new(
        "c1",
        "worker",
        IdempotencyKey::new(key).unwrap(),
        "S",
        "Small",
    )
}

/// Asserts that over every window between two call starts, at most
/// `rate × window + burst` calls started.
pub(crate) fn assert_rate_respected(starts: &[Instant], rate: f64, burst: u32) {
    let mut s = starts.to_vec();
    s.sort();
    for i in 0..s.len() {
        for j in i..s.len() {
            let n = (j - i + 1) as f64;
            let window = (s[j] - s[i]).as_secs_f64();
            let allowed = rate * window + f64::from(burst);
            assert!(
                n <= allowed + 1e-6,
                "{n} calls started within {window:.6} s, allowed {allowed:.6}"
            );
        }
    }
}
