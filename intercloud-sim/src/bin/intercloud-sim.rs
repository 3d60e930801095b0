//! `intercloud-sim`: serves a simulated federation on loopback until stopped.
//!
//! ```text
//! intercloud-sim [--config sim.toml] [--time-scale 0.1] [--seed 7]
//! ```
//! Without `--config` it serves the default seed federation (hokkaido, nii, tokyo). Once
//! listening it prints one JSON document on stdout with each site's id, middleware,
//! endpoint and zone (never secrets), then serves until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use intercloud_sim::{Federation, FederationConfig};

/// Serve a simulated CloudStack / OpenNebula / EC2 federation on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "intercloud-sim", version)]
struct Args {
    /// Federation description (TOML); default: the built-in seed federation.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Wall-clock seconds per simulated second (overrides the file).
    #[arg(long)]
    time_scale: Option<f64>,
    /// RNG seed (overrides the file).
    #[arg(long)]
    seed: Option<u64>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut cfg = match &args.config {
        None => FederationConfig::seed_default(),
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("intercloud-sim: cannot read {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            };
            match FederationConfig::from_toml(&text) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("intercloud-sim: {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            }
        }
    };
    if let Some(t) = args.time_scale {
        cfg.time_scale = t;
    }
    if let Some(s) = args.seed {
        cfg.seed = s;
    }
    let fed = match Federation::start(cfg).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("intercloud-sim: {e}");
            return ExitCode::from(if matches!(e, intercloud_sim::StartError::Config(_)) {
                2
            } else {
                1
            });
        }
    };
    let sites: Vec<serde_json::Value> = fed
        .sites()
        .iter()
        .map(|s| {
            serde_json::json!({
                "id": s.id().as_str(),
                "middleware": s.middleware().as_str(),
                "endpoint": s.endpoint(),
                "zone": s.zone(),
            })
        })
        .collect();
    println!("{}", serde_json::json!({ "sites": sites }));
    wait_for_signal().await;
    eprintln!("intercloud-sim: stopping");
    fed.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
