//! Crash test of the deployer's journal through the real CLI: `intercloud up` is a
//! child process SIGKILLed at random points of its run; after each kill `resume`
//! (then `down`) or `down` alone must leave, as the clouds' own APIs see it, exactly
//! the wanted nodes with no duplicate, then zero VMs of the cluster.
//!
//! The kill points are drawn from a seeded generator; set `CRASH_SEED` to replay a
//! run printed by a failure (`cargo test -p intercloud-examples --test crash --
//! --nocapture` shows every round).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{alive, cli, command, hadoop_cluster, start_sim_with, Sim};
use intercloud_core::{Vm, TAG_INDEX, TAG_KEY};

/// Rounds of kill + recovery.
const ROUNDS: usize = 20;
/// Nodes per cluster: one master and the workers.
const WORKERS: usize = 44;
const WANTED: usize = WORKERS + 1;
/// Rounds running at the same time, each on its own cluster.
const PARALLEL: usize = 4;
/// The seed when `CRASH_SEED` is not set.
const DEFAULT_SEED: u64 = 20_261_125;

fn cluster_toml(name: &str) -> String {
    hadoop_cluster(name, WORKERS)
}

/// splitmix64: a tiny seeded generator, enough to spread kill points reproducibly.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Asserts the cluster is whole: exactly `WANTED` VMs, one per (key, index).
fn assert_whole(vms: &[Vm], round: &str) {
    let mut seen: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for v in vms {
        let key = v.tags.get(TAG_KEY).cloned();
        let index = v.tags.get(TAG_INDEX).cloned();
        let (Some(key), Some(index)) = (key, index) else {
            panic!(
                "{round}: VM {} ({}) has no key/index tag: an orphan",
                v.id, v.site
            );
        };
        seen.entry((key, index))
            .or_default()
            .push(format!("{}@{}", v.id, v.site));
    }
    let dups: Vec<_> = seen.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(dups.is_empty(), "{round}: duplicate nodes {dups:?}");
    assert_eq!(vms.len(), WANTED, "{round}: alive VMs after resume");
}

fn spawn_up(sim: &Sim, state: &Path, file: &Path) -> Child {
    command(sim, state)
        .arg("up")
        .arg("-f")
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("intercloud up starts")
}

/// Kills a child when dropped, so a failing assertion leaves no `up` behind.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A command after the SIGKILL must not find the cluster locked: the OS lock died
/// with the process.
fn assert_not_locked(stderr: &str, round: &str) {
    assert!(
        !stderr.contains("being worked on by another"),
        "{round}: the killed process's lock still blocks: {stderr}"
    );
}

fn down(sim: &Sim, state: &Path, rt: &tokio::runtime::Runtime, name: &str, round: &str) {
    let (code, doc, err) = cli(sim, state, &["down", "-c", name]);
    assert_not_locked(&err, round);
    assert_eq!(code, 0, "{round}: down failed: {err}\n{doc}");
    assert_eq!(doc["remaining"], 0, "{round}: {doc}");
    let left = alive(sim, rt, name);
    assert!(
        left.is_empty(),
        "{round}: {} VMs left after down: {:?}",
        left.len(),
        left.iter().map(|v| (&v.id, &v.site)).collect::<Vec<_>>()
    );
    assert!(!state.join(name).exists(), "{round}: state kept after down");
}

/// When a round's `up` is killed.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// After a fixed delay from its start.
    After(Duration),
    /// As soon as the clouds list at least this many of its VMs (a point inside the
    /// create phase, whose timing varies from machine to machine), or after `limit`.
    AtCount(usize, Duration),
}

/// One round: `up` SIGKILLed at `kill`, then recovery and the checks. Returns where
/// the kill landed.
fn run_round(
    sim: &Sim,
    state: &Path,
    dir: &Path,
    rt: &tokio::runtime::Runtime,
    i: usize,
    kill: Kill,
    seed: u64,
) -> &'static str {
    let name = format!("crash-{i}");
    let round = format!("round {i} ({name}, seed {seed})");
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, cluster_toml(&name)).unwrap();
    let round_start = Instant::now();

    let mut up = Reaper(spawn_up(sim, state, &file));
    match kill {
        Kill::After(delay) => std::thread::sleep(delay),
        Kill::AtCount(target, limit) => {
            while round_start.elapsed() < limit && alive(sim, rt, &name).len() < target {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
    let delay = round_start.elapsed();
    let exited = up.0.try_wait().expect("try_wait");
    up.0.kill().ok();
    let status = up.0.wait().expect("wait");
    drop(up);

    let at_kill = alive(sim, rt, &name).len();
    let deployed = state.join(&name).join("request.toml").exists();
    let mut phase = match (exited, at_kill) {
        (Some(_), _) => "finished before the kill",
        (None, 0) if !deployed => "before the state was written",
        (None, 0) => "before any VM",
        (None, n) if n < WANTED => "mid-create",
        (None, _) => "after every create",
    };
    if deployed && exited.is_none() {
        assert!(
            state.join(&name).join("lock").exists(),
            "{round}: the lock file is there after the kill"
        );
    }

    let action;
    if !deployed {
        // Killed before `up` wrote the request: nothing can have been created,
        // and both recovery commands say so clearly.
        assert_eq!(at_kill, 0, "{round}: VMs exist without a deployment");
        let (code, _, err) = cli(sim, state, &["resume", "-c", &name]);
        assert_not_locked(&err, &round);
        assert_eq!(code, 2, "{round}: resume without a deployment: {err}");
        assert!(err.contains("no deployment of cluster"), "{round}: {err}");
        // `down` is idempotent: nothing to delete is done.
        let (code, _, err) = cli(sim, state, &["down", "-c", &name]);
        assert_eq!(code, 0, "{round}: down without a deployment: {err}");
        assert!(err.contains("nothing to delete"), "{round}: {err}");
        assert!(
            alive(sim, rt, &name).is_empty(),
            "{round}: VMs tagged with the cluster after a refused down"
        );
        action = "nothing to recover (resume refuses clearly, down has nothing to do)".to_owned();
    } else if i.is_multiple_of(2) {
        action = 'resume: {
            let t = Instant::now();
            let (code, doc, err) = cli(sim, state, &["resume", "-c", &name]);
            assert_not_locked(&err, &round);
            if code != 0 && err.contains("the journal is empty") {
                // Killed between writing the request and the deployer's first journal
                // record: the journal is written ahead, so no VM may exist yet.
                assert_eq!(at_kill, 0, "{round}: VMs created before any journal record");
                down(sim, state, rt, &name, &round);
                phase = "before the first journal record";
                break 'resume "resume refuses clearly (empty journal), down 0 left".to_owned();
            }
            assert_eq!(code, 0, "{round}: resume failed: {err}\n{doc}");
            assert_eq!(doc["result"], "ok", "{round}: {doc}");
            let nodes = doc["nodes"].as_array().expect("nodes");
            assert_eq!(nodes.len(), WANTED, "{round}: {doc}");
            assert!(
                nodes.iter().all(|n| n["state"] == "running"),
                "{round}: {doc}"
            );
            let vms = alive(sim, rt, &name);
            assert_whole(&vms, &round);
            let mut reported: Vec<&str> =
                nodes.iter().filter_map(|n| n["vm_id"].as_str()).collect();
            let mut listed: Vec<&str> = vms.iter().map(|v| v.id.as_str()).collect();
            reported.sort_unstable();
            listed.sort_unstable();
            assert_eq!(reported, listed, "{round}: reported VMs are the alive ones");
            let resumed = t.elapsed();
            let t = Instant::now();
            down(sim, state, rt, &name, &round);
            format!(
                "resume ok {WANTED} nodes ({:.0} ms), down 0 left ({:.0} ms)",
                resumed.as_secs_f64() * 1e3,
                t.elapsed().as_secs_f64() * 1e3
            )
        };
    } else {
        let t = Instant::now();
        down(sim, state, rt, &name, &round);
        action = format!("down 0 left ({:.0} ms)", t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "round {i:2}: kill at {:5.0} ms ({status}), {at_kill:2} VMs alive [{phase}] -> {action}; \
         round {:.0} ms",
        delay.as_secs_f64() * 1e3,
        round_start.elapsed().as_secs_f64() * 1e3
    );
    phase
}

#[test]
fn sigkilled_up_then_resume_or_down_leaves_no_orphan_and_no_duplicate() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    // The seed federation with slow APIs (400 ms per call, CloudStack at 10 calls/s),
    // so creating the VMs takes a good part of an `up` and kills land inside it.
    let mut slow = intercloud_sim::FederationConfig::seed_default();
    for site in &mut slow.sites {
        site.latency_ms = 400.0;
        if site.rate_limit.is_some() {
            site.rate_limit = Some(10.0);
        }
    }
    let config = dir.path().join("sim.toml");
    std::fs::write(&config, toml::to_string(&slow).expect("sim config renders")).unwrap();
    let sim = start_sim_with(dir.path(), "0.05", Some(&config));
    let state = dir.path().join("state");
    let rt = tokio::runtime::Runtime::new().unwrap();

    // Calibrate: the wall time of an uninterrupted `up` bounds the kill points.
    let calib = dir.path().join("crash-calib.toml");
    std::fs::write(&calib, cluster_toml("crash-calib")).unwrap();
    let t0 = Instant::now();
    let (code, doc, err) = cli(&sim, &state, &["up", "-f", calib.to_str().unwrap()]);
    let full = t0.elapsed();
    assert_eq!(code, 0, "calibration up failed: {err}\n{doc}");
    assert_eq!(doc["nodes"].as_array().map(Vec::len), Some(WANTED));
    assert_whole(&alive(&sim, &rt, "crash-calib"), "calibration");
    down(&sim, &state, &rt, "crash-calib", "calibration");

    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    println!(
        "crash test: {ROUNDS} rounds + 1 killed at once, {WANTED} nodes over 3 sites, uninterrupted up {:.0} ms, \
         seed CRASH_SEED={seed}",
        full.as_secs_f64() * 1e3
    );
    let mut rng = Rng(seed);
    // A quarter of the rounds: a uniform random instant of an uninterrupted `up`; the
    // others (resumed and destroyed ones alike): as soon as a random number of its VMs
    // exist, a point inside the create phase.
    let mut kills: Vec<Kill> = (0..ROUNDS)
        .map(|i| {
            if i % 4 == 0 {
                Kill::After(full.mul_f64(rng.unit()))
            } else {
                // Low targets: the first VMs appear early in the create phase, so the
                // kill lands while the rest are still being created.
                let target = 1 + (rng.unit() * (WANTED / 3) as f64) as usize;
                Kill::AtCount(target.min(WANTED - 1), full * 2)
            }
        })
        .collect();
    // One more round, killed at once, for the path where nothing was written yet.
    kills.push(Kill::After(Duration::ZERO));
    // The rounds run PARALLEL at a time, each on its own cluster: the deployer mostly
    // waits on its poll interval, so this keeps the test short.
    let phases: Vec<&str> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..PARALLEL)
            .map(|w| {
                let (sim, state, rt, kills) = (&sim, &state, &rt, &kills);
                let dir = dir.path();
                s.spawn(move || {
                    (w..kills.len())
                        .step_by(PARALLEL)
                        .map(|i| run_round(sim, state, dir, rt, i, kills[i], seed))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let phases = phases.into_iter().fold(BTreeMap::new(), |mut m, p| {
        *m.entry(p).or_insert(0usize) += 1;
        m
    });
    println!(
        "crash test: {phases:?}; total {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        phases.get("mid-create").copied().unwrap_or(0) > 0,
        "no kill landed while VMs were being created: {phases:?}"
    );
}
