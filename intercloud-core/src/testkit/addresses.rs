//! The scenario for sites whose VMs take chosen addresses on a guest network.

use std::net::Ipv4Addr;

use super::{cleanup, fresh_cluster, Fixture};
use crate::model::{GuestNetwork, VmFilter};
use crate::provider::CloudProvider;
use crate::ErrorKind;

/// The first host of `net` from its 10th address up that no machine holds (low
/// addresses are the cloud's own: gateway, router, AWS's reserved four).
fn free_host(net: &GuestNetwork) -> Ipv4Addr {
    let network = crate::deploy::ipam::parse_cidr(&net.cidr)
        .unwrap_or_else(|e| panic!("guest_network: CIDR {:?} is not IPv4: {e}", net.cidr));
    // hosts() starts at the network's address + 1: skip 9 to start at its 10th.
    network
        .hosts()
        .skip(9)
        .find(|ip| !net.in_use.iter().any(|u| *u == ip.to_string()))
        .unwrap_or_else(|| panic!("guest network {} has no free address", net.cidr))
}

/// When the site reports a guest network, a VM created at a free address of it holds
/// exactly that address, which the network then reports in use; a second create at
/// the same address fails with a temporary `AlreadyExists`. A site without a guest
/// network (`None`: OpenNebula) passes trivially: it never gets addresses.
pub async fn chosen_address_is_honoured(p: &dyn CloudProvider, fx: &Fixture) {
    let Some(net) = p.guest_network().await.expect("guest_network failed") else {
        return;
    };
    let address = free_host(&net).to_string();
    let cluster = fresh_cluster("addr");
    let mut spec = fx.spec(&cluster, "worker");
    spec.addresses = vec![address.clone()];
    let created = p
        .create_vms(&spec, 1)
        .await
        .unwrap_or_else(|e| panic!("create_vms at free address {address} failed: {e}"));
    assert_eq!(created.len(), 1, "create_vms(1) must return 1 id");
    let listed = p
        .list_vms(&VmFilter::key(&spec.key))
        .await
        .expect("list by key failed");
    assert_eq!(listed.len(), 1, "one VM listed: {listed:?}");
    assert_eq!(
        listed[0].private_ip.as_deref(),
        Some(address.as_str()),
        "the VM must hold exactly the address asked for"
    );
    let after = p
        .guest_network()
        .await
        .expect("guest_network after create failed")
        .expect("the guest network does not disappear");
    assert_eq!(after.id, net.id, "the VM joined the reported network");
    assert!(
        after.in_use.contains(&address),
        "guest_network must report {address} in use: {:?}",
        after.in_use
    );

    let mut clash = fx.spec(&cluster, "worker");
    clash.addresses = vec![address.clone()];
    let err = p
        .create_vms(&clash, 1)
        .await
        .expect_err("a create at an address in use must fail");
    assert_eq!(
        err.kind(),
        ErrorKind::AlreadyExists,
        "an address in use is AlreadyExists: {err}"
    );
    assert!(
        err.is_temporary(),
        "an address in use is temporary (the VM holding it may be going away): {err}"
    );
    cleanup(p, &cluster).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryProvider;

    #[tokio::test]
    async fn memory_provider_with_and_without_guest_network() {
        let fx = Fixture::new("any");
        let with = MemoryProvider::builder("net")
            .guest_network("10.9.0.0/24")
            .build();
        chosen_address_is_honoured(&with, &fx).await;
        let without = MemoryProvider::new("plain");
        chosen_address_is_honoured(&without, &fx).await;
    }

    #[test]
    fn free_host_skips_low_and_taken_addresses() {
        let net = GuestNetwork {
            id: "n".into(),
            cidr: "10.9.0.0/24".into(),
            vpc: None,
            in_use: vec!["10.9.0.10".into(), "10.9.0.11".into()],
        };
        assert_eq!(free_host(&net), Ipv4Addr::new(10, 9, 0, 12));
    }
}
