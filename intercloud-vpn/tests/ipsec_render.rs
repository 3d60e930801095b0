//! strongSwan configs rendered from the clouds' recorded VPN responses.

use intercloud_vpn::ipsec::{swanctl_conf, Ec2Phase, IkeVersion, IpsecPolicy, SiteToSite};
use secrecy::SecretString;

const EC2: &str = include_str!("fixtures/ec2/create_vpn_connection.xml");
const CLOUDSTACK: &str = include_str!("fixtures/cloudstack/listVpnCustomerGateways_default.json");

/// The text of the first `<tag>…</tag>` inside `xml` (test helper; the EC2 backend owns
/// the real parser).
fn element<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open).expect("element present") + open.len();
    let end = start + xml[start..].find(&close).expect("element closed");
    xml[start..end].trim()
}

fn phase(block: &str) -> Ec2Phase {
    Ec2Phase {
        encryption: element(block, "encryption_protocol").into(),
        authentication: element(block, "authentication_protocol").into(),
        pfs_group: Some(element(block, "perfect_forward_secrecy").into()),
        lifetime_s: element(block, "lifetime").parse().expect("lifetime"),
        mode: Some(element(block, "mode").into()),
    }
}

#[test]
fn ec2_tunnel_from_recorded_customer_gateway_configuration() {
    let cfg = element(EC2, "customerGatewayConfiguration")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let tunnel = element(&cfg, "ipsec_tunnel");
    let ike = phase(element(tunnel, "ike"));
    let ipsec = phase(element(tunnel, "ipsec"));
    let policy = IpsecPolicy::ec2(&ike, &ipsec, Some(10)).expect("policy");
    assert_eq!(policy.version, IkeVersion::V1, "mode main is IKEv1");
    assert_eq!(policy.ike, "aes128-sha1-modp1024");
    assert_eq!(policy.esp, "aes128-sha1-modp1024");
    assert_eq!(
        (policy.ike_lifetime_s, policy.esp_lifetime_s),
        (28_800, 3_600)
    );

    let psk = element(element(tunnel, "ike"), "pre_shared_key");
    let vgw = element(
        element(element(tunnel, "vpn_gateway"), "tunnel_outside_address"),
        "ip_address",
    );
    let conn = SiteToSite {
        name: "ec2-tunnel1".into(),
        local_addr: "10.0.0.5".into(),
        remote_addr: vgw.into(),
        local_id: Some(
            element(
                element(
                    element(tunnel, "customer_gateway"),
                    "tunnel_outside_address",
                ),
                "ip_address",
            )
            .into(),
        ),
        remote_id: None,
        local_ts: vec!["10.77.0.0/24".into()],
        remote_ts: vec!["172.31.0.0/16".into()],
        policy,
        initiate: true,
        psk: SecretString::from(psk.to_owned()),
    };
    let text = swanctl_conf(std::slice::from_ref(&conn)).expect("render");
    assert!(text.contains("version = 1\n"), "{text}");
    assert!(text.contains("remote_addrs = 52.2.144.13\n"));
    assert!(
        text.contains("id = 12.1.2.3\n"),
        "identity is the public address behind NAT"
    );
    assert!(
        text.contains("start_action = start\n"),
        "EC2 needs the customer side to initiate"
    );
    let hex: String = psk.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(text.contains(&format!("secret = 0x{hex}\n")));
    assert!(!text.contains(psk) && !format!("{conn:?}").contains(psk));
}

#[test]
fn cloudstack_customer_gateway_from_recorded_response() {
    let v: serde_json::Value = serde_json::from_str(CLOUDSTACK).expect("json");
    let gw = &v["listvpncustomergatewaysresponse"]["vpncustomergateway"][0];
    let s = |k: &str| gw[k].as_str().expect(k);
    let n = |k: &str| u32::try_from(gw[k].as_u64().expect(k)).expect(k);
    let policy = IpsecPolicy::cloudstack(
        s("ikepolicy"),
        s("esppolicy"),
        n("ikelifetime"),
        n("esplifetime"),
        None,
        gw["dpd"].as_bool().expect("dpd"),
    )
    .expect("policy");
    assert_eq!(
        policy.ike, "3des-md5-modp1536",
        "CloudStack's default IKE group added"
    );
    assert_eq!(policy.esp, "3des-md5");
    assert_eq!(policy.version, IkeVersion::Any);
    assert_eq!(policy.dpd_delay_s, None);
}
