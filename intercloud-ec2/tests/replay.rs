//! Wire-level tests: the provider against a loopback mock server answering with the
//! recorded EC2 responses of `tests/fixtures/ec2` (libcloud's AWS-shaped files and
//! moto 5.2.5 captures), including errors and broken answers.

mod common;

use intercloud_core::{
    CloudProvider, ErrorKind, IdempotencyKey, ImageRef, UserData, VmFilter, VmId, VmSpec, VmState,
    TAG_CLUSTER, TAG_INDEX, TAG_KEY, TAG_ROLE,
};
use intercloud_ec2::{Ec2Builder, Ec2Provider};
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use common::{answer, fixture, sent};

const SECRET: &str = "S3CRET-replay-secret-key";
const TOKEN: &str = "T0KEN-replay-session";

fn provider(server: &MockServer) -> Ec2Provider {
    Ec2Builder::aws()
        .site("replay")
        .region("us-east-1")
        .endpoint(server.uri())
        .credentials(intercloud_core::Credentials::ec2(
            "AKIDREPLAY",
            SECRET,
            Some(TOKEN.into()),
        ))
        .clock(|| time::macros::datetime!(2026-11-25 16:30:00 UTC))
        .build()
        .expect("provider")
}

fn body(r: &Request) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

const EMPTY_DESCRIBE: &str = "<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>x</requestId><reservationSet/></DescribeInstancesResponse>";

fn spec(key: &str) -> VmSpec {
    let mut s = VmSpec::new(
        "c1",
        "worker",
        IdempotencyKey::new(key).unwrap(),
        "S",
        "t3.micro",
    );
    s.image = Some(ImageRef("ami-1e749f67".into()));
    s.user_data = Some(UserData("#!/bin/sh\necho hi\n".into()));
    s
}

/// The actions of every request the server received, in order.
async fn actions(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| {
            body(r)
                .split('&')
                .next()
                .unwrap_or_default()
                .trim_start_matches("Action=")
                .to_owned()
        })
        .collect()
}

/// Answers `action` with `body` once, before any other answer for it.
async fn answer_once(server: &MockServer, action: &str, body: String) {
    Mock::given(method("POST"))
        .and(body_string_contains(format!("Action={action}&")))
        .respond_with(ResponseTemplate::new(200).set_body_string(body))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn batch_create_is_one_run_instances_with_an_index_base() {
    let server = MockServer::start().await;
    answer(&server, "DescribeInstances", 200, EMPTY_DESCRIBE.into()).await;
    answer(
        &server,
        "RunInstances",
        200,
        fixture("moto-5.2.5/run_instances.xml"),
    )
    .await;
    let p = provider(&server);
    let ids = p.create_vms(&spec("ic-tok-1"), 2).await.expect("create");
    assert_eq!(
        ids,
        vec![
            VmId::new("i-0e9671ce3ce5c9f58"),
            VmId::new("i-7e4813c7c25e6957c")
        ],
        "ids by amiLaunchIndex"
    );

    let lookups = sent(&server, "DescribeInstances").await;
    assert_eq!(lookups.len(), 1, "one key lookup before creating");
    assert!(lookups[0].contains("Filter.1.Name=tag%3Aintercloud-key&Filter.1.Value.1=ic-tok-1"));
    let runs = sent(&server, "RunInstances").await;
    assert_eq!(runs.len(), 1, "one RunInstances for the whole group");
    let run = &runs[0];
    for part in [
        "ImageId=ami-1e749f67",
        "InstanceType=t3.micro",
        "MinCount=2&MaxCount=2",
        "ClientToken=ic-tok-1",
        "UserData=IyEvYmluL3NoCmVjaG8gaGkK",
        "TagSpecification.1.ResourceType=instance",
        "Tag.1.Key=intercloud-cluster&TagSpecification.1.Tag.1.Value=c1",
        "Tag.2.Key=intercloud-index-base&TagSpecification.1.Tag.2.Value=0",
        "Tag.3.Key=intercloud-key&TagSpecification.1.Tag.3.Value=ic-tok-1",
        "Tag.4.Key=intercloud-role&TagSpecification.1.Tag.4.Value=worker",
    ] {
        assert!(run.contains(part), "RunInstances body lacks {part}: {run}");
    }
    assert!(
        !run.contains("intercloud-index&") && !run.contains("Key=Name"),
        "index and name differ per VM: {run}"
    );
    assert_eq!(
        actions(&server).await,
        ["DescribeInstances", "RunInstances"],
        "no CreateTags"
    );
    // Signed with SigV4 for ec2, session token included.
    let reqs = server.received_requests().await.unwrap_or_default();
    let auth = reqs[0]
        .headers
        .get("authorization")
        .expect("auth")
        .to_str()
        .unwrap();
    assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDREPLAY/20261125/us-east-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="), "{auth}");
}

/// Recorded on moto: RunInstances of 5 with `intercloud-index-base` 0, then
/// DescribeInstances by key. The create sends one request beyond the key lookup; the
/// listing derives indices 0..5 and names `kb5-0..kb5-4` from `amiLaunchIndex`; a
/// retried create finds them all and launches nothing.
#[tokio::test]
async fn create_of_five_is_one_run_instances_and_listing_derives_indices() {
    let server = MockServer::start().await;
    answer_once(&server, "DescribeInstances", EMPTY_DESCRIBE.into()).await;
    answer(
        &server,
        "DescribeInstances",
        200,
        fixture("moto-5.2.5-intercloud/describe_instances_base0.xml"),
    )
    .await;
    answer(
        &server,
        "RunInstances",
        200,
        fixture("moto-5.2.5-intercloud/run_instances_base0.xml"),
    )
    .await;
    let p = provider(&server);
    let mut s = spec("kb5");
    s.cluster = "c5".into();
    let ids = p.create_vms(&s, 5).await.expect("create");
    assert_eq!(
        ids,
        [
            "i-a643346b6bc3af619",
            "i-90bd1a769a87d2167",
            "i-b6d492785a776c746",
            "i-35e1572b04e41c36a",
            "i-0da9e3b4d07c8b53f"
        ]
        .map(VmId::new)
    );
    assert_eq!(
        actions(&server).await,
        ["DescribeInstances", "RunInstances"],
        "exactly one request beyond the key lookup"
    );
    let run = &sent(&server, "RunInstances").await[0];
    assert!(run.contains("MinCount=5&MaxCount=5"), "{run}");
    assert!(run.contains("ClientToken=kb5&"), "{run}");
    assert!(
        run.contains("Tag.2.Key=intercloud-index-base&TagSpecification.1.Tag.2.Value=0&"),
        "{run}"
    );

    let mut vms = p.list_vms(&VmFilter::key(&s.key)).await.expect("list");
    vms.sort_by_key(|v| v.index());
    assert_eq!(
        vms.iter().map(|v| v.index()).collect::<Vec<_>>(),
        (0..5).map(Some).collect::<Vec<_>>()
    );
    assert_eq!(
        vms.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
        ["kb5-0", "kb5-1", "kb5-2", "kb5-3", "kb5-4"]
    );
    assert_eq!(vms.iter().map(|v| v.id.clone()).collect::<Vec<_>>(), ids);
    assert!(vms
        .iter()
        .all(|v| v.cluster() == Some("c5") && v.key() == Some("kb5")));

    // Selecting by index works on the derived index (checked client-side).
    let third = p
        .list_vms(&VmFilter::key(&s.key).tag(TAG_INDEX, "3"))
        .await
        .expect("list by index");
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].id, VmId::new("i-35e1572b04e41c36a"));
    let described = sent(&server, "DescribeInstances").await;
    assert!(
        !described.last().unwrap().contains("tag%3Aintercloud-index"),
        "a derived index is not a server-side tag: {}",
        described.last().unwrap()
    );

    // A retried create finds the five through their key and derived indices.
    let again = p.create_vms(&s, 5).await.expect("retry");
    assert_eq!(again, ids);
    assert_eq!(sent(&server, "RunInstances").await.len(), 1);
    assert!(sent(&server, "CreateTags").await.is_empty());
}

/// Recorded on moto: indices 0 and 1 exist (index base 0); create(…, 4) launches the
/// contiguous range 2..4 as one RunInstances with index base 2 and its own token.
#[tokio::test]
async fn top_up_of_a_contiguous_range_launches_with_its_base() {
    let server = MockServer::start().await;
    answer_once(
        &server,
        "DescribeInstances",
        fixture("moto-5.2.5-intercloud/describe_instances_topup_before.xml"),
    )
    .await;
    answer(
        &server,
        "DescribeInstances",
        200,
        fixture("moto-5.2.5-intercloud/describe_instances_topup_after.xml"),
    )
    .await;
    answer(
        &server,
        "RunInstances",
        200,
        fixture("moto-5.2.5-intercloud/run_instances_topup.xml"),
    )
    .await;
    let p = provider(&server);
    let s = spec("kt4");
    let ids = p.create_vms(&s, 4).await.expect("top-up");
    assert_eq!(
        ids,
        [
            "i-6a06fb856aabf897e",
            "i-e0820b22dff3be8eb",
            "i-681370fe2417c704d",
            "i-74a9aa50af7ce6929"
        ]
        .map(VmId::new)
    );
    assert_eq!(
        actions(&server).await,
        ["DescribeInstances", "RunInstances"]
    );
    let run = &sent(&server, "RunInstances").await[0];
    assert!(run.contains("MinCount=2&MaxCount=2"), "{run}");
    assert!(
        run.contains("Tag.2.Key=intercloud-index-base&TagSpecification.1.Tag.2.Value=2&"),
        "{run}"
    );
    assert!(!run.contains("ClientToken=kt4&"), "own token: {run}");

    let mut vms = p.list_vms(&VmFilter::key(&s.key)).await.expect("list");
    vms.sort_by_key(|v| v.index());
    assert_eq!(
        vms.iter()
            .map(|v| (v.index(), v.name.as_str()))
            .collect::<Vec<_>>(),
        [
            (Some(0), "kt4-0"),
            (Some(1), "kt4-1"),
            (Some(2), "kt4-2"),
            (Some(3), "kt4-3")
        ]
    );
    assert_eq!(vms.iter().map(|v| v.id.clone()).collect::<Vec<_>>(), ids);
}

/// A top-up whose missing indices have a gap (0 and 2 missing, 1 alive) cannot share
/// a base: common tags at launch, then one CreateTags per instance.
#[tokio::test]
async fn top_up_with_a_gap_tags_each_instance() {
    let server = MockServer::start().await;
    let one = fixture("moto-5.2.5-intercloud/describe_instances_topup_before.xml").replacen(
        "<item><key>intercloud-index-base</key><value>0</value></item>",
        "<item><key>intercloud-index</key><value>1</value></item>",
        1,
    );
    // Keep only the first instance (now explicitly index 1).
    let cut_from = one
        .find("</item><item><architecture>")
        .expect("two instances");
    let cut_to = one.find("</instancesSet>").expect("instancesSet");
    let one = format!("{}</item>{}", &one[..cut_from], &one[cut_to..]);
    answer(&server, "DescribeInstances", 200, one).await;
    answer(
        &server,
        "RunInstances",
        200,
        fixture("moto-5.2.5-intercloud/run_instances_topup.xml"),
    )
    .await;
    answer(
        &server,
        "CreateTags",
        200,
        fixture("moto-5.2.5/create_tags.xml"),
    )
    .await;
    let ids = provider(&server)
        .create_vms(&spec("kt4"), 3)
        .await
        .expect("top-up");
    assert_eq!(
        ids,
        [
            "i-681370fe2417c704d",
            "i-6a06fb856aabf897e",
            "i-74a9aa50af7ce6929"
        ]
        .map(VmId::new)
    );
    let run = &sent(&server, "RunInstances").await[0];
    assert!(run.contains("MinCount=2&MaxCount=2"), "{run}");
    assert!(!run.contains("intercloud-index"), "{run}");
    let mut tags = sent(&server, "CreateTags").await;
    tags.sort();
    assert_eq!(
        tags,
        [
            "Action=CreateTags&Version=2016-11-15&ResourceId.1=i-681370fe2417c704d&Tag.1.Key=Name&Tag.1.Value=kt4-0&Tag.2.Key=intercloud-index&Tag.2.Value=0",
            "Action=CreateTags&Version=2016-11-15&ResourceId.1=i-74a9aa50af7ce6929&Tag.1.Key=Name&Tag.1.Value=kt4-2&Tag.2.Key=intercloud-index&Tag.2.Value=2",
        ]
    );
}

/// An answer without `amiLaunchIndex` cannot be indexed by the base: each instance
/// gets its explicit index (answer order) and `Name` by CreateTags, which win over
/// the base tag it carries.
#[tokio::test]
async fn answer_without_launch_index_falls_back_to_per_instance_tags() {
    let server = MockServer::start().await;
    answer(&server, "DescribeInstances", 200, EMPTY_DESCRIBE.into()).await;
    let mut run = fixture("moto-5.2.5-intercloud/run_instances_base0.xml");
    for i in 0..5 {
        run = run.replace(&format!("<amiLaunchIndex>{i}</amiLaunchIndex>"), "");
    }
    assert!(!run.contains("amiLaunchIndex"));
    answer(&server, "RunInstances", 200, run).await;
    answer(
        &server,
        "CreateTags",
        200,
        fixture("moto-5.2.5/create_tags.xml"),
    )
    .await;
    let ids = provider(&server)
        .create_vms(&spec("kb5"), 5)
        .await
        .expect("create");
    assert_eq!(ids[3], VmId::new("i-35e1572b04e41c36a"), "answer order");
    let run = &sent(&server, "RunInstances").await[0];
    assert!(run.contains("intercloud-index-base"), "{run}");
    let tags = sent(&server, "CreateTags").await;
    assert_eq!(tags.len(), 5, "one per instance");
    assert!(tags.contains(&"Action=CreateTags&Version=2016-11-15&ResourceId.1=i-35e1572b04e41c36a&Tag.1.Key=Name&Tag.1.Value=kb5-3&Tag.2.Key=intercloud-index&Tag.2.Value=3".to_owned()), "{tags:?}");
}

#[tokio::test]
async fn single_create_puts_index_in_tag_specification() {
    let server = MockServer::start().await;
    answer(&server, "DescribeInstances", 200, EMPTY_DESCRIBE.into()).await;
    answer(
        &server,
        "RunInstances",
        200,
        fixture("libcloud/run_instances_idem.xml"),
    )
    .await;
    let p = provider(&server);
    let ids = p.create_vms(&spec("k1"), 1).await.expect("create");
    assert_eq!(ids, vec![VmId::new("i-2ba64342")]);
    let run = &sent(&server, "RunInstances").await[0];
    assert!(
        run.contains("Key=Name&TagSpecification.1.Tag.1.Value=k1-0"),
        "{run}"
    );
    assert!(
        run.contains("intercloud-index&TagSpecification.1.Tag.3.Value=0"),
        "{run}"
    );
    assert!(
        sent(&server, "CreateTags").await.is_empty(),
        "no second call"
    );
}

#[tokio::test]
async fn retried_create_finds_the_key_tag_and_creates_only_what_is_missing() {
    // The lookup finds index 0 of the key; only index 1 is launched, with its own token.
    let server = MockServer::start().await;
    let found = fixture("moto-5.2.5-intercloud/describe_instances_page2.xml")
        .replace(
            "<tagSet><item><key>intercloud-cluster</key><value>pg</value></item></tagSet>",
            "<tagSet><item><key>intercloud-key</key><value>k2</value></item><item><key>intercloud-index</key><value>0</value></item></tagSet>",
        )
        .replace("<nextToken>", "<ignored>")
        .replace("</nextToken>", "</ignored>");
    answer(&server, "DescribeInstances", 200, found).await;
    answer(
        &server,
        "RunInstances",
        200,
        fixture("libcloud/run_instances.xml"),
    )
    .await;
    let p = provider(&server);
    let ids = p.create_vms(&spec("k2"), 2).await.expect("create");
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[1], VmId::new("i-2ba64342"));
    let run = &sent(&server, "RunInstances").await[0];
    assert!(run.contains("MinCount=1&MaxCount=1"), "{run}");
    assert!(
        !run.contains("ClientToken=k2&"),
        "a top-up has its own token: {run}"
    );
    assert!(
        run.contains("Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=k2-1"),
        "{run}"
    );
}

#[tokio::test]
async fn untagged_instances_of_the_key_are_adopted() {
    // An attempt died after RunInstances: two instances carry the key, no index.
    let server = MockServer::start().await;
    let found = fixture("moto-5.2.5/describe_instances_tag_filter.xml").replace(
        "<tagSet><item><key>intercloud:cluster</key><value>c1</value></item></tagSet>",
        "<tagSet><item><key>intercloud-key</key><value>k3</value></item></tagSet>",
    );
    answer(&server, "DescribeInstances", 200, found).await;
    answer(
        &server,
        "CreateTags",
        200,
        fixture("libcloud/create_tags.xml"),
    )
    .await;
    let p = provider(&server);
    let ids = p.create_vms(&spec("k3"), 2).await.expect("create");
    assert_eq!(
        ids,
        vec![
            VmId::new("i-0e9671ce3ce5c9f58"),
            VmId::new("i-7e4813c7c25e6957c")
        ]
    );
    assert!(
        sent(&server, "RunInstances").await.is_empty(),
        "nothing launched"
    );
    assert_eq!(sent(&server, "CreateTags").await.len(), 2);
}

#[tokio::test]
async fn list_reads_moto_and_libcloud_answers_and_follows_next_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("NextToken=r-aa38a9dd2e843fb38"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture(
            "moto-5.2.5-intercloud/describe_instances_page2.xml",
        )))
        .with_priority(1)
        .mount(&server)
        .await;
    answer(
        &server,
        "DescribeInstances",
        200,
        fixture("moto-5.2.5-intercloud/describe_instances_page1.xml"),
    )
    .await;
    let p = provider(&server);
    let vms = p.list_vms(&VmFilter::cluster("pg")).await.expect("list");
    assert_eq!(vms.len(), 2, "both pages: {vms:?}");
    let offerings: Vec<_> = vms
        .iter()
        .map(|v| v.offering.clone().unwrap_or_default())
        .collect();
    assert!(offerings.contains(&"t3.micro".into()) && offerings.contains(&"m5.large".into()));
    assert!(vms
        .iter()
        .all(|v| v.state == VmState::Running && v.cluster() == Some("pg")));
    assert!(vms
        .iter()
        .all(|v| v.private_ip.is_some() && v.public_ip.is_some()));
    let sent = sent(&server, "DescribeInstances").await;
    assert_eq!(sent.len(), 2);
    assert!(sent[0].contains("Filter.1.Name=tag%3Aintercloud-cluster&Filter.1.Value.1=pg&Filter.2.Name=instance-state-name&Filter.2.Value.1=pending&Filter.2.Value.2=running&Filter.2.Value.3=stopping&Filter.2.Value.4=stopped&MaxResults=1000"), "{}", sent[0]);

    // libcloud's AWS-shaped file: stopped instances, names from the Name tag or the id.
    let server = MockServer::start().await;
    answer(
        &server,
        "DescribeInstances",
        200,
        fixture("libcloud/describe_instances.xml"),
    )
    .await;
    let vms = provider(&server)
        .list_vms(&VmFilter::default())
        .await
        .expect("list");
    assert_eq!(vms.len(), 2);
    assert_eq!(vms[0].state, VmState::Stopped);
    assert_eq!(vms[0].name, "i-4382922a");
    assert_eq!(vms[1].name, "Test Server 2");
    assert_eq!(vms[1].private_ip.as_deref(), Some("172.16.9.139"));
}

#[tokio::test]
async fn list_applies_the_filter_to_what_the_server_returns() {
    let server = MockServer::start().await;
    let answer_body = fixture("moto-5.2.5/describe_instances_tag_filter.xml").replacen(
        "<tagSet><item><key>intercloud:cluster</key><value>c1</value></item></tagSet>",
        &format!("<tagSet><item><key>{TAG_CLUSTER}</key><value>c1</value></item><item><key>{TAG_ROLE}</key><value>worker</value></item><item><key>{TAG_KEY}</key><value>k</value></item><item><key>{TAG_INDEX}</key><value>4</value></item></tagSet>"),
        1,
    );
    answer(&server, "DescribeInstances", 200, answer_body).await;
    let p = provider(&server);
    let vms = p
        .list_vms(&VmFilter::cluster("c1").tag(TAG_ROLE, "worker"))
        .await
        .unwrap();
    assert_eq!(
        vms.len(),
        1,
        "a server ignoring a filter is corrected client-side"
    );
    assert_eq!(vms[0].index(), Some(4));
    assert_eq!(vms[0].name, "k-4");
    let by_id = p
        .list_vms(&VmFilter::default().ids([VmId::new("i-7e4813c7c25e6957c")]))
        .await
        .unwrap();
    assert_eq!(by_id.len(), 1);
    let sent = sent(&server, "DescribeInstances").await;
    assert!(
        sent[1].contains("Filter.1.Name=instance-id&Filter.1.Value.1=i-7e4813c7c25e6957c"),
        "{}",
        sent[1]
    );
}

#[tokio::test]
async fn delete_is_ok_when_terminated_or_missing() {
    for (status, file) in [
        (200, "moto-5.2.5/terminate_instances.xml"),
        (200, "libcloud/terminate_instances.xml"),
        (400, "moto-5.2.5/error_invalid_instance_id.xml"),
        (400, "moto-5.2.5-intercloud/error_terminate_missing.xml"),
    ] {
        let server = MockServer::start().await;
        answer(&server, "TerminateInstances", status, fixture(file)).await;
        provider(&server)
            .delete_vm(&VmId::new("i-0123456789abcdef0"))
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let sent = sent(&server, "TerminateInstances").await;
        assert_eq!(
            sent,
            vec![
                "Action=TerminateInstances&Version=2016-11-15&InstanceId.1=i-0123456789abcdef0"
                    .to_owned()
            ]
        );
    }
}

#[tokio::test]
async fn error_table_on_recorded_and_documented_errors() {
    let cases: Vec<(u16, String, ErrorKind, bool)> = vec![
        (401, fixture("moto-5.2.5/error_auth_failure.xml"), ErrorKind::Unauthenticated, false),
        (400, fixture("libcloud/run_instances_idem_mismatch.xml"), ErrorKind::AlreadyExists, false),
        (500, fixture("moto-5.2.5/error_not_implemented_create_vpn_connection_route.html"), ErrorKind::Unavailable, true),
        (503, "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>r</RequestID></Response>".into(), ErrorKind::RateLimited, true),
        (500, "<Response><Errors><Error><Code>InsufficientInstanceCapacity</Code><Message>We currently do not have sufficient t3.micro capacity.</Message></Error></Errors><RequestID>r</RequestID></Response>".into(), ErrorKind::QuotaExceeded, false),
        (400, "<Response><Errors><Error><Code>InstanceLimitExceeded</Code><Message>limit of 20</Message></Error></Errors><RequestID>r</RequestID></Response>".into(), ErrorKind::QuotaExceeded, false),
        (403, "<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized</Message></Error></Errors><RequestID>r</RequestID></Response>".into(), ErrorKind::PermissionDenied, false),
        (400, "<Response><Errors><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error></Errors><RequestID>r</RequestID></Response>".into(), ErrorKind::RateLimited, true),
        (502, String::new(), ErrorKind::Unavailable, true),
    ];
    for (status, body, kind, temporary) in cases {
        let server = MockServer::start().await;
        answer(&server, "DescribeInstances", 200, EMPTY_DESCRIBE.into()).await;
        answer(&server, "RunInstances", status, body.clone()).await;
        let e = provider(&server)
            .create_vms(&spec("kerr"), 2)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), kind, "HTTP {status} {body:.80}: {e}");
        assert_eq!(e.is_temporary(), temporary, "{e}");
        assert_eq!(e.site().map(|s| s.as_str()), Some("replay"));
        assert_eq!(e.resource(), Some("kerr"));
        assert_no_secret(&server, &format!("{e} {e:?}")).await;
    }
}

#[tokio::test]
async fn broken_success_answers_are_protocol_errors() {
    let run = fixture("moto-5.2.5/run_instances.xml");
    let cases = [
        ("truncated", run[..run.len() / 2].to_owned()),
        ("html", fixture("moto-5.2.5/error_not_implemented_create_vpn_connection_route.html")),
        ("s3 fallthrough", "<?xml version=\"1.0\"?><ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01\"><Buckets/></ListAllMyBucketsResult>".to_owned()),
        ("empty", String::new()),
        ("garbage", "{\"not\": \"xml\"}".to_owned()),
        ("missing id", "<RunInstancesResponse><instancesSet><item><instanceState><name>pending</name></instanceState></item><item><instanceId>i-2</instanceId></item></instancesSet></RunInstancesResponse>".to_owned()),
        ("short", fixture("libcloud/run_instances.xml")),
    ];
    for (what, body) in cases {
        let server = MockServer::start().await;
        answer(&server, "DescribeInstances", 200, EMPTY_DESCRIBE.into()).await;
        answer(&server, "RunInstances", 200, body).await;
        let e = provider(&server)
            .create_vms(&spec("kproto"), 2)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{what}: {e}");
        assert!(
            e.to_string().contains("RunInstances"),
            "{what}: names the call: {e}"
        );
        assert_no_secret(&server, &format!("{e} {e:?}")).await;
    }
}

/// Neither the secret, the token nor any signature sent appears in `text`.
async fn assert_no_secret(server: &MockServer, text: &str) {
    assert!(!text.contains(SECRET), "secret leaked: {text}");
    assert!(!text.contains(TOKEN), "token leaked: {text}");
    for r in server.received_requests().await.unwrap_or_default() {
        if let Some(a) = r.headers.get("authorization").and_then(|v| v.to_str().ok()) {
            let sig = a.rsplit("Signature=").next().unwrap_or_default();
            assert!(
                !sig.is_empty() && !text.contains(sig),
                "signature leaked: {text}"
            );
        }
    }
}

#[tokio::test]
async fn offerings_capacity_zones_and_images() {
    let server = MockServer::start().await;
    answer(
        &server,
        "DescribeInstanceTypes",
        200,
        fixture("moto-5.2.5-intercloud/describe_instance_types.xml"),
    )
    .await;
    answer(
        &server,
        "DescribeAccountAttributes",
        200,
        fixture("moto-5.2.5-intercloud/describe_account_attributes.xml"),
    )
    .await;
    answer(
        &server,
        "DescribeInstances",
        200,
        fixture("moto-5.2.5/describe_instances_tag_filter.xml"),
    )
    .await;
    answer(
        &server,
        "DescribeAvailabilityZones",
        200,
        fixture("moto-5.2.5/describe_availability_zones.xml"),
    )
    .await;
    answer(
        &server,
        "DescribeImages",
        200,
        fixture("libcloud/describe_images.xml"),
    )
    .await;
    let p = provider(&server);
    let offerings = p.offerings().await.expect("offerings");
    let micro = offerings
        .iter()
        .find(|o| o.name == "t3.micro")
        .expect("t3.micro");
    assert_eq!((micro.vcpus, micro.memory_mb), (Some(2), Some(1024)));
    assert_eq!(offerings.len(), 2);

    let cap = p.capacity().await.expect("capacity");
    assert_eq!(cap.instances.max, Some(20));
    assert_eq!(cap.instances.used, Some(2));
    assert_eq!(cap.instances.available(), Some(18));
    assert_eq!(cap.vcpus.used, Some(4), "2 x t3.micro");
    assert_eq!(cap.memory_mb.used, Some(2048));

    let zones = p.availability_zones().await.expect("zones");
    assert_eq!(zones.len(), 6);
    assert_eq!(zones[0].name, "us-east-1a");
    let images = p.images(&["self"], Some("Test*")).await.expect("images");
    assert_eq!(images.len(), 3);
    assert_eq!(images[0].id, "ami-57ba933a");
    assert_eq!(images[1].creation_date, None, "empty element is no date");
    let sent = sent(&server, "DescribeImages").await;
    assert_eq!(sent[0], "Action=DescribeImages&Version=2016-11-15&Owner.1=self&Filter.1.Name=name&Filter.1.Value.1=Test%2A");
}

#[tokio::test]
async fn libcloud_zone_file_and_eucalyptus_sigv2() {
    let server = MockServer::start().await;
    answer(
        &server,
        "DescribeAvailabilityZones",
        200,
        fixture("libcloud/describe_availability_zones.xml"),
    )
    .await;
    let p = Ec2Builder::eucalyptus()
        .endpoint(format!("{}/services/compute", server.uri()))
        .access_key("AKIDEUCA", SECRET)
        .signature_v2(intercloud_ec2::Sigv2Method::HmacSha256)
        .build()
        .unwrap();
    let zones = p.availability_zones().await.unwrap();
    assert_eq!(
        zones.iter().map(|z| z.name.as_str()).collect::<Vec<_>>(),
        ["eu-west-1a", "eu-west-1b"]
    );
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs[0].url.path(), "/services/compute");
    assert!(
        reqs[0].headers.get("authorization").is_none(),
        "SigV2 signs in the body"
    );
    let b = body(&reqs[0]);
    assert!(
        b.contains(
            "AWSAccessKeyId=AKIDEUCA&SignatureMethod=HmacSHA256&SignatureVersion=2&Timestamp="
        ),
        "{b}"
    );
    assert!(b.contains("&Signature="), "{b}");
}

fn eucalyptus(server: &MockServer) -> Ec2Provider {
    Ec2Builder::eucalyptus()
        .endpoint(format!("{}/services/compute", server.uri()))
        .access_key("AKIDEUCA", SECRET)
        .build()
        .unwrap()
}

/// Eucalyptus tags after launch: one CreateTags names every instance of the call
/// with the shared tags and the index base. While the new instances are not visible
/// yet, it is retried.
#[tokio::test]
async fn eucalyptus_batch_is_tagged_by_one_create_tags_retried_while_not_visible() {
    let server = MockServer::start().await;
    answer(&server, "DescribeInstances", 200, EMPTY_DESCRIBE.into()).await;
    answer(
        &server,
        "RunInstances",
        200,
        fixture("moto-5.2.5/run_instances.xml"),
    )
    .await;
    Mock::given(method("POST"))
        .and(body_string_contains("Action=CreateTags&"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_string(fixture("moto-5.2.5/error_invalid_instance_id.xml")),
        )
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    answer(
        &server,
        "CreateTags",
        200,
        fixture("moto-5.2.5/create_tags.xml"),
    )
    .await;
    let ids = eucalyptus(&server)
        .create_vms(&spec("keuca"), 2)
        .await
        .expect("create");
    assert_eq!(
        ids,
        [
            VmId::new("i-0e9671ce3ce5c9f58"),
            VmId::new("i-7e4813c7c25e6957c")
        ]
    );
    let run = &sent(&server, "RunInstances").await[0];
    assert!(!run.contains("TagSpecification"), "{run}");
    let tags = sent(&server, "CreateTags").await;
    assert_eq!(tags.len(), 3, "2 refused, then 1 accepted: {tags:?}");
    assert!(tags.iter().all(|t| t == "Action=CreateTags&Version=2016-11-15&ResourceId.1=i-0e9671ce3ce5c9f58&ResourceId.2=i-7e4813c7c25e6957c&Tag.1.Key=intercloud-cluster&Tag.1.Value=c1&Tag.2.Key=intercloud-index-base&Tag.2.Value=0&Tag.3.Key=intercloud-key&Tag.3.Value=keuca&Tag.4.Key=intercloud-role&Tag.4.Value=worker"), "{tags:?}");
}

#[tokio::test]
async fn eucalyptus_tags_after_launch_and_does_not_page() {
    let server = MockServer::start().await;
    answer(&server, "DescribeInstances", 200, EMPTY_DESCRIBE.into()).await;
    answer(
        &server,
        "RunInstances",
        200,
        fixture("libcloud/run_instances.xml"),
    )
    .await;
    answer(
        &server,
        "CreateTags",
        200,
        fixture("libcloud/create_tags.xml"),
    )
    .await;
    Mock::given(method("POST"))
        .and(body_string_contains("Action=DescribeAccountAttributes&"))
        .respond_with(ResponseTemplate::new(400).set_body_string(
            "<Response><Errors><Error><Code>InvalidAction</Code><Message>not supported</Message></Error></Errors></Response>",
        ))
        .mount(&server)
        .await;
    let p = eucalyptus(&server);
    let ids = p.create_vms(&spec("keuca"), 1).await.expect("create");
    assert_eq!(ids, vec![VmId::new("i-2ba64342")]);
    let run = &sent(&server, "RunInstances").await[0];
    assert!(!run.contains("TagSpecification"), "{run}");
    assert!(run.contains("ClientToken=keuca"), "{run}");
    let tags = &sent(&server, "CreateTags").await[0];
    assert_eq!(
        tags,
        "Action=CreateTags&Version=2016-11-15&ResourceId.1=i-2ba64342&Tag.1.Key=Name&Tag.1.Value=keuca-0&Tag.2.Key=intercloud-cluster&Tag.2.Value=c1&Tag.3.Key=intercloud-index&Tag.3.Value=0&Tag.4.Key=intercloud-key&Tag.4.Value=keuca&Tag.5.Key=intercloud-role&Tag.5.Value=worker"
    );
    let lookup = &sent(&server, "DescribeInstances").await[0];
    assert!(!lookup.contains("MaxResults"), "{lookup}");
    let cap = p
        .capacity()
        .await
        .expect("capacity without account attributes");
    assert_eq!(cap.instances.max, None);
    // SigV4 over the service path, scope region `eucalyptus`.
    let reqs = server.received_requests().await.unwrap();
    let auth = reqs[0]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(auth.contains("/eucalyptus/ec2/aws4_request"), "{auth}");
}

#[tokio::test]
async fn a_404_page_is_not_an_already_deleted_vm() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_string("<!DOCTYPE html><html><body><h1>Not Found</h1></body></html>"),
        )
        .mount(&server)
        .await;
    let e = provider(&server)
        .delete_vm(&VmId::new("i-0123456789abcdef0"))
        .await
        .expect_err("a wrong endpoint must not look like a deleted VM");
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(
        e.to_string().contains("is the endpoint an EC2 Query API"),
        "{e}"
    );
}

#[tokio::test]
async fn region_discovery_on_aws_only() {
    let server = MockServer::start().await;
    answer(
        &server,
        "DescribeRegions",
        200,
        fixture("moto-5.2.5/describe_regions.xml"),
    )
    .await;
    let regions = provider(&server).regions().await.expect("regions");
    assert_eq!(
        regions,
        vec![
            (
                "us-east-1".to_owned(),
                Some("ec2.us-east-1.amazonaws.com".to_owned())
            ),
            (
                "eu-west-1".to_owned(),
                Some("ec2.eu-west-1.amazonaws.com".to_owned())
            ),
        ]
    );
    let euca = Ec2Builder::eucalyptus()
        .endpoint(server.uri())
        .access_key("a", "b")
        .build()
        .unwrap();
    assert_eq!(
        euca.regions().await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

const START_ID: &str = "i-d88d48a8ddac99de9";

#[tokio::test]
async fn start_sends_start_instances_and_reads_moto_answers() {
    // From stopped, and from running (AWS and moto both accept it): Ok.
    for file in [
        "moto-5.2.1-start/start_instances.xml",
        "moto-5.2.1-start/start_instances_running.xml",
    ] {
        let server = MockServer::start().await;
        answer(&server, "StartInstances", 200, fixture(file)).await;
        provider(&server)
            .start_vm(&VmId::new(START_ID))
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            sent(&server, "StartInstances").await,
            vec![format!(
                "Action=StartInstances&Version=2016-11-15&InstanceId.1={START_ID}"
            )]
        );
        assert_eq!(actions(&server).await, ["StartInstances"]);
    }
}

#[tokio::test]
async fn start_of_a_missing_or_terminated_instance_is_not_found() {
    for (status, file) in [
        (400, "moto-5.2.1-start/error_start_missing.xml"),
        // moto answers 200 with previousState terminated.
        (200, "moto-5.2.1-start/start_instances_terminated.xml"),
    ] {
        let server = MockServer::start().await;
        answer(&server, "StartInstances", status, fixture(file)).await;
        let e = provider(&server)
            .start_vm(&VmId::new(START_ID))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{file}: {e}");
        assert_eq!(e.resource(), Some(START_ID), "{file}");
        assert!(e.to_string().contains("replay"), "names the site: {e}");
    }
}

/// AWS's refusal of a start in the wrong state, in the shape of moto's recorded error
/// (code as documented in the EC2 API error codes; the message is illustrative).
fn incorrect_state() -> String {
    fixture("moto-5.2.1-start/error_start_missing.xml")
        .replace("InvalidInstanceID.NotFound", "IncorrectInstanceState")
        .replace(
            "The instance ID 'i-0123456789abcdef0' does not exist",
            &format!("The instance '{START_ID}' is not in a state from which it can be started."),
        )
}

#[tokio::test]
async fn start_refused_in_the_wrong_state_asks_describe_instances() {
    // Described as stopped (moto's recording): the refusal stands, temporary.
    let server = MockServer::start().await;
    answer(&server, "StartInstances", 400, incorrect_state()).await;
    answer(
        &server,
        "DescribeInstances",
        200,
        fixture("moto-5.2.1-start/describe_instances_stopped.xml"),
    )
    .await;
    let e = provider(&server)
        .start_vm(&VmId::new(START_ID))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_temporary());
    assert_eq!(
        actions(&server).await,
        ["StartInstances", "DescribeInstances"]
    );
    let describe = sent(&server, "DescribeInstances").await;
    assert!(
        describe[0].contains(&format!(
            "Filter.1.Name=instance-id&Filter.1.Value.1={START_ID}"
        )),
        "{describe:?}"
    );

    // Not listed at all: gone.
    let server = MockServer::start().await;
    answer(&server, "StartInstances", 400, incorrect_state()).await;
    answer(&server, "DescribeInstances", 200, EMPTY_DESCRIBE.into()).await;
    let e = provider(&server)
        .start_vm(&VmId::new(START_ID))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

#[tokio::test]
async fn capabilities_include_start() {
    let server = MockServer::start().await;
    assert!(provider(&server).capabilities().start_vm);
    assert!(actions(&server).await.is_empty());
}
