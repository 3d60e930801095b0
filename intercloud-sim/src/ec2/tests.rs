use std::time::Duration;

use super::sigv4::{expected_signature, Presented};
use crate::config::FederationConfig;
use crate::engine::Engine;
use crate::server::{dispatch, HttpRequest, HttpResponse};

const KEY: &str = "AKIDTOKYOEXAMPLE";
const SECRET: &str = "tokyo-secret-access-key";

fn engine() -> Engine {
    let mut cfg = FederationConfig::seed_default().sites.remove(2);
    cfg.rate_limit = None;
    cfg.offerings[0].capacity = 6;
    Engine::new(cfg, 3, 1.0, 3, tokio::time::Instant::now())
}

fn form(params: &[(&str, &str)]) -> String {
    let mut all = vec![("Version", "2016-11-15")];
    all.extend_from_slice(params);
    all.iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                super::sigv4::uri_encode(k),
                super::sigv4::uri_encode(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn signed(body: String, secret: &str, region: &str) -> HttpRequest {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let amz = now.format(&fmt).unwrap();
    let mut headers = hyper::header::HeaderMap::new();
    headers.insert("host", "127.0.0.1:5000".parse().unwrap());
    headers.insert(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8"
            .parse()
            .unwrap(),
    );
    headers.insert("x-amz-date", amz.parse().unwrap());
    let mut req = HttpRequest {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers,
        body: body.into(),
    };
    let p = Presented {
        access_key: KEY.into(),
        date: amz[..8].to_owned(),
        amz_date: amz.clone(),
        region: region.into(),
        service: "ec2".into(),
        signed_headers: vec!["content-type".into(), "host".into(), "x-amz-date".into()],
        signature: String::new(),
        query_form: false,
        expires: None,
    };
    let sig = expected_signature(&req, &p, secret);
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={KEY}/{}/{region}/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={sig}",
        &amz[..8]
    );
    req.headers.insert("authorization", auth.parse().unwrap());
    req
}

async fn call(e: &Engine, params: &[(&str, &str)]) -> HttpResponse {
    dispatch(e, signed(form(params), SECRET, "ap-northeast-1")).await
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    s.split(open)
        .skip(1)
        .filter_map(|p| p.split(close).next())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn signature_errors_are_aws_shaped() {
    let e = engine();
    let r = dispatch(
        &e,
        signed(
            form(&[("Action", "DescribeRegions")]),
            "wrong",
            "ap-northeast-1",
        ),
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(
        r.text()
            .contains("<Response><Errors><Error><Code>SignatureDoesNotMatch</Code>"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("<RequestID>"));
    assert!(!r.text().contains(SECRET));
    let r = dispatch(
        &e,
        signed(form(&[("Action", "DescribeRegions")]), SECRET, "us-east-1"),
    )
    .await;
    assert_eq!(r.status, 403);
    let mut unsigned = signed(
        form(&[("Action", "DescribeRegions")]),
        SECRET,
        "ap-northeast-1",
    );
    unsigned.headers.remove("authorization");
    let r = dispatch(&e, unsigned).await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains("AuthFailure"));
    let r = call(&e, &[("Action", "DescribeRegions")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains(
        "<DescribeRegionsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>"
    ));
    assert!(r.text().contains("<regionName>ap-northeast-1</regionName>"));
}

#[tokio::test(start_paused = true)]
async fn run_describe_paginate_terminate() {
    let e = engine();
    let run = [
        ("Action", "RunInstances"),
        ("ImageId", "ami-0c3fd0f5d33134a76"),
        ("InstanceType", "t3.small"),
        ("MinCount", "5"),
        ("MaxCount", "5"),
        ("ClientToken", "tok-1"),
        ("TagSpecification.1.ResourceType", "instance"),
        ("TagSpecification.1.Tag.1.Key", "intercloud-cluster"),
        ("TagSpecification.1.Tag.1.Value", "c1"),
    ];
    let r = call(&e, &run).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let ids: Vec<String> = between(r.text(), "<instanceId>", "</instanceId>")
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), 5);
    assert!(r.text().contains("<name>pending</name>"));
    assert!(r.text().contains("<clientToken>tok-1</clientToken>"));
    // Same token, same parameters: the same reservation, no new instances.
    let again = call(&e, &run).await;
    assert_eq!(
        between(again.text(), "<instanceId>", "</instanceId>"),
        ids.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(e.records().len(), 5);
    let mut other = run.to_vec();
    other[3] = ("MinCount", "1");
    let r = call(&e, &other).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("IdempotentParameterMismatch"));
    // Capacity: 1 left; MinCount 2 fails, MinCount 1 MaxCount 3 gets 1.
    let big = [
        ("Action", "RunInstances"),
        ("ImageId", "ami-0c3fd0f5d33134a76"),
        ("InstanceType", "t3.small"),
        ("MinCount", "2"),
        ("MaxCount", "3"),
    ];
    let r = call(&e, &big).await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("InsufficientInstanceCapacity"));
    let r = call(
        &e,
        &[
            ("Action", "RunInstances"),
            ("ImageId", "ami-0c3fd0f5d33134a76"),
            ("InstanceType", "t3.small"),
            ("MinCount", "1"),
            ("MaxCount", "3"),
        ],
    )
    .await;
    assert_eq!(between(r.text(), "<instanceId>", "</instanceId>").len(), 1);

    tokio::time::advance(Duration::from_secs(60)).await;
    let filt = [
        ("Action", "DescribeInstances"),
        ("Filter.1.Name", "tag:intercloud-cluster"),
        ("Filter.1.Value.1", "c1"),
        ("Filter.2.Name", "instance-state-name"),
        ("Filter.2.Value.1", "running"),
        ("MaxResults", "5"),
    ];
    let r = call(&e, &filt[..5]).await;
    assert_eq!(between(r.text(), "<instanceId>", "</instanceId>").len(), 5);
    assert!(!r.text().contains("<nextToken>"));
    let mut paged = filt.to_vec();
    paged[5] = ("MaxResults", "5");
    let r = call(&e, &[("Action", "DescribeInstances"), ("MaxResults", "5")]).await;
    assert_eq!(between(r.text(), "<instanceId>", "</instanceId>").len(), 5);
    let token = between(r.text(), "<nextToken>", "</nextToken>")[0].to_owned();
    let r = call(
        &e,
        &[
            ("Action", "DescribeInstances"),
            ("MaxResults", "5"),
            ("NextToken", &token),
        ],
    )
    .await;
    assert_eq!(between(r.text(), "<instanceId>", "</instanceId>").len(), 1);
    assert!(!r.text().contains("<nextToken>"));
    let r = call(&e, &[("Action", "DescribeInstances"), ("MaxResults", "2")]).await;
    assert_eq!(r.status, 400);
    let r = call(
        &e,
        &[
            ("Action", "DescribeInstances"),
            ("InstanceId.1", "i-0123456789abcdef0"),
        ],
    )
    .await;
    assert!(r.text().contains("InvalidInstanceID.NotFound"));
    let r = call(
        &e,
        &[
            ("Action", "DescribeInstances"),
            ("Filter.1.Name", "bogus"),
            ("Filter.1.Value.1", "x"),
        ],
    )
    .await;
    assert!(r.text().contains("The filter 'bogus' is invalid"));

    let r = call(
        &e,
        &[
            ("Action", "TerminateInstances"),
            ("InstanceId.1", &ids[0]),
            ("InstanceId.2", &ids[1]),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("<currentState><code>32</code><name>shutting-down</name></currentState><previousState><code>16</code><name>running</name></previousState>"));
    tokio::time::advance(Duration::from_secs(5)).await;
    let r = call(
        &e,
        &[("Action", "DescribeInstances"), ("InstanceId.1", &ids[0])],
    )
    .await;
    assert!(r.text().contains("<name>terminated</name>"));
    let r = call(&e, &filt[..5]).await;
    assert_eq!(between(r.text(), "<instanceId>", "</instanceId>").len(), 3);
    assert_eq!(e.records().iter().filter(|r| r.is_alive()).count(), 4);
    assert_eq!(e.calls()["RunInstances"], 5);
}

#[tokio::test(start_paused = true)]
async fn tags_catalog_throttle_and_vpn() {
    let e = engine();
    let r = call(
        &e,
        &[
            ("Action", "RunInstances"),
            ("ImageId", "ami-0c3fd0f5d33134a76"),
            ("InstanceType", "t3.small"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ],
    )
    .await;
    let id = between(r.text(), "<instanceId>", "</instanceId>")[0].to_owned();
    let r = call(
        &e,
        &[
            ("Action", "CreateTags"),
            ("ResourceId.1", &id),
            ("Tag.1.Key", "intercloud-key"),
            ("Tag.1.Value", "k1"),
        ],
    )
    .await;
    assert!(r.text().contains("<return>true</return>"));
    let r = call(
        &e,
        &[
            ("Action", "DescribeInstances"),
            ("Filter.1.Name", "tag:intercloud-key"),
            ("Filter.1.Value.1", "k1"),
        ],
    )
    .await;
    assert!(r.text().contains(&id));
    for a in [
        "DescribeInstanceTypes",
        "DescribeImages",
        "DescribeAvailabilityZones",
        "DescribeAccountAttributes",
    ] {
        let r = call(&e, &[("Action", a)]).await;
        assert_eq!(r.status, 200, "{a}: {}", r.text());
    }
    let r = call(&e, &[("Action", "DescribeAvailabilityZones")]).await;
    assert!(r.text().contains("<zoneName>ap-northeast-1a</zoneName>"));
    let r = call(
        &e,
        &[
            ("Action", "DescribeInstanceTypes"),
            ("InstanceType.1", "t3.small"),
        ],
    )
    .await;
    assert!(r.text().contains("<defaultVCpus>1</defaultVCpus>"));

    let vgw = call(&e, &[("Action", "CreateVpnGateway"), ("Type", "ipsec.1")]).await;
    let vgw_id = between(vgw.text(), "<vpnGatewayId>", "</vpnGatewayId>")[0].to_owned();
    let vpcs = call(&e, &[("Action", "DescribeVpcs")]).await;
    let vpc = between(vpcs.text(), "<vpcId>", "</vpcId>")[0].to_owned();
    let att = call(
        &e,
        &[
            ("Action", "AttachVpnGateway"),
            ("VpnGatewayId", &vgw_id),
            ("VpcId", &vpc),
        ],
    )
    .await;
    assert!(att.text().contains("<state>attached</state>"));
    let cgw = call(
        &e,
        &[
            ("Action", "CreateCustomerGateway"),
            ("Type", "ipsec.1"),
            ("IpAddress", "198.51.100.9"),
            ("BgpAsn", "65000"),
        ],
    )
    .await;
    let cgw_id = between(cgw.text(), "<customerGatewayId>", "</customerGatewayId>")[0].to_owned();
    let conn = call(
        &e,
        &[
            ("Action", "CreateVpnConnection"),
            ("Type", "ipsec.1"),
            ("CustomerGatewayId", &cgw_id),
            ("VpnGatewayId", &vgw_id),
            ("Options.StaticRoutesOnly", "true"),
        ],
    )
    .await;
    assert_eq!(conn.status, 200, "{}", conn.text());
    assert!(
        conn.text().contains("&lt;pre_shared_key&gt;"),
        "escaped config document"
    );
    assert_eq!(
        between(conn.text(), "&lt;ipsec_tunnel&gt;", "&lt;/ipsec_tunnel&gt;").len(),
        2
    );
    let conn_id = between(conn.text(), "<vpnConnectionId>", "</vpnConnectionId>")[0].to_owned();
    // A pre-shared key the caller chose is the tunnels' key; a bad one is refused.
    let mine = call(
        &e,
        &[
            ("Action", "CreateVpnConnection"),
            ("Type", "ipsec.1"),
            ("CustomerGatewayId", &cgw_id),
            ("VpnGatewayId", &vgw_id),
            ("Options.TunnelOptions.1.PreSharedKey", "Chosen_psk.1234"),
            ("Options.TunnelOptions.2.PreSharedKey", "Chosen_psk.1234"),
        ],
    )
    .await;
    assert_eq!(mine.status, 200, "{}", mine.text());
    assert_eq!(
        mine.text()
            .matches("&lt;pre_shared_key&gt;Chosen_psk.1234&lt;")
            .count(),
        2
    );
    let mine_id = between(mine.text(), "<vpnConnectionId>", "</vpnConnectionId>")[0].to_owned();
    let bad = call(
        &e,
        &[
            ("Action", "CreateVpnConnection"),
            ("Type", "ipsec.1"),
            ("CustomerGatewayId", &cgw_id),
            ("VpnGatewayId", &vgw_id),
            ("Options.TunnelOptions.1.PreSharedKey", "0bad-key"),
        ],
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(!bad.text().contains("0bad-key"), "the key is not echoed");
    let r = call(
        &e,
        &[
            ("Action", "DeleteVpnConnection"),
            ("VpnConnectionId", &mine_id),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    let r = call(
        &e,
        &[
            ("Action", "CreateVpnConnectionRoute"),
            ("VpnConnectionId", &conn_id),
            ("DestinationCidrBlock", "10.8.0.0/16"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    let d = call(
        &e,
        &[
            ("Action", "DescribeVpnConnections"),
            ("Filter.1.Name", "vpn-gateway-id"),
            ("Filter.1.Value.1", &vgw_id),
        ],
    )
    .await;
    assert!(d
        .text()
        .contains("<destinationCidrBlock>10.8.0.0/16</destinationCidrBlock>"));
    let r = call(
        &e,
        &[("Action", "DeleteVpnGateway"), ("VpnGatewayId", &vgw_id)],
    )
    .await;
    assert_eq!(r.status, 400, "in use");
    for (a, k, v) in [
        ("DeleteVpnConnection", "VpnConnectionId", &conn_id),
        ("DeleteCustomerGateway", "CustomerGatewayId", &cgw_id),
        ("DeleteVpnGateway", "VpnGatewayId", &vgw_id),
    ] {
        assert_eq!(call(&e, &[("Action", a), (k, v)]).await.status, 200, "{a}");
    }

    let mut cfg = FederationConfig::seed_default().sites.remove(2);
    cfg.rate_limit = Some(1.0);
    let e2 = Engine::new(cfg, 3, 1.0, 3, tokio::time::Instant::now());
    assert_eq!(
        dispatch(
            &e2,
            signed(
                form(&[("Action", "DescribeRegions")]),
                SECRET,
                "ap-northeast-1"
            )
        )
        .await
        .status,
        200
    );
    let r = dispatch(
        &e2,
        signed(
            form(&[("Action", "DescribeRegions")]),
            SECRET,
            "ap-northeast-1",
        ),
    )
    .await;
    assert_eq!(r.status, 503);
    assert!(r.text().contains("<Code>RequestLimitExceeded</Code>"));
}

#[tokio::test(start_paused = true)]
async fn default_subnets_interfaces_and_private_addresses() {
    let e = engine();
    let r = call(
        &e,
        &[
            ("Action", "DescribeSubnets"),
            ("Filter.1.Name", "default-for-az"),
            ("Filter.1.Value.1", "true"),
        ],
    )
    .await;
    let text = r.text();
    assert_eq!(r.status, 200, "{text}");
    assert_eq!(between(text, "<cidrBlock>", "<"), ["172.31.0.0/20"]);
    assert_eq!(
        between(text, "<availabilityZone>", "<"),
        ["ap-northeast-1a"]
    );
    let subnet = between(text, "<subnetId>", "<")[0].to_owned();
    let vpc = between(text, "<vpcId>", "<")[0].to_owned();
    let r = call(&e, &[("Action", "DescribeVpcs")]).await;
    assert_eq!(between(r.text(), "<vpcId>", "<"), [vpc.as_str()]);
    let r = call(
        &e,
        &[("Action", "DescribeSubnets"), ("SubnetId.1", &subnet)],
    )
    .await;
    assert_eq!(between(r.text(), "<subnetId>", "<"), [subnet.as_str()]);
    let r = call(
        &e,
        &[("Action", "DescribeSubnets"), ("SubnetId.1", "subnet-0000")],
    )
    .await;
    assert!(
        r.text().contains("InvalidSubnetID.NotFound"),
        "{}",
        r.text()
    );

    let run = |extra: &[(&'static str, &'static str)]| {
        let mut p = vec![
            ("Action", "RunInstances"),
            ("ImageId", "ami-0c3fd0f5d33134a76"),
            ("InstanceType", "t3.small"),
        ];
        p.extend_from_slice(extra);
        p
    };
    // Default: the first free hosts from .4 up.
    let r = call(&e, &run(&[("MinCount", "2"), ("MaxCount", "2")])).await;
    let text = r.text();
    assert_eq!(r.status, 200, "{text}");
    assert_eq!(
        between(text, "<privateIpAddress>", "<"),
        ["172.31.0.4", "172.31.0.5"]
    );
    assert_eq!(between(text, "<subnetId>", "<"), [subnet.as_str(); 2]);
    let ids: Vec<String> = between(text, "<instanceId>", "<")
        .into_iter()
        .map(str::to_owned)
        .collect();
    // A requested address in the subnet is honoured.
    let mut p = run(&[
        ("MinCount", "1"),
        ("MaxCount", "1"),
        ("PrivateIpAddress", "172.31.9.9"),
    ]);
    p.push(("SubnetId", &subnet));
    let r = call(&e, &p).await;
    assert_eq!(between(r.text(), "<privateIpAddress>", "<"), ["172.31.9.9"]);
    // Taken, outside, several instances: AWS's errors.
    let r = call(&e, &p).await;
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("<Code>InvalidIPAddress.InUse</Code>"),
        "{}",
        r.text()
    );
    for (count, address) in [("1", "172.31.16.9"), ("2", "172.31.9.10")] {
        let r = call(
            &e,
            &run(&[
                ("MinCount", count),
                ("MaxCount", count),
                ("PrivateIpAddress", address),
            ]),
        )
        .await;
        assert!(
            r.text().contains("<Code>InvalidParameterValue</Code>"),
            "{count} at {address}: {}",
            r.text()
        );
    }
    // Interfaces of the subnet list every instance's address.
    let r = call(
        &e,
        &[
            ("Action", "DescribeNetworkInterfaces"),
            ("Filter.1.Name", "subnet-id"),
            ("Filter.1.Value.1", &subnet),
        ],
    )
    .await;
    let text = r.text();
    assert_eq!(r.status, 200, "{text}");
    let mut ips = between(text, "<privateIpAddress>", "<");
    ips.dedup();
    assert_eq!(ips, ["172.31.0.4", "172.31.0.5", "172.31.9.9"]);
    // A terminated instance frees its address.
    let r = call(
        &e,
        &[("Action", "TerminateInstances"), ("InstanceId.1", &ids[0])],
    )
    .await;
    assert_eq!(r.status, 200);
    let r = call(
        &e,
        &run(&[
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("PrivateIpAddress", "172.31.0.4"),
        ]),
    )
    .await;
    assert_eq!(between(r.text(), "<privateIpAddress>", "<"), ["172.31.0.4"]);
}

async fn prop(e: &Engine, action: &str, rtb: &str, vgw: &str) -> HttpResponse {
    call(
        e,
        &[
            ("Action", action),
            ("RouteTableId", rtb),
            ("GatewayId", vgw),
        ],
    )
    .await
}

async fn tables(e: &Engine, filters: &[(&str, &str)]) -> HttpResponse {
    let mut q = vec![("Action".to_owned(), "DescribeRouteTables".to_owned())];
    for (n, (name, value)) in filters.iter().enumerate() {
        q.push((format!("Filter.{}.Name", n + 1), (*name).to_owned()));
        q.push((format!("Filter.{}.Value.1", n + 1), (*value).to_owned()));
    }
    let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    call(e, &q).await
}

#[tokio::test]
async fn main_route_table_and_vgw_propagation() {
    let e = engine();
    let vpcs = call(&e, &[("Action", "DescribeVpcs")]).await;
    let vpc = between(vpcs.text(), "<vpcId>", "</vpcId>")[0].to_owned();
    let subnets = call(&e, &[("Action", "DescribeSubnets")]).await;
    let subnet = between(subnets.text(), "<subnetId>", "</subnetId>")[0].to_owned();
    // A default subnet has no explicit association: it uses the main table.
    let r = tables(&e, &[("association.subnet-id", &subnet)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("<routeTableSet/>"), "{}", r.text());
    let r = tables(&e, &[("vpc-id", &vpc), ("association.main", "true")]).await;
    let rtbs = between(r.text(), "<routeTableId>", "</routeTableId>");
    assert!(!rtbs.is_empty(), "{}", r.text());
    let rtb = rtbs[0].to_owned();
    assert!(rtb.starts_with("rtb-"));
    assert_eq!(between(r.text(), "<main>", "</main>"), ["true"]);
    assert!(r.text().contains("<propagatingVgwSet></propagatingVgwSet>"));
    let other = tables(
        &e,
        &[
            ("vpc-id", "vpc-0000000000000000f"),
            ("association.main", "true"),
        ],
    )
    .await;
    assert!(other.text().contains("<routeTableSet/>"));

    let vgw = call(&e, &[("Action", "CreateVpnGateway"), ("Type", "ipsec.1")]).await;
    let vgw_id = between(vgw.text(), "<vpnGatewayId>", "</vpnGatewayId>")[0].to_owned();
    // Not attached yet: AWS refuses.
    let r = prop(&e, "EnableVgwRoutePropagation", &rtb, &vgw_id).await;
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("<Code>Gateway.NotAttached</Code>"),
        "{}",
        r.text()
    );
    let attach = |action: &'static str| {
        [
            ("Action", action),
            ("VpnGatewayId", vgw_id.as_str()),
            ("VpcId", vpc.as_str()),
        ]
    };
    assert_eq!(call(&e, &attach("AttachVpnGateway")).await.status, 200);
    for _ in 0..2 {
        let r = prop(&e, "EnableVgwRoutePropagation", &rtb, &vgw_id).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains("<return>true</return>"));
    }
    let by_id = [
        ("Action", "DescribeRouteTables"),
        ("RouteTableId.1", rtb.as_str()),
    ];
    let r = call(&e, &by_id).await;
    assert_eq!(
        between(
            r.text(),
            "<propagatingVgwSet><item><gatewayId>",
            "</gatewayId>"
        ),
        [vgw_id.as_str()]
    );
    let r = prop(
        &e,
        "EnableVgwRoutePropagation",
        "rtb-0000000000000000f",
        &vgw_id,
    )
    .await;
    assert!(
        r.text().contains("InvalidRouteTableID.NotFound"),
        "{}",
        r.text()
    );
    let r = prop(&e, "DisableVgwRoutePropagation", &rtb, &vgw_id).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(&e, &by_id).await;
    assert!(r.text().contains("<propagatingVgwSet></propagatingVgwSet>"));
    // Detaching drops a propagation left on.
    prop(&e, "EnableVgwRoutePropagation", &rtb, &vgw_id).await;
    assert_eq!(call(&e, &attach("DetachVpnGateway")).await.status, 200);
    let r = call(&e, &by_id).await;
    assert!(r.text().contains("<propagatingVgwSet></propagatingVgwSet>"));
    let r = prop(&e, "DisableVgwRoutePropagation", &rtb, &vgw_id).await;
    assert!(r.text().contains("Gateway.NotAttached"));
    let r = tables(&e, &[("route-table-type", "x")]).await;
    assert_eq!(r.status, 400);
}

#[tokio::test(start_paused = true)]
async fn stop_and_start_instances_follow_aws_states() {
    let e = engine();
    let r = call(
        &e,
        &[
            ("Action", "RunInstances"),
            ("ImageId", "ami-0c3fd0f5d33134a76"),
            ("InstanceType", "t3.small"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ],
    )
    .await;
    let id = between(r.text(), "<instanceId>", "</instanceId>")[0].to_owned();
    let describe = [
        ("Action", "DescribeInstances"),
        ("InstanceId.1", id.as_str()),
    ];
    let stop = [("Action", "StopInstances"), ("InstanceId.1", id.as_str())];
    let start = [("Action", "StartInstances"), ("InstanceId.1", id.as_str())];
    let r = call(&e, &stop).await;
    assert_eq!(r.status, 400, "pending cannot be stopped: {}", r.text());
    assert!(r.text().contains("IncorrectInstanceState"));
    tokio::time::advance(Duration::from_secs(120)).await;
    let ip = between(
        call(&e, &describe).await.text(),
        "<privateIpAddress>",
        "</privateIpAddress>",
    )[0]
    .to_owned();

    let r = call(&e, &stop).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("<currentState><code>64</code><name>stopping</name></currentState><previousState><code>16</code><name>running</name></previousState>"), "{}", r.text());
    assert!(call(&e, &describe)
        .await
        .text()
        .contains("<name>stopped</name>"));

    let r = call(&e, &start).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("<currentState><code>0</code><name>pending</name></currentState><previousState><code>80</code><name>stopped</name></previousState>"), "{}", r.text());
    tokio::time::advance(Duration::from_secs(120)).await;
    let d = call(&e, &describe).await;
    assert!(d.text().contains("<name>running</name>"), "{}", d.text());
    assert!(d
        .text()
        .contains(&format!("<privateIpAddress>{ip}</privateIpAddress>")));
    // Starting a running instance changes nothing.
    let r = call(&e, &start).await;
    assert_eq!(r.status, 200);
    assert!(r
        .text()
        .contains("<currentState><code>16</code><name>running</name></currentState>"));
    assert_eq!(e.records().len(), 1);

    call(
        &e,
        &[("Action", "TerminateInstances"), ("InstanceId.1", &id)],
    )
    .await;
    let r = call(&e, &start).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("IncorrectInstanceState"), "{}", r.text());
    let r = call(
        &e,
        &[
            ("Action", "StartInstances"),
            ("InstanceId.1", "i-0123456789abcdef0"),
        ],
    )
    .await;
    assert!(
        r.text().contains("InvalidInstanceID.NotFound"),
        "{}",
        r.text()
    );
}
