//! The real-browser test: headless Chromium, driven through chromedriver on loopback,
//! logs in, registers keys, requests the seed's 3 × S + 2 × L cluster over IPsec
//! site-to-site (picked in the form's VPN fabric select), watches it
//! reach Running on the live progress page, and destroys it. Screenshots go to
//! `target/portal-screenshots/`.
//!
//! Install the browser with `bash scripts/browser-deps.sh`. Without it the test skips
//! loudly, unless `INTERCLOUD_REQUIRE_BROWSER=1`, when it fails.

mod common;
mod webdriver;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{accepted, PASSWORD};
use intercloud_portal::serve;
use webdriver::Browser;

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|n| {
        std::env::split_paths(&path)
            .map(|d| d.join(n))
            .find(|p| p.is_file())
    })
}

/// Kills the chromedriver this test started (by its own handle) when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

async fn wait_ready(url: &str) {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("{url}/status")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start at {url}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_logs_in_registers_keys_deploys_the_seed_cluster_and_destroys_it() {
    let required = std::env::var("INTERCLOUD_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let chromium = find_program(&["chromium", "chromium-browser"]);
    let driver = find_program(&["chromedriver"]);
    let (Some(chromium), Some(driver)) = (chromium, driver) else {
        let msg =
            "chromium and/or chromedriver are not installed: run `bash scripts/browser-deps.sh`";
        if required {
            panic!("INTERCLOUD_REQUIRE_BROWSER=1 but {msg}");
        }
        // Written to the real stderr (not eprintln!, which the test harness captures).
        let bar = "!".repeat(72);
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("\n{bar}\n!!! SKIPPING the real-browser portal test: {msg}\n{bar}\n\n")
                .as_bytes(),
        );
        return;
    };
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/portal-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let _ = std::fs::remove_file(shots.join("99-failure.png"));

    // The portal on the simulated federation, on a real loopback socket.
    let logs = common::capture_logs();
    let h = common::harness_on(None, common::Clouds::sim().await).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(serve(listener, h.router.clone()));

    // chromedriver and a headless Chromium with a fresh profile.
    let port = free_port();
    let _driver = Driver(
        Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let driver_url = format!("http://127.0.0.1:{port}");
    wait_ready(&driver_url).await;
    let profile = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--no-proxy-server",
        "--window-size=1280,1000",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.path().display())])
    .collect();
    let b = Browser::open(&driver_url, &chromium.display().to_string(), &args)
        .await
        .expect("a browser session");
    let outcome = drive(&b, &base, &h, &shots).await;
    if outcome.is_err() {
        let _ = b.screenshot(&shots.join("99-failure.png")).await;
    }
    b.close().await;
    server.abort();
    if let Err(e) = outcome {
        panic!("browser flow failed: {e}");
    }
    let log = logs.text();
    assert!(log.contains("destroy finished"), "logs are captured");
    for secret in common::all_secrets(&h) {
        assert!(!log.contains(secret.as_str()), "a log line holds a secret");
    }
}

async fn drive(
    b: &Browser,
    base: &str,
    h: &common::Harness,
    shots: &std::path::Path,
) -> Result<(), String> {
    let shot = |name: &str| shots.join(name);
    // Log in.
    b.goto(&format!("{base}/login")).await?;
    b.fill("#login-user", "alice").await?;
    b.fill("#login-password", PASSWORD).await?;
    b.screenshot(&shot("01-login.png")).await?;
    b.click("#login-submit").await?;
    let user = b
        .wait_text("#user", Duration::from_secs(10), |t| t == "alice")
        .await?;
    assert_eq!(user, "alice");
    let cookies = b.eval("return document.cookie").await?;
    assert_eq!(cookies.as_str(), Some(""), "the session cookie is HttpOnly");

    // Register keys for every site and test one.
    b.goto(&format!("{base}/credentials")).await?;
    for site in ["hokkaido", "nii", "tokyo"] {
        let (id, secret) = accepted(h, site);
        b.fill(&format!("#identity-input-{site}"), &id).await?;
        b.fill(&format!("#secret-input-{site}"), &secret).await?;
        b.click(&format!("#save-{site}")).await?;
        b.wait_text("#message", Duration::from_secs(10), |t| {
            t.contains(&format!("keys for {site} saved"))
        })
        .await?;
    }
    b.click("#test-hokkaido").await?;
    b.wait_text("#message", Duration::from_secs(10), |t| {
        t.contains("connection OK")
    })
    .await?;
    b.screenshot(&shot("02-keys.png")).await?;

    // Request the seed's cluster (the form's defaults) and see the placement.
    b.goto(&format!("{base}/request")).await?;
    b.fill("#name", "seed-portal").await?;
    // IPsec site-to-site: hokkaido's CloudStack gateway, a strongSwan node on nii.
    b.click("#fabric option[value='ipsec']").await?;
    let chosen = b
        .eval("return document.querySelector('#fabric').value")
        .await?;
    assert_eq!(chosen, "ipsec", "the fabric select took the choice");
    b.screenshot(&shot("03-request.png")).await?;
    b.click("#plan").await?;
    let table = b
        .wait_text("table.placement", Duration::from_secs(10), |t| {
            t.contains("hokkaido")
        })
        .await?;
    assert!(
        table.contains("small hokkaido 3") && table.contains("large nii 2"),
        "{table}"
    );
    b.screenshot(&shot("04-placement.png")).await?;
    b.click("#confirm").await?;

    // The live progress page reaches running through server-sent events.
    b.wait_text("#phase", Duration::from_secs(30), |t| t == "running")
        .await?;
    let log = b.text("#log").await?;
    assert!(log.contains("deploying 5 nodes on 2 sites"), "{log}");
    assert_eq!(log.matches(" running (").count(), 5, "{log}");
    b.screenshot(&shot("05-progress-running.png")).await?;
    let progress = b.url().await?;
    let cluster = progress.trim_end_matches("/progress").to_owned();

    // The cluster page: 5 running nodes with overlay addresses; destroy.
    b.goto(&cluster).await?;
    let nodes = b.text("#nodes").await?;
    assert_eq!(nodes.matches("running").count(), 5, "{nodes}");
    let main = b.text("main").await?;
    assert!(main.contains("VPN link hokkaido ↔ nii"), "{main}");
    b.screenshot(&shot("06-cluster.png")).await?;
    let nii = h
        .clouds
        .user_data("nii")
        .expect("the simulator keeps user data");
    assert!(
        nii.iter().any(|ud| ud.contains("swanctl")),
        "nii's gateway node runs strongSwan: {nii:?}"
    );
    b.click("#destroy").await?;
    b.wait_text("#phase", Duration::from_secs(30), |t| t == "destroyed")
        .await?;
    b.screenshot(&shot("07-destroyed.png")).await?;
    for site in ["hokkaido", "nii"] {
        assert_eq!(h.clouds.alive(site), 0, "{site} still has VMs");
    }
    Ok(())
}
