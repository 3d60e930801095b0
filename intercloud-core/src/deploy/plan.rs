//! [`Plan`]: a placement turned into nodes, create batches and a DAG of steps.
//!
//! A plan is pure data computed from the request, the topology, the placement counts
//! and each site's [`Capabilities`]; it makes no network call. Every node gets its
//! stable identity here (name `{role}-{n}`, site, overlay address) and every create
//! batch its idempotency key, derived deterministically from the deployment id, site,
//! role, generation and sequence number so a resumed deployer recomputes the same key.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ipam;
use crate::model::{
    Capabilities, ClusterRequest, IdempotencyKey, ImageRef, PlacementCounts, ServiceLevel, SiteId,
    Topology, UserData, VmSpec, TAG_DEPLOYMENT,
};
use crate::{Error, Result};

/// One node of the cluster: its identity, kept across repairs and moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePlan {
    /// The node's name in the cluster, `{role}-{n}` (n from 1).
    pub name: String,
    /// The node group's role.
    pub role: String,
    /// The node's service level.
    pub level: ServiceLevel,
    /// The site it is placed on (changes when repair or re-placement moves it).
    pub site: SiteId,
    /// Its overlay address, assigned before the VM exists and kept for its lifetime.
    pub overlay_ip: String,
}

/// One `create_vms` call: nodes of one role at one site sharing an idempotency key.
///
/// VM `i` of the call (tag `intercloud-index = i`) is node `nodes[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// The site.
    pub site: SiteId,
    /// The role of every node of the batch.
    pub role: String,
    /// The service level.
    pub level: ServiceLevel,
    /// The site's offering for the level.
    pub offering: String,
    /// The site's image for the level, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageRef>,
    /// 0 for the initial plan; each re-placement or repair round adds one.
    pub generation: u32,
    /// The batch's number within its (site, role, generation).
    pub seq: u32,
    /// The idempotency key of the create call.
    pub key: IdempotencyKey,
    /// Node names by VM index.
    pub nodes: Vec<String>,
    /// The private address each VM must have, by VM index (the nodes' overlay
    /// addresses at a [pinned](Plan::pinned_sites) site); empty lets the cloud choose.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// The deployment's id, tagged on every VM of the batch ([`TAG_DEPLOYMENT`]);
    /// empty in journals written before deployments were tagged.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deployment: String,
}

impl Batch {
    /// How many VMs the batch creates.
    pub fn count(&self) -> u32 {
        self.nodes.len() as u32
    }

    /// The spec of the create call, with `user_data` (never journaled) attached.
    pub fn spec(&self, cluster: &str, user_data: Option<UserData>) -> VmSpec {
        let mut spec = VmSpec::new(
            cluster,
            self.role.clone(),
            self.key.clone(),
            self.level.clone(),
            self.offering.clone(),
        );
        spec.image = self.image.clone();
        if !self.deployment.is_empty() {
            spec.extra_tags
                .insert(TAG_DEPLOYMENT.to_owned(), self.deployment.clone());
        }
        spec.user_data = user_data;
        spec.addresses.clone_from(&self.addresses);
        spec
    }
}

/// The idempotency key of a batch: `{cluster}-{role}-{12 hex}` where the hex digits
/// are a SHA-256 prefix of the deployment id, site, role, generation and sequence.
pub fn batch_key(
    cluster: &str,
    deployment_id: &str,
    site: &SiteId,
    role: &str,
    generation: u32,
    seq: u32,
) -> Result<IdempotencyKey> {
    let mut h = Sha256::new();
    for part in [deployment_id, site.as_str(), role] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.update(generation.to_be_bytes());
    h.update(seq.to_be_bytes());
    let digest = hex::encode(h.finalize());
    IdempotencyKey::new(format!("{cluster}-{role}-{}", &digest[..12]))
}

/// VMs per create call at a site whose middleware has no batch create (CloudStack,
/// OpenNebula): the provider still takes them in one `create_vms` (one lookup by key,
/// one wait), but makes a request per VM, and every VM of the call carries every
/// node's overlay part in its user data, so calls stay small.
pub const NON_BATCH_CALL_SIZE: u32 = 20;

/// How many VMs one create call makes at a site: the provider's `max_batch` for
/// batch-capable middlewares (one request makes them all), else up to
/// [`NON_BATCH_CALL_SIZE`]. At a `pinned` site (VMs at chosen addresses) a
/// batch-capable middleware takes one VM per call: one request cannot give each VM
/// its own address (EC2 `PrivateIpAddress`).
pub fn batch_size(caps: &Capabilities, pinned: bool) -> u32 {
    if caps.batch_create && pinned {
        1
    } else if caps.batch_create {
        caps.max_batch.max(1)
    } else {
        caps.max_batch.clamp(1, NON_BATCH_CALL_SIZE)
    }
}

/// The id of a step in [`Plan::steps`] (its index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StepId(pub usize);

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum StepKind {
    /// Prepare the overlay endpoint (VPN gateway) of a site.
    Endpoint {
        /// The site.
        site: SiteId,
    },
    /// Connect two sites' endpoints.
    Link {
        /// The two sites.
        between: [SiteId; 2],
    },
    /// Create one batch of member VMs and wait for them to run.
    Create {
        /// Index into [`Plan::batches`].
        batch: usize,
    },
    /// The whole cluster is up: every node running, every link up.
    Bootstrap,
}

/// One step of the plan and the steps it waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Its id.
    pub id: StepId,
    /// What it does.
    pub kind: StepKind,
    /// Steps that must finish first.
    pub after: Vec<StepId>,
}

/// Options of [`Plan::build`].
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// The deployment's id (part of every key); a random one when `None`. Use an id
    /// once per journal: the first create call of each key a journal has never
    /// recorded is sent as [`VmSpec::fresh`](crate::model::VmSpec::fresh), without the
    /// backend's lookup by key. To go on with a deployment, resume its journal.
    pub deployment_id: Option<String>,
    /// Whether the plan has VPN steps (a fabric was given).
    pub vpn: bool,
    /// Overlay address per node name, replacing the default assignment from the
    /// request's `[vpn] cidr` (or [`ipam::DEFAULT_OVERLAY_CIDR`]).
    pub overlay: Option<BTreeMap<String, String>>,
    /// Sites whose VMs are created at their overlay address (see
    /// [`Plan::pinned_sites`]).
    pub pinned_sites: BTreeSet<SiteId>,
}

/// A placement turned into nodes, batches and a DAG of steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The cluster's name.
    pub cluster: String,
    /// This deployment's id, recorded in the journal.
    pub deployment_id: String,
    /// The request.
    pub request: ClusterRequest,
    /// The topology the plan was made for.
    pub topology: Topology,
    /// The placement counts the plan realises.
    pub placement: PlacementCounts,
    /// Every node, in group order then number.
    pub nodes: Vec<NodePlan>,
    /// Every create call.
    pub batches: Vec<Batch>,
    /// The sites used, sorted.
    pub sites: Vec<SiteId>,
    /// Site pairs to link (every pair of used sites, when `vpn`).
    pub links: Vec<[SiteId; 2]>,
    /// Whether the plan has VPN steps.
    pub vpn: bool,
    /// Sites whose VMs are created with their node's overlay address as private
    /// address ([`Batch::addresses`]): sites linked by their cloud's own VPN gateway,
    /// which routes only the site's guest network, so the overlay addresses there
    /// are guest-network addresses. Nodes never move onto or off such a site (their
    /// address belongs to it).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub pinned_sites: BTreeSet<SiteId>,
    /// The steps, in an order that respects their dependencies.
    pub steps: Vec<Step>,
}

impl Plan {
    /// Turns placement counts into a plan.
    ///
    /// `caps` holds each site's provider capabilities (batch size); a site missing
    /// from it gets one VM per create call.
    ///
    /// # Errors
    /// `Config` when the placement does not match the request (unknown role, wrong
    /// total, a site that is not in the topology, does not offer the level or is not
    /// allowed by the group's pinning), or when the overlay cannot hold the nodes.
    pub fn build(
        request: &ClusterRequest,
        topology: &Topology,
        placement: &PlacementCounts,
        caps: &BTreeMap<SiteId, Capabilities>,
        opts: PlanOptions,
    ) -> Result<Self> {
        request.validate()?;
        check_placement(request, topology, placement)?;
        let cluster = request.name.clone();
        let deployment_id = match opts.deployment_id {
            Some(id) => id,
            None => IdempotencyKey::random("d").as_str().to_owned(),
        };
        // Names first, so overlay addresses can be assigned before any VM exists.
        let mut pending: Vec<(String, String, ServiceLevel, SiteId)> = Vec::new();
        for g in &request.groups {
            let mut n = 0u32;
            if let Some(per_site) = placement.get(&g.role) {
                for (site, count) in per_site {
                    for _ in 0..*count {
                        n += 1;
                        pending.push((
                            format!("{}-{n}", g.role),
                            g.role.clone(),
                            g.level.clone(),
                            site.clone(),
                        ));
                    }
                }
            }
        }
        let names: Vec<String> = pending.iter().map(|p| p.0.clone()).collect();
        let overlay = match opts.overlay {
            Some(map) => map,
            None => {
                let cidr = request
                    .vpn
                    .cidr
                    .as_deref()
                    .unwrap_or(ipam::DEFAULT_OVERLAY_CIDR);
                ipam::assign(cidr, &names)?
            }
        };
        let mut nodes = Vec::with_capacity(pending.len());
        for (name, role, level, site) in pending {
            let overlay_ip = overlay.get(&name).cloned().ok_or_else(|| {
                Error::config(format!("the overlay map has no address for node {name}"))
            })?;
            nodes.push(NodePlan {
                name,
                role,
                level,
                site,
                overlay_ip,
            });
        }
        let mut batches = Vec::new();
        for g in &request.groups {
            let Some(per_site) = placement.get(&g.role) else {
                continue;
            };
            for site in per_site.keys() {
                let members: Vec<String> = nodes
                    .iter()
                    .filter(|n| n.role == g.role && &n.site == site)
                    .map(|n| n.name.clone())
                    .collect();
                let pinned = opts.pinned_sites.contains(site);
                let size = caps.get(site).map_or(1, |c| batch_size(c, pinned)) as usize;
                for (seq, chunk) in members.chunks(size).enumerate() {
                    let mut batch = make_batch(
                        &cluster,
                        &deployment_id,
                        topology,
                        site,
                        &g.role,
                        &g.level,
                        0,
                        seq as u32,
                        chunk.to_vec(),
                    )?;
                    if pinned {
                        batch.addresses = chunk
                            .iter()
                            .filter_map(|n| overlay.get(n).cloned())
                            .collect();
                    }
                    batches.push(batch);
                }
            }
        }
        let sites: Vec<SiteId> = nodes
            .iter()
            .map(|n| n.site.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut links = Vec::new();
        if opts.vpn {
            for (i, a) in sites.iter().enumerate() {
                for b in &sites[i + 1..] {
                    links.push([a.clone(), b.clone()]);
                }
            }
        }
        let steps = build_steps(&sites, &links, &batches, opts.vpn);
        Ok(Self {
            cluster,
            deployment_id,
            request: request.clone(),
            topology: topology.clone(),
            placement: placement.clone(),
            nodes,
            batches,
            sites,
            links,
            vpn: opts.vpn,
            pinned_sites: opts.pinned_sites,
            steps,
        })
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The plan as text, like `terraform plan`: every step with what it waits for.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "intercloud will deploy cluster {:?} (deployment {}): {} nodes on {} site(s)\n",
            self.cluster,
            self.deployment_id,
            self.nodes.len(),
            self.sites.len()
        );
        for step in &self.steps {
            let after = if step.after.is_empty() {
                String::new()
            } else {
                let names: Vec<String> =
                    step.after.iter().map(|s| format!("#{}", s.0 + 1)).collect();
                format!("   (after {})", names.join(", "))
            };
            let _ = write!(out, "  #{:<3} + ", step.id.0 + 1);
            match &step.kind {
                StepKind::Endpoint { site } => {
                    let _ = writeln!(out, "endpoint  {site}{after}");
                }
                StepKind::Link { between } => {
                    let _ = writeln!(out, "link      {} <-> {}{after}", between[0], between[1]);
                }
                StepKind::Create { batch } => {
                    let b = &self.batches[*batch];
                    let _ = writeln!(
                        out,
                        "create    {} {} x{} (level {}: {}) key {}{after}",
                        b.site,
                        b.role,
                        b.count(),
                        b.level,
                        b.offering,
                        b.key
                    );
                    for name in &b.nodes {
                        if let Some(n) = self.node(name) {
                            let _ = writeln!(out, "              {:<16} {}", n.name, n.overlay_ip);
                        }
                    }
                }
                StepKind::Bootstrap => {
                    let _ = writeln!(out, "bootstrap cluster {:?}{after}", self.cluster);
                }
            }
        }
        let _ = writeln!(
            out,
            "\nPlan: {} VMs in {} create call(s), {} endpoint(s), {} link(s).",
            self.nodes.len(),
            self.batches.len(),
            if self.vpn { self.sites.len() } else { 0 },
            self.links.len()
        );
        out
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.explain())
    }
}

/// A batch of `nodes` of `role` at `site`, with its key and the site's offering.
///
/// # Errors
/// `Config` when the site is unknown or does not offer `level`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn make_batch(
    cluster: &str,
    deployment_id: &str,
    topology: &Topology,
    site: &SiteId,
    role: &str,
    level: &ServiceLevel,
    generation: u32,
    seq: u32,
    nodes: Vec<String>,
) -> Result<Batch> {
    let offering = topology
        .sites
        .get(site)
        .and_then(|s| s.level(level))
        .ok_or_else(|| {
            Error::config(format!("site {site} does not offer level {level}")).with_site(site)
        })?;
    Ok(Batch {
        site: site.clone(),
        role: role.to_owned(),
        level: level.clone(),
        offering: offering.offering.clone(),
        image: offering.image.clone(),
        generation,
        seq,
        key: batch_key(cluster, deployment_id, site, role, generation, seq)?,
        nodes,
        addresses: Vec::new(),
        deployment: deployment_id.to_owned(),
    })
}

fn check_placement(
    request: &ClusterRequest,
    topology: &Topology,
    placement: &PlacementCounts,
) -> Result<()> {
    for role in placement.keys() {
        if request.group(role).is_none() {
            return Err(Error::config(format!(
                "the placement names role {role:?}, which the cluster has no group for"
            )));
        }
    }
    for g in &request.groups {
        let per_site = placement.get(&g.role);
        let total: u32 = per_site.map_or(0, |m| m.values().sum());
        if total != g.count {
            return Err(Error::config(format!(
                "group {:?}: the placement has {total} nodes but the group asks for {}",
                g.role, g.count
            )));
        }
        for (site, count) in per_site.into_iter().flatten() {
            if *count == 0 {
                continue;
            }
            let s = topology.sites.get(site).ok_or_else(|| {
                Error::config(format!(
                    "group {:?}: site {site} is not in the federation",
                    g.role
                ))
            })?;
            if s.level(&g.level).is_none() {
                return Err(Error::config(format!(
                    "group {:?}: site {site} does not offer level {}",
                    g.role, g.level
                ))
                .with_site(site));
            }
            if let Some(allowed) = &g.sites {
                if !allowed.contains(site) {
                    return Err(Error::config(format!(
                        "group {:?}: site {site} is not among the group's allowed sites",
                        g.role
                    ))
                    .with_site(site));
                }
            }
        }
    }
    Ok(())
}

fn build_steps(sites: &[SiteId], links: &[[SiteId; 2]], batches: &[Batch], vpn: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut endpoint_of = BTreeMap::new();
    if vpn {
        for site in sites {
            let id = StepId(steps.len());
            endpoint_of.insert(site.clone(), id);
            steps.push(Step {
                id,
                kind: StepKind::Endpoint { site: site.clone() },
                after: vec![],
            });
        }
    }
    let mut all = Vec::new();
    for l in links {
        let id = StepId(steps.len());
        all.push(id);
        let after = l
            .iter()
            .filter_map(|s| endpoint_of.get(s).copied())
            .collect();
        steps.push(Step {
            id,
            kind: StepKind::Link { between: l.clone() },
            after,
        });
    }
    for (i, b) in batches.iter().enumerate() {
        let id = StepId(steps.len());
        all.push(id);
        steps.push(Step {
            id,
            kind: StepKind::Create { batch: i },
            // Members need every endpoint: their boot configuration names the peers.
            after: endpoint_of.values().copied().collect(),
        });
        let _ = b;
    }
    let id = StepId(steps.len());
    steps.push(Step {
        id,
        kind: StepKind::Bootstrap,
        after: all,
    });
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LevelOffering, Link, Middleware, NodeGroup, Site};

    pub(crate) fn topo() -> Topology {
        let site = |id: &str| Site {
            id: SiteId::new(id),
            middleware: Middleware::CloudStack,
            endpoint: "http://127.0.0.1/".into(),
            zone: None,
            levels: [(
                ServiceLevel::new("S"),
                LevelOffering {
                    offering: "Small".into(),
                    image: None,
                    price_per_hour: 0.1,
                    capacity: 100,
                },
            )]
            .into_iter()
            .collect(),
            rate_limit: None,
            max_concurrency: None,
        };
        Topology::new(
            [site("a"), site("b")],
            vec![Link {
                between: [SiteId::new("a"), SiteId::new("b")],
                rtt_ms: 20.0,
                bandwidth_mbps: 1000.0,
                vpn_overhead: 0.21,
            }],
        )
    }

    fn request() -> ClusterRequest {
        ClusterRequest {
            name: "demo".into(),
            profile: Default::default(),
            groups: vec![NodeGroup {
                role: "worker".into(),
                count: 5,
                level: ServiceLevel::new("S"),
                colocate: false,
                traffic: None,
                sites: None,
                max_rtt_ms: None,
            }],
            spread: Default::default(),
            vpn: Default::default(),
        }
    }

    fn placement(a: u32, b: u32) -> PlacementCounts {
        [(
            "worker".to_string(),
            [(SiteId::new("a"), a), (SiteId::new("b"), b)]
                .into_iter()
                .collect(),
        )]
        .into_iter()
        .collect()
    }

    #[test]
    fn batches_follow_capabilities_and_keys_are_deterministic() {
        let mut caps = BTreeMap::new();
        caps.insert(
            SiteId::new("a"),
            Capabilities {
                batch_create: true,
                max_batch: 2,
                ..Capabilities::default()
            },
        );
        let opts = || PlanOptions {
            deployment_id: Some("dep1".into()),
            vpn: true,
            overlay: None,
            pinned_sites: BTreeSet::new(),
        };
        let p = Plan::build(&request(), &topo(), &placement(3, 2), &caps, opts()).unwrap();
        // a: 3 nodes in batches of 2 -> 2 calls; b: no caps -> 1 per call.
        let per_site: Vec<(String, u32)> = p
            .batches
            .iter()
            .map(|b| (b.site.to_string(), b.count()))
            .collect();
        assert_eq!(
            per_site,
            vec![
                ("a".into(), 2),
                ("a".into(), 1),
                ("b".into(), 1),
                ("b".into(), 1)
            ]
        );
        let again = Plan::build(&request(), &topo(), &placement(3, 2), &caps, opts()).unwrap();
        assert_eq!(p.batches, again.batches);
        let keys: BTreeSet<_> = p.batches.iter().map(|b| b.key.clone()).collect();
        assert_eq!(keys.len(), 4, "keys are distinct");
        assert_eq!(p.nodes[0].name, "worker-1");
        assert_eq!(p.nodes[0].overlay_ip, "10.77.0.11");
        let text = p.explain();
        assert!(text.contains("endpoint  a"), "{text}");
        assert!(text.contains("link      a <-> b"), "{text}");
        assert!(text.contains("Plan: 5 VMs in 4 create call(s)"), "{text}");
    }

    #[test]
    fn wrong_placements_are_refused_with_the_reason() {
        let caps = BTreeMap::new();
        let e = Plan::build(
            &request(),
            &topo(),
            &placement(1, 1),
            &caps,
            PlanOptions::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("asks for 5"), "{e}");
        let mut pl = placement(5, 0);
        pl.get_mut("worker").unwrap().insert(SiteId::new("zz"), 0);
        assert!(Plan::build(&request(), &topo(), &pl, &caps, PlanOptions::default()).is_ok());
        let mut pl = placement(4, 0);
        pl.get_mut("worker").unwrap().insert(SiteId::new("zz"), 1);
        let e = Plan::build(&request(), &topo(), &pl, &caps, PlanOptions::default()).unwrap_err();
        assert!(e.to_string().contains("not in the federation"), "{e}");
    }

    #[test]
    fn dag_orders_endpoints_before_links_and_members() {
        let p = Plan::build(
            &request(),
            &topo(),
            &placement(3, 2),
            &BTreeMap::new(),
            PlanOptions {
                vpn: true,
                ..PlanOptions::default()
            },
        )
        .unwrap();
        for s in &p.steps {
            for a in &s.after {
                assert!(a.0 < s.id.0, "step {:?} waits for a later step", s.kind);
            }
        }
        assert!(matches!(p.steps.last().unwrap().kind, StepKind::Bootstrap));
    }
}
