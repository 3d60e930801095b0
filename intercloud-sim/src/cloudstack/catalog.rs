//! Read-only catalog calls: zones, service offerings, templates, limits, capacity,
//! public IPs and the default VPC.

use serde_json::{json, Map, Value};

use super::{
    fixed_id, list_payload, owner, paginate, CsError, CsResult, Params, KIND_OFFERING,
    KIND_PUBLIC_IP, KIND_TEMPLATE, KIND_VPC, KIND_ZONE,
};
use crate::engine::{Engine, Phase};

pub(super) fn zone_name(e: &Engine) -> String {
    e.cfg
        .zone
        .clone()
        .unwrap_or_else(|| format!("{}-zone", e.cfg.id))
}

pub(super) fn zones(e: &Engine, p: &Params) -> CsResult {
    let id = fixed_id(e, KIND_ZONE, 0);
    let name = zone_name(e);
    if p.get("id").is_some_and(|i| i != id) || p.get("name").is_some_and(|n| n != name) {
        return Ok(json!({}));
    }
    let z = json!({
        "id": id, "name": name, "networktype": "Advanced", "securitygroupsenabled": false,
        "allocationstate": "Enabled", "dhcpprovider": "VirtualRouter", "localstorageenabled": false,
        "tags": []
    });
    Ok(list_payload("zone", vec![z], 1))
}

pub(super) fn offerings(e: &Engine, p: &Params) -> CsResult {
    let items: Vec<Value> = e
        .cfg
        .offerings
        .iter()
        .enumerate()
        .map(|(i, o)| {
            json!({
                "id": fixed_id(e, KIND_OFFERING, i), "name": o.name,
                "displaytext": format!("{} CPU, {} MB RAM", o.cpus, o.memory_mb),
                "cpunumber": o.cpus, "cpuspeed": 2000, "memory": o.memory_mb,
                "storagetype": "shared", "offerha": false, "limitcpuuse": false,
                "issystem": false, "defaultuse": false, "iscustomized": false
            })
        })
        .filter(|v| {
            p.get("id").is_none_or(|id| v["id"] == id)
                && p.get("name").is_none_or(|n| v["name"] == n)
        })
        .collect();
    let (items, total) = paginate(p, items)?;
    Ok(list_payload("serviceoffering", items, total))
}

pub(super) fn templates(e: &Engine, p: &Params) -> CsResult {
    let filter = p.required("listTemplates", "templatefilter")?;
    const FILTERS: [&str; 7] = [
        "featured",
        "self",
        "selfexecutable",
        "sharedexecutable",
        "executable",
        "community",
        "all",
    ];
    if !FILTERS.contains(&filter) {
        return Err(CsError::param(format!(
            "Unable to translate parameter templatefilter: {filter}"
        )));
    }
    let zone = fixed_id(e, KIND_ZONE, 0);
    let items: Vec<Value> = e
        .cfg
        .images
        .iter()
        .enumerate()
        .map(|(i, name)| {
            json!({
                "id": fixed_id(e, KIND_TEMPLATE, i), "name": name, "displaytext": name,
                "ispublic": true, "isready": true, "isfeatured": true, "crossZones": false,
                "ostypename": "Other Linux (64-bit)", "format": "QCOW2", "hypervisor": "KVM",
                "status": "Download Complete", "templatetype": "USER", "size": 10_737_418_240_u64,
                "zoneid": zone, "zonename": zone_name(e), "passwordenabled": false
            })
        })
        .filter(|v| {
            p.get("id").is_none_or(|id| v["id"] == id)
                && p.get("name").is_none_or(|n| v["name"] == n)
        })
        .collect();
    let (items, total) = paginate(p, items)?;
    Ok(list_payload("template", items, total))
}

fn alive_usage(e: &Engine) -> (u64, u64, u64) {
    let now = e.now();
    let st = e.lock();
    let mut vms = 0;
    let mut cpu = 0;
    let mut mem = 0;
    for v in st.vms.iter().filter(|v| v.phase(now) != Phase::Deleted) {
        vms += 1;
        if let Some(o) = e.cfg.offerings.get(v.offering) {
            cpu += u64::from(o.cpus);
            mem += u64::from(o.memory_mb);
        }
    }
    (vms, cpu, mem)
}

fn totals(e: &Engine) -> (u64, u64, u64) {
    e.cfg.offerings.iter().fold((0, 0, 0), |(n, c, m), o| {
        let cap = u64::from(o.capacity);
        (
            n + cap,
            c + cap * u64::from(o.cpus),
            m + cap * u64::from(o.memory_mb),
        )
    })
}

pub(super) fn limits(e: &Engine, _p: &Params) -> CsResult {
    let (vms, cpus, mem) = totals(e);
    let rows = [
        ("0", "user_vm", vms),
        ("8", "cpu", cpus),
        ("9", "memory", mem),
    ];
    let items = rows
        .iter()
        .map(|(t, name, max)| {
            let mut m = Map::new();
            m.insert("resourcetype".into(), json!(t));
            m.insert("resourcetypename".into(), json!(name));
            m.insert("max".into(), json!(max));
            owner(e, &mut m);
            Value::Object(m)
        })
        .collect::<Vec<_>>();
    let n = items.len();
    Ok(list_payload("resourcelimit", items, n))
}

pub(super) fn capacity(e: &Engine, _p: &Params) -> CsResult {
    let (_, cpus, mem) = totals(e);
    let (_, used_cpu, used_mem) = alive_usage(e);
    let row = |t: u32, name: &str, used: u64, total: u64| {
        let pct = if total == 0 {
            0.0
        } else {
            used as f64 * 100.0 / total as f64
        };
        json!({
            "type": t, "name": name, "zoneid": fixed_id(e, KIND_ZONE, 0), "zonename": zone_name(e),
            "capacityused": used, "capacitytotal": total, "percentused": format!("{pct:.2}")
        })
    };
    let items = vec![
        row(0, "MEMORY", used_mem * 1024 * 1024, mem * 1024 * 1024),
        row(1, "CPU", used_cpu * 2000, cpus * 2000),
    ];
    Ok(list_payload("capacity", items, 2))
}

/// The site's public IPs: one source NAT address (VPC) and one for remote-access VPN.
pub(super) fn public_ip_rows(e: &Engine) -> Vec<(String, String)> {
    let site = e
        .cfg
        .id
        .as_str()
        .bytes()
        .fold(0u8, |a, b| a.wrapping_add(b));
    (0..2)
        .map(|i| {
            (
                fixed_id(e, KIND_PUBLIC_IP, i),
                format!("203.0.{site}.{}", 10 + i),
            )
        })
        .collect()
}

/// `listPublicIpAddresses`: the site's VPC's two public IPs, as CloudStack lists the
/// addresses of a VPC. Both carry `vpcid` (addresses are acquired for the VPC, not a
/// tier). The first is the VPC's source NAT IP, which no tier owns: it has no
/// `associatednetworkid`. The second stands for an IP a port-forwarding rule tied
/// to the tier ("associated to the guest network only when the first
/// port-forwarding, load balancing, or Static NAT rule is created", CloudStack's VPC
/// guide), so it carries the tier's id. Filters: `id`, `ipaddress`, `vpcid`,
/// `associatednetworkid`, `issourcenat`, `isstaticnat`, `zoneid`.
pub(super) fn public_ips(e: &Engine, p: &Params) -> CsResult {
    let vpc = fixed_id(e, KIND_VPC, 0);
    let items: Vec<Value> = public_ip_rows(e)
        .into_iter()
        .enumerate()
        .map(|(i, (id, ip))| {
            let mut m = Map::new();
            m.insert("id".into(), json!(id));
            m.insert("ipaddress".into(), json!(ip));
            m.insert("zoneid".into(), json!(fixed_id(e, KIND_ZONE, 0)));
            m.insert("zonename".into(), json!(zone_name(e)));
            m.insert("issourcenat".into(), json!(i == 0));
            m.insert("isstaticnat".into(), json!(false));
            m.insert("forvirtualnetwork".into(), json!(true));
            if i > 0 {
                m.insert(
                    "associatednetworkid".into(),
                    json!(super::network::tier_id(e)),
                );
                m.insert(
                    "associatednetworkname".into(),
                    json!(super::network::tier_name(e)),
                );
            }
            m.insert("vpcid".into(), json!(vpc));
            m.insert("state".into(), json!("Allocated"));
            owner(e, &mut m);
            Value::Object(m)
        })
        .filter(|v| {
            ["id", "ipaddress", "vpcid", "associatednetworkid", "zoneid"]
                .iter()
                .all(|k| p.get(k).is_none_or(|want| v[*k] == want))
                && ["issourcenat", "isstaticnat"].iter().all(|k| {
                    p.get(k)
                        .is_none_or(|want| v[*k] == json!(want.eq_ignore_ascii_case("true")))
                })
        })
        .collect();
    let (items, total) = paginate(p, items)?;
    Ok(list_payload("publicipaddress", items, total))
}

pub(super) fn vpcs(e: &Engine, _p: &Params) -> CsResult {
    let mut m = Map::new();
    m.insert("id".into(), json!(fixed_id(e, KIND_VPC, 0)));
    m.insert("name".into(), json!(format!("{}-vpc", e.cfg.id)));
    m.insert("cidr".into(), json!(super::network::vpc(e).to_string()));
    m.insert("state".into(), json!("Enabled"));
    m.insert("zoneid".into(), json!(fixed_id(e, KIND_ZONE, 0)));
    owner(e, &mut m);
    Ok(list_payload("vpc", vec![Value::Object(m)], 1))
}
