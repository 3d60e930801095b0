//! The provider's call sequences on a scripted mock server: exact requests for create,
//! idempotent retries, delete of a missing VM, offerings and capacity.

mod support;

use intercloud_core::{
    CloudProvider, ErrorKind, IdempotencyKey, Limit, UserDataFormat, VmId, VmSpec,
};
use support::{calls_of, failure, ok_int, ok_string, provider, rpc, xml};
use wiremock::matchers::body_string_contains;
use wiremock::{Mock, MockServer};

const POOL_WITH_INDEX_0: &str = "<VM_POOL><VM><ID>41</ID><NAME>k1-0</NAME><STATE>3</STATE>\
    <LCM_STATE>3</LCM_STATE><TEMPLATE><TEMPLATE_ID><![CDATA[7]]></TEMPLATE_ID></TEMPLATE>\
    <USER_TEMPLATE><INTERCLOUD_CLUSTER><![CDATA[c1]]></INTERCLOUD_CLUSTER>\
    <INTERCLOUD_INDEX><![CDATA[0]]></INTERCLOUD_INDEX><INTERCLOUD_KEY><![CDATA[k1]]></INTERCLOUD_KEY>\
    <INTERCLOUD_ROLE><![CDATA[worker]]></INTERCLOUD_ROLE></USER_TEMPLATE></VM>\
    <VM><ID>42</ID><NAME>other</NAME><STATE>3</STATE><LCM_STATE>3</LCM_STATE><USER_TEMPLATE/></VM></VM_POOL>";

fn spec() -> VmSpec {
    VmSpec::new("c1", "worker", IdempotencyKey::new("k1").unwrap(), "S", "7")
}

#[tokio::test]
async fn create_lists_the_key_then_instantiates_only_missing_indices() {
    let server = MockServer::start().await;
    Mock::given(rpc("one.vmpool.infoextended"))
        .respond_with(xml(ok_string(POOL_WITH_INDEX_0)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(rpc("one.template.instantiate"))
        .and(body_string_contains("<string>k1-1</string>"))
        .respond_with(xml(ok_int(43)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(rpc("one.template.instantiate"))
        .and(body_string_contains("<string>k1-2</string>"))
        .respond_with(xml(ok_int(44)))
        .expect(1)
        .mount(&server)
        .await;
    let ids = provider(&server)
        .create_vms(&spec(), 3)
        .await
        .expect("create");
    assert_eq!(ids, ["41", "43", "44"].map(VmId::new));
    // The offering is a numeric id and there is no user data: no template lookup.
    let mut sent = calls_of(&server, "one.template.instantiate").await;
    sent.sort();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[0],
        "<?xml version='1.0'?>\n<methodCall>\n<methodName>one.template.instantiate</methodName>\n\
         <params>\n<param>\n<value><string>oneadmin:opennebula</string></value>\n</param>\n\
         <param>\n<value><int>7</int></value>\n</param>\n\
         <param>\n<value><string>k1-1</string></value>\n</param>\n\
         <param>\n<value><boolean>0</boolean></value>\n</param>\n\
         <param>\n<value><string>INTERCLOUD_CLUSTER=\"c1\"\nINTERCLOUD_INDEX=\"1\"\n\
         INTERCLOUD_KEY=\"k1\"\nINTERCLOUD_ROLE=\"worker\"</string></value>\n</param>\n\
         <param>\n<value><boolean>0</boolean></value>\n</param>\n</params>\n</methodCall>\n"
    );
    assert!(sent[1].contains("INTERCLOUD_INDEX=\"2\""));
    let pool = calls_of(&server, "one.vmpool.infoextended").await;
    assert!(pool[0]
        .contains("<value><int>-2</int></value>\n</param>\n<param>\n<value><int>-1</int></value>"));
}

#[tokio::test]
async fn a_retry_with_everything_present_makes_no_call_but_the_listing() {
    let server = MockServer::start().await;
    Mock::given(rpc("one.vmpool.infoextended"))
        .respond_with(xml(ok_string(POOL_WITH_INDEX_0)))
        .mount(&server)
        .await;
    let ids = provider(&server).create_vms(&spec(), 1).await.unwrap();
    assert_eq!(ids, [VmId::new("41")]);
    assert_eq!(support::bodies(&server).await.len(), 1);
}

#[tokio::test]
async fn template_name_is_resolved_and_unknown_names_list_the_choices() {
    let server = MockServer::start().await;
    Mock::given(rpc("one.vmpool.infoextended"))
        .respond_with(xml(ok_string("<VM_POOL></VM_POOL>")))
        .mount(&server)
        .await;
    Mock::given(rpc("one.templatepool.info"))
        .respond_with(xml(ok_string(
            "<VMTEMPLATE_POOL><VMTEMPLATE><ID>7</ID><NAME>small</NAME><TEMPLATE><CPU>1</CPU>\
             <VCPU>2</VCPU><MEMORY>1024</MEMORY></TEMPLATE></VMTEMPLATE><VMTEMPLATE><ID>8</ID>\
             <NAME>large</NAME><TEMPLATE/></VMTEMPLATE></VMTEMPLATE_POOL>",
        )))
        .mount(&server)
        .await;
    Mock::given(rpc("one.template.instantiate"))
        .and(body_string_contains("<int>7</int>"))
        .respond_with(xml(ok_int(50)))
        .expect(2)
        .mount(&server)
        .await;
    let p = provider(&server);
    let mut s = spec();
    s.offering = "small".into();
    assert_eq!(p.create_vms(&s, 1).await.unwrap(), [VmId::new("50")]);
    // The next create call of the deployment reuses the resolved template.
    s.key = IdempotencyKey::new("k2").unwrap();
    s.offering = " small".into();
    assert_eq!(p.create_vms(&s, 1).await.unwrap(), [VmId::new("50")]);
    assert_eq!(calls_of(&server, "one.templatepool.info").await.len(), 1);
    s.offering = "huge".into();
    let e = p.create_vms(&s, 1).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(e.message().contains("small, large"), "{e}");
    assert_eq!(e.site().map(|s| s.as_str()), Some("nii"));

    let offerings = p.offerings().await.unwrap();
    assert_eq!(offerings[0].id, "7");
    assert_eq!(offerings[0].name, "small");
    assert_eq!(offerings[0].vcpus, Some(2));
    assert_eq!(offerings[0].memory_mb, Some(1024));
}

#[tokio::test]
async fn partial_failure_reports_the_cloud_error_and_is_safe_to_retry() {
    let server = MockServer::start().await;
    Mock::given(rpc("one.vmpool.infoextended"))
        .respond_with(xml(ok_string("<VM_POOL/>")))
        .mount(&server)
        .await;
    Mock::given(rpc("one.template.instantiate"))
        .and(body_string_contains("<string>k1-0</string>"))
        .respond_with(xml(ok_int(60)))
        .mount(&server)
        .await;
    Mock::given(rpc("one.template.instantiate"))
        .and(body_string_contains("<string>k1-1</string>"))
        .respond_with(xml(failure(
            "[one.template.instantiate] User [2] : user [2] limit of 1 reached for VMS quota in VM.",
            512,
            -1,
        )))
        .mount(&server)
        .await;
    let e = provider(&server).create_vms(&spec(), 2).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded, "{e}");
    assert_eq!(e.resource(), Some("k1"));
    assert!(e.message().contains("1 of 2 instantiations failed"), "{e}");
}

#[tokio::test]
async fn bad_input_fails_before_any_call() {
    let server = MockServer::start().await;
    let p = provider(&server);
    let mut s = spec();
    s.extra_tags.insert("Not_Valid".into(), "x".into());
    assert_eq!(
        p.create_vms(&s, 1).await.unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
    let mut s = spec();
    s.extra_tags.insert("ok".into(), "has ]]> inside".into());
    // Rejected while rendering, before instantiate (the listing happens first).
    Mock::given(rpc("one.vmpool.infoextended"))
        .respond_with(xml(ok_string("<VM_POOL/>")))
        .mount(&server)
        .await;
    let e = p.create_vms(&s, 1).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(e.message().contains("]]>"), "{e}");
    assert!(calls_of(&server, "one.template.instantiate")
        .await
        .is_empty());
    assert_eq!(
        p.create_vms(&spec(), intercloud_opennebula::MAX_BATCH + 1)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidRequest
    );
    assert_eq!(
        p.delete_vm(&VmId::new("i-123")).await.unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
    assert!(p.create_vms(&spec(), 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn delete_of_a_missing_vm_is_ok_and_of_a_busy_vm_is_temporary() {
    let server = MockServer::start().await;
    Mock::given(rpc("one.vm.action"))
        .and(body_string_contains("<int>999</int>"))
        .respond_with(xml(failure(
            "[one.vm.action] Error getting virtual machine [999].",
            1024,
            999,
        )))
        .mount(&server)
        .await;
    Mock::given(rpc("one.vm.action"))
        .and(body_string_contains("<int>5</int>"))
        .respond_with(xml(failure(
            "[one.vm.action] Error performing action \"terminate-hard\": wrong state",
            2048,
            5,
        )))
        .mount(&server)
        .await;
    Mock::given(rpc("one.vm.info"))
        .respond_with(xml(ok_string(
            "<VM><ID>5</ID><NAME>k-0</NAME><STATE>3</STATE><LCM_STATE>1</LCM_STATE></VM>",
        )))
        .mount(&server)
        .await;
    let p = provider(&server);
    p.delete_vm(&VmId::new("999"))
        .await
        .expect("missing VM is Ok");
    let e = p.delete_vm(&VmId::new("5")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.is_temporary());
    assert!(e.message().contains("PROLOG"), "{e}");
    assert_eq!(e.resource(), Some("5"));
}

#[tokio::test]
async fn capacity_combines_quota_and_hosts() {
    let server = MockServer::start().await;
    Mock::given(rpc("one.user.info"))
        .respond_with(xml(ok_string(
            "<USER><ID>2</ID><NAME>alice</NAME><VM_QUOTA><VM><CPU><![CDATA[-2]]></CPU>\
             <CPU_USED><![CDATA[2]]></CPU_USED><MEMORY><![CDATA[8192]]></MEMORY>\
             <MEMORY_USED><![CDATA[2048]]></MEMORY_USED><VMS><![CDATA[-1]]></VMS>\
             <VMS_USED><![CDATA[2]]></VMS_USED></VM></VM_QUOTA><DEFAULT_USER_QUOTAS><VM_QUOTA><VM>\
             <VMS><![CDATA[20]]></VMS></VM></VM_QUOTA></DEFAULT_USER_QUOTAS></USER>",
        )))
        .mount(&server)
        .await;
    Mock::given(rpc("one.hostpool.info"))
        .respond_with(xml(ok_string(
            "<HOST_POOL><HOST><ID>0</ID><STATE>2</STATE><HOST_SHARE><MAX_CPU>800</MAX_CPU>\
             <CPU_USAGE>200</CPU_USAGE><MAX_MEM>33554432</MAX_MEM><MEM_USAGE>2097152</MEM_USAGE>\
             </HOST_SHARE></HOST><HOST><ID>1</ID><STATE>8</STATE><HOST_SHARE><MAX_CPU>6400</MAX_CPU>\
             </HOST_SHARE></HOST></HOST_POOL>",
        )))
        .mount(&server)
        .await;
    let c = provider(&server).capacity().await.unwrap();
    assert_eq!(c.instances, Limit::new(2, Some(20)));
    assert_eq!(
        c.vcpus,
        Limit::new(2, Some(8)),
        "hosts bind when the quota is unlimited"
    );
    assert_eq!(
        c.memory_mb,
        Limit::new(2048, Some(8192)),
        "quota binds before 32 GiB of hosts"
    );
}

#[tokio::test]
async fn capacity_falls_back_to_quota_when_hosts_are_hidden() {
    let server = MockServer::start().await;
    Mock::given(rpc("one.user.info"))
        .respond_with(xml(ok_string("<USER><ID>2</ID><VM_QUOTA/></USER>")))
        .mount(&server)
        .await;
    Mock::given(rpc("one.hostpool.info"))
        .respond_with(xml(failure(
            "[one.hostpool.info] User [2] not authorized to perform action on host.",
            512,
            -1,
        )))
        .mount(&server)
        .await;
    let c = provider(&server).capacity().await.unwrap();
    assert_eq!(c.instances, Limit::new(0, None));
}

#[tokio::test]
async fn capabilities_are_plain_data() {
    let server = MockServer::start().await;
    let c = provider(&server).capabilities();
    assert!(!c.batch_create && c.idempotent_create && !c.server_tag_filter);
    assert!(!c.server_idempotency && !c.native_vpn);
    assert!(c.start_vm, "resume starts a powered-off VM");
    assert_eq!(c.user_data, UserDataFormat::OneContext);
    assert!(support::bodies(&server).await.is_empty());
}
