//! Greedy re-placement: where a node goes when its site is out of capacity or down.
//!
//! A candidate site must be in the topology and offer the node's level, be allowed by
//! the group's pinning, not be excluded in this pass, have capacity left for the level
//! (the topology's `capacity` minus the nodes of that level already there), keep a
//! colocated group on one site, keep the group within its `max_rtt_ms`, and be linked
//! to every other site the cluster uses. Among candidates the one with the most
//! capacity left wins (ties: site name order). [`choose_site`] is pure; the
//! executor's `place_homeless` applies it and journals each move.

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
    if st.plan.pinned_sites.contains(&n.plan.site) {
        // its address belongs to its site's guest network
        return None;
    }
    let mut best: Option<(i64, &SiteId)> = None;
    for (id, site) in &topo.sites {
        if excluded.contains(id) || st.plan.pinned_sites.contains(id) {
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
                n.failed = Some(if self.st.plan.pinned_sites.contains(&from) {
                    format!(
                        "site {from} cannot host it and its overlay address belongs to that \
                         site's guest network (linked by its cloud's VPN gateway), so it cannot \
                         move; use [vpn] fabric = \"wireguard\" for nodes that move across sites"
                    )
                } else {
                    format!(
                        "site {from} cannot host it and no other site satisfies the request's \
                         constraints (pinning, capacity, max_rtt_ms, links)"
                    )
                });
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
            let pinned = self.st.plan.pinned_sites.contains(&site);
            let size =
                self.d
                    .providers
                    .get(&site)
                    .map_or(1, |p| batch_size(&p.capabilities(), pinned)) as usize;
            let level = self.st.nodes[&names[0]].plan.level.clone();
            for (seq, chunk) in names.chunks(size).enumerate() {
                let mut batch = match make_batch(
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
                if pinned {
                    batch.addresses = chunk
                        .iter()
                        .map(|name| self.st.nodes[name].plan.overlay_ip.clone())
                        .collect();
                }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::deploy::plan::{Plan, PlanOptions};
    use crate::deploy::policy::FailurePolicy;
    use crate::model::{
        ClusterRequest, LevelOffering, Link, Middleware, NodeGroup, ServiceLevel, Site, Topology,
    };

    fn site(id: &str, capacity: u32) -> Site {
        Site {
            id: SiteId::new(id),
            middleware: Middleware::OpenNebula,
            endpoint: "http://127.0.0.1/".into(),
            zone: None,
            levels: [(
                ServiceLevel::new("S"),
                LevelOffering {
                    offering: "small".into(),
                    image: None,
                    price_per_hour: 0.0,
                    capacity,
                },
            )]
            .into_iter()
            .collect(),
            rate_limit: None,
            max_concurrency: None,
        }
    }

    fn link(a: &str, b: &str, rtt: f64) -> Link {
        Link {
            between: [SiteId::new(a), SiteId::new(b)],
            rtt_ms: rtt,
            bandwidth_mbps: 1000.0,
            vpn_overhead: 0.21,
        }
    }

    /// a-b 10 ms, a-c 100 ms, b-c 20 ms, d linked to nobody.
    fn state(group: NodeGroup, on: &[(&str, u32)], caps: [u32; 4]) -> State {
        let topo = Topology::new(
            [
                site("a", caps[0]),
                site("b", caps[1]),
                site("c", caps[2]),
                site("d", caps[3]),
            ],
            vec![
                link("a", "b", 10.0),
                link("a", "c", 100.0),
                link("b", "c", 20.0),
            ],
        );
        let req = ClusterRequest {
            name: "r".into(),
            profile: Default::default(),
            groups: vec![group],
            spread: Default::default(),
            vpn: Default::default(),
        };
        let placement = [(
            "w".to_string(),
            on.iter().map(|(s, n)| (SiteId::new(*s), *n)).collect(),
        )]
        .into_iter()
        .collect();
        let plan = Plan::build(
            &req,
            &topo,
            &placement,
            &BTreeMap::new(),
            PlanOptions::default(),
        )
        .unwrap();
        State::from_plan(plan, FailurePolicy::AllOrNothing)
    }

    fn group(sites: Option<&[&str]>, colocate: bool, max_rtt_ms: Option<f64>) -> NodeGroup {
        NodeGroup {
            role: "w".into(),
            count: 3,
            level: ServiceLevel::new("S"),
            colocate,
            traffic: None,
            sites: sites.map(|s| s.iter().map(|x| SiteId::new(*x)).collect()),
            max_rtt_ms,
        }
    }

    fn ex(s: &[&str]) -> BTreeSet<SiteId> {
        s.iter().map(|x| SiteId::new(*x)).collect()
    }

    #[test]
    fn most_capacity_left_wins_among_linked_sites() {
        // w-1, w-2 on a; w-3 on b; b goes down.
        let st = state(
            group(None, false, None),
            &[("a", 2), ("b", 1)],
            [5, 5, 9, 99],
        );
        // c has the most room; d is not linked to a.
        assert_eq!(choose_site(&st, "w-3", &ex(&["b"])), Some(SiteId::new("c")));
    }

    #[test]
    fn pinning_capacity_and_rtt_are_respected() {
        let st = state(
            group(Some(&["a", "b"]), false, None),
            &[("a", 2), ("b", 1)],
            [5, 5, 9, 99],
        );
        assert_eq!(choose_site(&st, "w-3", &ex(&["b"])), Some(SiteId::new("a")));
        // a is full (capacity 2, two nodes there): nowhere to go.
        let st = state(
            group(Some(&["a", "b"]), false, None),
            &[("a", 2), ("b", 1)],
            [2, 5, 9, 99],
        );
        assert_eq!(choose_site(&st, "w-3", &ex(&["b"])), None);
        // Within 50 ms of a: not c (100 ms).
        let st = state(
            group(None, false, Some(50.0)),
            &[("a", 2), ("b", 1)],
            [2, 5, 9, 99],
        );
        assert_eq!(choose_site(&st, "w-3", &ex(&["b"])), None);
        let st = state(
            group(None, false, Some(150.0)),
            &[("a", 2), ("b", 1)],
            [2, 5, 9, 99],
        );
        assert_eq!(choose_site(&st, "w-3", &ex(&["b"])), Some(SiteId::new("c")));
    }

    #[test]
    fn a_colocated_group_stays_together() {
        let st = state(group(None, true, None), &[("b", 3)], [5, 5, 9, 99]);
        // The rest of the group is on b (not excluded): only b will do.
        assert_eq!(choose_site(&st, "w-1", &ex(&[])), Some(SiteId::new("b")));
        // The whole group's site is down: any linked site with room.
        assert_eq!(choose_site(&st, "w-1", &ex(&["b"])), Some(SiteId::new("d")));
    }
}
