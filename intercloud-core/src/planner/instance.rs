//! The planner's internal, index-based view of a topology and a request.
//!
//! Sites and groups become indices, capacities a `[level][site]` table, the network a
//! dense `site × site` matrix. Its size depends on the number of sites and groups,
//! never on the number of VMs.

use super::Constraint;
use crate::model::{
    ClusterRequest, ServiceLevel, SiteId, Topology, TrafficPattern, INTRA_SITE_BANDWIDTH_MBPS,
    INTRA_SITE_RTT_MS,
};
use crate::{Error, ErrorKind, Result};

/// Rounds per job when a traffic pattern does not say (`rounds_per_job` omitted).
pub const DEFAULT_ROUNDS_PER_JOB: f64 = 1.0;

/// Seconds per byte over `mbps` Mbit/s.
pub(crate) fn secs_per_byte(mbps: f64) -> f64 {
    8.0 / (mbps * 1e6)
}

/// A group's traffic with its defaults resolved.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flow {
    pub(crate) pattern: TrafficPattern,
    pub(crate) bytes: f64,
    pub(crate) rounds: f64,
}

/// One node group, by index.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) role: String,
    pub(crate) count: u32,
    pub(crate) level: usize,
    pub(crate) colocate: bool,
    /// Price per hour of one VM of this group at each site (0 where not offered).
    pub(crate) price: Vec<f64>,
    /// Whether pinning and the level's offer allow the site.
    pub(crate) allowed: Vec<bool>,
    /// Most VMs of this group a site may take: capacity, pinning and survive-loss cap.
    pub(crate) ub: Vec<u32>,
    /// The survive-site-loss cap (`count` when none applies).
    pub(crate) survive_cap: u32,
    /// Largest RTT (ms) allowed between two sites of this group.
    pub(crate) max_rtt_ms: f64,
    pub(crate) flow: Option<Flow>,
    /// For `hub` traffic: the group whose sites are the hub.
    pub(crate) hub: Option<usize>,
}

/// The compiled problem.
#[derive(Debug, Clone)]
pub(crate) struct Instance {
    pub(crate) sites: Vec<SiteId>,
    pub(crate) levels: Vec<ServiceLevel>,
    /// `cap[level][site]`.
    pub(crate) cap: Vec<Vec<u32>>,
    pub(crate) groups: Vec<Group>,
    /// RTT in seconds, `site × site`; infinite where unlinked.
    pub(crate) rtt_s: Vec<f64>,
    /// Seconds per byte, `site × site`; infinite where unlinked.
    pub(crate) spb: Vec<f64>,
    /// Whether two sites may be used together (linked, and the link meets the VPN
    /// bandwidth wish).
    pub(crate) linked: Vec<bool>,
    pub(crate) min_sites: u32,
    pub(crate) vpn_mbps: Option<f64>,
}

impl Instance {
    pub(crate) fn n_sites(&self) -> usize {
        self.sites.len()
    }

    pub(crate) fn pair(&self, a: usize, b: usize) -> usize {
        a * self.sites.len() + b
    }

    pub(crate) fn site_index(&self, id: &SiteId) -> Option<usize> {
        self.sites.iter().position(|s| s == id)
    }

    /// Compiles a topology and a request, refusing what is malformed.
    ///
    /// # Errors
    /// `Config` for a malformed topology or request; `InvalidRequest` for a pinning to
    /// an unknown site.
    pub(crate) fn compile(topo: &Topology, req: &ClusterRequest) -> Result<Self> {
        topo.validate()?;
        req.validate()?;
        let sites: Vec<SiteId> = topo.sites.keys().cloned().collect();
        let n = sites.len();
        if n == 0 {
            return Err(Error::invalid("the federation has no sites"));
        }
        let mut levels: Vec<ServiceLevel> = Vec::new();
        for g in &req.groups {
            if !levels.contains(&g.level) {
                levels.push(g.level.clone());
            }
        }
        let cap: Vec<Vec<u32>> = levels
            .iter()
            .map(|l| {
                sites
                    .iter()
                    .map(|s| topo.sites[s].level(l).map_or(0, |o| o.capacity))
                    .collect()
            })
            .collect();
        let mut rtt_s = vec![f64::INFINITY; n * n];
        let mut spb = vec![f64::INFINITY; n * n];
        let mut linked = vec![false; n * n];
        let wish = req.vpn.bandwidth_mbps;
        for a in 0..n {
            for b in 0..n {
                let i = a * n + b;
                if a == b {
                    rtt_s[i] = INTRA_SITE_RTT_MS / 1000.0;
                    spb[i] = secs_per_byte(INTRA_SITE_BANDWIDTH_MBPS);
                    linked[i] = true;
                } else if let Some(l) = topo.link(&sites[a], &sites[b]) {
                    rtt_s[i] = l.rtt_ms / 1000.0;
                    spb[i] = secs_per_byte(l.usable_mbps());
                    linked[i] = wish.is_none_or(|w| l.usable_mbps() + 1e-9 >= w);
                }
            }
        }
        let alpha = req.spread.survive_site_loss;
        let mut groups = Vec::with_capacity(req.groups.len());
        for (gi, g) in req.groups.iter().enumerate() {
            let level = levels.iter().position(|l| *l == g.level).unwrap_or(0);
            if let Some(pins) = &g.sites {
                if pins.is_empty() {
                    return Err(Error::invalid(format!(
                        "group {:?}: sites = [] allows no site; remove the key to allow all",
                        g.role
                    ))
                    .with_constraint(Constraint::Pinning));
                }
                for p in pins {
                    if !topo.sites.contains_key(p) {
                        return Err(Error::invalid(format!(
                            "group {:?} is pinned to site {p}, which is not in the federation (sites: {})",
                            g.role,
                            sites.iter().map(SiteId::as_str).collect::<Vec<_>>().join(", ")
                        ))
                        .with_constraint(Constraint::Pinning));
                    }
                }
            }
            let survive_cap = match alpha {
                Some(a) if !g.colocate && a > 0.0 => {
                    let keep = (a * f64::from(g.count) - 1e-9).ceil().max(0.0) as u32;
                    g.count.saturating_sub(keep)
                }
                _ => g.count,
            };
            let allowed: Vec<bool> = sites
                .iter()
                .map(|s| {
                    g.sites.as_ref().is_none_or(|p| p.contains(s))
                        && topo.sites[s].level(&g.level).is_some()
                })
                .collect();
            let price: Vec<f64> = sites
                .iter()
                .map(|s| {
                    topo.sites[s]
                        .level(&g.level)
                        .map_or(0.0, |o| o.price_per_hour)
                })
                .collect();
            let ub: Vec<u32> = (0..n)
                .map(|s| {
                    if allowed[s] {
                        cap[level][s].min(survive_cap).min(g.count)
                    } else {
                        0
                    }
                })
                .collect();
            let flow = g.traffic.as_ref().map(|t| Flow {
                pattern: t.pattern,
                bytes: t.bytes_per_job,
                rounds: t.rounds_per_job.unwrap_or(DEFAULT_ROUNDS_PER_JOB),
            });
            let hub = match flow {
                Some(f) if f.pattern == TrafficPattern::Hub => req
                    .groups
                    .iter()
                    .enumerate()
                    .find(|(i, o)| *i != gi && o.colocate)
                    .or_else(|| req.groups.iter().enumerate().find(|(i, _)| *i != gi))
                    .map(|(i, _)| i),
                _ => None,
            };
            groups.push(Group {
                role: g.role.clone(),
                count: g.count,
                level,
                colocate: g.colocate,
                price,
                allowed,
                ub,
                survive_cap,
                max_rtt_ms: g.max_rtt_ms.unwrap_or(f64::INFINITY),
                flow,
                hub,
            });
        }
        Ok(Self {
            sites,
            levels,
            cap,
            groups,
            rtt_s,
            spb,
            linked,
            min_sites: req.spread.min_sites,
            vpn_mbps: wish,
        })
    }

    /// Turns matrix counts (`g * S + s`) back into `{role: {site: count}}`, leaving
    /// out zero counts.
    pub(crate) fn to_counts(&self, x: &[u32]) -> crate::model::PlacementCounts {
        let n = self.n_sites();
        self.groups
            .iter()
            .enumerate()
            .map(|(g, grp)| {
                let per: std::collections::BTreeMap<SiteId, u32> = (0..n)
                    .filter(|&s| x[g * n + s] > 0)
                    .map(|s| (self.sites[s].clone(), x[g * n + s]))
                    .collect();
                (grp.role.clone(), per)
            })
            .collect()
    }

    /// Reads `{role: {site: count}}` into matrix counts.
    ///
    /// # Errors
    /// `InvalidRequest` naming an unknown group or site, or (when `strict`) a group
    /// whose counts do not add up to its `count`.
    pub(crate) fn read_counts(
        &self,
        counts: &crate::model::PlacementCounts,
        strict: bool,
    ) -> Result<Vec<u32>> {
        let n = self.n_sites();
        let mut x = vec![0u32; self.groups.len() * n];
        for (role, per) in counts {
            let g = self
                .groups
                .iter()
                .position(|g| &g.role == role)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "placement names group {role:?}, which the request does not have"
                    ))
                })?;
            for (site, &c) in per {
                let s = self.site_index(site).ok_or_else(|| {
                    Error::invalid(format!(
                        "placement puts group {role:?} on site {site}, which is not in the federation"
                    ))
                })?;
                x[g * n + s] = c;
            }
        }
        for (g, grp) in self.groups.iter().enumerate() {
            let sum: u64 = x[g * n..(g + 1) * n].iter().map(|&c| u64::from(c)).sum();
            if strict && sum != u64::from(grp.count) {
                return Err(Error::new(
                    ErrorKind::InvalidRequest,
                    format!(
                        "placement puts {sum} VMs of group {:?}, the request asks for {}",
                        grp.role, grp.count
                    ),
                ));
            }
        }
        Ok(x)
    }
}

/// `1240` → `"1,240"`.
pub(crate) fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1240), "1,240");
        assert_eq!(thousands(2_000_000), "2,000,000");
    }
}
