//! A small network-namespace lab for the crate's root-only tests.
//!
//! Every namespace is named `icv-<pid>-<tag>-<name>`; every daemon is started through
//! [`Lab::spawn`] and killed by PID. [`Lab`]'s `Drop` kills the daemons, deletes the
//! namespaces and removes the UAPI sockets it registered, also when a test panics.
//! Nothing is created in the host's namespace: veth pairs are created directly inside
//! their namespaces.
#![allow(dead_code)]

pub(crate) mod cloud_config;
pub(crate) mod expand;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether the namespace tests can run here. `Ok(false)` means "skip" (after a loud
/// message); with `INTERCLOUD_REQUIRE_NETNS=1` a missing prerequisite panics instead.
pub(crate) fn netns_ready(test: &str, tools: &[&str]) -> bool {
    prerequisites(test, true, tools, "`scripts/vpn-deps.sh` and run as root")
}

/// Whether `tools` (and root, when `root`) are here; otherwise a loud "SKIPPED"
/// naming what is missing and `install` (how to get it), or a panic when
/// `INTERCLOUD_REQUIRE_NETNS=1` says the prerequisites must be there.
pub(crate) fn prerequisites(test: &str, root: bool, tools: &[&str], install: &str) -> bool {
    let mut missing = Vec::new();
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root && !is_root {
        missing.push("root privileges".to_owned());
    }
    for t in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            missing.push(format!("`{t}`"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{test}: missing {}; install the tools with {install}",
        missing.join(", ")
    );
    if std::env::var("INTERCLOUD_REQUIRE_NETNS").as_deref() == Ok("1") {
        panic!("{msg} (INTERCLOUD_REQUIRE_NETNS=1, so this is a failure, not a skip)");
    }
    eprintln!("\n!!!!!!!! SKIPPED !!!!!!!! {msg}\n");
    false
}

/// Runs `args` (in namespace `ns` when given); returns stdout, or an error with the
/// command line, exit status and stderr.
pub(crate) fn run(ns: Option<&str>, args: &[&str]) -> Result<String, String> {
    run_input(ns, args, None)
}

/// [`run`] with `input` on stdin (used to hand private keys over without files).
pub(crate) fn run_input(
    ns: Option<&str>,
    args: &[&str],
    input: Option<&str>,
) -> Result<String, String> {
    let mut cmd = command(ns, args);
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{}: cannot start: {e}", args.join(" ")))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("{}: stdin: {e}", args.join(" ")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}`{} failed ({}): {}{}",
            args.join(" "),
            ns.map(|n| format!(" in {n}")).unwrap_or_default(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    }
}

/// Like [`run`], panicking with the error (test setup steps).
pub(crate) fn must(ns: Option<&str>, args: &[&str]) -> String {
    run(ns, args).unwrap_or_else(|e| panic!("{e}"))
}

fn command(ns: Option<&str>, args: &[&str]) -> Command {
    match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).args(args);
            c
        }
        None => {
            let mut c = Command::new(args[0]);
            c.args(&args[1..]);
            c
        }
    }
}

/// Polls `f` every 50 ms until it is true or `timeout` passes.
pub(crate) fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The namespaces and daemons of one test; removed on drop.
#[derive(Debug)]
pub(crate) struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<(String, Child)>,
    files: Vec<PathBuf>,
}

impl Lab {
    /// A lab whose namespaces are `icv-<pid>-<tag>-*`. First removes what a previous
    /// run killed outright (no `Drop`) left: `icv-<pid>-*` namespaces and
    /// `/var/run/wireguard/icv<pid>w*.sock` sockets of processes that no longer exist.
    pub(crate) fn new(tag: &str) -> Self {
        sweep_stale();
        Self {
            prefix: format!("icv-{}-{tag}-", std::process::id()),
            namespaces: Vec::new(),
            children: Vec::new(),
            files: Vec::new(),
        }
    }

    /// Creates namespace `<prefix><name>` with `lo` up; returns its full name.
    pub(crate) fn add_ns(&mut self, name: &str) -> String {
        let full = format!("{}{name}", self.prefix);
        must(None, &["ip", "netns", "add", &full]);
        self.namespaces.push(full.clone());
        must(None, &["ip", "-n", &full, "link", "set", "lo", "up"]);
        full
    }

    /// Deletes namespace `full` (kill its daemons first with [`Lab::kill`]).
    pub(crate) fn del_ns(&mut self, full: &str) {
        let _ = run(None, &["ip", "netns", "del", full]);
        self.namespaces.retain(|n| n != full);
    }

    /// Registers a file to remove on drop (a daemon's socket).
    pub(crate) fn track_file(&mut self, path: impl Into<PathBuf>) {
        self.files.push(path.into());
    }

    /// Starts `args` in `ns` in the background (stdout/stderr to `log`, or discarded);
    /// returns its PID (`ip netns exec` execs, so it is the daemon's own PID).
    pub(crate) fn spawn(&mut self, ns: &str, args: &[&str], env: &[(&str, &str)]) -> u32 {
        let mut cmd = command(Some(ns), args);
        cmd.envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", args.join(" ")));
        let pid = child.id();
        self.children.push((args.join(" "), child));
        pid
    }

    /// Kills the daemon with `pid` (SIGTERM, then SIGKILL after 2 s) and reaps it.
    pub(crate) fn kill(&mut self, pid: u32) {
        if let Some(i) = self.children.iter().position(|(_, c)| c.id() == pid) {
            let (_, child) = self.children.remove(i);
            stop(child);
        }
    }

    /// Whether the daemon with `pid` is still running.
    pub(crate) fn alive(&mut self, pid: u32) -> bool {
        self.children
            .iter_mut()
            .find(|(_, c)| c.id() == pid)
            .is_some_and(|(_, c)| matches!(c.try_wait(), Ok(None)))
    }
}

fn pid_gone(pid: &str) -> bool {
    !pid.is_empty()
        && pid.chars().all(|c| c.is_ascii_digit())
        && !Path::new(&format!("/proc/{pid}")).exists()
}

fn sweep_stale() {
    if let Ok(list) = run(None, &["ip", "netns", "list"]) {
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            let pid = name
                .strip_prefix("icv-")
                .and_then(|r| r.split_once('-'))
                .map_or("", |(p, _)| p);
            if pid_gone(pid) {
                let _ = run(None, &["ip", "netns", "del", name]);
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir("/var/run/wireguard") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix("icv") else {
                continue;
            };
            let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if rest[pid.len()..].starts_with('w') && name.ends_with(".sock") && pid_gone(&pid) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn stop(mut child: Child) {
    let pid = child.id().to_string();
    let _ = Command::new("kill")
        .args(["-TERM", &pid])
        .stderr(Stdio::null())
        .status();
    let gone = wait_until(Duration::from_secs(2), || {
        matches!(child.try_wait(), Ok(Some(_)) | Err(_))
    });
    if !gone {
        let _ = child.kill();
    }
    let _ = child.wait();
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, child) in self.children.drain(..) {
            stop(child);
        }
        for ns in self.namespaces.drain(..) {
            let _ = run(None, &["ip", "netns", "del", &ns]);
        }
        for f in self.files.drain(..) {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// Adds a veth pair `a_if` in `a` ⇄ `b_if` in `b`, both up.
pub(crate) fn veth(a: &str, a_if: &str, b: &str, b_if: &str) {
    must(
        None,
        &[
            "ip", "link", "add", a_if, "netns", a, "type", "veth", "peer", "name", b_if, "netns", b,
        ],
    );
    must(None, &["ip", "-n", a, "link", "set", a_if, "up"]);
    must(None, &["ip", "-n", b, "link", "set", b_if, "up"]);
}

/// Round-trip times (ms) of `count` pings from `ns` to `dst`, 50 ms apart.
pub(crate) fn ping_times(ns: &str, dst: &str, count: u32) -> Result<Vec<f64>, String> {
    let out = run(
        Some(ns),
        &[
            "ping",
            "-n",
            "-c",
            &count.to_string(),
            "-i",
            "0.05",
            "-W",
            "2",
            dst,
        ],
    )?;
    let times: Vec<f64> = out
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("time="))
        .filter_map(|t| t.parse().ok())
        .collect();
    if times.is_empty() {
        return Err(format!("no reply from {dst} in {ns}: {out}"));
    }
    Ok(times)
}

/// The median of `v` (not empty).
pub(crate) fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

/// Pings until one reply comes back (the first packet may wait for a handshake).
pub(crate) fn ping_ok(ns: &str, dst: &str, timeout: Duration) -> bool {
    wait_until(timeout, || {
        run(Some(ns), &["ping", "-n", "-c", "1", "-W", "1", dst]).is_ok()
    })
}

/// A private charon configuration: explicit plugins, userspace ESP, its own VICI
/// socket and log file, nothing in the journal.
pub(crate) fn strongswan_conf(dir: &Path) -> String {
    format!(
        "charon-systemd {{\n  load = random nonce aes des sha1 sha2 md5 hmac gmp pem pkcs1 x509 pubkey kdf openssl gcm kernel-libipsec kernel-netlink socket-default vici\n  install_routes = yes\n  journal {{\n    default = -1\n  }}\n  filelog {{\n    main {{\n      path = {log}\n      default = 1\n    }}\n  }}\n  plugins {{\n    vici {{\n      socket = unix://{sock}\n    }}\n  }}\n}}\n",
        log = dir.join("charon.log").display(),
        sock = dir.join("charon.vici").display()
    )
}

/// Starts charon in `ns` with the files in `dir` and loads `swanctl` into it.
pub(crate) fn charon(lab: &mut Lab, ns: &str, dir: &Path, swanctl: &str) -> String {
    std::fs::create_dir_all(dir).expect("dir");
    let conf = dir.join("strongswan.conf");
    std::fs::write(&conf, strongswan_conf(dir)).expect("write strongswan.conf");
    let file = dir.join("swanctl.conf");
    std::fs::write(&file, swanctl).expect("write swanctl.conf");
    let conf = conf.to_str().expect("utf-8").to_owned();
    lab.spawn(ns, &["charon-systemd"], &[("STRONGSWAN_CONF", &conf)]);
    let sock = dir.join("charon.vici");
    assert!(
        wait_until(Duration::from_secs(10), || sock.exists()),
        "charon in {ns} made no VICI socket; log: {}",
        std::fs::read_to_string(dir.join("charon.log")).unwrap_or_default()
    );
    let uri = format!("unix://{}", sock.display());
    // swanctl exits 0 on some syntax errors: read what it says.
    let out = must(
        None,
        &[
            "swanctl",
            "--load-all",
            "--noprompt",
            "--uri",
            &uri,
            "--file",
            file.to_str().expect("utf-8"),
        ],
    );
    assert!(
        out.contains("loaded connection") && !out.contains("fail") && !out.contains("invalid"),
        "swanctl rejected the rendered config in {ns}:\n{out}"
    );
    uri
}
