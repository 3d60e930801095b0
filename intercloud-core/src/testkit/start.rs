//! `start_vm`: a stopped VM starts again with the same id; starting a running VM is
//! `Ok`; a deleted one is `NotFound`.

use async_trait::async_trait;

use super::{cleanup, fresh_cluster, Fixture};
use crate::model::{VmFilter, VmId, VmState};
use crate::provider::CloudProvider;
use crate::ErrorKind;

/// Powers a VM off the way the cloud's own users would (the middleware's stop call, or
/// a test double's state change): [`CloudProvider`] has no stop, so
/// [`stopped_vm_starts_again`] asks for one.
#[async_trait]
pub trait StopVm: Send + Sync {
    /// Powers VM `id` off; panics when the cloud refuses.
    async fn stop(&self, id: &VmId);
}

/// Polls `id` (by key listing) until it is in `want`; panics after the fixture's timeout.
async fn wait_for(
    p: &dyn CloudProvider,
    fx: &Fixture,
    filter: &VmFilter,
    id: &VmId,
    want: &VmState,
) {
    let deadline = tokio::time::Instant::now() + fx.running_timeout;
    loop {
        let vms = p.list_vms(filter).await.expect("list failed");
        assert_eq!(vms.len(), 1, "exactly one VM, never a second: {vms:?}");
        assert_eq!(&vms[0].id, id, "the same VM id throughout: {vms:?}");
        if &vms[0].state == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "VM {id} did not reach {want} in {:?} (it is {})",
            fx.running_timeout,
            vms[0].state
        );
        tokio::time::sleep(fx.poll_interval).await;
    }
}

/// The `start_vm` contract. A provider without [`crate::Capabilities::start_vm`] must
/// answer `Unsupported` naming its site. Otherwise: starting a running VM is `Ok` and
/// changes nothing; with `stop` (skipped without), a stopped VM is started back to
/// `Running` with the same id and no other VM made; starting a deleted VM, or an id
/// that never existed, is `NotFound` naming the site.
pub async fn stopped_vm_starts_again(
    p: &dyn CloudProvider,
    fx: &Fixture,
    stop: Option<&dyn StopVm>,
) {
    let cluster = fresh_cluster("start");
    let spec = fx.spec(&cluster, "worker");
    let ids = p.create_vms(&spec, 1).await.expect("create failed");
    let id = &ids[0];
    let by_key = VmFilter::key(&spec.key);
    wait_for(p, fx, &by_key, id, &VmState::Running).await;
    if !p.capabilities().start_vm {
        let e = p
            .start_vm(id)
            .await
            .expect_err("a provider without the start_vm capability cannot start");
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        assert_eq!(e.site(), Some(p.site()), "errors name the site: {e}");
        cleanup(p, &cluster).await;
        return;
    }
    p.start_vm(id)
        .await
        .expect("starting a running VM must be Ok");
    wait_for(p, fx, &by_key, id, &VmState::Running).await;
    if let Some(stop) = stop {
        stop.stop(id).await;
        wait_for(p, fx, &by_key, id, &VmState::Stopped).await;
        p.start_vm(id).await.expect("starting a stopped VM failed");
        wait_for(p, fx, &by_key, id, &VmState::Running).await;
        p.start_vm(id)
            .await
            .expect("starting it again once running must be Ok");
    }
    p.delete_vm(id).await.expect("delete failed");
    let e = p
        .start_vm(id)
        .await
        .expect_err("starting a deleted VM must fail");
    assert_eq!(
        e.kind(),
        ErrorKind::NotFound,
        "a deleted VM is NotFound: {e}"
    );
    assert_eq!(e.site(), Some(p.site()), "errors name the site: {e}");
    let e = p
        .start_vm(&fx.missing_id)
        .await
        .expect_err("starting a VM that never existed must fail");
    assert_eq!(
        e.kind(),
        ErrorKind::NotFound,
        "a missing VM is NotFound: {e}"
    );
    cleanup(p, &cluster).await;
}
