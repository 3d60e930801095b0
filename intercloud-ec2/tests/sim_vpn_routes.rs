//! The EC2 VPN fabric's route propagation against the simulator (signed calls): the
//! gateway propagates into the main route table of the site's default subnet while
//! the site is prepared, and no more once it is released.

use std::time::Duration;

use intercloud_core::{CloudProvider, SiteContext, VpnFabric};
use intercloud_ec2::query::QueryRequest;
use intercloud_ec2::vpn::parse_route_table_ids;
use intercloud_ec2::{Ec2Builder, Ec2Provider};

fn provider(site: &intercloud_sim::SiteHandle) -> Ec2Provider {
    Ec2Builder::aws()
        .site(site.id().clone())
        .endpoint(site.endpoint())
        .region(site.zone().expect("an EC2 site has a region"))
        .credentials(site.core_credentials())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("valid builder")
}

async fn propagating(p: &Ec2Provider, rtb: &str) -> Vec<String> {
    let root = p
        .client()
        .call(&QueryRequest::new("DescribeRouteTables").param("RouteTableId.1", rtb))
        .await
        .expect("DescribeRouteTables");
    root.items("routeTableSet")
        .into_iter()
        .flat_map(|t| t.items("propagatingVgwSet"))
        .filter_map(|g| g.text_at("gatewayId").map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn prepared_site_propagates_into_its_subnets_table_until_released() {
    let sim = intercloud_sim::Federation::start_default(0.001)
        .await
        .expect("sim starts");
    let p = provider(sim.site("tokyo").expect("seed site"));
    let net = p.guest_network().await.unwrap().expect("a default subnet");
    let ctx = SiteContext {
        site: p.client().site().clone(),
        cluster: "vc".into(),
        overlay_subnet: net.cidr.clone(),
        local_cidrs: vec![],
        hints: [
            ("vpc_id".to_owned(), net.vpc.clone().expect("vpc")),
            ("guest_network_id".to_owned(), net.id.clone()),
        ]
        .into(),
    };
    let fabric = p.vpn_fabric();
    let ep = fabric.prepare_site(&ctx).await.expect("prepare_site");
    let rtb = ep.resources["route_table"].clone();
    let main = p
        .client()
        .call(
            &QueryRequest::new("DescribeRouteTables")
                .filters(&[intercloud_ec2::query::filter("association.main", ["true"])]),
        )
        .await
        .expect("main table");
    assert_eq!(parse_route_table_ids(&main), vec![rtb.clone()]);
    let vgw = ep.resources["vpn_gateway"].clone();
    assert_eq!(propagating(&p, &rtb).await, vec![vgw.clone()]);
    let again = fabric.prepare_site(&ctx).await.expect("prepare_site again");
    assert_eq!(again.resources, ep.resources, "idempotent");
    assert_eq!(propagating(&p, &rtb).await, [vgw]);
    fabric.release_site(&ep).await.expect("release");
    assert!(propagating(&p, &rtb).await.is_empty());
    fabric.release_site(&ep).await.expect("release again");
}
