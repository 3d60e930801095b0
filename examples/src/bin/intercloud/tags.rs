//! `status --from-clouds` and `down --from-clouds`: a cluster's VMs found by the
//! clouds' tags alone, for a state folder that was lost or whose journal is damaged.

use std::fmt::Write as _;
use std::io::{BufRead as _, IsTerminal as _};
use std::time::Duration;

use intercloud_core::deploy::{Census, Deployer};
use intercloud_core::{Error, Result};

use crate::federation;
use crate::output;
use crate::state::target_name;
use crate::{Global, Target, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK};

/// How long one site's listing may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(60);

async fn census(g: &Global, name: &str) -> Result<(Deployer, Census)> {
    let fed = federation::open(g.federation.as_deref(), None, &g.user, g.vault.as_deref()).await?;
    let d = Deployer::new(fed.providers.iter().cloned());
    let census = d.census(name, LIST_TIMEOUT).await;
    Ok((d, census))
}

/// `status --from-clouds`: every VM tagged with the cluster's name, by deployment.
pub(crate) async fn status(g: &Global, target: &Target) -> Result<u8> {
    let name = target_name(target)?;
    let (_, census) = census(g, &name).await?;
    if g.json {
        output::json(&census_doc(&census))?;
    } else {
        output::stdout(&census_text(&census))?;
    }
    Ok(if census.unverified().is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// `down --from-clouds [--deployment ID]`: lists what it will delete, asks (or takes
/// `--yes`), deletes and verifies.
pub(crate) async fn down(
    g: &Global,
    target: &Target,
    deployment: Option<&str>,
    yes: bool,
) -> Result<u8> {
    let name = target_name(target)?;
    let (d, census) = census(g, &name).await?;
    let doomed: usize = census
        .sites
        .values()
        .flat_map(|s| &s.vms)
        .filter(|v| deployment.is_none_or(|id| v.deployment() == Some(id)))
        .count();
    let what = match deployment {
        Some(id) => format!("{doomed} VMs of cluster {name:?}, deployment {id}"),
        None => format!("{doomed} VMs tagged with cluster {name:?} (every deployment)"),
    };
    if !g.json {
        output::stdout(&census_text(&census))?;
    }
    if !yes {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Err(Error::config(format!(
                "this would delete {what}; add --yes to confirm"
            )));
        }
        eprint!("delete {what}? [y/N] ");
        let mut answer = String::new();
        stdin
            .lock()
            .read_line(&mut answer)
            .map_err(|e| Error::config(format!("cannot read the answer: {e}")))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("nothing deleted");
            return Ok(EXIT_BAD_INPUT);
        }
    }
    let r = d.destroy_tagged(&name, deployment).await?;
    output::destroy_report(g.json, &r)?;
    Ok(if r.is_clean() { EXIT_OK } else { EXIT_FAILED })
}

fn census_doc(c: &Census) -> serde_json::Value {
    serde_json::json!({
        "cluster": c.cluster,
        "deployments": c.by_deployment(),
        "vms": c.sites.values().flat_map(|s| &s.vms).map(|v| serde_json::json!({
            "site": v.site,
            "vm_id": v.id,
            "name": v.name,
            "role": v.role(),
            "deployment": v.deployment(),
            "state": v.state.as_str(),
            "private_ip": v.private_ip,
        })).collect::<Vec<_>>(),
        "unverified": c.unverified(),
    })
}

fn census_text(c: &Census) -> String {
    let mut out = format!(
        "cluster {}: {} VMs listed by their tags\n",
        c.cluster,
        c.len()
    );
    for (id, n) in c.by_deployment() {
        let _ = writeln!(out, "  deployment {id}: {n} VMs");
    }
    for (site, s) in &c.sites {
        let _ = match &s.error {
            Some(e) => writeln!(out, "  {site}: could not be listed ({e})"),
            None => writeln!(out, "  {site}: {} VMs", s.vms.len()),
        };
    }
    out
}
