//! Realistic large list responses, grown from the recorded fixtures of each backend
//! (one recorded VM repeated `n` times with distinct ids, names and intercloud tags),
//! for the parsing benchmarks.
//!
//! Sources (in this repository, with their origin and licence in each folder's README):
//! - CloudStack: `intercloud-cloudstack/tests/fixtures/libcloud/listVirtualMachines_default.json`;
//! - EC2: `intercloud-ec2/tests/fixtures/ec2/moto-5.2.5-intercloud/describe_instances_page1.xml`;
//! - OpenNebula: `intercloud-opennebula/tests/fixtures/wire/vmpool_infoextended.response.xml`.

use intercloud_core::{TAG_CLUSTER, TAG_INDEX, TAG_KEY, TAG_ROLE};
use serde_json::{json, Value};

const CS_LIST: &str = include_str!(
    "../../intercloud-cloudstack/tests/fixtures/libcloud/listVirtualMachines_default.json"
);
const CS_ZONES: &str =
    include_str!("../../intercloud-cloudstack/tests/fixtures/libcloud/listZones_default.json");
const EC2_DESCRIBE: &str = include_str!(
    "../../intercloud-ec2/tests/fixtures/ec2/moto-5.2.5-intercloud/describe_instances_page1.xml"
);
const ONE_POOL: &str = include_str!(
    "../../intercloud-opennebula/tests/fixtures/wire/vmpool_infoextended.response.xml"
);

/// The cluster name every generated VM is tagged with.
pub const CLUSTER: &str = "bench";

/// The zone name of the recorded `listZones` answer ([`cloudstack_zones`]).
pub const CLOUDSTACK_ZONE: &str = "Sydney";

/// The recorded `listZones` answer (one zone, [`CLOUDSTACK_ZONE`]).
pub fn cloudstack_zones() -> &'static str {
    CS_ZONES
}

fn tags(i: usize) -> [(&'static str, String); 4] {
    [
        (TAG_CLUSTER, CLUSTER.to_owned()),
        (TAG_ROLE, "worker".to_owned()),
        (TAG_KEY, "bench-worker-0".to_owned()),
        (TAG_INDEX, i.to_string()),
    ]
}

/// A `listVirtualMachines` answer holding `n` running VMs with `count = n`.
///
/// # Panics
/// Never on the bundled fixture (it is checked by this crate's tests).
pub fn cloudstack_list_vms(n: usize) -> String {
    let recorded: Value = serde_json::from_str(CS_LIST).expect("bundled fixture is JSON");
    let first = recorded["listvirtualmachinesresponse"]["virtualmachine"][0].clone();
    let vms: Vec<Value> = (0..n)
        .map(|i| {
            let mut vm = first.clone();
            vm["id"] = json!(format!("5f0e{i:04x}-9c1d-4b6e-8a3f-{i:012x}"));
            vm["name"] = json!(format!("bench-worker-{i}"));
            vm["displayname"] = vm["name"].clone();
            vm["state"] = json!("Running");
            vm["nic"][0]["ipaddress"] = json!(format!("10.1.{}.{}", i / 250, i % 250 + 2));
            vm["tags"] = tags(i)
                .iter()
                .map(|(k, v)| json!({"key": k, "value": v, "resourcetype": "UserVm"}))
                .collect();
            vm
        })
        .collect();
    json!({"listvirtualmachinesresponse": {"count": n, "virtualmachine": vms}}).to_string()
}

/// A `DescribeInstances` answer holding `n` running instances (one reservation each,
/// no `nextToken`).
///
/// # Panics
/// Never on the bundled fixture (it is checked by this crate's tests).
pub fn ec2_describe_instances(n: usize) -> String {
    let body = EC2_DESCRIBE;
    let start = body
        .find("<reservationSet>")
        .expect("fixture has a reservationSet")
        + "<reservationSet>".len();
    let end = body.find("</reservationSet>").expect("fixture closes it");
    let reservation = &body[start..end];
    let tag_set_at = reservation.find("<tagSet>").expect("fixture has tags");
    let tag_set_end = reservation.find("</tagSet>").expect("fixture closes tags") + 9;
    let mut out = String::with_capacity(reservation.len() * n + 512);
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    out.push_str(r#"<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">"#);
    out.push_str("<requestId>bench</requestId><reservationSet>");
    for i in 0..n {
        let mut tag_set = String::from("<tagSet>");
        for (k, v) in tags(i) {
            tag_set.push_str(&format!("<item><key>{k}</key><value>{v}</value></item>"));
        }
        tag_set.push_str(&format!(
            "<item><key>Name</key><value>bench-worker-{i}</value></item></tagSet>"
        ));
        let item = format!(
            "{}{}{}",
            &reservation[..tag_set_at],
            tag_set,
            &reservation[tag_set_end..]
        );
        out.push_str(
            &item
                .replace("i-f5f0b41be519d68bc", &format!("i-{i:017x}"))
                .replace("r-aa38a9dd2e843fb38", &format!("r-{i:017x}")),
        );
    }
    out.push_str("</reservationSet></DescribeInstancesResponse>");
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// A `one.vmpool.infoextended` XML-RPC answer whose `<VM_POOL>` holds `n` running VMs
/// carrying intercloud's tags in `USER_TEMPLATE`.
///
/// # Panics
/// Never on the bundled fixture (it is checked by this crate's tests).
pub fn opennebula_vmpool(n: usize) -> String {
    let s = ONE_POOL.find("<string>").expect("fixture has a string") + "<string>".len();
    let e = ONE_POOL.find("</string>").expect("fixture closes it");
    let pool = xml_unescape(&ONE_POOL[s..e]);
    let vs = pool.find("<VM>").expect("pool has a VM");
    let ve = pool.rfind("</VM>").expect("pool closes it") + "</VM>".len();
    let vm = &pool[vs..ve];
    let mut inner = String::with_capacity(vm.len() * n + 64);
    inner.push_str("<VM_POOL>");
    for i in 0..n {
        let id = 1000 + i;
        let mut user = String::from("<USER_TEMPLATE>\n    <ARCH>x86_64</ARCH>");
        for (k, v) in tags(i) {
            let attr = intercloud_opennebula::template::tag_attribute(k)
                .expect("intercloud tags have attribute names");
            user.push_str(&format!("<{attr}><![CDATA[{v}]]></{attr}>"));
        }
        inner.push_str(
            &vm.replace("<ID>800</ID>", &format!("<ID>{id}</ID>"))
                .replace(
                    "<NAME>alpine-800</NAME>",
                    &format!("<NAME>bench-worker-{i}</NAME>"),
                )
                .replace("<VMID>800</VMID>", &format!("<VMID>{id}</VMID>"))
                .replace("<OID>800</OID>", &format!("<OID>{id}</OID>"))
                .replace("<USER_TEMPLATE>\n    <ARCH>x86_64</ARCH>", &user),
        );
    }
    inner.push_str("</VM_POOL>");
    format!("{}{}{}", &ONE_POOL[..s], xml_escape(&inner), &ONE_POOL[e..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use intercloud_core::{SiteId, VmFilter, VmState};
    use intercloud_opennebula::xmlrpc::{decode_response, Response, Value as Rpc};

    #[test]
    fn the_ec2_body_parses_to_n_tagged_running_instances() {
        let body = ec2_describe_instances(25);
        let root = intercloud_ec2::xml::parse(&body).expect("xml");
        let (instances, next) = intercloud_ec2::model::describe_instances(&root).expect("parse");
        assert_eq!(next, None);
        assert_eq!(instances.len(), 25);
        let site = SiteId::new("tokyo");
        let filter = VmFilter::cluster(CLUSTER);
        let vms: Vec<_> = instances.iter().map(|i| i.to_vm(&site)).collect();
        assert!(vms
            .iter()
            .all(|v| filter.matches(v) && v.state == VmState::Running));
        assert_eq!(vms[24].id.as_str(), "i-00000000000000018");
    }

    #[test]
    fn the_opennebula_body_parses_to_n_tagged_vms() {
        let body = opennebula_vmpool(30);
        let Response::Success(Rpc::Array(items)) = decode_response(&body).expect("xml-rpc") else {
            panic!("not a success array");
        };
        let Some(Rpc::String(pool)) = items.get(1) else {
            panic!("no pool string");
        };
        let vms = intercloud_opennebula::model::parse_vm_pool(pool).expect("pool");
        assert_eq!(vms.len(), 30);
        let site = SiteId::new("nii");
        let filter = VmFilter::cluster(CLUSTER);
        assert!(vms.iter().all(|v| filter.matches(&v.to_vm(&site))));
        assert_eq!(vms[29].to_vm(&site).id.as_str(), "1029");
    }

    #[test]
    fn the_cloudstack_body_holds_n_distinct_tagged_vms() {
        let body: Value = serde_json::from_str(&cloudstack_list_vms(40)).expect("json");
        let vms = body["listvirtualmachinesresponse"]["virtualmachine"]
            .as_array()
            .expect("array");
        assert_eq!(vms.len(), 40);
        assert_eq!(body["listvirtualmachinesresponse"]["count"], 40);
        let ids: std::collections::BTreeSet<_> = vms.iter().map(|v| v["id"].to_string()).collect();
        assert_eq!(ids.len(), 40);
        assert_eq!(vms[3]["tags"][0]["key"], TAG_CLUSTER);
    }
}
