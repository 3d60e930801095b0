//! Greedy re-placement: where a node goes when its site is out of capacity or down.
//!
//! A candidate site must be in the topology and offer the node's level, be allowed by
//! the group's pinning, not be excluded in this pass, have capacity left for the level
//! (the topology's `capacity` minus the nodes of that level already there), keep a
//! colocated group on one site, keep the group within its `max_rtt_ms`, and be linked
//! to every other site the cluster uses. Among candidates the one with the most
//! capacity left wins (ties: site name order). Pure: no network call.

use std::collections::{BTreeMap, BTreeSet};

use super::events::EventKind;
use super::executor::Executor;
use super::journal::Record;
use super::plan::{batch_size, make_batch};
use super::report::Move;
use super::state::{BatchState, BatchStatus};

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

impl Executor<'_> {
    /// Gives every node without a batch a site and a new batch.
    pub(crate) async fn place_homeless(&mut self) {
        let homeless: Vec<String> = self
            .st
            .nodes
            .iter()
            .filter(|(_, n)| n.slot.is_none() && n.failed.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        if homeless.is_empty() {
            return;
        }
        let mut groups: BTreeMap<(SiteId, String), Vec<String>> = BTreeMap::new();
        for name in homeless {
            let from = self.st.nodes[&name].plan.site.clone();
            let target = if self.excluded.contains(&from) {
                choose_site(&self.st, &name, &self.excluded)
            } else {
                Some(from.clone())
            };
            let Some(to) = target else {
                let n = self.st.nodes.get_mut(&name).expect("listed above");
                n.failed = Some(format!(
                    "site {from} cannot host it and no other site satisfies the request's \
                     constraints (pinning, capacity, max_rtt_ms, links)"
                ));
                let role = n.plan.role.clone();
                self.d.events.emit(
                    Some(&from),
                    Some(&role),
                    EventKind::StepFailed {
                        step: format!("place {name}"),
                        error: "no site can host it".into(),
                    },
                );
                continue;
            };
            if to != from {
                if self
                    .record(Record::NodeMoved {
                        node: name.clone(),
                        from: from.clone(),
                        to: to.clone(),
                    })
                    .is_err()
                {
                    return;
                }
                let role = self.st.nodes[&name].plan.role.clone();
                self.d.events.emit(
                    Some(&to),
                    Some(&role),
                    EventKind::Replaced {
                        node: name.clone(),
                        from: from.clone(),
                    },
                );
                self.actions.moved.push(Move {
                    node: name.clone(),
                    from,
                    to: to.clone(),
                });
            }
            let role = self.st.nodes[&name].plan.role.clone();
            groups.entry((to, role)).or_default().push(name);
        }
        if groups.is_empty() {
            return;
        }
        let generation = self.st.next_generation;
        self.st.next_generation += 1;
        for ((site, role), names) in groups {
            if self.d.fabric.is_some() && self.ensure_site_overlay(&site).await.is_err() {
                self.excluded.insert(site.clone());
                for name in &names {
                    // Try again on another site at the next round.
                    if let Some(n) = self.st.nodes.get_mut(name) {
                        n.slot = None;
                    }
                }
                continue;
            }
            let size = self
                .d
                .providers
                .get(&site)
                .map_or(1, |p| batch_size(&p.capabilities())) as usize;
            let level = self.st.nodes[&names[0]].plan.level.clone();
            for (seq, chunk) in names.chunks(size).enumerate() {
                let batch = match make_batch(
                    &self.st.plan.cluster,
                    &self.st.plan.deployment_id,
                    &self.st.plan.topology,
                    &site,
                    &role,
                    &level,
                    generation,
                    seq as u32,
                    chunk.to_vec(),
                ) {
                    Ok(b) => b,
                    Err(e) => {
                        for name in chunk {
                            if let Some(n) = self.st.nodes.get_mut(name) {
                                n.failed = Some(e.to_string());
                            }
                        }
                        continue;
                    }
                };
                self.st.batches.push(BatchState {
                    batch,
                    status: BatchStatus::Planned,
                    attempts: 0,
                });
                let bi = self.st.batches.len() - 1;
                for (i, name) in chunk.iter().enumerate() {
                    if let Some(n) = self.st.nodes.get_mut(name) {
                        n.slot = Some((bi, i as u32));
                        n.vm = None;
                        n.missing_ticks = 0;
                        n.rebuilt = true;
                    }
                }
            }
            self.site_rt(&site);
        }
    }
}
