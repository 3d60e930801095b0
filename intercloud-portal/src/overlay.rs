//! The VPN between a cluster's sites: a WireGuard overlay with one gateway per site
//! (at the site's reserved `gateway` address) and every node a member, planned before
//! any VM exists so each node's configuration is in its user data.

use std::collections::BTreeMap;
use std::sync::Arc;

use intercloud_core::config::FederationConfig;
use intercloud_core::deploy::Plan;
use intercloud_core::{ClusterRequest, Error, FabricChoice, Result, SiteId};
use intercloud_vpn::{Ipam, Mesh, WireGuardFabric, DEFAULT_OVERLAY_CIDR};

/// The overlay for `draft` (a plan without VPN steps): `None` when the cluster uses
/// one site.
///
/// # Errors
/// `Unsupported` for a fabric other than `auto` / `wireguard`; `Config` naming the
/// site when a used site has no `gateway` address, or when the IPAM cannot fit.
pub fn wireguard_for(
    fed: &FederationConfig,
    request: &ClusterRequest,
    draft: &Plan,
) -> Result<Option<Arc<WireGuardFabric>>> {
    match request.vpn.fabric {
        FabricChoice::Auto | FabricChoice::Wireguard => {}
        other => {
            return Err(Error::unsupported(format!(
                "the {other:?} VPN fabric is not available in the portal; use auto or wireguard"
            )))
        }
    }
    if draft.sites.len() < 2 {
        return Ok(None);
    }
    let mut per_site: BTreeMap<SiteId, u32> = BTreeMap::new();
    for n in &draft.nodes {
        *per_site.entry(n.site.clone()).or_default() += 1;
    }
    let cidr = request.vpn.cidr.as_deref().unwrap_or(DEFAULT_OVERLAY_CIDR);
    let mut mesh = Mesh::new(
        Ipam::plan(cidr, &per_site)?,
        "ic0",
        intercloud_vpn::wireguard::DEFAULT_PORT,
    );
    for site in &draft.sites {
        let gw = fed
            .site(site)
            .and_then(|c| c.gateway.as_deref())
            .ok_or_else(|| {
                Error::config(format!(
                    "site {site} has no overlay gateway address; the operator must reserve one \
                     (`gateway` in the federation file)"
                ))
                .with_site(site)
            })?;
        mesh.add_site(site)?;
        mesh.set_gateway_address(site, Some(gw), None)?;
    }
    for n in &draft.nodes {
        mesh.add_member(&n.name, &n.site)?;
    }
    Ok(Some(Arc::new(WireGuardFabric::new(mesh))))
}

/// Each node's overlay address as the mesh assigned it (the plan must use the same).
pub fn addresses(fabric: &WireGuardFabric, draft: &Plan) -> BTreeMap<String, String> {
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
