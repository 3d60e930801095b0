//! Independent clients accept the simulator: Python's `cs` (CloudStack), `pyone`
//! (OpenNebula) and `boto3` (EC2) create, list by tag and delete VMs on an in-process
//! federation. The venv comes from `INTERCLOUD_VENV` or `scripts/pyenv.sh`; if neither
//! yields a working Python with those packages the test FAILS (it never silently passes).

use std::path::PathBuf;
use std::process::Command;

use intercloud_sim::{Federation, FederationConfig, SimCredentials};

fn venv_python() -> PathBuf {
    let venv = match std::env::var("INTERCLOUD_VENV") {
        Ok(v) if !v.is_empty() => PathBuf::from(v),
        _ => {
            let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/pyenv.sh");
            let out = Command::new("bash")
                .arg(&script)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            assert!(
                out.status.success(),
                "scripts/pyenv.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        }
    };
    let py = venv.join("bin/python");
    let check = Command::new(&py)
        .args(["-c", "import cs, pyone, boto3"])
        .output();
    match check {
        Ok(o) if o.status.success() => py,
        Ok(o) => panic!(
            "python deps missing in {}: {}",
            venv.display(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("no python at {}: {e}", py.display()),
    }
}

fn fast_config() -> FederationConfig {
    let mut cfg = FederationConfig::seed_default();
    cfg.time_scale = 0.01;
    cfg
}

async fn run_py(script: &str, args: &[String]) {
    let py = venv_python();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let out = tokio::process::Command::new(py)
        .arg(&path)
        .args(args)
        .output()
        .await
        .expect("spawn python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("OK"),
        "{script} failed\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs_client_creates_lists_by_tag_and_deletes() {
    let fed = Federation::start(fast_config()).await.expect("start");
    let site = fed.site("hokkaido").expect("hokkaido");
    let SimCredentials::Cloudstack {
        api_key,
        secret_key,
    } = site.credentials()
    else {
        panic!("creds")
    };
    run_py(
        "cs_client.py",
        &[site.endpoint(), api_key.clone(), secret_key.clone()],
    )
    .await;
    let calls = site.calls();
    assert_eq!(calls["deployVirtualMachine"], 2);
    assert!(calls["queryAsyncJobResult"] >= 2);
    assert_eq!(site.resources().len(), 2, "two VMs ever created");
    assert!(
        fed.alive_with_tag("intercloud-cluster", "py cs").is_empty(),
        "nothing left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyone_creates_lists_by_tag_and_deletes() {
    let fed = Federation::start(fast_config()).await.expect("start");
    let site = fed.site("nii").expect("nii");
    let SimCredentials::Opennebula { user, password } = site.credentials() else {
        panic!("creds")
    };
    run_py(
        "one_client.py",
        &[site.endpoint(), format!("{user}:{password}")],
    )
    .await;
    assert_eq!(site.calls()["one.template.instantiate"], 2);
    assert_eq!(site.resources().len(), 2);
    assert!(fed
        .alive_with_tag("INTERCLOUD_CLUSTER", "py-one")
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_creates_lists_by_tag_and_deletes() {
    let fed = Federation::start(fast_config()).await.expect("start");
    let site = fed.site("tokyo").expect("tokyo");
    let SimCredentials::Ec2 {
        access_key_id,
        secret_access_key,
    } = site.credentials()
    else {
        panic!("creds")
    };
    let region = site.zone().expect("region").to_owned();
    run_py(
        "boto3_client.py",
        &[
            site.endpoint(),
            region,
            access_key_id.clone(),
            secret_access_key.clone(),
        ],
    )
    .await;
    assert_eq!(
        site.resources().len(),
        2,
        "ClientToken retry made no third instance"
    );
    assert!(fed
        .alive_with_tag("intercloud-cluster", "py ec2")
        .is_empty());
}
