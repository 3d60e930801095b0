//! The federation's sites and the network between them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::site::{Site, SiteId};

/// The default fraction of nominal bandwidth lost through the VPN: 21 %, measured
/// between Hokkaido and Tokyo over an L2VPN in the reference experiment.
pub const DEFAULT_VPN_OVERHEAD: f64 = 0.21;
/// Round-trip time assumed between two VMs of one site, in milliseconds.
pub const INTRA_SITE_RTT_MS: f64 = 0.2;
/// Bandwidth assumed between two VMs of one site, in Mbit/s.
pub const INTRA_SITE_BANDWIDTH_MBPS: f64 = 10_000.0;

fn default_overhead() -> f64 {
    DEFAULT_VPN_OVERHEAD
}

/// The network between two sites.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// The two sites, in any order.
    pub between: [SiteId; 2],
    /// Round-trip time in milliseconds.
    pub rtt_ms: f64,
    /// Nominal bandwidth in Mbit/s, before VPN overhead.
    pub bandwidth_mbps: f64,
    /// Fraction of bandwidth lost through the VPN (0.21 = 21 %).
    #[serde(default = "default_overhead")]
    pub vpn_overhead: f64,
}

impl Link {
    /// Bandwidth left after VPN overhead, in Mbit/s.
    pub fn usable_mbps(&self) -> f64 {
        self.bandwidth_mbps * (1.0 - self.vpn_overhead)
    }

    /// Whether this link joins `a` and `b` (in either order).
    pub fn joins(&self, a: &SiteId, b: &SiteId) -> bool {
        (&self.between[0] == a && &self.between[1] == b)
            || (&self.between[0] == b && &self.between[1] == a)
    }
}

/// Sites plus the links between them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Topology {
    /// The sites by id.
    pub sites: BTreeMap<SiteId, Site>,
    /// The links; a pair without a link cannot be used together.
    #[serde(default)]
    pub links: Vec<Link>,
}

impl Topology {
    /// A topology from sites and links.
    pub fn new(sites: impl IntoIterator<Item = Site>, links: Vec<Link>) -> Self {
        Self {
            sites: sites.into_iter().map(|s| (s.id.clone(), s)).collect(),
            links,
        }
    }

    /// The link between two distinct sites, if any.
    pub fn link(&self, a: &SiteId, b: &SiteId) -> Option<&Link> {
        self.links.iter().find(|l| l.joins(a, b))
    }

    /// Round-trip time between two sites in ms ([`INTRA_SITE_RTT_MS`] within one site;
    /// `None` when the sites are not linked).
    pub fn rtt_ms(&self, a: &SiteId, b: &SiteId) -> Option<f64> {
        if a == b {
            return Some(INTRA_SITE_RTT_MS);
        }
        self.link(a, b).map(|l| l.rtt_ms)
    }

    /// Usable bandwidth between two sites in Mbit/s, after VPN overhead
    /// ([`INTRA_SITE_BANDWIDTH_MBPS`] within one site; `None` when not linked).
    pub fn usable_mbps(&self, a: &SiteId, b: &SiteId) -> Option<f64> {
        if a == b {
            return Some(INTRA_SITE_BANDWIDTH_MBPS);
        }
        self.link(a, b).map(Link::usable_mbps)
    }

    /// Checks the topology for mistakes a user can fix: links naming unknown sites,
    /// duplicate or self links, non-positive or non-finite figures.
    ///
    /// # Errors
    /// `Config` naming the link or site and what is wrong.
    pub fn validate(&self) -> crate::Result<()> {
        for (i, l) in self.links.iter().enumerate() {
            let name = format!("link {} ({} <-> {})", i + 1, l.between[0], l.between[1]);
            for s in &l.between {
                if !self.sites.contains_key(s) {
                    return Err(crate::Error::config(format!(
                        "{name} names site {s}, which is not in the federation"
                    )));
                }
            }
            if l.between[0] == l.between[1] {
                return Err(crate::Error::config(format!(
                    "{name} joins a site to itself"
                )));
            }
            if !(l.rtt_ms.is_finite() && l.rtt_ms >= 0.0) {
                return Err(crate::Error::config(format!("{name}: rtt_ms must be >= 0")));
            }
            if !(l.bandwidth_mbps.is_finite() && l.bandwidth_mbps > 0.0) {
                return Err(crate::Error::config(format!(
                    "{name}: bandwidth_mbps must be > 0"
                )));
            }
            if !(0.0..1.0).contains(&l.vpn_overhead) {
                return Err(crate::Error::config(format!(
                    "{name}: vpn_overhead must be in [0, 1), e.g. 0.21"
                )));
            }
            if self.links[..i]
                .iter()
                .any(|o| o.joins(&l.between[0], &l.between[1]))
            {
                return Err(crate::Error::config(format!("{name} is listed twice")));
            }
        }
        for site in self.sites.values() {
            for (level, o) in &site.levels {
                if !(o.price_per_hour.is_finite() && o.price_per_hour >= 0.0) {
                    return Err(crate::Error::config(format!(
                        "site {}: level {level}: price_per_hour must be >= 0",
                        site.id
                    ))
                    .with_site(&site.id));
                }
            }
        }
        Ok(())
    }
}

/// How many VMs of each group (by role) go to each site: the planner's decision and
/// the deployer's input. `{"worker": {"hokkaido": 3, "nii": 2}}`.
pub type PlacementCounts = BTreeMap<String, BTreeMap<SiteId, u32>>;
