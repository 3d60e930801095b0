//! The middleware-neutral engine behind one simulated site: state, seeded randomness,
//! capacity, boot times, latency, the token-bucket rate limit and fault injection.
//!
//! Time comes from tokio's clock, so `tokio::time::pause()` works in tests, and every
//! configured duration is multiplied by the federation's `time_scale`.

pub(crate) mod ipam;
mod records;

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use intercloud_core::model::Middleware;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

pub(crate) use records::{Job, JobResult, ObjRec, Phase, VmRec};
pub use records::{ResourceKind, ResourceRecord};

use crate::config::{Faults, SiteConfig};

/// Why an API call was refused before it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The token bucket is empty: answer with the middleware's throttling error.
    Throttled,
    /// Fault injection chose this call to fail with an internal error.
    Injected,
}

/// Capacity left for an offering is smaller than asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoCapacity {
    pub(crate) available: u32,
}

/// One simulated site.
pub(crate) struct Engine {
    pub(crate) cfg: SiteConfig,
    pub(crate) scale: f64,
    pub(crate) start: Instant,
    site_index: u8,
    state: Mutex<State>,
}

impl std::fmt::Debug for Engine {
    /// Site and scale only: the state holds user data and pre-shared keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("site", &self.cfg.id)
            .field("middleware", &self.cfg.middleware)
            .field("scale", &self.scale)
            .finish_non_exhaustive()
    }
}

/// Everything mutable about a site (no `Debug`: it holds user data and pre-shared keys).
#[allow(missing_debug_implementations, reason = "holds secrets; never printed")]
pub(crate) struct State {
    pub(crate) rng: StdRng,
    tokens: f64,
    refilled: Instant,
    pub(crate) faults: Faults,
    pub(crate) vms: Vec<VmRec>,
    pub(crate) vm_index: HashMap<String, usize>,
    pub(crate) objects: Vec<ObjRec>,
    pub(crate) obj_index: HashMap<String, usize>,
    pub(crate) jobs: Vec<Job>,
    pub(crate) job_index: HashMap<String, usize>,
    pub(crate) calls: BTreeMap<String, u64>,
    pub(crate) throttled: u64,
    /// EC2 ClientToken → (parameter fingerprint, reservation id, VM indexes).
    pub(crate) client_tokens: HashMap<String, (String, String, Vec<usize>)>,
    next_num: u64,
}

impl Engine {
    pub(crate) fn new(
        cfg: SiteConfig,
        seed: u64,
        scale: f64,
        site_index: u8,
        start: Instant,
    ) -> Self {
        let faults = cfg.faults.clone();
        let burst = cfg.burst.or(cfg.rate_limit).unwrap_or(0.0);
        let mix = seed ^ (u64::from(site_index) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Self {
            scale,
            start,
            site_index,
            state: Mutex::new(State {
                rng: StdRng::seed_from_u64(mix),
                tokens: burst,
                refilled: start,
                faults,
                vms: Vec::new(),
                vm_index: HashMap::new(),
                objects: Vec::new(),
                obj_index: HashMap::new(),
                jobs: Vec::new(),
                job_index: HashMap::new(),
                calls: BTreeMap::new(),
                throttled: 0,
                client_tokens: HashMap::new(),
                next_num: 0,
            }),
            cfg,
        }
    }

    /// Locks the state. A poisoned lock (a panic elsewhere) still yields the data.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The site's position in the federation (0-based), which numbers its networks.
    pub(crate) fn site_index(&self) -> u8 {
        self.site_index
    }

    pub(crate) fn now(&self) -> Instant {
        Instant::now()
    }

    /// Simulated duration → wall-clock duration (time scale and slow factor applied).
    fn scaled(&self, sim_secs: f64, slow: f64) -> Duration {
        Duration::from_secs_f64((sim_secs * self.scale * slow).max(0.0))
    }

    fn slow(st: &State) -> f64 {
        st.faults.slow_factor.unwrap_or(1.0).max(0.0)
    }

    /// Samples this request's latency: the configured mean ±25 %, scaled.
    pub(crate) fn sample_latency(&self) -> Duration {
        if self.cfg.latency_ms <= 0.0 {
            return Duration::ZERO;
        }
        let mut st = self.lock();
        let f: f64 = st.rng.random_range(0.75..1.25);
        let slow = Self::slow(&st);
        self.scaled(self.cfg.latency_ms / 1000.0 * f, slow)
    }

    /// A wall-clock delay of `sim_secs` simulated seconds (the caller holds the lock).
    pub(crate) fn delay(&self, st: &State, sim_secs: f64) -> Duration {
        self.scaled(sim_secs, Self::slow(st))
    }

    /// Whether the site is inside its outage window now.
    pub(crate) fn in_outage(&self) -> bool {
        let st = self.lock();
        let Some([from, to]) = st.faults.outage else {
            return false;
        };
        let sim_now = self.now().duration_since(self.start).as_secs_f64() / self.scale;
        (from..to).contains(&sim_now)
    }

    /// Counts a call to `method`, then applies the rate limit and error injection.
    pub(crate) fn admit(&self, method: &str) -> Result<(), Refusal> {
        let now = self.now();
        let mut st = self.lock();
        *st.calls.entry(method.to_owned()).or_insert(0) += 1;
        if let Some(rate) = self.cfg.rate_limit {
            let burst = self.cfg.burst.unwrap_or(rate).max(1.0);
            let elapsed = now.duration_since(st.refilled).as_secs_f64() / self.scale;
            st.tokens = (st.tokens + elapsed * rate).min(burst);
            st.refilled = now;
            if st.tokens < 1.0 {
                st.throttled += 1;
                return Err(Refusal::Throttled);
            }
            st.tokens -= 1.0;
        }
        let p = st.faults.error_rate;
        if p > 0.0 && st.rng.random_bool(p.min(1.0)) {
            return Err(Refusal::Injected);
        }
        Ok(())
    }

    /// A fresh random UUID (version 4 layout) from the seeded RNG.
    pub(crate) fn uuid(st: &mut State) -> String {
        let a: u32 = st.rng.random();
        let b: u16 = st.rng.random();
        let c: u16 = st.rng.random::<u16>() & 0x0fff;
        let d: u16 = (st.rng.random::<u16>() & 0x3fff) | 0x8000;
        let e: u64 = st.rng.random::<u64>() & 0xffff_ffff_ffff;
        format!("{a:08x}-{b:04x}-4{c:03x}-{d:04x}-{e:012x}")
    }

    /// A fresh EC2-style id: `prefix-` and 17 hex digits.
    pub(crate) fn ec2_id(st: &mut State, prefix: &str) -> String {
        let v: u64 = st.rng.random();
        let w: u8 = st.rng.random::<u8>() & 0xf;
        format!("{prefix}-{w:x}{v:016x}")
    }

    /// The next sequence number (OpenNebula ids, CloudStack internal ids).
    pub(crate) fn next_num(st: &mut State) -> u64 {
        st.next_num += 1;
        st.next_num
    }

    fn alive_on(st: &State, offering: usize, now: Instant) -> u32 {
        let n = st
            .vms
            .iter()
            .filter(|v| v.offering == offering && v.phase(now) != Phase::Deleted)
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// How many more VMs of `offering` fit now.
    pub(crate) fn available(&self, st: &State, offering: usize) -> u32 {
        let cap = self.cfg.offerings.get(offering).map_or(0, |o| o.capacity);
        cap.saturating_sub(Self::alive_on(st, offering, self.now()))
    }

    /// Creates `count` VMs of `offering`, all or nothing.
    ///
    /// Each VM gets a sampled boot time and a failure draw; its id follows the middleware's
    /// format (CloudStack UUID, OpenNebula number, EC2 `i-…`).
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site per middleware; each argument is a distinct VM attribute"
    )]
    pub(crate) fn create_vms(
        &self,
        st: &mut State,
        offering: usize,
        count: u32,
        name: &dyn Fn(u64) -> String,
        image: &str,
        tags: &[(String, String)],
        user_data: Option<&str>,
    ) -> Result<Vec<usize>, NoCapacity> {
        let available = self.available(st, offering);
        if count > available {
            return Err(NoCapacity { available });
        }
        let now = self.now();
        let slow = Self::slow(st);
        let mut out = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let num = Self::next_num(st);
            let id = match self.cfg.middleware {
                Middleware::CloudStack => Self::uuid(st),
                Middleware::OpenNebula => num.to_string(),
                Middleware::Ec2 | Middleware::Eucalyptus => Self::ec2_id(st, "i"),
            };
            let j = self.cfg.boot_jitter.clamp(0.0, 0.99);
            let f: f64 = if j > 0.0 {
                st.rng.random_range(1.0 - j..1.0 + j)
            } else {
                1.0
            };
            let ready = now + self.scaled(self.cfg.boot_s * f, slow);
            let p = st.faults.job_failure_rate;
            let fails = p > 0.0 && st.rng.random_bool(p.min(1.0));
            // EC2 instances that fail to launch go to `terminated` by themselves.
            let ec2 = matches!(
                self.cfg.middleware,
                Middleware::Ec2 | Middleware::Eucalyptus
            );
            let deleted = (fails && ec2).then_some(ready);
            let n = u32::try_from(num).unwrap_or(u32::MAX);
            let ip = Ipv4Addr::new(
                10,
                self.site_index,
                ((n >> 8) & 0xff) as u8,
                (n & 0xff) as u8,
            );
            let idx = st.vms.len();
            st.vm_index.insert(id.clone(), idx);
            st.vms.push(VmRec {
                id,
                num,
                name: name(num),
                offering,
                image: image.to_owned(),
                created: now,
                booted: now,
                ready,
                fails,
                deleted,
                tags: tags.to_vec(),
                ip,
                user_data: user_data.map(str::to_owned),
                extra: Vec::new(),
            });
            out.push(idx);
        }
        Ok(out)
    }

    /// Adds a VPN object and returns its index.
    pub(crate) fn add_object(
        &self,
        st: &mut State,
        kind: ResourceKind,
        id: String,
        name: String,
        attrs: BTreeMap<String, String>,
    ) -> usize {
        let idx = st.objects.len();
        st.obj_index.insert(id.clone(), idx);
        st.objects.push(ObjRec {
            kind,
            id,
            name,
            created: self.now(),
            deleted: None,
            attrs,
            tags: Vec::new(),
        });
        idx
    }

    /// Powers VM `i` on again: the same VM boots for the site's boot time (no failure
    /// draw: it ran before), keeping its id, disk and address.
    pub(crate) fn power_on(&self, st: &mut State, i: usize) {
        let now = self.now();
        let boot = self.scaled(self.cfg.boot_s, Self::slow(st));
        let v = &mut st.vms[i];
        v.extra.retain(|(k, _)| *k != "power");
        v.booted = now;
        v.ready = now + boot;
    }

    /// Registers a CloudStack async job finishing after `sim_secs`.
    pub(crate) fn add_job(
        &self,
        st: &mut State,
        cmd: &'static str,
        done: Instant,
        result: JobResult,
        instance: (&'static str, String),
    ) -> String {
        let id = Self::uuid(st);
        st.job_index.insert(id.clone(), st.jobs.len());
        st.jobs.push(Job {
            id: id.clone(),
            cmd,
            created: self.now(),
            done,
            result,
            instance_type: instance.0,
            instance_id: instance.1,
        });
        id
    }

    fn since_start(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.start)
    }

    /// The introspection view of every resource ever created here.
    pub(crate) fn records(&self) -> Vec<ResourceRecord> {
        let now = self.now();
        let st = self.lock();
        let mut out = Vec::with_capacity(st.vms.len() + st.objects.len());
        for v in &st.vms {
            out.push(ResourceRecord {
                site: self.cfg.id.clone(),
                kind: ResourceKind::Vm,
                id: v.id.clone(),
                name: v.name.clone(),
                tags: v.tags.iter().cloned().collect(),
                created_at: self.since_start(v.created),
                deleted_at: v.deleted.map(|d| self.since_start(d)),
                state: match v.phase(now) {
                    Phase::Booting | Phase::Running if v.power().is_some() => "stopped",
                    Phase::Booting => "pending",
                    Phase::Running => "running",
                    Phase::Failed => "failed",
                    Phase::Deleted => "deleted",
                },
                offering: self
                    .cfg
                    .offerings
                    .get(v.offering)
                    .map(|o| o.name.clone())
                    .unwrap_or_default(),
                user_data: v.user_data.clone(),
            });
        }
        for o in &st.objects {
            out.push(ResourceRecord {
                site: self.cfg.id.clone(),
                kind: o.kind,
                id: o.id.clone(),
                name: o.name.clone(),
                tags: o.tags.iter().cloned().collect(),
                created_at: self.since_start(o.created),
                deleted_at: o.deleted.map(|d| self.since_start(d)),
                state: if o.alive(now) { "available" } else { "deleted" },
                offering: String::new(),
                user_data: None,
            });
        }
        out
    }

    /// Calls received per API method (including refused ones).
    pub(crate) fn calls(&self) -> BTreeMap<String, u64> {
        self.lock().calls.clone()
    }

    /// How many calls the rate limit refused.
    pub(crate) fn throttled(&self) -> u64 {
        self.lock().throttled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FederationConfig;

    fn engine(rate: Option<f64>) -> Engine {
        let mut cfg = FederationConfig::seed_default().sites.remove(0);
        cfg.rate_limit = rate;
        cfg.offerings[0].capacity = 3;
        Engine::new(cfg, 7, 1.0, 1, Instant::now())
    }

    #[tokio::test(start_paused = true)]
    async fn token_bucket_throttles_then_refills() {
        let e = engine(Some(5.0));
        for _ in 0..5 {
            assert_eq!(e.admit("listZones"), Ok(()));
        }
        assert_eq!(e.admit("listZones"), Err(Refusal::Throttled));
        tokio::time::advance(Duration::from_millis(400)).await;
        assert_eq!(e.admit("listZones"), Ok(()));
        assert_eq!(e.admit("listZones"), Ok(()));
        assert_eq!(e.admit("listZones"), Err(Refusal::Throttled));
        assert_eq!(e.calls()["listZones"], 9);
        assert_eq!(e.throttled(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn capacity_is_all_or_nothing_and_boot_takes_time() {
        let e = engine(None);
        {
            let mut st = e.lock();
            let tags = vec![("k".to_owned(), "v".to_owned())];
            assert_eq!(
                e.create_vms(
                    &mut st,
                    0,
                    4,
                    &|n| format!("vm{n}"),
                    "centos-7",
                    &tags,
                    None
                ),
                Err(NoCapacity { available: 3 })
            );
            let idx = e
                .create_vms(
                    &mut st,
                    0,
                    3,
                    &|n| format!("vm{n}"),
                    "centos-7",
                    &tags,
                    None,
                )
                .unwrap();
            assert_eq!(idx.len(), 3);
            assert_eq!(e.available(&st, 0), 0);
            let now = e.now();
            assert_eq!(st.vms[0].phase(now), Phase::Booting);
            assert!(st.vms[0].ready > now + Duration::from_secs(3));
            st.vms[0].deleted = Some(now);
            assert_eq!(e.available(&st, 0), 1);
        }
        tokio::time::advance(Duration::from_secs(7)).await;
        let recs = e.records();
        assert_eq!(recs.iter().filter(|r| r.state == "running").count(), 2);
        assert_eq!(recs.iter().filter(|r| r.state == "deleted").count(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn faults_are_seeded_and_reproducible() {
        let draw = || {
            let e = engine(None);
            e.lock().faults.error_rate = 0.5;
            (0..64).map(|_| e.admit("x").is_ok()).collect::<Vec<_>>()
        };
        let a = draw();
        assert_eq!(a, draw());
        assert!(a.iter().any(|x| *x) && a.iter().any(|x| !*x));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_factor_stretches_latency_and_boot() {
        let e = engine(None);
        let fast: Duration = (0..50).map(|_| e.sample_latency()).sum();
        e.lock().faults.slow_factor = Some(5.0);
        let slow: Duration = (0..50).map(|_| e.sample_latency()).sum();
        assert!(slow > fast * 3, "{slow:?} vs {fast:?}");
        let mut st = e.lock();
        let idx = e
            .create_vms(&mut st, 0, 1, &|n| format!("vm{n}"), "centos-7", &[], None)
            .unwrap();
        let boot = st.vms[idx[0]].ready - st.vms[idx[0]].created;
        assert!(boot >= Duration::from_secs(20), "5 s ± 20 % × 5: {boot:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn outage_window_in_simulated_seconds() {
        let e = engine(None);
        e.lock().faults.outage = Some([10.0, 20.0]);
        assert!(!e.in_outage());
        tokio::time::advance(Duration::from_secs(15)).await;
        assert!(e.in_outage());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(!e.in_outage());
    }
}
