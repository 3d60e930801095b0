//! [`CloudStackVpn`]: CloudStack's native VPN as a [`VpnFabric`].
//!
//! **Site-to-site** ([`VpnMode::SiteToSite`], IPsec, needs a VPC):
//! `prepare_site` finds or creates the VPC's `createVpnGateway`; `connect` finds or
//! creates a `createVpnCustomerGateway` for the peer (gateway, cidrlist, ipsecpsk,
//! ikepolicy, esppolicy) and a `createVpnConnection`; `link_status` reads
//! `listVpnConnections`; `disconnect` deletes the connection, then the customer
//! gateway; `release_site` deletes the VPN gateway if this fabric created it.
//!
//! **Remote access** ([`VpnMode::RemoteAccess`], L2TP/IPsec, as in the seed
//! deployment): `prepare_site` enables `createRemoteAccessVpn` on a public IP;
//! `connect` adds one VPN user per peer site (`addVpnUser`); the peer's L2TP/IPsec
//! client (rendered by intercloud-vpn) needs [`CloudStackVpn::preshared_key`] and
//! [`CloudStackVpn::user_credentials`].
//!
//! Without a VPC (builder or hint `vpc_id`), site-to-site uses the account's only
//! VPC (`listVPCs`); without a public IP (builder or hint `public_ip_id`), remote
//! access uses a source-NAT address (`listPublicIpAddresses issourcenat=true`): the
//! VPC's (builder or hint `vpc_id`; `vpcid`: in a VPC the source NAT IP belongs to the
//! VPC, no tier is its `associatednetworkid`), else the network's of hint `network_id`
//! (`associatednetworkid`, an isolated network), else the account's.
//! [`VpnFabric::peer_access`] of a remote-access link gives the peer's L2TP/IPsec
//! client the server address, the pre-shared key and the user.
//!
//! Every create is looked up first, so repeating a step finds what exists. Pre-shared
//! keys and passwords travel only in POST bodies and never appear in `Debug`, errors
//! or [`SiteEndpoint`]s.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use rand::distr::{Alphanumeric, SampleString};
use secrecy::{ExposeSecret, SecretString};

use intercloud_core::{
    Bootstrap, Error, ErrorKind, FabricKind, LinkId, LinkSpec, LinkState, Member, PeerAccess,
    Result, SiteContext, SiteEndpoint, VpnFabric,
};

use crate::client::{Call, Client};
use crate::error::protocol;
use crate::jobs::job_object;
use crate::model::{
    flex_id, PublicIpAddress, RemoteAccessVpn, VpnConnection, VpnCustomerGateway, VpnGateway,
    VpnUser,
};

/// A `vpc` object: only its id matters here.
#[derive(Debug, serde::Deserialize)]
struct Vpc {
    #[serde(deserialize_with = "flex_id")]
    id: String,
}

/// Which of CloudStack's VPNs a [`CloudStackVpn`] drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VpnMode {
    /// IPsec between a VPC's VPN gateway and peer gateways.
    SiteToSite,
    /// L2TP/IPsec remote-access VPN on a public IP; peers dial in as VPN users.
    RemoteAccess,
}

/// VPN settings from the builder.
#[derive(Debug, Clone)]
pub(crate) struct VpnSettings {
    pub(crate) vpc: Option<String>,
    pub(crate) public_ip: Option<String>,
    pub(crate) ike_policy: String,
    pub(crate) esp_policy: String,
    pub(crate) ip_range: Option<String>,
}

impl Default for VpnSettings {
    fn default() -> Self {
        Self {
            vpc: None,
            public_ip: None,
            ike_policy: "aes256-sha256;modp2048".to_owned(),
            esp_policy: "aes256-sha256".to_owned(),
            ip_range: None,
        }
    }
}

/// CloudStack's native VPN. Build it with [`crate::CloudStackBuilder::build_vpn`].
pub struct CloudStackVpn {
    client: Client,
    mode: VpnMode,
    settings: VpnSettings,
    /// Passwords of VPN users this fabric added, by user name.
    users: Mutex<BTreeMap<String, SecretString>>,
}

impl fmt::Debug for CloudStackVpn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users = self.users.lock().map(|u| u.len()).unwrap_or(0);
        f.debug_struct("CloudStackVpn")
            .field("client", &self.client)
            .field("mode", &self.mode)
            .field("settings", &self.settings)
            .field("vpn_users", &users)
            .finish()
    }
}

/// A random pre-shared key or password: 32 alphanumerics (no quote, no newline).
fn random_secret() -> SecretString {
    SecretString::from(Alphanumeric.sample_string(&mut rand::rng(), 32))
}

/// A CloudStack user name for the peer `site` of `cluster` (letters, digits, `-`,
/// `_`, `.`; at most 43 characters).
fn vpn_username(cluster: &str, site: &str) -> String {
    let clean: String = format!("{cluster}-{site}")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(40)
        .collect();
    format!("ic-{clean}")
}

impl CloudStackVpn {
    pub(crate) fn new(client: Client, mode: VpnMode, settings: VpnSettings) -> Self {
        Self {
            client,
            mode,
            settings,
            users: Mutex::new(BTreeMap::new()),
        }
    }

    fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> Error {
        Error::new(kind, msg).with_site(self.client.site().clone())
    }

    /// The L2TP/IPsec pre-shared key of a remote-access endpoint, read from
    /// `listRemoteAccessVpns`.
    ///
    /// # Errors
    /// `NotFound` when the endpoint's VPN is gone; `InvalidRequest` for a
    /// site-to-site endpoint.
    pub async fn preshared_key(&self, endpoint: &SiteEndpoint) -> Result<SecretString> {
        let ip = endpoint.resources.get("public_ip").ok_or_else(|| {
            self.err(
                ErrorKind::InvalidRequest,
                "not a remote-access VPN endpoint",
            )
        })?;
        let vpn = self
            .find_remote_access(ip)
            .await?
            .ok_or_else(|| self.err(ErrorKind::NotFound, "remote-access VPN is gone"))?;
        vpn.presharedkey.ok_or_else(|| {
            protocol(
                self.client.site(),
                "listRemoteAccessVpns",
                "no `presharedkey`",
            )
        })
    }

    /// The VPN user name and password a remote-access link's peer dials in with,
    /// when this fabric added the user.
    pub fn user_credentials(&self, link: &LinkId) -> Option<(String, SecretString)> {
        let user = link.0.rsplit(':').next()?.to_owned();
        let users = self.users.lock().ok()?;
        users.get(&user).map(|p| (user, p.clone()))
    }

    /// The account's only VPC, for a site-to-site gateway nobody named a VPC for.
    async fn only_vpc(&self) -> Result<String> {
        let vpcs: Vec<Vpc> = self
            .client
            .list(&Call::get("listVPCs").param("listall", "true"), "vpc")
            .await?;
        match vpcs.as_slice() {
            [one] => Ok(one.id.clone()),
            [] => Err(self.err(
                ErrorKind::Config,
                "site-to-site VPN needs a VPC and the account has none: create one, or use \
                 fabric = \"wireguard\"",
            )),
            _ => Err(self.err(
                ErrorKind::Config,
                format!(
                    "the account has {} VPCs: say which one the VPN gateway goes in (builder vpc \
                     or hint vpc_id)",
                    vpcs.len()
                ),
            )),
        }
    }

    async fn find_remote_access(&self, public_ip_id: &str) -> Result<Option<RemoteAccessVpn>> {
        let call = Call::get("listRemoteAccessVpns")
            .param("publicipid", public_ip_id)
            .param("listall", "true");
        let list: Vec<RemoteAccessVpn> = self.client.list(&call, "remoteaccessvpn").await?;
        Ok(list.into_iter().next())
    }

    /// Runs a delete; an object already gone (431 for an id naming nothing) is Ok.
    async fn delete(&self, call: Call) -> Result<()> {
        match self.client.run(&call).await {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::InvalidRequest | ErrorKind::NotFound) => {
                tracing::debug!(site = %self.client.site(), command = call.command, "already gone");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn prepare_s2s(&self, ctx: &SiteContext) -> Result<SiteEndpoint> {
        let vpc = match ctx.hints.get("vpc_id").or(self.settings.vpc.as_ref()) {
            Some(v) => v.clone(),
            None => self.only_vpc().await?,
        };
        let list_call = Call::get("listVpnGateways")
            .param("vpcid", &vpc)
            .param("listall", "true");
        let found: Vec<VpnGateway> = self.client.list(&list_call, "vpngateway").await?;
        let (gw, created) = match found.into_iter().next() {
            Some(gw) => (gw, false),
            None => {
                let call = Call::post("createVpnGateway").param("vpcid", &vpc);
                let (_, result) = self.client.run(&call).await?;
                let gw: VpnGateway =
                    job_object(self.client.site(), call.command, result, "vpngateway")?;
                (gw, true)
            }
        };
        let mut cidrs = ctx.local_cidrs.clone();
        if !cidrs.contains(&ctx.overlay_subnet) {
            cidrs.push(ctx.overlay_subnet.clone());
        }
        Ok(SiteEndpoint {
            site: ctx.site.clone(),
            kind: FabricKind::Ipsec,
            public_address: gw.publicip,
            overlay_subnet: ctx.overlay_subnet.clone(),
            resources: BTreeMap::from([
                ("vpn_gateway".to_owned(), gw.id),
                ("vpc".to_owned(), gw.vpcid.unwrap_or(vpc)),
            ]),
            attributes: BTreeMap::from([
                ("cidrs".to_owned(), cidrs.join(",")),
                ("ike_policy".to_owned(), self.settings.ike_policy.clone()),
                ("esp_policy".to_owned(), self.settings.esp_policy.clone()),
                ("cluster".to_owned(), ctx.cluster.clone()),
                ("created".to_owned(), created.to_string()),
            ]),
        })
    }

    async fn connect_s2s(
        &self,
        a: &SiteEndpoint,
        b: &SiteEndpoint,
        link: &LinkSpec,
    ) -> Result<LinkId> {
        let gw = a.resources.get("vpn_gateway").ok_or_else(|| {
            self.err(
                ErrorKind::InvalidRequest,
                "endpoint has no vpn_gateway: prepare_site first",
            )
        })?;
        let peer = b.public_address.as_deref().ok_or_else(|| {
            self.err(
                ErrorKind::InvalidRequest,
                format!("peer site {} has no public address yet", b.site),
            )
        })?;
        let cidrs = b
            .attributes
            .get("cidrs")
            .cloned()
            .unwrap_or_else(|| b.overlay_subnet.clone());
        let psk = link.psk.clone().unwrap_or_else(random_secret);
        if psk.expose_secret().is_empty() || psk.expose_secret().contains(['\n', '\r', '"']) {
            return Err(self.err(
                ErrorKind::InvalidRequest,
                "the pre-shared key must be non-empty without newlines or double quotes",
            ));
        }
        let cluster = a
            .attributes
            .get("cluster")
            .map(String::as_str)
            .unwrap_or("x");
        let name = format!("ic-{cluster}-{}", b.site);
        let gateways: Vec<VpnCustomerGateway> = self
            .client
            .list(
                &Call::get("listVpnCustomerGateways").param("listall", "true"),
                "vpncustomergateway",
            )
            .await?;
        let cgw = match gateways
            .into_iter()
            .find(|g| g.name.as_deref() == Some(&name))
        {
            Some(g) => g.id,
            None => {
                let call = Call::post("createVpnCustomerGateway")
                    .param("name", &name)
                    .param("gateway", peer)
                    .param("cidrlist", &cidrs)
                    .secret("ipsecpsk", &psk)
                    .param("ikepolicy", &self.settings.ike_policy)
                    .param("esppolicy", &self.settings.esp_policy);
                let (_, result) = self.client.run(&call).await?;
                let g: VpnCustomerGateway = job_object(
                    self.client.site(),
                    call.command,
                    result,
                    "vpncustomergateway",
                )?;
                g.id
            }
        };
        let mut list = Call::get("listVpnConnections").param("listall", "true");
        if let Some(vpc) = a.resources.get("vpc") {
            list = list.param("vpcid", vpc);
        }
        let conns: Vec<VpnConnection> = self.client.list(&list, "vpnconnection").await?;
        let conn = match conns
            .into_iter()
            .find(|c| c.s2scustomergatewayid.as_deref() == Some(&cgw))
        {
            Some(c) => c.id,
            None => {
                let call = Call::post("createVpnConnection")
                    .param("s2svpngatewayid", gw)
                    .param("s2scustomergatewayid", &cgw);
                let (_, result) = self.client.run(&call).await?;
                let c: VpnConnection =
                    job_object(self.client.site(), call.command, result, "vpnconnection")?;
                c.id
            }
        };
        Ok(LinkId(format!("{conn}/{cgw}")))
    }

    async fn status_s2s(&self, conn: &str) -> Result<LinkState> {
        let call = Call::get("listVpnConnections")
            .param("id", conn)
            .param("listall", "true");
        let list: Vec<VpnConnection> = match self.client.list(&call, "vpnconnection").await {
            Ok(l) => l,
            Err(e) if e.kind() == ErrorKind::InvalidRequest => Vec::new(),
            Err(e) => return Err(e),
        };
        let c = list.into_iter().find(|c| c.id == conn).ok_or_else(|| {
            self.err(
                ErrorKind::NotFound,
                format!("VPN connection {conn} not found"),
            )
        })?;
        match c.state.as_deref() {
            Some("Connected") => Ok(LinkState::Up),
            Some("Pending" | "Connecting") => Ok(LinkState::Pending),
            Some("Disconnected") => Ok(LinkState::Down),
            Some("Error") => Ok(LinkState::Failed("CloudStack reports state Error".into())),
            other => Err(protocol(
                self.client.site(),
                "listVpnConnections",
                format!("unknown VPN connection state {other:?}"),
            )),
        }
    }

    async fn prepare_remote_access(&self, ctx: &SiteContext) -> Result<SiteEndpoint> {
        let ip_id = match ctx
            .hints
            .get("public_ip_id")
            .or(self.settings.public_ip.as_ref())
        {
            Some(id) => id.clone(),
            None => {
                let (vpc, network) = match ctx.hints.get("vpc_id").or(self.settings.vpc.as_ref()) {
                    Some(v) => (Some(v), None),
                    None => (None, ctx.hints.get("network_id")),
                };
                let call = Call::get("listPublicIpAddresses")
                    .opt("vpcid", vpc.map(String::as_str))
                    .opt("associatednetworkid", network.map(String::as_str))
                    .param("issourcenat", "true")
                    .param("listall", "true");
                let ips: Vec<PublicIpAddress> = self.client.list(&call, "publicipaddress").await?;
                ips.into_iter()
                    .find(|ip| ip.issourcenat != Some(false))
                    .ok_or_else(|| {
                        let what = match (vpc, network) {
                            (Some(v), _) => format!("VPC {v}"),
                            (None, Some(n)) => format!("network {n}"),
                            (None, None) => "the account".to_owned(),
                        };
                        self.err(
                            ErrorKind::NotFound,
                            format!(
                                "{what} has no source NAT IP for the remote-access VPN: set the \
                                 builder's public_ip or the hint public_ip_id"
                            ),
                        )
                    })?
                    .id
            }
        };
        let (vpn, created) = match self.find_remote_access(&ip_id).await? {
            Some(v) => (v, false),
            None => {
                let call = Call::post("createRemoteAccessVpn")
                    .param("publicipid", &ip_id)
                    .opt("iprange", self.settings.ip_range.as_deref());
                let (_, result) = self.client.run(&call).await?;
                let v: RemoteAccessVpn =
                    job_object(self.client.site(), call.command, result, "remoteaccessvpn")?;
                (v, true)
            }
        };
        let mut attributes = BTreeMap::from([
            ("protocol".to_owned(), "l2tp-ipsec".to_owned()),
            ("cluster".to_owned(), ctx.cluster.clone()),
            ("created".to_owned(), created.to_string()),
        ]);
        if let Some(r) = &vpn.iprange {
            attributes.insert("ip_range".to_owned(), r.clone());
        }
        Ok(SiteEndpoint {
            site: ctx.site.clone(),
            kind: FabricKind::L2tp,
            public_address: vpn.publicip.clone(),
            overlay_subnet: ctx.overlay_subnet.clone(),
            resources: BTreeMap::from([
                (
                    "public_ip".to_owned(),
                    vpn.publicipid.clone().unwrap_or(ip_id),
                ),
                ("remote_access_vpn".to_owned(), vpn.id.clone()),
            ]),
            attributes,
        })
    }

    /// The server, PSK and user of a remote-access link `l2tp:{vpn}:{user}`.
    async fn remote_access_peer(&self, link: &LinkId) -> Result<PeerAccess> {
        let mut parts = link.0.splitn(3, ':');
        let (Some("l2tp"), Some(vpn), Some(user)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(self.err(
                ErrorKind::InvalidRequest,
                format!("{link} is not a remote-access link id"),
            ));
        };
        let call = Call::get("listRemoteAccessVpns")
            .param("id", vpn)
            .param("listall", "true");
        let list: Vec<RemoteAccessVpn> = self.client.list(&call, "remoteaccessvpn").await?;
        let found = list.into_iter().find(|v| v.id == vpn).ok_or_else(|| {
            self.err(
                ErrorKind::NotFound,
                format!("remote-access VPN {vpn} is gone"),
            )
        })?;
        let psk = found.presharedkey.ok_or_else(|| {
            protocol(
                self.client.site(),
                "listRemoteAccessVpns",
                "no `presharedkey`",
            )
        })?;
        let address = found
            .publicip
            .ok_or_else(|| protocol(self.client.site(), "listRemoteAccessVpns", "no `publicip`"))?;
        Ok(PeerAccess {
            address: Some(address),
            psk: Some(psk),
            username: Some(user.to_owned()),
            password: self.user_credentials(link).map(|(_, p)| p),
        })
    }

    async fn find_user(&self, username: &str) -> Result<Option<VpnUser>> {
        let call = Call::get("listVpnUsers")
            .param("username", username)
            .param("listall", "true");
        let users: Vec<VpnUser> = self.client.list(&call, "vpnuser").await?;
        Ok(users
            .into_iter()
            .find(|u| u.username.as_deref() == Some(username)))
    }

    async fn connect_remote_access(
        &self,
        a: &SiteEndpoint,
        b: &SiteEndpoint,
        link: &LinkSpec,
    ) -> Result<LinkId> {
        let vpn = a.resources.get("remote_access_vpn").ok_or_else(|| {
            self.err(
                ErrorKind::InvalidRequest,
                "endpoint has no remote_access_vpn: prepare_site first",
            )
        })?;
        let cluster = a
            .attributes
            .get("cluster")
            .map(String::as_str)
            .unwrap_or("x");
        let username = vpn_username(cluster, b.site.as_str());
        if self.find_user(&username).await?.is_none() {
            let password = link.psk.clone().unwrap_or_else(random_secret);
            let call = Call::post("addVpnUser")
                .param("username", &username)
                .secret("password", &password);
            self.client.run(&call).await?;
            if let Ok(mut users) = self.users.lock() {
                users.insert(username.clone(), password);
            }
        }
        Ok(LinkId(format!("l2tp:{vpn}:{username}")))
    }
}

/// Splits a site-to-site link id `{connection}/{customer gateway}`.
fn split_s2s(link: &LinkId) -> Option<(&str, &str)> {
    link.0
        .split_once('/')
        .filter(|(c, g)| !c.is_empty() && !g.is_empty())
}

#[async_trait]
impl VpnFabric for CloudStackVpn {
    fn kind(&self) -> FabricKind {
        match self.mode {
            VpnMode::SiteToSite => FabricKind::Ipsec,
            VpnMode::RemoteAccess => FabricKind::L2tp,
        }
    }

    async fn prepare_site(&self, site: &SiteContext) -> Result<SiteEndpoint> {
        match self.mode {
            VpnMode::SiteToSite => self.prepare_s2s(site).await,
            VpnMode::RemoteAccess => self.prepare_remote_access(site).await,
        }
    }

    async fn connect(&self, a: &SiteEndpoint, b: &SiteEndpoint, link: &LinkSpec) -> Result<LinkId> {
        match self.mode {
            VpnMode::SiteToSite => self.connect_s2s(a, b, link).await,
            VpnMode::RemoteAccess => self.connect_remote_access(a, b, link).await,
        }
    }

    /// CloudStack's virtual router is the VPN endpoint: members need nothing at boot.
    fn member_bootstrap(&self, _member: &Member) -> Result<Bootstrap> {
        Ok(Bootstrap::default())
    }

    async fn link_status(&self, link: &LinkId) -> Result<LinkState> {
        match self.mode {
            VpnMode::SiteToSite => {
                let (conn, _) = split_s2s(link).ok_or_else(|| {
                    self.err(ErrorKind::InvalidRequest, format!("bad link id {link}"))
                })?;
                self.status_s2s(conn).await
            }
            VpnMode::RemoteAccess => {
                let user = link.0.rsplit(':').next().unwrap_or_default();
                match self.find_user(user).await?.and_then(|u| u.state) {
                    Some(s) if s == "Active" => Ok(LinkState::Up),
                    Some(s) if s == "Add" => Ok(LinkState::Pending),
                    Some(s) if s == "Revoke" => Ok(LinkState::Down),
                    Some(other) => Err(protocol(
                        self.client.site(),
                        "listVpnUsers",
                        format!("unknown VPN user state {other:?}"),
                    )),
                    None => {
                        Err(self.err(ErrorKind::NotFound, format!("VPN user {user} not found")))
                    }
                }
            }
        }
    }

    /// Remote access: the server address, pre-shared key and VPN user (with its
    /// password when this fabric added the user). Site-to-site: nothing (the caller
    /// chose the PSK and has the gateway's address).
    async fn peer_access(&self, link: &LinkId) -> Result<Option<PeerAccess>> {
        match self.mode {
            VpnMode::SiteToSite => Ok(None),
            VpnMode::RemoteAccess => self.remote_access_peer(link).await.map(Some),
        }
    }

    async fn disconnect(&self, link: &LinkId) -> Result<()> {
        match self.mode {
            VpnMode::SiteToSite => {
                let (conn, cgw) = split_s2s(link).ok_or_else(|| {
                    self.err(ErrorKind::InvalidRequest, format!("bad link id {link}"))
                })?;
                self.delete(Call::post("deleteVpnConnection").param("id", conn))
                    .await?;
                self.delete(Call::post("deleteVpnCustomerGateway").param("id", cgw))
                    .await
            }
            VpnMode::RemoteAccess => {
                let user = link.0.rsplit(':').next().unwrap_or_default().to_owned();
                self.delete(Call::post("removeVpnUser").param("username", &user))
                    .await?;
                if let Ok(mut users) = self.users.lock() {
                    users.remove(&user);
                }
                Ok(())
            }
        }
    }

    async fn release_site(&self, endpoint: &SiteEndpoint) -> Result<()> {
        if endpoint.attributes.get("created").map(String::as_str) != Some("true") {
            return Ok(());
        }
        match self.mode {
            VpnMode::SiteToSite => match endpoint.resources.get("vpn_gateway") {
                Some(id) => {
                    self.delete(Call::post("deleteVpnGateway").param("id", id))
                        .await
                }
                None => Ok(()),
            },
            VpnMode::RemoteAccess => match endpoint.resources.get("public_ip") {
                Some(ip) => {
                    self.delete(Call::post("deleteRemoteAccessVpn").param("publicipid", ip))
                        .await
                }
                None => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_ids_split() {
        assert_eq!(split_s2s(&LinkId("c/g".into())), Some(("c", "g")));
        assert_eq!(split_s2s(&LinkId("c".into())), None);
        assert_eq!(split_s2s(&LinkId("/g".into())), None);
    }

    #[test]
    fn usernames_are_clean() {
        assert_eq!(vpn_username("c1", "nii tokyo!"), "ic-c1-niitokyo");
        assert!(random_secret()
            .expose_secret()
            .chars()
            .all(|c| c.is_ascii_alphanumeric()));
    }
}
