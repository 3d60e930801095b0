//! What every node boots with: the cluster profile (hosts, MPI, Hadoop, Slurm) and its
//! WireGuard overlay configuration, rendered into one cloud-init document per create
//! call.

use std::collections::BTreeMap;
use std::sync::Arc;

use intercloud_core::bootstrap::{cloud_init, profile_bootstrap, ClusterLayout, NodeInfo};
use intercloud_core::deploy::{Batch, ConfigContext, NodeConfigurer};
use intercloud_core::{
    BootFile, Bootstrap, Member, Profile, Result, ServiceLevel, SiteId, UserData, VpnFabric,
};
use intercloud_vpn::WireGuardFabric;

/// MPI slots / Slurm CPUs per service level when the level is not known.
const DEFAULT_SLOTS: u32 = 1;

/// Renders each batch's user data.
#[derive(Debug)]
pub(crate) struct ClusterConfigurer {
    pub(crate) profile: Profile,
    /// vCPUs per service level (MPI slots, Slurm CPUs).
    pub(crate) slots: BTreeMap<ServiceLevel, u32>,
    /// Each site's user-data limit in bytes.
    pub(crate) max_user_data: BTreeMap<SiteId, usize>,
    /// The WireGuard overlay, when the cluster uses one.
    pub(crate) wireguard: Option<Arc<WireGuardFabric>>,
}

impl ClusterConfigurer {
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
                    slots: self.slots.get(&n.level).copied().unwrap_or(DEFAULT_SLOTS),
                })
                .collect(),
        }
    }

    /// The overlay part of one node: the site gateway's configuration for the site's
    /// first node (which also answers on its own member address), a member's for
    /// the others.
    fn overlay(&self, ctx: &ConfigContext<'_>, name: &str) -> Result<Option<Bootstrap>> {
        let Some(wg) = &self.wireguard else {
            return Ok(None);
        };
        let Some(node) = ctx.nodes.iter().find(|n| n.name == name) else {
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
            let iface = wg.mesh().iface().to_owned();
            b.commands
                .push(format!("ip addr add {}/32 dev {iface}", node.overlay_ip));
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
/// into `/etc/intercloud/nodes/INDEX/run.sh`, so a batch's shared user data holds
/// every node's part and each VM applies its own.
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

/// The command that picks a VM's own part: its index is EC2's `ami-launch-index`
/// (intercloud tags VM i of a batch with that index) or the `-INDEX` suffix of its
/// host name (CloudStack and OpenNebula VMs are named `KEY-INDEX`).
const SELECT: &str = "i=$(curl -sf --max-time 2 http://169.254.169.254/latest/meta-data/ami-launch-index \
                      || hostname | sed 's/.*-//'); d=/etc/intercloud/nodes/$i; \
                      [ -d \"$d/root\" ] && cp -a \"$d/root/.\" /; [ -x \"$d/run.sh\" ] && \"$d/run.sh\"";

impl NodeConfigurer for ClusterConfigurer {
    fn user_data(&self, ctx: &ConfigContext<'_>, batch: &Batch) -> Result<Option<UserData>> {
        let mut parts = vec![profile_bootstrap(&self.layout(ctx))];
        if batch.nodes.len() == 1 {
            if let Some(b) = self.overlay(ctx, &batch.nodes[0])? {
                parts.push(b);
            }
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
                    commands: vec![SELECT.to_owned()],
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
