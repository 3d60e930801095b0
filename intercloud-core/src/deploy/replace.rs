//! Greedy re-placement: where a node goes when its site is out of capacity or down.
//!
//! A candidate site must be in the topology and offer the node's level, be allowed by
//! the group's pinning, not be excluded in this pass, have capacity left for the level
//! (the topology's `capacity` minus the nodes of that level already there), keep a
//! colocated group on one site, keep the group within its `max_rtt_ms`, and be linked
//! to every other site the cluster uses. Among candidates the one with the most
//! capacity left wins (ties: site name order). Pure: no network call.

use std::collections::BTreeSet;

use super::state::State;
use crate::model::SiteId;

/// The site `node` should move to, or `None` when no site satisfies the constraints.
pub(crate) fn choose_site(st: &State, node: &str, excluded: &BTreeSet<SiteId>) -> Option<SiteId> {
    let n = st.nodes.get(node)?;
    let role = &n.plan.role;
    let level = &n.plan.level;
    let group = st.plan.request.group(role)?;
    let topo = &st.plan.topology;
    let others = || {
        st.nodes
            .values()
            .filter(|o| o.plan.name != node && o.failed.is_none())
    };
    // Sites the rest of the group uses, and the rest of the cluster uses.
    let group_sites: BTreeSet<&SiteId> = others()
        .filter(|o| &o.plan.role == role && !excluded.contains(&o.plan.site))
        .map(|o| &o.plan.site)
        .collect();
    let cluster_sites: BTreeSet<&SiteId> = others()
        .filter(|o| !excluded.contains(&o.plan.site))
        .map(|o| &o.plan.site)
        .collect();
    let mut best: Option<(i64, &SiteId)> = None;
    for (id, site) in &topo.sites {
        if excluded.contains(id) {
            continue;
        }
        let Some(offer) = site.level(level) else {
            continue;
        };
        if let Some(allowed) = &group.sites {
            if !allowed.contains(id) {
                continue;
            }
        }
        if group.colocate && !group_sites.is_empty() && !group_sites.contains(id) {
            continue;
        }
        if let Some(max) = group.max_rtt_ms {
            let too_far = group_sites
                .iter()
                .any(|s| topo.rtt_ms(s, id).is_none_or(|r| r > max));
            if too_far {
                continue;
            }
        }
        if cluster_sites.iter().any(|s| topo.rtt_ms(s, id).is_none()) {
            continue;
        }
        let used = others()
            .filter(|o| &o.plan.site == id && &o.plan.level == level)
            .count() as i64;
        let left = i64::from(offer.capacity) - used;
        if left <= 0 {
            continue;
        }
        if best.is_none_or(|(b, _)| left > b) {
            best = Some((left, id));
        }
    }
    best.map(|(_, id)| id.clone())
}
