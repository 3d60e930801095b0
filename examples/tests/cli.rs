//! End-to-end tests of the `intercloud` binary against the simulator, served by the
//! binary's own `sim` subcommand on loopback.

mod common;

use assert_cmd::Command;
use common::{cli, start_sim, Sim};
use serde_json::Value;

const CLUSTER: &str = r#"name = "e2e"
profile = "hadoop"

[[group]]
role = "master"
count = 1
level = "L"
colocate = true

[[group]]
role = "worker"
count = 4
level = "S"
traffic = { pattern = "all-to-all", bytes_per_job = 1e9 }

[spread]
min_sites = 2

[vpn]
fabric = "wireguard"
"#;

fn nodes(doc: &Value) -> &Vec<Value> {
    doc["nodes"].as_array().expect("nodes array")
}

#[test]
fn plan_up_status_inventory_repair_down_on_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path());
    let state = dir.path().join("state");
    let cluster = dir.path().join("cluster.toml");
    std::fs::write(&cluster, CLUSTER).unwrap();
    let file = cluster.to_str().unwrap();

    let (code, plan, err) = cli(&sim, &state, &["plan", "-f", file]);
    assert_eq!(code, 0, "plan failed: {err}");
    let workers = plan["placement"]["worker"]
        .as_object()
        .expect("worker placement");
    let sites: std::collections::BTreeSet<&str> = plan["placement"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|m| {
            m.as_object()
                .unwrap()
                .iter()
                .filter(|(_, n)| n.as_u64() > Some(0))
                .map(|(s, _)| s.as_str())
        })
        .collect();
    assert!(sites.len() >= 2, "min_sites = 2: {plan}");
    assert_eq!(
        workers.values().map(|n| n.as_u64().unwrap()).sum::<u64>(),
        4
    );
    assert!(plan["cost"]["total"].is_number() && plan["method"].is_string());
    assert!(!plan["steps"].as_array().unwrap().is_empty());

    let (code, up, err) = cli(&sim, &state, &["up", "-f", file]);
    assert_eq!(code, 0, "up failed: {err}\n{up}");
    assert_eq!(up["result"], "ok");
    assert_eq!(nodes(&up).len(), 5);
    for n in nodes(&up) {
        assert_eq!(n["state"], "running", "{n}");
        assert!(
            n["overlay_ip"].as_str().unwrap().starts_with("10.77."),
            "{n}"
        );
        assert!(n["vm_id"].is_string(), "{n}");
    }
    assert!(
        !up["links"].as_array().unwrap().is_empty(),
        "a two-site cluster has a link: {up}"
    );

    let (code, again, _) = cli(&sim, &state, &["up", "-f", file]);
    assert_eq!(
        code, 2,
        "a second up on a deployed cluster is refused: {again}"
    );

    let (code, status, err) = cli(&sim, &state, &["status", "-c", "e2e"]);
    assert_eq!(code, 0, "status: {err}");
    assert_eq!(status["result"], "ok");

    let out = Command::cargo_bin("intercloud")
        .unwrap()
        .envs(sim.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args([
            "--federation",
            sim.federation.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ])
        .args(["inventory", "-c", "e2e"])
        .output()
        .unwrap();
    let ini = String::from_utf8_lossy(&out.stdout);
    assert!(
        ini.contains("[worker]") && ini.contains("[master]") && ini.contains("ansible_host=10.77."),
        "{ini}"
    );

    // Kill one worker's VM behind intercloud's back, through the cloud's own API.
    let victim = nodes(&status)
        .iter()
        .find(|n| n["role"] == "worker")
        .unwrap()
        .clone();
    kill_vm(
        &sim,
        victim["site"].as_str().unwrap(),
        victim["vm_id"].as_str().unwrap(),
    );
    let (code, status, _) = cli(&sim, &state, &["status", "-c", "e2e"]);
    assert_eq!(
        code, 3,
        "a missing node makes the cluster partial: {status}"
    );

    let (code, repaired, err) = cli(&sim, &state, &["repair", "-c", "e2e"]);
    assert_eq!(code, 0, "repair: {err}\n{repaired}");
    assert!(
        repaired["recreated"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == &victim["name"]),
        "{repaired}"
    );
    let back = nodes(&repaired)
        .iter()
        .find(|n| n["name"] == victim["name"])
        .unwrap();
    assert_eq!(
        back["overlay_ip"], victim["overlay_ip"],
        "a repaired node keeps its address"
    );
    assert_ne!(back["vm_id"], victim["vm_id"], "on a new VM");

    let (code, down, err) = cli(&sim, &state, &["down", "-c", "e2e"]);
    assert_eq!(code, 0, "down: {err}");
    assert_eq!(down["remaining"], 0);
    assert!(down["deleted"].as_u64().unwrap() >= 5, "{down}");
    assert!(
        !state.join("e2e").exists(),
        "the state folder is removed once nothing is left"
    );
}

/// Deletes one VM through the site's API with the simulator's credentials.
fn kill_vm(sim: &Sim, site: &str, vm: &str) {
    let provider = common::provider(sim, site);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(provider.delete_vm(&intercloud_core::VmId::new(vm)))
        .unwrap();
}

#[test]
fn bad_files_exit_2_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("cluster.toml");
    std::fs::write(&bad, CLUSTER.replace("colocate = true", "colocate = yes")).unwrap();
    let out = Command::cargo_bin("intercloud")
        .unwrap()
        .args([
            "--state-dir",
            dir.path().to_str().unwrap(),
            "plan",
            "-f",
            bad.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cluster.toml:8:"), "{err}");

    let fed = dir.path().join("federation.toml");
    std::fs::write(&fed, "[[site]]\nid = \"a\"\nmiddleware = \"cloudstack\"\nendpoint = \"ftp://x\"\nzone = \"z\"\ncredentials = \"env:A\"\n[site.levels.S]\noffering = \"s\"\ncapacity = 1\n").unwrap();
    std::fs::write(&bad, CLUSTER).unwrap();
    let out = Command::cargo_bin("intercloud")
        .unwrap()
        .args([
            "--federation",
            fed.to_str().unwrap(),
            "plan",
            "-f",
            bad.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("site a") && err.contains("http:// or https://"),
        "{err}"
    );
}

#[test]
fn plan_fixed_scores_or_names_the_broken_constraint() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster.toml");
    std::fs::write(&cluster, CLUSTER).unwrap();
    let fixed = dir.path().join("p.json");
    std::fs::write(
        &fixed,
        r#"{"master": {"hokkaido": 1}, "worker": {"hokkaido": 4}}"#,
    )
    .unwrap();
    let out = Command::cargo_bin("intercloud")
        .unwrap()
        .args([
            "--json",
            "plan",
            "-f",
            cluster.to_str().unwrap(),
            "--fixed",
            fixed.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "one site breaks min_sites = 2");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!doc["violations"].as_array().unwrap().is_empty(), "{doc}");

    std::fs::write(
        &fixed,
        r#"{"master": {"hokkaido": 1}, "worker": {"hokkaido": 2, "nii": 2}}"#,
    )
    .unwrap();
    let out = Command::cargo_bin("intercloud")
        .unwrap()
        .args([
            "--json",
            "plan",
            "-f",
            cluster.to_str().unwrap(),
            "--fixed",
            fixed.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["cost"]["total"].as_f64().unwrap() > 0.0, "{doc}");
}
