//! Route tables: the default VPC's main route table (`DescribeRouteTables`) and the
//! route propagation of VPN gateways into it (`EnableVgwRoutePropagation`,
//! `DisableVgwRoutePropagation`).
//!
//! As in AWS, the default VPC has one main route table (a `local` route for the VPC
//! CIDR, a default route to the internet gateway) and its default subnets have no
//! explicit association, so `association.subnet-id` matches no table and a subnet
//! uses the main one. A gateway propagates only while attached to the table's VPC
//! (AWS refuses otherwise); the propagation is kept on the gateway (attribute
//! `propagates:<rtb>`), dropped when it detaches, and listed in the table's
//! `propagatingVgwSet`.

use super::catalog::default_vpc;
use super::subnets::check_filters;
use super::vpn::find_vgw;
use super::xml::el;
use super::{Ec2Error, Ec2Result, Params, OWNER_ID};
use crate::engine::{Engine, ResourceKind};

/// The id of the default VPC's main route table.
pub(super) fn main_route_table(e: &Engine) -> String {
    let h = e
        .cfg
        .id
        .as_str()
        .bytes()
        .fold(0u64, |a, b| a.wrapping_mul(139).wrapping_add(u64::from(b)));
    format!("rtb-{:017x}", h & 0x0fff_ffff_ffff_ffff)
}

fn not_found(id: &str) -> Ec2Error {
    Ec2Error::client(
        "InvalidRouteTableID.NotFound",
        format!("The routeTable ID '{id}' does not exist"),
    )
}

/// `DescribeRouteTables`: `RouteTableId.N`, filters `route-table-id`, `vpc-id`,
/// `association.main`, `association.subnet-id` (no table: subnets use the main one
/// implicitly), `association.route-table-id`.
pub(super) fn describe(e: &Engine, p: &Params) -> Ec2Result {
    let filters = p.filters();
    check_filters(
        &filters,
        &[
            "route-table-id",
            "vpc-id",
            "association.main",
            "association.subnet-id",
            "association.route-table-id",
        ],
    )?;
    let rtb = main_route_table(e);
    let ids = p.list("RouteTableId");
    if let Some(id) = ids.iter().find(|id| **id != rtb) {
        return Err(not_found(id));
    }
    let vpc = default_vpc(e);
    let matches = filters.iter().all(|(name, values)| {
        let field = match name.as_str() {
            "vpc-id" => Some(vpc.clone()),
            "association.main" => Some("true".to_owned()),
            "association.subnet-id" => None,
            _ => Some(rtb.clone()),
        };
        field.is_some_and(|f| values.contains(&f))
    });
    if !matches {
        return Ok("<routeTableSet/>".into());
    }
    let key = format!("propagates:{rtb}");
    let now = e.now();
    let st = e.lock();
    let vgws: String = st
        .objects
        .iter()
        .filter(|o| o.kind == ResourceKind::VpnGateway && o.alive(now))
        .filter(|o| o.attrs.contains_key(&key))
        .map(|o| format!("<item>{}</item>", el("gatewayId", &o.id)))
        .collect();
    Ok(format!(
        "<routeTableSet><item>{}{}<routeSet><item><destinationCidrBlock>172.31.0.0/16</destinationCidrBlock><gatewayId>local</gatewayId><state>active</state><origin>CreateRouteTable</origin></item><item><destinationCidrBlock>0.0.0.0/0</destinationCidrBlock><gatewayId>igw-{}</gatewayId><state>active</state><origin>CreateRoute</origin></item></routeSet><associationSet><item><routeTableAssociationId>rtbassoc-{}</routeTableAssociationId>{}<main>true</main><associationState><state>associated</state></associationState></item></associationSet><propagatingVgwSet>{vgws}</propagatingVgwSet><tagSet/>{}</item></routeTableSet>",
        el("routeTableId", &rtb),
        el("vpcId", &vpc),
        &rtb[4..],
        &rtb[4..],
        el("routeTableId", &rtb),
        el("ownerId", OWNER_ID),
    ))
}

/// `EnableVgwRoutePropagation` / `DisableVgwRoutePropagation` (`RouteTableId`,
/// `GatewayId`): refused with `Gateway.NotAttached` unless the gateway is attached to
/// the table's VPC; enabling twice or disabling what is off succeeds.
pub(super) fn propagation(e: &Engine, p: &Params, enable: bool) -> Ec2Result {
    let rtb = p.required("RouteTableId")?.to_owned();
    let vgw = p.required("GatewayId")?.to_owned();
    if rtb != main_route_table(e) {
        return Err(not_found(&rtb));
    }
    let vpc = default_vpc(e);
    let now = e.now();
    let mut st = e.lock();
    let (i, o) = find_vgw(&st, &vgw, now)?;
    if o.attrs.get("vpcId") != Some(&vpc) {
        return Err(Ec2Error::client(
            "Gateway.NotAttached",
            format!("resource {vgw} is not attached to network {vpc}"),
        ));
    }
    let key = format!("propagates:{rtb}");
    if enable {
        st.objects[i].attrs.insert(key, rtb);
    } else {
        st.objects[i].attrs.remove(&key);
    }
    Ok("<return>true</return>".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_aws_shaped() {
        let cfg = crate::config::FederationConfig::seed_default()
            .sites
            .remove(2);
        let e = crate::engine::Engine::new(cfg, 3, 1.0, 3, tokio::time::Instant::now());
        let id = super::main_route_table(&e);
        assert!(id.starts_with("rtb-") && id.len() == 21, "{id}");
        assert!(id[4..].bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    }
}
