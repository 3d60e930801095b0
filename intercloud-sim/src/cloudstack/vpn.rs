//! Site-to-site VPN (gateway, customer gateway, connection) and remote-access VPN
//! (L2TP/IPsec, with users).

use std::collections::BTreeMap;

use rand::Rng;
use serde_json::{json, Map, Value};

use super::catalog::public_ip_rows;
use super::vms::short_job;
use super::{date, fixed_id, list_payload, owner, paginate, CsError, CsResult, Params, KIND_VPC};
use crate::engine::{Engine, JobResult, ObjRec, ResourceKind};

const NUMERIC: &[&str] = &["ikelifetime", "esplifetime"];
const BOOLEAN: &[&str] = &[
    "dpd",
    "forceencap",
    "passive",
    "fordisplay",
    "splitconnections",
];

/// The JSON of a VPN object: its attributes (numbers and booleans typed), id, owner.
pub(super) fn obj_json(e: &Engine, o: &ObjRec) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(o.id));
    for (k, v) in &o.attrs {
        let val = if NUMERIC.contains(&k.as_str()) {
            v.parse::<u64>()
                .map(Value::from)
                .unwrap_or_else(|_| json!(v))
        } else if BOOLEAN.contains(&k.as_str()) {
            json!(v == "true")
        } else {
            json!(v)
        };
        m.insert(k.clone(), val);
    }
    if !o.name.is_empty() && o.kind != ResourceKind::VpnUser {
        m.insert("name".into(), json!(o.name));
    }
    m.insert("created".into(), json!(date(e, o.created)));
    owner(e, &mut m);
    Value::Object(m)
}

fn kind_of(cmd: &str) -> Option<(ResourceKind, &'static str)> {
    Some(match cmd {
        "createVpnGateway" | "listVpnGateways" | "deleteVpnGateway" => {
            (ResourceKind::VpnGateway, "vpngateway")
        }
        "createVpnCustomerGateway" | "listVpnCustomerGateways" | "deleteVpnCustomerGateway" => {
            (ResourceKind::CustomerGateway, "vpncustomergateway")
        }
        "createVpnConnection" | "listVpnConnections" | "deleteVpnConnection" => {
            (ResourceKind::VpnConnection, "vpnconnection")
        }
        "createRemoteAccessVpn" | "listRemoteAccessVpns" | "deleteRemoteAccessVpn" => {
            (ResourceKind::RemoteAccessVpn, "remoteaccessvpn")
        }
        "addVpnUser" | "listVpnUsers" | "removeVpnUser" => (ResourceKind::VpnUser, "vpnuser"),
        _ => return None,
    })
}

pub(super) fn run(e: &Engine, cmd: &str, p: &Params) -> CsResult {
    let Some((kind, name)) = kind_of(cmd) else {
        return Err(CsError::new(
            432,
            format!("The given command {cmd} does not exist or it is not available for user"),
        ));
    };
    if cmd.starts_with("list") {
        return list(e, kind, name, p);
    }
    if cmd.starts_with("delete") || cmd.starts_with("remove") {
        return delete(e, cmd, kind, p);
    }
    create(e, cmd, kind, name, p)
}

fn list(e: &Engine, kind: ResourceKind, name: &str, p: &Params) -> CsResult {
    let now = e.now();
    let st = e.lock();
    let items: Vec<Value> = st
        .objects
        .iter()
        .filter(|o| o.kind == kind && o.alive(now))
        .filter(|o| {
            p.get("id").is_none_or(|i| i == o.id)
                && ["vpcid", "publicipid", "username", "s2svpngatewayid"]
                    .iter()
                    .all(|k| {
                        p.get(k)
                            .is_none_or(|want| o.attrs.get(*k).is_some_and(|v| v == want))
                    })
        })
        .map(|o| obj_json(e, o))
        .collect();
    drop(st);
    let (items, total) = paginate(p, items)?;
    Ok(list_payload(name, items, total))
}

fn random_psk(st: &mut crate::engine::State) -> String {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..24)
        .map(|_| char::from(ALPHA[st.rng.random_range(0..ALPHA.len())]))
        .collect()
}

fn create(e: &Engine, cmd: &str, kind: ResourceKind, name: &'static str, p: &Params) -> CsResult {
    let mut attrs = BTreeMap::new();
    let req = |k: &str| -> Result<String, CsError> { p.required(cmd, k).map(str::to_owned) };
    let now = e.now();
    let mut obj_name = String::new();
    let mut reply_id = true;
    match kind {
        ResourceKind::VpnGateway => {
            let vpc = req("vpcid")?;
            if vpc != fixed_id(e, KIND_VPC, 0) {
                return Err(CsError::param(format!("Unable to find vpc by id {vpc}")));
            }
            let st = e.lock();
            if st.objects.iter().any(|o| o.kind == kind && o.alive(now)) {
                return Err(CsError::param(format!(
                    "The VPN gateway of VPC {vpc} already exists!"
                )));
            }
            drop(st);
            attrs.insert("vpcid".into(), vpc);
            attrs.insert("publicip".into(), public_ip_rows(e)[0].1.clone());
            attrs.insert("fordisplay".into(), "true".into());
        }
        ResourceKind::CustomerGateway => {
            reply_id = false;
            for k in ["gateway", "cidrlist", "ipsecpsk", "ikepolicy", "esppolicy"] {
                attrs.insert(k.to_owned(), req(k)?);
            }
            if attrs["ipsecpsk"].contains(['\n', '"']) {
                return Err(CsError::param(
                    "The customer gateway ipsec psk contains invalid characters",
                ));
            }
            attrs.insert("ipaddress".into(), attrs["gateway"].clone());
            for (k, d) in [
                ("ikelifetime", "86400"),
                ("esplifetime", "3600"),
                ("dpd", "false"),
                ("forceencap", "false"),
                ("ikeversion", "ike"),
            ] {
                attrs.insert(k.to_owned(), p.get(k).unwrap_or(d).to_owned());
            }
            obj_name = p
                .get("name")
                .map_or_else(|| format!("VPN-{}", attrs["gateway"]), str::to_owned);
        }
        ResourceKind::VpnConnection => {
            reply_id = false;
            let gw = req("s2svpngatewayid")?;
            let cgw = req("s2scustomergatewayid")?;
            let now = e.now();
            let st = e.lock();
            let find = |id: &str, k: ResourceKind| {
                st.obj_index
                    .get(id)
                    .map(|i| &st.objects[*i])
                    .filter(|o| o.kind == k && o.alive(now))
            };
            let g = find(&gw, ResourceKind::VpnGateway).ok_or_else(|| {
                CsError::param(format!(
                    "Unable to find specified Site to Site VPN gateway {gw} !"
                ))
            })?;
            let c = find(&cgw, ResourceKind::CustomerGateway).ok_or_else(|| {
                CsError::param(format!(
                    "Unable to find specified Site to Site VPN customer gateway {cgw} !"
                ))
            })?;
            attrs.insert("publicip".into(), g.attr("publicip").to_owned());
            for k in [
                "gateway",
                "cidrlist",
                "ipsecpsk",
                "ikepolicy",
                "esppolicy",
                "ikelifetime",
                "esplifetime",
                "dpd",
                "forceencap",
            ] {
                attrs.insert(k.to_owned(), c.attr(k).to_owned());
            }
            drop(st);
            let passive = p.flag("passive");
            attrs.insert("s2svpngatewayid".into(), gw);
            attrs.insert("s2scustomergatewayid".into(), cgw);
            attrs.insert("passive".into(), passive.to_string());
            attrs.insert(
                "state".into(),
                if passive { "Pending" } else { "Connected" }.into(),
            );
        }
        ResourceKind::RemoteAccessVpn => {
            let ipid = req("publicipid")?;
            let ip = public_ip_rows(e)
                .into_iter()
                .find(|(id, _)| *id == ipid)
                .ok_or_else(|| {
                    CsError::param(format!("Unable to find public ip address by id {ipid}"))
                })?;
            let st = e.lock();
            if st
                .objects
                .iter()
                .any(|o| o.kind == kind && o.alive(now) && o.attr("publicipid") == ipid)
            {
                return Err(CsError::new(
                    537,
                    format!(
                        "A Remote Access VPN already exists for this public Ip address {}",
                        ip.1
                    ),
                ));
            }
            drop(st);
            attrs.insert("publicipid".into(), ipid);
            attrs.insert("publicip".into(), ip.1);
            attrs.insert(
                "iprange".into(),
                p.get("iprange").unwrap_or("10.1.2.1-10.1.2.8").to_owned(),
            );
            attrs.insert("state".into(), "Running".into());
            attrs.insert("fordisplay".into(), "true".into());
            attrs.insert("type".into(), "L2TP".into());
        }
        ResourceKind::VpnUser => {
            let user = req("username")?;
            let pass = req("password")?;
            if pass.is_empty() {
                return Err(CsError::param("Password cannot be empty"));
            }
            let st = e.lock();
            if st
                .objects
                .iter()
                .any(|o| o.kind == kind && o.alive(now) && o.attr("username") == user)
            {
                return Err(CsError::param(format!(
                    "VPN User with name {user} is already added for account admin"
                )));
            }
            drop(st);
            obj_name = user.clone();
            attrs.insert("username".into(), user);
            attrs.insert("state".into(), "Active".into());
        }
        ResourceKind::Vm => return Err(CsError::param("unexpected")),
    }
    let mut st = e.lock();
    if kind == ResourceKind::RemoteAccessVpn {
        let psk = random_psk(&mut st);
        attrs.insert("presharedkey".into(), psk);
    }
    let id = Engine::uuid(&mut st);
    let idx = e.add_object(&mut st, kind, id.clone(), obj_name, attrs);
    let done = now + e.delay(&st, short_job(e));
    let static_cmd = static_name(cmd);
    let job = e.add_job(
        &mut st,
        static_cmd,
        done,
        JobResult::Object(idx, name),
        (instance_type(kind), id.clone()),
    );
    Ok(if reply_id {
        json!({ "id": id, "jobid": job })
    } else {
        json!({ "jobid": job })
    })
}

fn instance_type(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::VpnGateway | ResourceKind::CustomerGateway | ResourceKind::VpnConnection => {
            "Site2SiteVpn"
        }
        ResourceKind::RemoteAccessVpn => "RemoteAccessVpn",
        _ => "None",
    }
}

fn static_name(cmd: &str) -> &'static str {
    [
        "createVpnGateway",
        "deleteVpnGateway",
        "createVpnCustomerGateway",
        "deleteVpnCustomerGateway",
        "createVpnConnection",
        "deleteVpnConnection",
        "createRemoteAccessVpn",
        "deleteRemoteAccessVpn",
        "addVpnUser",
        "removeVpnUser",
    ]
    .into_iter()
    .find(|c| *c == cmd)
    .unwrap_or("unknown")
}

fn delete(e: &Engine, cmd: &str, kind: ResourceKind, p: &Params) -> CsResult {
    let now = e.now();
    let (field, value) = match kind {
        ResourceKind::RemoteAccessVpn => ("publicipid", p.required(cmd, "publicipid")?),
        ResourceKind::VpnUser => ("username", p.required(cmd, "username")?),
        _ => ("id", p.required(cmd, "id")?),
    };
    let mut st = e.lock();
    let idx = st
        .objects
        .iter()
        .position(|o| {
            o.kind == kind
                && o.alive(now)
                && if field == "id" {
                    o.id == value
                } else {
                    o.attr(field) == value
                }
        })
        .ok_or_else(|| {
            CsError::param(format!(
                "Unable to find {} by {field} {value}",
                kind.as_str()
            ))
        })?;
    if kind == ResourceKind::VpnGateway || kind == ResourceKind::CustomerGateway {
        let id = st.objects[idx].id.clone();
        let key = if kind == ResourceKind::VpnGateway {
            "s2svpngatewayid"
        } else {
            "s2scustomergatewayid"
        };
        if st
            .objects
            .iter()
            .any(|o| o.kind == ResourceKind::VpnConnection && o.alive(now) && o.attr(key) == id)
        {
            return Err(CsError::new(
                536,
                format!(
                    "Unable to delete {} {id} because there is still related VPN connections!",
                    kind.as_str()
                ),
            ));
        }
    }
    let done = now + e.delay(&st, short_job(e));
    st.objects[idx].deleted = Some(now);
    let id = st.objects[idx].id.clone();
    let job = e.add_job(
        &mut st,
        static_name(cmd),
        done,
        JobResult::Success,
        (instance_type(kind), id),
    );
    Ok(json!({ "jobid": job }))
}
