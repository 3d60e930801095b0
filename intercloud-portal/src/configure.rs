//! What every node boots with: the cluster profile (hosts, MPI hostfile, Hadoop,
//! Slurm) and, across sites, its WireGuard overlay configuration, rendered by core's
//! bootstrap module into one cloud-init document per create call, within each site's
//! user-data limit.

use std::collections::BTreeMap;
use std::sync::Arc;

use intercloud_core::bootstrap::{cloud_init, profile_bootstrap, ClusterLayout, NodeInfo};
use intercloud_core::deploy::{Batch, ConfigContext, NodeConfigurer};
use intercloud_core::{BootFile, Bootstrap, Member, Profile, Result, SiteId, UserData, VpnFabric};
use intercloud_vpn::WireGuardFabric;

/// MPI slots / Slurm CPUs per node (the federation file does not say vCPUs).
const SLOTS: u32 = 1;

/// Run on every VM of a multi-node batch: applies the VM's own part, found by its
/// launch index (EC2 metadata) or the `-INDEX` suffix of its host name (CloudStack and
/// OpenNebula name VM `i` of a batch `KEY-i`).
const APPLY_OWN_PART: &str =
    "i=$(curl -sf --max-time 2 http://169.254.169.254/latest/meta-data/ami-launch-index \
     || hostname | sed 's/.*-//'); d=/etc/intercloud/nodes/$i; \
     [ -d \"$d/root\" ] && cp -a \"$d/root/.\" /; [ -x \"$d/run.sh\" ] && \"$d/run.sh\"";

/// Renders the profile (and overlay) into each batch's user data.
#[derive(Debug, Clone)]
pub struct ProfileConfigurer {
    profile: Profile,
    max_user_data: BTreeMap<SiteId, usize>,
    wireguard: Option<Arc<WireGuardFabric>>,
}

impl ProfileConfigurer {
    /// For `profile`, with each site's user-data limit in bytes and the overlay, if
    /// the cluster spans sites.
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
                    slots: SLOTS,
                })
                .collect(),
        }
    }

    /// One node's overlay part: the site gateway's configuration for the site's first
    /// node (which also answers on its own member address), a member's for the rest.
    fn overlay(&self, ctx: &ConfigContext<'_>, name: &str) -> Result<Option<Bootstrap>> {
        let (Some(wg), Some(node)) = (&self.wireguard, ctx.nodes.iter().find(|n| n.name == name))
        else {
            return Ok(None);
        };
        let first_here = ctx.nodes.iter().find(|n| n.site == node.site);
        if first_here.map(|n| &n.name) == Some(&node.name) {
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
/// into `/etc/intercloud/nodes/INDEX/run.sh`: a batch shares one document, and each
/// VM applies its own part.
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

impl NodeConfigurer for ProfileConfigurer {
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
