//! A powered-off VM is started by `repair`, not deleted and recreated: through the
//! real binary against the simulator, with one VM per middleware stopped through the
//! cloud's own API (CloudStack `stopVirtualMachine`, OpenNebula `one.vm.action
//! poweroff`, EC2 `StopInstances`), as a cloud user would, and every check made
//! through the clouds' own APIs.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use common::{alive, cli, rt, start_sim, Sim};
use intercloud_core::config::FederationConfig;
use intercloud_core::{Credentials, Middleware, Vm, VmState};
use intercloud_sim::SimCredentials;
use secrecy::ExposeSecret;

const CLUSTER: &str = r#"name = "pwr"
profile = "hadoop"

[[group]]
role = "master"
count = 1
level = "L"

[[group]]
role = "worker"
count = 3
level = "S"

[spread]
min_sites = 3

[vpn]
fabric = "wireguard"
"#;

/// Each site's middleware, loopback address, credentials and zone, from the
/// federation file and the simulator's environment.
fn sites(sim: &Sim) -> BTreeMap<String, (Middleware, SocketAddr, SimCredentials, String)> {
    let fed = FederationConfig::load(&sim.federation).unwrap();
    let env: BTreeMap<_, _> = sim.env.iter().cloned().collect();
    fed.sites
        .iter()
        .map(|s| {
            let prefix = s.credentials.trim_start_matches("env:");
            let creds =
                Credentials::from_env(s.middleware, prefix, |k| env.get(k).cloned()).unwrap();
            let creds = match creds {
                Credentials::CloudStack {
                    api_key,
                    secret_key,
                } => SimCredentials::Cloudstack {
                    api_key,
                    secret_key: secret_key.expose_secret().to_owned(),
                },
                Credentials::OpenNebula { user, password } => SimCredentials::Opennebula {
                    user,
                    password: password.expose_secret().to_owned(),
                },
                Credentials::Ec2 {
                    access_key_id,
                    secret_access_key,
                    ..
                } => SimCredentials::Ec2 {
                    access_key_id,
                    secret_access_key: secret_access_key.expose_secret().to_owned(),
                },
                _ => panic!("site {} has credentials the simulator does not use", s.id),
            };
            let authority = s
                .endpoint
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap();
            (
                s.id.as_str().to_owned(),
                (
                    s.middleware,
                    authority.parse().unwrap(),
                    creds,
                    s.zone.clone().unwrap_or_default(),
                ),
            )
        })
        .collect()
}

/// (site, VM id, state) of every alive VM of the cluster, as the clouds list them.
fn listed(sim: &Sim, rt: &tokio::runtime::Runtime) -> BTreeSet<(String, String, String)> {
    alive(sim, rt, "pwr")
        .into_iter()
        .map(|v: Vm| {
            (
                v.site.as_str().to_owned(),
                v.id.to_string(),
                v.state.as_str().to_owned(),
            )
        })
        .collect()
}

/// The (site, VM id) pairs of `vms`, without their states.
fn ids(vms: &BTreeSet<(String, String, String)>) -> BTreeSet<(String, String)> {
    vms.iter().map(|(s, i, _)| (s.clone(), i.clone())).collect()
}

#[test]
fn repair_starts_a_stopped_vm_of_every_middleware_instead_of_replacing_it() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path());
    let rt = rt();
    let state = dir.path().join("state");
    let file = dir.path().join("pwr.toml");
    std::fs::write(&file, CLUSTER).unwrap();

    let (code, up, err) = cli(&sim, &state, &["up", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 0, "up failed: {err}\n{up}");
    assert_eq!(up["result"], "ok", "{up}");
    let before = listed(&sim, &rt);
    assert_eq!(before.len(), 4, "{before:?}");
    assert!(before.iter().all(|v| v.2 == "running"), "{before:?}");

    // One VM per middleware, stopped through that cloud's own API.
    let sites = sites(&sim);
    let mut stopped: BTreeMap<Middleware, (String, String)> = BTreeMap::new();
    for (site, id, _) in &before {
        let mw = sites[site].0;
        stopped
            .entry(mw)
            .or_insert_with(|| (site.clone(), id.clone()));
    }
    assert_eq!(
        stopped.keys().copied().collect::<Vec<_>>(),
        [
            Middleware::CloudStack,
            Middleware::OpenNebula,
            Middleware::Ec2
        ],
        "the cluster spans every middleware: {before:?}"
    );
    for (site, id) in stopped.values() {
        let (_, addr, creds, zone) = &sites[site];
        rt.block_on(intercloud_sim::testing::stop_vm(*addr, creds, zone, id))
            .unwrap_or_else(|e| panic!("stopping {id} at {site}: {e}"));
    }
    let now = listed(&sim, &rt);
    for (site, id) in stopped.values() {
        assert!(
            now.contains(&(
                site.clone(),
                id.clone(),
                VmState::Stopped.as_str().to_owned()
            )),
            "{site} lists {id} stopped: {now:?}"
        );
    }

    let (code, rep, err) = cli(&sim, &state, &["repair", "-c", "pwr"]);
    assert_eq!(code, 0, "repair failed: {err}\n{rep}");
    assert_eq!(rep["result"], "ok", "{rep}");
    let mut started: Vec<&str> = rep["started"]
        .as_array()
        .expect("started array")
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    started.sort_unstable();
    assert_eq!(started.len(), 3, "{rep}");
    assert_eq!(rep["recreated"], serde_json::json!([]), "{rep}");
    assert_eq!(rep["deleted"], 0, "{rep}");
    for n in rep["nodes"].as_array().unwrap() {
        assert_eq!(n["state"], "running", "{n}");
        assert!(n.get("error").is_none(), "{n}");
    }

    // Through the clouds: the same VMs, all running again, none deleted or made.
    let after = listed(&sim, &rt);
    assert_eq!(ids(&after), ids(&before), "same VM ids before and after");
    assert!(after.iter().all(|v| v.2 == "running"), "{after:?}");
    let report_ids: BTreeSet<(String, String)> = rep["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["site"].as_str().unwrap().to_owned(),
                n["vm_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(report_ids, ids(&before), "the report names the same VMs");

    let (code, _, err) = cli(&sim, &state, &["down", "-c", "pwr"]);
    assert_eq!(code, 0, "down failed: {err}");
    assert!(alive(&sim, &rt, "pwr").is_empty());
}
