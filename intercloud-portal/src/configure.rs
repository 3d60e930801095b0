//! What every node boots with: the cluster profile (hosts, MPI hostfile, Hadoop,
//! Slurm) rendered by core's bootstrap module into one cloud-init document per create
//! call, within each site's user-data limit.

use std::collections::BTreeMap;

use intercloud_core::bootstrap::{cloud_init, profile_bootstrap, ClusterLayout, NodeInfo};
use intercloud_core::deploy::{Batch, ConfigContext, NodeConfigurer};
use intercloud_core::{Profile, Result, SiteId, UserData};

/// MPI slots / Slurm CPUs per node (the federation file does not say vCPUs).
const SLOTS: u32 = 1;

/// Renders the profile into each batch's user data.
#[derive(Debug, Clone)]
pub struct ProfileConfigurer {
    profile: Profile,
    max_user_data: BTreeMap<SiteId, usize>,
}

impl ProfileConfigurer {
    /// For `profile`, with each site's user-data limit in bytes.
    pub fn new(profile: Profile, max_user_data: BTreeMap<SiteId, usize>) -> Self {
        Self {
            profile,
            max_user_data,
        }
    }
}

impl NodeConfigurer for ProfileConfigurer {
    fn user_data(&self, ctx: &ConfigContext<'_>, batch: &Batch) -> Result<Option<UserData>> {
        if self.profile == Profile::None {
            return Ok(None);
        }
        let layout = ClusterLayout {
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
        };
        let max = self
            .max_user_data
            .get(&batch.site)
            .copied()
            .unwrap_or(16 * 1024);
        cloud_init(&[profile_bootstrap(&layout)], max, &batch.site).map(Some)
    }
}
