//! The subcommands: each loads what it needs, calls the library, prints a report and
//! returns the exit code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use intercloud_core::config::load_cluster;
use intercloud_core::deploy::{
    Deployer, FailurePolicy, FileJournal, Journal, NodeConfigurer, Plan, PlanOptions, Record,
    ResumeMode,
};
use intercloud_core::planner::{self, Objective, Placement, Planner};
use intercloud_core::{
    ClusterRequest, Error, FabricChoice, LinkId, LinkSpec, PlacementCounts, Result, SiteEndpoint,
    SiteId, Topology, Vault, VpnFabric,
};
use intercloud_vpn::{
    deployed_composite, plan_cluster, plan_overlay, ClusterConfigurer, Mesh, OverlayBoot,
    PairFabric, RenderedOverlay, WireGuardFabric,
};

use crate::federation::{self, Federation, Origin};
use crate::output;
use crate::progress;
use crate::state::{save_secret_json, ClusterState, SavingConfigurer};
use crate::{creds, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK};
use crate::{Cli, Command, CredsAction, Global, ObjectiveArg, PlanArgs, Target};

/// Runs the parsed command line.
pub(crate) async fn run(cli: Cli) -> Result<u8> {
    let g = cli.global;
    match cli.command {
        Command::Plan { file, plan, fixed } => plan_cmd(&g, &file, &plan, fixed.as_deref()).await,
        Command::Up {
            file,
            plan,
            best_effort,
        } => up(&g, &file, &plan, best_effort).await,
        Command::Status {
            target,
            from_clouds: true,
        } => crate::tags::status(&g, &target).await,
        Command::Status { target, .. } => status(&g, &target).await,
        Command::Resume { target, rollback } => resume(&g, &target, rollback).await,
        Command::Repair { target, watch } => repair(&g, &target, watch).await,
        Command::Down {
            target,
            from_clouds: true,
            deployment,
            yes,
        } => crate::tags::down(&g, &target, deployment.as_deref(), yes).await,
        Command::Down { target, .. } => down(&g, &target).await,
        Command::Inventory { target, format } => inventory(&g, &target, format).await,
        Command::Creds { action } => creds_cmd(&g, action).await,
        Command::Sim {
            write_federation,
            time_scale,
            config,
        } => {
            sim(
                &g,
                write_federation.as_deref(),
                time_scale,
                config.as_deref(),
            )
            .await
        }
    }
}

fn objective(args: &PlanArgs) -> Objective {
    match args.objective {
        ObjectiveArg::Money => Objective::money(),
        ObjectiveArg::Time => Objective::time(),
        ObjectiveArg::Balanced => args
            .lambda
            .map_or_else(Objective::default, Objective::balanced),
    }
}

/// Everything `plan` and `up` compute before touching a cloud.
#[derive(Debug)]
struct Prepared {
    overlay: Option<OverlayBoot>,
    request: ClusterRequest,
    request_text: String,
    fed: Federation,
    placement: Placement,
    plan: Plan,
    deployer: Deployer,
}

/// The deployer over a federation's providers, with the cluster configurer and,
/// when given, the overlay's fabric and boot parts. With `fabric_file`, a composite
/// overlay's gateway configurations are saved there as soon as its links exist
/// (before any VM is created: see [`SavingConfigurer`]).
fn deployer(
    fed: &Federation,
    request: &ClusterRequest,
    overlay: Option<(Arc<dyn VpnFabric>, OverlayBoot)>,
    fabric_file: Option<PathBuf>,
) -> Deployer {
    let d = Deployer::new(fed.providers.iter().cloned()).with_options(
        crate::bounds::deploy_options().unwrap_or_else(|e| {
            eprintln!("warning: {e}; using the default");
            Default::default()
        }),
    );
    let max_user_data = d
        .capabilities()
        .into_iter()
        .map(|(s, c)| (s, c.max_user_data))
        .collect();
    let (fabric, boot) = match overlay {
        Some((f, b)) => (Some(f), Some(b)),
        None => (None, None),
    };
    let composite = match &boot {
        Some(OverlayBoot::Composite(c)) => Some(c.clone()),
        _ => None,
    };
    let mut configurer: Arc<dyn NodeConfigurer> =
        Arc::new(ClusterConfigurer::new(request.profile, max_user_data, None).with_overlay(boot));
    if let (Some(c), Some(path)) = (composite, fabric_file) {
        configurer = Arc::new(SavingConfigurer::new(configurer, c, path));
    }
    let d = d.with_configurer(configurer);
    match fabric {
        Some(f) => d.with_fabric(f),
        None => d,
    }
}

async fn prepare(g: &Global, file: &Path, args: &PlanArgs) -> Result<Prepared> {
    let request_text = std::fs::read_to_string(file)
        .map_err(|e| Error::config(format!("cannot read {}: {e}", file.display())))?;
    let request = load_cluster(file)?;
    let fed = federation::open(g.federation.as_deref(), None, &g.user, g.vault.as_deref()).await?;
    let topology = fed.config.topology();
    let placement = Planner::new().plan(&topology, &request, &objective(args))?;
    let (plan, deployer, overlay) =
        build_plan(&fed, &request, &topology, &placement.placement).await?;
    Ok(Prepared {
        overlay,
        request,
        request_text,
        fed,
        placement,
        plan,
        deployer,
    })
}

/// The deployer's plan for a placement, with the overlay `[vpn] fabric` asks for
/// (WireGuard, or the composite of native gateways, strongSwan gateway VMs and
/// L2TP/IPsec clients) and its addresses from the IPAM.
async fn build_plan(
    fed: &Federation,
    request: &ClusterRequest,
    topology: &Topology,
    counts: &PlacementCounts,
) -> Result<(Plan, Deployer, Option<OverlayBoot>)> {
    let bare = deployer(fed, request, None, None);
    let opts = PlanOptions {
        deployment_id: Some(
            intercloud_core::IdempotencyKey::random("d")
                .as_str()
                .to_owned(),
        ),
        ..PlanOptions::default()
    };
    let placed: Vec<SiteId> = counts
        .values()
        .flat_map(|per_site| per_site.iter().filter(|(_, n)| **n > 0).map(|(s, _)| s))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut sites = fed.site_vpns(request.vpn.fabric, &placed);
    fed.read_networks(&mut sites).await?;
    let gateway = |site: &SiteId| fed.config.site(site).and_then(|c| c.gateway.clone());
    let (plan, overlay) = plan_cluster(
        request,
        topology,
        counts,
        &bare.capabilities(),
        opts,
        &sites,
        gateway,
    )?;
    let Some(overlay) = overlay else {
        return Ok((plan, bare, None));
    };
    let d = deployer(
        fed,
        request,
        Some((overlay.fabric, overlay.boot.clone())),
        None,
    );
    Ok((plan, d, Some(overlay.boot)))
}

async fn plan_cmd(g: &Global, file: &Path, args: &PlanArgs, fixed: Option<&Path>) -> Result<u8> {
    if let Some(fixed) = fixed {
        return plan_fixed(g, file, args, fixed).await;
    }
    let p = prepare(g, file, args).await?;
    if g.json {
        output::json(&output::plan_doc(&p.placement, &p.plan)?)?;
    } else {
        output::line(&p.placement.explain().to_string())?;
        output::line(&p.plan.explain().to_string())?;
    }
    Ok(EXIT_OK)
}

/// `plan --fixed`: scores a given placement, or says which constraint it breaks.
async fn plan_fixed(g: &Global, file: &Path, args: &PlanArgs, fixed: &Path) -> Result<u8> {
    let request = load_cluster(file)?;
    let text = std::fs::read_to_string(fixed)
        .map_err(|e| Error::config(format!("cannot read {}: {e}", fixed.display())))?;
    let counts: PlacementCounts = serde_json::from_str(&text).map_err(|e| {
        Error::config(format!(
            "{}:{}:{}: {e}; expected {{\"GROUP\": {{\"SITE\": count}}}}",
            fixed.display(),
            e.line(),
            e.column()
        ))
    })?;
    let fed = federation::open(g.federation.as_deref(), None, &g.user, g.vault.as_deref()).await?;
    let topology = fed.config.topology();
    let violations = planner::check(&topology, &request, &counts)?;
    if !violations.is_empty() {
        if g.json {
            output::json(&serde_json::json!({
                "cluster": request.name,
                "placement": counts,
                "violations": violations,
            }))?;
        } else {
            for v in &violations {
                eprintln!("breaks {}: {}", v.constraint, v.message);
            }
        }
        return Ok(EXIT_BAD_INPUT);
    }
    let cost = planner::evaluate(&topology, &request, &counts, &objective(args))?;
    if g.json {
        output::json(
            &serde_json::json!({"cluster": request.name, "placement": counts, "cost": cost}),
        )?;
    } else {
        output::line(&output::placement_table(&counts))?;
        output::line(&format!(
            "cost: {} {} ({} money/h, {:.3} s communication per job)",
            cost.total, cost.unit, cost.money_per_hour, cost.communication_s
        ))?;
    }
    Ok(EXIT_OK)
}

async fn up(g: &Global, file: &Path, args: &PlanArgs, best_effort: Option<f64>) -> Result<u8> {
    let policy = match best_effort {
        None => FailurePolicy::AllOrNothing,
        Some(f) if (0.0..=1.0).contains(&f) => FailurePolicy::BestEffort { min_fraction: f },
        Some(f) => {
            return Err(Error::config(format!(
                "--best-effort {f}: takes a fraction in [0, 1], e.g. 0.8"
            )))
        }
    };
    let mut p = prepare(g, file, args).await?;
    let state = ClusterState::open(&g.state_dir, &p.request.name)?;
    let journal_path = state.path("journal.log");
    let stored = std::fs::read_to_string(state.path("federation")).ok();
    if stored.as_deref().map(Origin::from_text) == Some(Origin::Embedded) {
        // A deployment on an earlier embedded simulator vanished with that process.
        std::fs::remove_file(&journal_path).ok();
    }
    let journal = FileJournal::open(&journal_path)?;
    if !journal.records()?.is_empty() {
        return Err(Error::config(format!(
            "cluster {:?} already has a deployment in {}; use `intercloud status`, `repair`, \
             `resume` or `down -c {}`",
            p.request.name,
            journal_path.display(),
            p.request.name
        )));
    }
    write(&state.path("request.toml"), &p.request_text)?;
    write(&state.path("federation"), &p.fed.origin.to_text())?;
    if let Some(OverlayBoot::WireGuard(wg)) = &p.overlay {
        save_secret_json(&state.path("overlay.json"), &wg.mesh())?;
    }
    // Gateway configurations of an earlier deployment under this name are stale.
    remove_if_present(&state.path(FABRIC_FILE))?;
    if let Some(OverlayBoot::Composite(c)) = &p.overlay {
        // The links' secrets (the L2TP client's VPN password) exist only in this
        // process until saved: save them before the first VM is created, so a
        // `resume` after a kill can still boot the gateway VM.
        let boot = OverlayBoot::Composite(c.clone());
        let fabric: Arc<dyn VpnFabric> = c.clone();
        p.deployer = deployer(
            &p.fed,
            &p.request,
            Some((fabric, boot)),
            Some(state.path(FABRIC_FILE)),
        );
    }
    if !g.json {
        eprintln!("{}", p.placement.explain());
        eprintln!("{}", p.plan.explain());
    }
    let wanted = wanted_per_site(&p.plan);
    let rx = p.deployer.subscribe();
    let bars = tokio::spawn(progress::draw(rx, wanted, !g.json));
    let deploy = p.deployer.deploy(p.plan.clone(), policy, &journal);
    let outcome = tokio::select! {
        r = deploy => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    drop(p.deployer);
    let failures = bars.await.unwrap_or_default();
    let Some(report) = outcome else {
        eprintln!(
            "interrupted: everything created so far is in {}.\n  continue:  intercloud resume -c {name}\n  remove:    intercloud down -c {name}",
            journal_path.display(),
            name = p.request.name
        );
        return Ok(EXIT_FAILED);
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            if journal.records().is_ok_and(|r| r.is_empty()) {
                // Refused before anything was created (a site's check, a name in use):
                // no deployment to keep state for.
                drop(journal);
                crate::state::remove_state(state)?;
            }
            return Err(e);
        }
    };
    if let Some(OverlayBoot::Composite(c)) = &p.overlay {
        // What a replacement gateway VM needs (PSKs, the VPN user's password): only
        // this process saw the links made. Nothing to save once rolled back.
        if let Ok(rendered) = RenderedOverlay::of(c) {
            save_secret_json(&state.path(FABRIC_FILE), &rendered)?;
        }
    }
    output::write_inventory(&state, &p.request, &report.nodes)?;
    output::cluster_report(
        g.json,
        &report.cluster,
        &report.nodes,
        &report.links,
        report.result,
        &failures,
    )?;
    if p.fed.origin == Origin::Embedded {
        // The simulated clouds end with this process, and so does the deployment.
        std::fs::remove_file(&journal_path).ok();
        if !g.json {
            eprintln!(
                "note: this ran on the built-in simulated federation, which lives only while \
                 the command runs; `intercloud sim --write-federation fed.toml` keeps one \
                 serving for status, repair and down."
            );
        }
    }
    Ok(output::exit_code(report.result))
}

fn wanted_per_site(plan: &Plan) -> BTreeMap<SiteId, u64> {
    let mut m = BTreeMap::new();
    for n in &plan.nodes {
        *m.entry(n.site.clone()).or_default() += 1;
    }
    m
}

/// The gateway configurations of an `ipsec` / `l2tp` deployment (owner-only).
const FABRIC_FILE: &str = "fabric.json";

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::config(format!(
            "cannot remove {}: {e}",
            path.display()
        ))),
    }
}

/// Before `resume` or `repair` of a composite overlay whose gateway configurations
/// were never saved (an `up` killed between making its links and creating VMs, or
/// an older `intercloud`), so that the deployer makes every L2TP/IPsec link again in
/// this process, with a VPN password this process knows and saves:
/// - a link journaled as made is disconnected (its VPN user removed) and journaled
///   as removed;
/// - a link whose call was cut short (intent journaled, outcome not) is connected
///   once ahead of the deployer: either this makes the VPN user (its password now
///   known here, so the deployer's idempotent call finds it), or a user left by the
///   killed run (password unknown) makes the call fail, and the composite's undo of
///   the half-made link removes that user.
///
/// No VM uses an old password: VMs are created only after it is saved.
async fn remake_unsaved_l2tp_links(d: &Deployed) -> Result<()> {
    let Some((fabric, OverlayBoot::Composite(c))) = &d.overlay else {
        return Ok(());
    };
    let mut endpoints: BTreeMap<SiteId, SiteEndpoint> = BTreeMap::new();
    let mut intents: BTreeSet<[SiteId; 2]> = BTreeSet::new();
    let mut links: BTreeMap<[SiteId; 2], LinkId> = BTreeMap::new();
    for r in d.journal.records()? {
        match r {
            Record::EndpointPrepared { endpoint } => {
                endpoints.insert(endpoint.site.clone(), endpoint);
            }
            Record::EndpointReleased { site } => {
                endpoints.remove(&site);
            }
            Record::LinkIntent { between } => {
                intents.insert(between);
            }
            Record::LinkConnected { between, link } => {
                intents.remove(&between);
                links.insert(between, link);
            }
            Record::LinkRemoved { link } => links.retain(|_, l| *l != link),
            _ => {}
        }
    }
    let l2tp = |a: &SiteId, b: &SiteId| matches!(c.plan(a, b), Ok(PairFabric::L2tp { .. }));
    for ([a, b], link) in links {
        if !l2tp(&a, &b) {
            continue;
        }
        eprintln!(
            "note: the L2TP/IPsec link {a} <-> {b} is made again: its VPN password was not \
             saved by the interrupted run"
        );
        fabric.disconnect(&link).await?;
        d.journal.append(&Record::LinkRemoved { link })?;
    }
    for [a, b] in intents {
        let (Some(ea), Some(eb)) = (endpoints.get(&a), endpoints.get(&b)) else {
            continue;
        };
        if !l2tp(&a, &b) {
            continue;
        }
        let spec = LinkSpec {
            bandwidth_mbps: d.request.vpn.bandwidth_mbps,
            psk: None,
        };
        if let Err(e) = fabric.connect(ea, eb, &spec).await {
            eprintln!(
                "note: the L2TP/IPsec link {a} <-> {b} was being made when the run was \
                 interrupted; what it left was removed and it is made again ({e})"
            );
        }
    }
    Ok(())
}

/// The saved overlay of a deployment, if it has one.
fn load_mesh(path: &Path) -> Result<Option<Arc<WireGuardFabric>>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mesh: Mesh = serde_json::from_str(&text).map_err(|e| {
                Error::config(format!("{} is not a saved overlay: {e}", path.display()))
            })?;
            Ok(Some(Arc::new(WireGuardFabric::new(mesh))))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::config(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text)
        .map_err(|e| Error::config(format!("cannot write {}: {e}", path.display())))
}

/// The overlay of a deployed cluster: its WireGuard mesh as saved, or for `ipsec` /
/// `l2tp` the composite over the plan's sites (links and endpoints come back from
/// the journal) with the gateway configurations saved by `up`.
async fn deployed_overlay(
    state: &ClusterState,
    request: &ClusterRequest,
    fed: &Federation,
    journal: &FileJournal,
) -> Result<Option<(Arc<dyn VpnFabric>, OverlayBoot)>> {
    if matches!(
        request.vpn.fabric,
        FabricChoice::Auto | FabricChoice::Wireguard
    ) {
        return Ok(load_mesh(&state.path("overlay.json"))?
            .map(|wg| (wg.clone() as Arc<dyn VpnFabric>, OverlayBoot::WireGuard(wg))));
    }
    let Some(plan) = journal.records()?.into_iter().find_map(|r| match r {
        intercloud_core::deploy::Record::Started { plan, .. } => Some(plan),
        _ => None,
    }) else {
        return Ok(None);
    };
    if plan.sites.len() < 2 {
        return Ok(None);
    }
    // The journaled plan gives the same per-site subnets and gateway hints as at `up`
    // (a resumed deployment may still prepare sites); tearing down needs only the
    // sites' fabrics, so a federation that changed since (or a site that cannot say
    // its guest network now) still gets its `down`.
    let mut sites = fed.site_vpns(request.vpn.fabric, &plan.sites);
    if let Err(e) = fed.read_networks(&mut sites).await {
        tracing::warn!(error = %e, "cannot read a site's guest network");
    }
    let gateway = |site: &SiteId| fed.config.site(site).and_then(|c| c.gateway.clone());
    let planned = plan_overlay(request, &plan, &sites, gateway).ok().flatten();
    let path = state.path(FABRIC_FILE);
    let saved = match std::fs::read_to_string(&path) {
        Ok(text) => Some(serde_json::from_str::<RenderedOverlay>(&text).map_err(|e| {
            Error::config(format!("{} is not a saved overlay: {e}", path.display()))
        })?),
        // Not saved (interrupted `up`): gateway VMs are rendered from the links this
        // process makes, or refused with the reason.
        Err(_) => None,
    };
    Ok(Some(match (planned, saved) {
        (Some(o), Some(map)) => (o.fabric, OverlayBoot::Rendered(map)),
        (Some(o), None) => (o.fabric, o.boot),
        (None, saved) => {
            let c = deployed_composite(request, &sites)?;
            let boot =
                saved.map_or_else(|| OverlayBoot::Composite(c.clone()), OverlayBoot::Rendered);
            (c as Arc<dyn VpnFabric>, boot)
        }
    }))
}

/// A deployed cluster's state folder, request, federation and journal.
struct Deployed {
    overlay: Option<(Arc<dyn VpnFabric>, OverlayBoot)>,
    state: ClusterState,
    request: ClusterRequest,
    fed: Federation,
    journal: FileJournal,
}

impl std::fmt::Debug for Deployed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployed")
            .field("cluster", &self.request.name)
            .finish()
    }
}

async fn open_deployed(g: &Global, target: &Target) -> Result<Deployed> {
    let name = crate::state::target_name(target)?;
    if !ClusterState::exists(&g.state_dir, &name) {
        return Err(Error::config(format!(
            "no deployment of cluster {name:?} in {}; run `intercloud up -f FILE` first (or \
             pass --state-dir); VMs of a lost state folder are found by their tags: \
             `intercloud status -c {name} --from-clouds`",
            g.state_dir.display()
        )));
    }
    let state = ClusterState::open(&g.state_dir, &name)?;
    let request = load_cluster(&state.path("request.toml"))?;
    let origin = std::fs::read_to_string(state.path("federation"))
        .ok()
        .map(|s| Origin::from_text(&s));
    if origin == Some(Origin::Embedded) && crate::state::journal_is_empty(&state) {
        return Err(crate::state::ended_with_embedded(&name));
    }
    let fed =
        federation::open(g.federation.as_deref(), origin, &g.user, g.vault.as_deref()).await?;
    let (journal, tail) = FileJournal::open_checked(state.path("journal.log")).map_err(|e| {
        Error::new(
            e.kind(),
            format!(
                "{}; the cluster's VMs can still be listed and removed by their tags: \
                 `intercloud status -c {name} --from-clouds`, then \
                 `intercloud down -c {name} --from-clouds --deployment ID --yes`",
                e.message()
            ),
        )
    })?;
    if let intercloud_core::deploy::Tail::Discarded { bytes } = tail {
        eprintln!(
            "warning: {}: a torn last record of {bytes} bytes was ignored (a write cut short)",
            state.path("journal.log").display()
        );
    }
    let overlay = deployed_overlay(&state, &request, &fed, &journal).await?;
    Ok(Deployed {
        overlay,
        state,
        request,
        fed,
        journal,
    })
}

async fn status(g: &Global, target: &Target) -> Result<u8> {
    let d = open_deployed(g, target).await?;
    let s = deployer(&d.fed, &d.request, d.overlay.clone(), None)
        .status(&d.journal)
        .await?;
    if g.json {
        let mut doc = output::cluster_doc(&s.cluster, &s.nodes, &s.links, s.result);
        doc["sites"] = serde_json::json!(s.sites);
        output::json(&doc)?;
    } else {
        output::cluster_report(false, &s.cluster, &s.nodes, &s.links, s.result, &[])?;
        output::line(&output::site_table(&s.sites))?;
    }
    if output::interrupted(&d.journal.records()?) {
        output::interrupted_hint(&s.cluster);
    }
    Ok(output::exit_code(s.result))
}

async fn resume(g: &Global, target: &Target, rollback: bool) -> Result<u8> {
    let d = open_deployed(g, target).await?;
    if let Some(file) = &target.file {
        d.state.check_unchanged(file, &d.request)?;
    }
    let mode = if rollback {
        ResumeMode::RollBack
    } else {
        ResumeMode::Continue
    };
    if !rollback {
        remake_unsaved_l2tp_links(&d).await?;
    }
    let r = deployer(
        &d.fed,
        &d.request,
        d.overlay.clone(),
        Some(d.state.path(FABRIC_FILE)),
    )
    .resume(&d.journal, mode)
    .await?;
    if let Some((_, OverlayBoot::Composite(c))) = &d.overlay {
        // The links this resume made are now known (also when it created no VM).
        if let Ok(rendered) = RenderedOverlay::of(c) {
            save_secret_json(&d.state.path(FABRIC_FILE), &rendered)?;
        }
    }
    output::write_inventory(&d.state, &d.request, &r.nodes)?;
    output::cluster_report(g.json, &r.cluster, &r.nodes, &r.links, r.result, &[])?;
    Ok(output::exit_code(r.result))
}

async fn repair(g: &Global, target: &Target, watch: Option<u64>) -> Result<u8> {
    let d = open_deployed(g, target).await?;
    if let Some(file) = &target.file {
        d.state.check_unchanged(file, &d.request)?;
    }
    remake_unsaved_l2tp_links(&d).await?;
    let dep = deployer(
        &d.fed,
        &d.request,
        d.overlay.clone(),
        Some(d.state.path(FABRIC_FILE)),
    );
    if let Some(secs) = watch {
        let interval = std::time::Duration::from_secs(secs.max(1));
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let reports = dep.watch(&d.journal, interval, shutdown).await?;
        for r in &reports {
            output::repair_summary(r);
        }
        return Ok(EXIT_OK);
    }
    let r = dep.repair(&d.journal).await?;
    output::write_inventory(&d.state, &d.request, &r.nodes)?;
    if g.json {
        let mut doc = output::cluster_doc(&r.cluster, &r.nodes, &r.links, r.result);
        doc["recreated"] = serde_json::json!(r.recreated);
        doc["started"] = serde_json::json!(r.started);
        doc["deleted"] = serde_json::json!(r.deleted);
        doc["moved"] = serde_json::json!(r.moved);
        output::json(&doc)?;
    } else {
        output::repair_summary(&r);
        output::cluster_report(false, &r.cluster, &r.nodes, &r.links, r.result, &[])?;
    }
    Ok(output::exit_code(r.result))
}

async fn down(g: &Global, target: &Target) -> Result<u8> {
    if let Some(code) = crate::state::down_if_gone(g, target)? {
        return Ok(code);
    }
    let d = open_deployed(g, target).await?;
    let r = deployer(&d.fed, &d.request, d.overlay.clone(), None)
        .destroy(&d.request.name, Some(&d.journal))
        .await?;
    output::destroy_report(g.json, &r)?;
    if r.is_clean() {
        // Nothing is left anywhere: the deployment's state goes too.
        crate::state::remove_state(d.state)?;
        Ok(EXIT_OK)
    } else {
        Ok(EXIT_FAILED)
    }
}

async fn inventory(g: &Global, target: &Target, format: crate::InventoryFormat) -> Result<u8> {
    let d = open_deployed(g, target).await?;
    let s = deployer(&d.fed, &d.request, d.overlay.clone(), None)
        .status(&d.journal)
        .await?;
    let layout = output::layout(&d.request, &s.nodes);
    if g.json {
        output::json(&output::inventory_doc(&layout, &s.nodes, format))?;
        return Ok(EXIT_OK);
    }
    let text = match format {
        crate::InventoryFormat::Ini => intercloud_core::bootstrap::ansible_ini(&layout),
        crate::InventoryFormat::Yaml => intercloud_core::bootstrap::ansible_yaml(&layout),
        crate::InventoryFormat::Hosts => intercloud_core::bootstrap::hosts_file(&layout),
    };
    output::stdout(&text)?;
    Ok(EXIT_OK)
}

async fn creds_cmd(g: &Global, action: CredsAction) -> Result<u8> {
    let path: PathBuf = g.vault.clone().unwrap_or_else(creds::default_vault_path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::config(format!("cannot create {}: {e}", parent.display())))?;
    }
    match action {
        CredsAction::Add {
            site,
            middleware,
            id,
        } => {
            let vault = creds::open_vault(&path, true).await?;
            creds::add(&vault, &g.user, &SiteId::new(site.clone()), middleware, &id).await?;
            eprintln!(
                "stored credentials {site:?} for user {:?} in {}",
                g.user,
                path.display()
            );
            if g.json {
                output::json(
                    &serde_json::json!({"user": g.user, "site": site, "action": "added"}),
                )?;
            }
        }
        CredsAction::List => {
            let vault = creds::open_vault(&path, false).await?;
            let sites = vault.list(&g.user).await?;
            if g.json {
                output::json(&serde_json::json!({"user": g.user, "sites": sites}))?;
            } else {
                for s in sites {
                    output::line(s.as_str())?;
                }
            }
        }
        CredsAction::Remove { site } => {
            let vault = creds::open_vault(&path, false).await?;
            if !vault.remove(&g.user, &SiteId::new(site.clone())).await? {
                return Err(Error::not_found(format!(
                    "no credentials {site:?} for user {:?}",
                    g.user
                )));
            }
            if g.json {
                output::json(
                    &serde_json::json!({"user": g.user, "site": site, "action": "removed"}),
                )?;
            } else {
                eprintln!("removed credentials {site:?} for user {:?}", g.user);
            }
        }
    }
    Ok(EXIT_OK)
}

async fn sim(
    g: &Global,
    write_federation: Option<&Path>,
    time_scale: f64,
    config: Option<&Path>,
) -> Result<u8> {
    if !(time_scale.is_finite() && time_scale > 0.0) {
        return Err(Error::config(
            "--time-scale must be a positive number, e.g. 0.05",
        ));
    }
    let mut cfg = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::config(format!("cannot read {}: {e}", path.display())))?;
            intercloud_sim::FederationConfig::from_toml(&text)
                .map_err(|e| Error::config(format!("{}: {e}", path.display())))?
        }
        None => intercloud_sim::FederationConfig::seed_default(),
    };
    cfg.time_scale = time_scale;
    let sim = intercloud_sim::Federation::start(cfg)
        .await
        .map_err(|e| Error::config(format!("cannot start the simulated federation: {e}")))?;
    let (config, creds) = federation::describe_sim(&sim);
    let text = toml::to_string(&config)
        .map_err(|e| Error::config(format!("cannot render the federation: {e}")))?;
    match write_federation {
        Some(p) => write(p, &text)?,
        None if !g.json => output::stdout(&text)?,
        None => {}
    }
    let mut env = Vec::new();
    for (site, c) in config.sites.iter().zip(&creds) {
        env.extend(federation::sim_env(site, c));
    }
    if g.json {
        output::json(&serde_json::json!({
            "federation": config,
            "env": env.iter().cloned().collect::<BTreeMap<_, _>>(),
        }))?;
    } else {
        eprintln!(
            "simulated federation serving on loopback; set these (simulator-only credentials):"
        );
        for (k, v) in &env {
            eprintln!("export {k}={v}");
        }
        eprintln!("press Ctrl-C to stop");
    }
    let _ = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    Ok(EXIT_OK)
}
