//! The conformance suite on the in-memory provider.

use std::time::Duration;

use intercloud_core::testkit::{self, Fixture};
use intercloud_core::{CloudProvider, MemoryProvider};

#[tokio::test]
async fn memory_provider_passes_the_conformance_suite() {
    let p = MemoryProvider::builder("mem")
        .offering("Small", 1, 1024)
        .boot_time(Duration::from_millis(30), Duration::from_millis(20))
        .build();
    testkit::run_all(&p, &Fixture::new("Small")).await;
}

#[tokio::test]
async fn memory_provider_one_at_a_time_passes_too() {
    let p = MemoryProvider::builder("mem1").batch(false, 1).build();
    // A provider without batch create still takes count = 1 calls.
    let fx = Fixture::new("any");
    testkit::delete_is_idempotent(&p, &fx).await;
    testkit::state_progresses_to_running(&p, &fx).await;
    assert!(!p.capabilities().batch_create);
}

#[tokio::test]
async fn memory_provider_reports_capacity_exceeded() {
    let p = MemoryProvider::builder("small").capacity(3).build();
    testkit::capacity_exceeded(&p, &Fixture::new("any"), 3).await;
}

/// Stops a memory VM as a failing host or an operator would.
struct ForceStop<'a>(&'a MemoryProvider);

#[async_trait::async_trait]
impl testkit::StopVm for ForceStop<'_> {
    async fn stop(&self, id: &intercloud_core::VmId) {
        self.0.force_state(id, intercloud_core::VmState::Stopped);
    }
}

#[tokio::test]
async fn memory_provider_starts_a_stopped_vm_with_the_same_id() {
    let p = MemoryProvider::builder("mem")
        .boot_time(Duration::from_millis(30), Duration::ZERO)
        .build();
    testkit::stopped_vm_starts_again(&p, &Fixture::new("any"), Some(&ForceStop(&p))).await;
    assert_eq!(p.calls(intercloud_core::Method::Start), 5);
}

#[tokio::test]
async fn a_provider_that_cannot_start_says_unsupported() {
    let p = MemoryProvider::builder("nostart").start_vm(false).build();
    assert!(!p.capabilities().start_vm);
    testkit::stopped_vm_starts_again(&p, &Fixture::new("any"), None).await;
}
