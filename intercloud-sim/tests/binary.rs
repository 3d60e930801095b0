//! The `intercloud-sim` binary serves a TOML-described federation and stops on SIGTERM;
//! a bad config exits 2 naming the site.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const CONFIG: &str = r#"
seed = 3
time_scale = 0.01

[[site]]
id = "lab"
middleware = "opennebula"
latency_ms = 5.0
boot_s = 1.0
credentials = { kind = "opennebula", user = "oneadmin", password = "lab-pass" }
[[site.offering]]
level = "S"
name = "small"
capacity = 4

[[site]]
id = "cloud"
middleware = "cloudstack"
zone = "z1"
credentials = { kind = "cloudstack", api_key = "k", secret_key = "s" }
[[site.offering]]
level = "S"
name = "Small Instance"
capacity = 4

[[link]]
between = ["lab", "cloud"]
rtt_ms = 20
bandwidth_mbps = 1000
"#;

#[tokio::test]
async fn binary_serves_toml_federation() {
    let mut file = tempfile::NamedTempFile::new().expect("tempfile");
    file.write_all(CONFIG.as_bytes()).expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_intercloud-sim"))
        .arg("--config")
        .arg(file.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let doc: serde_json::Value = serde_json::from_str(&line).expect("json line");
    let sites = doc["sites"].as_array().expect("sites");
    assert_eq!(sites.len(), 2);
    assert_eq!(sites[0]["id"], "lab");
    assert_eq!(sites[1]["zone"], "z1");
    assert!(!line.contains("lab-pass"), "no secrets on stdout");
    let endpoint = sites[0]["endpoint"].as_str().expect("endpoint");
    let addr: std::net::SocketAddr = endpoint
        .trim_start_matches("http://")
        .trim_end_matches("/RPC2")
        .parse()
        .expect("addr");
    let body = "<?xml version='1.0'?><methodCall><methodName>one.system.version</methodName><params><param><value><string>oneadmin:lab-pass</string></value></param></params></methodCall>";
    let (status, resp) = intercloud_sim::testing::http(addr, "POST", "/RPC2", &[], body)
        .await
        .expect("call");
    assert_eq!(status, 200);
    assert!(
        resp.contains("<boolean>1</boolean>") && resp.contains("6.10.0"),
        "{resp}"
    );
    let cs = sites[1]["endpoint"].as_str().expect("endpoint");
    let cs_addr: std::net::SocketAddr = cs
        .trim_start_matches("http://")
        .trim_end_matches("/client/api")
        .parse()
        .expect("addr");
    let q = intercloud_sim::testing::cloudstack_query(&[("command", "listZones")], "k", "s");
    let (status, resp) =
        intercloud_sim::testing::http(cs_addr, "GET", &format!("/client/api?{q}"), &[], "")
            .await
            .expect("call");
    assert_eq!(status, 200, "{resp}");
    assert!(resp.contains("\"name\":\"z1\""));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
}

#[test]
fn bad_config_exits_2_naming_the_site() {
    let mut file = tempfile::NamedTempFile::new().expect("tempfile");
    let bad = CONFIG.replace(
        "kind = \"cloudstack\", api_key = \"k\", secret_key = \"s\"",
        "kind = \"opennebula\", user = \"u\", password = \"p\"",
    );
    file.write_all(bad.as_bytes()).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_intercloud-sim"))
        .arg("--config")
        .arg(file.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cloud") && err.contains("credentials"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_intercloud-sim"))
        .arg("--config")
        .arg("/nonexistent/sim.toml")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}
