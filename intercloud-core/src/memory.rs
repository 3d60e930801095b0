//! [`MemoryProvider`]: an in-memory cloud for tests, examples and benchmarks.
//!
//! It keeps the [`CloudProvider`] contract exactly (idempotent create by key, batch
//! listing, delete of a missing VM is `Ok`), has a capacity, a boot delay measured on
//! tokio's clock (so `tokio::time::pause()` drives it), and injectable failures:
//! queued errors per method, errors raised *after* a create took effect (the ambiguous
//! case retries must survive), a seeded random error rate, and a site outage.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::model::{
    Capabilities, Capacity, GuestNetwork, Limit, Offering, SiteId, UserDataFormat, Vm, VmFilter,
    VmId, VmSpec, VmState,
};
use crate::provider::CloudProvider;
use crate::{Error, ErrorKind, Result};

/// A provider method, for fault injection and call counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    /// `offerings`.
    Offerings,
    /// `capacity`.
    Capacity,
    /// `create_vms`.
    Create,
    /// `list_vms`.
    List,
    /// `delete_vm`.
    Delete,
    /// `start_vm`.
    Start,
}

/// When an injected fault strikes relative to the call's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTiming {
    /// The call fails and has no effect.
    Before,
    /// The call takes effect, then reports the error (a lost reply).
    After,
}

#[derive(Debug, Clone, Copy)]
struct Fault {
    method: Method,
    kind: ErrorKind,
    timing: FaultTiming,
}

#[derive(Debug)]
struct Record {
    vm: Vm,
    created: Instant,
    boot: Duration,
}

#[derive(Debug)]
struct State {
    vms: BTreeMap<u64, Record>,
    next_id: u64,
    faults: VecDeque<Fault>,
    error_rate: f64,
    outage: bool,
    rng: StdRng,
    calls: BTreeMap<Method, u64>,
    capacity: Option<u64>,
}

/// An in-memory [`CloudProvider`]. Build it with [`MemoryProvider::builder`].
#[derive(Debug)]
pub struct MemoryProvider {
    site: SiteId,
    offerings: Vec<Offering>,
    boot_time: Duration,
    boot_jitter: Duration,
    capabilities: Capabilities,
    network: Option<GuestNetwork>,
    state: Mutex<State>,
}

/// Builder of a [`MemoryProvider`].
#[derive(Debug)]
pub struct MemoryProviderBuilder {
    site: SiteId,
    offerings: Vec<Offering>,
    capacity: Option<u64>,
    boot_time: Duration,
    boot_jitter: Duration,
    seed: u64,
    capabilities: Capabilities,
    network: Option<GuestNetwork>,
}

impl MemoryProviderBuilder {
    /// Adds an offering; creates naming another offering fail with `InvalidRequest`
    /// (with no offerings at all, any offering is accepted).
    pub fn offering(mut self, name: &str, vcpus: u32, memory_mb: u64) -> Self {
        self.offerings.push(Offering {
            id: format!("off-{}", self.offerings.len() + 1),
            name: name.to_owned(),
            vcpus: Some(vcpus),
            memory_mb: Some(memory_mb),
        });
        self
    }

    /// Maximum alive VMs (default unlimited).
    pub fn capacity(mut self, instances: u64) -> Self {
        self.capacity = Some(instances);
        self
    }

    /// Time from create to `Running` (default zero), plus up to `jitter` more, drawn
    /// from the seeded RNG.
    pub fn boot_time(mut self, base: Duration, jitter: Duration) -> Self {
        self.boot_time = base;
        self.boot_jitter = jitter;
        self
    }

    /// Seed of the RNG behind error rates and boot jitter (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Whether one create call makes many VMs, and how many at most (default: yes, 1000).
    pub fn batch(mut self, batch_create: bool, max_batch: u32) -> Self {
        self.capabilities.batch_create = batch_create;
        self.capabilities.max_batch = max_batch.max(1);
        self
    }

    /// Whether the provider declares the idempotent-create contract (default true);
    /// false models a third-party provider that cannot find its creates by key.
    pub fn idempotent_create(mut self, yes: bool) -> Self {
        self.capabilities.idempotent_create = yes;
        self
    }

    /// Whether `start_vm` powers a stopped VM on (default true); false models a site
    /// that cannot start one: `start_vm` answers `Unsupported` and
    /// [`Capabilities::start_vm`] is false.
    pub fn start_vm(mut self, yes: bool) -> Self {
        self.capabilities.start_vm = yes;
        self
    }

    /// Puts new VMs on a guest network with `cidr` (id `net-1`): `guest_network`
    /// reports it with the addresses alive VMs hold, and creates honour
    /// [`VmSpec::addresses`], refusing one outside the CIDR (`InvalidRequest`) or in
    /// use (`AlreadyExists`, temporary: a VM being deleted frees it). Without it, VMs
    /// get made-up addresses and `guest_network` is `None`.
    pub fn guest_network(mut self, cidr: &str) -> Self {
        self.network = Some(GuestNetwork {
            id: "net-1".into(),
            cidr: cidr.to_owned(),
            vpc: Some("vpc-1".into()),
            in_use: Vec::new(),
        });
        self
    }

    /// Builds the provider.
    pub fn build(self) -> MemoryProvider {
        MemoryProvider {
            site: self.site,
            offerings: self.offerings,
            boot_time: self.boot_time,
            boot_jitter: self.boot_jitter,
            capabilities: self.capabilities,
            network: self.network,
            state: Mutex::new(State {
                vms: BTreeMap::new(),
                next_id: 1,
                faults: VecDeque::new(),
                error_rate: 0.0,
                outage: false,
                rng: StdRng::seed_from_u64(self.seed),
                calls: BTreeMap::new(),
                capacity: self.capacity,
            }),
        }
    }
}

impl MemoryProvider {
    /// A builder for a provider serving `site`.
    pub fn builder(site: impl Into<SiteId>) -> MemoryProviderBuilder {
        MemoryProviderBuilder {
            site: site.into(),
            offerings: Vec::new(),
            capacity: None,
            boot_time: Duration::ZERO,
            boot_jitter: Duration::ZERO,
            seed: 0,
            capabilities: Capabilities {
                batch_create: true,
                max_batch: 1000,
                idempotent_create: true,
                server_idempotency: true,
                server_tag_filter: true,
                native_vpn: false,
                user_data: UserDataFormat::CloudInit,
                max_user_data: 32 * 1024,
                start_vm: true,
            },
            network: None,
        }
    }

    /// A provider for `site` with no limits and instant boot.
    pub fn new(site: impl Into<SiteId>) -> Self {
        Self::builder(site).build()
    }

    /// Whether the addresses `spec` asks for its `missing` indices can be given: an
    /// address in use is a temporary `AlreadyExists` (a VM being deleted frees it),
    /// one outside the network `InvalidRequest`.
    fn check_addresses(
        &self,
        st: &State,
        spec: &VmSpec,
        missing: &[u32],
        now: Instant,
    ) -> Result<()> {
        if spec.addresses.is_empty() {
            return Ok(());
        }
        let invalid = |why: String| self.err(ErrorKind::InvalidRequest, &why);
        let Some(net) = &self.network else {
            return Err(invalid(
                "this site cannot place VMs at chosen addresses".into(),
            ));
        };
        let network = crate::deploy::ipam::parse_cidr(&net.cidr)?;
        for i in missing {
            let Some(a) = spec.addresses.get(*i as usize) else {
                return Err(invalid(format!("no address for VM {i}")));
            };
            let ip: std::net::Ipv4Addr = a
                .parse()
                .map_err(|_| invalid(format!("{a:?} is not IPv4")))?;
            if !network.contains(&ip) {
                return Err(invalid(format!(
                    "address {a} is not in network {}",
                    net.cidr
                )));
            }
            let taken = st.vms.values().any(|r| {
                let vm = current(r, now);
                vm.state.is_alive() && vm.private_ip.as_deref() == Some(a.as_str())
            });
            if taken {
                return Err(self
                    .err(
                        ErrorKind::AlreadyExists,
                        &format!("address {a} is already in use"),
                    )
                    .with_temporary(true));
            }
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in a way
        // that matters for a test double; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the next call of `method` fail with `kind`, before or after its effect.
    /// Queued faults strike in order.
    pub fn fail_next(&self, method: Method, kind: ErrorKind, timing: FaultTiming) {
        self.lock().faults.push_back(Fault {
            method,
            kind,
            timing,
        });
    }

    /// Makes every call fail with `Unavailable` (temporary) with probability `rate`,
    /// before its effect, drawn from the seeded RNG.
    pub fn set_error_rate(&self, rate: f64) {
        self.lock().error_rate = rate.clamp(0.0, 1.0);
    }

    /// Starts or ends a site outage: every call fails with `Unavailable`.
    pub fn set_outage(&self, down: bool) {
        self.lock().outage = down;
    }

    /// Changes the capacity (alive VMs); `None` is unlimited.
    pub fn set_capacity(&self, instances: Option<u64>) {
        self.lock().capacity = instances;
    }

    /// How many calls of `method` were made, failed ones included.
    pub fn calls(&self, method: Method) -> u64 {
        self.lock().calls.get(&method).copied().unwrap_or(0)
    }

    /// Every VM ever created here, terminated ones included, with current states.
    pub fn all_vms(&self) -> Vec<Vm> {
        let now = Instant::now();
        let st = self.lock();
        st.vms.values().map(|r| current(r, now)).collect()
    }

    /// Alive VMs whose tags include `key = value`: the orphan check.
    pub fn alive_with_tag(&self, key: &str, value: &str) -> Vec<Vm> {
        self.all_vms()
            .into_iter()
            .filter(|v| v.state.is_alive() && v.tags.get(key).map(String::as_str) == Some(value))
            .collect()
    }

    /// Sets a VM's state from outside, as a failing host or an operator would
    /// (`Failed`, `Stopped`, `Terminated`). Unknown ids are ignored.
    pub fn force_state(&self, id: &VmId, state: VmState) {
        let mut st = self.lock();
        if let Some(rec) = id.0.parse().ok().and_then(|n: u64| st.vms.get_mut(&n)) {
            rec.vm.state = state;
        }
    }

    /// Counts the call and decides whether an injected fault strikes it.
    fn enter(&self, method: Method) -> Result<Option<Fault>> {
        let mut st = self.lock();
        *st.calls.entry(method).or_default() += 1;
        if st.outage {
            return Err(self.err(ErrorKind::Unavailable, "site outage (injected)"));
        }
        if let Some(pos) = st.faults.iter().position(|f| f.method == method) {
            let fault = st.faults.remove(pos).expect("position is in range");
            return match fault.timing {
                FaultTiming::Before => Err(self.err(fault.kind, "injected fault")),
                FaultTiming::After => Ok(Some(fault)),
            };
        }
        if st.error_rate > 0.0 {
            let draw: f64 = st.rng.random();
            if draw < st.error_rate {
                return Err(self.err(ErrorKind::Unavailable, "injected random fault"));
            }
        }
        Ok(None)
    }

    fn err(&self, kind: ErrorKind, msg: &str) -> Error {
        Error::new(kind, msg).with_site(&self.site)
    }

    fn after(&self, fault: Option<Fault>) -> Result<()> {
        match fault {
            Some(f) => Err(self.err(f.kind, "injected fault after the call took effect")),
            None => Ok(()),
        }
    }
}

/// The record's VM with its state advanced by the clock.
fn current(rec: &Record, now: Instant) -> Vm {
    let mut vm = rec.vm.clone();
    if vm.state == VmState::Pending && now.duration_since(rec.created) >= rec.boot {
        vm.state = VmState::Running;
    }
    vm
}

#[async_trait]
impl CloudProvider for MemoryProvider {
    fn site(&self) -> &SiteId {
        &self.site
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    async fn offerings(&self) -> Result<Vec<Offering>> {
        let fault = self.enter(Method::Offerings)?;
        self.after(fault)?;
        Ok(self.offerings.clone())
    }

    async fn capacity(&self) -> Result<Capacity> {
        let fault = self.enter(Method::Capacity)?;
        let now = Instant::now();
        let st = self.lock();
        let used = st
            .vms
            .values()
            .filter(|r| current(r, now).state.is_alive())
            .count() as u64;
        let cap = Capacity {
            instances: Limit::new(used, st.capacity),
            ..Capacity::default()
        };
        drop(st);
        self.after(fault)?;
        Ok(cap)
    }

    async fn create_vms(&self, spec: &VmSpec, count: u32) -> Result<Vec<VmId>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        if count > self.capabilities.max_batch {
            return Err(self
                .err(ErrorKind::InvalidRequest, "count exceeds the batch limit")
                .with_resource(spec.key.as_str()));
        }
        if !self.offerings.is_empty()
            && !self
                .offerings
                .iter()
                .any(|o| o.name == spec.offering || o.id == spec.offering)
        {
            return Err(self
                .err(
                    ErrorKind::InvalidRequest,
                    &format!("unknown offering {:?}", spec.offering),
                )
                .with_resource(spec.key.as_str()));
        }
        let fault = self.enter(Method::Create)?;
        let now = Instant::now();
        let mut st = self.lock();
        let mut by_index: BTreeMap<u32, VmId> = BTreeMap::new();
        let mut alive = 0u64;
        for (id, rec) in &st.vms {
            let vm = current(rec, now);
            if !vm.state.is_alive() {
                continue;
            }
            alive += 1;
            if vm.key() == Some(spec.key.as_str()) {
                if let Some(i) = vm.index() {
                    by_index.insert(i, VmId::new(id.to_string()));
                }
            }
        }
        let missing: Vec<u32> = (0..count).filter(|i| !by_index.contains_key(i)).collect();
        if let Err(e) = self.check_addresses(&st, spec, &missing, now) {
            drop(st);
            return Err(e.with_resource(spec.key.as_str()));
        }
        if let Some(cap) = st.capacity {
            if alive + missing.len() as u64 > cap {
                drop(st);
                return Err(self
                    .err(
                        ErrorKind::QuotaExceeded,
                        &format!(
                            "capacity exceeded: {} alive of {cap}, {} more requested",
                            alive,
                            missing.len()
                        ),
                    )
                    .with_resource(spec.key.as_str()));
            }
        }
        for i in missing {
            let n = st.next_id;
            st.next_id += 1;
            let jitter = if self.boot_jitter.is_zero() {
                Duration::ZERO
            } else {
                self.boot_jitter.mul_f64(st.rng.random::<f64>())
            };
            let vm = Vm {
                id: VmId::new(n.to_string()),
                site: self.site.clone(),
                name: spec.key.vm_name(i),
                state: VmState::Pending,
                tags: spec.tags_for(i),
                offering: Some(spec.offering.clone()),
                private_ip: Some(spec.addresses.get(i as usize).cloned().unwrap_or_else(|| {
                    format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255)
                })),
                public_ip: None,
            };
            st.vms.insert(
                n,
                Record {
                    vm,
                    created: now,
                    boot: self.boot_time + jitter,
                },
            );
            by_index.insert(i, VmId::new(n.to_string()));
        }
        drop(st);
        self.after(fault)?;
        Ok((0..count).filter_map(|i| by_index.remove(&i)).collect())
    }

    async fn list_vms(&self, filter: &VmFilter) -> Result<Vec<Vm>> {
        let fault = self.enter(Method::List)?;
        let now = Instant::now();
        let vms = {
            let st = self.lock();
            st.vms
                .values()
                .map(|r| current(r, now))
                .filter(|vm| filter.matches(vm))
                .collect()
        };
        self.after(fault)?;
        Ok(vms)
    }

    async fn guest_network(&self) -> Result<Option<GuestNetwork>> {
        let Some(mut net) = self.network.clone() else {
            return Ok(None);
        };
        let fault = self.enter(Method::List)?;
        let now = Instant::now();
        net.in_use = self
            .lock()
            .vms
            .values()
            .map(|r| current(r, now))
            .filter(|vm| vm.state.is_alive())
            .filter_map(|vm| vm.private_ip)
            .collect();
        self.after(fault)?;
        Ok(Some(net))
    }

    /// A `Stopped` VM becomes `Pending`, then `Running` after the site's boot time; a
    /// `Pending` or `Running` one is left alone; a `Failed` one is refused
    /// (`InvalidRequest`); a terminated or unknown one is `NotFound`.
    async fn start_vm(&self, id: &VmId) -> Result<()> {
        if !self.capabilities.start_vm {
            return Err(self
                .err(
                    ErrorKind::Unsupported,
                    "this site cannot start a stopped VM (configured without start_vm)",
                )
                .with_resource(id.as_str()));
        }
        let fault = self.enter(Method::Start)?;
        let now = Instant::now();
        {
            let mut st = self.lock();
            let boot = self.boot_time;
            let rec = id.0.parse().ok().and_then(|n: u64| st.vms.get_mut(&n));
            let Some(rec) = rec.filter(|r| r.vm.state.is_alive()) else {
                return Err(self
                    .err(ErrorKind::NotFound, "no such VM (deleted or never created)")
                    .with_resource(id.as_str()));
            };
            match current(rec, now).state {
                VmState::Stopped => {
                    rec.vm.state = VmState::Pending;
                    rec.created = now;
                    rec.boot = boot;
                }
                VmState::Failed => {
                    return Err(self
                        .err(
                            ErrorKind::InvalidRequest,
                            "the VM failed and cannot be started; delete and recreate it",
                        )
                        .with_resource(id.as_str()));
                }
                _ => {}
            }
        }
        self.after(fault)
    }

    async fn delete_vm(&self, id: &VmId) -> Result<()> {
        let fault = self.enter(Method::Delete)?;
        {
            let mut st = self.lock();
            if let Some(rec) = id.0.parse().ok().and_then(|n: u64| st.vms.get_mut(&n)) {
                rec.vm.state = VmState::Terminated;
            }
        }
        self.after(fault)
    }
}
