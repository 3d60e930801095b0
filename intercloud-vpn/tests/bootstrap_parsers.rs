//! The cluster files a node boots with, read by the tools that read them in
//! production: Slurm's controller, Open MPI's `mpirun`, MPICH's Hydra, glibc's
//! `/etc/hosts` resolver, libxml2 (`xmllint`) and `sh` for Hadoop's rack script.
//!
//! The files come out of the real path: a three-site plan ([`Plan::build`]), its
//! WireGuard overlay ([`wireguard_overlay`]) and the CLI's [`ClusterConfigurer`]
//! rendering each create call's cloud-init; the tests apply each call's user data as
//! a VM does — its compact programs run with the real `sh` (`common::expand`) — and
//! hand the files written to the tools.
//!
//! - `slurm.conf`: `slurmctld -D` runs on it (as the head node, in a private
//!   network/UTS/mount/PID namespace, with the directories of a fresh Debian node and
//!   its own `munged`), then `scontrol` and `sinfo` report the nodes, CPUs, features and
//!   partition it understood.
//! - MPI hostfiles: Open MPI's `mpirun --display-map --do-not-launch` maps one rank
//!   per slot (nothing is launched; ssh is replaced by `false`, and the namespace has
//!   only `lo`) and refuses one rank more; MPICH's `mpiexec.hydra -launcher manual`
//!   (which starts nothing) shows one proxy per host with its slots as process count.
//! - hosts block: the user data's own merge command runs twice on a Debian-like
//!   `/etc/hosts` in a private mount namespace, then `getent hosts` (glibc's files
//!   backend, the resolver Slurm, MPI and Hadoop use) resolves every name. A check in
//!   Rust that runs everywhere validates each line's fields (IPv4 address, RFC 1123
//!   names).
//! - Hadoop: Hadoop itself is not packaged for Debian (it needs a JVM and Apache's
//!   tarball), so `core-site.xml` is read by a real XML parser (`xmllint`), checked for
//!   the property names Hadoop reads (`fs.defaultFS`, `net.topology.script.file.name`),
//!   and the rack script is run with `sh` the way Hadoop's `ScriptBasedMapping` runs it.
//!
//! The tools come from `scripts/bootstrap-deps.sh` (as root). Tests that need root or
//! a missing tool skip loudly, and fail instead with `INTERCLOUD_REQUIRE_NETNS=1`.
//! Every daemon lives in a PID namespace whose init is killed by [`Sandbox`]'s `Drop`
//! (also when a test panics); every file lives in a [`tempfile::TempDir`].

mod common;

use common::cloud_config::parse_cloud_config;
use common::expand::expand;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use intercloud_core::deploy::{Batch, ConfigContext, NodeConfigurer, NodePlan, Plan, PlanOptions};
use intercloud_core::{
    ClusterRequest, LevelOffering, Link, Middleware, NodeGroup, PlacementCounts, Profile,
    ServiceLevel, Site, SiteId, Spread, Topology, VpnWish,
};
use intercloud_vpn::{overlay_addresses, wireguard_overlay, ClusterConfigurer};

// ---------------------------------------------------------------------------------
// The cluster: 3 sites, a master (L), five workers (M) over the three sites, one
// big-memory node (XL) on EC2.

const CLUSTER: &str = "Climate-Run";

/// A site as one word in Slurm features and Hadoop racks, as the test expects it.
fn site_word(site: &SiteId) -> &'static str {
    match site.as_str() {
        "hokkaido" => "hokkaido",
        "NII Kyoto" => "NII_Kyoto",
        "aws-ap-northeast-1" => "aws-ap-northeast-1",
        other => panic!("no expectation for site {other}"),
    }
}

/// Slots of a level as the test expects them (independent of `slots_for_level`).
fn expected_slots(level: &str) -> u32 {
    match level {
        "S" => 1,
        "M" => 2,
        "L" => 4,
        "XL" => 8,
        other => panic!("no expectation for level {other}"),
    }
}

fn site(id: &str, middleware: Middleware, levels: &[&str]) -> Site {
    Site {
        id: SiteId::new(id),
        middleware,
        endpoint: "http://127.0.0.1:9/api".into(),
        zone: None,
        levels: levels
            .iter()
            .map(|l| {
                (
                    ServiceLevel::new(*l),
                    LevelOffering {
                        offering: format!("offering-{l}"),
                        image: None,
                        price_per_hour: 0.1,
                        capacity: 100,
                    },
                )
            })
            .collect(),
        rate_limit: None,
        max_concurrency: None,
    }
}

fn group(role: &str, count: u32, level: &str) -> NodeGroup {
    NodeGroup {
        role: role.into(),
        count,
        level: ServiceLevel::new(level),
        colocate: false,
        traffic: None,
        sites: None,
        max_rtt_ms: None,
    }
}

/// The plan (with overlay addresses) and one create call's user data per batch.
struct Rendered {
    plan: Plan,
    /// `write_files` path → (permissions, content), the same in every batch.
    files: BTreeMap<String, (String, String)>,
    /// `runcmd` entries of the first batch, as the `sh -c` argument.
    commands: Vec<String>,
}

impl Rendered {
    /// The CPU slots of every node, as the levels' expectations say.
    fn total_slots(&self) -> u32 {
        self.plan
            .nodes
            .iter()
            .map(|n| expected_slots(n.level.as_str()))
            .sum()
    }
}

/// `profile` rendered and its files laid out under `DIR/root` of a fresh temporary
/// directory (kept alive by the returned handle).
fn laid_out(profile: Profile) -> (Rendered, tempfile::TempDir, std::path::PathBuf) {
    let r = render(profile);
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    lay_out(&root, &r.files);
    (r, dir, root)
}

fn render(profile: Profile) -> Rendered {
    // Site ids are free text in a federation file: one holds a space.
    let sites = ["hokkaido", "NII Kyoto", "aws-ap-northeast-1"];
    let topology = Topology::new(
        vec![
            site(sites[0], Middleware::CloudStack, &["S", "M", "L"]),
            site(sites[1], Middleware::OpenNebula, &["S", "M"]),
            site(sites[2], Middleware::Ec2, &["M", "L", "XL"]),
        ],
        vec![
            link(sites[0], sites[1]),
            link(sites[0], sites[2]),
            link(sites[1], sites[2]),
        ],
    );
    let request = ClusterRequest {
        name: CLUSTER.into(),
        profile,
        groups: vec![
            group("master", 1, "L"),
            group("worker", 5, "M"),
            group("bigmem", 1, "XL"),
        ],
        spread: Spread::default(),
        vpn: VpnWish::default(),
    };
    let mut counts: PlacementCounts = BTreeMap::new();
    for (role, site, n) in [
        ("master", sites[0], 1),
        ("worker", sites[0], 1),
        ("worker", sites[1], 2),
        ("worker", sites[2], 2),
        ("bigmem", sites[2], 1),
    ] {
        counts
            .entry(role.to_owned())
            .or_default()
            .insert(SiteId::new(site), n);
    }
    let mut opts = PlanOptions {
        deployment_id: Some("d-parsers".into()),
        ..PlanOptions::default()
    };
    let caps = BTreeMap::new();
    let draft = Plan::build(&request, &topology, &counts, &caps, opts.clone()).expect("draft");
    // TEST-NET-3 gateway addresses: rendered into WireGuard configs, never contacted.
    let gateways: BTreeMap<SiteId, String> = sites
        .iter()
        .enumerate()
        .map(|(i, s)| (SiteId::new(*s), format!("203.0.113.{}", i + 1)))
        .collect();
    let wg = wireguard_overlay(&request, &draft, |s| gateways.get(s).cloned())
        .expect("overlay")
        .expect("three sites have an overlay");
    opts.vpn = true;
    opts.overlay = Some(overlay_addresses(&wg, &draft));
    let plan = Plan::build(&request, &topology, &counts, &caps, opts).expect("plan");
    let limits = sites.iter().map(|s| (SiteId::new(*s), 32 * 1024)).collect();
    let configurer = ClusterConfigurer::new(profile, limits, Some(wg));
    let endpoints = BTreeMap::new();
    let ctx = ConfigContext {
        cluster: &plan.cluster,
        nodes: &plan.nodes,
        endpoints: &endpoints,
        fabric: None,
    };
    let mut files: Option<BTreeMap<String, (String, String)>> = None;
    let mut commands = Vec::new();
    for batch in &plan.batches {
        let ud = user_data(&configurer, &ctx, batch);
        let (_, batch_commands) = parse_cloud_config(&ud);
        let scratch = tempfile::tempdir().expect("tempdir");
        // Profile files are the cluster's view: every create call writes the same.
        let profile_files: BTreeMap<_, _> = expand(&ud, 0, scratch.path(), false)
            .into_iter()
            .filter(|(p, _)| {
                let internal = p.starts_with("/etc/intercloud/tpl/")
                    || (p.starts_with("/etc/intercloud/") && p.ends_with(".sh"));
                !(internal || p.contains("wireguard"))
            })
            .collect();
        match &files {
            None => {
                files = Some(profile_files);
                commands = batch_commands;
            }
            Some(first) => assert_eq!(first, &profile_files, "batch {:?}", batch.nodes),
        }
    }
    Rendered {
        plan,
        files: files.expect("the plan has batches"),
        commands,
    }
}

fn link(a: &str, b: &str) -> Link {
    Link {
        between: [SiteId::new(a), SiteId::new(b)],
        rtt_ms: 20.0,
        bandwidth_mbps: 1000.0,
        vpn_overhead: 0.21,
    }
}

fn user_data(c: &ClusterConfigurer, ctx: &ConfigContext<'_>, batch: &Batch) -> String {
    c.user_data(ctx, batch)
        .expect("user data renders")
        .expect("a profile gives user data")
        .0
}

impl Rendered {
    fn file(&self, path: &str) -> &str {
        &self
            .files
            .get(path)
            .unwrap_or_else(|| panic!("no {path} in {:?}", self.files.keys()))
            .1
    }

    fn head(&self) -> &NodePlan {
        let head = &self.plan.nodes[0];
        assert_eq!(head.role, "master", "the plan lists the master first");
        head
    }

    /// The nodes in the order the files list them: by overlay address.
    fn listed(&self) -> Vec<&NodePlan> {
        let mut nodes: Vec<&NodePlan> = self.plan.nodes.iter().collect();
        nodes.sort_by_key(|n| n.overlay_ip.parse::<Ipv4Addr>().expect("IPv4"));
        nodes
    }

    fn workers(&self) -> impl Iterator<Item = &NodePlan> {
        let head = self.head().name.clone();
        self.listed().into_iter().filter(move |n| n.name != head)
    }
}

// ---------------------------------------------------------------------------------
// Prerequisites and the sandbox.

/// Whether `tools` (and root, when `root`) are here (see [`common::prerequisites`]).
fn ready(test: &str, root: bool, tools: &[&str]) -> bool {
    common::prerequisites(test, root, tools, "`scripts/bootstrap-deps.sh` (as root)")
}

/// A shell script running as PID 1 of fresh network (only `lo`), UTS, mount and PID
/// namespaces. Killing `unshare` kills that init (`--kill-child`), and the kernel then
/// kills every process of the namespace: nothing outlives the sandbox.
struct Sandbox {
    child: Child,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the sandboxed script printed, and whether it exited 0.
struct Outcome {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `script` with `sh -eu` in a [`Sandbox`]; output goes to files in `dir` (no
/// pipe can fill up). Panics after `limit`.
fn sandboxed(dir: &Path, script: &str, limit: Duration) -> Outcome {
    let path = dir.join("run.sh");
    std::fs::write(&path, script).expect("write script");
    let out = std::fs::File::create(dir.join("run.out")).expect("stdout file");
    let err = std::fs::File::create(dir.join("run.err")).expect("stderr file");
    let child = Command::new("unshare")
        .args([
            "--net",
            "--uts",
            "--mount",
            "--pid",
            "--fork",
            "--kill-child",
            "sh",
            "-eu",
        ])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("unshare starts");
    let mut sandbox = Sandbox { child };
    let start = Instant::now();
    let status = loop {
        if let Some(s) = sandbox.child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > limit {
            drop(sandbox);
            panic!(
                "sandbox still running after {limit:?}; stderr:\n{}",
                read(&dir.join("run.err"))
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Outcome {
        ok: status.success(),
        stdout: read(&dir.join("run.out")),
        stderr: read(&dir.join("run.err")),
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Writes the rendered `files` under `root` at their absolute paths.
fn lay_out(root: &Path, files: &BTreeMap<String, (String, String)>) {
    for (path, (_, content)) in files {
        let target = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&target, content).expect("write file");
    }
}

/// The value of `key=` in a `scontrol … -o` record (values hold no spaces there).
fn field<'a>(record: &'a str, key: &str) -> Option<&'a str> {
    record
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// The lines after `== name` up to the next `== ` marker.
fn section<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    out.lines()
        .skip_while(|l| *l != format!("== {name}"))
        .skip(1)
        .take_while(|l| !l.starts_with("== "))
        .filter(|l| !l.trim().is_empty())
        .collect()
}

// ---------------------------------------------------------------------------------
// Slurm

#[test]
fn slurm_conf_is_read_by_slurmctld() {
    if !ready(
        "slurm_conf_is_read_by_slurmctld",
        true,
        &[
            "unshare",
            "ip",
            "slurmctld",
            "scontrol",
            "sinfo",
            "munged",
            "hostname",
            "runuser",
        ],
    ) {
        return;
    }
    let (r, dir, _) = laid_out(Profile::Slurm);
    let t = dir.path().display();
    let head = r.head();
    let script = format!(
        r#"
T={t}
# munged and slurmctld run as their own users: they must reach the files under $T.
chmod 0755 $T
hostname {name}
ip link set lo up
ip addr add {ip}/32 dev lo
# A fresh Debian node's directories, private to this mount namespace: /var/spool
# owned by root, /var/lib/slurm/slurmctld owned by slurm (as the package makes it).
mkdir -p $T/run/munge $T/spool $T/lib-slurm/slurmctld $T/lib-munge $T/log-munge $T/key
chown slurm:slurm $T/lib-slurm/slurmctld
chown munge:munge $T/run/munge $T/lib-munge $T/log-munge $T/key
chmod 0700 $T/lib-munge $T/log-munge $T/key
head -c 1024 /dev/urandom > $T/key/munge.key
chown munge:munge $T/key/munge.key
chmod 0400 $T/key/munge.key
mount --bind $T/run /run
mount --bind $T/spool /var/spool
mount --bind $T/lib-slurm /var/lib/slurm
mount --bind $T/lib-munge /var/lib/munge
mount --bind $T/log-munge /var/log/munge
mount --bind $T/root/etc/slurm /etc/slurm
runuser -u munge -- munged --force --key-file=$T/key/munge.key
slurmctld -D > $T/slurmctld.log 2>&1 &
pid=$!
i=0
until scontrol ping 2>/dev/null | grep -q 'is UP'; do
  if ! kill -0 $pid 2>/dev/null; then echo "slurmctld exited" >&2; cat $T/slurmctld.log >&2; exit 3; fi
  i=$((i+1))
  if [ $i -gt 150 ]; then echo "slurmctld not up after 15 s" >&2; cat $T/slurmctld.log >&2; exit 4; fi
  sleep 0.1
done
echo '== nodes'; scontrol show nodes -o
echo '== partitions'; scontrol show partitions -o
echo '== sinfo'; sinfo -N -h -o '%N %c %P %f %T'
echo '== config'; scontrol show config
kill $pid
wait $pid || true
echo '== log'; cat $T/slurmctld.log
"#,
        name = head.name,
        ip = head.overlay_ip,
    );
    let out = sandboxed(dir.path(), &script, Duration::from_secs(30));
    assert!(
        out.ok,
        "slurmctld did not accept the rendered slurm.conf:\n{}\n{}\n--- slurm.conf\n{}",
        out.stderr,
        out.stdout,
        r.file("/etc/slurm/slurm.conf")
    );
    let o = &out.stdout;

    // Every worker is a node with the CPUs of its level and its site as a feature; the
    // head is the controller, not a compute node.
    let nodes = section(o, "nodes");
    let workers: Vec<&NodePlan> = r.workers().collect();
    assert_eq!(nodes.len(), workers.len(), "{o}");
    for w in &workers {
        let rec = nodes
            .iter()
            .find(|l| field(l, "NodeName") == Some(w.name.as_str()))
            .unwrap_or_else(|| panic!("slurmctld knows no node {}:\n{o}", w.name));
        let slots = expected_slots(w.level.as_str()).to_string();
        assert_eq!(field(rec, "CPUTot"), Some(slots.as_str()), "{rec}");
        assert_eq!(field(rec, "NodeAddr"), Some(w.overlay_ip.as_str()), "{rec}");
        let feature = format!("site-{}", site_word(&w.site));
        assert_eq!(
            field(rec, "AvailableFeatures"),
            Some(feature.as_str()),
            "{rec}"
        );
        assert_eq!(field(rec, "Partitions"), Some("all"), "{rec}");
    }
    assert!(!o.contains(&format!("NodeName={} ", head.name)), "{o}");

    // One default partition over all of them, up.
    let parts = section(o, "partitions");
    assert_eq!(parts.len(), 1, "{o}");
    let total: u32 = workers
        .iter()
        .map(|w| expected_slots(w.level.as_str()))
        .sum();
    assert_eq!(field(parts[0], "PartitionName"), Some("all"));
    assert_eq!(field(parts[0], "Default"), Some("YES"));
    assert_eq!(field(parts[0], "State"), Some("UP"));
    assert_eq!(
        field(parts[0], "TotalNodes"),
        Some(workers.len().to_string().as_str())
    );
    assert_eq!(
        field(parts[0], "TotalCPUs"),
        Some(total.to_string().as_str())
    );

    // sinfo's view: node, CPUs, partition (default marked *), feature.
    let mut sinfo: Vec<String> = section(o, "sinfo")
        .iter()
        .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
        .collect();
    sinfo.sort();
    let mut want: Vec<String> = workers
        .iter()
        .map(|w| {
            format!(
                "{} {} all* site-{}",
                w.name,
                expected_slots(w.level.as_str()),
                site_word(&w.site)
            )
        })
        .collect();
    want.sort();
    assert_eq!(sinfo, want, "{o}");

    // The controller settings as slurmctld resolved them.
    let config = section(o, "config");
    let setting = |key: &str| -> String {
        config
            .iter()
            .find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == key).then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no {key} in scontrol show config:\n{o}"))
    };
    // What the file says is what Slurm uses (it would lowercase a mixed-case name).
    let rendered_name = r
        .file("/etc/slurm/slurm.conf")
        .lines()
        .find_map(|l| l.strip_prefix("ClusterName="))
        .expect("a ClusterName line");
    assert_eq!(setting("ClusterName"), rendered_name);
    assert_eq!(rendered_name, CLUSTER.to_lowercase());
    assert_eq!(
        setting("SlurmctldHost[0]"),
        format!("{}({})", head.name, head.overlay_ip)
    );
    assert_eq!(setting("StateSaveLocation"), "/var/lib/slurm/slurmctld");
    assert_eq!(setting("SelectTypeParameters"), "CR_CORE");
    assert_eq!(setting("AuthType"), "auth/munge");
    let log = section(o, "log").join("\n");
    assert!(!log.contains("fatal"), "{log}");
}

// ---------------------------------------------------------------------------------
// MPI

#[test]
fn mpi_hostfile_is_read_by_open_mpi() {
    if !ready(
        "mpi_hostfile_is_read_by_open_mpi",
        true,
        &["unshare", "ip", "hostname", "mpirun.openmpi"],
    ) {
        return;
    }
    let (r, dir, root) = laid_out(Profile::Mpi);
    let hostfile = root.join("etc/intercloud/mpi-hostfile");
    let total = r.total_slots();
    // `--do-not-launch` maps the job and stops; `plm_rsh_agent=false` makes any remote
    // launch fail instead of calling ssh, and the namespace has only `lo` anyway.
    let mpirun = format!(
        "mpirun.openmpi --allow-run-as-root --hostfile {} --mca plm_rsh_agent false \
         --display-map --do-not-launch",
        hostfile.display()
    );
    let script = format!(
        r#"
hostname {head}
ip link set lo up
echo '== fit'
{mpirun} -np {total} true 2>&1
echo '== over'
# (mpirun reports the refusal but exits 0 under --do-not-launch)
{mpirun} -np {over} true 2>&1 || true
"#,
        head = r.head().name,
        over = total + 1,
    );
    let out = sandboxed(dir.path(), &script, Duration::from_secs(30));
    assert!(out.ok, "{}\n{}", out.stderr, out.stdout);
    let fit = section(&out.stdout, "fit").join("\n");

    // One "Data for node" block per node of the plan, in map order, with the
    // slots of its level and exactly that many ranks.
    let mapped: Vec<(String, u32, u32)> = fit
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("Data for node: ")?;
            let mut it = rest.split('\t');
            let name = it.next()?.trim().to_owned();
            let num = |prefix: &str, s: Option<&str>| -> Option<u32> {
                s?.trim().strip_prefix(prefix)?.trim().parse().ok()
            };
            let slots = num("Num slots:", it.next())?;
            let _max = it.next();
            let procs = num("Num procs:", it.next())?;
            Some((name, slots, procs))
        })
        .collect();
    // mpirun maps the node it runs on (the head) first, then the others in hostfile
    // order.
    let head = r.head().name.clone();
    let want: Vec<(String, u32, u32)> = std::iter::once(r.head())
        .chain(r.listed().into_iter().filter(|n| n.name != head))
        .map(|n| {
            let s = expected_slots(n.level.as_str());
            (n.name.clone(), s, s)
        })
        .collect();
    assert_eq!(mapped, want, "mpirun's map:\n{fit}");

    // The slots are a limit Open MPI enforces: one rank more is refused.
    let over = section(&out.stdout, "over").join("\n");
    assert!(!over.contains("Data for node"), "mapped anyway:\n{over}");
    assert!(over.contains("not enough slots"), "{over}");
}

#[test]
fn mpich_hostfile_is_read_by_hydra() {
    if !ready(
        "mpich_hostfile_is_read_by_hydra",
        true,
        &["unshare", "ip", "hostname", "mpiexec.hydra"],
    ) {
        return;
    }
    let (r, dir, root) = laid_out(Profile::Mpi);
    let total = r.total_slots();
    // `-launcher manual` prints each proxy's launch line and starts nothing; `-verbose`
    // shows what Hydra made of the host file: one proxy per host, with its host name
    // and process count. `env -i` keeps the environment out of that output. Hydra then
    // waits for proxies that never come: the sandbox's end kills it.
    let script = format!(
        r#"
T={t}
hostname {head}
ip link set lo up
env -i PATH=/usr/bin:/bin mpiexec.hydra -f {file} -n {total} -launcher manual -verbose true \
  > $T/hydra.out 2>&1 &
pid=$!
i=0
until grep -q HYDRA_LAUNCH_END $T/hydra.out; do
  if ! kill -0 $pid 2>/dev/null; then cat $T/hydra.out >&2; exit 3; fi
  i=$((i+1))
  if [ $i -gt 100 ]; then echo "no launch lines after 10 s" >&2; cat $T/hydra.out >&2; exit 4; fi
  sleep 0.1
done
cat $T/hydra.out
"#,
        t = dir.path().display(),
        head = r.head().name,
        file = root.join("etc/intercloud/mpich-hostfile").display(),
    );
    let out = sandboxed(dir.path(), &script, Duration::from_secs(20));
    assert!(out.ok, "{}\n{}", out.stderr, out.stdout);
    let arg = |line: &str, key: &str| -> Option<String> {
        let mut it = line.split_whitespace();
        it.find(|w| *w == key)?;
        it.next().map(str::to_owned)
    };
    let proxies: Vec<(String, u32)> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("--version ") && l.contains(" --hostname "))
        .map(|l| {
            let host = arg(l, "--hostname").expect("--hostname");
            let count = arg(l, "--exec-proc-count")
                .and_then(|c| c.parse().ok())
                .expect("--exec-proc-count");
            (host, count)
        })
        .collect();
    let want: Vec<(String, u32)> = r
        .listed()
        .into_iter()
        .map(|n| (n.name.clone(), expected_slots(n.level.as_str())))
        .collect();
    assert_eq!(proxies, want, "Hydra's proxies:\n{}", out.stdout);
}

// ---------------------------------------------------------------------------------
// /etc/hosts

/// RFC 1123 host name: dot-separated labels of 1-63 letters, digits and `-`, not
/// starting or ending with `-`; 253 characters at most.
fn rfc1123(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

#[test]
fn hosts_block_lines_are_addresses_and_rfc1123_names() {
    // glibc's parser accepts almost anything (it skips what it cannot read), so the
    // fields are checked here against what hosts(5) requires: an address, then names.
    let r = render(Profile::Hosts);
    let hosts = r.file("/etc/intercloud/hosts");
    let mut lines = hosts.lines();
    assert_eq!(
        lines.next(),
        Some(format!("# intercloud cluster {CLUSTER}").as_str())
    );
    let mut seen = BTreeMap::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [addr, names @ ..] = fields.as_slice() else {
            panic!("empty line in {hosts:?}");
        };
        let addr: Ipv4Addr = addr
            .parse()
            .unwrap_or_else(|e| panic!("{addr:?} is no IPv4 address ({e}) in {line:?}"));
        assert!(!names.is_empty(), "{line:?}");
        for n in names {
            assert!(rfc1123(n), "{n:?} is no RFC 1123 host name in {line:?}");
            assert!(
                seen.insert(n.to_lowercase(), addr).is_none(),
                "{n} listed twice"
            );
        }
    }
    for n in &r.plan.nodes {
        let ip: Ipv4Addr = n.overlay_ip.parse().expect("overlay IPv4");
        assert_eq!(seen.get(&n.name), Some(&ip), "{hosts}");
        let fqdn = format!("{}.{}", n.name, CLUSTER).to_lowercase();
        assert_eq!(seen.get(&fqdn), Some(&ip), "{hosts}");
    }
    assert_eq!(seen.len(), 2 * r.plan.nodes.len());
}

#[test]
fn hosts_block_merges_into_etc_hosts_and_glibc_resolves_it() {
    if !ready(
        "hosts_block_merges_into_etc_hosts_and_glibc_resolves_it",
        true,
        &["unshare", "getent", "sed"],
    ) {
        return;
    }
    let r = render(Profile::Hosts);
    let merge = r
        .commands
        .iter()
        .find(|c| c.contains("/etc/intercloud/hosts"))
        .expect("a command merging the hosts block");
    let dir = tempfile::tempdir().expect("tempdir");
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(etc.join("intercloud")).expect("mkdir");
    std::fs::write(
        etc.join("intercloud/hosts"),
        r.file("/etc/intercloud/hosts"),
    )
    .expect("write");
    // A Debian cloud image's /etc/hosts, and a resolver that reads only files.
    let base = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
    std::fs::write(etc.join("hosts"), base).expect("write");
    std::fs::write(etc.join("nsswitch.conf"), "hosts: files\n").expect("write");
    let names: Vec<String> = r
        .plan
        .nodes
        .iter()
        .flat_map(|n| [n.name.clone(), format!("{}.{}", n.name, CLUSTER)])
        .collect();
    let script = format!(
        r#"
mount --bind {etc} /etc
# cloud-init's runcmd, twice: a re-run (or a replaced node) must not add lines.
sh -c {cmd}
sh -c {cmd}
echo '== hosts'; cat /etc/hosts
echo '== getent'
for n in {names}; do getent hosts "$n" || echo "$n unresolved"; done
"#,
        etc = etc.display(),
        cmd = shell_quote(merge),
        names = names.join(" "),
    );
    let out = sandboxed(dir.path(), &script, Duration::from_secs(10));
    assert!(out.ok, "{}\n{}", out.stderr, out.stdout);
    let merged = section(&out.stdout, "hosts").join("\n") + "\n";
    assert_eq!(
        merged,
        format!(
            "{base}{}# end intercloud\n",
            r.file("/etc/intercloud/hosts")
        ),
        "the merge must keep the image's lines and add the block once"
    );
    let resolved = section(&out.stdout, "getent");
    for n in &r.plan.nodes {
        for name in [n.name.clone(), format!("{}.{}", n.name, CLUSTER)] {
            let line = resolved
                .iter()
                .find(|l| l.split_whitespace().skip(1).any(|x| x == name))
                .unwrap_or_else(|| panic!("getent did not resolve {name}:\n{}", out.stdout));
            assert_eq!(line.split_whitespace().next(), Some(n.overlay_ip.as_str()));
        }
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

// ---------------------------------------------------------------------------------
// Hadoop

#[test]
fn hadoop_core_site_is_xml_with_the_properties_hadoop_reads() {
    if !ready(
        "hadoop_core_site_is_xml_with_the_properties_hadoop_reads",
        false,
        &["xmllint"],
    ) {
        return;
    }
    let r = render(Profile::Hadoop);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("core-site.xml");
    std::fs::write(&path, r.file("/etc/hadoop/core-site.xml")).expect("write");
    let xmllint = |args: &[&str]| -> String {
        let o = Command::new("xmllint")
            .args(args)
            .arg(&path)
            .output()
            .expect("xmllint runs");
        assert!(
            o.status.success(),
            "xmllint {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        // `--xpath` ends its answer with a newline.
        let text = String::from_utf8_lossy(&o.stdout);
        text.strip_suffix('\n').unwrap_or(&text).to_owned()
    };
    // Well-formed, and the shape Hadoop's Configuration reads: <configuration> holding
    // <property> elements of one <name> and one <value>.
    xmllint(&["--noout"]);
    assert_eq!(xmllint(&["--xpath", "name(/*)"]), "configuration");
    let props: u32 = xmllint(&["--xpath", "count(/configuration/property)"])
        .trim()
        .parse()
        .expect("a count");
    let complete: u32 = xmllint(&[
        "--xpath",
        "count(/configuration/property[count(name)=1 and count(value)=1])",
    ])
    .trim()
    .parse()
    .expect("a count");
    assert_eq!((props, complete), (2, 2));
    let value = |name: &str| {
        xmllint(&[
            "--xpath",
            &format!("string(/configuration/property[name='{name}']/value)"),
        ])
    };
    assert_eq!(
        value("fs.defaultFS"),
        format!("hdfs://{}:9000", r.head().overlay_ip)
    );
    // The topology script Hadoop will exec is the one the user data writes, executable.
    let script = value("net.topology.script.file.name");
    let (mode, _) = r
        .files
        .get(&script)
        .unwrap_or_else(|| panic!("core-site names {script:?}, which the user data lacks"));
    assert_eq!(mode, "0755");
}

#[test]
fn hadoop_rack_script_maps_every_node_to_its_site() {
    if !ready(
        "hadoop_rack_script_maps_every_node_to_its_site",
        false,
        &["sh"],
    ) {
        return;
    }
    let r = render(Profile::Hadoop);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rack.sh");
    std::fs::write(&path, r.file("/etc/hadoop/intercloud-rack.sh")).expect("write");
    // Hadoop's ScriptBasedMapping passes up to 100 names or addresses per call and
    // reads one rack per argument, in order.
    let mut args: Vec<String> = Vec::new();
    let mut want = String::new();
    for n in &r.plan.nodes {
        for a in [&n.overlay_ip, &n.name] {
            args.push(a.clone());
            want.push_str(&format!("/{}\n", site_word(&n.site)));
        }
    }
    args.push("10.99.99.99".into());
    want.push_str("/default-rack\n");
    let out = Command::new("sh")
        .arg(&path)
        .args(&args)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    // Three racks, one per site (plus the default for strangers): HDFS puts a replica
    // off-site.
    let racks: std::collections::BTreeSet<&str> = want.lines().collect();
    assert_eq!(racks.len(), 4, "{want}");
}

#[test]
fn hadoop_workers_lists_every_node_but_the_master() {
    let r = render(Profile::Hadoop);
    let want: String = r.workers().map(|n| format!("{}\n", n.name)).collect();
    assert_eq!(r.file("/etc/hadoop/workers"), want);
    assert!(!want.contains("master"));
}

/// slurmd, MPI launchers and Hadoop's daemons find a node by its host name, while the
/// clouds name VMs `KEY-INDEX`: every node's own part renames the VM to its node name
/// (after the index was read from the old name).
#[test]
fn every_node_takes_its_cluster_name_as_host_name() {
    let r = render(Profile::Hadoop);
    let configurer = {
        // The same renderer as `render`, to read each batch's own parts.
        let limits = r
            .plan
            .sites
            .iter()
            .map(|s| (s.clone(), 32 * 1024))
            .collect();
        ClusterConfigurer::new(Profile::Hadoop, limits, None)
    };
    let endpoints = BTreeMap::new();
    let ctx = ConfigContext {
        cluster: &r.plan.cluster,
        nodes: &r.plan.nodes,
        endpoints: &endpoints,
        fabric: None,
    };
    let mut renamed = 0;
    for batch in &r.plan.batches {
        let ud = user_data(&configurer, &ctx, batch);
        let (_, commands) = parse_cloud_config(&ud);
        for (i, name) in batch.nodes.iter().enumerate() {
            let want = format!("hostnamectl set-hostname '{name}'");
            let own = if batch.nodes.len() == 1 {
                commands.join("\n")
            } else {
                // VM i's own commands, as its batch.sh picks them (real sh)
                let scratch = tempfile::tempdir().expect("tempdir");
                let files = expand(&ud, i, scratch.path(), false);
                let run = "/etc/intercloud/run.sh";
                let (mode, script) = files.get(run).unwrap_or_else(|| panic!("no {run}"));
                assert_eq!(mode, "0700");
                script.clone()
            };
            assert!(own.contains(&want), "{name}: {own}");
            renamed += 1;
        }
    }
    assert_eq!(renamed, r.plan.nodes.len());
    // Without a profile nothing needs names: no user data at all.
    let plain = ClusterConfigurer::new(Profile::None, BTreeMap::new(), None);
    assert!(plain
        .user_data(&ctx, &r.plan.batches[0])
        .expect("renders")
        .is_none());
}
