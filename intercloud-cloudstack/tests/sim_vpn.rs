//! The remote-access VPN of a VPC site against the simulator: the fabric finds the
//! VPC's source NAT IP by `vpcid` (the tier owns no source NAT IP, as in CloudStack).

use std::time::Duration;

use intercloud_cloudstack::{CloudStackBuilder, VpnMode};
use intercloud_core::{CloudProvider, SiteContext, VpnFabric};
use intercloud_sim::{Federation, SiteHandle};

fn builder(site: &SiteHandle) -> CloudStackBuilder {
    CloudStackBuilder::new()
        .site(site.id().clone())
        .endpoint(site.endpoint())
        .zone(site.zone().expect("a CloudStack site has a zone"))
        .credentials(site.core_credentials())
        .poll_interval(Duration::from_millis(5))
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_access_of_a_vpc_tier_uses_the_vpcs_source_nat_ip() {
    let sim = Federation::start_default(0.001).await.expect("sim starts");
    let site = sim.site("hokkaido").expect("seed site");
    let provider = builder(site).build().expect("provider");
    let net = provider
        .guest_network()
        .await
        .unwrap()
        .expect("the site's VPC tier");
    let vpc = net.vpc.clone().expect("a tier of a VPC");
    let vpn = builder(site)
        .build_vpn(VpnMode::RemoteAccess)
        .expect("fabric");
    let hints = |with_vpc: bool| {
        let mut h = std::collections::BTreeMap::from([
            ("network_id".to_owned(), net.id.clone()),
            ("guest_network_id".to_owned(), net.id.clone()),
        ]);
        if with_vpc {
            h.insert("vpc_id".to_owned(), vpc.clone());
        }
        h
    };
    let ctx = |with_vpc| SiteContext {
        site: site.id().clone(),
        cluster: "vc".into(),
        overlay_subnet: net.cidr.clone(),
        local_cidrs: vec![],
        hints: hints(with_vpc),
    };
    // By the tier alone there is no source NAT IP (it belongs to the VPC).
    let e = vpn.prepare_site(&ctx(false)).await.unwrap_err();
    assert!(e.to_string().contains("no source NAT IP"), "{e}");
    let ep = vpn.prepare_site(&ctx(true)).await.expect("prepare_site");
    // The simulator's VPC source NAT IP is its first public IP, 203.0.<n>.10.
    let addr = ep.public_address.clone().expect("public address");
    assert!(
        addr.starts_with("203.0.") && addr.ends_with(".10"),
        "{addr}"
    );
    let again = vpn.prepare_site(&ctx(true)).await.expect("again");
    assert_eq!(again.resources, ep.resources, "the same VPN, found");
    vpn.release_site(&ep).await.expect("release");
}
