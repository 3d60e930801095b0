//! [`Ec2VpnFabric`]: site-to-site IPsec through EC2's own VPN service.
//!
//! - `prepare_site`: a VPN gateway (`CreateVpnGateway`, tagged with the cluster)
//!   attached to the site's VPC (`AttachVpnGateway`; hint `vpc_id`, else the
//!   region's default VPC, where instances launch without a subnet), and route
//!   propagation (`EnableVgwRoutePropagation`, once the attachment is `attached`)
//!   into the route table of hint `route_table_id`, else of the subnet of hint
//!   `guest_network_id` (see [`routes`]), recorded as endpoint resource
//!   [`RES_ROUTE_TABLE`].
//! - `connect`: a customer gateway for the peer's public address
//!   (`CreateCustomerGateway`) and a VPN connection with static routes
//!   (`CreateVpnConnection` `Options.StaticRoutesOnly=true`, then
//!   `CreateVpnConnectionRoute` to the peer's overlay subnet and `local_cidrs`).
//! - [`Ec2VpnFabric::tunnels`]: outside addresses and pre-shared keys of both tunnels
//!   from `DescribeVpnConnections`' customer gateway configuration, the keys as secrets.
//! - [`VpnFabric::peer_access`]: the first tunnel's AWS outside address and key, for
//!   a peer that learns EC2's side only once the connection exists.
//! - `disconnect` deletes the connection then its customer gateway; `release_site`
//!   disables the route propagation, detaches and deletes the VPN gateway.
//!   Everything already gone is `Ok`.
//!
//! Every step first looks up what exists by tag or id, so repeating it is safe.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use intercloud_core::{
    Bootstrap, Error, ErrorKind, FabricKind, LinkId, LinkSpec, LinkState, Member, PeerAccess,
    Result, SiteContext, SiteEndpoint, Tags, VpnFabric, TAG_CLUSTER,
};
use secrecy::{ExposeSecret, SecretString};

use crate::client::Client;
use crate::model::tags_of;
use crate::query::{filter, QueryRequest};
use crate::xml::{self, Element};

pub mod routes;

pub use routes::{
    attachment_state, parse_route_table_ids, DEFAULT_ATTACH_POLL, DEFAULT_ATTACH_WAIT,
    RES_ROUTE_TABLE,
};

/// Endpoint resource role of the VPN gateway id.
pub const RES_VPN_GATEWAY: &str = "vpn_gateway";
/// Endpoint resource role of the VPC id.
pub const RES_VPC: &str = "vpc";
/// Default BGP ASN of customer gateways (static routing ignores it).
pub const DEFAULT_CGW_ASN: u32 = 65000;

/// One IPsec tunnel of a VPN connection.
#[derive(Clone)]
pub struct Tunnel {
    /// AWS side outside (public) address: where the peer connects.
    pub vpn_gateway_outside_address: String,
    /// The customer side outside address AWS expects.
    pub customer_gateway_outside_address: Option<String>,
    /// Inside (link-local) address of the AWS side.
    pub vpn_gateway_inside_address: Option<String>,
    /// Inside address of the customer side.
    pub customer_gateway_inside_address: Option<String>,
    /// Prefix length of the inside network.
    pub inside_cidr: Option<u8>,
    /// The IKE pre-shared key.
    pub pre_shared_key: SecretString,
}

impl fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tunnel")
            .field(
                "vpn_gateway_outside_address",
                &self.vpn_gateway_outside_address,
            )
            .field(
                "customer_gateway_outside_address",
                &self.customer_gateway_outside_address,
            )
            .field(
                "vpn_gateway_inside_address",
                &self.vpn_gateway_inside_address,
            )
            .field(
                "customer_gateway_inside_address",
                &self.customer_gateway_inside_address,
            )
            .field("inside_cidr", &self.inside_cidr)
            .field("pre_shared_key", &"******")
            .finish()
    }
}

/// One VPN connection as DescribeVpnConnections lists it.
#[derive(Debug, Clone)]
pub struct VpnConnection {
    /// `vpn-…`.
    pub id: String,
    /// `pending`, `available`, `deleting`, `deleted`.
    pub state: String,
    /// `cgw-…`.
    pub customer_gateway_id: Option<String>,
    /// `vgw-…`.
    pub vpn_gateway_id: Option<String>,
    /// `vgwTelemetry/item/status` of each tunnel (`UP`, `DOWN`).
    pub telemetry: Vec<String>,
    /// Tunnels from the customer gateway configuration (empty when EC2 omits it).
    pub tunnels: Vec<Tunnel>,
    /// Tags.
    pub tags: Tags,
}

/// Parses the customer gateway configuration (itself XML, escaped inside the answer).
///
/// # Errors
/// A message when the text is not XML or a tunnel lacks its AWS outside address or key.
pub fn parse_customer_gateway_configuration(
    text: &str,
) -> std::result::Result<Vec<Tunnel>, String> {
    let root =
        xml::parse(text.trim()).map_err(|e| format!("customer gateway configuration: {e}"))?;
    root.children_named("ipsec_tunnel")
        .map(|t| {
            let addr = |p: &str| t.text_at(p).map(|s| s.trim().to_owned());
            Ok(Tunnel {
                vpn_gateway_outside_address: addr("vpn_gateway/tunnel_outside_address/ip_address")
                    .ok_or("a tunnel without vpn_gateway outside address")?,
                customer_gateway_outside_address: addr(
                    "customer_gateway/tunnel_outside_address/ip_address",
                ),
                vpn_gateway_inside_address: addr("vpn_gateway/tunnel_inside_address/ip_address"),
                customer_gateway_inside_address: addr(
                    "customer_gateway/tunnel_inside_address/ip_address",
                ),
                inside_cidr: t
                    .text_at("vpn_gateway/tunnel_inside_address/network_cidr")
                    .and_then(|s| s.trim().parse().ok()),
                pre_shared_key: SecretString::from(
                    addr("ike/pre_shared_key").ok_or("a tunnel without pre_shared_key")?,
                ),
            })
        })
        .collect()
}

/// Reads one `vpnConnection` / `vpnConnectionSet/item`.
pub fn parse_vpn_connection(el: &Element) -> std::result::Result<VpnConnection, String> {
    let id = el
        .text_at("vpnConnectionId")
        .ok_or("a VPN connection without id")?;
    let tunnels = match el.text_at("customerGatewayConfiguration") {
        Some(cfg) => parse_customer_gateway_configuration(cfg)?,
        None => Vec::new(),
    };
    Ok(VpnConnection {
        id: id.trim().to_owned(),
        state: el.text_at("state").unwrap_or("unknown").trim().to_owned(),
        customer_gateway_id: el.text_at("customerGatewayId").map(|s| s.trim().to_owned()),
        vpn_gateway_id: el.text_at("vpnGatewayId").map(|s| s.trim().to_owned()),
        telemetry: el
            .items("vgwTelemetry")
            .into_iter()
            .filter_map(|i| i.text_at("status").map(str::to_owned))
            .collect(),
        tunnels,
        tags: tags_of(el),
    })
}

/// The connections of a DescribeVpnConnections answer.
pub fn parse_vpn_connections(root: &Element) -> std::result::Result<Vec<VpnConnection>, String> {
    root.items("vpnConnectionSet")
        .into_iter()
        .map(parse_vpn_connection)
        .collect()
}

/// A link's state from a connection's state and tunnel telemetry.
pub fn link_state(c: &VpnConnection) -> LinkState {
    match c.state.as_str() {
        "pending" => LinkState::Pending,
        "available" if c.telemetry.is_empty() => LinkState::Up,
        "available" if c.telemetry.iter().any(|s| s.eq_ignore_ascii_case("UP")) => LinkState::Up,
        "available" => LinkState::Down,
        other => LinkState::Failed(format!("VPN connection {} is {other}", c.id)),
    }
}

/// The native VPN of an EC2 region. Make it with [`crate::Ec2Provider::vpn_fabric`].
#[derive(Debug, Clone)]
pub struct Ec2VpnFabric {
    client: Arc<Client>,
    static_routes: bool,
    attach_wait: Duration,
    attach_poll: Duration,
}

fn gone_ok(r: Result<Element>) -> Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl Ec2VpnFabric {
    /// A fabric over `client`; creates static routes (see [`Self::static_routes`]).
    pub fn new(client: Arc<Client>) -> Self {
        Self {
            client,
            static_routes: true,
            attach_wait: DEFAULT_ATTACH_WAIT,
            attach_poll: DEFAULT_ATTACH_POLL,
        }
    }

    /// How long `prepare_site` waits for the VPN gateway's attachment to become
    /// `attached` before route propagation, and how often it asks meanwhile
    /// (default [`DEFAULT_ATTACH_WAIT`], [`DEFAULT_ATTACH_POLL`]). When the wait
    /// runs out, `prepare_site` fails with a temporary `Unavailable`.
    pub fn attach_wait(mut self, total: Duration, poll: Duration) -> Self {
        self.attach_wait = total;
        self.attach_poll = poll.max(Duration::from_millis(1));
        self
    }

    /// Whether `connect` adds `CreateVpnConnectionRoute` routes (default true). moto
    /// 5.2.5 does not implement that call; its tests turn this off.
    pub fn static_routes(mut self, on: bool) -> Self {
        self.static_routes = on;
        self
    }

    fn site_err(&self, e: Error) -> Error {
        e.with_site(self.client.site().clone())
    }

    fn protocol(&self, m: String) -> Error {
        self.site_err(Error::protocol(m))
    }

    /// The connection `id`, with its tunnels.
    ///
    /// # Errors
    /// `NotFound` when EC2 does not know it.
    pub async fn connection(&self, id: &str) -> Result<VpnConnection> {
        let root = self
            .client
            .call(&QueryRequest::new("DescribeVpnConnections").param("VpnConnectionId.1", id))
            .await?;
        let mut all = parse_vpn_connections(&root).map_err(|m| self.protocol(m))?;
        all.retain(|c| c.id == id);
        all.pop()
            .ok_or_else(|| self.site_err(Error::not_found(format!("VPN connection {id}"))))
    }

    /// The tunnels of a link: AWS outside addresses and pre-shared keys.
    pub async fn tunnels(&self, link: &LinkId) -> Result<Vec<Tunnel>> {
        Ok(self.connection(&link.0).await?.tunnels)
    }

    /// The region's default VPC (`DescribeVpcs` `isDefault=true`).
    async fn default_vpc(&self) -> Result<String> {
        let root = self
            .client
            .call(&QueryRequest::new("DescribeVpcs").filters(&[filter("isDefault", ["true"])]))
            .await?;
        root.items("vpcSet")
            .into_iter()
            .filter(|v| v.text_at("isDefault").map(str::trim) != Some("false"))
            .find_map(|v| v.text_at("vpcId").map(|s| s.trim().to_owned()))
            .ok_or_else(|| {
                self.site_err(Error::config(
                    "the region has no default VPC for the VPN gateway: set hint vpc_id",
                ))
            })
    }

    /// The live gateway of `cluster` named `name` (`{cluster}-{site}`: one per site
    /// and cluster, since a gateway attaches to one VPC), with its attachments.
    async fn find_vpn_gateway(
        &self,
        cluster: &str,
        name: &str,
    ) -> Result<Option<(String, Vec<(String, String)>)>> {
        let root = self
            .client
            .call(
                &QueryRequest::new("DescribeVpnGateways")
                    .filters(&[filter(format!("tag:{TAG_CLUSTER}"), [cluster])]),
            )
            .await?;
        for item in root.items("vpnGatewaySet") {
            let state = item.text_at("state").unwrap_or("");
            if !matches!(state, "pending" | "available") {
                continue;
            }
            let tags = tags_of(item);
            if tags.get(TAG_CLUSTER).map(String::as_str) != Some(cluster)
                || tags.get("Name").map(String::as_str) != Some(name)
            {
                continue;
            }
            let Some(id) = item.text_at("vpnGatewayId") else {
                continue;
            };
            let attachments = item
                .items("attachments")
                .into_iter()
                .filter_map(|a| {
                    Some((
                        a.text_at("vpcId")?.to_owned(),
                        a.text_at("state")?.to_owned(),
                    ))
                })
                .collect();
            return Ok(Some((id.to_owned(), attachments)));
        }
        Ok(None)
    }

    async fn find_customer_gateway(&self, ip: &str, cluster: &str) -> Result<Option<String>> {
        let root = self
            .client
            .call(
                &QueryRequest::new("DescribeCustomerGateways")
                    .filters(&[filter("ip-address", [ip])]),
            )
            .await?;
        Ok(root
            .items("customerGatewaySet")
            .into_iter()
            .filter(|i| matches!(i.text_at("state"), Some("pending" | "available")))
            .filter(|i| i.text_at("ipAddress") == Some(ip))
            .filter(|i| tags_of(i).get(TAG_CLUSTER).map(String::as_str) == Some(cluster))
            .find_map(|i| i.text_at("customerGatewayId").map(str::to_owned)))
    }

    async fn connections_of(
        &self,
        filters: &[(String, Vec<String>)],
    ) -> Result<Vec<VpnConnection>> {
        let root = self
            .client
            .call(&QueryRequest::new("DescribeVpnConnections").filters(filters))
            .await?;
        parse_vpn_connections(&root).map_err(|m| self.protocol(m))
    }

    async fn connect_inner(
        &self,
        a: &SiteEndpoint,
        b: &SiteEndpoint,
        link: &LinkSpec,
    ) -> Result<LinkId> {
        let ours = |e: &SiteEndpoint| {
            &e.site == self.client.site() && e.resources.contains_key(RES_VPN_GATEWAY)
        };
        let (local, remote) = match (ours(a), ours(b)) {
            (true, _) => (a, b),
            (false, true) => (b, a),
            _ => {
                return Err(Error::invalid(format!(
                    "neither endpoint ({} or {}) is this site's VPN gateway",
                    a.site, b.site
                )))
            }
        };
        let vgw = &local.resources[RES_VPN_GATEWAY];
        let cluster = local.attributes.get("cluster").cloned().unwrap_or_default();
        let ip = remote.public_address.as_deref().ok_or_else(|| {
            Error::invalid(format!(
                "the peer endpoint of site {} has no public address for a customer gateway",
                remote.site
            ))
        })?;
        let cgw = match self.find_customer_gateway(ip, &cluster).await? {
            Some(id) => id,
            None => {
                let asn = remote
                    .attributes
                    .get("bgp_asn")
                    .cloned()
                    .unwrap_or_else(|| DEFAULT_CGW_ASN.to_string());
                let root = self
                    .client
                    .call(
                        &QueryRequest::new("CreateCustomerGateway")
                            .param("Type", "ipsec.1")
                            .param("IpAddress", ip)
                            .param("BgpAsn", asn)
                            .tag_specification(
                                "customer-gateway",
                                &tags(&cluster, &format!("{cluster}-{}", remote.site)),
                            ),
                    )
                    .await?;
                root.text_at("customerGateway/customerGatewayId")
                    .ok_or_else(|| {
                        self.protocol("CreateCustomerGateway: no customerGatewayId".into())
                    })?
                    .to_owned()
            }
        };
        let existing = self
            .connections_of(&[
                filter("vpn-gateway-id", [vgw.as_str()]),
                filter("customer-gateway-id", [cgw.as_str()]),
            ])
            .await?;
        let id = match existing.into_iter().find(|c| {
            matches!(c.state.as_str(), "pending" | "available")
                && c.vpn_gateway_id.as_deref() == Some(vgw.as_str())
                && c.customer_gateway_id.as_deref() == Some(cgw.as_str())
        }) {
            Some(c) => c.id,
            None => {
                let mut q = QueryRequest::new("CreateVpnConnection")
                    .param("Type", "ipsec.1")
                    .param("CustomerGatewayId", &cgw)
                    .param("VpnGatewayId", vgw)
                    .param("Options.StaticRoutesOnly", "true");
                if let Some(psk) = &link.psk {
                    check_psk(psk.expose_secret())?;
                    for n in 1..=2 {
                        q = q.param(
                            format!("Options.TunnelOptions.{n}.PreSharedKey"),
                            psk.expose_secret(),
                        );
                    }
                }
                let q = q.tag_specification(
                    "vpn-connection",
                    &tags(
                        &cluster,
                        &format!("{cluster}-{}-{}", local.site, remote.site),
                    ),
                );
                let root = self.client.call(&q).await?;
                let el = root
                    .child("vpnConnection")
                    .ok_or_else(|| self.protocol("CreateVpnConnection: no vpnConnection".into()))?;
                parse_vpn_connection(el).map_err(|m| self.protocol(m))?.id
            }
        };
        if self.static_routes {
            let mut cidrs = vec![remote.overlay_subnet.clone()];
            if let Some(more) = remote.attributes.get("local_cidrs") {
                cidrs.extend(
                    more.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                );
            }
            for cidr in cidrs {
                let r = self
                    .client
                    .call(
                        &QueryRequest::new("CreateVpnConnectionRoute")
                            .param("VpnConnectionId", &id)
                            .param("DestinationCidrBlock", &cidr),
                    )
                    .await;
                match r {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e.with_resource(id.clone())),
                }
            }
        }
        Ok(LinkId(id))
    }
}

/// EC2's pre-shared key rule (CreateVpnConnection `TunnelOptions.N.PreSharedKey`):
/// 8–64 letters, digits, `.` or `_`, not starting with `0`. Checked before sending so
/// a bad key is never echoed back in a cloud's error message.
///
/// # Errors
/// `InvalidRequest` stating the rule (never the key).
pub fn check_psk(psk: &str) -> Result<()> {
    let ok = (8..=64).contains(&psk.len())
        && !psk.starts_with('0')
        && psk
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "an EC2 VPN pre-shared key must be 8-64 letters, digits, '.' or '_', not starting with '0'",
        ))
    }
}

fn tags(cluster: &str, name: &str) -> Tags {
    let mut t = Tags::new();
    t.insert(TAG_CLUSTER.into(), cluster.into());
    t.insert("Name".into(), name.into());
    t
}

#[async_trait]
impl VpnFabric for Ec2VpnFabric {
    fn kind(&self) -> FabricKind {
        FabricKind::Ipsec
    }

    async fn prepare_site(&self, ctx: &SiteContext) -> Result<SiteEndpoint> {
        let vpc = match ctx.hints.get("vpc_id") {
            Some(v) => v.clone(),
            None => self.default_vpc().await?,
        };
        let vpc = &vpc;
        let name = format!("{}-{}", ctx.cluster, ctx.site);
        let (vgw, attachments) = match self
            .find_vpn_gateway(&ctx.cluster, &name)
            .await
            .map_err(|e| self.site_err(e))?
        {
            Some(found) => found,
            None => {
                let root = self
                    .client
                    .call(
                        &QueryRequest::new("CreateVpnGateway")
                            .param("Type", "ipsec.1")
                            .tag_specification("vpn-gateway", &tags(&ctx.cluster, &name)),
                    )
                    .await?;
                let id = root
                    .text_at("vpnGateway/vpnGatewayId")
                    .ok_or_else(|| self.protocol("CreateVpnGateway: no vpnGatewayId".into()))?;
                (id.to_owned(), Vec::new())
            }
        };
        let mut state = attachments
            .iter()
            .find(|(v, s)| v == vpc && matches!(s.as_str(), "attaching" | "attached"))
            .map(|(_, s)| s.clone());
        if state.is_none() {
            let root = self
                .client
                .call(
                    &QueryRequest::new("AttachVpnGateway")
                        .param("VpnGatewayId", &vgw)
                        .param("VpcId", vpc),
                )
                .await
                .map_err(|e| e.with_resource(vgw.clone()))?;
            state = root
                .text_at("attachment/state")
                .map(|s| s.trim().to_owned());
        }
        let route_table = match (
            ctx.hints.get("route_table_id"),
            ctx.hints.get("guest_network_id"),
        ) {
            (Some(rt), _) => Some(rt.clone()),
            (None, Some(subnet)) => Some(
                self.route_table_of(subnet, vpc)
                    .await
                    .map_err(|e| self.site_err(e))?,
            ),
            (None, None) => None,
        };
        if let Some(rt) = &route_table {
            if state.as_deref() != Some("attached") {
                self.wait_attached(&vgw, vpc).await?;
            }
            self.enable_propagation(rt, &vgw)
                .await
                .map_err(|e| self.site_err(e))?;
        }
        let mut ep = SiteEndpoint {
            site: ctx.site.clone(),
            kind: FabricKind::Ipsec,
            public_address: None,
            overlay_subnet: ctx.overlay_subnet.clone(),
            resources: Default::default(),
            attributes: Default::default(),
        };
        ep.resources.insert(RES_VPN_GATEWAY.into(), vgw);
        ep.resources.insert(RES_VPC.into(), vpc.clone());
        if let Some(rt) = route_table {
            ep.resources.insert(RES_ROUTE_TABLE.into(), rt);
        }
        ep.attributes.insert("cluster".into(), ctx.cluster.clone());
        ep.attributes.insert("type".into(), "ipsec.1".into());
        Ok(ep)
    }

    async fn connect(&self, a: &SiteEndpoint, b: &SiteEndpoint, link: &LinkSpec) -> Result<LinkId> {
        self.connect_inner(a, b, link)
            .await
            .map_err(|e| self.site_err(e))
    }

    /// EC2 members need nothing at boot: their subnet's route table reaches the
    /// peers through the VPN gateway (route propagation, see `prepare_site`).
    fn member_bootstrap(&self, _member: &Member) -> Result<Bootstrap> {
        Ok(Bootstrap::default())
    }

    async fn link_status(&self, link: &LinkId) -> Result<LinkState> {
        Ok(link_state(&self.connection(&link.0).await?))
    }

    /// The first tunnel's AWS outside address and pre-shared key.
    async fn peer_access(&self, link: &LinkId) -> Result<Option<PeerAccess>> {
        let conn = self.connection(&link.0).await?;
        let t = conn.tunnels.into_iter().next().ok_or_else(|| {
            self.protocol(format!(
                "VPN connection {} has no tunnel in its customer gateway configuration",
                link.0
            ))
        })?;
        Ok(Some(PeerAccess {
            address: Some(t.vpn_gateway_outside_address),
            psk: Some(t.pre_shared_key),
            username: None,
            password: None,
        }))
    }

    async fn disconnect(&self, link: &LinkId) -> Result<()> {
        let conn = match self.connection(&link.0).await {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if conn.state != "deleted" {
            gone_ok(
                self.client
                    .call(
                        &QueryRequest::new("DeleteVpnConnection")
                            .param("VpnConnectionId", &conn.id),
                    )
                    .await,
            )?;
        }
        let Some(cgw) = conn.customer_gateway_id else {
            return Ok(());
        };
        let others = self
            .connections_of(&[filter("customer-gateway-id", [cgw.as_str()])])
            .await?;
        let in_use = others
            .iter()
            .any(|c| c.id != conn.id && !matches!(c.state.as_str(), "deleting" | "deleted"));
        if !in_use {
            gone_ok(
                self.client
                    .call(
                        &QueryRequest::new("DeleteCustomerGateway")
                            .param("CustomerGatewayId", &cgw),
                    )
                    .await,
            )?;
        }
        Ok(())
    }

    /// Also removes connections still on the gateway (a link made but never
    /// journaled, e.g. after a crash right after `CreateVpnConnection`): the gateway
    /// is this cluster's own, and EC2 refuses to delete a gateway in use.
    async fn release_site(&self, endpoint: &SiteEndpoint) -> Result<()> {
        let Some(vgw) = endpoint.resources.get(RES_VPN_GATEWAY) else {
            return Ok(());
        };
        let left = match self
            .connections_of(&[filter("vpn-gateway-id", [vgw.as_str()])])
            .await
        {
            Ok(l) => l,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        for c in left
            .iter()
            .filter(|c| !matches!(c.state.as_str(), "deleting" | "deleted"))
        {
            self.disconnect(&LinkId(c.id.clone())).await?;
        }
        if let Some(rt) = endpoint.resources.get(RES_ROUTE_TABLE) {
            self.disable_propagation(rt, vgw).await?;
        }
        if let Some(vpc) = endpoint.resources.get(RES_VPC) {
            gone_ok(
                self.client
                    .call(
                        &QueryRequest::new("DetachVpnGateway")
                            .param("VpnGatewayId", vgw)
                            .param("VpcId", vpc),
                    )
                    .await,
            )?;
        }
        gone_ok(
            self.client
                .call(&QueryRequest::new("DeleteVpnGateway").param("VpnGatewayId", vgw))
                .await,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psk_rule_without_echo() {
        assert!(check_psk("PSKsecret_0123456789").is_ok());
        for bad in [
            "short",
            "0leadingzero123",
            "has-dash-secret",
            &"x".repeat(65),
        ] {
            let e = check_psk(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidRequest);
            assert!(!e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn link_states() {
        let mut c = VpnConnection {
            id: "vpn-1".into(),
            state: "available".into(),
            customer_gateway_id: None,
            vpn_gateway_id: None,
            telemetry: vec!["DOWN".into(), "DOWN".into()],
            tunnels: vec![],
            tags: Tags::new(),
        };
        assert_eq!(link_state(&c), LinkState::Down);
        c.telemetry[1] = "UP".into();
        assert_eq!(link_state(&c), LinkState::Up);
        c.state = "pending".into();
        assert_eq!(link_state(&c), LinkState::Pending);
    }
}
