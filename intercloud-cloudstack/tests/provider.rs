//! The provider against recorded CloudStack responses (libcloud and cloudstack-go
//! recordings in `tests/fixtures/`), served by a signature-verifying loopback fake.
//! Exact signed queries were cross-checked with an independent Python implementation
//! of `ApiServer.verifyRequest`.

mod common;

use std::time::Duration;

use common::{builder, fixture, go_fixture, raw_requests, FakeCloud};
use intercloud_core::{
    CloudProvider, ErrorKind, IdempotencyKey, UserData, VmFilter, VmId, VmSpec, VmState, TAG_INDEX,
    TAG_KEY,
};

const ZONES: &str = "libcloud/listZones_default.json";
const EMPTY_VMS: &str = r#"{ "listvirtualmachinesresponse" : { } }"#;

fn spec() -> VmSpec {
    let mut s = VmSpec::new(
        "c1",
        "worker",
        IdempotencyKey::new("ic-c1-abc").unwrap(),
        "S",
        "Compute Micro PRD",
    );
    s.image = Some(intercloud_core::ImageRef(
        "XEN Basic Windows Svr 2008 R2 x64 R2.1".into(),
    ));
    s.user_data = Some(UserData("#cloud-config\n".into()));
    s
}

/// The VM of libcloud's `queryAsyncJobResult_17164.json`, listed with `state` and the
/// spec's tags for index 0 (the listing a real server gives once `createTags` ran).
fn listed_vm(state: &str) -> String {
    let job: serde_json::Value =
        serde_json::from_str(&fixture("libcloud/queryAsyncJobResult_17164.json")).unwrap();
    let mut vm = job["queryasyncjobresultresponse"]["jobresult"]["virtualmachine"].clone();
    vm["state"] = state.into();
    vm["displayname"] = "ic-c1-abc-0".into();
    vm["tags"] = spec()
        .tags_for(0)
        .iter()
        .map(|(k, v)| serde_json::json!({"key": k, "value": v, "resourcetype": "UserVm"}))
        .collect();
    serde_json::json!({"listvirtualmachinesresponse": {"count": 1, "virtualmachine": [vm]}})
        .to_string()
}

#[tokio::test]
async fn offerings_replay_libcloud_with_exact_signed_query() {
    let fake = FakeCloud::default();
    fake.on(
        "listServiceOfferings",
        200,
        fixture("libcloud/listServiceOfferings_default.json"),
    );
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let offerings = p.offerings().await.unwrap();
    assert_eq!(offerings.len(), 5);
    assert_eq!(offerings[0].id, "105", "numeric ids become strings");
    assert_eq!(offerings[0].name, "Compute Micro PRD");
    assert_eq!(offerings[0].vcpus, Some(1));
    assert_eq!(offerings[0].memory_mb, Some(384));
    assert_eq!(
        raw_requests(&server, "listServiceOfferings").await,
        vec!["apiKey=fnord&command=listServiceOfferings&page=1&pagesize=500&response=json&signature=c7ByVrNsd6YbRiPEMZTWUnk6NeM%3D"]
    );
}

#[tokio::test]
async fn list_vms_pushes_one_tag_and_filters_exactly() {
    let fake = FakeCloud::default();
    fake.on("listZones", 200, fixture(ZONES)).on(
        "listVirtualMachines",
        200,
        fixture("libcloud/listVirtualMachines_default.json"),
    );
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let vms = p
        .list_vms(
            &VmFilter::default()
                .tag("foo", "bar")
                .tag("testkey", "testvalue"),
        )
        .await
        .unwrap();
    assert_eq!(vms.len(), 1, "VM 2601 has no tags: {vms:?}");
    let vm = &vms[0];
    assert_eq!(vm.id, VmId::new("2600"));
    assert_eq!(vm.state, VmState::Running);
    assert_eq!(vm.private_ip.as_deref(), Some("1.1.1.116"));
    assert_eq!(vm.offering.as_deref(), Some("Compute Micro PRD"));
    assert_eq!(vm.site.as_str(), "hokkaido");
    assert_eq!(
        raw_requests(&server, "listVirtualMachines").await,
        vec!["apiKey=fnord&command=listVirtualMachines&listall=true&page=1&pagesize=500&response=json&tags%5B0%5D.key=foo&tags%5B0%5D.value=bar&zoneid=1&signature=oi0x4GvmaqAnPsPkNv8Pt%2F%2BtMyg%3D"]
    );
    // Without a filter both are listed, the one in flight as Pending.
    let all = p.list_vms(&VmFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].state, VmState::Pending);
}

#[tokio::test]
async fn nic_without_address_and_modern_uuid_listing_parse() {
    let fake = FakeCloud::default();
    fake.on("listZones", 200, fixture(ZONES))
        .on(
            "listVirtualMachines",
            200,
            fixture("libcloud/listVirtualMachines_noipaddress.json"),
        )
        .on(
            "listVirtualMachines",
            200,
            go_fixture(
                "cloudstack-go/VirtualMachineService.json",
                "listVirtualMachines",
                "listvirtualmachinesresponse",
            ),
        );
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let old = p.list_vms(&VmFilter::default()).await.unwrap();
    assert_eq!(old[0].private_ip.as_deref(), Some("1.1.1.116"));
    let modern = p.list_vms(&VmFilter::default()).await.unwrap();
    assert_eq!(modern.len(), 1);
    assert_eq!(
        modern[0].id.as_str(),
        "915653c4-298b-4d74-bdee-4ced282114f1"
    );
    assert_eq!(modern[0].name, "testDummyVM");
    assert_eq!(modern[0].private_ip.as_deref(), Some("10.1.1.62"));
}

#[tokio::test]
async fn paging_follows_count() {
    let fake = FakeCloud::default();
    let page = |ids: &[u32]| {
        let vms: Vec<_> = ids
            .iter()
            .map(|i| serde_json::json!({"id": i, "name": format!("v{i}"), "state": "Running"}))
            .collect();
        serde_json::json!({"listvirtualmachinesresponse": {"count": 3, "virtualmachine": vms}})
            .to_string()
    };
    fake.on("listZones", 200, fixture(ZONES))
        .on("listVirtualMachines", 200, page(&[1, 2]))
        .on("listVirtualMachines", 200, page(&[3]));
    let server = fake.start().await;
    let p = builder(&server).page_size(2).build().unwrap();
    let vms = p.list_vms(&VmFilter::default()).await.unwrap();
    assert_eq!(vms.len(), 3);
    let pages: Vec<String> = fake
        .params("listVirtualMachines")
        .iter()
        .map(|p| format!("{}/{}", p["page"], p["pagesize"]))
        .collect();
    assert_eq!(pages, ["1/2", "2/2"]);
}

#[tokio::test]
async fn server_ignoring_page_is_not_followed_forever() {
    let fake = FakeCloud::default();
    let vms: Vec<_> = (1..=2)
        .map(|i| serde_json::json!({"id": i, "name": format!("v{i}"), "state": "Running"}))
        .collect();
    fake.on("listZones", 200, fixture(ZONES)).on(
        "listVirtualMachines",
        200,
        serde_json::json!({"listvirtualmachinesresponse": {"virtualmachine": vms}}).to_string(),
    );
    let server = fake.start().await;
    let p = builder(&server).page_size(2).build().unwrap();
    let listed = p.list_vms(&VmFilter::default()).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(fake.params("listVirtualMachines").len(), 2);
}

#[tokio::test]
async fn capabilities_describe_cloudstack() {
    let fake = FakeCloud::default();
    let server = fake.start().await;
    let c = builder(&server).build().unwrap().capabilities();
    assert!(!c.batch_create);
    assert!(c.idempotent_create);
    assert!(c.server_tag_filter);
    assert!(c.native_vpn);
    assert!(!c.server_idempotency);
    assert_eq!(c.max_user_data, 32 * 1024);
    assert!(c.start_vm);
    assert!(fake.calls().is_empty(), "capabilities make no call");
}

fn create_fake() -> FakeCloud {
    let fake = FakeCloud::default();
    fake.on("listZones", 200, fixture(ZONES))
        .on(
            "listServiceOfferings",
            200,
            fixture("libcloud/listServiceOfferings_default.json"),
        )
        .on(
            "listTemplates",
            200,
            fixture("libcloud/listTemplates_default.json"),
        )
        .on("listVirtualMachines?keyword", 200, EMPTY_VMS)
        .on(
            "createTags",
            200,
            fixture("libcloud/createTags_default.json"),
        );
    fake
}

#[tokio::test]
async fn create_deploys_by_post_tags_and_polls_by_listing() {
    let fake = create_fake(); // lookup by key (keyword): nothing yet
    fake.on("listVirtualMachines", 200, listed_vm("Starting"))
        .on("listVirtualMachines", 200, listed_vm("Running"))
        .on(
            "deployVirtualMachine",
            200,
            fixture("libcloud/deployVirtualMachine_default.json"),
        );
    let server = fake.start().await;
    let journal = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let j = journal.clone();
    let p = builder(&server)
        .on_deploy_started(move |d| {
            j.lock()
                .unwrap()
                .push((d.index, d.vm_id.clone(), d.job_id.clone()))
        })
        .build()
        .unwrap();
    let ids = p.create_vms(&spec(), 1).await.unwrap();
    assert_eq!(ids, vec![VmId::new("2602")]);
    assert_eq!(
        *journal.lock().unwrap(),
        vec![(0, VmId::new("2602"), "17164".to_owned())],
        "VM id and job id are reported before waiting"
    );
    assert_eq!(
        raw_requests(&server, "deployVirtualMachine").await,
        vec!["apiKey=fnord&command=deployVirtualMachine&displayname=ic-c1-abc-0&name=ic-c1-abc-0&response=json&serviceofferingid=105&templateid=443&userdata=I2Nsb3VkLWNvbmZpZwo%3D&zoneid=1&signature=1edxZQtd1YYYEQc95yjtWFrLjDw%3D"],
        "deploy is a signed POST form"
    );
    let tags = &fake.params("createTags")[0];
    assert_eq!(tags["resourceids"], "2602");
    assert_eq!(tags["resourcetype"], "UserVm");
    assert_eq!(tags["tags[1].key"], TAG_KEY);
    assert_eq!(tags["tags[1].value"], "ic-c1-abc");
    assert!(
        !tags.values().any(|v| v == TAG_INDEX),
        "the index is in the display name, not a tag: {tags:?}"
    );
    assert!(
        !fake
            .calls()
            .iter()
            .any(|c| c.starts_with("queryAsyncJobResult")),
        "success is seen by listing, not by querying jobs: {:?}",
        fake.calls()
    );
    // One lookup by key, then one listVirtualMachines per tick: Starting, Running.
    let count = |route: &str| fake.calls().iter().filter(|c| *c == route).count();
    assert_eq!(count("listVirtualMachines?keyword"), 1);
    assert_eq!(count("listVirtualMachines"), 2);
}

/// `listed_vm` as VM `index` with id `id`, tagged like one `createTags` of a create
/// call tags it (no index tag) or, with `tagged` false, not at all.
fn call_vm(index: u32, id: &str, tagged: bool) -> serde_json::Value {
    let body: serde_json::Value = serde_json::from_str(&listed_vm("Running")).unwrap();
    let mut vm = body["listvirtualmachinesresponse"]["virtualmachine"][0].clone();
    vm["id"] = id.into();
    vm["displayname"] = format!("ic-c1-abc-{index}").into();
    let mut tags = spec().tags_for(index);
    tags.remove(TAG_INDEX);
    vm["tags"] = if tagged {
        tags.iter()
            .map(|(k, v)| serde_json::json!({"key": k, "value": v, "resourcetype": "UserVm"}))
            .collect()
    } else {
        serde_json::json!([])
    };
    vm
}

fn vm_list(vms: &[serde_json::Value]) -> String {
    serde_json::json!({"listvirtualmachinesresponse": {"count": vms.len(), "virtualmachine": vms}})
        .to_string()
}

#[tokio::test]
async fn one_create_tags_for_every_vm_of_a_call_and_index_from_the_name() {
    let fake = create_fake();
    let listed: Vec<_> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, id)| call_vm(i as u32, id, true))
        .collect();
    fake.on("listVirtualMachines", 200, vm_list(&listed));
    for id in ["a", "b", "c"] {
        fake.on(
            "deployVirtualMachine",
            200,
            format!(r#"{{"deployvirtualmachineresponse":{{"jobid":"j-{id}","id":"{id}"}}}}"#),
        );
    }
    let server = fake.start().await;
    let p = builder(&server).deploy_concurrency(1).build().unwrap();
    let mut fresh = spec();
    fresh.fresh = true;
    let ids = p.create_vms(&fresh, 3).await.unwrap();
    assert_eq!(ids, ["a", "b", "c"].map(VmId::new).to_vec());
    assert!(
        fake.params("listVirtualMachines?keyword").is_empty(),
        "a fresh key is not looked up"
    );
    let tags = fake.params("createTags");
    assert_eq!(tags.len(), 1, "one createTags for the call");
    assert_eq!(tags[0]["resourceids"], "a,b,c");
    let vms = p.list_vms(&VmFilter::cluster("c1")).await.unwrap();
    let indices: Vec<_> = vms.iter().map(|v| (v.id.as_str(), v.index())).collect();
    assert_eq!(
        indices,
        [("a", Some(0)), ("b", Some(1)), ("c", Some(2))],
        "each VM's index read back from its display name"
    );
}

#[tokio::test]
async fn listing_by_key_finds_vms_whose_tagging_was_cut_short() {
    let fake = create_fake();
    fake.only(
        "listVirtualMachines?keyword",
        200,
        vm_list(&[call_vm(0, "a", true), call_vm(1, "b", false)]),
    );
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let vms = p.list_vms(&VmFilter::key(&spec().key)).await.unwrap();
    let found: Vec<_> = vms
        .iter()
        .map(|v| (v.id.as_str(), v.key(), v.index()))
        .collect();
    assert_eq!(
        found,
        [
            ("a", Some("ic-c1-abc"), Some(0)),
            ("b", Some("ic-c1-abc"), Some(1))
        ]
    );
    assert_eq!(
        fake.params("listVirtualMachines?keyword")[0]["keyword"],
        "ic-c1-abc"
    );
    // A filter on the cluster tag needs the tag: the untagged VM is not the cluster's.
    fake.only(
        "listVirtualMachines",
        200,
        vm_list(&[call_vm(0, "a", true)]),
    );
    assert_eq!(p.list_vms(&VmFilter::cluster("c1")).await.unwrap().len(), 1);
}

#[tokio::test]
async fn retried_create_adopts_existing_vm() {
    let fake = create_fake();
    fake.only("listVirtualMachines?keyword", 200, listed_vm("Running"));
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let ids = p.create_vms(&spec(), 1).await.unwrap();
    assert_eq!(ids, vec![VmId::new("2602")]);
    assert!(
        fake.params("deployVirtualMachine").is_empty(),
        "no second VM"
    );
    assert_eq!(
        fake.calls(),
        ["listZones", "listVirtualMachines?keyword"],
        "the zone, then one lookup by key"
    );
    assert!(fake.params("createTags").is_empty());
}

#[tokio::test]
async fn untagged_vm_named_by_key_is_adopted_and_tagged() {
    let fake = create_fake();
    let untagged = listed_vm("Running").replace("\"tags\":[", "\"oldtags\":[");
    fake.on("listVirtualMachines", 200, EMPTY_VMS).on(
        "listVirtualMachines",
        200,
        listed_vm("Running"),
    );
    fake.only("listVirtualMachines?keyword", 200, untagged);
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let ids = p.create_vms(&spec(), 1).await.unwrap();
    assert_eq!(ids, vec![VmId::new("2602")]);
    assert!(
        fake.params("deployVirtualMachine").is_empty(),
        "adopted, not redeployed"
    );
    assert_eq!(fake.params("createTags")[0]["resourceids"], "2602");
    assert_eq!(
        fake.params("listVirtualMachines?keyword")[0]["keyword"],
        "ic-c1-abc"
    );
}

#[tokio::test]
async fn failed_deploy_job_reports_its_error_and_rolls_back() {
    let fake = create_fake();
    fake.on("listVirtualMachines", 200, EMPTY_VMS)
        .on("listVirtualMachines", 200, listed_vm("Error"))
        .on(
            "deployVirtualMachine",
            200,
            fixture("libcloud/deployVirtualMachine_deployfail2.json"),
        )
        .on(
            "queryAsyncJobResult/17177",
            200,
            fixture("libcloud/queryAsyncJobResult_17177.json"),
        )
        .on(
            "destroyVirtualMachine",
            200,
            fixture("libcloud/destroyVirtualMachine_default.json"),
        )
        .on(
            "queryAsyncJobResult/17166",
            200,
            fixture("libcloud/queryAsyncJobResult_17166.json"),
        );
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let err = p.create_vms(&spec(), 1).await.unwrap_err();
    assert!(
        err.to_string().contains("deployVirtualMachine (job 17177)"),
        "{err}"
    );
    assert_eq!(err.site().map(|s| s.as_str()), Some("hokkaido"));
    let destroyed = fake.params("destroyVirtualMachine");
    assert_eq!(destroyed.len(), 1, "the failed VM is removed");
    assert_eq!(destroyed[0]["id"], "2602");
    assert_eq!(destroyed[0]["expunge"], "true");
}

#[tokio::test]
async fn capacity_failure_in_job_is_quota_exceeded() {
    let fake = create_fake();
    fake.on("listVirtualMachines", 200, EMPTY_VMS)
        .on("listVirtualMachines", 200, listed_vm("Error"))
        .on(
            "deployVirtualMachine",
            200,
            fixture("libcloud/deployVirtualMachine_deployfail2.json"),
        )
        .on(
            "queryAsyncJobResult/17177",
            200,
            r#"{"queryasyncjobresultresponse":{"jobid":17177,"jobstatus":2,"jobresultcode":530,"jobresulttype":"object","jobresult":{"errorcode":533,"errortext":"Unable to create a deployment for VM[User|i-2-683-QA]"}}}"#,
        )
        .on(
            "destroyVirtualMachine",
            200,
            fixture("libcloud/destroyVirtualMachine_default.json"),
        )
        .on(
            "queryAsyncJobResult/17166",
            200,
            fixture("libcloud/queryAsyncJobResult_17166.json"),
        );
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let err = p.create_vms(&spec(), 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "{err}");
    assert!(
        err.to_string().contains("Unable to create a deployment"),
        "{err}"
    );
}

#[tokio::test]
async fn synchronous_deploy_error_431_keeps_errortext() {
    let fake = create_fake();
    fake.on("listVirtualMachines", 200, EMPTY_VMS).on(
        "deployVirtualMachine",
        431,
        fixture("libcloud/deployVirtualMachine_deployfail.json"),
    );
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let err = p.create_vms(&spec(), 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(
        err.to_string()
            .contains("Unable to find service offering: 104"),
        "{err}"
    );
    assert!(fake.params("createTags").is_empty());
}

#[tokio::test]
async fn resource_limit_on_deploy_rolls_back_what_was_made() {
    let fake = create_fake();
    fake.on("listVirtualMachines", 200, EMPTY_VMS)
        .on(
            "deployVirtualMachine",
            200,
            fixture("libcloud/deployVirtualMachine_default.json"),
        )
        .on(
            "deployVirtualMachine",
            535,
            r#"{"deployvirtualmachineresponse":{"uuidList":[],"errorcode":535,"cserrorcode":4370,"errortext":"Maximum number of resources of type 'user_vm' for account name=admin in domain id=1 has been exceeded."}}"#,
        )
        .on(
            "destroyVirtualMachine",
            200,
            fixture("libcloud/destroyVirtualMachine_default.json"),
        )
        .on(
            "queryAsyncJobResult/17166",
            200,
            fixture("libcloud/queryAsyncJobResult_17166.json"),
        );
    let server = fake.start().await;
    let p = builder(&server).deploy_concurrency(1).build().unwrap();
    let err = p.create_vms(&spec(), 2).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "{err}");
    let destroyed = fake.params("destroyVirtualMachine");
    assert_eq!(
        destroyed.len(),
        1,
        "the VM made before the limit is rolled back"
    );
    assert_eq!(destroyed[0]["id"], "2602");
}

#[tokio::test]
async fn vm_still_starting_at_job_timeout_is_pending_not_failed() {
    let fake = create_fake();
    fake.on("listVirtualMachines", 200, listed_vm("Starting"))
        .on("listVirtualMachines?keyword", 200, listed_vm("Starting"))
        .on(
            "deployVirtualMachine",
            200,
            fixture("libcloud/deployVirtualMachine_default.json"),
        );
    let server = fake.start().await;
    let p = builder(&server)
        .job_timeout(Duration::from_millis(30))
        .build()
        .unwrap();
    let ids = p.create_vms(&spec(), 1).await.unwrap();
    assert_eq!(ids, vec![VmId::new("2602")]);
    let vms = p.list_vms(&VmFilter::key(&spec().key)).await.unwrap();
    assert_eq!(vms[0].state, VmState::Pending);
}

#[tokio::test]
async fn untagged_at_timeout_with_pending_tag_job_is_a_temporary_timeout() {
    let fake = create_fake();
    fake.on("listVirtualMachines", 200, EMPTY_VMS)
        .on(
            "deployVirtualMachine",
            200,
            fixture("libcloud/deployVirtualMachine_default.json"),
        )
        .on(
            "queryAsyncJobResult/createtagsjob",
            200,
            r#"{"queryasyncjobresultresponse":{"jobid":"createtagsjob","jobstatus":0}}"#,
        )
        .on(
            "queryAsyncJobResult/17164",
            200,
            r#"{"queryasyncjobresultresponse":{"jobid":17164,"jobstatus":0}}"#,
        );
    let server = fake.start().await;
    let p = builder(&server)
        .job_timeout(Duration::from_millis(30))
        .build()
        .unwrap();
    let err = p.create_vms(&spec(), 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_temporary());
    assert!(
        fake.params("destroyVirtualMachine").is_empty(),
        "unknown is not failure"
    );
}

#[tokio::test]
async fn deploy_reply_lost_to_a_timeout_is_resolved_by_name() {
    let fake = create_fake();
    let untagged = listed_vm("Running").replace("\"tags\":[", "\"oldtags\":[");
    fake.on("listVirtualMachines", 200, EMPTY_VMS)
        .on("listVirtualMachines", 200, listed_vm("Running"))
        .on_slow(
            "deployVirtualMachine",
            Duration::from_millis(600),
            200,
            fixture("libcloud/deployVirtualMachine_default.json"),
        );
    fake.only("listVirtualMachines?keyword", 200, EMPTY_VMS).on(
        "listVirtualMachines?keyword",
        200,
        untagged,
    );
    let server = fake.start().await;
    let p = builder(&server)
        .request_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let ids = p.create_vms(&spec(), 1).await.unwrap();
    assert_eq!(ids, vec![VmId::new("2602")], "adopted, not failed");
    assert_eq!(
        fake.params("deployVirtualMachine").len(),
        1,
        "no second deploy"
    );
    let lookups = fake.params("listVirtualMachines?keyword");
    assert_eq!(
        lookups[1]["keyword"], "ic-c1-abc-0",
        "looked up by its name"
    );
    assert_eq!(fake.params("createTags")[0]["resourceids"], "2602");
}

#[tokio::test]
async fn deploy_timeout_with_no_vm_is_a_temporary_timeout() {
    let fake = create_fake();
    fake.on("listVirtualMachines", 200, EMPTY_VMS).on_slow(
        "deployVirtualMachine",
        Duration::from_millis(600),
        200,
        fixture("libcloud/deployVirtualMachine_default.json"),
    );
    let server = fake.start().await;
    let p = builder(&server)
        .request_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = p.create_vms(&spec(), 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_temporary());
    assert!(fake.params("destroyVirtualMachine").is_empty());
}

#[tokio::test]
async fn vm_that_cannot_be_tagged_is_removed_not_left_unseen() {
    let fake = create_fake();
    fake.on("listVirtualMachines", 200, EMPTY_VMS)
        .on(
            "deployVirtualMachine",
            200,
            fixture("libcloud/deployVirtualMachine_default.json"),
        )
        .on(
            "destroyVirtualMachine",
            200,
            fixture("libcloud/destroyVirtualMachine_default.json"),
        )
        .on(
            "queryAsyncJobResult/17166",
            200,
            fixture("libcloud/queryAsyncJobResult_17166.json"),
        );
    fake.only(
        "createTags",
        431,
        r#"{"createtagsresponse":{"uuidList":[],"errorcode":431,"cserrorcode":4350,"errortext":"Value for the key intercloud-cluster is too long"}}"#,
    );
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let err = p.create_vms(&spec(), 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    assert!(err.to_string().contains("createTags"), "{err}");
    assert_eq!(err.resource(), Some("ic-c1-abc"));
    assert_eq!(fake.params("destroyVirtualMachine")[0]["id"], "2602");
}

#[tokio::test]
async fn delete_waits_for_destroy_job_and_sends_expunge() {
    let fake = FakeCloud::default();
    fake.on(
        "destroyVirtualMachine",
        200,
        fixture("libcloud/destroyVirtualMachine_default.json"),
    )
    .on(
        "queryAsyncJobResult/17166",
        200,
        r#"{"queryasyncjobresultresponse":{"jobid":17166,"jobstatus":0}}"#,
    )
    .on(
        "queryAsyncJobResult/17166",
        200,
        fixture("libcloud/queryAsyncJobResult_17166.json"),
    );
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    p.delete_vm(&VmId::new("2602")).await.unwrap();
    assert_eq!(
        raw_requests(&server, "destroyVirtualMachine").await,
        vec!["apiKey=fnord&command=destroyVirtualMachine&expunge=true&id=2602&response=json&signature=iMQbll4YZAansscPq9aKHiCalYY%3D"]
    );
    assert_eq!(fake.params("queryAsyncJobResult/17166").len(), 2);
}

#[tokio::test]
async fn delete_of_missing_vm_is_ok() {
    let fake = FakeCloud::default();
    let gone = r#"{"destroyvirtualmachineresponse":{"uuidList":[],"errorcode":431,"cserrorcode":4350,"errortext":"Unable to execute API command destroyvirtualmachine due to invalid value. Invalid parameter id value=999999 due to incorrect long value format, or entity does not exist or due to incorrect parameter annotation for the field in api cmd class."}}"#;
    fake.on("destroyVirtualMachine", 431, gone).on(
        "listVirtualMachines?id",
        431,
        gone.replace("destroyvirtualmachine", "listvirtualmachines"),
    );
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    p.delete_vm(&VmId::new("999999")).await.unwrap();
}

#[tokio::test]
async fn expunge_refused_falls_back_to_plain_destroy() {
    let fake = FakeCloud::default();
    fake.on(
        "destroyVirtualMachine",
        531,
        r#"{"destroyvirtualmachineresponse":{"uuidList":[],"errorcode":531,"cserrorcode":4365,"errortext":"Parameter expunge can be passed by Admin only. Or when the allow.user.expunge.recover.vm key is set."}}"#,
    )
    .on(
        "destroyVirtualMachine",
        200,
        fixture("libcloud/destroyVirtualMachine_default.json"),
    )
    .on(
        "queryAsyncJobResult/17166",
        200,
        fixture("libcloud/queryAsyncJobResult_17166.json"),
    );
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    p.delete_vm(&VmId::new("2602")).await.unwrap();
    p.delete_vm(&VmId::new("2602")).await.unwrap();
    let calls = fake.params("destroyVirtualMachine");
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].get("expunge").map(String::as_str), Some("true"));
    assert_eq!(calls[1].get("expunge"), None);
    assert_eq!(calls[2].get("expunge"), None, "remembered");
}

#[tokio::test]
async fn capacity_reads_account_limits() {
    let fake = FakeCloud::default();
    fake.on(
        "listAccounts",
        200,
        r#"{"listaccountsresponse":{"count":1,"account":[{"id":"a","name":"admin","vmtotal":3,"vmlimit":"20","cputotal":6,"cpulimit":"Unlimited","memorytotal":3072,"memorylimit":"40960"}]}}"#,
    );
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let c = p.capacity().await.unwrap();
    assert_eq!(c.instances.available(), Some(17));
    assert_eq!(c.vcpus.max, None);
    assert_eq!(c.memory_mb.available(), Some(40960 - 3072));
}

#[tokio::test]
async fn unknown_template_and_empty_template_list() {
    let fake = create_fake();
    fake.on("listVirtualMachines", 200, EMPTY_VMS);
    fake.only(
        "listTemplates",
        200,
        fixture("libcloud/listTemplates_notemplates.json"),
    );
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let mut s = spec();
    s.image = Some(intercloud_core::ImageRef("no-such-template".into()));
    let err = p.create_vms(&s, 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    assert!(err.to_string().contains("no-such-template"), "{err}");
}

#[tokio::test]
async fn user_data_over_32_kib_is_refused_before_any_deploy() {
    let fake = create_fake();
    fake.on("listVirtualMachines", 200, EMPTY_VMS);
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let mut s = spec();
    s.user_data = Some(UserData("x".repeat(32 * 1024 + 1)));
    let err = p.create_vms(&s, 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(fake.params("deployVirtualMachine").is_empty());
    assert_eq!(p.capabilities().max_user_data, 32 * 1024);
}

#[tokio::test]
async fn wrong_secret_is_unauthenticated_without_leaking() {
    let fake = FakeCloud::default();
    fake.on("listZones", 200, fixture(ZONES));
    let server = fake.start().await;
    let p = builder(&server)
        .credentials(intercloud_core::Credentials::cloudstack(
            common::API_KEY,
            "WRONG-S3CRET-value",
        ))
        .build()
        .unwrap();
    let err = p.list_vms(&VmFilter::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    let text = format!("{err} {err:?}");
    assert!(text.contains("listZones"), "{text}");
    assert!(text.contains("unable to verify user credentials"), "{text}");
    assert!(!text.contains("WRONG-S3CRET"), "{text}");
    assert!(!text.contains("signature="), "{text}");
}

#[tokio::test]
async fn signature_v3_adds_expires_from_the_clock() {
    let fake = FakeCloud::default();
    fake.on("listZones", 200, fixture(ZONES));
    let server = fake.start().await;
    let p = builder(&server)
        .signature_expiry(Duration::from_secs(600))
        .clock(|| std::time::UNIX_EPOCH + Duration::from_secs(1_893_456_000 - 600))
        .build()
        .unwrap();
    p.zone_id().await.unwrap();
    assert_eq!(
        raw_requests(&server, "listZones").await,
        vec!["apiKey=fnord&command=listZones&expires=2030-01-01T00%3A00%3A00%2B0000&page=1&pagesize=500&response=json&signatureVersion=3&signature=7bQr4zrXuj%2BDDErcAWbUoSZ1dlk%3D"]
    );
}

#[tokio::test]
async fn unreachable_endpoint_is_unavailable_and_temporary() {
    let p = intercloud_cloudstack::CloudStackBuilder::new()
        .endpoint("http://127.0.0.1:9/client/api")
        .credentials(intercloud_core::Credentials::cloudstack("k", "S3CRET-x"))
        .zone("z")
        .request_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let err = p.offerings().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_temporary());
    let text = format!("{err} {err:?}");
    assert!(!text.contains("signature"), "{text}");
    assert!(!text.contains("S3CRET"), "{text}");
    assert_eq!(err.site().map(|s| s.as_str()), Some("127.0.0.1"));
}

/// The VM and job of cloudstack-go's recorded `startVirtualMachine`.
const GO_VM: &str = "915653c4-298b-4d74-bdee-4ced282114f1";
const GO_START_JOB: &str = "468d69d7-f327-4105-bec2-0e43107ae956";

/// The immediate reply of an async command: the job id (shape of libcloud's
/// `destroyVirtualMachine_default.json`), for the recorded start job.
fn start_reply() -> String {
    format!(r#"{{"startvirtualmachineresponse":{{"jobid":"{GO_START_JOB}"}}}}"#)
}

/// cloudstack-go's recorded listing (one VM, `GO_VM`) with its state set to `state`.
fn go_listing(state: &str) -> String {
    let mut doc: serde_json::Value = serde_json::from_str(&go_fixture(
        "cloudstack-go/VirtualMachineService.json",
        "listVirtualMachines",
        "listvirtualmachinesresponse",
    ))
    .unwrap();
    doc["listvirtualmachinesresponse"]["virtualmachine"][0]["state"] = state.into();
    doc.to_string()
}

/// A 431 refusal as CloudStack words an id naming no VM (the text of
/// `delete_of_missing_vm_is_ok`'s recorded answer, under the start command).
const START_431: &str = r#"{"startvirtualmachineresponse":{"uuidList":[],"errorcode":431,"cserrorcode":4350,"errortext":"Unable to execute API command startvirtualmachine due to invalid value. Invalid parameter id value=999999 due to incorrect long value format, or entity does not exist or due to incorrect parameter annotation for the field in api cmd class."}}"#;

#[tokio::test]
async fn start_waits_for_the_start_job_of_the_recorded_reply() {
    let fake = FakeCloud::default();
    let job_route = format!("queryAsyncJobResult/{GO_START_JOB}");
    fake.on("startVirtualMachine", 200, start_reply())
        .on(
            &job_route,
            200,
            format!(
                r#"{{"queryasyncjobresultresponse":{{"jobid":"{GO_START_JOB}","jobstatus":0}}}}"#
            ),
        )
        .on(
            &job_route,
            200,
            go_fixture(
                "cloudstack-go/VirtualMachineService.json",
                "startVirtualMachine",
                "queryasyncjobresultresponse",
            ),
        );
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    p.start_vm(&VmId::new(GO_VM)).await.unwrap();
    let calls = fake.params("startVirtualMachine");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["id"], GO_VM);
    assert_eq!(
        fake.params(&job_route).len(),
        2,
        "polled until the job ended"
    );
    let raw = raw_requests(&server, "startVirtualMachine").await;
    assert!(raw[0].contains("command=startVirtualMachine"), "{raw:?}");
    assert_eq!(
        fake.calls().last().map(String::as_str),
        Some(job_route.as_str())
    );
}

#[tokio::test]
async fn start_of_a_missing_vm_is_not_found() {
    let fake = FakeCloud::default();
    fake.on("startVirtualMachine", 431, START_431).on(
        "listVirtualMachines?id",
        431,
        START_431.replace("startvirtualmachine", "listvirtualmachines"),
    );
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let e = p.start_vm(&VmId::new("999999")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(e.resource(), Some("999999"));
    assert!(e.to_string().contains("hokkaido"), "names the site: {e}");
}

#[tokio::test]
async fn start_refused_for_a_running_vm_is_ok_and_for_a_broken_one_is_kept() {
    for (state, ok) in [("Running", true), ("Starting", true), ("Error", false)] {
        let fake = FakeCloud::default();
        fake.on("startVirtualMachine", 431, START_431).on(
            "listVirtualMachines?id",
            200,
            go_listing(state),
        );
        let server = fake.start().await;
        let p = builder(&server).build().unwrap();
        let r = p.start_vm(&VmId::new(GO_VM)).await;
        assert_eq!(r.is_ok(), ok, "{state}: {r:?}");
        if let Err(e) = r {
            assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{state}: {e}");
        }
        assert_eq!(fake.params("listVirtualMachines?id")[0]["id"], GO_VM);
    }
}

#[tokio::test]
async fn failed_start_job_reports_the_clouds_error() {
    let fake = FakeCloud::default();
    fake.on("startVirtualMachine", 200, start_reply()).on(
        &format!("queryAsyncJobResult/{GO_START_JOB}"),
        200,
        format!(
            r#"{{"queryasyncjobresultresponse":{{"jobid":"{GO_START_JOB}","jobstatus":2,"jobresultcode":530,"jobresulttype":"object","jobresult":{{"errorcode":533,"errortext":"Insufficient capacity"}}}}}}"#
        ),
    );
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let e = p.start_vm(&VmId::new(GO_VM)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded, "{e}");
    assert!(e.to_string().contains("Insufficient capacity"), "{e}");
    assert_eq!(e.resource(), Some(GO_VM));
}
