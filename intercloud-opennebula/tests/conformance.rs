//! Core's conformance suite against the backend talking XML-RPC to a stateful fake
//! oned on loopback (tests/support/fake_oned.rs). The simulator's OpenNebula endpoint
//! will run the same suite; this proves the backend side on every `cargo test`.

mod support;

use std::time::Duration;

use intercloud_core::testkit::{self, Fixture};
use intercloud_core::{CloudProvider, CloudProviderExt, IdempotencyKey, UserData, VmSpec, VmState};
use intercloud_opennebula::OpenNebulaBuilder;
use support::fake_oned::FakeOned;
use wiremock::{Mock, MockServer};

async fn fake(oned: FakeOned) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(oned)
        .mount(&server)
        .await;
    server
}

fn fixture() -> Fixture {
    let mut fx = Fixture::new("small");
    fx.poll_interval = Duration::from_millis(5);
    fx.running_timeout = Duration::from_secs(5);
    fx
}

#[tokio::test]
async fn backend_passes_the_conformance_suite_by_template_name() {
    let server = fake(FakeOned::new()).await;
    let p = support::provider(&server);
    testkit::run_all(&p, &fixture()).await;
}

#[tokio::test]
async fn backend_passes_the_conformance_suite_by_template_id() {
    let server = fake(FakeOned::new()).await;
    let p = support::provider(&server);
    let mut fx = fixture();
    fx.offering = "7".into();
    testkit::run_all(&p, &fx).await;
}

#[tokio::test]
async fn vm_quota_exhaustion_is_quota_exceeded() {
    let server = fake(FakeOned::new().with_vm_quota(3)).await;
    let p = support::provider(&server);
    testkit::capacity_exceeded(&p, &fixture(), 3).await;
}

#[tokio::test]
async fn user_data_reaches_context_with_the_template_context_kept() {
    let oned = FakeOned::new();
    let server = fake(oned.clone()).await;
    let p = OpenNebulaBuilder::new("nii")
        .endpoint(format!("{}/RPC2", server.uri()))
        .auth("oneadmin", "opennebula")
        .poll_interval(Duration::from_millis(5))
        .running_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut spec = VmSpec::new(
        "c1",
        "worker",
        IdempotencyKey::new("ud-key").unwrap(),
        "S",
        "small",
    );
    spec.user_data = Some(UserData(
        "#cloud-config\nwrite_files: [{path: /x, content: \"a]]>b\"}]\n".into(),
    ));
    spec.extra_tags
        .insert("owner".into(), "alice \"the\" admin\nline2".into());
    let ids = p.create_vms(&spec, 2).await.expect("create with user data");
    let id: i64 = ids[1].as_str().parse().unwrap();
    let (user, context) = oned.vm_templates(id);
    let ctx: std::collections::BTreeMap<_, _> = context.into_iter().collect();
    assert_eq!(ctx["NETWORK"], "YES", "template CONTEXT survives");
    assert_eq!(ctx["SSH_PUBLIC_KEY"], "$USER[SSH_PUBLIC_KEY]");
    assert_eq!(ctx["USER_DATA_ENCODING"], "base64");
    use base64::Engine as _;
    let ud = base64::engine::general_purpose::STANDARD
        .decode(&ctx["USER_DATA"])
        .unwrap();
    assert_eq!(
        String::from_utf8(ud).unwrap(),
        spec.user_data.as_ref().unwrap().0
    );
    let user: std::collections::BTreeMap<_, _> = user.into_iter().collect();
    assert_eq!(user["INTERCLOUD_INDEX"], "1");
    assert_eq!(user["OWNER"], "alice \"the\" admin\nline2");

    // Tags come back in core's spelling, and polling reaches Running.
    let vms = p.wait_running(&ids).await.expect("running");
    assert_eq!(vms[1].tags["owner"], "alice \"the\" admin\nline2");
    assert_eq!(vms[0].state, VmState::Running);
    assert_eq!(p.find_by_key(&spec.key).await.unwrap().len(), 2);
    assert_eq!(p.delete_cluster("c1").await.unwrap(), 2);
}
