//! `[vpn] fabric = "ipsec"` and `"l2tp"` end to end: the `intercloud` binary deploys,
//! shows, repairs and tears down clusters on a simulator running in this test
//! process, whose resources (VMs with their user data, VPN gateways, connections,
//! remote-access VPNs, VPN users) are inspected directly.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use intercloud_core::Credentials;
use intercloud_sim::{Federation, FederationConfig, ResourceKind, ResourceRecord};
use ipnet::Ipv4Net;
use secrecy::ExposeSecret;
use serde_json::Value;

/// A simulated federation served by this process (on its own runtime, so it keeps
/// answering while the test waits for the CLI).
struct LiveSim {
    fed: Option<Federation>,
    rt: tokio::runtime::Runtime,
    federation: PathBuf,
    env: Vec<(String, String)>,
}

impl Drop for LiveSim {
    fn drop(&mut self) {
        if let Some(fed) = self.fed.take() {
            self.rt.block_on(fed.shutdown());
        }
    }
}

impl LiveSim {
    /// Serves `cfg` (time scale 0.01) and writes its federation file into `dir`.
    fn start(dir: &Path, mut cfg: FederationConfig) -> Self {
        cfg.time_scale = 0.01;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let fed = rt.block_on(Federation::start(cfg)).unwrap();
        let prefix = |id: &str| format!("SIM_{}", id.to_uppercase().replace('-', "_"));
        let config = fed.federation_file(|id| format!("env:{}", prefix(id.as_str())));
        let federation = dir.join("federation.toml");
        std::fs::write(&federation, toml::to_string(&config).unwrap()).unwrap();
        let mut env = Vec::new();
        for s in fed.sites() {
            let p = prefix(s.id().as_str());
            match s.core_credentials() {
                Credentials::CloudStack {
                    api_key,
                    secret_key,
                } => {
                    env.push((format!("{p}_API_KEY"), api_key));
                    env.push((
                        format!("{p}_SECRET_KEY"),
                        secret_key.expose_secret().to_owned(),
                    ));
                }
                Credentials::OpenNebula { user, password } => env.push((
                    format!("{p}_AUTH"),
                    format!("{user}:{}", password.expose_secret()),
                )),
                Credentials::Ec2 {
                    access_key_id,
                    secret_access_key,
                    ..
                } => {
                    env.push((format!("{p}_ACCESS_KEY_ID"), access_key_id));
                    env.push((
                        format!("{p}_SECRET_ACCESS_KEY"),
                        secret_access_key.expose_secret().to_owned(),
                    ));
                }
                other => panic!("unexpected credentials {other:?}"),
            }
        }
        Self {
            fed: Some(fed),
            rt,
            federation,
            env,
        }
    }

    fn resources(&self) -> Vec<ResourceRecord> {
        self.fed.as_ref().unwrap().resources()
    }

    /// Alive resources of `kind`.
    fn alive(&self, kind: ResourceKind) -> Vec<ResourceRecord> {
        self.resources()
            .into_iter()
            .filter(|r| r.kind == kind && r.is_alive())
            .collect()
    }

    /// Runs the CLI (`--json`) to its end: exit code, stdout as JSON, stdout and stderr text.
    fn cli(&self, state: &Path, args: &[&str]) -> (i32, Value, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_intercloud"))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .arg("--federation")
            .arg(&self.federation)
            .arg("--state-dir")
            .arg(state)
            .arg("--json")
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let doc = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        (
            out.status.code().unwrap_or(-1),
            doc,
            format!("{stdout}\n{stderr}"),
        )
    }
}

const VPN_KINDS: [ResourceKind; 5] = [
    ResourceKind::VpnGateway,
    ResourceKind::CustomerGateway,
    ResourceKind::VpnConnection,
    ResourceKind::RemoteAccessVpn,
    ResourceKind::VpnUser,
];

/// The seed federation without site `gone` and its links.
fn seed_without(gone: &str) -> FederationConfig {
    let mut cfg = FederationConfig::seed_default();
    cfg.sites.retain(|s| s.id.as_str() != gone);
    cfg.links
        .retain(|l| l.between.iter().all(|s| s.as_str() != gone));
    cfg
}

fn cluster(name: &str, fabric: &str, min_sites: u32, workers: u32) -> String {
    format!(
        r#"name = "{name}"
profile = "hadoop"

[[group]]
role = "master"
count = 1
level = "S"

[[group]]
role = "worker"
count = {workers}
level = "S"
traffic = {{ pattern = "all-to-all", bytes_per_job = 1e9 }}

[spread]
min_sites = {min_sites}

[vpn]
fabric = "{fabric}"
"#
    )
}

/// The files a VM's cloud-init user data writes: path → (permissions, content).
fn written_files(vm: &ResourceRecord) -> BTreeMap<String, (String, String)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let raw = vm.user_data.as_deref().unwrap_or_default();
    let text = String::from_utf8(b64.decode(raw).expect("user data is base64")).unwrap();
    let mut out = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        let Some(path) = l.strip_prefix("  - path: ") else {
            continue;
        };
        let field = |n: usize, key: &str| {
            lines[i + n]
                .trim()
                .strip_prefix(key)
                .unwrap_or_else(|| panic!("{key} after {path}"))
                .trim_matches('"')
                .to_owned()
        };
        let mode = field(1, "permissions: ");
        let content = b64.decode(field(3, "content: ")).unwrap();
        out.insert(
            path.trim_matches('"').to_owned(),
            (mode, String::from_utf8(content).unwrap()),
        );
    }
    if out.contains_key("/etc/intercloud/batch.sh") {
        out.extend(own_part(vm, &out));
    }
    out
}

/// What a VM of a multi-VM create call makes of its call's node templates: its
/// `batch.sh` run with the real `sh` under a scratch root as VM `index` (its index
/// tag), giving its own files and its own commands (`/etc/intercloud/run.sh`).
fn own_part(
    vm: &ResourceRecord,
    files: &BTreeMap<String, (String, String)>,
) -> BTreeMap<String, (String, String)> {
    use std::os::unix::fs::PermissionsExt as _;
    let root = tempfile::tempdir().unwrap();
    for (path, (mode, content)) in files {
        let p = root.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        let mode = u32::from_str_radix(mode, 8).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    // as batch.sh finds it on the VM: the index tag, or the `-INDEX` end of its name
    let index = vm
        .tags
        .get(intercloud_core::TAG_INDEX)
        .cloned()
        .or_else(|| vm.name.rsplit_once('-').map(|(_, i)| i.to_owned()))
        .expect("an index tag or a KEY-INDEX name");
    let out = Command::new("sh")
        .arg(root.path().join("etc/intercloud/batch.sh"))
        .env("IC_ROOT", root.path())
        .env("IC_INDEX", index)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut own = BTreeMap::new();
    let mut dirs = vec![root.path().to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            let rel = format!("/{}", p.strip_prefix(root.path()).unwrap().display());
            if !files.contains_key(&rel) {
                let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
                let text = std::fs::read_to_string(&p).unwrap();
                own.insert(rel, (format!("{mode:04o}"), text));
            }
        }
    }
    own
}

/// The decoded user data of the alive VMs of `site`, with each node's own files and
/// run script (`/etc/intercloud/run.sh`, from its call's templates) decoded too.
fn site_texts(sim: &LiveSim, site: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    sim.alive(ResourceKind::Vm)
        .iter()
        .filter(|v| v.site.as_str() == site)
        .map(|v| {
            let raw = v.user_data.as_deref().unwrap_or_default();
            let mut text = String::from_utf8(b64.decode(raw).unwrap()).unwrap();
            for (_, (_, content)) in written_files(v) {
                text.push_str(&content);
            }
            text
        })
        .collect()
}

/// The VMs of `site` that are alive, with the files their user data writes.
fn site_files(sim: &LiveSim, site: &str) -> Vec<BTreeMap<String, (String, String)>> {
    sim.alive(ResourceKind::Vm)
        .iter()
        .filter(|v| v.site.as_str() == site)
        .map(written_files)
        .collect()
}

/// The file whose path ends with `suffix` among `files` (a node's own file, or the
/// template copy `/etc/intercloud/tpl/T/root/…` of a call's user data).
fn find<'a>(
    files: &'a BTreeMap<String, (String, String)>,
    suffix: &str,
) -> Option<&'a (String, String)> {
    files
        .iter()
        .find(|(p, _)| p.ends_with(suffix))
        .map(|(_, v)| v)
}

/// Asserts that every node `up` reports on one of `sites` holds its overlay address as
/// its VM's private address, inside one of `cidrs` (taken from `config`, shown when not).
fn assert_on_guest_network_within(up: &Value, sites: &[&str], cidrs: &[&str], config: &str) {
    for n in up["nodes"].as_array().unwrap() {
        if !sites.iter().any(|s| n["site"] == *s) {
            continue;
        }
        let ip = n["overlay_ip"].as_str().unwrap();
        assert_eq!(n["private_ip"], ip, "{n}");
        assert!(
            cidrs.iter().any(|cidr| covers(cidr, ip)),
            "none of {cidrs:?} covers {ip}: {config}"
        );
    }
}

/// Whether IPv4 `cidr` holds `ip`.
fn covers(cidr: &str, ip: &str) -> bool {
    match (cidr.parse::<Ipv4Net>(), ip.parse::<Ipv4Addr>()) {
        (Ok(net), Ok(ip)) => net.contains(&ip),
        _ => false,
    }
}

fn hex_secret(conf: &str) -> String {
    let hex = conf
        .lines()
        .find_map(|l| l.trim().strip_prefix("secret = 0x"))
        .expect("a secret line");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    String::from_utf8(bytes).unwrap()
}

fn down_leaves_nothing(sim: &LiveSim, state: &Path, name: &str) {
    let (code, down, out) = sim.cli(state, &["down", "-c", name]);
    assert_eq!(code, 0, "down: {out}");
    assert_eq!(down["remaining"], 0, "{down}");
    assert!(sim.alive(ResourceKind::Vm).is_empty(), "VMs left");
    for kind in VPN_KINDS {
        assert!(
            sim.alive(kind).is_empty(),
            "{kind:?} left: {:?}",
            sim.alive(kind)
        );
    }
    let made: usize = VPN_KINDS
        .iter()
        .map(|k| sim.resources().iter().filter(|r| r.kind == *k).count())
        .sum();
    assert!(made > 0, "the deployment did create VPN resources");
}

#[test]
fn ipsec_across_cloudstack_ec2_and_opennebula() {
    let dir = tempfile::tempdir().unwrap();
    let sim = LiveSim::start(dir.path(), FederationConfig::seed_default());
    let state = dir.path().join("state");
    let file = dir.path().join("cluster.toml");
    std::fs::write(&file, cluster("ipsec-demo", "ipsec", 3, 5)).unwrap();
    let file = file.to_str().unwrap();

    let (code, up, up_out) = sim.cli(&state, &["up", "-f", file]);
    assert_eq!(code, 0, "up: {up_out}");
    assert_eq!(up["result"], "ok", "{up}");
    let links: Vec<String> = up["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.to_string())
        .collect();
    assert_eq!(links.len(), 3, "three sites, three links: {up}");
    let joined = links.join(" ");
    // CloudStack and EC2 link their native gateways; OpenNebula has a strongSwan VM.
    assert!(
        joined.contains("native@hokkaido") && joined.contains("native@tokyo"),
        "{joined}"
    );
    assert_eq!(joined.matches("strongswan=").count(), 2, "{joined}");
    for n in up["nodes"].as_array().unwrap() {
        assert_eq!(n["state"], "running", "{n}");
        // A native gateway routes only its cloud's guest network, outside the overlay
        // CIDR: there a node's overlay address is its VM's own (checked with nii's
        // selectors below).
        let native = matches!(n["site"].as_str().unwrap(), "hokkaido" | "tokyo");
        let overlay = n["overlay_ip"].as_str().unwrap();
        assert_eq!(overlay.starts_with("10.77."), !native, "{n}");
    }

    // The simulator holds the native pieces: one gateway per native site, customer
    // gateways and connections on both.
    let gws = sim.alive(ResourceKind::VpnGateway);
    let mut gw_sites: Vec<&str> = gws.iter().map(|g| g.site.as_str()).collect();
    gw_sites.sort_unstable();
    assert_eq!(gw_sites, ["hokkaido", "tokyo"]);
    assert_eq!(sim.alive(ResourceKind::VpnConnection).len(), 4);

    // Only OpenNebula's nodes carry a strongSwan gateway configuration, facing both
    // native gateways, its PSKs only in a mode-0600 file.
    for site in ["hokkaido", "tokyo"] {
        for files in site_files(&sim, site) {
            assert!(
                find(&files, "swanctl/conf.d/intercloud.conf").is_none(),
                "{site}"
            );
        }
    }
    let nii = site_files(&sim, "nii");
    let with_swan: Vec<&(String, String)> = nii
        .iter()
        .filter_map(|f| find(f, "/etc/swanctl/conf.d/intercloud.conf"))
        .collect();
    assert!(!with_swan.is_empty(), "nii's gateway node has swanctl.conf");
    let (mode, conf) = with_swan[0];
    assert_eq!(mode, "0600");
    assert_eq!(conf.matches("remote_addrs = ").count(), 2, "{conf}");
    assert!(
        conf.contains("remote_addrs = 52."),
        "EC2's tunnel address: {conf}"
    );
    assert!(
        conf.contains("remote_addrs = 203.0."),
        "CloudStack's gateway: {conf}"
    );
    let psk = hex_secret(conf);
    assert!(psk.len() >= 8);
    // Its traffic selectors name the native sites' guest networks, which hold
    // those sites' nodes.
    let remote_ts: Vec<&str> = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("remote_ts = "))
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .collect();
    assert_on_guest_network_within(&up, &["hokkaido", "tokyo"], &remote_ts, conf);
    // nii's nodes route the other sites' subnets through its gateway node.
    let nii_text = site_texts(&sim, "nii").join("\n");
    assert!(
        nii_text.contains("ip addr replace 10.77."),
        "overlay address on ic0"
    );
    let on_nii = up["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["site"] == "nii")
        .count();
    assert!(on_nii > 1, "the cheapest site gets members: {up}");
    assert!(
        nii_text.contains(" onlink src 10.77."),
        "member routes via the gateway"
    );
    for site in ["hokkaido", "tokyo"] {
        let text = site_texts(&sim, site).join("\n");
        assert!(!text.contains("onlink"), "{site}'s cloud router routes");
        assert!(
            !text.contains("dev ic0"),
            "{site}'s nodes hold their address on their NIC"
        );
    }

    let (code, status, out) = sim.cli(&state, &["status", "-c", "ipsec-demo"]);
    assert_eq!(code, 0, "status: {out}");
    assert_eq!(status["links"].as_array().unwrap().len(), 3, "{status}");
    let (code, _, inventory) = sim.cli(&state, &["inventory", "-c", "ipsec-demo"]);
    assert_eq!(code, 0, "{inventory}");
    assert!(
        inventory.contains("[worker]") && inventory.contains("10.77."),
        "{inventory}"
    );

    // Secrets stay out of what the CLI prints and journals; the saved gateway
    // configurations are the owner's only.
    let cluster_dir = state.join("ipsec-demo");
    let journal = std::fs::read_to_string(cluster_dir.join("journal.log")).unwrap();
    for text in [&up_out, &out, &journal] {
        assert!(!text.contains(&psk), "a PSK leaked");
    }
    let saved = cluster_dir.join("fabric.json");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777,
        0o600
    );

    down_leaves_nothing(&sim, &state, "ipsec-demo");
}

#[test]
fn l2tp_from_opennebula_into_cloudstack() {
    let dir = tempfile::tempdir().unwrap();
    let sim = LiveSim::start(dir.path(), seed_without("tokyo"));
    let state = dir.path().join("state");
    let file = dir.path().join("cluster.toml");
    std::fs::write(&file, cluster("l2tp-demo", "l2tp", 2, 3)).unwrap();
    let file = file.to_str().unwrap();

    let (code, up, up_out) = sim.cli(&state, &["up", "-f", file]);
    assert_eq!(code, 0, "up: {up_out}");
    assert_eq!(up["result"], "ok", "{up}");
    let links = up["links"].as_array().unwrap();
    assert_eq!(links.len(), 1, "{up}");
    assert!(
        links[0].to_string().contains("native@hokkaido=l2tp:"),
        "{links:?}"
    );
    // CloudStack runs the remote-access VPN with one user for nii.
    let ra = sim.alive(ResourceKind::RemoteAccessVpn);
    assert_eq!(ra.len(), 1);
    assert_eq!(ra[0].site.as_str(), "hokkaido");
    let users = sim.alive(ResourceKind::VpnUser);
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].name, "ic-l2tp-demo-nii");

    // nii's gateway node dials it: xl2tpd, pppd (user, password: 0600) and the IPsec
    // PSK (0600); CloudStack's nodes need nothing (its router is the server).
    for files in site_files(&sim, "hokkaido") {
        assert!(find(&files, "xl2tpd.conf").is_none());
    }
    let nii = site_files(&sim, "nii");
    let gateway = nii
        .iter()
        .find(|f| find(f, "/etc/xl2tpd/xl2tpd.conf").is_some())
        .expect("nii's gateway node has xl2tpd.conf");
    let (_, xl2tpd) = find(gateway, "/etc/xl2tpd/xl2tpd.conf").unwrap();
    assert!(xl2tpd.contains("[lac ic-hokkaido]"), "{xl2tpd}");
    assert!(xl2tpd.contains("lns = 203.0."), "{xl2tpd}");
    let (mode, ppp) = find(gateway, "/etc/ppp/options.l2tpd.ic-hokkaido").unwrap();
    assert_eq!(mode, "0600");
    assert!(ppp.contains("name ic-l2tp-demo-nii"), "{ppp}");
    let password = ppp
        .lines()
        .find_map(|l| l.strip_prefix("password "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let (mode, swan) = find(gateway, "/etc/swanctl/conf.d/intercloud-ic-hokkaido.conf").unwrap();
    assert_eq!(mode, "0600");
    let psk = hex_secret(swan);
    let (_, up_script) = find(gateway, "/etc/ppp/ip-up.d/intercloud-ic-hokkaido").unwrap();
    // The tunnel carries CloudStack's guest network, where its nodes hold the
    // addresses their VMs were created with.
    let routed: Vec<&str> = up_script
        .lines()
        .filter_map(|l| l.strip_prefix("ip route replace "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_on_guest_network_within(&up, &["hokkaido"], &routed, up_script);
    let nii_text = site_texts(&sim, "nii").join("\n");
    assert!(
        nii_text.contains("-o ppp+ -j MASQUERADE"),
        "the site's members go out behind the client's PPP address"
    );

    let (code, status, out) = sim.cli(&state, &["status", "-c", "l2tp-demo"]);
    assert_eq!(code, 0, "status: {out}");
    assert_eq!(status["links"].as_array().unwrap().len(), 1);
    let journal = std::fs::read_to_string(state.join("l2tp-demo").join("journal.log")).unwrap();
    for secret in [&password, &psk] {
        for text in [&up_out, &out, &journal] {
            assert!(!text.contains(secret.as_str()), "a secret leaked");
        }
    }

    // Repair in a new process: nii's gateway VM replaced behind intercloud's back
    // boots again with the L2TP client (saved by `up`).
    let victim = up["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["site"] == "nii")
        .unwrap()
        .clone();
    let p = sim
        .fed
        .as_ref()
        .unwrap()
        .site("nii")
        .unwrap()
        .core_credentials();
    let fedfile = intercloud_core::config::FederationConfig::load(&sim.federation).unwrap();
    let cfg = fedfile.site(&"nii".into()).unwrap();
    let provider = intercloud_opennebula::OpenNebulaBuilder::new(cfg.id.clone())
        .endpoint(cfg.endpoint.clone())
        .credentials(p)
        .build()
        .unwrap();
    use intercloud_core::CloudProvider as _;
    sim.rt
        .block_on(provider.delete_vm(&intercloud_core::VmId::new(
            victim["vm_id"].as_str().unwrap(),
        )))
        .unwrap();
    let before: Vec<String> = sim
        .alive(ResourceKind::Vm)
        .into_iter()
        .map(|v| v.id)
        .collect();
    let (code, repaired, out) = sim.cli(&state, &["repair", "-c", "l2tp-demo"]);
    assert_eq!(code, 0, "repair: {out}");
    assert!(
        repaired["recreated"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == &victim["name"]),
        "{repaired}"
    );
    let fresh: Vec<ResourceRecord> = sim
        .alive(ResourceKind::Vm)
        .into_iter()
        .filter(|v| !before.contains(&v.id))
        .collect();
    assert_eq!(fresh.len(), 1, "one VM recreated");
    let files = written_files(&fresh[0]);
    let (mode, ppp_again) = files
        .get("/etc/ppp/options.l2tpd.ic-hokkaido")
        .expect("the recreated gateway still dials CloudStack");
    assert_eq!(mode, "0600");
    assert_eq!(ppp_again, ppp, "with the same user and password");
    assert!(files.contains_key("/etc/xl2tpd/xl2tpd.conf"));

    down_leaves_nothing(&sim, &state, "l2tp-demo");
}

#[test]
fn impossible_wishes_are_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let sim = LiveSim::start(dir.path(), seed_without("hokkaido"));
    let state = dir.path().join("state");
    let file = dir.path().join("cluster.toml");
    std::fs::write(&file, cluster("no-ra", "l2tp", 2, 2)).unwrap();
    let (code, _, out) = sim.cli(&state, &["up", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("nii") && out.contains("tokyo") && out.contains("CloudStack"),
        "{out}"
    );
    assert!(
        out.contains("`ipsec`") || out.contains("`wireguard`"),
        "{out}"
    );
    assert!(sim.resources().is_empty(), "nothing was created");
}

/// Kills a child when dropped, so a failing assertion leaves no `up` behind.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `up -f file` and SIGKILLs it as soon as its journal holds a `record`;
/// returns the journal's text at the kill.
fn up_killed_at(sim: &LiveSim, state: &Path, file: &str, cluster: &str, record: &str) -> String {
    up_killed_at_after(sim, state, file, cluster, record, || {})
}

/// As [`up_killed_at`], running `once_started` as soon as the deployment has started
/// (its first journal record: every site passed the check before creating).
fn up_killed_at_after(
    sim: &LiveSim,
    state: &Path,
    file: &str,
    cluster: &str,
    record: &str,
    once_started: impl FnOnce(),
) -> String {
    let mut once_started = Some(once_started);
    let child = Command::new(env!("CARGO_BIN_EXE_intercloud"))
        .envs(sim.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .arg("--federation")
        .arg(&sim.federation)
        .arg("--state-dir")
        .arg(state)
        .args(["--json", "up", "-f", file])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("intercloud up starts");
    let mut up = Reaper(child);
    let journal = state.join(cluster).join("journal.log");
    let needle = format!("\"record\":\"{record}\"");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&journal).unwrap_or_default();
        if text.contains("\"record\":\"started\"") {
            if let Some(f) = once_started.take() {
                f();
            }
        }
        if text.contains(&needle) {
            assert!(
                up.0.try_wait().unwrap().is_none(),
                "`up` ended before the kill"
            );
            up.0.kill().unwrap();
            up.0.wait().unwrap();
            return std::fs::read_to_string(&journal).unwrap();
        }
        assert!(
            up.0.try_wait().unwrap().is_none(),
            "`up` ended before journaling {record}"
        );
        assert!(std::time::Instant::now() < deadline, "no {record} in 60 s");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// After `resume`: nii's gateway VM dials hokkaido with the one VPN user there, its
/// password and PSK only in mode-0600 files and nowhere in `printed` or the journal.
fn assert_resumed_gateway(sim: &LiveSim, state: &Path, cluster: &str, printed: &str) {
    let users = sim.alive(ResourceKind::VpnUser);
    assert_eq!(users.len(), 1, "one VPN user: {users:?}");
    assert_eq!(users[0].name, format!("ic-{cluster}-nii"));
    let nii = site_files(sim, "nii");
    let gateway = nii
        .iter()
        .find(|f| find(f, "/etc/xl2tpd/xl2tpd.conf").is_some())
        .expect("nii's gateway VM carries the L2TP client");
    let (mode, ppp) = find(gateway, "/etc/ppp/options.l2tpd.ic-hokkaido").unwrap();
    assert_eq!(mode, "0600");
    assert!(ppp.contains(&format!("name ic-{cluster}-nii")), "{ppp}");
    let password = ppp
        .lines()
        .find_map(|l| l.strip_prefix("password "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let (mode, swan) = find(gateway, "/etc/swanctl/conf.d/intercloud-ic-hokkaido.conf").unwrap();
    assert_eq!(mode, "0600");
    let psk = hex_secret(swan);
    let dir = state.join(cluster);
    let journal = std::fs::read_to_string(dir.join("journal.log")).unwrap();
    for secret in [&password, &psk] {
        assert!(secret.len() >= 8);
        for text in [printed, &journal] {
            assert!(!text.contains(secret.as_str()), "a secret leaked");
        }
    }
    // What a later repair needs is saved, for the owner only, with this password.
    let saved = dir.join("fabric.json");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let saved = std::fs::read_to_string(saved).unwrap();
    assert!(
        saved.contains(&password.replace('"', "\\\"")),
        "fabric.json is current"
    );
    assert!(!dir.join("fabric.json.tmp").exists());
}

#[test]
fn l2tp_up_killed_after_its_link_is_resumed_and_torn_down() {
    let dir = tempfile::tempdir().unwrap();
    let sim = LiveSim::start(dir.path(), seed_without("tokyo"));
    let state = dir.path().join("state");
    use std::os::unix::fs::PermissionsExt as _;

    // 1. Killed while its VMs are being created: the gateway configurations were
    //    saved (0600) before the first create call.
    let file = dir.path().join("a.toml");
    std::fs::write(&file, cluster("l2tp-kill-a", "l2tp", 2, 3)).unwrap();
    let journal = up_killed_at(
        &sim,
        &state,
        file.to_str().unwrap(),
        "l2tp-kill-a",
        "create_intent",
    );
    assert!(journal.contains("\"record\":\"link_connected\""));
    let saved = state.join("l2tp-kill-a").join("fabric.json");
    assert_eq!(
        std::fs::metadata(&saved)
            .expect("fabric.json exists before any VM")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let (code, resumed, out) = sim.cli(&state, &["resume", "-c", "l2tp-kill-a"]);
    assert_eq!(code, 0, "resume: {out}");
    assert_eq!(resumed["result"], "ok", "{resumed}");
    assert_eq!(resumed["nodes"].as_array().unwrap().len(), 4, "{resumed}");
    assert_resumed_gateway(&sim, &state, "l2tp-kill-a", &out);
    down_leaves_nothing(&sim, &state, "l2tp-kill-a");

    // 2. Killed right after its link was made, before the gateway configurations
    //    reached the disk (simulated by removing them when no VM was asked for
    //    yet): resume makes the L2TP link again, with a password it knows.
    let file = dir.path().join("b.toml");
    std::fs::write(&file, cluster("l2tp-kill-b", "l2tp", 2, 3)).unwrap();
    let journal = up_killed_at(
        &sim,
        &state,
        file.to_str().unwrap(),
        "l2tp-kill-b",
        "link_connected",
    );
    let vms_asked = journal.contains("\"record\":\"create_intent\"");
    eprintln!(
        "round 2: the kill landed {}",
        if vms_asked {
            "after the save (a create call was journaled)"
        } else {
            "before any create call"
        }
    );
    if !vms_asked {
        std::fs::remove_file(state.join("l2tp-kill-b").join("fabric.json")).ok();
        assert!(
            sim.alive(ResourceKind::Vm).is_empty(),
            "no VM before the save"
        );
    }
    let (code, resumed, out) = sim.cli(&state, &["resume", "-c", "l2tp-kill-b"]);
    assert_eq!(code, 0, "resume: {out}");
    assert_eq!(
        out.contains("L2TP/IPsec link hokkaido <-> nii is made again"),
        !vms_asked,
        "{out}"
    );
    assert_eq!(resumed["result"], "ok", "{resumed}");
    assert_eq!(resumed["links"].as_array().unwrap().len(), 1, "{resumed}");
    assert_resumed_gateway(&sim, &state, "l2tp-kill-b", &out);
    down_leaves_nothing(&sim, &state, "l2tp-kill-b");

    // 3. Killed inside the link call, after CloudStack made the VPN user but before
    //    the journal had the link. Simulated: nii (the L2TP client side, which the
    //    overlay never calls) is down, so its gateway VM cannot exist; `up` is
    //    killed once the link is journaled, and the link's record is cut out of the
    //    journal (each line stands alone), leaving its intent unsettled.
    //    nii goes down once `up` has checked every site (a site down at the start
    //    stops `up` before anything is made).
    let nii = sim.fed.as_ref().unwrap().site("nii").unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, cluster("l2tp-kill-c", "l2tp", 2, 3)).unwrap();
    let journal = up_killed_at_after(
        &sim,
        &state,
        file.to_str().unwrap(),
        "l2tp-kill-c",
        "link_connected",
        || {
            nii.set_faults(intercloud_sim::Faults {
                outage: Some([0.0, 1e12]),
                ..Default::default()
            })
        },
    );
    nii.set_faults(intercloud_sim::Faults::default());
    let cluster_dir = state.join("l2tp-kill-c");
    let cut: Vec<&str> = journal
        .lines()
        .filter(|l| !l.contains("\"record\":\"link_connected\""))
        .collect();
    assert!(cut.iter().any(|l| l.contains("\"record\":\"link_intent\"")));
    std::fs::write(cluster_dir.join("journal.log"), cut.join("\n") + "\n").unwrap();
    std::fs::remove_file(cluster_dir.join("fabric.json")).ok();
    let vms: Vec<ResourceRecord> = sim
        .alive(ResourceKind::Vm)
        .into_iter()
        .filter(|v| v.site.as_str() == "nii")
        .collect();
    assert!(vms.is_empty(), "nii was down: {vms:?}");
    assert_eq!(
        sim.alive(ResourceKind::VpnUser).len(),
        1,
        "the user is left"
    );
    let (code, resumed, out) = sim.cli(&state, &["resume", "-c", "l2tp-kill-c"]);
    assert_eq!(code, 0, "resume: {out}");
    assert_eq!(resumed["result"], "ok", "{resumed}");
    assert!(
        out.contains("L2TP/IPsec link hokkaido <-> nii was being made"),
        "{out}"
    );
    assert_resumed_gateway(&sim, &state, "l2tp-kill-c", &out);
    down_leaves_nothing(&sim, &state, "l2tp-kill-c");
}
