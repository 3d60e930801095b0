//! End-to-end checks of what an independent user trial of the `intercloud` binary
//! found (issue #25): each test reproduces a finding through the real binary and the
//! simulator, and asserts the fixed behaviour.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command as StdCommand, Stdio};

use common::{cli, start_sim, start_sim_with};
use serde_json::Value;

/// A one-site cluster of eleven workers: node names `worker-1` … `worker-11`.
fn cluster(name: &str, workers: u32) -> String {
    format!(
        r#"name = "{name}"
profile = "hosts"

[[group]]
role = "worker"
count = {workers}
level = "S"
sites = ["hokkaido"]
"#
    )
}

/// The binary with no federation (the built-in one) and no inherited settings.
fn bare() -> StdCommand {
    let mut c = StdCommand::new(env!("CARGO_BIN_EXE_intercloud"));
    for var in [
        "INTERCLOUD_FEDERATION",
        "INTERCLOUD_STATE_DIR",
        "INTERCLOUD_VAULT",
        "INTERCLOUD_VAULT_PASSPHRASE",
        "INTERCLOUD_USER",
    ] {
        c.env_remove(var);
    }
    c
}

fn names(doc: &Value) -> Vec<String> {
    doc["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_owned())
        .collect()
}

fn natural_workers(n: u32) -> Vec<String> {
    (1..=n).map(|i| format!("worker-{i}")).collect()
}

#[test]
fn down_c_takes_a_name_not_a_path_and_leaves_files_it_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path());
    let state = dir.path().join("state");
    let file = dir.path().join("keep.toml");
    std::fs::write(&file, cluster("keep", 11)).unwrap();
    let file = file.to_str().unwrap();

    let (code, up, err) = cli(&sim, &state, &["up", "-f", file]);
    assert_eq!(code, 0, "up: {err}\n{up}");
    // Natural order: worker-2 before worker-10, in the report and the hosts file.
    assert_eq!(names(&up), natural_workers(11), "{up}");
    let hosts = std::fs::read_to_string(state.join("keep").join("hosts")).unwrap();
    let order: Vec<&str> = hosts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|n| n.starts_with("worker-"))
        .collect();
    assert_eq!(order, natural_workers(11), "{hosts}");

    // inventory --json is a JSON document, not INI.
    let (code, inv, err) = cli(&sim, &state, &["inventory", "-c", "keep"]);
    assert_eq!(code, 0, "inventory: {err}");
    assert_eq!(inv["cluster"], "keep", "{inv}");
    assert_eq!(inv["format"], "ini", "{inv}");
    let hosts: Vec<&str> = inv["hosts"]
        .as_array()
        .expect("hosts array")
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, natural_workers(11), "{inv}");
    assert!(inv["hosts"][0]["overlay_ip"].is_string(), "{inv}");

    // A path after -c is refused before anything is touched.
    let folder = state.join("keep");
    std::fs::write(folder.join("notes.txt"), "mine").unwrap();
    let (code, _, err) = cli(&sim, &state, &["down", "-c", folder.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ASCII letters, digits or '-'"), "{err}");
    let (code, status, err) = cli(&sim, &state, &["status", "-c", "keep"]);
    assert_eq!(code, 0, "the cluster is untouched: {err}\n{status}");

    // down deletes what intercloud wrote, keeps the user's file, and says so.
    let (code, down, err) = cli(&sim, &state, &["down", "-c", "keep"]);
    assert_eq!(code, 0, "down: {err}");
    assert_eq!(down["remaining"], 0, "{down}");
    assert_eq!(
        std::fs::read_to_string(folder.join("notes.txt")).unwrap(),
        "mine"
    );
    let left: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["notes.txt"], "only the user's file stays");
    assert!(err.contains("notes.txt"), "down says what it kept: {err}");

    // down of a cluster already gone: nothing to do, exit 0, the same document.
    let (code, again, err) = cli(&sim, &state, &["down", "-c", "keep"]);
    assert_eq!(code, 0, "{err}\n{again}");
    assert_eq!(again["cluster"], "keep");
    assert_eq!(again["deleted"], 0);
    assert_eq!(again["remaining"], 0);
    assert!(err.contains("nothing to delete"), "{err}");
}

#[test]
fn repair_and_resume_refuse_a_cluster_file_that_differs_from_the_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path());
    let state = dir.path().join("state");
    let file = dir.path().join("grow.toml");
    std::fs::write(&file, cluster("grow", 2)).unwrap();
    let f = file.to_str().unwrap();
    let (code, up, err) = cli(&sim, &state, &["up", "-f", f]);
    assert_eq!(code, 0, "up: {err}\n{up}");

    // The same request with comments and other spacing is the same request.
    let same = dir.path().join("same.toml");
    std::fs::write(
        &same,
        format!("# a comment\n\n{}", cluster("grow", 2).replace(" = ", "=")),
    )
    .unwrap();
    let (code, r, err) = cli(&sim, &state, &["repair", "-f", same.to_str().unwrap()]);
    assert_eq!(code, 0, "repair of the same request: {err}\n{r}");

    let changed = dir.path().join("changed.toml");
    std::fs::write(&changed, cluster("grow", 5)).unwrap();
    let changed = changed.to_str().unwrap();
    for cmd in ["repair", "resume"] {
        let (code, doc, err) = cli(&sim, &state, &[cmd, "-f", changed]);
        assert_eq!(code, 2, "{cmd} with a changed file: {err}\n{doc}");
        assert!(err.contains("differs from the deployment"), "{err}");
        assert!(
            err.contains("request.toml"),
            "names the stored request: {err}"
        );
    }
    // A pass cut short (its end never journaled): status says it is incomplete and
    // how to continue.
    let journal = state.join("grow").join("journal.log");
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(
        text.lines()
            .last()
            .unwrap()
            .contains(r#""record":"finished""#),
        "{text}"
    );
    let cut: String = text
        .lines()
        .take(text.lines().count() - 1)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&journal, cut).unwrap();
    let (_, _, err) = cli(&sim, &state, &["status", "-c", "grow"]);
    assert!(
        err.contains("interrupted") && err.contains("intercloud resume -c grow"),
        "{err}"
    );
    let (code, _, err) = cli(&sim, &state, &["resume", "-c", "grow"]);
    assert_eq!(code, 0, "{err}");
    let (_, _, err) = cli(&sim, &state, &["status", "-c", "grow"]);
    assert!(!err.contains("interrupted"), "finished now: {err}");

    // status and down use the file for its name only.
    let (code, status, err) = cli(&sim, &state, &["status", "-f", changed]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(status["nodes"].as_array().unwrap().len(), 2, "{status}");
    let (code, _, err) = cli(&sim, &state, &["down", "-f", changed]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_reader_closing_the_pipe_early_is_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let hadoop = concat!(env!("CARGO_MANIFEST_DIR"), "/hadoop.toml");
    for json in [false, true] {
        let mut c = bare();
        c.arg("--state-dir").arg(dir.path());
        if json {
            c.arg("--json");
        }
        let mut child = c
            .args(["plan", "-f", hadoop])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // `| head -0`: the reader is gone before the plan is printed.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "json={json}: {err}");
        assert_ne!(out.status.code(), Some(101), "json={json}: {err}");
        assert_eq!(out.status.code(), Some(0), "json={json}: {err}");
    }
}

#[test]
fn every_example_cluster_file_plans_on_the_built_in_federation() {
    let dir = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut planned = 0;
    for entry in std::fs::read_dir(examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") || path.ends_with("Cargo.toml") {
            continue;
        }
        let out = bare()
            .arg("--state-dir")
            .arg(dir.path())
            .arg("--json")
            .arg("plan")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(doc["placement"].is_object(), "{doc}");
        planned += 1;
    }
    assert!(planned >= 2, "seed.toml and hadoop.toml at least");
}

#[test]
fn a_bandwidth_wish_above_the_links_names_the_link_and_its_usable_bandwidth() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("seed.toml");
    let seed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/seed.toml"))
        .unwrap()
        .replace("bandwidth_mbps = 750", "bandwidth_mbps = 1000");
    std::fs::write(&file, seed).unwrap();
    let out = bare()
        .arg("--state-dir")
        .arg(dir.path())
        .args(["plan", "-f", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hokkaido <-> nii (790 Mbit/s usable)") && err.contains("= 1000"),
        "{err}"
    );

    std::fs::write(&file, cluster("neg", 1) + "[vpn]\nbandwidth_mbps = -1\n").unwrap();
    let out = bare()
        .args(["plan", "-f", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("seed.toml:10:18:"), "file:line:col: {err}");
    assert!(err.contains(">= 0"), "{err}");
}

#[test]
fn negative_numbers_after_flags_are_values_refused_with_their_range() {
    let hadoop = concat!(env!("CARGO_MANIFEST_DIR"), "/hadoop.toml");
    for args in [
        vec!["plan", "-f", hadoop, "--lambda", "-1"],
        vec!["up", "-f", hadoop, "--best-effort", "-0.5"],
        vec!["up", "-f", hadoop, "--best-effort", "1.5"],
    ] {
        let out = bare().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("out of range"), "{args:?}: {err}");
        assert!(!err.contains("unexpected argument"), "{args:?}: {err}");
    }
}

#[test]
fn creds_report_json_and_a_wrong_passphrase_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let vault = dir.path().join("vault");
    let creds = |pass: &str, json: bool, args: &[&str], stdin: &str| {
        let mut c = bare();
        c.env("INTERCLOUD_VAULT_PASSPHRASE", pass)
            .arg("--vault")
            .arg(&vault);
        if json {
            c.arg("--json");
        }
        let mut child = c
            .arg("creds")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // No vault yet: the hint names a command that exists.
    let (code, _, err) = creds("pass-1", false, &["list"], "");
    assert_ne!(code, Some(0));
    assert!(err.contains("intercloud creds add"), "{err}");
    assert!(!err.contains("`create`"), "{err}");

    let add = [
        "add",
        "--site",
        "hokkaido",
        "--middleware",
        "cloudstack",
        "--id",
        "APIKEY",
    ];
    let (code, doc, err) = creds("pass-1", true, &add, "s3cret-value\n");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(doc["site"], "hokkaido", "{doc}");
    assert_eq!(doc["action"], "added", "{doc}");
    assert!(!doc.to_string().contains("s3cret-value") && !err.contains("s3cret-value"));

    let (code, _, err) = creds("wrong", true, &["list"], "");
    assert_eq!(code, Some(2), "a wrong passphrase is bad input: {err}");
    assert!(err.contains("wrong passphrase"), "{err}");

    let (code, doc, err) = creds("pass-1", true, &["remove", "--site", "hokkaido"], "");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(doc["action"], "removed", "{doc}");
    assert_eq!(doc["user"], "default", "{doc}");
}

#[test]
fn status_after_up_on_the_built_in_federation_says_it_ended_and_down_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = dir.path().join("gone.toml");
    std::fs::write(&file, cluster("gone", 2)).unwrap();
    let out = bare()
        .arg("--state-dir")
        .arg(&state)
        .args(["--json", "up", "-f", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bare()
        .arg("--state-dir")
        .arg(&state)
        .args(["status", "-c", "gone"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("built-in simulated federation")
            && err.contains("intercloud sim --write-federation"),
        "{err}"
    );
    assert!(!err.contains("journal is empty"), "{err}");
    let out = bare()
        .arg("--state-dir")
        .arg(&state)
        .args(["--json", "down", "-c", "gone"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["deleted"], 0, "{doc}");
    assert!(!state.join("gone").exists(), "its state is cleared");
}

#[test]
fn a_failed_deploy_says_why_for_every_node() {
    let dir = tempfile::tempdir().unwrap();
    // hokkaido's every VM creation fails asynchronously; the cluster is pinned there.
    let mut cfg = intercloud_sim::FederationConfig::seed_default();
    for site in &mut cfg.sites {
        if site.id.as_str() == "hokkaido" {
            site.faults.job_failure_rate = 1.0;
        }
    }
    let config = dir.path().join("sim.toml");
    std::fs::write(&config, toml::to_string(&cfg).unwrap()).unwrap();
    let sim = start_sim_with(dir.path(), "0.01", Some(&config));
    let state = dir.path().join("state");
    let file = dir.path().join("doomed.toml");
    std::fs::write(&file, cluster("doomed", 2)).unwrap();
    let (code, up, err) = cli(&sim, &state, &["up", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}\n{up}");
    assert_eq!(up["result"], "failed", "{up}");
    let node_errors: Vec<&str> = up["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["error"].as_str())
        .collect();
    let top: Vec<&str> = up["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        !node_errors.is_empty() || !top.is_empty(),
        "a failed deploy names its error: {up}"
    );
    for e in node_errors.iter().chain(&top) {
        assert!(!e.trim().is_empty(), "{up}");
    }
}
