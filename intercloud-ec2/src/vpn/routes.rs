//! Route propagation of a site's VPN gateway into the route table of its guest
//! subnet, so that instances send the peers' networks to the gateway.
//!
//! - The table: hint `route_table_id`, else the one explicitly associated with the
//!   subnet of hint `guest_network_id` (`DescribeRouteTables`
//!   `association.subnet-id`), else the VPC's main table (`vpc-id` +
//!   `association.main=true`): a subnet without an explicit association uses the
//!   main table (the default VPC's default subnets all do).
//! - AWS refuses propagation from a gateway that is not yet `attached` to the VPC
//!   (the CloudFormation resource `AWS::EC2::VPNGatewayRoutePropagation` must depend
//!   on the attachment), so [`Ec2VpnFabric`] polls `DescribeVpnGateways` until the
//!   attachment is `attached`, for a bounded time, then gives up with a temporary
//!   error: `prepare_site` is idempotent and the deployer retries it.

use std::time::Duration;

use intercloud_core::{Error, Result};

use super::Ec2VpnFabric;
use crate::query::{filter, QueryRequest};
use crate::xml::Element;

/// Endpoint resource role of the route table the gateway propagates into.
pub const RES_ROUTE_TABLE: &str = "route_table";
/// How long `prepare_site` waits for the gateway's attachment by default.
pub const DEFAULT_ATTACH_WAIT: Duration = Duration::from_secs(120);
/// How often it asks meanwhile by default.
pub const DEFAULT_ATTACH_POLL: Duration = Duration::from_secs(4);

/// The `routeTableId`s of a DescribeRouteTables answer, in order.
pub fn parse_route_table_ids(root: &Element) -> Vec<String> {
    root.items("routeTableSet")
        .into_iter()
        .filter_map(|t| t.text_at("routeTableId").map(|s| s.trim().to_owned()))
        .filter(|s| !s.is_empty())
        .collect()
}

/// The state of gateway `vgw`'s attachment to `vpc` in a DescribeVpnGateways answer
/// (`attaching`, `attached`, `detaching`, `detached`), `None` when not listed.
pub fn attachment_state(root: &Element, vgw: &str, vpc: &str) -> Option<String> {
    root.items("vpnGatewaySet")
        .into_iter()
        .filter(|g| g.text_at("vpnGatewayId").map(str::trim) == Some(vgw))
        .flat_map(|g| g.items("attachments"))
        .filter(|a| a.text_at("vpcId").map(str::trim) == Some(vpc))
        .find_map(|a| a.text_at("state").map(|s| s.trim().to_owned()))
}

/// Whether an error is EC2's `Gateway.NotAttached` (the gateway is not, or not yet,
/// attached to the table's VPC).
fn not_attached(e: &Error) -> bool {
    e.message().contains("Gateway.NotAttached")
}

impl Ec2VpnFabric {
    /// The route table of `subnet`: its explicit association, else `vpc`'s main table.
    pub(super) async fn route_table_of(&self, subnet: &str, vpc: &str) -> Result<String> {
        let root = self
            .client
            .call(
                &QueryRequest::new("DescribeRouteTables")
                    .filters(&[filter("association.subnet-id", [subnet])]),
            )
            .await?;
        if let Some(id) = parse_route_table_ids(&root).into_iter().next() {
            return Ok(id);
        }
        let root = self
            .client
            .call(&QueryRequest::new("DescribeRouteTables").filters(&[
                filter("vpc-id", [vpc]),
                filter("association.main", ["true"]),
            ]))
            .await?;
        parse_route_table_ids(&root)
            .into_iter()
            .next()
            .ok_or_else(|| {
                self.site_err(Error::config(format!(
                    "subnet {subnet} has no route table and VPC {vpc} no main route table: \
                     set hint route_table_id"
                )))
            })
    }

    /// Waits until `vgw` is `attached` to `vpc` (polling `DescribeVpnGateways`), at
    /// most the fabric's attach wait; then a temporary `Unavailable` naming both.
    pub(super) async fn wait_attached(&self, vgw: &str, vpc: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.attach_wait;
        let mut last;
        loop {
            let root = self
                .client
                .call(&QueryRequest::new("DescribeVpnGateways").param("VpnGatewayId.1", vgw))
                .await
                .map_err(|e| e.with_resource(vgw.to_owned()))?;
            let state = attachment_state(&root, vgw, vpc);
            match state.as_deref() {
                Some("attached") => return Ok(()),
                Some("attaching") => {}
                other => {
                    return Err(self.site_err(
                        Error::unavailable(format!(
                            "VPN gateway {vgw} is {} to VPC {vpc}, not attached",
                            other.unwrap_or("not attached")
                        ))
                        .with_resource(vgw.to_owned()),
                    ))
                }
            }
            last = state.unwrap_or_default();
            if tokio::time::Instant::now() + self.attach_poll > deadline {
                break;
            }
            tokio::time::sleep(self.attach_poll).await;
        }
        Err(self.site_err(
            Error::unavailable(format!(
                "VPN gateway {vgw} is still {last} to VPC {vpc} after {} s; \
                 route propagation needs it attached (retry)",
                self.attach_wait.as_secs()
            ))
            .with_resource(vgw.to_owned()),
        ))
    }

    /// `EnableVgwRoutePropagation` of `vgw` into `rtb` (idempotent); AWS's
    /// `Gateway.NotAttached` (an attachment not yet visible) becomes temporary.
    pub(super) async fn enable_propagation(&self, rtb: &str, vgw: &str) -> Result<()> {
        self.client
            .call(
                &QueryRequest::new("EnableVgwRoutePropagation")
                    .param("RouteTableId", rtb)
                    .param("GatewayId", vgw),
            )
            .await
            .map(|_| ())
            .map_err(|e| {
                let e = e.with_resource(rtb.to_owned());
                if not_attached(&e) {
                    e.with_temporary(true)
                } else {
                    e
                }
            })
    }

    /// `DisableVgwRoutePropagation`; a table or gateway gone, or a gateway no longer
    /// attached (which propagates nowhere), is `Ok`.
    pub(super) async fn disable_propagation(&self, rtb: &str, vgw: &str) -> Result<()> {
        match self
            .client
            .call(
                &QueryRequest::new("DisableVgwRoutePropagation")
                    .param("RouteTableId", rtb)
                    .param("GatewayId", vgw),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == intercloud_core::ErrorKind::NotFound || not_attached(&e) => {
                Ok(())
            }
            Err(e) => Err(e.with_resource(rtb.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml;

    #[test]
    fn attachment_states_and_tables() {
        let root = xml::parse(
            "<DescribeVpnGatewaysResponse><vpnGatewaySet><item><vpnGatewayId>vgw-1</vpnGatewayId>\
             <attachments><item><vpcId>vpc-a</vpcId><state>detached</state></item>\
             <item><vpcId>vpc-b</vpcId><state>attaching</state></item></attachments></item>\
             </vpnGatewaySet></DescribeVpnGatewaysResponse>",
        )
        .expect("xml");
        assert_eq!(
            attachment_state(&root, "vgw-1", "vpc-b").as_deref(),
            Some("attaching")
        );
        assert_eq!(
            attachment_state(&root, "vgw-1", "vpc-a").as_deref(),
            Some("detached")
        );
        assert_eq!(attachment_state(&root, "vgw-1", "vpc-c"), None);
        assert_eq!(attachment_state(&root, "vgw-2", "vpc-b"), None);
        let none = xml::parse("<R><routeTableSet/></R>").expect("xml");
        assert!(parse_route_table_ids(&none).is_empty());
    }
}
