//! One measured deployment, as the deploying process runs it: the real backends
//! against the simulator's endpoints, each wrapped by core's [`stack`] from its site's
//! rate limit, driven by the [`Deployer`] with a file journal.
//!
//! The benchmark runs this in a child process so that its peak memory is the
//! deployer's alone (the simulator lives in the parent).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use intercloud_cloudstack::CloudStackBuilder;
use intercloud_core::deploy::{DeployOptions, Deployer, FailurePolicy, FileJournal};
use intercloud_core::model::{ImageRef, LevelOffering, Middleware, Profile};
use intercloud_core::wrap::{stack, SitePolicy};
use intercloud_core::{
    CloudProvider, ClusterRequest, Credentials, Error, NodeGroup, PlacementCounts, Result,
    ServiceLevel, Site, SiteId, Topology,
};
use intercloud_ec2::Ec2Builder;
use intercloud_opennebula::OpenNebulaBuilder;
use intercloud_sim::SimCredentials;
use serde::{Deserialize, Serialize};

use crate::scenario::SiteSpec;

/// A site as the deploying process sees it: the scenario's site, where it listens,
/// and how many VMs go there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetSite {
    /// The site.
    pub spec: SiteSpec,
    /// The simulator's endpoint URL for it.
    pub endpoint: String,
    /// VMs placed there.
    pub count: u32,
}

/// What the child process is asked to deploy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// Cluster name (tags every VM).
    pub cluster: String,
    /// The simulator's wall seconds per simulated second; client timers scale with it.
    pub time_scale: f64,
    /// The sites and their shares.
    pub sites: Vec<TargetSite>,
    /// Folder for the journal file.
    pub state_dir: String,
    /// CloudStack's `wait_for_running` (the builder's default is true: every
    /// `create_vms` also polls its own VMs until they leave `Starting`).
    pub cloudstack_wait_for_running: bool,
}

/// What the child process measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    /// `ok`, `partial` or `failed`.
    pub result: String,
    /// Nodes reported running.
    pub running: usize,
    /// Wall seconds from planning to the deployer's report.
    pub wall_s: f64,
    /// Peak resident memory of the process (`VmHWM`), in KiB; 0 where unreadable.
    pub peak_rss_kib: u64,
}

/// The process's peak resident set size (`VmHWM` of `/proc/self/status`), in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn scaled(secs: f64, scale: f64) -> Duration {
    Duration::from_secs_f64(secs * scale)
}

fn wrong_credentials(s: &SiteSpec) -> Error {
    Error::config(format!(
        "bench site {}: credentials do not match middleware {}",
        s.id,
        s.middleware.as_str()
    ))
}

/// The real backend for `t`, as a user would build it (default timers, scaled).
///
/// # Errors
/// `Config` from the backend's builder.
pub fn backend(t: &TargetSite, scale: f64, cs_wait: bool) -> Result<Arc<dyn CloudProvider>> {
    let s = &t.spec;
    let zone = s.zone.clone().unwrap_or_default();
    let p: Arc<dyn CloudProvider> = match (s.middleware, &s.credentials) {
        (
            Middleware::CloudStack,
            SimCredentials::Cloudstack {
                api_key,
                secret_key,
            },
        ) => {
            let mut b = CloudStackBuilder::new()
                .site(s.id.as_str())
                .endpoint(&t.endpoint)
                .credentials(Credentials::cloudstack(api_key, secret_key.as_str()))
                .zone(zone)
                .poll_interval(scaled(2.0, scale))
                .wait_for_running(cs_wait);
            if let Some(rate) = s.rate {
                // The CLI's wire limit for the site's rate, in wall-clock calls per
                // second (the simulator's rate is per simulated second).
                b = b.rate_limit(Arc::new(intercloud_core::wrap::TokenBucket::new(
                    intercloud_core::wrap::SitePolicy::wire_rate(rate) / scale,
                    1,
                )));
            }
            Arc::new(b.build()?)
        }
        (Middleware::OpenNebula, SimCredentials::Opennebula { user, password }) => Arc::new(
            OpenNebulaBuilder::new(s.id.as_str())
                .endpoint(&t.endpoint)
                .auth(user, password.as_str())
                .poll_interval(scaled(2.0, scale))
                .build()?,
        ),
        (
            m @ (Middleware::Ec2 | Middleware::Eucalyptus),
            SimCredentials::Ec2 {
                access_key_id,
                secret_access_key,
            },
        ) => {
            let b = if m == Middleware::Ec2 {
                Ec2Builder::aws()
            } else {
                Ec2Builder::eucalyptus()
            };
            Arc::new(
                b.site(s.id.as_str())
                    .region(zone)
                    .endpoint(&t.endpoint)
                    .access_key(access_key_id, secret_access_key.as_str())
                    .build()?,
            )
        }
        _ => return Err(wrong_credentials(s)),
    };
    Ok(p)
}

fn burst(rate: f64) -> u32 {
    if rate.is_finite() && rate >= 1.0 {
        // Saturating float-to-int conversion; rates are small.
        rate.ceil() as u32
    } else {
        1
    }
}

fn site_of(t: &TargetSite, scale: f64) -> Site {
    let s = &t.spec;
    Site {
        id: SiteId::new(s.id.as_str()),
        middleware: s.middleware,
        endpoint: t.endpoint.clone(),
        zone: s.zone.clone(),
        levels: [(
            ServiceLevel::new("S"),
            LevelOffering {
                offering: s.offering.clone(),
                image: s.image.clone().map(ImageRef),
                price_per_hour: 0.1,
                capacity: 100_000,
            },
        )]
        .into_iter()
        .collect(),
        // The simulator's rate is per simulated second.
        rate_limit: s.rate.map(|r| r / scale),
        max_concurrency: None,
    }
}

/// Deploys `job`'s cluster and measures it.
///
/// # Errors
/// A backend or the deployer refusing the setup (bad config, journal).
pub async fn deploy(job: &Job) -> Result<Outcome> {
    let scale = job.time_scale;
    let mut providers = Vec::new();
    let mut sites = Vec::new();
    let mut placement: PlacementCounts = BTreeMap::new();
    for t in &job.sites {
        let site = site_of(t, scale);
        let mut policy = SitePolicy::for_site(&site);
        if let Some(rate) = t.spec.rate {
            // The simulator's bucket holds one simulated second of calls; with a
            // time scale below 1 `for_site` would allow a larger burst than that.
            policy.rate_limit.burst = burst(rate);
        }
        let backend = backend(t, scale, job.cloudstack_wait_for_running)?;
        let wrapped = stack(backend, &policy)?;
        providers.push(Arc::new(wrapped) as Arc<dyn CloudProvider>);
        placement
            .entry("worker".to_owned())
            .or_default()
            .insert(site.id.clone(), t.count);
        sites.push(site);
    }
    let total: u32 = job.sites.iter().map(|t| t.count).sum();
    let request = ClusterRequest {
        name: job.cluster.clone(),
        profile: Profile::None,
        groups: vec![NodeGroup {
            role: "worker".into(),
            count: total,
            level: ServiceLevel::new("S"),
            colocate: false,
            traffic: None,
            sites: None,
            max_rtt_ms: None,
        }],
        spread: Default::default(),
        vpn: Default::default(),
    };
    let topology = Topology::new(sites, Vec::new());
    let defaults = DeployOptions::default();
    let mut deployer = Deployer::new(providers).with_options(DeployOptions {
        poll_min: defaults.poll_min.mul_f64(scale),
        poll_max: defaults.poll_max.mul_f64(scale),
        ..defaults
    });
    if std::env::var_os("BENCH_EVENTS").is_some() {
        let mut events = deployer.subscribe();
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                eprintln!("event: {e:?}");
            }
        });
    }
    let journal_path =
        std::path::Path::new(&job.state_dir).join(format!("{}.journal", job.cluster));
    let _ = std::fs::remove_file(&journal_path);
    let journal = FileJournal::open(&journal_path)?;
    let start = Instant::now();
    let plan = deployer.plan(&request, &topology, &placement)?;
    let report = deployer
        .deploy(plan, FailurePolicy::AllOrNothing, &journal)
        .await?;
    let wall_s = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&journal_path);
    Ok(Outcome {
        result: report.result.as_cli_str().to_owned(),
        running: report.nodes.iter().filter(|n| n.state == "running").count(),
        wall_s,
        peak_rss_kib: peak_rss_kib().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_is_read_from_proc_and_grows_with_allocation() {
        let before = peak_rss_kib().expect("VmHWM on Linux");
        let block = vec![1u8; 64 << 20];
        let after = peak_rss_kib().expect("VmHWM on Linux");
        assert!(before > 0);
        assert!(after >= before + 32 * 1024, "{before} -> {after}");
        drop(block);
    }

    #[test]
    fn burst_is_one_second_of_calls() {
        assert_eq!(burst(25.0), 25);
        assert_eq!(burst(2.5), 3);
        assert_eq!(burst(0.2), 1);
        assert_eq!(burst(f64::NAN), 1);
    }
}
