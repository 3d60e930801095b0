//! `intercloud`: plan, deploy, watch, repair and destroy virtual clusters across
//! CloudStack, OpenNebula, EC2 and Eucalyptus clouds.
//!
//! Without `--federation`, every command runs on the built-in simulated federation
//! (hokkaido/CloudStack, nii/OpenNebula, tokyo/EC2), started in-process.
//!
//! Exit codes: 0 done, 1 failed, 2 bad input, 3 partial (best effort).

mod bounds;
mod commands;
mod creds;
mod federation;
mod output;
mod progress;
mod state;
mod tags;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use intercloud_core::{Error, ErrorKind, Middleware, VaultError};

/// Exit code: done.
const EXIT_OK: u8 = 0;
/// Exit code: failed.
const EXIT_FAILED: u8 = 1;
/// Exit code: bad input (files, flags, constraints that cannot be met).
const EXIT_BAD_INPUT: u8 = 2;
/// Exit code: partial (best effort kept what ran).
const EXIT_PARTIAL: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "intercloud",
    version,
    about = "Virtual clusters across CloudStack, OpenNebula and EC2 clouds"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
struct Global {
    /// The federation file; without it, the built-in simulated federation is used.
    #[arg(long, global = true, env = "INTERCLOUD_FEDERATION")]
    federation: Option<PathBuf>,
    /// Where deployment state lives (one folder per cluster).
    #[arg(
        long,
        global = true,
        default_value = ".intercloud",
        env = "INTERCLOUD_STATE_DIR"
    )]
    state_dir: PathBuf,
    /// Print one JSON document on stdout (progress and logs go to stderr).
    #[arg(long, global = true)]
    json: bool,
    /// The vault user whose credentials are used.
    #[arg(
        long,
        global = true,
        env = "INTERCLOUD_USER",
        default_value = "default"
    )]
    user: String,
    /// The credential vault file (default: $INTERCLOUD_VAULT or ~/.config/intercloud/vault).
    #[arg(long, global = true)]
    vault: Option<PathBuf>,
}

/// Which cluster a command acts on.
#[derive(Debug, Clone, Args)]
struct Target {
    /// The cluster file (its `name` selects the cluster).
    #[arg(short = 'f', long = "file", conflicts_with = "cluster")]
    file: Option<PathBuf>,
    /// The cluster's name.
    #[arg(short = 'c', long = "cluster")]
    cluster: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ObjectiveArg {
    Money,
    Time,
    Balanced,
}

/// How the placement is chosen.
#[derive(Debug, Clone, Args)]
struct PlanArgs {
    /// What the planner minimises.
    #[arg(long, value_enum, default_value = "balanced")]
    objective: ObjectiveArg,
    /// Money units one second of communication per job is worth (balanced only; >= 0).
    #[arg(long, allow_negative_numbers = true, value_parser = parse_lambda)]
    lambda: Option<f64>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show where the cluster would go, what it costs, the alternatives and the steps.
    Plan {
        /// The cluster file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        #[command(flatten)]
        plan: PlanArgs,
        /// Score this placement ({GROUP: {SITE: count}} JSON) instead of searching.
        #[arg(long)]
        fixed: Option<PathBuf>,
    },
    /// Plan and deploy the cluster: overlay, links and every VM, with live progress.
    Up {
        /// The cluster file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        #[command(flatten)]
        plan: PlanArgs,
        /// Keep what runs when at least this fraction of nodes runs (default: all or nothing).
        #[arg(long, allow_negative_numbers = true, value_parser = parse_fraction)]
        best_effort: Option<f64>,
    },
    /// Wanted versus observed, per node and per site.
    Status {
        #[command(flatten)]
        target: Target,
        /// List the cluster's VMs from the clouds' tags alone, by deployment (no state
        /// folder or journal needed).
        #[arg(long)]
        from_clouds: bool,
    },
    /// Continue an interrupted deployment from its journal (or roll it back).
    Resume {
        #[command(flatten)]
        target: Target,
        /// Delete everything the deployment created instead of continuing.
        #[arg(long)]
        rollback: bool,
    },
    /// Recreate failed or missing nodes with the same identity, moving them off sites
    /// that are down or full.
    Repair {
        #[command(flatten)]
        target: Target,
        /// Keep repairing every this many seconds until interrupted.
        #[arg(long, value_name = "SECONDS")]
        watch: Option<u64>,
    },
    /// Delete every VM and overlay resource of the cluster on every site, and verify.
    Down {
        #[command(flatten)]
        target: Target,
        /// Find the VMs by the clouds' tags alone (a lost or damaged state folder):
        /// every VM tagged with the cluster's name, or only `--deployment`'s.
        #[arg(long)]
        from_clouds: bool,
        /// With --from-clouds: only this deployment's VMs (see `status --from-clouds`).
        #[arg(long, requires = "from_clouds")]
        deployment: Option<String>,
        /// With --from-clouds: delete without asking (required when stdin is not a
        /// terminal).
        #[arg(long, requires = "from_clouds")]
        yes: bool,
    },
    /// Print the cluster's hosts file or Ansible inventory.
    Inventory {
        #[command(flatten)]
        target: Target,
        /// Output format.
        #[arg(long, value_enum, default_value = "ini")]
        format: InventoryFormat,
    },
    /// Manage credentials in the encrypted vault.
    Creds {
        #[command(subcommand)]
        action: CredsAction,
    },
    /// Serve the simulated federation on loopback until interrupted.
    Sim {
        /// Write a federation file pointing at the simulator here.
        #[arg(long)]
        write_federation: Option<PathBuf>,
        /// Wall-clock seconds per simulated second (0.01 boots a 5 s VM in 50 ms).
        #[arg(long, default_value = "1.0")]
        time_scale: f64,
        /// A simulator configuration (TOML: sites, offerings, latency, boot time, rate
        /// limits, faults) instead of the built-in seed federation.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum InventoryFormat {
    Ini,
    Yaml,
    Hosts,
}

#[derive(Debug, Subcommand)]
enum CredsAction {
    /// Register credentials for a site; secrets are read from a prompt or stdin.
    Add {
        /// The vault entry name (use it as `credentials = "vault:NAME"`).
        #[arg(long)]
        site: String,
        /// The site's middleware.
        #[arg(long, value_parser = parse_middleware)]
        middleware: Middleware,
        /// The non-secret identifier: CloudStack API key, OpenNebula user, EC2 access key id.
        #[arg(long)]
        id: String,
    },
    /// List the sites the user has credentials for (never secrets).
    List,
    /// Remove a site's credentials.
    Remove {
        /// The vault entry name.
        #[arg(long)]
        site: String,
    },
}

/// `--lambda`: a finite number >= 0 (a negative one is read as a value, then refused).
fn parse_lambda(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        Ok(_) => Err(format!(
            "{s} is out of range: --lambda takes a number >= 0 (money units per second of communication), e.g. 0.5"
        )),
        Err(_) => Err(format!("{s:?} is not a number: --lambda takes a number >= 0, e.g. 0.5")),
    }
}

/// `--best-effort`: a fraction in [0, 1].
fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        Ok(_) => Err(format!(
            "{s} is out of range: --best-effort takes a fraction in [0, 1], e.g. 0.8"
        )),
        Err(_) => Err(format!(
            "{s:?} is not a number: --best-effort takes a fraction in [0, 1], e.g. 0.8"
        )),
    }
}

fn parse_middleware(s: &str) -> Result<Middleware, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
        format!("unknown middleware {s:?}: use cloudstack, opennebula, ec2 or eucalyptus")
    })
}

/// The exit code for an error: bad input (2) for what the user can fix in files or
/// flags, failed (1) otherwise.
fn exit_code_of(e: &Error) -> u8 {
    if let Some(VaultError::WrongPassphrase { .. }) = VaultError::of(e) {
        // The passphrase is input the user can fix.
        return EXIT_BAD_INPUT;
    }
    match e.kind() {
        ErrorKind::Config | ErrorKind::InvalidRequest | ErrorKind::QuotaExceeded => EXIT_BAD_INPUT,
        _ => EXIT_FAILED,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("INTERCLOUD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit_code_of(&e))
        }
    }
}
