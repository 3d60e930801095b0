//! A cluster's overlay and boot configuration, planned before any VM exists: the
//! WireGuard mesh for a deployer [`Plan`] and the [`NodeConfigurer`] that renders each
//! create call's cloud-init from the cluster profile and the node's overlay part.
//!
//! The CLI and the portal both deploy through these, so a node boots the same way
//! whichever front end asked for it.

use std::collections::BTreeMap;
use std::sync::Arc;

use intercloud_core::bootstrap::{cloud_init, profile_bootstrap, ClusterLayout, NodeInfo};
use intercloud_core::deploy::{Batch, ConfigContext, NodeConfigurer, Plan};
use intercloud_core::{
    BootFile, Bootstrap, ClusterRequest, Error, FabricChoice, Member, Profile, Result,
    ServiceLevel, SiteId, UserData, VpnFabric, DEFAULT_OVERLAY_CIDR,
};

use crate::ipam::Ipam;
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

/// The WireGuard overlay for `draft` (the deployer's plan without VPN steps): per-site
/// subnets, each node's address in plan order, every used site's gateway at the
/// public address `gateway(site)` reserved for it. `None` when the cluster uses one
/// site.
///
/// # Errors
/// `Unsupported` for a fabric other than `auto`/`wireguard`; `Config` naming the site
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
            "[vpn] fabric = \"{}\" cannot be deployed yet; use \"wireguard\" or \"auto\"",
            format!("{:?}", request.vpn.fabric).to_lowercase()
        )));
    }
    if draft.sites.len() < 2 {
        return Ok(None);
    }
    let mut per_site: BTreeMap<SiteId, u32> = BTreeMap::new();
    for n in &draft.nodes {
        *per_site.entry(n.site.clone()).or_default() += 1;
    }
    let cidr = request.vpn.cidr.as_deref().unwrap_or(DEFAULT_OVERLAY_CIDR);
    let mut mesh = Mesh::new(Ipam::plan(cidr, &per_site)?, OVERLAY_IFACE, DEFAULT_PORT);
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
    for n in &draft.nodes {
        mesh.add_member(&n.name, &n.site)?;
    }
    Ok(Some(Arc::new(WireGuardFabric::new(mesh))))
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

/// Renders each create call's user data: the cluster profile, plus the WireGuard
/// part of every node of the call.
#[derive(Debug, Clone)]
pub struct ClusterConfigurer {
    profile: Profile,
    max_user_data: BTreeMap<SiteId, usize>,
    wireguard: Option<Arc<WireGuardFabric>>,
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
            wireguard,
        }
    }

    fn layout(&self, ctx: &ConfigContext<'_>) -> ClusterLayout {
        ClusterLayout {
            cluster: ctx.cluster.to_owned(),
            profile: self.profile,
            nodes: ctx
                .nodes
                .iter()
                .map(|n| NodeInfo {
                    name: n.name.clone(),
                    role: n.role.clone(),
                    site: n.site.clone(),
                    overlay_ip: n.overlay_ip.clone(),
                    slots: slots_for_level(&n.level),
                })
                .collect(),
        }
    }

    /// One node's overlay part: the site gateway's configuration for the site's first
    /// node (which also answers on its own member address), a member's for the others.
    fn overlay(&self, ctx: &ConfigContext<'_>, name: &str) -> Result<Option<Bootstrap>> {
        let (Some(wg), Some(node)) = (&self.wireguard, ctx.nodes.iter().find(|n| n.name == name))
        else {
            return Ok(None);
        };
        let is_gateway = ctx
            .nodes
            .iter()
            .find(|n| n.site == node.site)
            .map(|n| &n.name)
            == Some(&node.name);
        if is_gateway {
            let mut b = wg.gateway_bootstrap(&node.site)?;
            b.commands.push(format!(
                "ip addr add {}/32 dev {OVERLAY_IFACE}",
                node.overlay_ip
            ));
            return Ok(Some(b));
        }
        wg.member_bootstrap(&Member {
            name: node.name.clone(),
            role: node.role.clone(),
            site: node.site.clone(),
            overlay_ip: node.overlay_ip.clone(),
        })
        .map(Some)
    }
}

/// Moves one node's files under `/etc/intercloud/nodes/INDEX/root` and its commands
/// into `/etc/intercloud/nodes/INDEX/run.sh`, so a call's shared user data holds every
/// node's part and each VM applies its own.
fn per_index(index: usize, part: Bootstrap) -> Bootstrap {
    let dir = format!("/etc/intercloud/nodes/{index}");
    let mut files: Vec<BootFile> = part
        .files
        .into_iter()
        .map(|f| BootFile {
            path: format!("{dir}/root{}", f.path),
            ..f
        })
        .collect();
    let mut script = String::from("#!/bin/sh\nset -e\n");
    for c in &part.commands {
        script.push_str(c);
        script.push('\n');
    }
    files.push(BootFile {
        path: format!("{dir}/run.sh"),
        mode: "0700".into(),
        content: script,
    });
    Bootstrap {
        packages: part.packages,
        files,
        commands: Vec::new(),
    }
}

/// The command that applies a VM's own part: its index is EC2's `ami-launch-index`
/// (VM i of a RunInstances call) or the `-INDEX` suffix of its host name (CloudStack
/// and OpenNebula VMs are named `KEY-INDEX`).
const APPLY_OWN_PART: &str = "i=$(curl -sf --max-time 2 http://169.254.169.254/latest/meta-data/ami-launch-index \
                              || hostname | sed 's/.*-//'); d=/etc/intercloud/nodes/$i; \
                              [ -d \"$d/root\" ] && cp -a \"$d/root/.\" /; [ -x \"$d/run.sh\" ] && \"$d/run.sh\"";

impl NodeConfigurer for ClusterConfigurer {
    fn user_data(&self, ctx: &ConfigContext<'_>, batch: &Batch) -> Result<Option<UserData>> {
        let mut parts = vec![profile_bootstrap(&self.layout(ctx))];
        if let [only] = batch.nodes.as_slice() {
            parts.extend(self.overlay(ctx, only)?);
        } else {
            let mut any = false;
            for (i, name) in batch.nodes.iter().enumerate() {
                if let Some(b) = self.overlay(ctx, name)? {
                    parts.push(per_index(i, b));
                    any = true;
                }
            }
            if any {
                parts.push(Bootstrap {
                    commands: vec![APPLY_OWN_PART.to_owned()],
                    ..Bootstrap::default()
                });
            }
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
