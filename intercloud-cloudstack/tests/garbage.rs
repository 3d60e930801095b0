//! A cloud answering garbage gets a `Protocol` error naming the command, never a
//! panic; arbitrary bytes as responses never panic.

mod common;

use std::sync::{Arc, Mutex};

use common::{builder, fixture, FakeCloud};
use intercloud_core::{CloudProvider, ErrorKind, IdempotencyKey, VmFilter, VmId, VmSpec};
use proptest::prelude::*;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const ZONES: &str = "libcloud/listZones_default.json";

async fn list_with(body: &str) -> intercloud_core::Error {
    let fake = FakeCloud::default();
    fake.on("listZones", 200, fixture(ZONES))
        .on("listVirtualMachines", 200, body);
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    p.list_vms(&VmFilter::default())
        .await
        .expect_err("garbage must fail")
}

#[tokio::test]
async fn malformed_truncated_and_wrong_shapes_are_protocol_errors() {
    let full = fixture("libcloud/listVirtualMachines_default.json");
    let cases = [
        full[..full.len() / 2].to_owned(),
        "<html><body>Service Temporarily Unavailable</body></html>".to_owned(),
        "[]".to_owned(),
        r#"{"listzonesresponse":{}}"#.to_owned(),
        r#"{"listvirtualmachinesresponse":{"virtualmachine":{"id":1}}}"#.to_owned(),
        r#"{"listvirtualmachinesresponse":{"count":"many","virtualmachine":[]}}"#.to_owned(),
        r#"{"listvirtualmachinesresponse":[1,2]}"#.to_owned(),
    ];
    for body in cases {
        let e = list_with(&body).await;
        assert_eq!(e.kind(), ErrorKind::Protocol, "{body}: {e}");
        assert!(e.to_string().contains("listVirtualMachines"), "{e}");
        assert_eq!(e.site().map(|s| s.as_str()), Some("hokkaido"));
    }
}

#[tokio::test]
async fn missing_fields_and_unknown_states_name_the_command() {
    let e = list_with(
        r#"{"listvirtualmachinesresponse":{"virtualmachine":[{"name":"x","state":"Running"}]}}"#,
    )
    .await;
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(e.to_string().contains("missing field `id`"), "{e}");
    let e =
        list_with(r#"{"listvirtualmachinesresponse":{"virtualmachine":[{"id":"1","name":"x"}]}}"#)
            .await;
    assert!(e.to_string().contains("missing field `state`"), "{e}");
    let e = list_with(
        r#"{"listvirtualmachinesresponse":{"virtualmachine":[{"id":"1","state":"Frobnicating"}]}}"#,
    )
    .await;
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(e.to_string().contains("Frobnicating"), "{e}");
    assert!(e.to_string().contains("listVirtualMachines"), "{e}");
}

#[tokio::test]
async fn async_reply_without_jobid_and_unknown_jobstatus() {
    let fake = FakeCloud::default();
    fake.on(
        "destroyVirtualMachine",
        200,
        r#"{"destroyvirtualmachineresponse":{"id":"x"}}"#,
    );
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let e = p.delete_vm(&VmId::new("1")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(e.to_string().contains("destroyVirtualMachine"), "{e}");
    assert!(e.to_string().contains("missing field `jobid`"), "{e}");

    let fake = FakeCloud::default();
    fake.on(
        "destroyVirtualMachine",
        200,
        fixture("libcloud/destroyVirtualMachine_default.json"),
    )
    .on(
        "queryAsyncJobResult/17166",
        200,
        r#"{"queryasyncjobresultresponse":{"jobid":17166,"jobstatus":9}}"#,
    );
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let e = p.delete_vm(&VmId::new("1")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(e.to_string().contains("queryAsyncJobResult"), "{e}");
    assert!(e.to_string().contains("jobstatus 9"), "{e}");
}

/// Answers every request with the same (status, bytes).
#[derive(Clone)]
struct Garbage(Arc<Mutex<(u16, Vec<u8>)>>);

impl Respond for Garbage {
    fn respond(&self, _req: &Request) -> ResponseTemplate {
        let (status, body) = self.0.lock().unwrap().clone();
        ResponseTemplate::new(status).set_body_bytes(body)
    }
}

fn interesting_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        "[a-z{}\\[\\]\":,0-9 ]{0,120}".prop_map(String::into_bytes),
        (0usize..400).prop_map(|cut| {
            let f = fixture("libcloud/listVirtualMachines_default.json");
            f.as_bytes()[..cut.min(f.len())].to_vec()
        }),
        "[a-zA-Z0-9 ]{0,12}".prop_map(|s| {
            format!(r#"{{"listzonesresponse":{{"zone":[{{"id":"{s}","name":"Sydney"}}]}},"listvirtualmachinesresponse":{{"virtualmachine":[{{"id":1,"state":"{s}"}}]}},"deployvirtualmachineresponse":{{"jobid":"{s}"}},"queryasyncjobresultresponse":{{"jobstatus":2}}}}"#).into_bytes()
        }),
    ]
}

#[test]
fn arbitrary_responses_never_panic() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let shared = Garbage(Arc::new(Mutex::new((200, Vec::new()))));
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(shared.clone())
            .mount(&server)
            .await;
        server
    });
    let provider = builder(&server)
        .job_timeout(std::time::Duration::from_millis(20))
        .build()
        .unwrap();
    let spec = VmSpec::new(
        "c",
        "w",
        IdempotencyKey::new("ic-k").unwrap(),
        "S",
        "Sydney",
    );
    let status = prop_oneof![Just(200u16), Just(431u16), Just(530u16), 200u16..600];
    proptest!(ProptestConfig::with_cases(64), |(st in status, body in interesting_body())| {
        *shared.0.lock().unwrap() = (st, body);
        rt.block_on(async {
            let _ = provider.list_vms(&VmFilter::default()).await;
            let _ = provider.offerings().await;
            let _ = provider.capacity().await;
            let _ = provider.delete_vm(&VmId::new("1")).await;
            let _ = provider.create_vms(&spec, 1).await;
        });
    });
    let served = rt
        .block_on(server.received_requests())
        .map(|r| r.len())
        .unwrap_or(0);
    assert!(served >= 64 * 4, "every case reached the server: {served}");
}
