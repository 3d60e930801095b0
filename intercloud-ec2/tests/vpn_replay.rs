//! The EC2 VPN fabric against a mock server answering with recorded moto responses
//! (`tests/fixtures/ec2/moto-5.2.5*`): request parameters, idempotent lookups, the
//! customer gateway configuration, deletes of what is gone, and secrets kept out.

mod common;

use intercloud_core::{
    ErrorKind, FabricKind, LinkId, LinkSpec, LinkState, SiteContext, SiteEndpoint, VpnFabric,
};
use secrecy::{ExposeSecret, SecretString};
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

use common::{answer, fabric, fixture, sent};

const PSK: &str = "PSKsecret_0123456789";
const MOTO_PSK: &str = "Iw2IAN9XUsQeYUrkMGP3kP59ugFDkfHg";

fn ctx() -> SiteContext {
    SiteContext {
        site: "aws".into(),
        cluster: "vc".into(),
        overlay_subnet: "10.8.1.0/24".into(),
        local_cidrs: vec![],
        hints: [("vpc_id".to_owned(), "vpc-8ffad238d3ef03da2".to_owned())].into(),
    }
}

fn remote() -> SiteEndpoint {
    SiteEndpoint {
        site: "hokkaido".into(),
        kind: FabricKind::Ipsec,
        public_address: Some("203.0.113.10".into()),
        overlay_subnet: "10.8.2.0/24".into(),
        resources: Default::default(),
        attributes: [("local_cidrs".to_owned(), "192.168.0.0/24".to_owned())].into(),
    }
}

const NO_VGW: &str = "<DescribeVpnGatewaysResponse><vpnGatewaySet/></DescribeVpnGatewaysResponse>";

#[tokio::test]
async fn prepare_site_creates_tags_and_attaches_a_gateway() {
    let server = MockServer::start().await;
    answer(&server, "DescribeVpnGateways", 200, NO_VGW.into()).await;
    answer(
        &server,
        "CreateVpnGateway",
        200,
        fixture("moto-5.2.5/create_vpn_gateway.xml"),
    )
    .await;
    answer(
        &server,
        "AttachVpnGateway",
        200,
        fixture("moto-5.2.5/attach_vpn_gateway.xml"),
    )
    .await;
    let ep = fabric(&server).prepare_site(&ctx()).await.expect("prepare");
    assert_eq!(ep.resources["vpn_gateway"], "vgw-354d13d8c128b5ed4");
    assert_eq!(ep.resources["vpc"], "vpc-8ffad238d3ef03da2");
    assert_eq!(ep.kind, FabricKind::Ipsec);
    assert_eq!(
        sent(&server, "DescribeVpnGateways").await,
        ["Action=DescribeVpnGateways&Version=2016-11-15&Filter.1.Name=tag%3Aintercloud-cluster&Filter.1.Value.1=vc"]
    );
    assert_eq!(
        sent(&server, "CreateVpnGateway").await,
        ["Action=CreateVpnGateway&Version=2016-11-15&Type=ipsec.1&TagSpecification.1.ResourceType=vpn-gateway&TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=vc-aws&TagSpecification.1.Tag.2.Key=intercloud-cluster&TagSpecification.1.Tag.2.Value=vc"]
    );
    assert_eq!(
        sent(&server, "AttachVpnGateway").await,
        ["Action=AttachVpnGateway&Version=2016-11-15&VpnGatewayId=vgw-354d13d8c128b5ed4&VpcId=vpc-8ffad238d3ef03da2"]
    );
}

#[tokio::test]
async fn prepare_site_finds_the_attached_gateway() {
    let server = MockServer::start().await;
    let found = fixture("moto-5.2.5-intercloud/describe_vpn_gateways.xml")
        .replace("vpc-7422d9b54b0b7220a", "vpc-8ffad238d3ef03da2");
    answer(&server, "DescribeVpnGateways", 200, found).await;
    let ep = fabric(&server).prepare_site(&ctx()).await.expect("prepare");
    assert_eq!(ep.resources["vpn_gateway"], "vgw-8f99bea37242b3189");
    assert!(sent(&server, "CreateVpnGateway").await.is_empty());
    assert!(sent(&server, "AttachVpnGateway").await.is_empty());
}

#[tokio::test]
async fn prepare_site_without_vpc_is_a_config_error() {
    let server = MockServer::start().await;
    let mut c = ctx();
    c.hints.clear();
    answer(
        &server,
        "DescribeVpcs",
        200,
        r#"<DescribeVpcsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><vpcSet/></DescribeVpcsResponse>"#.to_owned(),
    )
    .await;
    let e = fabric(&server).prepare_site(&c).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.to_string().contains("default VPC") && e.to_string().contains("vpc_id"),
        "{e}"
    );
    assert!(sent(&server, "CreateVpnGateway").await.is_empty());
}

#[tokio::test]
async fn prepare_site_without_vpc_uses_the_default_vpc() {
    let server = MockServer::start().await;
    answer(
        &server,
        "DescribeVpcs",
        200,
        r#"<DescribeVpcsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><vpcSet><item><vpcId>vpc-8ffad238d3ef03da2</vpcId><state>available</state><isDefault>true</isDefault></item></vpcSet></DescribeVpcsResponse>"#.to_owned(),
    )
    .await;
    let found = fixture("moto-5.2.5-intercloud/describe_vpn_gateways.xml")
        .replace("vpc-7422d9b54b0b7220a", "vpc-8ffad238d3ef03da2");
    answer(&server, "DescribeVpnGateways", 200, found).await;
    let mut c = ctx();
    c.hints.clear();
    let ep = fabric(&server).prepare_site(&c).await.expect("prepare");
    assert_eq!(ep.resources["vpc"], "vpc-8ffad238d3ef03da2");
    assert!(
        sent(&server, "AttachVpnGateway").await.is_empty(),
        "already attached there"
    );
}

async fn endpoint(server: &MockServer) -> SiteEndpoint {
    answer(server, "DescribeVpnGateways", 200, NO_VGW.into()).await;
    answer(
        server,
        "CreateVpnGateway",
        200,
        fixture("moto-5.2.5/create_vpn_gateway.xml"),
    )
    .await;
    answer(
        server,
        "AttachVpnGateway",
        200,
        fixture("moto-5.2.5/attach_vpn_gateway.xml"),
    )
    .await;
    fabric(server).prepare_site(&ctx()).await.expect("prepare")
}

#[tokio::test]
async fn connect_creates_gateway_connection_and_static_routes() {
    let server = MockServer::start().await;
    let ep = endpoint(&server).await;
    answer(&server, "DescribeCustomerGateways", 200, "<DescribeCustomerGatewaysResponse><customerGatewaySet/></DescribeCustomerGatewaysResponse>".into()).await;
    answer(
        &server,
        "CreateCustomerGateway",
        200,
        fixture("moto-5.2.5/create_customer_gateway.xml"),
    )
    .await;
    answer(
        &server,
        "DescribeVpnConnections",
        200,
        "<DescribeVpnConnectionsResponse><vpnConnectionSet/></DescribeVpnConnectionsResponse>"
            .into(),
    )
    .await;
    answer(
        &server,
        "CreateVpnConnection",
        200,
        fixture("moto-5.2.5/create_vpn_connection.xml"),
    )
    .await;
    answer(&server, "CreateVpnConnectionRoute", 200, "<CreateVpnConnectionRouteResponse><return>true</return></CreateVpnConnectionRouteResponse>".into()).await;
    let link = fabric(&server)
        .connect(
            &remote(),
            &ep,
            &LinkSpec {
                bandwidth_mbps: None,
                psk: Some(SecretString::from(PSK)),
            },
        )
        .await
        .expect("connect");
    assert_eq!(link, LinkId("vpn-b95462b6017321c36".into()));
    assert_eq!(
        sent(&server, "CreateCustomerGateway").await,
        ["Action=CreateCustomerGateway&Version=2016-11-15&Type=ipsec.1&IpAddress=203.0.113.10&BgpAsn=65000&TagSpecification.1.ResourceType=customer-gateway&TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=vc-hokkaido&TagSpecification.1.Tag.2.Key=intercloud-cluster&TagSpecification.1.Tag.2.Value=vc"]
    );
    let create = &sent(&server, "CreateVpnConnection").await[0];
    assert!(create.starts_with("Action=CreateVpnConnection&Version=2016-11-15&Type=ipsec.1&CustomerGatewayId=cgw-74e78521286230374&VpnGatewayId=vgw-354d13d8c128b5ed4&Options.StaticRoutesOnly=true&Options.TunnelOptions.1.PreSharedKey=PSKsecret_0123456789&Options.TunnelOptions.2.PreSharedKey=PSKsecret_0123456789&TagSpecification.1.ResourceType=vpn-connection"), "{create}");
    assert_eq!(
        sent(&server, "CreateVpnConnectionRoute").await,
        [
            "Action=CreateVpnConnectionRoute&Version=2016-11-15&VpnConnectionId=vpn-b95462b6017321c36&DestinationCidrBlock=10.8.2.0%2F24",
            "Action=CreateVpnConnectionRoute&Version=2016-11-15&VpnConnectionId=vpn-b95462b6017321c36&DestinationCidrBlock=192.168.0.0%2F24",
        ]
    );
}

#[tokio::test]
async fn connect_reuses_existing_gateway_and_connection_and_reports_moto_route_gap() {
    let server = MockServer::start().await;
    let ep = endpoint(&server).await;
    let cgw = fixture("moto-5.2.5-intercloud/describe_customer_gateways.xml")
        .replace("198.51.100.7", "203.0.113.10");
    answer(&server, "DescribeCustomerGateways", 200, cgw).await;
    let conns = fixture("moto-5.2.5-intercloud/describe_vpn_connections_filter.xml")
        .replace("vgw-8f99bea37242b3189", "vgw-354d13d8c128b5ed4");
    answer(&server, "DescribeVpnConnections", 200, conns).await;
    answer(
        &server,
        "CreateVpnConnectionRoute",
        500,
        fixture("moto-5.2.5/error_not_implemented_create_vpn_connection_route.html"),
    )
    .await;
    let f = fabric(&server);
    let e = f
        .connect(
            &ep,
            &remote(),
            &LinkSpec {
                bandwidth_mbps: None,
                psk: Some(SecretString::from(PSK)),
            },
        )
        .await
        .expect_err("moto has no CreateVpnConnectionRoute");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("CreateVpnConnectionRoute"), "{e}");
    assert!(!format!("{e} {e:?}").contains(PSK));
    assert!(
        sent(&server, "CreateCustomerGateway").await.is_empty(),
        "found by ip + tag"
    );
    assert!(
        sent(&server, "CreateVpnConnection").await.is_empty(),
        "found by gateways"
    );
    let link = f
        .static_routes(false)
        .connect(&ep, &remote(), &LinkSpec::default())
        .await
        .expect("connect");
    assert_eq!(link.0, "vpn-5a89b974e0c17387f");
}

#[tokio::test]
async fn tunnels_and_status_from_describe_vpn_connections() {
    let server = MockServer::start().await;
    answer(
        &server,
        "DescribeVpnConnections",
        200,
        fixture("moto-5.2.5/describe_vpn_connections.xml"),
    )
    .await;
    let f = fabric(&server);
    let link = LinkId("vpn-b95462b6017321c36".into());
    let tunnels = f.tunnels(&link).await.expect("tunnels");
    assert_eq!(tunnels.len(), 2);
    assert_eq!(tunnels[0].vpn_gateway_outside_address, "52.2.144.13");
    assert_eq!(
        tunnels[0].customer_gateway_outside_address.as_deref(),
        Some("12.1.2.3")
    );
    assert_eq!(
        tunnels[0].vpn_gateway_inside_address.as_deref(),
        Some("169.254.44.41")
    );
    assert_eq!(tunnels[0].inside_cidr, Some(30));
    assert_eq!(tunnels[0].pre_shared_key.expose_secret(), MOTO_PSK);
    assert!(!format!("{tunnels:?}").contains(MOTO_PSK), "PSK in Debug");
    let conn = f.connection(&link.0).await.unwrap();
    assert!(!format!("{conn:?}").contains(MOTO_PSK), "PSK in Debug");
    assert_eq!(f.link_status(&link).await.unwrap(), LinkState::Up);
}

#[tokio::test]
async fn link_status_of_deleted_and_unknown_connections() {
    let server = MockServer::start().await;
    answer(
        &server,
        "DescribeVpnConnections",
        200,
        fixture("moto-5.2.5-intercloud/describe_vpn_connections_deleted.xml"),
    )
    .await;
    let s = fabric(&server)
        .link_status(&LinkId("vpn-5a89b974e0c17387f".into()))
        .await
        .unwrap();
    assert!(
        matches!(s, LinkState::Failed(ref w) if w.contains("deleted")),
        "{s:?}"
    );

    let server = MockServer::start().await;
    answer(
        &server,
        "DescribeVpnConnections",
        400,
        fixture("moto-5.2.5-intercloud/error_vpn_connection_not_found.xml"),
    )
    .await;
    let f = fabric(&server);
    let e = f
        .link_status(&LinkId("vpn-0123456789abcdef0".into()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    f.disconnect(&LinkId("vpn-0123456789abcdef0".into()))
        .await
        .expect("gone is Ok");
}

#[tokio::test]
async fn disconnect_deletes_connection_then_customer_gateway() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains(
            "VpnConnectionId.1=vpn-5a89b974e0c17387f",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture(
            "moto-5.2.5-intercloud/describe_vpn_connections_filter.xml",
        )))
        .with_priority(1)
        .mount(&server)
        .await;
    answer(
        &server,
        "DescribeVpnConnections",
        200,
        fixture("moto-5.2.5-intercloud/describe_vpn_connections_deleted.xml"),
    )
    .await;
    answer(
        &server,
        "DeleteVpnConnection",
        200,
        fixture("moto-5.2.5-intercloud/delete_vpn_connection.xml"),
    )
    .await;
    answer(
        &server,
        "DeleteCustomerGateway",
        200,
        fixture("moto-5.2.5-intercloud/delete_customer_gateway.xml"),
    )
    .await;
    fabric(&server)
        .disconnect(&LinkId("vpn-5a89b974e0c17387f".into()))
        .await
        .expect("disconnect");
    assert_eq!(
        sent(&server, "DeleteVpnConnection").await,
        ["Action=DeleteVpnConnection&Version=2016-11-15&VpnConnectionId=vpn-5a89b974e0c17387f"]
    );
    assert_eq!(
        sent(&server, "DescribeVpnConnections").await[1],
        "Action=DescribeVpnConnections&Version=2016-11-15&Filter.1.Name=customer-gateway-id&Filter.1.Value.1=cgw-fd5c8217d03472f9c"
    );
    assert_eq!(sent(&server, "DeleteCustomerGateway").await, ["Action=DeleteCustomerGateway&Version=2016-11-15&CustomerGatewayId=cgw-fd5c8217d03472f9c"]);
}

#[tokio::test]
async fn release_site_detaches_and_deletes_and_tolerates_gone() {
    for (detach, delete) in [
        (
            (200, "moto-5.2.5-intercloud/detach_vpn_gateway.xml"),
            (200, "moto-5.2.5-intercloud/delete_vpn_gateway.xml"),
        ),
        (
            (400, "moto-5.2.5-intercloud/error_detach_not_attached.xml"),
            (400, "moto-5.2.5-intercloud/error_vpn_gateway_not_found.xml"),
        ),
    ] {
        let server = MockServer::start().await;
        answer(
            &server,
            "DescribeVpnConnections",
            200,
            fixture("moto-5.2.5-intercloud/describe_vpn_connections_deleted.xml"),
        )
        .await;
        answer(&server, "DetachVpnGateway", detach.0, fixture(detach.1)).await;
        answer(&server, "DeleteVpnGateway", delete.0, fixture(delete.1)).await;
        let mut ep = remote();
        ep.site = "aws".into();
        ep.resources
            .insert("vpn_gateway".into(), "vgw-8f99bea37242b3189".into());
        ep.resources
            .insert("vpc".into(), "vpc-7422d9b54b0b7220a".into());
        fabric(&server)
            .release_site(&ep)
            .await
            .unwrap_or_else(|e| panic!("{detach:?}: {e}"));
        assert_eq!(sent(&server, "DetachVpnGateway").await, ["Action=DetachVpnGateway&Version=2016-11-15&VpnGatewayId=vgw-8f99bea37242b3189&VpcId=vpc-7422d9b54b0b7220a"]);
        assert_eq!(sent(&server, "DeleteVpnGateway").await.len(), 1);
        assert!(
            sent(&server, "DeleteVpnConnection").await.is_empty(),
            "deleted connections are left alone"
        );
    }
}

#[tokio::test]
async fn release_site_first_removes_connections_never_journaled() {
    let server = MockServer::start().await;
    answer(
        &server,
        "DescribeVpnConnections",
        200,
        fixture("moto-5.2.5-intercloud/describe_vpn_connections_filter.xml"),
    )
    .await;
    for (action, file) in [
        ("DeleteVpnConnection", "delete_vpn_connection.xml"),
        ("DeleteCustomerGateway", "delete_customer_gateway.xml"),
        ("DetachVpnGateway", "detach_vpn_gateway.xml"),
        ("DeleteVpnGateway", "delete_vpn_gateway.xml"),
    ] {
        answer(
            &server,
            action,
            200,
            fixture(&format!("moto-5.2.5-intercloud/{file}")),
        )
        .await;
    }
    let mut ep = remote();
    ep.site = "aws".into();
    ep.resources
        .insert("vpn_gateway".into(), "vgw-8f99bea37242b3189".into());
    fabric(&server).release_site(&ep).await.expect("release");
    let order: Vec<String> = server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let b = String::from_utf8_lossy(&r.body).into_owned();
            b.split('&').next().unwrap_or_default().to_owned()
        })
        .filter(|a| a.starts_with("Action=Delete"))
        .collect();
    assert_eq!(
        order,
        [
            "Action=DeleteVpnConnection",
            "Action=DeleteCustomerGateway",
            "Action=DeleteVpnGateway"
        ]
    );
    assert!(sent(&server, "DescribeVpnConnections").await[0]
        .contains("Filter.1.Name=vpn-gateway-id&Filter.1.Value.1=vgw-8f99bea37242b3189"));
}
