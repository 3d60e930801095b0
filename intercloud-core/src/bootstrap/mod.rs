//! Cluster bootstrap: what every node is configured as, rendered before the VM exists.
//!
//! Overlay addresses are assigned at plan time, so each node's view of the cluster —
//! `/etc/hosts`, MPI hostfiles (Open MPI's and MPICH's), Hadoop's `workers`,
//! `core-site.xml` and a rack topology script mapping each node to `/SITE` (so HDFS
//! keeps replicas on two sites), Slurm's `slurm.conf` — is plain text computed from a
//! [`ClusterLayout`]. The files and a fabric's [`crate::Bootstrap`] are assembled into
//! one cloud-init document ([`cloud_init`]), checked against the middleware's
//! user-data limit. `intercloud-vpn/tests/bootstrap_parsers.rs` feeds them to the tools
//! that read them (slurmctld, Open MPI, MPICH, glibc, xmllint, sh).
//!
//! Every renderer is a pure function; nothing here does I/O.
//!
//! User data stays small at any cluster size: the profile files travel as the `sh`
//! program of [`compact_files`] that writes them on the node byte for byte (runs of
//! lines differing by arithmetic steps become one call each), see `compact`.

mod cloud_init;
mod compact;
mod inventory;
mod profiles;

pub use cloud_init::{cloud_init, profile_bootstrap};
pub use compact::{compact_files, files_script, sh_lines, sh_quote, RUN_FN};
pub use inventory::{ansible_ini, ansible_yaml};
pub use profiles::{
    core_site_xml, hadoop_workers, hosts_file, mpi_hostfile, mpich_hostfile, rack_script,
    slurm_conf,
};

use serde::{Deserialize, Serialize};

use crate::model::{Profile, SiteId};

/// One node of a cluster as its configuration sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Host name in the cluster (`worker-3`).
    pub name: String,
    /// Role (`master`, `worker`, …).
    pub role: String,
    /// Site the node runs on (its Hadoop rack).
    pub site: SiteId,
    /// Overlay address.
    pub overlay_ip: String,
    /// CPU slots (MPI slots, Slurm CPUs).
    pub slots: u32,
}

/// The whole cluster as every node's configuration sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterLayout {
    /// Cluster name.
    pub cluster: String,
    /// What the nodes are configured as.
    pub profile: Profile,
    /// Every node, in a stable order.
    pub nodes: Vec<NodeInfo>,
}

impl ClusterLayout {
    /// The head node: the first node with role `master` (or `head`, `controller`),
    /// otherwise the first node. `None` for an empty cluster.
    pub fn head(&self) -> Option<&NodeInfo> {
        self.nodes
            .iter()
            .find(|n| matches!(n.role.as_str(), "master" | "head" | "controller"))
            .or_else(|| self.nodes.first())
    }

    /// Every node but the head.
    pub fn workers(&self) -> impl Iterator<Item = &NodeInfo> {
        let head = self.head().map(|h| h.name.clone());
        self.nodes
            .iter()
            .filter(move |n| Some(&n.name) != head.as_ref())
    }
}

#[cfg(test)]
pub(crate) fn sample() -> ClusterLayout {
    let node = |name: &str, role: &str, site: &str, ip: &str, slots| NodeInfo {
        name: name.into(),
        role: role.into(),
        site: site.into(),
        overlay_ip: ip.into(),
        slots,
    };
    ClusterLayout {
        cluster: "hadoop-demo".into(),
        profile: Profile::Hadoop,
        nodes: vec![
            node("master-1", "master", "hokkaido", "10.77.0.10", 4),
            node("worker-1", "worker", "hokkaido", "10.77.0.11", 1),
            node("worker-2", "worker", "nii", "10.77.1.10", 1),
        ],
    }
}
