//! The timeout wrapper under tokio's virtual time.

mod wrap_support;

use std::sync::Arc;
use std::time::Duration;

use intercloud_core::wrap::{Timeout, TimeoutPolicy};
use intercloud_core::{CloudProvider, ErrorKind, MemoryProvider, VmFilter, VmId};
use tokio::time::Instant;
use wrap_support::{spec, Probe};

fn policy() -> TimeoutPolicy {
    TimeoutPolicy {
        call: Duration::from_secs(2),
        create: Duration::from_secs(5),
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_call_times_out_naming_site_and_method() {
    let probe = Arc::new(Probe::new("hokkaido").delay(Duration::from_secs(3)));
    let timed = Timeout::new(probe.clone(), policy());
    let t0 = Instant::now();
    let err = timed.list_vms(&VmFilter::default()).await.unwrap_err();
    assert_eq!(t0.elapsed(), Duration::from_secs(2));
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.is_temporary());
    assert_eq!(err.site().map(|s| s.as_str()), Some("hokkaido"));
    assert_eq!(err.resource(), None);
    let text = err.to_string();
    assert!(
        text.starts_with("site hokkaido: list_vms did not answer within 2.0 s"),
        "{text}"
    );

    for (method, result) in [
        ("offerings", timed.offerings().await.map(drop)),
        ("capacity", timed.capacity().await.map(drop)),
    ] {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.message().starts_with(method), "{err}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_create_times_out_with_its_key_as_resource() {
    let probe = Arc::new(Probe::new("nii").delay(Duration::from_secs(4)));
    let timed = Timeout::new(probe.clone(), policy());
    // 4 s is within the create deadline (5 s) though beyond the call deadline (2 s).
    assert_eq!(
        timed
            .create_vms(&spec("fast-enough"), 2)
            .await
            .unwrap()
            .len(),
        2
    );

    let slow = Arc::new(Probe::new("nii").delay(Duration::from_secs(6)));
    let timed = Timeout::new(slow, policy());
    let t0 = Instant::now();
    let err = timed.create_vms(&spec("key-42"), 2).await.unwrap_err();
    assert_eq!(t0.elapsed(), Duration::from_secs(5));
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.site().map(|s| s.as_str()), Some("nii"));
    assert_eq!(err.resource(), Some("key-42"));
    assert!(err.message().contains("create_vms"), "{err}");
    assert!(err.message().contains("unknown"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_slow_delete_names_the_vm() {
    let probe = Arc::new(Probe::new("s").delay(Duration::from_secs(10)));
    let timed = Timeout::new(probe, TimeoutPolicy::uniform(Duration::from_millis(300)));
    let err = timed.delete_vm(&VmId::new("i-0abc")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.resource(), Some("i-0abc"));
}

#[tokio::test(start_paused = true)]
async fn calls_in_time_and_their_errors_pass_through() {
    let probe = Arc::new(
        Probe::new("s")
            .delay(Duration::from_millis(1999))
            .script(&[ErrorKind::NotFound]),
    );
    let timed = Timeout::new(probe.clone(), policy());
    let err = timed.delete_vm(&VmId::new("1")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    timed.delete_vm(&VmId::new("1")).await.unwrap();
    assert_eq!(probe.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn works_over_arc_dyn_memory_provider() {
    let mem: Arc<dyn CloudProvider> = Arc::new(MemoryProvider::new("mem"));
    let timed: Arc<dyn CloudProvider> = Arc::new(Timeout::new(mem, TimeoutPolicy::default()));
    assert_eq!(timed.site().as_str(), "mem");
    assert!(timed.capabilities().idempotent_create);
    let ids = timed.create_vms(&spec("t-1"), 3).await.unwrap();
    assert_eq!(timed.list_vms(&VmFilter::default()).await.unwrap().len(), 3);
    timed.delete_vm(&ids[0]).await.unwrap();
    assert_eq!(timed.capacity().await.unwrap().instances.used, Some(2));
    assert!(timed.offerings().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_slow_start_names_the_vm() {
    let probe = Arc::new(Probe::new("s").delay(Duration::from_secs(10)));
    let timed = Timeout::new(probe, TimeoutPolicy::uniform(Duration::from_millis(300)));
    let err = timed.start_vm(&VmId::new("i-0abc")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.resource(), Some("i-0abc"));
    assert!(err.to_string().contains("start_vm"), "{err}");
}
