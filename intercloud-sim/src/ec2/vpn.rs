//! Site-to-site VPN: virtual private gateways, customer gateways, VPN connections (with
//! the escaped `customerGatewayConfiguration` document, two tunnels) and static routes.

use std::collections::BTreeMap;

use rand::Rng;

use super::catalog::default_vpc;
use super::xml::{el, esc, tag_set};
use super::{Ec2Error, Ec2Result, Params};
use crate::engine::{Engine, ObjRec, ResourceKind, State};

pub(super) fn run(e: &Engine, action: &str, p: &Params) -> Ec2Result {
    match action {
        "CreateVpnGateway" => create_vgw(e, p),
        "AttachVpnGateway" => attach(e, p, true),
        "DetachVpnGateway" => attach(e, p, false),
        "DescribeVpnGateways" => describe(e, p, ResourceKind::VpnGateway),
        "DeleteVpnGateway" => delete(e, p, ResourceKind::VpnGateway, "VpnGatewayId"),
        "CreateCustomerGateway" => create_cgw(e, p),
        "DescribeCustomerGateways" => describe(e, p, ResourceKind::CustomerGateway),
        "DeleteCustomerGateway" => delete(e, p, ResourceKind::CustomerGateway, "CustomerGatewayId"),
        "CreateVpnConnection" => create_conn(e, p),
        "DescribeVpnConnections" => describe(e, p, ResourceKind::VpnConnection),
        "DeleteVpnConnection" => delete(e, p, ResourceKind::VpnConnection, "VpnConnectionId"),
        "CreateVpnConnectionRoute" | "DeleteVpnConnectionRoute" => {
            route(e, p, action.starts_with("Create"))
        }
        other => Err(Ec2Error::client(
            "InvalidAction",
            format!("The action {other} is not valid for this web service."),
        )),
    }
}

fn check_type(p: &Params) -> Result<(), Ec2Error> {
    let t = p.required("Type")?;
    if t != "ipsec.1" {
        return Err(Ec2Error::invalid(t, "Type"));
    }
    Ok(())
}

fn find<'a>(
    st: &'a State,
    id: &str,
    kind: ResourceKind,
    now: tokio::time::Instant,
) -> Result<(usize, &'a ObjRec), Ec2Error> {
    st.obj_index
        .get(id)
        .map(|i| (*i, &st.objects[*i]))
        .filter(|(_, o)| o.kind == kind && o.alive(now))
        .ok_or_else(|| {
            let (code, what) = match kind {
                ResourceKind::VpnGateway => ("InvalidVpnGatewayID.NotFound", "vpnGateway"),
                ResourceKind::CustomerGateway => {
                    ("InvalidCustomerGatewayID.NotFound", "customerGateway")
                }
                _ => ("InvalidVpnConnectionID.NotFound", "vpnConnection"),
            };
            Ec2Error::client(code, format!("The {what} ID '{id}' does not exist"))
        })
}

/// The live VPN gateway `id`, or EC2's `InvalidVpnGatewayID.NotFound`.
pub(super) fn find_vgw<'a>(
    st: &'a State,
    id: &str,
    now: tokio::time::Instant,
) -> Result<(usize, &'a ObjRec), Ec2Error> {
    find(st, id, ResourceKind::VpnGateway, now)
}

fn create_vgw(e: &Engine, p: &Params) -> Ec2Result {
    check_type(p)?;
    let mut attrs = BTreeMap::new();
    attrs.insert(
        "amazonSideAsn".into(),
        p.get("AmazonSideAsn").unwrap_or("64512").to_owned(),
    );
    let tags = p.tag_specs("vpn-gateway");
    let mut st = e.lock();
    let id = Engine::ec2_id(&mut st, "vgw");
    let i = e.add_object(&mut st, ResourceKind::VpnGateway, id, String::new(), attrs);
    st.objects[i].tags = tags;
    Ok(format!(
        "<vpnGateway>{}</vpnGateway>",
        obj_body(&st.objects[i])
    ))
}

fn create_cgw(e: &Engine, p: &Params) -> Ec2Result {
    check_type(p)?;
    let ip = p
        .get("IpAddress")
        .or(p.get("PublicIp"))
        .ok_or_else(|| Ec2Error::missing("IpAddress"))?;
    if ip.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(Ec2Error::invalid(ip, "IpAddress"));
    }
    let mut attrs = BTreeMap::new();
    attrs.insert("ipAddress".into(), ip.to_owned());
    attrs.insert(
        "bgpAsn".into(),
        p.get("BgpAsn").unwrap_or("65000").to_owned(),
    );
    let tags = p.tag_specs("customer-gateway");
    let mut st = e.lock();
    let id = Engine::ec2_id(&mut st, "cgw");
    let i = e.add_object(
        &mut st,
        ResourceKind::CustomerGateway,
        id,
        String::new(),
        attrs,
    );
    st.objects[i].tags = tags;
    Ok(format!(
        "<customerGateway>{}</customerGateway>",
        obj_body(&st.objects[i])
    ))
}

fn psk(st: &mut State) -> String {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
    (0..32)
        .map(|_| char::from(ALPHA[st.rng.random_range(0..ALPHA.len())]))
        .collect()
}

fn create_conn(e: &Engine, p: &Params) -> Ec2Result {
    check_type(p)?;
    let cgw = p.required("CustomerGatewayId")?.to_owned();
    let vgw = p.required("VpnGatewayId")?.to_owned();
    let now = e.now();
    let mut st = e.lock();
    let cgw_ip = find(&st, &cgw, ResourceKind::CustomerGateway, now)?
        .1
        .attr("ipAddress")
        .to_owned();
    find(&st, &vgw, ResourceKind::VpnGateway, now)?;
    let mut attrs = BTreeMap::new();
    attrs.insert("customerGatewayId".into(), cgw);
    attrs.insert("vpnGatewayId".into(), vgw);
    attrs.insert("cgwIp".into(), cgw_ip);
    attrs.insert(
        "staticRoutesOnly".into(),
        p.get("Options.StaticRoutesOnly")
            .unwrap_or("false")
            .to_owned(),
    );
    for t in 0..2 {
        // A key the caller chose (TunnelOptions.N.PreSharedKey) is used as given.
        let given = p
            .get(&format!("Options.TunnelOptions.{}.PreSharedKey", t + 1))
            .map(str::to_owned);
        if let Some(k) = &given {
            let ok = (8..=64).contains(&k.len())
                && !k.starts_with('0')
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
            if !ok {
                return Err(Ec2Error::client(
                    "InvalidParameterValue",
                    "The pre-shared key must be 8-64 letters, digits, periods or underscores, \
                     not starting with zero",
                ));
            }
        }
        let k = given.unwrap_or_else(|| psk(&mut st));
        attrs.insert(format!("psk{t}"), k);
        let o: u8 = st.rng.random_range(1..250);
        attrs.insert(
            format!("outside{t}"),
            format!("52.{}.{o}.{}", 10 + t, 100 + t),
        );
        let inside: u8 = st.rng.random_range(0..63);
        attrs.insert(
            format!("inside{t}"),
            format!("169.254.{}.{}", 10 + t * 10, inside * 4),
        );
    }
    let tags = p.tag_specs("vpn-connection");
    let id = Engine::ec2_id(&mut st, "vpn");
    let i = e.add_object(
        &mut st,
        ResourceKind::VpnConnection,
        id,
        String::new(),
        attrs,
    );
    st.objects[i].tags = tags;
    Ok(format!(
        "<vpnConnection>{}</vpnConnection>",
        obj_body(&st.objects[i])
    ))
}

fn config_doc(o: &ObjRec) -> String {
    let mut tunnels = String::new();
    for t in 0..2 {
        let inside = o.attr(&format!("inside{t}"));
        let (cgw_in, vgw_in) = match inside
            .rsplit_once('.')
            .and_then(|(pre, last)| last.parse::<u8>().ok().map(|n| (pre, n)))
        {
            Some((pre, n)) => (format!("{pre}.{}", n + 2), format!("{pre}.{}", n + 1)),
            None => (inside.to_owned(), inside.to_owned()),
        };
        tunnels.push_str(&format!(
            "<ipsec_tunnel><customer_gateway><tunnel_outside_address><ip_address>{}</ip_address></tunnel_outside_address><tunnel_inside_address><ip_address>{cgw_in}</ip_address><network_mask>255.255.255.252</network_mask><network_cidr>30</network_cidr></tunnel_inside_address></customer_gateway><vpn_gateway><tunnel_outside_address><ip_address>{}</ip_address></tunnel_outside_address><tunnel_inside_address><ip_address>{vgw_in}</ip_address><network_mask>255.255.255.252</network_mask><network_cidr>30</network_cidr></tunnel_inside_address></vpn_gateway><ike><authentication_protocol>sha1</authentication_protocol><encryption_protocol>aes-128-cbc</encryption_protocol><lifetime>28800</lifetime><perfect_forward_secrecy>group2</perfect_forward_secrecy><mode>main</mode><pre_shared_key>{}</pre_shared_key></ike><ipsec><protocol>esp</protocol><authentication_protocol>hmac-sha1-96</authentication_protocol><encryption_protocol>aes-128-cbc</encryption_protocol><lifetime>3600</lifetime><perfect_forward_secrecy>group2</perfect_forward_secrecy><mode>tunnel</mode><clear_df_bit>true</clear_df_bit><fragmentation_before_encryption>true</fragmentation_before_encryption><tcp_mss_adjustment>1379</tcp_mss_adjustment><dead_peer_detection><delay>10</delay><retries>3</retries></dead_peer_detection></ipsec></ipsec_tunnel>",
            o.attr("cgwIp"),
            o.attr(&format!("outside{t}")),
            o.attr(&format!("psk{t}")),
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<vpn_connection id=\"{}\"><customer_gateway_id>{}</customer_gateway_id><vpn_gateway_id>{}</vpn_gateway_id><vpn_connection_type>ipsec.1</vpn_connection_type>{tunnels}</vpn_connection>",
        o.id,
        o.attr("customerGatewayId"),
        o.attr("vpnGatewayId")
    )
}

fn obj_body(o: &ObjRec) -> String {
    let state = "available";
    match o.kind {
        ResourceKind::VpnGateway => {
            let att = match o.attrs.get("vpcId") {
                Some(v) => format!(
                    "<attachments><item>{}<state>attached</state></item></attachments>",
                    el("vpcId", v)
                ),
                None => "<attachments/>".into(),
            };
            format!(
                "{}<state>{state}</state><type>ipsec.1</type>{}{att}{}",
                el("vpnGatewayId", &o.id),
                el("amazonSideAsn", o.attr("amazonSideAsn")),
                tag_set(&o.tags)
            )
        }
        ResourceKind::CustomerGateway => format!(
            "{}<state>{state}</state><type>ipsec.1</type>{}{}{}",
            el("customerGatewayId", &o.id),
            el("ipAddress", o.attr("ipAddress")),
            el("bgpAsn", o.attr("bgpAsn")),
            tag_set(&o.tags)
        ),
        _ => {
            let routes: String = o
                .attrs
                .iter()
                .filter(|(k, _)| k.starts_with("route:"))
                .map(|(_, cidr)| {
                    format!(
                        "<item>{}<source>Static</source><state>available</state></item>",
                        el("destinationCidrBlock", cidr)
                    )
                })
                .collect();
            let telemetry: String = (0..2)
                .map(|t| format!("<item>{}<status>UP</status><acceptedRouteCount>0</acceptedRouteCount></item>", el("outsideIpAddress", o.attr(&format!("outside{t}")))))
                .collect();
            format!(
                "{}<state>{state}</state><customerGatewayConfiguration>{}</customerGatewayConfiguration><type>ipsec.1</type>{}{}<options><staticRoutesOnly>{}</staticRoutesOnly></options><routes>{routes}</routes><vgwTelemetry>{telemetry}</vgwTelemetry>{}",
                el("vpnConnectionId", &o.id),
                esc(&config_doc(o)),
                el("customerGatewayId", o.attr("customerGatewayId")),
                el("vpnGatewayId", o.attr("vpnGatewayId")),
                esc(o.attr("staticRoutesOnly")),
                tag_set(&o.tags)
            )
        }
    }
}

fn attach(e: &Engine, p: &Params, attach: bool) -> Ec2Result {
    let vgw = p.required("VpnGatewayId")?.to_owned();
    let vpc = p.required("VpcId")?.to_owned();
    if vpc != default_vpc(e) {
        return Err(Ec2Error::client(
            "InvalidVpcID.NotFound",
            format!("The vpc ID '{vpc}' does not exist"),
        ));
    }
    let now = e.now();
    let mut st = e.lock();
    let (i, _) = find(&st, &vgw, ResourceKind::VpnGateway, now)?;
    if attach {
        st.objects[i].attrs.insert("vpcId".into(), vpc.clone());
        Ok(format!(
            "<attachment>{}<state>attached</state></attachment>",
            el("vpcId", &vpc)
        ))
    } else {
        // A detached gateway propagates into no route table any more.
        st.objects[i]
            .attrs
            .retain(|k, _| k != "vpcId" && !k.starts_with("propagates:"));
        Ok("<return>true</return>".into())
    }
}

fn route(e: &Engine, p: &Params, add: bool) -> Ec2Result {
    let id = p.required("VpnConnectionId")?.to_owned();
    let cidr = p.required("DestinationCidrBlock")?.to_owned();
    let now = e.now();
    let mut st = e.lock();
    let (i, _) = find(&st, &id, ResourceKind::VpnConnection, now)?;
    let key = format!("route:{cidr}");
    if add {
        st.objects[i].attrs.insert(key, cidr);
    } else {
        st.objects[i].attrs.remove(&key);
    }
    Ok("<return>true</return>".into())
}

fn describe(e: &Engine, p: &Params, kind: ResourceKind) -> Ec2Result {
    let (ids_param, set, id_attr) = match kind {
        ResourceKind::VpnGateway => ("VpnGatewayId", "vpnGatewaySet", ""),
        ResourceKind::CustomerGateway => ("CustomerGatewayId", "customerGatewaySet", ""),
        _ => ("VpnConnectionId", "vpnConnectionSet", ""),
    };
    let _ = id_attr;
    let ids = p.list(ids_param);
    let filters = p.filters();
    let now = e.now();
    let st = e.lock();
    for id in &ids {
        find(&st, id, kind, now)?;
    }
    let mut items = String::new();
    for o in st.objects.iter().filter(|o| o.kind == kind && o.alive(now)) {
        if !ids.is_empty() && !ids.contains(&o.id) {
            continue;
        }
        let ok = filters.iter().all(|(name, vals)| {
            let field = if let Some(k) = name.strip_prefix("tag:") {
                o.tags
                    .iter()
                    .find(|(tk, _)| tk == k)
                    .map(|(_, v)| v.clone())
            } else {
                match name.as_str() {
                    "state" => Some("available".to_owned()),
                    "vpn-gateway-id" => o
                        .attrs
                        .get("vpnGatewayId")
                        .cloned()
                        .or_else(|| (kind == ResourceKind::VpnGateway).then(|| o.id.clone())),
                    "customer-gateway-id" => {
                        o.attrs.get("customerGatewayId").cloned().or_else(|| {
                            (kind == ResourceKind::CustomerGateway).then(|| o.id.clone())
                        })
                    }
                    "attachment.vpc-id" => o.attrs.get("vpcId").cloned(),
                    "option.static-routes-only" => o.attrs.get("staticRoutesOnly").cloned(),
                    _ => None,
                }
            };
            field.is_some_and(|f| vals.contains(&f))
        });
        if ok {
            items.push_str(&format!("<item>{}</item>", obj_body(o)));
        }
    }
    Ok(format!("<{set}>{items}</{set}>"))
}

fn delete(e: &Engine, p: &Params, kind: ResourceKind, param: &str) -> Ec2Result {
    let id = p.required(param)?.to_owned();
    let now = e.now();
    let mut st = e.lock();
    let (i, _) = find(&st, &id, kind, now)?;
    if kind != ResourceKind::VpnConnection {
        let key = if kind == ResourceKind::VpnGateway {
            "vpnGatewayId"
        } else {
            "customerGatewayId"
        };
        if st
            .objects
            .iter()
            .any(|o| o.kind == ResourceKind::VpnConnection && o.alive(now) && o.attr(key) == id)
        {
            return Err(Ec2Error::client(
                "IncorrectState",
                format!("The {} '{id}' is in use.", kind.as_str()),
            ));
        }
    }
    st.objects[i].deleted = Some(now);
    Ok("<return>true</return>".into())
}
