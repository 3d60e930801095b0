//! The conformance kit (feature `testkit`): scenarios every [`CloudProvider`] passes.
//!
//! Each scenario is a `pub async fn` over `&dyn CloudProvider` that panics with a
//! message naming the violated contract. Core runs them on [`crate::MemoryProvider`]
//! in every `cargo test`; each backend runs them against the simulator, and the EC2
//! backend against moto. Every scenario uses fresh random cluster names and deletes
//! what it created, so it can run against a long-lived server.
//!
//! ```
//! use intercloud_core::testkit::{self, Fixture};
//! use intercloud_core::MemoryProvider;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // A backend's test passes its own provider (against the simulator, moto, a cloud).
//! let provider = MemoryProvider::builder("mem").offering("Small Instance", 1, 1024).build();
//! testkit::run_all(&provider, &Fixture::new("Small Instance")).await;
//! # }
//! ```

mod addresses;
mod start;

use std::collections::BTreeSet;
use std::time::Duration;

use crate::model::{IdempotencyKey, ImageRef, Tags, Vm, VmFilter, VmId, VmSpec, VmState, TAG_ROLE};
use crate::provider::CloudProvider;
use crate::ErrorKind;

pub use addresses::chosen_address_is_honoured;
pub use start::{stopped_vm_starts_again, StopVm};

/// What the scenarios need to know about the provider under test.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// An offering the site accepts.
    pub offering: String,
    /// The image to pass, where the middleware needs one.
    pub image: Option<ImageRef>,
    /// An id of the middleware's format that names no VM.
    pub missing_id: VmId,
    /// How often to poll while waiting for `Running`.
    pub poll_interval: Duration,
    /// How long a VM may take to reach `Running`.
    pub running_timeout: Duration,
}

impl Fixture {
    /// A fixture with `offering`, no image, missing id `"999999"`, polling every 50 ms
    /// for up to 30 s.
    pub fn new(offering: impl Into<String>) -> Self {
        Self {
            offering: offering.into(),
            image: None,
            missing_id: VmId::new("999999"),
            poll_interval: Duration::from_millis(50),
            running_timeout: Duration::from_secs(30),
        }
    }

    /// Sets the image.
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(ImageRef(image.into()));
        self
    }

    /// Sets the id that names no VM.
    pub fn missing_id(mut self, id: impl Into<String>) -> Self {
        self.missing_id = VmId::new(id);
        self
    }

    /// A spec for a fresh cluster and key, role `role`.
    pub fn spec(&self, cluster: &str, role: &str) -> VmSpec {
        let mut spec = VmSpec::new(
            cluster,
            role,
            IdempotencyKey::random(&format!("{cluster}-{role}")),
            "S",
            self.offering.clone(),
        );
        spec.image = self.image.clone();
        spec
    }
}

/// A fresh cluster name for one scenario.
pub fn fresh_cluster(scenario: &str) -> String {
    let key = IdempotencyKey::random(scenario);
    key.as_str().chars().rev().take(12).collect::<String>()
}

/// Deletes every VM of `cluster` at the site, panicking on failure.
pub async fn cleanup(p: &dyn CloudProvider, cluster: &str) {
    let vms = p
        .list_vms(&VmFilter::cluster(cluster))
        .await
        .unwrap_or_else(|e| panic!("cleanup: listing cluster {cluster} failed: {e}"));
    for vm in vms {
        p.delete_vm(&vm.id)
            .await
            .unwrap_or_else(|e| panic!("cleanup: deleting {} failed: {e}", vm.id));
    }
}

fn ids(vms: &[Vm]) -> BTreeSet<VmId> {
    vms.iter().map(|v| v.id.clone()).collect()
}

/// Runs every scenario that needs no special set-up: all but [`capacity_exceeded`]
/// and [`stopped_vm_starts_again`], which needs the stand-in to start VMs and, to
/// stop one, a [`StopVm`] (the simulator's suite and moto's run it).
pub async fn run_all(p: &dyn CloudProvider, fx: &Fixture) {
    create_list_delete(p, fx).await;
    retried_create_is_idempotent(p, fx).await;
    delete_is_idempotent(p, fx).await;
    filters_select_exactly(p, fx).await;
    state_progresses_to_running(p, fx).await;
    chosen_address_is_honoured(p, fx).await;
}

/// Create two VMs, find them by key and by cluster with the right names and tags,
/// delete them, and see them gone.
pub async fn create_list_delete(p: &dyn CloudProvider, fx: &Fixture) {
    let cluster = fresh_cluster("cld");
    let spec = fx.spec(&cluster, "worker");
    let created = p.create_vms(&spec, 2).await.expect("create_vms(2) failed");
    assert_eq!(created.len(), 2, "create_vms(2) must return 2 ids");
    assert_ne!(created[0], created[1], "ids must differ");

    let by_key = p
        .list_vms(&VmFilter::key(&spec.key))
        .await
        .expect("list by key failed");
    assert_eq!(
        ids(&by_key),
        created.iter().cloned().collect(),
        "list by key must return exactly the created VMs"
    );
    for vm in &by_key {
        let i = vm.index().expect("every VM carries its index tag");
        assert_eq!(
            vm.id, created[i as usize],
            "ids are returned in index order"
        );
        assert_eq!(vm.name, spec.key.vm_name(i), "VM i is named key-i");
        assert_eq!(vm.cluster(), Some(cluster.as_str()), "cluster tag");
        assert_eq!(vm.role(), Some("worker"), "role tag");
        assert_eq!(vm.key(), Some(spec.key.as_str()), "key tag");
        assert_eq!(&vm.site, p.site(), "site");
        assert!(vm.state.is_alive(), "a new VM is alive, got {}", vm.state);
    }
    let by_cluster = p
        .list_vms(&VmFilter::cluster(&cluster))
        .await
        .expect("list by cluster failed");
    assert_eq!(ids(&by_cluster), ids(&by_key), "list by cluster");

    for id in &created {
        p.delete_vm(id).await.expect("delete_vm failed");
    }
    let after = p
        .list_vms(&VmFilter::cluster(&cluster))
        .await
        .expect("list after delete failed");
    assert!(
        after.is_empty(),
        "deleted VMs must not be listed as alive: {after:?}"
    );
    let dead = p
        .list_vms(&VmFilter::cluster(&cluster).with_terminated())
        .await
        .expect("list with terminated failed");
    assert!(
        dead.iter().all(|v| v.state == VmState::Terminated),
        "with_terminated lists only terminated VMs here"
    );
}

/// A create retried with the same key makes no second VM; a larger count adds only
/// the missing indices.
pub async fn retried_create_is_idempotent(p: &dyn CloudProvider, fx: &Fixture) {
    let cluster = fresh_cluster("idem");
    let spec = fx.spec(&cluster, "worker");
    let first = p.create_vms(&spec, 2).await.expect("first create failed");
    let again = p.create_vms(&spec, 2).await.expect("retried create failed");
    assert_eq!(first, again, "a retried create must return the same VMs");
    let listed = p
        .list_vms(&VmFilter::key(&spec.key))
        .await
        .expect("list failed");
    assert_eq!(
        listed.len(),
        2,
        "a retried create must not make more VMs: {listed:?}"
    );
    cleanup(p, &cluster).await;
}

/// Deleting twice, and deleting an id that never existed, are both `Ok`.
pub async fn delete_is_idempotent(p: &dyn CloudProvider, fx: &Fixture) {
    let cluster = fresh_cluster("del");
    let spec = fx.spec(&cluster, "worker");
    let ids = p.create_vms(&spec, 1).await.expect("create failed");
    p.delete_vm(&ids[0]).await.expect("first delete failed");
    p.delete_vm(&ids[0])
        .await
        .expect("second delete of the same VM must be Ok");
    p.delete_vm(&fx.missing_id)
        .await
        .expect("deleting a VM that never existed must be Ok");
}

/// Filters on role, cluster and ids select exactly the matching VMs.
pub async fn filters_select_exactly(p: &dyn CloudProvider, fx: &Fixture) {
    let c1 = fresh_cluster("fa");
    let c2 = fresh_cluster("fb");
    let masters = p
        .create_vms(&fx.spec(&c1, "master"), 1)
        .await
        .expect("create master failed");
    let workers = p
        .create_vms(&fx.spec(&c1, "worker"), 2)
        .await
        .expect("create workers failed");
    let other = p
        .create_vms(&fx.spec(&c2, "worker"), 1)
        .await
        .expect("create other failed");

    let w = p
        .list_vms(&VmFilter::cluster(&c1).tag(TAG_ROLE, "worker"))
        .await
        .expect("list failed");
    assert_eq!(
        ids(&w),
        workers.iter().cloned().collect(),
        "cluster + role filter"
    );
    let all1 = p
        .list_vms(&VmFilter::cluster(&c1))
        .await
        .expect("list failed");
    assert_eq!(
        all1.len(),
        3,
        "cluster filter must not leak other clusters: {all1:?}"
    );
    let by_id = p
        .list_vms(&VmFilter::cluster(&c1).ids([masters[0].clone(), other[0].clone()]))
        .await
        .expect("list failed");
    assert_eq!(
        ids(&by_id),
        [masters[0].clone()].into_iter().collect(),
        "ids AND cluster"
    );
    let mut none = Tags::new();
    none.insert("intercloud-cluster".into(), fresh_cluster("nobody"));
    let empty = p
        .list_vms(&VmFilter {
            tags: none,
            ..VmFilter::default()
        })
        .await
        .expect("list failed");
    assert!(empty.is_empty(), "a filter matching nothing lists nothing");
    cleanup(p, &c1).await;
    cleanup(p, &c2).await;
}

/// A new VM is `Pending` or `Running`, and reaches `Running` by polling the list.
pub async fn state_progresses_to_running(p: &dyn CloudProvider, fx: &Fixture) {
    let cluster = fresh_cluster("state");
    let spec = fx.spec(&cluster, "worker");
    p.create_vms(&spec, 1).await.expect("create failed");
    let deadline = tokio::time::Instant::now() + fx.running_timeout;
    loop {
        let vms = p
            .list_vms(&VmFilter::key(&spec.key))
            .await
            .expect("list failed");
        assert_eq!(vms.len(), 1, "exactly one VM: {vms:?}");
        match &vms[0].state {
            VmState::Running => break,
            VmState::Pending => {}
            other => panic!("a booting VM must be Pending or Running, got {other}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "VM did not reach Running in {:?}",
            fx.running_timeout
        );
        tokio::time::sleep(fx.poll_interval).await;
    }
    cleanup(p, &cluster).await;
}

/// On a provider whose capacity is `capacity` alive VMs (and none in use), asking for
/// more fails with `QuotaExceeded`, and asking for what fits succeeds.
pub async fn capacity_exceeded(p: &dyn CloudProvider, fx: &Fixture, capacity: u32) {
    let cluster = fresh_cluster("cap");
    let err = p
        .create_vms(&fx.spec(&cluster, "worker"), capacity + 1)
        .await
        .expect_err("creating more than the capacity must fail");
    assert_eq!(
        err.kind(),
        ErrorKind::QuotaExceeded,
        "capacity errors are QuotaExceeded: {err}"
    );
    assert_eq!(err.site(), Some(p.site()), "errors name the site");
    cleanup(p, &cluster).await;
    let ok = p
        .create_vms(&fx.spec(&cluster, "worker"), capacity)
        .await
        .expect("what fits must succeed");
    assert_eq!(ok.len(), capacity as usize);
    cleanup(p, &cluster).await;
}
