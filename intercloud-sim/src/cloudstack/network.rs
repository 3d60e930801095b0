//! The site's VPC tier (`listNetworks`) and the guest addresses VMs get in it.
//!
//! Each CloudStack site has one VPC, `10.{100+i}.0.0/16` for the site's position `i`
//! in the federation (1-based: the seed's `hokkaido` is `10.101.0.0/16`), and one tier
//! in it, `10.{100+i}.0.0/20` (gateway `.0.1`; a /20 holds the seed site's 3,500 VMs
//! of capacity). A VM gets the next free host from `.0.10` up, or the `ipaddress` its
//! deploy asks for (with or without `networkids`); one outside the tier is a parameter
//! error (431). A
//! requested address another VM holds fails as CloudStack's guest network guru does:
//! `InsufficientVirtualNetworkCapacityException("Unable to acquire Guest IP address
//! for network " + network)` (apache/cloudstack `GuestNetworkGuru.allocate`, after
//! `NetworkModelImpl.getAvailableIps` logs "Requested ip address … is already in use
//! in network"), which `DeployVMCmd.create` answers as `INSUFFICIENT_CAPACITY_ERROR`
//! (533).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::{json, Map, Value};

use super::catalog::zone_name;
use super::{
    fixed_id, list_payload, owner, paginate, CsError, CsResult, Params, KIND_NETWORK, KIND_VPC,
    KIND_ZONE,
};
use crate::engine::ipam;
use crate::engine::{Engine, State};

/// The tier's hosts a VM never gets by default (gateway and router addresses): VMs
/// get addresses from `.10` up.
const RESERVED_HOSTS: usize = 9;

fn second_octet(e: &Engine) -> u8 {
    100 + e.site_index() % 156
}

/// The site's VPC CIDR.
pub(super) fn vpc(e: &Engine) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(10, second_octet(e), 0, 0), 16)
}

/// The site's VPC tier, where every VM is.
pub(super) fn tier(e: &Engine) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(10, second_octet(e), 0, 0), 20)
}

/// The tier's gateway: its first host.
pub(super) fn gateway(e: &Engine) -> Ipv4Addr {
    Ipv4Addr::new(10, second_octet(e), 0, 1)
}

/// The tier's id.
pub(super) fn tier_id(e: &Engine) -> String {
    fixed_id(e, KIND_NETWORK, 0)
}

/// The tier's name.
pub(super) fn tier_name(e: &Engine) -> String {
    format!("{}-tier1", e.cfg.id)
}

/// How `NetworkVO.toString` names the tier in messages.
fn tier_label() -> &'static str {
    "Ntwk[204|Guest|8]"
}

fn tier_json(e: &Engine) -> Value {
    let t = tier(e);
    let mut m = Map::new();
    m.insert("id".into(), json!(tier_id(e)));
    m.insert("name".into(), json!(tier_name(e)));
    m.insert("displaytext".into(), json!(tier_name(e)));
    m.insert("broadcastdomaintype".into(), json!("Vlan"));
    m.insert("traffictype".into(), json!("Guest"));
    m.insert("gateway".into(), json!(gateway(e).to_string()));
    m.insert("netmask".into(), json!(t.netmask().to_string()));
    m.insert("cidr".into(), json!(t.to_string()));
    m.insert("zoneid".into(), json!(fixed_id(e, KIND_ZONE, 0)));
    m.insert("zonename".into(), json!(zone_name(e)));
    m.insert(
        "networkofferingname".into(),
        json!("DefaultIsolatedNetworkOfferingForVpcNetworks"),
    );
    m.insert("type".into(), json!("Isolated"));
    m.insert("state".into(), json!("Implemented"));
    m.insert("vpcid".into(), json!(fixed_id(e, KIND_VPC, 0)));
    m.insert("vpcname".into(), json!(format!("{}-vpc", e.cfg.id)));
    m.insert("acltype".into(), json!("Account"));
    m.insert("isdefault".into(), json!(false));
    owner(e, &mut m);
    Value::Object(m)
}

/// `listNetworks`: the one tier, filtered by `id`, `zoneid`, `vpcid`.
pub(super) fn list(e: &Engine, p: &Params) -> CsResult {
    let n = tier_json(e);
    let keep = ["id", "zoneid", "vpcid"]
        .iter()
        .all(|k| p.get(k).is_none_or(|want| n[*k] == want));
    let items = if keep { vec![n] } else { Vec::new() };
    let (items, total) = paginate(p, items)?;
    Ok(list_payload("network", items, total))
}

/// The address a new VM gets: the requested `ipaddress` (checked) or the next free one.
pub(super) fn address_for(e: &Engine, st: &State, p: &Params) -> Result<Ipv4Addr, CsError> {
    if let Some(ids) = p.get("networkids") {
        let want = tier_id(e);
        if let Some(bad) = ids.split(',').find(|id| **id != *want) {
            return Err(CsError::param(format!(
                "Unable to find network by id {bad}"
            )));
        }
    }
    let t = tier(e);
    let taken = ipam::in_use(st, e.now());
    let Some(raw) = p.get("ipaddress") else {
        return ipam::next_free(t, RESERVED_HOSTS, &taken, &[]).ok_or_else(|| unable(533));
    };
    let ip: Ipv4Addr = raw
        .parse()
        .map_err(|_| CsError::param(format!("Invalid specified IPv4 address {raw}")))?;
    if !t.contains(&ip) || ip == t.network() || ip == t.broadcast() || ip == gateway(e) {
        return Err(CsError::param(format!(
            "Requested ip address {ip} doesn't belong to the network {} cidr {}",
            tier_label(),
            t
        )));
    }
    if taken.contains(&ip) {
        return Err(unable(533));
    }
    Ok(ip)
}

fn unable(code: u16) -> CsError {
    CsError::new(
        code,
        format!(
            "Unable to acquire Guest IP address for network {}",
            tier_label()
        ),
    )
}
