//! Wire-level tests: the recorded XML-RPC exchanges in tests/fixtures/wire replayed on a
//! loopback mock server. Each asserts the exact bytes the client sent (the recorded
//! pyone request) and what the client made of the recorded xmlrpc-c answer.

mod support;

use intercloud_core::{CloudProvider, ErrorKind, VmFilter, VmId, VmState};
use intercloud_opennebula::model::parse_vm;
use intercloud_opennebula::xmlrpc::Value;
use intercloud_opennebula::Template;
use support::{bodies, fixture, provider, provider_as, xml};
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Mounts `request` → `response` (fixture names), matching the body byte for byte.
async fn replay(server: &MockServer, request: &str, response: &str) {
    Mock::given(method("POST"))
        .and(path("/RPC2"))
        .and(header("content-type", "text/xml"))
        .and(body_string(fixture(request)))
        .respond_with(xml(fixture(response)))
        .expect(1)
        .mount(server)
        .await;
}

/// Asserts the only request received was exactly the fixture (a readable diff when not).
async fn assert_sent(server: &MockServer, request: &str) {
    assert_eq!(bodies(server).await, vec![fixture(request)]);
}

#[tokio::test]
async fn vm_info_ok_decodes_the_document_twice() {
    let server = MockServer::start().await;
    replay(
        &server,
        "wire/vm_info_ok.request.xml",
        "wire/vm_info_ok.response.xml",
    )
    .await;
    let p = provider(&server);
    let doc = p.client().vm_info(800).await.expect("vm.info");
    assert_sent(&server, "wire/vm_info_ok.request.xml").await;
    // First decoding: the <string> is exactly the documentation's VM document.
    assert_eq!(
        doc.trim_end(),
        fixture("docs-examples/vm-active-lcm69-backup.xml").trim_end()
    );
    // Second decoding: the VM.
    let vm = parse_vm(&doc).expect("VM document");
    assert_eq!((vm.id, vm.name.as_str()), (800, "alpine-800"));
    assert_eq!((vm.state, vm.lcm_state), (3, 69));
    assert_eq!(vm.ips, ["192.168.150.100"]);
    assert_eq!(vm.template_id.as_deref(), Some("0"));
    let core = vm.to_vm(&"nii".into());
    assert_eq!(core.state, VmState::Pending, "ACTIVE/BACKUP is transient");
    assert_eq!(core.private_ip.as_deref(), Some("192.168.150.100"));
    assert_eq!(core.public_ip, None);
    assert_eq!(core.tags.get("arch").map(String::as_str), Some("x86_64"));
}

#[tokio::test]
async fn vm_info_noexists_is_not_found_naming_site_and_message() {
    let server = MockServer::start().await;
    replay(
        &server,
        "wire/vm_info_noexists.request.xml",
        "wire/vm_info_noexists.response.xml",
    )
    .await;
    let e = provider(&server).client().vm_info(999).await.unwrap_err();
    assert_sent(&server, "wire/vm_info_noexists.request.xml").await;
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.site().map(|s| s.as_str()), Some("nii"));
    assert!(
        e.message()
            .contains("[one.vm.info] Error getting virtual machine [999]."),
        "{e}"
    );
    assert!(e.message().contains("NO_EXISTS 0x400"), "{e}");
}

#[tokio::test]
async fn bad_session_is_unauthenticated_without_the_password() {
    let server = MockServer::start().await;
    replay(
        &server,
        "wire/vm_info_ok.request.xml",
        "wire/vm_info_bad_session.response.xml",
    )
    .await;
    let e = provider(&server).client().vm_info(800).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert!(!e.is_temporary());
    let shown = format!("{e} {e:?}");
    assert!(shown.contains("User couldn't be authenticated"), "{shown}");
    assert!(!shown.contains("oneadmin:opennebula"), "{shown}");
}

#[tokio::test]
async fn delete_sends_terminate_hard_action_first() {
    let server = MockServer::start().await;
    replay(
        &server,
        "wire/vm_action_terminate_hard.request.xml",
        "wire/vm_action_terminate_hard.response.xml",
    )
    .await;
    provider(&server)
        .delete_vm(&VmId::new("800"))
        .await
        .expect("terminate-hard accepted");
    assert_sent(&server, "wire/vm_action_terminate_hard.request.xml").await;
}

#[tokio::test]
async fn unsupported_action_is_invalid_request() {
    let server = MockServer::start().await;
    let request =
        fixture("wire/vm_action_terminate_hard.request.xml").replace("terminate-hard", "explode");
    Mock::given(body_string(request.clone()))
        .respond_with(xml(fixture("wire/vm_action_unsupported.response.xml")))
        .expect(1)
        .mount(&server)
        .await;
    let e = provider(&server)
        .client()
        .vm_action("explode", 800)
        .await
        .unwrap_err();
    assert_eq!(bodies(&server).await, vec![request]);
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(
        e.message()
            .contains("[one.vm.action] Action \"explode\" is not supported"),
        "{e}"
    );
}

#[tokio::test]
async fn template_instantiate_sends_merged_context_and_labels() {
    let server = MockServer::start().await;
    replay(
        &server,
        "wire/template_instantiate.request.xml",
        "wire/template_instantiate.response.xml",
    )
    .await;
    let extra = Template::new()
        .vector(
            "CONTEXT",
            [
                ("NETWORK", "YES"),
                ("SSH_PUBLIC_KEY", "ssh-ed25519 AAAAC3Nza example@host"),
                (
                    "USER_DATA",
                    "I2Nsb3VkLWNvbmZpZwpydW5jbWQ6CiAgLSBlY2hvIGhpCg==",
                ),
                ("USER_DATA_ENCODING", "base64"),
            ],
        )
        .single("INTERCLOUD_LABELS", "job=42")
        .render()
        .unwrap();
    let id = provider(&server)
        .client()
        .template_instantiate(7, "vm-a", false, &extra, false)
        .await
        .expect("instantiate");
    assert_sent(&server, "wire/template_instantiate.request.xml").await;
    assert_eq!(id, 802);
}

#[tokio::test]
async fn vm_allocate_sends_the_rendered_template() {
    let server = MockServer::start().await;
    replay(
        &server,
        "wire/vm_allocate.request.xml",
        "wire/vm_allocate.response.xml",
    )
    .await;
    let text = Template::new()
        .single("NAME", "vm-a")
        .single("CPU", "1")
        .single("VCPU", "2")
        .single("MEMORY", "1024")
        .vector("DISK", [("IMAGE_ID", "3")])
        .vector("NIC", [("NETWORK_ID", "0")])
        .vector(
            "CONTEXT",
            [
                ("NETWORK", "YES"),
                ("SSH_PUBLIC_KEY", "ssh-ed25519 AAAAC3Nza example@host"),
                (
                    "USER_DATA",
                    "I2Nsb3VkLWNvbmZpZwpydW5jbWQ6CiAgLSBlY2hvIGhpCg==",
                ),
                ("USER_DATA_ENCODING", "base64"),
            ],
        )
        .single("INTERCLOUD_LABELS", "job=42")
        .render()
        .unwrap();
    let id = provider(&server)
        .client()
        .vm_allocate(&text, false)
        .await
        .expect("allocate");
    assert_sent(&server, "wire/vm_allocate.request.xml").await;
    assert_eq!(id, 801);
}

#[tokio::test]
async fn vm_update_merges_user_template() {
    let server = MockServer::start().await;
    Mock::given(body_string(fixture("wire/vm_update.request.xml")))
        .respond_with(xml(support::ok_int(800)))
        .expect(1)
        .mount(&server)
        .await;
    let id = provider(&server)
        .client()
        .vm_update(800, "INTERCLOUD_LABELS=\"job=42\"", true)
        .await
        .expect("update");
    assert_sent(&server, "wire/vm_update.request.xml").await;
    assert_eq!(id, 800);
}

#[tokio::test]
async fn list_vms_is_one_infoextended_call_filtered_by_tags() {
    let server = MockServer::start().await;
    Mock::given(body_string(fixture("wire/vmpool_infoextended.request.xml")))
        .respond_with(xml(fixture("wire/vmpool_infoextended.response.xml")))
        .expect(2)
        .mount(&server)
        .await;
    let p = provider(&server);
    let all = p.list_vms(&VmFilter::default()).await.expect("list");
    assert_eq!(all.len(), 1);
    let vm = &all[0];
    assert_eq!(vm.id.as_str(), "800");
    assert_eq!(vm.name, "alpine-800");
    assert_eq!(vm.site.as_str(), "nii");
    assert_eq!(vm.state, VmState::Pending);
    assert_eq!(vm.offering.as_deref(), Some("0"));
    assert_eq!(vm.private_ip.as_deref(), Some("192.168.150.100"));
    let none = p
        .list_vms(&VmFilter::cluster("hadoop"))
        .await
        .expect("list");
    assert!(none.is_empty(), "the VM has no intercloud tags");
    // Both polls were the identical recorded request: one call per poll.
    let sent = bodies(&server).await;
    assert_eq!(sent.len(), 2);
    assert!(sent
        .iter()
        .all(|b| *b == fixture("wire/vmpool_infoextended.request.xml")));
}

#[tokio::test]
async fn faults_map_to_clear_kinds() {
    let cases = [
        (
            "wire/fault_type_int.response.xml",
            ErrorKind::InvalidRequest,
            "supposed to be integer",
        ),
        (
            "wire/fault_not_enough_params.response.xml",
            ErrorKind::InvalidRequest,
            "Not enough parameters",
        ),
        (
            "wire/fault_no_such_method.response.xml",
            ErrorKind::Unsupported,
            "not defined",
        ),
        (
            "wire/fault_parse.response.xml",
            ErrorKind::Protocol,
            "XML-RPC fault -503",
        ),
    ];
    for (response, kind, needle) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(xml(fixture(response)))
            .mount(&server)
            .await;
        let e = provider(&server)
            .client()
            .call("one.vm.info", vec![Value::string("800")])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{response}: {e}");
        assert!(e.message().contains(needle), "{response}: {e}");
        assert_eq!(e.site().map(|s| s.as_str()), Some("nii"));
    }
}

#[tokio::test]
async fn a_string_where_an_int_is_due_is_sent_as_recorded() {
    let server = MockServer::start().await;
    replay(
        &server,
        "wire/fault_type_int.request.xml",
        "wire/fault_type_int.response.xml",
    )
    .await;
    let e = provider(&server)
        .client()
        .call("one.vm.info", vec![Value::string("800")])
        .await
        .unwrap_err();
    assert_sent(&server, "wire/fault_type_int.request.xml").await;
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn http_failures_name_the_fix() {
    for (status, kind) in [
        (404, ErrorKind::Config),
        (405, ErrorKind::Config),
        (500, ErrorKind::Unavailable),
        (503, ErrorKind::Unavailable),
        (429, ErrorKind::RateLimited),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status))
            .mount(&server)
            .await;
        let e = provider(&server).check().await.unwrap_err();
        assert_eq!(e.kind(), kind, "HTTP {status}: {e}");
        if status == 404 {
            assert!(e.message().contains("/RPC2"), "{e}");
        }
    }
}

#[tokio::test]
async fn garbage_answers_are_protocol_errors() {
    for body in [
        "",
        "<html>oops</html>",
        "<methodResponse><params><param><value><array><data><value><i4>1</i4></value></data></array></value></param></params></methodResponse>",
        "<methodResponse><params><param><value><string>7.0",
        "<methodResponse><params><param><value><array><data><value><boolean>1</boolean></value><value><i4>5</i4></value></data></array></value></param></params></methodResponse>",
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(xml(body))
            .mount(&server)
            .await;
        // system.version wants a string; the last body carries an int.
        let e = provider(&server).check().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{body}: {e}");
    }
    // A VM pool whose document is broken.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(xml(support::ok_string(
            "<VM_POOL><VM><ID>x</ID></VM></VM_POOL>",
        )))
        .mount(&server)
        .await;
    let e = provider(&server)
        .list_vms(&VmFilter::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(e.message().contains("one.vmpool.infoextended"), "{e}");
}

#[tokio::test]
async fn connection_refused_is_unavailable_and_temporary() {
    // A port nobody listens on (wiremock pools its servers, so not one of those).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let p = intercloud_opennebula::OpenNebulaBuilder::new("nii")
        .endpoint(format!("http://127.0.0.1:{port}/RPC2"))
        .auth("oneadmin", "opennebula")
        .build()
        .unwrap();
    let e = p.check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_temporary());
}

#[tokio::test]
async fn secrets_never_reach_errors_or_debug() {
    let server = MockServer::start().await;
    // A misbehaving proxy that echoes the request body inside a fault.
    Mock::given(method("POST"))
        .respond_with(|req: &wiremock::Request| {
            let echoed = String::from_utf8_lossy(&req.body)
                .replace('&', "&amp;")
                .replace('<', "&lt;");
            xml(format!(
                "<methodResponse><fault><value><struct><member><name>faultCode</name>\
                 <value><i4>-500</i4></value></member><member><name>faultString</name>\
                 <value><string>bad call {echoed}</string></value></member></struct></value>\
                 </fault></methodResponse>"
            ))
        })
        .mount(&server)
        .await;
    let p = provider_as(&server, "alice", "S3CRET-pw-value");
    let e = p.check().await.unwrap_err();
    let shown = format!("{e} | {e:?} | {p:?} | {:?}", p.client());
    assert!(shown.contains("bad call"), "{shown}");
    assert!(!shown.contains("S3CRET"), "{shown}");
    let e = p.delete_vm(&VmId::new("1")).await.unwrap_err();
    assert!(!format!("{e} {e:?}").contains("S3CRET"));
}

#[tokio::test]
async fn trace_logs_name_the_method_but_never_the_session() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    replay(
        &server,
        "wire/vm_info_ok.request.xml",
        "wire/vm_info_bad_session.response.xml",
    )
    .await;
    let e = provider(&server).client().vm_info(800).await.unwrap_err();
    tracing::error!(error = %e, "as a caller would log it");
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("one.vm.info"), "{logs}");
    assert!(!logs.contains("oneadmin:opennebula"), "{logs}");
}

#[tokio::test]
async fn docs_pending_vm_with_cdata_reads_as_pending() {
    let server = MockServer::start().await;
    Mock::given(support::rpc("one.vm.info"))
        .respond_with(xml(support::ok_string(&fixture(
            "docs-examples/vm-pending.xml",
        ))))
        .expect(1)
        .mount(&server)
        .await;
    let doc = provider(&server)
        .client()
        .vm_info(0)
        .await
        .expect("vm.info");
    assert!(doc.contains("<![CDATA[!(PUBLIC_CLOUD = YES) & !(PIN_POLICY = PINNED)]]>"));
    let vm = parse_vm(&doc).expect("pending VM");
    assert_eq!(
        (vm.id, vm.name.as_str(), vm.state, vm.lcm_state),
        (0, "test", 1, 0)
    );
    assert!(vm.user_template.is_empty(), "<USER_TEMPLATE/> is empty");
    assert_eq!(vm.to_vm(&"nii".into()).state, VmState::Pending);
}

/// pyone's recorded `one.vm.action` envelope with the action `resume` instead of
/// `terminate-hard` (the only difference pyone would make).
fn resume_request() -> String {
    fixture("wire/vm_action_terminate_hard.request.xml").replace("terminate-hard", "resume")
}

/// xmlrpc-c's recorded ACTION failure with the text `DispatchManager::resume` gives a
/// VM in the wrong state (`src/rm/Request.cc::failure_message` prefix).
fn resume_wrong_state() -> String {
    fixture("wire/vm_action_unsupported.response.xml").replace(
        "Action \"explode\" is not supported",
        "Error performing action \"resume\": Could not resume VM 800, wrong state ACTIVE.",
    )
}

#[tokio::test]
async fn start_vm_sends_resume_as_pyone_does() {
    let server = MockServer::start().await;
    Mock::given(body_string(resume_request()))
        .respond_with(xml(fixture("wire/vm_action_terminate_hard.response.xml")))
        .expect(1)
        .mount(&server)
        .await;
    provider(&server)
        .start_vm(&VmId::new("800"))
        .await
        .expect("resume accepted");
    assert_eq!(bodies(&server).await, vec![resume_request()]);
}

#[tokio::test]
async fn resume_refused_for_a_booting_vm_is_ok_after_one_vm_info() {
    let server = MockServer::start().await;
    Mock::given(body_string(resume_request()))
        .respond_with(xml(resume_wrong_state()))
        .expect(1)
        .mount(&server)
        .await;
    // The recorded VM 800 is ACTIVE/BACKUP: on, so there is nothing to resume.
    replay(
        &server,
        "wire/vm_info_ok.request.xml",
        "wire/vm_info_ok.response.xml",
    )
    .await;
    provider(&server)
        .start_vm(&VmId::new("800"))
        .await
        .expect("an active VM counts as started");
    assert_eq!(
        bodies(&server).await,
        vec![resume_request(), fixture("wire/vm_info_ok.request.xml")]
    );
}

#[tokio::test]
async fn resume_refused_for_a_failed_vm_keeps_the_refusal() {
    let server = MockServer::start().await;
    Mock::given(body_string(resume_request()))
        .respond_with(xml(resume_wrong_state()))
        .mount(&server)
        .await;
    // The recorded VM 800 in ACTIVE/BOOT_FAILURE (LCM 36) instead of BACKUP.
    let failed = fixture("wire/vm_info_ok.response.xml").replace(
        "&lt;LCM_STATE&gt;69&lt;/LCM_STATE&gt;",
        "&lt;LCM_STATE&gt;36&lt;/LCM_STATE&gt;",
    );
    Mock::given(body_string(fixture("wire/vm_info_ok.request.xml")))
        .respond_with(xml(failed))
        .mount(&server)
        .await;
    let e = provider(&server)
        .start_vm(&VmId::new("800"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
    assert!(e.message().contains("wrong state"), "{e}");
    assert_eq!(e.resource(), Some("800"));
}

#[tokio::test]
async fn resume_of_an_unknown_vm_is_not_found() {
    let server = MockServer::start().await;
    // xmlrpc-c's recorded NO_EXISTS answer, as oned words it for one.vm.action.
    let gone = fixture("wire/vm_info_noexists.response.xml")
        .replace("[one.vm.info]", "[one.vm.action]")
        .replace("999", "800");
    Mock::given(body_string(resume_request()))
        .respond_with(xml(gone))
        .expect(1)
        .mount(&server)
        .await;
    let e = provider(&server)
        .start_vm(&VmId::new("800"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(e.resource(), Some("800"));
}
