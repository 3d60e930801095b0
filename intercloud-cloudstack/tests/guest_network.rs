//! The guest network (VPC tier) and creates at chosen addresses, against recorded
//! CloudStack responses served by the signature-verifying loopback fake.

mod common;

use common::{builder, fixture, FakeCloud};
use intercloud_core::{CloudProvider, ErrorKind, IdempotencyKey, VmSpec};

const ZONES: &str = "libcloud/listZones_default.json";
const NETWORKS: &str = "libcloud/listNetworks_deployip.json";
const VMS: &str = "libcloud/listVirtualMachines_default.json";

/// The recorded `listNetworks` with network 1547 turned into a VPC tier: id 860 (the
/// network the recorded VMs' NICs are on), a `cidr` and a `vpcid` (fields of
/// CloudStack's `NetworkResponse` the 2.2-era recording lacks).
fn networks_with_tier() -> String {
    let mut doc: serde_json::Value = serde_json::from_str(&fixture(NETWORKS)).unwrap();
    let tier = &mut doc["listnetworksresponse"]["network"][1];
    tier["id"] = 860.into();
    tier["cidr"] = "1.1.1.0/24".into();
    tier["gateway"] = "1.1.1.1".into();
    tier["vpcid"] = "vpc-7".into();
    doc.to_string()
}

fn spec(addresses: &[&str]) -> VmSpec {
    let mut s = VmSpec::new(
        "c1",
        "worker",
        IdempotencyKey::new("ic-c1-abc").unwrap(),
        "S",
        "Compute Micro PRD",
    );
    s.image = Some(intercloud_core::ImageRef(
        "XEN Basic Windows Svr 2008 R2 x64 R2.1".into(),
    ));
    s.addresses = addresses.iter().map(|a| (*a).to_owned()).collect();
    s
}

#[tokio::test]
async fn a_zone_without_a_vpc_tier_is_a_config_error_naming_the_site() {
    let fake = FakeCloud::default();
    fake.on("listZones", 200, fixture(ZONES))
        .on("listNetworks", 200, fixture(NETWORKS));
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let err = p.guest_network().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("hokkaido") && text.contains("no VPC tier"),
        "{text}"
    );
    assert!(text.contains("network id"), "{text}");
    let sent = fake.params("listNetworks");
    assert_eq!(sent[0]["zoneid"], "1");
    assert_eq!(sent[0]["listall"], "true");
}

#[tokio::test]
async fn a_configured_network_is_looked_up_by_id_and_needs_a_cidr() {
    let fake = FakeCloud::default();
    fake.on("listNetworks", 200, fixture(NETWORKS));
    let server = fake.start().await;
    let p = builder(&server).network("1547").build().unwrap();
    let err = p.guest_network().await.unwrap_err();
    // The recording has no `cidr` (a 2.2 server): a protocol error, not a panic.
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(err.to_string().contains("listNetworks"), "{err}");
    assert_eq!(fake.params("listNetworks")[0]["id"], "1547");
    assert!(fake.calls().iter().all(|c| c != "listZones"));
}

#[tokio::test]
async fn the_vpc_tier_reports_its_cidr_and_every_nic_address_on_it() {
    let fake = FakeCloud::default();
    fake.on("listZones", 200, fixture(ZONES))
        .on("listNetworks", 200, networks_with_tier())
        .on("listVirtualMachines", 200, fixture(VMS));
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let net = p.guest_network().await.unwrap().expect("a tier");
    assert_eq!(net.id, "860");
    assert_eq!(net.cidr, "1.1.1.0/24");
    assert_eq!(net.vpc.as_deref(), Some("vpc-7"));
    assert_eq!(net.in_use, ["1.1.1.116", "1.1.1.203"]);
    let again = p.guest_network().await.unwrap().expect("a tier");
    assert_eq!(again, net);
    assert_eq!(fake.params("listNetworks").len(), 1, "the tier is cached");
    let lists = fake.params("listVirtualMachines");
    assert_eq!(lists.len(), 2, "addresses in use are read each time");
    assert_eq!(lists[0]["networkid"], "860");
    assert_eq!(lists[0]["listall"], "true");
}

fn create_fake() -> FakeCloud {
    let fake = FakeCloud::default();
    fake.on("listZones", 200, fixture(ZONES))
        .on("listNetworks", 200, networks_with_tier())
        .on(
            "listServiceOfferings",
            200,
            fixture("libcloud/listServiceOfferings_default.json"),
        )
        .on(
            "listTemplates",
            200,
            fixture("libcloud/listTemplates_default.json"),
        )
        .on(
            "listVirtualMachines?keyword",
            200,
            r#"{ "listvirtualmachinesresponse" : { } }"#,
        );
    fake
}

/// CloudStack's answer to a deploy whose requested address another NIC holds:
/// `GuestNetworkGuru.allocate` throws `InsufficientVirtualNetworkCapacityException`
/// ("Unable to acquire Guest IP address for network " + network), which
/// `DeployVMCmd.create` returns as error 533 in the shape of the recorded
/// `deployVirtualMachine_deployfail.json`.
const IN_USE: &str = r#"{ "deployvirtualmachineresponse" : {"uuidList":[],"errorcode" : 533, "cserrorcode" : 9999, "errortext" : "Unable to acquire Guest IP address for network Ntwk[860|Guest|6]"}  }"#;

#[tokio::test]
async fn an_address_in_use_is_a_temporary_already_exists() {
    let fake = create_fake();
    fake.on("deployVirtualMachine", 533, IN_USE);
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let err = p.create_vms(&spec(&["1.1.1.116"]), 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert!(err.is_temporary(), "{err}");
    assert!(err.to_string().contains("1.1.1.116"), "{err}");
    let deploy = fake.params("deployVirtualMachine");
    assert_eq!(deploy.len(), 1);
    assert_eq!(deploy[0]["ipaddress"], "1.1.1.116");
    assert_eq!(deploy[0]["networkids"], "860");
}

#[tokio::test]
async fn the_same_533_without_an_address_stays_a_capacity_error() {
    let fake = create_fake();
    fake.on("deployVirtualMachine", 533, IN_USE);
    let server = fake.start().await;
    let p = builder(&server).build().unwrap();
    let err = p.create_vms(&spec(&[]), 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "{err}");
    let deploy = fake.params("deployVirtualMachine");
    assert!(!deploy[0].contains_key("ipaddress"));
    assert!(!deploy[0].contains_key("networkids"));
}

#[tokio::test]
async fn addresses_outside_the_tier_or_missing_are_refused_before_any_deploy() {
    for (addresses, count, says) in [
        (&["1.1.2.5"][..], 1, "not in the tier's CIDR 1.1.1.0/24"),
        (&["1.1.1.1"][..], 1, "gateway"),
        (&["1.1.1.20"][..], 2, "no address"),
    ] {
        let fake = create_fake();
        let server = fake.start().await;
        let p = builder(&server).build().unwrap();
        let err = p.create_vms(&spec(addresses), count).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
        assert!(err.to_string().contains(says), "{err}");
        assert!(err.to_string().contains("hokkaido"), "{err}");
        assert!(fake.params("deployVirtualMachine").is_empty());
    }
}
