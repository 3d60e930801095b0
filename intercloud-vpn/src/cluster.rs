//! A cluster's overlay and boot configuration, planned before any VM exists: the
//! WireGuard mesh or the IPsec / L2TP [`CompositeFabric`] for a deployer [`Plan`]
//! ([`plan_overlay`]), and the [`NodeConfigurer`] that renders each create call's
//! cloud-init from the cluster profile and the node's overlay part.
//!
//! The CLI and the portal both deploy through these, so a node boots the same way
//! whichever front end asked for it.
//!
//! # User data of constant size
//!
//! One create call's user data is bounded by a constant independent of the cluster's
//! and the call's size (issue #25: a 2,000-node Hadoop cluster deploys on CloudStack
//! with 20 VMs per call and on EC2 with hundreds per RunInstances):
//! - the profile's files (hosts, Hadoop workers and racks, MPI hostfiles,
//!   `slurm.conf`), rendered by `intercloud_core::bootstrap` as before, travel as a
//!   `sh` program writing them byte for byte from runs of lines
//!   ([`compact_files`]);
//! - the nodes' own parts (overlay file, routes, host name) travel as templates with
//!   the name, address and WireGuard key abstracted, and a compressed table of which
//!   VM index is which node (`node_parts`);
//! - WireGuard member keys derive from one secret per key group (whole calls of one
//!   site and role, up to [`KEY_GROUP_MEMBERS`] members) and the node's name, and a
//!   gateway derives its members' public keys from its site's group secrets
//!   (`wireguard::derive`): a member learns its own group's secret, a gateway its
//!   own site's, no node another site's.
//!
//! Every renderer in Rust stays the one definition of its format: the node-side
//! programs reproduce the rendered text, and the tests run them with the real `sh`,
//! `openssl` and `wg` and compare. [`plan_cluster`] renders every call once and
//! refuses a cluster whose user data still exceeds a site's limit.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use intercloud_core::bootstrap::{
    cloud_init, compact_files, profile_bootstrap, ClusterLayout, NodeInfo,
};
use intercloud_core::deploy::{Batch, ConfigContext, NodeConfigurer, Plan, PlanOptions};
use intercloud_core::{
    Bootstrap, Capabilities, CloudProvider, ClusterRequest, Error, FabricChoice, GuestNetwork,
    Member, PlacementCounts, Profile, Result, ServiceLevel, SiteId, Topology, UserData, VpnFabric,
    DEFAULT_OVERLAY_CIDR,
};

use crate::composite::CompositeFabric;
use crate::ipam::Ipam;
use crate::ipsec::StrongSwanFabric;
use crate::node_parts::{batch_parts, NodePart};
use crate::wireguard::{Mesh, WireGuardFabric, DEFAULT_PORT};

/// The overlay interface name on every node.
pub const OVERLAY_IFACE: &str = "ic0";

/// CPU slots (MPI slots, Slurm CPUs) of a service level: S 1, M 2, L 4, others 8.
pub fn slots_for_level(level: &ServiceLevel) -> u32 {
    match level.as_str() {
        "S" => 1,
        "M" => 2,
        "L" => 4,
        _ => 8,
    }
}

/// What a site offers the overlay: its provider's capabilities, its cloud's native
/// VPN fabric for the cluster's wish, if any (CloudStack's or EC2's site-to-site
/// gateway for `ipsec`, CloudStack's remote-access VPN for `l2tp`), and the guest
/// network its VMs join ([`SiteVpn::read_network`]), which a native fabric routes.
#[derive(Debug, Clone)]
pub struct SiteVpn {
    /// The provider's capabilities (`native_vpn`).
    pub caps: Capabilities,
    /// The cloud's own VPN fabric for the wish.
    pub native: Option<Arc<dyn VpnFabric>>,
    /// The site's guest network as its provider reports it.
    pub network: Option<GuestNetwork>,
}

impl SiteVpn {
    /// A site with `caps` and its cloud's `native` fabric, its network not read yet.
    pub fn new(caps: Capabilities, native: Option<Arc<dyn VpnFabric>>) -> Self {
        Self {
            caps,
            native,
            network: None,
        }
    }

    /// Reads the site's guest network from `provider` when the site has a native
    /// fabric (the only case that needs it; one API call or two).
    ///
    /// # Errors
    /// The provider's, naming the site.
    pub async fn read_network(&mut self, provider: &dyn CloudProvider) -> Result<()> {
        if self.native.is_some() && self.network.is_none() {
            self.network = provider.guest_network().await?;
        }
        Ok(())
    }
}

/// What each node's user data gets from the overlay.
#[derive(Debug, Clone)]
pub enum OverlayBoot {
    /// WireGuard gateway and member configurations.
    WireGuard(Arc<WireGuardFabric>),
    /// The composite's gateway VMs (strongSwan, L2TP/IPsec client), rendered from
    /// the links made in this process.
    Composite(Arc<CompositeFabric>),
    /// What an earlier process rendered (saved with the deployment, see
    /// [`RenderedOverlay::of`]), for repair.
    Rendered(RenderedOverlay),
}

/// The composite overlay's boot parts as saved by the process that made the links:
/// gateway VM configurations (holding pre-shared keys and VPN passwords: save it
/// readable by its owner only), the sites' subnets, and the sites whose members
/// route through their gateway VM.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RenderedOverlay {
    /// Each gateway-VM site's gateway configuration.
    pub gateways: BTreeMap<SiteId, Bootstrap>,
    /// Each site's overlay subnet.
    pub subnets: BTreeMap<SiteId, String>,
    /// Sites whose members reach the others through their gateway VM.
    pub via_gateway: BTreeSet<SiteId>,
    /// Sites linked through their cloud's own VPN: their nodes' overlay addresses
    /// are their NIC addresses on the guest network.
    #[serde(default)]
    pub on_guest_network: BTreeSet<SiteId>,
}

impl RenderedOverlay {
    /// Renders `composite` after its links were made.
    ///
    /// # Errors
    /// As [`CompositeFabric::rendered_gateways`].
    pub fn of(composite: &CompositeFabric) -> Result<Self> {
        let subnets = composite.site_subnets();
        let sites =
            |f: &dyn Fn(&SiteId) -> bool| subnets.keys().filter(|s| f(s)).cloned().collect();
        Ok(Self {
            gateways: composite.rendered_gateways()?,
            via_gateway: sites(&|s| composite.routes_through_gateway_vm(s)),
            on_guest_network: sites(&|s| composite.uses_native_vpn(s)),
            subnets,
        })
    }
}

/// A cluster's overlay as planned before any VM exists.
#[derive(Debug, Clone)]
pub struct ClusterOverlay {
    /// The fabric the deployer drives (`Deployer::with_fabric`).
    pub fabric: Arc<dyn VpnFabric>,
    /// Each node's overlay address (`PlanOptions::overlay`).
    pub addresses: BTreeMap<String, String>,
    /// Sites whose VMs must be created at their overlay address, a guest-network
    /// address their cloud's VPN routes (`PlanOptions::pinned_sites`).
    pub pinned_sites: BTreeSet<SiteId>,
    /// What the [`ClusterConfigurer`] renders (`ClusterConfigurer::with_overlay`).
    pub boot: OverlayBoot,
}

/// The overlay of `draft` for the request's `[vpn] fabric`: WireGuard for `auto` and
/// `wireguard` ([`wireguard_overlay`]); for `ipsec` and `l2tp` a [`CompositeFabric`]
/// over each site's native fabric in `sites`, strongSwan gateway VMs and L2TP/IPsec
/// clients, as [`crate::choose`] decides per site pair. `None` when the cluster uses
/// one site. `gateway(site)` is the public address reserved for a site's gateway VM.
///
/// # Errors
/// `Config` naming the sites and what to use instead when the wish cannot link two
/// of them (`l2tp` with no CloudStack site), or naming the site when a site needing
/// a gateway VM has no reserved address, when a placed site is missing
/// from `sites`, or when the overlay CIDR is too small.
pub fn plan_overlay(
    request: &ClusterRequest,
    draft: &Plan,
    sites: &BTreeMap<SiteId, SiteVpn>,
    gateway: impl Fn(&SiteId) -> Option<String>,
) -> Result<Option<ClusterOverlay>> {
    if matches!(
        request.vpn.fabric,
        FabricChoice::Auto | FabricChoice::Wireguard
    ) {
        return Ok(
            wireguard_overlay(request, draft, gateway)?.map(|wg| ClusterOverlay {
                addresses: overlay_addresses(&wg, draft),
                pinned_sites: BTreeSet::new(),
                fabric: wg.clone(),
                boot: OverlayBoot::WireGuard(wg),
            }),
        );
    }
    if draft.sites.len() < 2 {
        return Ok(None);
    }
    let mut ipam = planned_ipam(request, draft)?;
    // `ipsec` and `l2tp` never choose WireGuard: its fabric here has no members.
    let mut composite = CompositeFabric::new(
        request.vpn.fabric,
        Arc::new(WireGuardFabric::new(Mesh::new(
            ipam.clone(),
            OVERLAY_IFACE,
            DEFAULT_PORT,
        ))),
        Arc::new(StrongSwanFabric::new()),
    );
    for site in &draft.sites {
        let s = sites.get(site).ok_or_else(|| {
            Error::config(format!(
                "site {site} has no provider: add the site (with credentials) to the federation"
            ))
            .with_site(site)
        })?;
        composite = composite.with_site(site.clone(), s.caps, s.native.clone());
    }
    composite.validate().map_err(|e| {
        // the request asks for what these sites cannot do: bad input, not an outage
        let c = Error::config(format!(
            "[vpn] fabric = \"{}\" cannot be deployed on the placed sites: {}",
            fabric_name(request.vpn.fabric),
            e.message()
        ));
        match e.site() {
            Some(s) => c.with_site(s.clone()),
            None => c,
        }
    })?;
    let pinned = pin_native_sites(&mut ipam, &composite, draft, sites)?;
    for n in &draft.nodes {
        ipam.assign(&n.name, &n.site)?;
    }
    let need_vm = composite.gateway_vm_sites();
    for site in &draft.sites {
        let subnet = ipam.site(site).map(|s| s.subnet.to_string());
        let mut hints = BTreeMap::new();
        if let Some(net) = sites
            .get(site)
            .and_then(|s| s.network.as_ref())
            .filter(|_| pinned.contains(site))
        {
            // the VPN gateway serves the VPC the VMs join and routes their network
            if let Some(vpc) = &net.vpc {
                hints.insert("vpc_id".to_owned(), vpc.clone());
            }
            hints.insert("guest_network_id".to_owned(), net.id.clone());
        }
        match gateway(site) {
            Some(gw) => {
                hints.insert("public_address".to_owned(), gw.clone());
                hints.insert("private_address".to_owned(), gw);
            }
            None if need_vm.contains(site) => {
                return Err(Error::config(format!(
                    "site {site} needs a strongSwan gateway VM for [vpn] fabric = \"{}\" (its \
                     cloud has no native VPN gateway here): reserve a public address and set \
                     `gateway = \"IP\"` for the site in the federation file",
                    fabric_name(request.vpn.fabric)
                ))
                .with_site(site));
            }
            None => {}
        }
        composite = composite.with_site_context(site, subnet, hints)?;
    }
    let composite = Arc::new(composite);
    let addresses = draft
        .nodes
        .iter()
        .filter_map(|n| {
            ipam.node(&n.name)
                .map(|(_, ip)| (n.name.clone(), ip.to_string()))
        })
        .collect();
    Ok(Some(ClusterOverlay {
        fabric: composite.clone(),
        addresses,
        pinned_sites: pinned,
        boot: OverlayBoot::Composite(composite),
    }))
}

/// The deployer's plan for `counts` with the overlay the request's `[vpn] fabric` asks
/// for, as the CLI and the portal deploy: a draft plan names the nodes,
/// [`plan_overlay`] gives them addresses (and pins sites linked by their cloud's own VPN
/// to their guest network), and the final plan uses those, with the VPN steps. Without
/// an overlay (one site) the draft is the plan. The draft's deployment id (`opts`', or
/// a random one) is the plan's.
///
/// Every create call's user data is rendered once ([`check_user_data`]): a cluster
/// that a site cannot take is refused here, naming the site, the size and the limit.
///
/// # Errors
/// As [`Plan::build`], [`plan_overlay`] and [`check_user_data`].
pub fn plan_cluster(
    request: &ClusterRequest,
    topology: &Topology,
    counts: &PlacementCounts,
    caps: &BTreeMap<SiteId, Capabilities>,
    mut opts: PlanOptions,
    sites: &BTreeMap<SiteId, SiteVpn>,
    gateway: impl Fn(&SiteId) -> Option<String>,
) -> Result<(Plan, Option<ClusterOverlay>)> {
    let draft = Plan::build(request, topology, counts, caps, opts.clone())?;
    let Some(overlay) = plan_overlay(request, &draft, sites, gateway)? else {
        check_user_data(request, &draft, None, caps)?;
        return Ok((draft, None));
    };
    opts.deployment_id = Some(draft.deployment_id.clone());
    opts.vpn = true;
    opts.overlay = Some(overlay.addresses.clone());
    opts.pinned_sites = overlay.pinned_sites.clone();
    let plan = Plan::build(request, topology, counts, caps, opts)?;
    check_user_data(request, &plan, Some(&overlay), caps)?;
    Ok((plan, Some(overlay)))
}

/// Gives every site that `composite` links through its cloud's own VPN its guest
/// network as overlay subnet ([`Ipam::pin_site`]); returns those sites. Addresses the
/// draft's own nodes hold are not counted as taken (re-planning a deployed cluster
/// from its journaled plan gives the same subnets).
///
/// # Errors
/// `Config` naming the site when its provider cannot place VMs at chosen addresses
/// (no guest network) or from [`Ipam::pin_site`].
fn pin_native_sites(
    ipam: &mut Ipam,
    composite: &CompositeFabric,
    draft: &Plan,
    sites: &BTreeMap<SiteId, SiteVpn>,
) -> Result<BTreeSet<SiteId>> {
    let mut pinned = BTreeSet::new();
    for site in draft.sites.iter().filter(|s| composite.uses_native_vpn(s)) {
        let net = sites
            .get(site)
            .and_then(|s| s.network.as_ref())
            .ok_or_else(|| {
                Error::config(format!(
                    "site {site} is linked through its cloud's own VPN, which routes only the \
                 site's guest network, but its provider did not say which network its VMs \
                 join (set `network` for the site in the federation file), or cannot place a \
                 VM at a chosen address; use [vpn] fabric = \"wireguard\" for this site"
                ))
                .with_site(site)
            })?;
        let own: BTreeSet<&str> = draft.nodes.iter().map(|n| n.overlay_ip.as_str()).collect();
        let in_use: Vec<String> = net
            .in_use
            .iter()
            .filter(|a| !own.contains(a.as_str()))
            .cloned()
            .collect();
        let count = draft.nodes.iter().filter(|n| &n.site == site).count() as u32;
        ipam.pin_site(site, &net.cidr, &in_use, count)?;
        pinned.insert(site.clone());
    }
    Ok(pinned)
}

/// The composite of a deployed `ipsec` / `l2tp` cluster over `sites` (the sites its
/// plan uses), for `status`, `repair` and `destroy` in a later process: its
/// endpoints and links are read back from the ids the deployer journaled; gateway
/// configurations come from what was saved ([`OverlayBoot::Rendered`]).
///
/// # Errors
/// `Config` when the overlay CIDR cannot hold the sites.
pub fn deployed_composite(
    request: &ClusterRequest,
    sites: &BTreeMap<SiteId, SiteVpn>,
) -> Result<Arc<CompositeFabric>> {
    let cidr = request.vpn.cidr.as_deref().unwrap_or(DEFAULT_OVERLAY_CIDR);
    let counts: BTreeMap<SiteId, u32> = sites.keys().map(|s| (s.clone(), 1)).collect();
    let mesh = Mesh::new(Ipam::plan(cidr, &counts)?, OVERLAY_IFACE, DEFAULT_PORT);
    let mut c = CompositeFabric::new(
        request.vpn.fabric,
        Arc::new(WireGuardFabric::new(mesh)),
        Arc::new(StrongSwanFabric::new()),
    );
    for (site, s) in sites {
        c = c.with_site(site.clone(), s.caps, s.native.clone());
    }
    Ok(Arc::new(c))
}

fn fabric_name(f: FabricChoice) -> String {
    format!("{f:?}").to_lowercase()
}

/// The overlay addresses of `draft`'s nodes: per-site subnets of the request's CIDR.
fn planned_ipam(request: &ClusterRequest, draft: &Plan) -> Result<Ipam> {
    let mut per_site: BTreeMap<SiteId, u32> = BTreeMap::new();
    for n in &draft.nodes {
        *per_site.entry(n.site.clone()).or_default() += 1;
    }
    let cidr = request.vpn.cidr.as_deref().unwrap_or(DEFAULT_OVERLAY_CIDR);
    Ipam::plan(cidr, &per_site)
}

/// The WireGuard overlay for `draft` (the deployer's plan without VPN steps): per-site
/// subnets, each node's address in plan order, every used site's gateway at the
/// public address `gateway(site)` reserved for it. `None` when the cluster uses one
/// site.
///
/// # Errors
/// `Unsupported` for a fabric other than `auto`/`wireguard` (see [`plan_overlay`]);
/// `Config` naming the site
/// when a used site has no gateway address, or when the overlay CIDR is too small.
pub fn wireguard_overlay(
    request: &ClusterRequest,
    draft: &Plan,
    gateway: impl Fn(&SiteId) -> Option<String>,
) -> Result<Option<Arc<WireGuardFabric>>> {
    if !matches!(
        request.vpn.fabric,
        FabricChoice::Auto | FabricChoice::Wireguard
    ) {
        return Err(Error::unsupported(format!(
            "[vpn] fabric = \"{}\" is not a WireGuard overlay; plan it with plan_overlay",
            fabric_name(request.vpn.fabric)
        )));
    }
    if draft.sites.len() < 2 {
        return Ok(None);
    }
    let mut mesh = Mesh::new(planned_ipam(request, draft)?, OVERLAY_IFACE, DEFAULT_PORT);
    for site in &draft.sites {
        let gw = gateway(site).ok_or_else(|| {
            Error::config(format!(
                "site {site} has no overlay gateway address; reserve one and set \
                 `gateway = \"IP\"` for the site in the federation file"
            ))
            .with_site(site)
        })?;
        mesh.add_site(site)?;
        mesh.set_gateway_address(site, Some(&gw), None)?;
    }
    let group = key_groups(draft);
    for n in &draft.nodes {
        match group.get(n.name.as_str()) {
            Some(g) => mesh.add_member_in_group(&n.name, &n.site, g)?,
            None => mesh.add_member(&n.name, &n.site)?,
        };
    }
    Ok(Some(Arc::new(WireGuardFabric::new(mesh))))
}

/// Members per WireGuard key group, at most (unless one create call makes more).
///
/// A gateway's user data holds one line per key group of its site, a call's user
/// data the secret of the group(s) of its VMs: groups of whole calls, up to this
/// many members, keep both small (a 2,000-node site with 20 VMs per call has 20
/// groups, not 100) while a member learns the keys of at most this many members of
/// its own site (or of its own call, when larger).
pub const KEY_GROUP_MEMBERS: usize = 100;

/// Each node's key group: consecutive create calls of one (site, role) of `draft`,
/// as many as fit in [`KEY_GROUP_MEMBERS`] (at least one), named after the first.
fn key_groups(draft: &Plan) -> BTreeMap<&str, &str> {
    let mut out = BTreeMap::new();
    let mut current: Option<(&SiteId, &str, &str, usize)> = None;
    for b in &draft.batches {
        let id = match current {
            Some((site, role, id, n))
                if site == &b.site && role == b.role && n + b.nodes.len() <= KEY_GROUP_MEMBERS =>
            {
                current = Some((site, role, id, n + b.nodes.len()));
                id
            }
            _ => {
                current = Some((&b.site, &b.role, b.key.as_str(), b.nodes.len()));
                b.key.as_str()
            }
        };
        out.extend(b.nodes.iter().map(|n| (n.as_str(), id)));
    }
    out
}

/// Each node's overlay address as the mesh assigned it, for
/// `PlanOptions::overlay` (the final plan must use the same addresses).
pub fn overlay_addresses(fabric: &WireGuardFabric, draft: &Plan) -> BTreeMap<String, String> {
    let mesh = fabric.mesh();
    draft
        .nodes
        .iter()
        .filter_map(|n| {
            mesh.ipam()
                .node(&n.name)
                .map(|(_, ip)| (n.name.clone(), ip.to_string()))
        })
        .collect()
}

/// Renders each create call's user data: the cluster profile, plus the overlay part
/// of every node of the call.
#[derive(Debug, Clone)]
pub struct ClusterConfigurer {
    profile: Profile,
    max_user_data: BTreeMap<SiteId, usize>,
    overlay: Option<OverlayBoot>,
}

impl ClusterConfigurer {
    /// For `profile`, with each site's user-data limit in bytes (from its provider's
    /// capabilities) and the overlay, when the cluster spans sites.
    pub fn new(
        profile: Profile,
        max_user_data: BTreeMap<SiteId, usize>,
        wireguard: Option<Arc<WireGuardFabric>>,
    ) -> Self {
        Self {
            profile,
            max_user_data,
            overlay: wireguard.map(OverlayBoot::WireGuard),
        }
    }

    /// Uses `overlay` for the nodes' overlay part (replacing a WireGuard one given to
    /// [`ClusterConfigurer::new`]).
    pub fn with_overlay(mut self, overlay: Option<OverlayBoot>) -> Self {
        self.overlay = overlay;
        self
    }

    /// The cluster as the profile's files list it: nodes by overlay address (then
    /// name), whatever order the deployer keeps them in, so every call writes the
    /// same files and a (group, site)'s lines are runs for [`compact_files`].
    fn layout(&self, ctx: &ConfigContext<'_>) -> ClusterLayout {
        let mut nodes: Vec<NodeInfo> = ctx
            .nodes
            .iter()
            .map(|n| NodeInfo {
                name: n.name.clone(),
                role: n.role.clone(),
                site: n.site.clone(),
                overlay_ip: n.overlay_ip.clone(),
                slots: slots_for_level(&n.level),
            })
            .collect();
        nodes.sort_by(|a, b| {
            let key = |n: &NodeInfo| n.overlay_ip.parse::<std::net::Ipv4Addr>().ok();
            (key(a).is_none(), key(a), &a.name).cmp(&(key(b).is_none(), key(b), &b.name))
        });
        ClusterLayout {
            cluster: ctx.cluster.to_owned(),
            profile: self.profile,
            nodes,
        }
    }

    /// One node's overlay part: the site gateway's configuration for the site's first
    /// node (which also answers on its own member address), a member's for the others.
    fn overlay(&self, ctx: &ConfigContext<'_>, name: &str) -> Result<Option<Bootstrap>> {
        let (Some(overlay), Some(node)) =
            (&self.overlay, ctx.nodes.iter().find(|n| n.name == name))
        else {
            return Ok(None);
        };
        let is_gateway = ctx
            .nodes
            .iter()
            .find(|n| n.site == node.site)
            .map(|n| &n.name)
            == Some(&node.name);
        let member = Member {
            name: node.name.clone(),
            role: node.role.clone(),
            site: node.site.clone(),
            overlay_ip: node.overlay_ip.clone(),
        };
        let wg = match overlay {
            OverlayBoot::WireGuard(wg) => wg,
            OverlayBoot::Composite(c) => {
                let gw = if is_gateway {
                    c.gateway_bootstrap(&node.site)?
                } else {
                    None
                };
                let mut own = c.member_bootstrap(&member)?;
                let on_nic = c.uses_native_vpn(&node.site);
                if c.routes_through_gateway_vm(&node.site) {
                    own.commands.push(gateway_routes(
                        &c.site_subnets(),
                        ctx,
                        node,
                        is_gateway,
                        on_nic,
                    ));
                }
                return Ok(Some(with_overlay_address(
                    gw,
                    own,
                    &node.overlay_ip,
                    on_nic,
                )));
            }
            OverlayBoot::Rendered(r) => {
                let gw = if is_gateway {
                    r.gateways.get(&node.site).cloned()
                } else {
                    None
                };
                let mut own = Bootstrap::default();
                let on_nic = r.on_guest_network.contains(&node.site);
                if r.via_gateway.contains(&node.site) {
                    own.commands
                        .push(gateway_routes(&r.subnets, ctx, node, is_gateway, on_nic));
                }
                return Ok(Some(with_overlay_address(
                    gw,
                    own,
                    &node.overlay_ip,
                    on_nic,
                )));
            }
        };
        if is_gateway {
            let mut b = wg.gateway_bootstrap_compact(&node.site)?;
            b.commands.push(format!(
                "ip addr add {}/32 dev {OVERLAY_IFACE}",
                node.overlay_ip
            ));
            return Ok(Some(b));
        }
        wg.member_bootstrap(&member).map(Some)
    }
}

/// The routes of a node on a site whose gateway VM links it to the others: its own
/// site's subnet on the main interface (every node holds its overlay address, see
/// [`with_overlay_address`]; not `on_nic`, where the subnet is the guest network the
/// interface is on already), and on members the other sites' subnets through the
/// gateway node's overlay address, sourced from the member's own.
fn gateway_routes(
    subnets: &BTreeMap<SiteId, String>,
    ctx: &ConfigContext<'_>,
    node: &intercloud_core::deploy::NodePlan,
    is_gateway: bool,
    on_nic: bool,
) -> String {
    let mut cmd = String::from("dev=$(ip -o -4 route show default | awk '{print $5; exit}')");
    if let (Some(own), false) = (subnets.get(&node.site), on_nic) {
        cmd.push_str(&format!("; ip route replace {own} dev \"$dev\""));
    }
    let gateway = ctx.nodes.iter().find(|n| n.site == node.site);
    if let (false, Some(gw)) = (is_gateway, gateway) {
        for (site, subnet) in subnets {
            if *site != node.site {
                cmd.push_str(&format!(
                    "; ip route replace {subnet} via {} dev \"$dev\" onlink src {}",
                    gw.overlay_ip, node.overlay_ip
                ));
            }
        }
    }
    cmd
}

/// A node's IPsec/L2TP overlay part: its gateway configuration (on the site's
/// gateway node), its own part, and its overlay address on a dummy `ic0` interface
/// (the address the sites' IPsec traffic selectors cover) unless the address is
/// `on_nic` already (a site on its guest network).
fn with_overlay_address(
    gateway: Option<Bootstrap>,
    own: Bootstrap,
    ip: &str,
    on_nic: bool,
) -> Bootstrap {
    let mut b = gateway.unwrap_or_default();
    for p in own.packages {
        if !b.packages.contains(&p) {
            b.packages.push(p);
        }
    }
    b.files.extend(own.files);
    // The address first: the node's routes take it as their source.
    if !ip.is_empty() && !on_nic {
        b.commands.extend([
            format!("ip link add {OVERLAY_IFACE} type dummy 2>/dev/null || true"),
            format!("ip link set {OVERLAY_IFACE} up"),
            format!("ip addr replace {ip}/32 dev {OVERLAY_IFACE}"),
        ]);
    }
    b.commands.extend(own.commands);
    b
}

/// The command that makes `name` the VM's host name, now and after a reboot: slurmd,
/// MPI launchers and Hadoop's daemons identify a node by it, while the clouds name
/// VMs `KEY-INDEX`. Runs after `batch.sh` has read the index from the old name.
fn set_hostname(name: &str) -> String {
    let q = format!("'{}'", name.replace('\'', r"'\''"));
    format!("hostnamectl set-hostname {q} 2>/dev/null || hostname {q}; echo {q} > /etc/hostname")
}

/// Where the profile's files are written from (see [`compact_files`]).
const PROFILE_SCRIPT: &str = "/etc/intercloud/cluster-files.sh";

impl NodeConfigurer for ClusterConfigurer {
    fn user_data(&self, ctx: &ConfigContext<'_>, batch: &Batch) -> Result<Option<UserData>> {
        let mut parts = vec![compact_files(
            profile_bootstrap(&self.layout(ctx)),
            PROFILE_SCRIPT,
        )];
        // A profile's tools find nodes by name: each VM takes its node's name.
        let own = |name: &str| -> Result<Option<Bootstrap>> {
            let mut part = self.overlay(ctx, name)?;
            if self.profile != Profile::None {
                part.get_or_insert_with(Bootstrap::default)
                    .commands
                    .push(set_hostname(name));
            }
            Ok(part)
        };
        if let [only] = batch.nodes.as_slice() {
            parts.extend(own(only)?);
        } else {
            let mut nodes = Vec::new();
            for (index, name) in batch.nodes.iter().enumerate() {
                let Some(part) = own(name)? else { continue };
                let ip = ctx
                    .nodes
                    .iter()
                    .find(|n| &n.name == name)
                    .map(|n| n.overlay_ip.clone())
                    .unwrap_or_default();
                let key = match &self.overlay {
                    Some(OverlayBoot::WireGuard(wg)) => wg.member_key_source(name),
                    _ => None,
                };
                nodes.push(NodePart {
                    index,
                    name: name.clone(),
                    ip,
                    key,
                    part,
                });
            }
            parts.extend(batch_parts(&nodes));
        }
        if parts.iter().all(|p| *p == Bootstrap::default()) {
            return Ok(None);
        }
        let max = self
            .max_user_data
            .get(&batch.site)
            .copied()
            .unwrap_or(16 * 1024);
        cloud_init(&parts, max, &batch.site).map(Some)
    }
}

/// Renders every create call's user data of `plan` as the deployer will, before
/// anything is created, so a cluster whose user data a site cannot take is refused
/// at plan time. A composite overlay's gateway parts exist only once its links are
/// made: for it, the profile and the nodes' names are checked.
///
/// # Errors
/// `InvalidRequest` naming the site, the size and the site's limit (from `caps`'
/// `max_user_data`), or the overlay's rendering errors.
pub fn check_user_data(
    request: &ClusterRequest,
    plan: &Plan,
    overlay: Option<&ClusterOverlay>,
    caps: &BTreeMap<SiteId, Capabilities>,
) -> Result<()> {
    let limits = caps
        .iter()
        .map(|(s, c)| (s.clone(), c.max_user_data))
        .collect();
    let boot = overlay.and_then(|o| match &o.boot {
        OverlayBoot::Composite(_) => None,
        b => Some(b.clone()),
    });
    let configurer = ClusterConfigurer::new(request.profile, limits, None).with_overlay(boot);
    let endpoints = BTreeMap::new();
    // in the deployer's order (by name): it decides which node is a site's gateway
    let mut nodes = plan.nodes.clone();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let ctx = ConfigContext {
        cluster: &plan.cluster,
        nodes: &nodes,
        endpoints: &endpoints,
        fabric: None,
    };
    for batch in &plan.batches {
        configurer.user_data(&ctx, batch)?;
    }
    Ok(())
}
