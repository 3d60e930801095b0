//! Shared by the CLI's end-to-end tests: a simulator child process, the CLI run
//! against it, and the simulated clouds reached directly through their backends.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::Arc;

use assert_cmd::Command;
use intercloud_core::{CloudProvider, Middleware, Vm, VmFilter};
use serde_json::Value;

/// A running `intercloud sim`, killed on drop (also when a test panics).
pub struct Sim {
    child: Child,
    /// The federation file pointing at the simulator.
    pub federation: PathBuf,
    /// The simulator's credentials, as environment variables.
    pub env: Vec<(String, String)>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sim {
    /// Stops the simulator: every site stops answering.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `intercloud sim` serving on loopback and reads its credentials.
pub fn start_sim(dir: &Path) -> Sim {
    start_sim_with(dir, "0.01", None)
}

/// Starts `intercloud sim` at `time_scale` (wall-clock seconds per simulated second),
/// on the simulator configuration `config` when given (else the seed federation).
pub fn start_sim_with(dir: &Path, time_scale: &str, config: Option<&Path>) -> Sim {
    let federation = dir.join("federation.toml");
    let mut cmd = StdCommand::new(env!("CARGO_BIN_EXE_intercloud"));
    cmd.args(["--json", "sim", "--time-scale", time_scale]);
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    let mut child = cmd
        .arg("--write-federation")
        .arg(&federation)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("intercloud sim starts");
    let stdout = child.stdout.take().expect("piped stdout");
    // From here on the child is killed on drop, even if reading its output fails.
    let mut sim = Sim {
        child,
        federation,
        env: Vec::new(),
    };
    // The JSON document ends with a closing brace alone on a line.
    let mut text = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("sim stdout is readable");
        let end = line == "}";
        text.push_str(&line);
        text.push('\n');
        if end {
            break;
        }
    }
    let doc: Value = serde_json::from_str(&text).expect("sim prints one JSON document");
    sim.env = doc["env"]
        .as_object()
        .expect("env object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_owned()))
        .collect();
    sim
}

/// The CLI with the simulator's federation, credentials and a state folder, `--json`.
pub fn command(sim: &Sim, state: &Path) -> StdCommand {
    let mut c = StdCommand::new(env!("CARGO_BIN_EXE_intercloud"));
    c.envs(sim.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .arg("--federation")
        .arg(&sim.federation)
        .arg("--state-dir")
        .arg(state)
        .arg("--json");
    c
}

/// Runs the CLI to its end: exit code, stdout as JSON (`Null` if it is not), stderr.
pub fn cli(sim: &Sim, state: &Path, args: &[&str]) -> (i32, Value, String) {
    let out = Command::from_std(command(sim, state))
        .args(args)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), doc, stderr)
}

/// The federation's site ids, in file order.
pub fn site_ids(sim: &Sim) -> Vec<String> {
    let fed = intercloud_core::config::FederationConfig::load(&sim.federation).unwrap();
    fed.sites.iter().map(|s| s.id.as_str().to_owned()).collect()
}

/// One site's backend, built from the federation file with the simulator's
/// credentials: the cloud's own API, not intercloud's deployer.
pub fn provider(sim: &Sim, site: &str) -> Arc<dyn CloudProvider> {
    let fed = intercloud_core::config::FederationConfig::load(&sim.federation).unwrap();
    let cfg = fed.site(&site.into()).unwrap().clone();
    let env: std::collections::BTreeMap<_, _> = sim.env.iter().cloned().collect();
    let prefix = cfg.credentials.trim_start_matches("env:").to_owned();
    let creds =
        intercloud_core::Credentials::from_env(cfg.middleware, &prefix, |k| env.get(k).cloned())
            .unwrap();
    match cfg.middleware {
        Middleware::CloudStack => Arc::new(
            intercloud_cloudstack::CloudStackBuilder::new()
                .site(cfg.id.clone())
                .endpoint(cfg.endpoint.clone())
                .zone(cfg.zone.clone().unwrap())
                .credentials(creds)
                .build()
                .unwrap(),
        ),
        Middleware::OpenNebula => Arc::new(
            intercloud_opennebula::OpenNebulaBuilder::new(cfg.id.clone())
                .endpoint(cfg.endpoint.clone())
                .credentials(creds)
                .build()
                .unwrap(),
        ),
        _ => Arc::new(
            intercloud_ec2::Ec2Builder::aws()
                .site(cfg.id.clone())
                .endpoint(cfg.endpoint.clone())
                .region(cfg.zone.clone().unwrap())
                .credentials(creds)
                .build()
                .unwrap(),
        ),
    }
}

/// The cluster's VMs still holding resources, over every site, listed through each
/// cloud's own API: every VM tagged with the cluster, and every VM named after it
/// (`{cluster}-{role}-{hex}-{i}`) whatever its tags — a VM whose tagging was cut short
/// by the kill is still found.
pub fn alive(sim: &Sim, rt: &tokio::runtime::Runtime, cluster: &str) -> Vec<Vm> {
    let filter = VmFilter::default().with_terminated();
    let prefix = format!("{cluster}-");
    let mut out = Vec::new();
    for site in site_ids(sim) {
        let p = provider(sim, &site);
        let vms = rt
            .block_on(p.list_vms(&filter))
            .unwrap_or_else(|e| panic!("listing {site}: {e}"));
        out.extend(vms.into_iter().filter(|v| {
            v.state.is_alive() && (v.cluster() == Some(cluster) || v.name.starts_with(&prefix))
        }));
    }
    out
}

/// A current-thread runtime for calling backends from a synchronous test.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A Hadoop cluster: one master `L`, `workers` workers `S` exchanging all-to-all,
/// on at least 3 sites, over WireGuard.
pub fn hadoop_cluster(name: &str, workers: usize) -> String {
    format!(
        r#"name = "{name}"
profile = "hadoop"

[[group]]
role = "master"
count = 1
level = "L"

[[group]]
role = "worker"
count = {workers}
level = "S"
traffic = {{ pattern = "all-to-all", bytes_per_job = 1e9 }}

[spread]
min_sites = 3

[vpn]
fabric = "wireguard"
"#
    )
}
