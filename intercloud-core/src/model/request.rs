//! What a user asks for: a virtual cluster of node groups with constraints.
//!
//! The serde shape is the CLI's `cluster.toml` contract (see the README): unknown keys
//! are refused so a typo never passes silently.

use serde::{Deserialize, Serialize};

use super::site::{ServiceLevel, SiteId};

/// How a group's nodes talk to each other during one job; the planner turns it into
/// an estimated communication time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrafficPattern {
    /// Workers exchange data with the master's site (master ↔ workers).
    Hub,
    /// Every node sends to every other (MapReduce shuffle).
    AllToAll,
    /// Nearest-neighbour exchange (MPI halo), once per round.
    Halo,
    /// Sequential round trips (transactional); bound by the largest RTT.
    LatencyBound,
}

/// A group's traffic per job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// The pattern.
    pub pattern: TrafficPattern,
    /// Bytes moved per job by the whole group.
    pub bytes_per_job: f64,
    /// Rounds (halo iterations, sequential round trips) per job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds_per_job: Option<f64>,
}

/// One group of identical nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeGroup {
    /// The role (`master`, `worker`, …); unique within the request.
    pub role: String,
    /// How many nodes.
    pub count: u32,
    /// The service level of every node.
    pub level: ServiceLevel,
    /// Put the whole group on one site.
    #[serde(default)]
    pub colocate: bool,
    /// The group's traffic, if it matters for placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,
    /// Allowed sites (pinning); `None` allows all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites: Option<Vec<SiteId>>,
    /// Any two sites this group uses must be within this RTT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rtt_ms: Option<f64>,
}

/// Spread constraints for availability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spread {
    /// Distinct sites the whole cluster must use.
    #[serde(default = "one")]
    pub min_sites: u32,
    /// After losing any one site, at least this fraction of each group survives
    /// (groups with `colocate = true` are exempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survive_site_loss: Option<f64>,
}

fn one() -> u32 {
    1
}

impl Default for Spread {
    fn default() -> Self {
        Self {
            min_sites: 1,
            survive_site_loss: None,
        }
    }
}

/// The overlay CIDR used when the request's `[vpn] cidr` names none.
pub const DEFAULT_OVERLAY_CIDR: &str = "10.77.0.0/16";

/// Which VPN fabric links the sites.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FabricChoice {
    /// Chosen per site pair from the sites' capabilities.
    #[default]
    Auto,
    /// A WireGuard overlay.
    Wireguard,
    /// IPsec site-to-site.
    Ipsec,
    /// L2TP/IPsec remote access (the seed's path).
    L2tp,
}

/// The VPN the user wants between sites.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpnWish {
    /// The fabric.
    #[serde(default)]
    pub fabric: FabricChoice,
    /// Minimum bandwidth between sites, Mbit/s (>= 0).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "non_negative_mbps"
    )]
    pub bandwidth_mbps: Option<f64>,
    /// Overlay CIDR (default [`DEFAULT_OVERLAY_CIDR`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
}

/// What every node is configured as at boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Nothing beyond the overlay.
    #[default]
    None,
    /// `/etc/hosts` for the cluster.
    Hosts,
    /// Hosts plus an MPI hostfile.
    Mpi,
    /// Hosts plus Hadoop (`workers`, `core-site.xml`, rack = site).
    Hadoop,
    /// Hosts plus Slurm (`slurm.conf`).
    Slurm,
}

/// Checks a cluster name: 1-32 ASCII letters, digits or '-', starting with a letter.
///
/// The name names the cluster's state folder and tags every resource, so anything
/// else (a path, a space, a dot) is refused wherever a name comes in: `name` in
/// `cluster.toml`, the CLI's `-c NAME`.
///
/// # Errors
/// `Config` saying what a name may hold.
pub fn validate_cluster_name(name: &str) -> crate::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && name.as_bytes()[0].is_ascii_alphabetic();
    if ok {
        Ok(())
    } else {
        Err(crate::Error::config(format!(
            "cluster name {name:?} must be 1-32 ASCII letters, digits or '-', starting with a letter"
        )))
    }
}

/// `[vpn] bandwidth_mbps`: a number >= 0, refused while parsing so that the error
/// names the file, line and column of the value.
fn non_negative_mbps<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v: Option<f64> = Option::deserialize(d)?;
    match v {
        Some(b) if !(b.is_finite() && b >= 0.0) => Err(serde::de::Error::custom(format!(
            "bandwidth_mbps = {b} must be a number >= 0 (Mbit/s), e.g. 500"
        ))),
        v => Ok(v),
    }
}

/// A virtual cluster request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterRequest {
    /// The cluster's name: tags every resource, names the state folder.
    pub name: String,
    /// The cluster profile.
    #[serde(default)]
    pub profile: Profile,
    /// The node groups.
    #[serde(rename = "group")]
    pub groups: Vec<NodeGroup>,
    /// Spread constraints.
    #[serde(default)]
    pub spread: Spread,
    /// The VPN wish.
    #[serde(default)]
    pub vpn: VpnWish,
}

impl ClusterRequest {
    /// Total nodes over all groups.
    pub fn total_nodes(&self) -> u64 {
        self.groups.iter().map(|g| u64::from(g.count)).sum()
    }

    /// The group with `role`.
    pub fn group(&self, role: &str) -> Option<&NodeGroup> {
        self.groups.iter().find(|g| g.role == role)
    }

    /// Checks what can be checked without a topology: a usable name, unique roles,
    /// counts, fractions.
    ///
    /// # Errors
    /// `Config` naming the group and what to fix.
    pub fn validate(&self) -> crate::Result<()> {
        validate_cluster_name(&self.name)?;
        if let Some(b) = self.vpn.bandwidth_mbps {
            if !(b.is_finite() && b >= 0.0) {
                return Err(crate::Error::config(format!(
                    "vpn.bandwidth_mbps = {b} must be a number >= 0 (Mbit/s)"
                )));
            }
        }
        if self.groups.is_empty() {
            return Err(crate::Error::config("the cluster has no [[group]]"));
        }
        for (i, g) in self.groups.iter().enumerate() {
            let role_ok = !g.role.is_empty()
                && g.role.len() <= 16
                && g.role
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !role_ok {
                return Err(crate::Error::config(format!(
                    "group {}: role {:?} must be 1-16 ASCII letters, digits or '-'",
                    i + 1,
                    g.role
                )));
            }
            if self.groups[..i].iter().any(|o| o.role == g.role) {
                return Err(crate::Error::config(format!(
                    "group {}: role {:?} is used by another group; roles must be unique",
                    i + 1,
                    g.role
                )));
            }
            if g.count == 0 {
                return Err(crate::Error::config(format!(
                    "group {:?}: count must be at least 1",
                    g.role
                )));
            }
            if let Some(t) = &g.traffic {
                if !(t.bytes_per_job.is_finite() && t.bytes_per_job >= 0.0) {
                    return Err(crate::Error::config(format!(
                        "group {:?}: traffic.bytes_per_job must be >= 0",
                        g.role
                    )));
                }
                if let Some(r) = t.rounds_per_job {
                    if !(r.is_finite() && r >= 0.0) {
                        return Err(crate::Error::config(format!(
                            "group {:?}: traffic.rounds_per_job must be >= 0",
                            g.role
                        )));
                    }
                }
            }
            if let Some(r) = g.max_rtt_ms {
                if !(r.is_finite() && r >= 0.0) {
                    return Err(crate::Error::config(format!(
                        "group {:?}: max_rtt_ms must be >= 0",
                        g.role
                    )));
                }
            }
        }
        if self.spread.min_sites == 0 {
            return Err(crate::Error::config("spread.min_sites must be at least 1"));
        }
        if let Some(a) = self.spread.survive_site_loss {
            if !(0.0..=1.0).contains(&a) {
                return Err(crate::Error::config(
                    "spread.survive_site_loss must be a fraction in [0, 1], e.g. 0.5",
                ));
            }
        }
        Ok(())
    }
}
