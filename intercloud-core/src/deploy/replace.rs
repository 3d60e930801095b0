//! Greedy re-placement: where a node goes when its site is out of capacity or down.
//!
//! A node moves only when the cluster still satisfies **every constraint of the
//! request** after the move — capacity, pinning, colocation, `max_rtt_ms`, links, VPN
//! bandwidth, `spread.min_sites` and `spread.survive_site_loss` — as the planner checks
//! them ([`crate::planner::check`]), counting the nodes not yet re-placed as absent.
//! A candidate site must also be healthy: not excluded in this pass, not failing
//! (its last call failed) and, when this pass has not heard from it within
//! `2 × poll_max`, answering a probe listing within `poll_max`. Among candidates the one with the most capacity left for the
//! node's level wins (ties: site name order). When no site qualifies the node fails
//! with a reason naming its site's error and, per candidate, the constraint a move
//! there would break. [`choose_site`] is pure; the executor's `place_homeless` applies
//! it and journals each move.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use tokio::time::Instant;

use super::events::EventKind;
use super::executor::Executor;
use super::journal::Record;
use super::plan::{batch_size, make_batch};
use super::report::Move;
use super::state::{BatchState, BatchStatus};

use super::state::State;
use crate::model::{PlacementCounts, SiteId, VmFilter};
use crate::planner::Constraint;
use crate::{ErrorInfo, ErrorKind};

/// The site `node` should move to, or why no site will do.
///
/// `excluded` are the sites given up in this pass (nodes on them that have no VM yet
/// count as absent); `unusable` are the sites that may not receive nodes, with why
/// (it includes `excluded`).
pub(crate) fn choose_site(
    st: &State,
    node: &str,
    excluded: &BTreeSet<SiteId>,
    unusable: &BTreeMap<SiteId, String>,
) -> Result<SiteId, String> {
    let Some(n) = st.nodes.get(node) else {
        return Err(format!("unknown node {node}"));
    };
    let level = &n.plan.level;
    let Some(group) = st.plan.request.group(&n.plan.role) else {
        return Err(format!("its group {} is not in the request", n.plan.role));
    };
    let topo = &st.plan.topology;
    if st.plan.pinned_sites.contains(&n.plan.site) {
        return Err(format!(
            "its overlay address belongs to site {}'s guest network (linked by its cloud's \
             VPN gateway), so it cannot move; use [vpn] fabric = \"wireguard\" for nodes \
             that move across sites",
            n.plan.site
        ));
    }
    // Where the rest of the cluster is (nodes still to be re-placed are absent).
    let mut base: PlacementCounts = BTreeMap::new();
    let mut used_level: BTreeMap<&SiteId, i64> = BTreeMap::new();
    for o in st.nodes.values() {
        if o.plan.name == node
            || o.failed.is_some()
            || (o.slot.is_none() && excluded.contains(&o.plan.site))
        {
            continue;
        }
        *base
            .entry(o.plan.role.clone())
            .or_default()
            .entry(o.plan.site.clone())
            .or_default() += 1;
        if &o.plan.level == level {
            *used_level.entry(&o.plan.site).or_default() += 1;
        }
    }
    let mut best: Option<(i64, &SiteId)> = None;
    let mut why: Vec<String> = Vec::new();
    for (id, site) in &topo.sites {
        if id == &n.plan.site && excluded.contains(id) {
            continue;
        }
        if let Some(reason) = unusable.get(id) {
            why.push(format!("{id}: {reason}"));
            continue;
        }
        if st.plan.pinned_sites.contains(id) {
            continue; // its guest network is for the nodes planned there
        }
        let Some(offer) = site.level(level) else {
            why.push(format!("{id} does not offer level {level}"));
            continue;
        };
        if group
            .sites
            .as_ref()
            .is_some_and(|allowed| !allowed.contains(id))
        {
            why.push(format!(
                "{id} would break pinning (group {} may only use {})",
                group.role,
                group
                    .sites
                    .iter()
                    .flatten()
                    .map(SiteId::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            continue;
        }
        let mut after = base.clone();
        *after
            .entry(n.plan.role.clone())
            .or_default()
            .entry(id.clone())
            .or_default() += 1;
        let broken = match crate::planner::check(topo, &st.plan.request, &after) {
            Ok(v) => v
                .into_iter()
                .filter(|v| v.constraint != Constraint::Demand)
                .collect::<Vec<_>>(),
            Err(e) => {
                why.push(format!("{id}: {e}"));
                continue;
            }
        };
        if let Some(v) = broken.first() {
            why.push(format!("{id} would break {} ({})", v.constraint, v.message));
            continue;
        }
        let left = i64::from(offer.capacity) - used_level.get(id).copied().unwrap_or(0);
        if best.is_none_or(|(b, _)| left > b) {
            best = Some((left, id));
        }
    }
    match best {
        Some((_, id)) => Ok(id.clone()),
        None if why.is_empty() => {
            Err("no other site satisfies the request's constraints: there is none".to_owned())
        }
        None => Err(format!(
            "no other site satisfies the request's constraints: {}",
            why.join("; ")
        )),
    }
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
        let moving = homeless
            .iter()
            .any(|n| self.excluded.contains(&self.st.nodes[n].plan.site));
        let mut unusable = BTreeMap::new();
        if moving {
            self.probe_unheard().await;
            unusable = self.unusable_sites();
        }
        let mut groups: BTreeMap<(SiteId, String), Vec<String>> = BTreeMap::new();
        for name in homeless {
            let from = self.st.nodes[&name].plan.site.clone();
            let target = if self.excluded.contains(&from) {
                choose_site(&self.st, &name, &self.excluded, &unusable)
            } else {
                Ok(from.clone())
            };
            let to = match target {
                Ok(to) => to,
                Err(why) => {
                    let cause = self
                        .sites
                        .get(&from)
                        .and_then(|r| r.error.clone())
                        .unwrap_or_else(|| {
                            ErrorInfo::new(
                                ErrorKind::QuotaExceeded,
                                format!("site {from} cannot host it"),
                            )
                            .with_site(from.clone())
                        });
                    let n = self.st.nodes.get_mut(&name).expect("listed above");
                    n.failed = Some(cause.clone().with_message(format!("{cause}; {why}")));
                    let role = n.plan.role.clone();
                    self.d.events.emit(
                        Some(&from),
                        Some(&role),
                        EventKind::StepFailed {
                            step: format!("place {name}"),
                            error: cause.with_message(format!("no site can host it: {why}")),
                        },
                    );
                    continue;
                }
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
                                n.failed = Some(e.info());
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

    /// Sites that may not receive nodes now, with why.
    fn unusable_sites(&self) -> BTreeMap<SiteId, String> {
        self.st
            .plan
            .topology
            .sites
            .keys()
            .filter(|s| !self.healthy(s) || !self.d.providers.contains_key(*s))
            .map(|s| {
                let rt = self.sites.get(s);
                let why = match rt.and_then(|r| r.error.as_ref()) {
                    _ if !self.d.providers.contains_key(s) => "no provider".to_owned(),
                    Some(e) if rt.is_some_and(|r| r.unreachable) => format!("unreachable ({e})"),
                    Some(e) if self.excluded.contains(s) => format!("given up ({e})"),
                    Some(e) => format!("failing ({e})"),
                    None => "failing".to_owned(),
                };
                (s.clone(), why)
            })
            .collect()
    }

    /// Lists, once and within `poll_max`, every healthy site of the topology this
    /// pass has not heard from within `2 × poll_max` (a site with nothing to do, or
    /// one whose tick is still out), so that nodes never move onto a site that does
    /// not answer now; a site that fails the probe counts as failing.
    async fn probe_unheard(&mut self) {
        let poll_max = self.d.options.poll_max;
        let unheard: Vec<SiteId> = self
            .st
            .plan
            .topology
            .sites
            .keys()
            .filter(|s| {
                self.healthy(s)
                    && self
                        .sites
                        .get(*s)
                        .and_then(|r| r.last_ok)
                        .is_none_or(|t| t.elapsed() > poll_max * 2)
            })
            .cloned()
            .collect();
        self.probe(unheard).await;
    }

    /// Lists each of `sites` once, concurrently, within `poll_max`: a site that
    /// answers is heard now; one that does not counts as failing, and unreachable
    /// for the rest of the pass (nothing is placed there, rollback does not wait for
    /// it).
    pub(crate) async fn probe(&mut self, sites: Vec<SiteId>) {
        let sites: Vec<SiteId> = sites
            .into_iter()
            .filter(|s| self.d.providers.contains_key(s))
            .collect();
        if sites.is_empty() {
            return;
        }
        let bound = self.d.options.poll_max;
        let filter = VmFilter::cluster(self.st.plan.cluster.clone());
        let providers = &self.d.providers;
        let calls = sites.iter().map(|s| {
            let p = providers[s].clone();
            let filter = &filter;
            async move { (s, tokio::time::timeout(bound, p.list_vms(filter)).await) }
        });
        let started = Instant::now();
        let answers = join_all(calls).await;
        for (site, answer) in answers {
            let err = match answer {
                Ok(Ok(_)) => {
                    self.site_rt(site).last_ok = Some(Instant::now());
                    continue;
                }
                Ok(Err(e)) => e.info(),
                Err(_) => ErrorInfo::new(
                    ErrorKind::Timeout,
                    format!("site {site}: no answer within {} s", bound.as_secs()),
                )
                .with_site(site.clone()),
            };
            self.d.events.emit(
                Some(site),
                None,
                EventKind::SiteUnreachable { error: err.clone() },
            );
            let rt = self.site_rt(site);
            rt.failing_since.get_or_insert(started);
            rt.error = Some(err);
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

    /// `sites` went down: their nodes lose their VMs; picks a site for `node`.
    fn pick(st: &State, node: &str, sites: &[&str]) -> Result<SiteId, String> {
        let mut st = st.clone();
        let down = ex(sites);
        for n in st.nodes.values_mut() {
            if down.contains(&n.plan.site) {
                n.slot = None;
            }
        }
        let unusable = down
            .iter()
            .map(|s| (s.clone(), "down".to_owned()))
            .collect();
        choose_site(&st, node, &down, &unusable)
    }

    fn with_spread(mut st: State, min_sites: u32, survive: Option<f64>) -> State {
        st.plan.request.spread.min_sites = min_sites;
        st.plan.request.spread.survive_site_loss = survive;
        st
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
        assert_eq!(pick(&st, "w-3", &["b"]), Ok(SiteId::new("c")));
    }

    #[test]
    fn pinning_capacity_and_rtt_are_respected() {
        let st = state(
            group(Some(&["a", "b"]), false, None),
            &[("a", 2), ("b", 1)],
            [5, 5, 9, 99],
        );
        assert_eq!(pick(&st, "w-3", &["b"]), Ok(SiteId::new("a")));
        // a is full (capacity 2, two nodes there): nowhere to go.
        let st = state(
            group(Some(&["a", "b"]), false, None),
            &[("a", 2), ("b", 1)],
            [2, 5, 9, 99],
        );
        let why = pick(&st, "w-3", &["b"]).unwrap_err();
        assert!(why.contains("a would break capacity"), "{why}");
        // Within 50 ms of a: not c (100 ms).
        let st = state(
            group(None, false, Some(50.0)),
            &[("a", 2), ("b", 1)],
            [2, 5, 9, 99],
        );
        let why = pick(&st, "w-3", &["b"]).unwrap_err();
        assert!(why.contains("c would break max-rtt"), "{why}");
        assert!(why.contains("d would break link"), "{why}");
        let st = state(
            group(None, false, Some(150.0)),
            &[("a", 2), ("b", 1)],
            [2, 5, 9, 99],
        );
        assert_eq!(pick(&st, "w-3", &["b"]), Ok(SiteId::new("c")));
    }

    #[test]
    fn a_colocated_group_stays_together() {
        let st = state(group(None, true, None), &[("b", 3)], [5, 5, 9, 99]);
        // The rest of the group is on b (not excluded): only b will do.
        let none = BTreeMap::new();
        assert_eq!(
            choose_site(&st, "w-1", &ex(&[]), &none),
            Ok(SiteId::new("b"))
        );
        // The whole group's site is down: any linked site with room.
        assert_eq!(pick(&st, "w-1", &["b"]), Ok(SiteId::new("d")));
    }

    #[test]
    fn a_move_that_breaks_min_sites_is_refused_naming_the_constraint() {
        // One node on each of a, b, c; min_sites = 3; b goes down. a and c are
        // already used, d is not linked: every move leaves the cluster on 2 sites.
        let st = with_spread(
            state(
                group(None, false, None),
                &[("a", 1), ("b", 1), ("c", 1)],
                [9, 9, 9, 99],
            ),
            3,
            None,
        );
        let why = pick(&st, "w-2", &["b"]).unwrap_err();
        assert!(why.contains("a would break min-sites"), "{why}");
        assert!(why.contains("spread.min_sites = 3"), "{why}");
        // With min_sites = 2 the same move is fine.
        let st = with_spread(st, 2, None);
        assert!(pick(&st, "w-2", &["b"]).is_ok());
    }

    #[test]
    fn a_move_that_breaks_survive_site_loss_is_refused() {
        // 4 workers: 2 on a, 2 on b; at most 2 per site (50 %). b goes down.
        let four = NodeGroup {
            count: 4,
            ..group(None, false, None)
        };
        let st = with_spread(
            state(four, &[("a", 2), ("b", 2)], [9, 9, 9, 99]),
            1,
            Some(0.5),
        );
        let on_b: Vec<&String> = st
            .nodes
            .iter()
            .filter(|(_, n)| n.plan.site.as_str() == "b")
            .map(|(k, _)| k)
            .collect();
        assert_eq!(on_b.len(), 2);
        // a holds its share already: c (linked to a) takes it.
        assert_eq!(pick(&st, on_b[0], &["b"]), Ok(SiteId::new("c")));
        // c failing too: nowhere keeps 50 % after losing a site.
        let mut down = st.clone();
        for n in down.nodes.values_mut() {
            if n.plan.site.as_str() == "b" {
                n.slot = None;
            }
        }
        let unusable: BTreeMap<SiteId, String> = [
            (SiteId::new("b"), "down".to_owned()),
            (SiteId::new("c"), "failing (site c: refused)".to_owned()),
        ]
        .into_iter()
        .collect();
        let why = choose_site(&down, on_b[0], &ex(&["b"]), &unusable).unwrap_err();
        assert!(why.contains("a would break survive-site-loss"), "{why}");
        assert!(why.contains("c: failing (site c: refused)"), "{why}");
    }
}
