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
