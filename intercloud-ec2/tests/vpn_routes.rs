//! Route propagation of the EC2 VPN fabric against a mock server answering with
//! recorded moto 5.2.5 responses (`tests/fixtures/ec2/moto-5.2.5-intercloud`): the
//! guest subnet's route table (its own, else the VPC's main one), the wait for the
//! gateway's attachment before `EnableVgwRoutePropagation`, and its undoing on release.
//!
//! moto 5.2.5 does not implement Enable/DisableVgwRoutePropagation (its HTTP 500 is
//! recorded); their answers here have the shape of the EC2 API reference's example
//! (`<return>true</return>`).

mod common;

use std::time::Duration;

use intercloud_core::{ErrorKind, FabricKind, SiteContext, SiteEndpoint, VpnFabric};
use intercloud_ec2::Ec2VpnFabric;
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

use common::{fabric, fixture, sent};

const VPC: &str = "vpc-1e1c85aac7e9d1d67";
const VGW: &str = "vgw-098a09af5303c47f5";
const RTB: &str = "rtb-c95272fa78348f199";
const SUBNET: &str = "subnet-346085b929c3c0f68";

/// The fabric, polling the gateway's attachment quickly.
fn routes_fabric(server: &MockServer) -> Ec2VpnFabric {
    fabric(server).attach_wait(Duration::from_secs(10), Duration::from_millis(2))
}

fn ok_return(action: &str) -> String {
    format!(
        r#"<{action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>4f35a1b2-c2c3-4093-b51f-abb9d7311990</requestId><return>true</return></{action}Response>"#
    )
}

/// Answers requests whose body contains every one of `parts`.
async fn answer(server: &MockServer, parts: &[&str], status: u16, body: String) {
    answer_at(server, 5, parts, status, body).await;
}

/// The same, taking precedence over [`answer`]s (wiremock's priority 1 over 5).
async fn answer_first(server: &MockServer, parts: &[&str], status: u16, body: String) {
    answer_at(server, 1, parts, status, body).await;
}

async fn answer_at(server: &MockServer, priority: u8, parts: &[&str], status: u16, body: String) {
    let mut m = Mock::given(method("POST"));
    for p in parts {
        m = m.and(body_string_contains(*p));
    }
    m.respond_with(ResponseTemplate::new(status).set_body_string(body))
        .with_priority(priority)
        .mount(server)
        .await;
}

/// The bodies received, in order.
async fn bodies(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

fn ctx() -> SiteContext {
    SiteContext {
        site: "aws".into(),
        cluster: "vc".into(),
        overlay_subnet: "172.31.0.0/20".into(),
        local_cidrs: vec![],
        hints: [
            ("vpc_id".to_owned(), VPC.to_owned()),
            ("guest_network_id".to_owned(), SUBNET.to_owned()),
        ]
        .into(),
    }
}

const NO_VGW: &str = "<DescribeVpnGatewaysResponse><vpnGatewaySet/></DescribeVpnGatewaysResponse>";

/// A server where the gateway does not exist yet; AttachVpnGateway answers `state`.
async fn server_creating(attach_state: &str) -> MockServer {
    let server = MockServer::start().await;
    answer(
        &server,
        &["Action=DescribeVpnGateways&", "Filter.1.Name=tag"],
        200,
        NO_VGW.into(),
    )
    .await;
    answer(
        &server,
        &["Action=CreateVpnGateway&"],
        200,
        fixture("moto-5.2.5-intercloud/create_vpn_gateway_rt.xml"),
    )
    .await;
    answer(
        &server,
        &["Action=AttachVpnGateway&"],
        200,
        fixture("moto-5.2.5-intercloud/attach_vpn_gateway_rt.xml").replace(
            "<state>attached</state>",
            &format!("<state>{attach_state}</state>"),
        ),
    )
    .await;
    answer(
        &server,
        &["Action=DescribeRouteTables&", "association.subnet-id"],
        200,
        fixture("moto-5.2.5-intercloud/describe_route_tables_subnet.xml"),
    )
    .await;
    answer(
        &server,
        &["Action=DescribeRouteTables&", "association.main"],
        200,
        fixture("moto-5.2.5-intercloud/describe_route_tables_main.xml"),
    )
    .await;
    answer(
        &server,
        &["Action=EnableVgwRoutePropagation&"],
        200,
        ok_return("EnableVgwRoutePropagation"),
    )
    .await;
    server
}

/// Answers DescribeVpnGateways by id with the attachment `attaching` `n` times
/// (then the recorded `attached`, when `then_attached`).
async fn describe_by_id(server: &MockServer, n: u64, then_attached: bool) {
    let attaching = fixture("moto-5.2.5-intercloud/describe_vpn_gateways_by_id.xml")
        .replace("<state>attached</state>", "<state>attaching</state>");
    let by_id = format!("VpnGatewayId.1={VGW}");
    let mut m = Mock::given(method("POST"))
        .and(body_string_contains("Action=DescribeVpnGateways&"))
        .and(body_string_contains(by_id.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_string(attaching))
        .with_priority(1);
    if then_attached {
        m = m.up_to_n_times(n);
    }
    m.mount(server).await;
    if then_attached {
        answer(
            server,
            &["Action=DescribeVpnGateways&", by_id.as_str()],
            200,
            fixture("moto-5.2.5-intercloud/describe_vpn_gateways_by_id.xml"),
        )
        .await;
    }
}

#[tokio::test]
async fn prepare_site_propagates_into_the_main_table_of_a_default_subnet() {
    let server = server_creating("attached").await;
    let ep = routes_fabric(&server)
        .prepare_site(&ctx())
        .await
        .expect("prepare");
    assert_eq!(ep.resources["vpn_gateway"], VGW);
    assert_eq!(ep.resources["route_table"], RTB);
    assert_eq!(ep.kind, FabricKind::Ipsec);
    assert_eq!(
        sent(&server, "DescribeRouteTables").await,
        [
            format!("Action=DescribeRouteTables&Version=2016-11-15&Filter.1.Name=association.subnet-id&Filter.1.Value.1={SUBNET}"),
            format!("Action=DescribeRouteTables&Version=2016-11-15&Filter.1.Name=vpc-id&Filter.1.Value.1={VPC}&Filter.2.Name=association.main&Filter.2.Value.1=true"),
        ]
    );
    assert_eq!(
        sent(&server, "EnableVgwRoutePropagation").await,
        [format!(
            "Action=EnableVgwRoutePropagation&Version=2016-11-15&RouteTableId={RTB}&GatewayId={VGW}"
        )]
    );
    // Attach answered `attached`: no polling.
    assert_eq!(sent(&server, "DescribeVpnGateways").await.len(), 1);
}

#[tokio::test]
async fn prepare_site_uses_the_subnets_own_table_and_the_hint_first() {
    let server = server_creating("attached").await;
    // The subnet has its own table (shape of the recorded main table, another id).
    answer_first(
        &server,
        &["Action=DescribeRouteTables&", "association.subnet-id"],
        200,
        fixture("moto-5.2.5-intercloud/describe_route_tables_main.xml")
            .replace(RTB, "rtb-0a1b2c3d4e5f60718"),
    )
    .await;
    let ep = routes_fabric(&server)
        .prepare_site(&ctx())
        .await
        .expect("prepare");
    let tables = sent(&server, "DescribeRouteTables").await;
    assert_eq!(tables.len(), 1, "no main-table lookup: {tables:?}");
    assert_eq!(ep.resources["route_table"], "rtb-0a1b2c3d4e5f60718");
    assert!(sent(&server, "EnableVgwRoutePropagation").await[0]
        .contains("RouteTableId=rtb-0a1b2c3d4e5f60718&"));

    let server = server_creating("attached").await;
    let mut c = ctx();
    c.hints
        .insert("route_table_id".into(), "rtb-0fedcba987654321f".into());
    let ep = routes_fabric(&server)
        .prepare_site(&c)
        .await
        .expect("prepare");
    assert_eq!(ep.resources["route_table"], "rtb-0fedcba987654321f");
    assert!(sent(&server, "DescribeRouteTables").await.is_empty());
}

#[tokio::test]
async fn prepare_site_without_subnet_hint_leaves_routes_alone() {
    let server = server_creating("attached").await;
    let mut c = ctx();
    c.hints.remove("guest_network_id");
    let ep = routes_fabric(&server)
        .prepare_site(&c)
        .await
        .expect("prepare");
    assert!(!ep.resources.contains_key("route_table"));
    assert!(sent(&server, "DescribeRouteTables").await.is_empty());
    assert!(sent(&server, "EnableVgwRoutePropagation").await.is_empty());
}

#[tokio::test]
async fn prepare_site_waits_for_attached_before_enabling_propagation() {
    // AWS answers AttachVpnGateway with `attaching`; the gateway then reads
    // `attaching` twice more before `attached`.
    let server = server_creating("attaching").await;
    describe_by_id(&server, 2, true).await;
    let ep = routes_fabric(&server)
        .prepare_site(&ctx())
        .await
        .expect("prepare");
    assert_eq!(ep.resources["route_table"], RTB);
    let order: Vec<String> = bodies(&server)
        .await
        .into_iter()
        .filter(|b| {
            b.contains(&format!("VpnGatewayId.1={VGW}"))
                || b.starts_with("Action=EnableVgwRoutePropagation&")
        })
        .map(|b| b.split('&').next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        order,
        [
            "Action=DescribeVpnGateways",
            "Action=DescribeVpnGateways",
            "Action=DescribeVpnGateways",
            "Action=EnableVgwRoutePropagation"
        ],
        "propagation only after the third look, the first `attached`"
    );
}

#[tokio::test]
async fn prepare_site_gives_up_waiting_with_a_temporary_error() {
    let server = server_creating("attaching").await;
    describe_by_id(&server, 0, false).await;
    let f = routes_fabric(&server).attach_wait(Duration::from_millis(40), Duration::from_millis(5));
    let e = f.prepare_site(&ctx()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.is_temporary());
    assert_eq!(e.site().map(|s| s.as_str()), Some("aws"));
    let text = e.to_string();
    assert!(text.contains(VGW) && text.contains("attaching"), "{text}");
    assert!(sent(&server, "EnableVgwRoutePropagation").await.is_empty());
    assert!(sent(&server, "DescribeVpnGateways").await.len() >= 3);
}

#[tokio::test]
async fn prepare_site_reports_a_detached_gateway_at_once() {
    let server = server_creating("attaching").await;
    let by_id = format!("VpnGatewayId.1={VGW}");
    answer(
        &server,
        &["Action=DescribeVpnGateways&", by_id.as_str()],
        200,
        fixture("moto-5.2.5-intercloud/describe_vpn_gateways_by_id.xml")
            .replace("<state>attached</state>", "<state>detached</state>"),
    )
    .await;
    let e = routes_fabric(&server)
        .prepare_site(&ctx())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.to_string().contains("detached"), "{e}");
    assert_eq!(sent(&server, "DescribeVpnGateways").await.len(), 2);
}

#[tokio::test]
async fn moto_lacking_propagation_is_a_temporary_error() {
    let server = server_creating("attached").await;
    answer_first(
        &server,
        &["Action=EnableVgwRoutePropagation&"],
        500,
        fixture("moto-5.2.5-intercloud/error_not_implemented_enable_vgw_route_propagation.html"),
    )
    .await;
    let e = routes_fabric(&server)
        .prepare_site(&ctx())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("EnableVgwRoutePropagation"), "{e}");
}

fn endpoint() -> SiteEndpoint {
    SiteEndpoint {
        site: "aws".into(),
        kind: FabricKind::Ipsec,
        public_address: None,
        overlay_subnet: "172.31.0.0/20".into(),
        resources: [
            ("vpn_gateway".to_owned(), VGW.to_owned()),
            ("vpc".to_owned(), VPC.to_owned()),
            ("route_table".to_owned(), RTB.to_owned()),
        ]
        .into(),
        attributes: Default::default(),
    }
}

#[tokio::test]
async fn release_site_disables_propagation_before_detaching() {
    let not_attached = format!(
        "<Response><Errors><Error><Code>Gateway.NotAttached</Code><Message>resource {VGW} is not attached to network {VPC}</Message></Error></Errors><RequestID>r</RequestID></Response>"
    );
    let gone = format!(
        "<Response><Errors><Error><Code>InvalidRouteTableID.NotFound</Code><Message>The routeTable ID '{RTB}' does not exist</Message></Error></Errors><RequestID>r</RequestID></Response>"
    );
    for (status, disable) in [
        (200, ok_return("DisableVgwRoutePropagation")),
        (400, not_attached),
        (400, gone),
    ] {
        let server = MockServer::start().await;
        answer(
            &server,
            &["Action=DescribeVpnConnections&"],
            200,
            "<DescribeVpnConnectionsResponse><vpnConnectionSet/></DescribeVpnConnectionsResponse>"
                .into(),
        )
        .await;
        answer(
            &server,
            &["Action=DisableVgwRoutePropagation&"],
            status,
            disable,
        )
        .await;
        answer(
            &server,
            &["Action=DetachVpnGateway&"],
            200,
            fixture("moto-5.2.5-intercloud/detach_vpn_gateway.xml"),
        )
        .await;
        answer(
            &server,
            &["Action=DeleteVpnGateway&"],
            200,
            fixture("moto-5.2.5-intercloud/delete_vpn_gateway.xml"),
        )
        .await;
        routes_fabric(&server)
            .release_site(&endpoint())
            .await
            .unwrap_or_else(|e| panic!("{status}: {e}"));
        let order: Vec<String> = bodies(&server)
            .await
            .into_iter()
            .map(|b| b.split('&').next().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            order,
            [
                "Action=DescribeVpnConnections",
                "Action=DisableVgwRoutePropagation",
                "Action=DetachVpnGateway",
                "Action=DeleteVpnGateway"
            ]
        );
        assert_eq!(
            sent(&server, "DisableVgwRoutePropagation").await,
            [format!(
                "Action=DisableVgwRoutePropagation&Version=2016-11-15&RouteTableId={RTB}&GatewayId={VGW}"
            )]
        );
    }
}

#[tokio::test]
async fn release_site_stops_on_a_real_disable_failure() {
    let server = MockServer::start().await;
    answer(
        &server,
        &["Action=DescribeVpnConnections&"],
        200,
        "<DescribeVpnConnectionsResponse><vpnConnectionSet/></DescribeVpnConnectionsResponse>"
            .into(),
    )
    .await;
    answer(
        &server,
        &["Action=DisableVgwRoutePropagation&"],
        403,
        "<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to perform this operation.</Message></Error></Errors><RequestID>r</RequestID></Response>".into(),
    )
    .await;
    let e = routes_fabric(&server)
        .release_site(&endpoint())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(sent(&server, "DetachVpnGateway").await.is_empty());
}
