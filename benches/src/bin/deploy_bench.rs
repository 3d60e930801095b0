//! End-to-end deploy benchmark on the simulator, with the Libcloud peer comparison.
//!
//! ```text
//! deploy_bench [--sizes 100,500,2000] [--runs 3] [--time-scale 1]
//!              [--peer-sizes 100,500] [--peer-loop-max 100] [--python VENV/bin/python]
//!              [--json OUT.json] [--markdown OUT.md] [--cloudstack-wait]
//! ```
//!
//! CloudStack's provider is built as the CLI and the portal build it
//! (`wait_for_running(false)`: the deployer's per-site listing watches the boot);
//! `--cloudstack-wait` makes each create call wait for its VMs to run instead.
//!
//! For every cluster size and run, a fresh simulated federation (4 sites: CloudStack
//! throttled to 25 calls/s, OpenNebula, EC2, Eucalyptus; 50 ms per call, 5 s boot) is
//! started in this process and a child process (this binary with `--child`) deploys
//! the cluster with the real backends, so the child's peak RSS is the deployer's
//! alone. Calls are counted by the simulator.
//!
//! The peer comparison deploys the same number of VMs on one site (CloudStack, then
//! EC2) with intercloud and with Apache Libcloud (`benches/py/libcloud_deploy.py`:
//! a `create_node` loop, and a 10-thread pool, each followed by `wait_until_running`),
//! each on a fresh simulator, all in this one run.
//!
//! Times are reported in simulated seconds (wall seconds ÷ time scale).

use std::path::PathBuf;
use std::process::Stdio;

use intercloud_benches::runner::{self, Job, Outcome, TargetSite};
use intercloud_benches::scenario::{self, SiteSpec};
use intercloud_core::model::Middleware;
use intercloud_sim::{Federation, SimCredentials};
use serde::Serialize;
use tokio::process::Command;

type AnyResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Clone)]
struct Args {
    sizes: Vec<u32>,
    runs: usize,
    time_scale: f64,
    peer_sizes: Vec<u32>,
    peer_loop_max: u32,
    python: Option<PathBuf>,
    json: Option<PathBuf>,
    markdown: Option<PathBuf>,
    cloudstack_wait: bool,
}

fn list(v: &str) -> AnyResult<Vec<u32>> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    v.split(',')
        .map(|x| {
            x.trim()
                .parse::<u32>()
                .map_err(|e| format!("bad number {x:?}: {e}").into())
        })
        .collect()
}

fn parse_args(mut it: impl Iterator<Item = String>) -> AnyResult<Args> {
    let mut a = Args {
        sizes: vec![100, 500, 2000],
        runs: 3,
        time_scale: 1.0,
        peer_sizes: vec![100, 500],
        peer_loop_max: 100,
        python: std::env::var_os("INTERCLOUD_VENV").map(|v| PathBuf::from(v).join("bin/python")),
        json: None,
        markdown: None,
        cloudstack_wait: false,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--sizes" => a.sizes = list(&value()?)?,
            "--runs" => a.runs = value()?.parse()?,
            "--time-scale" => a.time_scale = value()?.parse()?,
            "--peer-sizes" => a.peer_sizes = list(&value()?)?,
            "--peer-loop-max" => a.peer_loop_max = value()?.parse()?,
            "--python" => a.python = Some(value()?.into()),
            "--json" => a.json = Some(value()?.into()),
            "--markdown" => a.markdown = Some(value()?.into()),
            "--cloudstack-wait" => a.cloudstack_wait = true,
            other => {
                return Err(format!("unknown argument {other:?} (see the source's doc)").into())
            }
        }
    }
    if !(a.time_scale > 0.0 && a.time_scale <= 1.0) || a.runs == 0 {
        return Err("--time-scale must be in (0, 1] and --runs at least 1".into());
    }
    Ok(a)
}

/// One measured deployment (ours or a peer's).
#[derive(Debug, Clone, Serialize)]
struct Measure {
    who: String,
    vms: u32,
    /// Simulated seconds.
    wall_s: f64,
    lower_bound_s: f64,
    calls: u64,
    throttled: u64,
    calls_by_method: Vec<(String, u64)>,
    running: usize,
    peak_rss_mib: Option<f64>,
    note: String,
}

impl Measure {
    fn calls_per_vm(&self) -> f64 {
        self.calls as f64 / f64::from(self.vms.max(1))
    }
    fn ratio(&self) -> f64 {
        self.wall_s / self.lower_bound_s
    }
}

fn sim_calls(fed: &Federation) -> (u64, u64, Vec<(String, u64)>) {
    let mut by: std::collections::BTreeMap<String, u64> = Default::default();
    let mut throttled = 0;
    for s in fed.sites() {
        for (m, n) in s.calls() {
            *by.entry(m).or_default() += n;
        }
        throttled += s.throttled();
    }
    let mut v: Vec<_> = by.into_iter().collect();
    v.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    (v.iter().map(|(_, n)| n).sum(), throttled, v)
}

async fn ours(sites: &[SiteSpec], counts: &[u32], a: &Args, label: &str) -> AnyResult<Measure> {
    let scale = a.time_scale;
    let total: u32 = counts.iter().sum();
    let fed = Federation::start(scenario::federation(sites, total.max(1) * 2, scale)).await?;
    let state_dir = std::env::temp_dir().join(format!("intercloud-bench-{}", std::process::id()));
    std::fs::create_dir_all(&state_dir)?;
    let job = Job {
        cluster: format!("bench-{total}"),
        time_scale: scale,
        sites: sites
            .iter()
            .zip(counts)
            .map(|(s, n)| {
                let endpoint = fed
                    .site(&s.id)
                    .map(|h| h.endpoint())
                    .ok_or_else(|| format!("sim has no site {}", s.id))?;
                Ok(TargetSite {
                    spec: s.clone(),
                    endpoint,
                    count: *n,
                })
            })
            .collect::<AnyResult<_>>()?,
        state_dir: state_dir.to_string_lossy().into_owned(),
        cloudstack_wait_for_running: a.cloudstack_wait,
    };
    let out = Command::new(std::env::current_exe()?)
        .arg("--child")
        .arg(serde_json::to_string(&job)?)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?
        .wait_with_output()
        .await?;
    if !out.status.success() {
        return Err(format!("deploy child failed ({})", out.status).into());
    }
    let o: Outcome = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("deploy child printed no outcome: {e}"))?;
    let (calls, throttled, by) = sim_calls(&fed);
    fed.shutdown().await;
    let _ = std::fs::remove_dir_all(&state_dir);
    Ok(Measure {
        who: label.to_owned(),
        vms: total,
        wall_s: o.wall_s / scale,
        lower_bound_s: scenario::lower_bound(sites, counts),
        calls,
        throttled,
        calls_by_method: by,
        running: o.running,
        peak_rss_mib: Some(o.peak_rss_kib as f64 / 1024.0),
        note: if o.result == "ok" {
            String::new()
        } else {
            format!("result {}", o.result)
        },
    })
}

async fn libcloud(
    python: &PathBuf,
    site: &SiteSpec,
    n: u32,
    mode: &str,
    scale: f64,
) -> AnyResult<Measure> {
    let fed = Federation::start(scenario::federation(
        std::slice::from_ref(site),
        n * 2,
        scale,
    ))
    .await?;
    let h = fed.site(&site.id).ok_or("sim lost its site")?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py/libcloud_deploy.py");
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .args(["--port", &h.addr().port().to_string()])
        .args(["--count", &n.to_string(), "--mode", mode])
        .args(["--time-scale", &scale.to_string()])
        .args(["--offering", &site.offering])
        .args(["--image", site.image.as_deref().unwrap_or("")]);
    match (&site.middleware, &site.credentials) {
        (
            Middleware::CloudStack,
            SimCredentials::Cloudstack {
                api_key,
                secret_key,
            },
        ) => {
            cmd.args([
                "--middleware",
                "cloudstack",
                "--key",
                api_key,
                "--secret",
                secret_key,
            ])
            .args(["--zone", site.zone.as_deref().unwrap_or("")]);
        }
        (
            Middleware::Ec2,
            SimCredentials::Ec2 {
                access_key_id,
                secret_access_key,
            },
        ) => {
            cmd.args(["--middleware", "ec2", "--key", access_key_id])
                .args(["--secret", secret_access_key])
                .args(["--region", site.zone.as_deref().unwrap_or("")]);
        }
        _ => return Err(format!("no Libcloud run for site {}", site.id).into()),
    }
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?
        .wait_with_output()
        .await?;
    if !out.status.success() {
        return Err(format!("libcloud script failed ({})", out.status).into());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("libcloud script printed no JSON: {e}"))?;
    let (calls, throttled, by) = sim_calls(&fed);
    fed.shutdown().await;
    let errors = v["errors"].as_u64().unwrap_or(0);
    Ok(Measure {
        who: format!("libcloud {mode}"),
        vms: n,
        wall_s: v["wall_s"].as_f64().unwrap_or(f64::NAN) / scale,
        lower_bound_s: scenario::lower_bound(std::slice::from_ref(site), &[n]),
        calls,
        throttled,
        calls_by_method: by,
        running: usize::try_from(v["running"].as_u64().unwrap_or(0)).unwrap_or(0),
        peak_rss_mib: None,
        note: if errors > 0 {
            format!(
                "{errors} errors, first: {}",
                v["first_errors"][0].as_str().unwrap_or("")
            )
        } else {
            String::new()
        },
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[derive(Debug, Serialize)]
struct Report {
    time_scale: f64,
    cloudstack_wait_for_running: bool,
    runs: usize,
    deploy: Vec<Measure>,
    peers: Vec<(String, Vec<Measure>)>,
}

fn markdown(r: &Report, sizes: &[u32]) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "### Deploy on 4 simulated sites (medians of {} runs; CloudStack `wait_for_running` {})\n\n\
         | VMs | wall time (s) | lower bound (s) | ratio | API calls / VM | throttled answers | peak RSS (MiB) | VMs running |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|\n",
        r.runs, r.cloudstack_wait_for_running
    ));
    for &n in sizes {
        let ms: Vec<&Measure> = r.deploy.iter().filter(|m| m.vms == n).collect();
        if ms.is_empty() {
            continue;
        }
        let med = |f: &dyn Fn(&Measure) -> f64| median(ms.iter().map(|m| f(m)).collect());
        s.push_str(&format!(
            "| {n} | {:.1} | {:.1} | {:.2} | {:.2} | {:.0} | {:.1} | {:.0} |\n",
            med(&|m| m.wall_s),
            med(&|m| m.lower_bound_s),
            med(&|m| m.ratio()),
            med(&|m| m.calls_per_vm()),
            med(&|m| m.throttled as f64),
            med(&|m| m.peak_rss_mib.unwrap_or(f64::NAN)),
            med(&|m| m.running as f64),
        ));
    }
    s.push_str("\nCalls by method (last run of each size):");
    for &n in sizes {
        if let Some(m) = r.deploy.iter().rev().find(|m| m.vms == n) {
            let top: Vec<String> = m
                .calls_by_method
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            s.push_str(&format!("\n- {n} VMs: {}", top.join(", ")));
        }
    }
    s.push_str(
        "\n\n### Against Apache Libcloud 3.9.1, same simulated site, same run\n\n\
         | site | VMs | client | wall time (s) | × intercloud | API calls / VM | throttled answers | VMs running | note |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---|\n",
    );
    for (site, ms) in &r.peers {
        for m in ms {
            let base = ms.iter().find(|b| b.who == "intercloud" && b.vms == m.vms);
            let times = base.map_or(f64::NAN, |b| m.wall_s / b.wall_s);
            s.push_str(&format!(
                "| {site} | {} | {} | {:.1} | {:.1} | {:.2} | {} | {} | {} |\n",
                m.vms,
                m.who,
                m.wall_s,
                times,
                m.calls_per_vm(),
                m.throttled,
                m.running,
                m.note
            ));
        }
    }
    s.push_str(
        "| opennebula | – | libcloud | – | – | – | – | – | not measured: Libcloud has no working OpenNebula driver (its `opennebula` driver speaks the OCCI interface of OpenNebula API 1.4–3.8, not today's XML-RPC API) |\n",
    );
    s
}

async fn orchestrate(a: Args) -> AnyResult<()> {
    let sites = scenario::four_sites();
    let mut report = Report {
        time_scale: a.time_scale,
        cloudstack_wait_for_running: a.cloudstack_wait,
        runs: a.runs,
        deploy: Vec::new(),
        peers: Vec::new(),
    };
    for &n in &a.sizes {
        for run in 0..a.runs {
            let counts = scenario::even_split(n, sites.len());
            let m = ours(&sites, &counts, &a, "intercloud").await?;
            eprintln!(
                "deploy {n} VMs run {run}: {:.1} s (bound {:.1} s, ratio {:.2}), {:.2} calls/VM, {} throttled, peak RSS {:.1} MiB, {} running {}",
                m.wall_s,
                m.lower_bound_s,
                m.ratio(),
                m.calls_per_vm(),
                m.throttled,
                m.peak_rss_mib.unwrap_or(f64::NAN),
                m.running,
                m.note
            );
            report.deploy.push(m);
        }
    }
    for site in [scenario::cloudstack_site(), scenario::ec2_site()] {
        let mut rows = Vec::new();
        for &n in &a.peer_sizes {
            let m = ours(std::slice::from_ref(&site), &[n], &a, "intercloud").await?;
            eprintln!(
                "peer {} {n}: intercloud {:.1} s, {:.2} calls/VM",
                site.id,
                m.wall_s,
                m.calls_per_vm()
            );
            rows.push(m);
            let Some(py) = &a.python else {
                eprintln!("no Python (set INTERCLOUD_VENV or --python): Libcloud runs skipped");
                continue;
            };
            for mode in ["loop", "pool10"] {
                if mode == "loop" && n > a.peer_loop_max {
                    continue;
                }
                let m = libcloud(py, &site, n, mode, a.time_scale).await?;
                eprintln!(
                    "peer {} {n}: libcloud {mode} {:.1} s, {:.2} calls/VM, {} running {}",
                    site.id,
                    m.wall_s,
                    m.calls_per_vm(),
                    m.running,
                    m.note
                );
                rows.push(m);
            }
        }
        report
            .peers
            .push((site.middleware.as_str().to_owned(), rows));
    }
    let md = markdown(&report, &a.sizes);
    println!("{md}");
    if let Some(p) = &a.markdown {
        std::fs::write(p, &md)?;
    }
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

async fn child(job: &str) -> AnyResult<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let job: Job = serde_json::from_str(job)?;
    let outcome = runner::deploy(&job).await?;
    println!("{}", serde_json::to_string(&outcome)?);
    Ok(())
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("deploy_bench: cannot start tokio: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = if args.peek().map(String::as_str) == Some("--child") {
        let job = args.nth(1).unwrap_or_default();
        rt.block_on(child(&job))
    } else {
        match parse_args(args) {
            Ok(a) => rt.block_on(orchestrate(a)),
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("deploy_bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
