//! The L2TP/IPsec client files pass the real tools' parsers, and the rendered
//! strongSwan IKEv1 connection completes phase 1 against an emulated CloudStack
//! remote-access server (root only; in throwaway namespaces).
//!
//! This kernel has no PPP, L2TP or ESP, so no data flows: pppd's `dryrun` stops at
//! the missing `/dev/ppp` (exit 4 = options parsed), xl2tpd must keep running for a
//! second (a parse error exits at once), and the IPsec transport-mode child cannot be
//! installed by `kernel-libipsec` (tunnel-only), so the check ends at the IKE SA.
//! Each parser check is shown to fail on a broken file too.
//!
//! Skips (loudly) without root or tools; fails instead when
//! `INTERCLOUD_REQUIRE_NETNS=1`. Install the tools with `scripts/vpn-deps.sh`.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{charon, must, run, veth, wait_until, Lab};
use intercloud_vpn::l2tp::L2tpClient;
use secrecy::SecretString;

const TOOLS: &[&str] = &["ip", "pppd", "xl2tpd", "charon-systemd", "swanctl"];

fn client(server: &str) -> L2tpClient {
    L2tpClient::new(
        "icv-cs1",
        server,
        "intercloud",
        SecretString::from("pa\"ss\\word 1"),
        SecretString::from("cloudstack-psk-42"),
        vec!["10.77.0.0/24".into()],
    )
}

fn write_secret(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// pppd's own parser: exit 4 (no /dev/ppp) after parsing counts as a pass.
fn pppd_accepts(ns: &str, opts: &Path) -> Result<(), String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "pppd", "file"])
        .arg(opts)
        .args(["dryrun", "nodetach", "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    match out.status.code() {
        Some(0 | 4) => Ok(()),
        code => Err(format!(
            "pppd exit {code:?}: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        )),
    }
}

/// xl2tpd's own parser: it must still run after a second (parse errors exit at once).
/// The daemon is stopped by PID before returning.
fn xl2tpd_accepts(ns: &str, dir: &Path, conf: &Path) -> Result<(), String> {
    let pid_file = dir.join("xl2tpd.pid");
    let ctl = dir.join("l2tp-control");
    let log = dir.join("xl2tpd.log");
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "xl2tpd", "-D", "-c"])
        .arg(conf)
        .arg("-p")
        .arg(&pid_file)
        .arg("-C")
        .arg(&ctl)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| e.to_string())?;
    let exited = wait_until(Duration::from_millis(1200), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    let result = if exited {
        Err(format!(
            "xl2tpd exited: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        ))
    } else {
        Ok(())
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stderr(Stdio::null())
        .status();
    if !wait_until(Duration::from_secs(2), || {
        matches!(child.try_wait(), Ok(Some(_)))
    }) {
        let _ = child.kill();
    }
    let _ = child.wait();
    result
}

#[test]
fn l2tp_client_files_pass_the_tools_parsers() {
    if !common::netns_ready("l2tp_client_files_pass_the_tools_parsers", TOOLS) {
        return;
    }
    let t0 = Instant::now();
    let mut lab = Lab::new("l2tp");
    let ns = lab.add_ns("check");
    let tmp = tempfile::tempdir().expect("tempdir");
    let c = client("192.0.2.10");

    let opts = tmp.path().join("options.l2tpd");
    write_secret(&opts, &c.ppp_options().expect("render"));
    pppd_accepts(&ns, &opts).unwrap_or_else(|e| panic!("pppd rejected the rendered options: {e}"));
    let bad = tmp.path().join("options.bad");
    write_secret(
        &bad,
        &format!("{}require-mschap-v3\n", c.ppp_options().expect("render")),
    );
    assert!(
        pppd_accepts(&ns, &bad).is_err(),
        "pppd check cannot fail: an unknown option passed"
    );

    let conf = tmp.path().join("xl2tpd.conf");
    std::fs::write(
        &conf,
        c.xl2tpd_conf(opts.to_str().expect("utf-8"))
            .expect("render"),
    )
    .expect("write");
    xl2tpd_accepts(&ns, tmp.path(), &conf)
        .unwrap_or_else(|e| panic!("xl2tpd rejected the rendered config: {e}"));
    let bad = tmp.path().join("xl2tpd.bad");
    std::fs::write(
        &bad,
        format!(
            "{}lenght bit = yes\n",
            c.xl2tpd_conf(opts.to_str().expect("utf-8"))
                .expect("render")
        ),
    )
    .expect("write");
    assert!(
        xl2tpd_accepts(&ns, tmp.path(), &bad).is_err(),
        "xl2tpd check cannot fail: a misspelt field passed"
    );
    println!("pppd + xl2tpd checks: {:.2} s", t0.elapsed().as_secs_f64());
}

#[test]
fn l2tp_client_ikev1_phase1_against_emulated_cloudstack() {
    if !common::netns_ready(
        "l2tp_client_ikev1_phase1_against_emulated_cloudstack",
        TOOLS,
    ) {
        return;
    }
    let t0 = Instant::now();
    let mut lab = Lab::new("l2ike");
    let tmp = tempfile::tempdir().expect("tempdir");
    let vm = lab.add_ns("vm");
    let vr = lab.add_ns("vr");
    veth(&vm, "v0", &vr, "v1");
    must(
        None,
        &[
            "ip",
            "-n",
            &vm,
            "addr",
            "add",
            "192.168.89.2/24",
            "dev",
            "v0",
        ],
    );
    must(
        None,
        &[
            "ip",
            "-n",
            &vr,
            "addr",
            "add",
            "192.168.89.1/24",
            "dev",
            "v1",
        ],
    );
    // The CloudStack virtual router's side, as its remote-access VPN configures
    // strongSwan: IKEv1, PSK, transport mode for L2TP, any client.
    let hex: String = "cloudstack-psk-42"
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    let server = format!(
        "connections {{\n  vr {{\n    version = 1\n    local_addrs = 192.168.89.1\n    proposals = aes128-sha1-modp1024,3des-sha1-modp1024\n    local {{\n      auth = psk\n    }}\n    remote {{\n      auth = psk\n    }}\n    children {{\n      l2tp {{\n        mode = transport\n        local_ts = dynamic[udp/1701]\n        remote_ts = dynamic[udp]\n        esp_proposals = aes128-sha1,3des-sha1\n      }}\n    }}\n  }}\n}}\nsecrets {{\n  ike-vr {{\n    secret = 0x{hex}\n  }}\n}}\n"
    );
    let uri_vr = charon(&mut lab, &vr, &tmp.path().join("vr"), &server);
    let c = client("192.168.89.1");
    let uri_vm = charon(
        &mut lab,
        &vm,
        &tmp.path().join("vm"),
        &c.swanctl_conf().expect("render"),
    );
    // start_action = start: the client initiates by itself.
    let up = wait_until(Duration::from_secs(10), || {
        run(None, &["swanctl", "--list-sas", "--uri", &uri_vr])
            .is_ok_and(|o| o.contains("ESTABLISHED, IKEv1"))
    });
    assert!(
        up,
        "no IKEv1 SA with the rendered L2TP client; client log:\n{}",
        std::fs::read_to_string(tmp.path().join("vm/charon.log")).unwrap_or_default()
    );
    let sas = must(None, &["swanctl", "--list-sas", "--uri", &uri_vm]);
    assert!(sas.contains("ESTABLISHED, IKEv1"), "{sas}");
    println!(
        "IKEv1 phase 1 with the PSK in {:.2} s:\n{sas}",
        t0.elapsed().as_secs_f64()
    );
}
