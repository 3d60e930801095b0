//! The profile files: hosts, MPI, Hadoop, Slurm.

use std::fmt::Write as _;

use super::ClusterLayout;
use crate::model::SiteId;

/// `/etc/hosts` lines for the cluster: `IP NAME NAME.CLUSTER`, after a marker comment.
pub fn hosts_file(layout: &ClusterLayout) -> String {
    let mut out = format!("# intercloud cluster {}\n", layout.cluster);
    for n in &layout.nodes {
        let _ = writeln!(
            out,
            "{} {} {}.{}",
            n.overlay_ip, n.name, n.name, layout.cluster
        );
    }
    out
}

/// An Open MPI hostfile (`mpirun --hostfile`): `NAME slots=N` per node.
///
/// MPICH's Hydra refuses this form ("token slots not supported at this time"): it
/// reads [`mpich_hostfile`].
pub fn mpi_hostfile(layout: &ClusterLayout) -> String {
    layout
        .nodes
        .iter()
        .map(|n| format!("{} slots={}\n", n.name, n.slots.max(1)))
        .collect()
}

/// An MPICH (Hydra) host file (`mpiexec -f`): `NAME:N` per node. Open MPI's hostfile
/// reader does not take `:N` as slots, so it gets [`mpi_hostfile`].
pub fn mpich_hostfile(layout: &ClusterLayout) -> String {
    layout
        .nodes
        .iter()
        .map(|n| format!("{}:{}\n", n.name, n.slots.max(1)))
        .collect()
}

/// Hadoop's `etc/hadoop/workers`: one worker host name per line.
pub fn hadoop_workers(layout: &ClusterLayout) -> String {
    layout.workers().map(|n| format!("{}\n", n.name)).collect()
}

/// Hadoop's `core-site.xml`: `fs.defaultFS` on the head node's overlay address and the
/// rack topology script.
pub fn core_site_xml(layout: &ClusterLayout) -> String {
    let head = layout.head().map_or("localhost", |h| h.overlay_ip.as_str());
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<configuration>
  <property>
    <name>fs.defaultFS</name>
    <value>hdfs://{head}:9000</value>
  </property>
  <property>
    <name>net.topology.script.file.name</name>
    <value>/etc/hadoop/intercloud-rack.sh</value>
  </property>
</configuration>
"#
    )
}

/// A site id as one word of Slurm features and Hadoop rack names: letters, digits,
/// `-`, `_` and `.` kept, anything else (a space, a parenthesis, a quote) becomes `_`.
///
/// Site ids are free text; slurmctld stops at a space in `Feature=` ("Parse error …
/// Unable to process configuration file"), Hadoop splits a rack script's answer at
/// whitespace, and the rack script is shell.
fn site_word(site: &SiteId) -> String {
    site.as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A rack topology script (`net.topology.script.file.name`): maps each host name or
/// overlay address given as an argument to `/SITE`, unknown ones to
/// `/default-rack`, one answer per argument, as Hadoop expects. `SITE` is the site id
/// with any character but letters, digits, `-`, `_` and `.` replaced by `_`.
pub fn rack_script(layout: &ClusterLayout) -> String {
    let mut out = String::from(
        "#!/bin/sh\n# intercloud: rack = site\nfor h in \"$@\"; do\n  case \"$h\" in\n",
    );
    for n in &layout.nodes {
        let _ = writeln!(
            out,
            "    {}|{}) echo /{} ;;",
            n.name,
            n.overlay_ip,
            site_word(&n.site)
        );
    }
    out.push_str("    *) echo /default-rack ;;\n  esac\ndone\n");
    out
}

/// Slurm's `slurm.conf`: the head node as controller, one `NodeName` line per worker
/// (feature `site-SITE`, the site id as in [`rack_script`]) and one partition holding
/// them all (`Nodes=ALL`: a list of names would make the line O(cluster), which the
/// compact user data of [`super::compact_files`] cannot shorten).
///
/// Choices checked by running slurmctld 22.05 on the file
/// (`intercloud-vpn/tests/bootstrap_parsers.rs`):
/// - the controller keeps its state in `/var/lib/slurm/slurmctld`, the directory
///   Debian's and Ubuntu's `slurmctld` package creates for the `slurm` user; with
///   Slurm's default (`/var/spool`, owned by root there) slurmctld stops with "fatal:
///   Incorrect permissions on state save loc";
/// - nodes are scheduled by core (`CR_Core`): the file states no `RealMemory`, and
///   cons_tres's default `CR_Core_Memory` would count every node as 1 MB of memory;
/// - `ClusterName` is the cluster name in lower case, the form Slurm stores (it
///   lowercases any other).
pub fn slurm_conf(layout: &ClusterLayout) -> String {
    let head = layout.head();
    let mut out = format!(
        "# intercloud cluster {}\nClusterName={}\nSlurmctldHost={}({})\nSlurmUser=slurm\n\
         StateSaveLocation=/var/lib/slurm/slurmctld\nAuthType=auth/munge\n\
         SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\nReturnToService=2\n",
        layout.cluster,
        layout.cluster.to_lowercase(),
        head.map_or("localhost", |h| h.name.as_str()),
        head.map_or("127.0.0.1", |h| h.overlay_ip.as_str()),
    );
    for n in layout.workers() {
        let _ = writeln!(
            out,
            "NodeName={} NodeAddr={} CPUs={} Feature=site-{} State=UNKNOWN",
            n.name,
            n.overlay_ip,
            n.slots.max(1),
            site_word(&n.site)
        );
    }
    // `ALL` is every NodeName above (the workers), in one line of constant size.
    out.push_str("PartitionName=all Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn hosts_and_mpi_golden() {
        let l = sample();
        assert_eq!(
            hosts_file(&l),
            "# intercloud cluster hadoop-demo\n10.77.0.10 master-1 master-1.hadoop-demo\n\
             10.77.0.11 worker-1 worker-1.hadoop-demo\n10.77.1.10 worker-2 worker-2.hadoop-demo\n"
        );
        assert_eq!(
            mpi_hostfile(&l),
            "master-1 slots=4\nworker-1 slots=1\nworker-2 slots=1\n"
        );
        assert_eq!(mpich_hostfile(&l), "master-1:4\nworker-1:1\nworker-2:1\n");
    }

    #[test]
    fn hadoop_files_golden() {
        let l = sample();
        assert_eq!(hadoop_workers(&l), "worker-1\nworker-2\n");
        assert!(core_site_xml(&l).contains("<value>hdfs://10.77.0.10:9000</value>"));
        let rack = rack_script(&l);
        assert!(
            rack.contains("    worker-2|10.77.1.10) echo /nii ;;\n"),
            "{rack}"
        );
        assert!(rack.contains("    master-1|10.77.0.10) echo /hokkaido ;;\n"));
    }

    #[test]
    fn rack_script_answers_like_hadoop_expects() {
        // Run the rendered script with sh, as Hadoop would, when sh exists.
        let script = rack_script(&sample());
        let dir = std::env::temp_dir().join(format!("ic-rack-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rack.sh");
        std::fs::write(&path, script).unwrap();
        let out = std::process::Command::new("sh")
            .arg(&path)
            .args(["worker-2", "10.77.0.10", "stranger"])
            .output()
            .expect("sh runs");
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "/nii\n/hokkaido\n/default-rack\n"
        );
    }

    #[test]
    fn free_text_site_ids_become_one_safe_word() {
        let mut l = sample();
        l.nodes[2].site = "nii (kyoto) 'b'".into();
        assert!(slurm_conf(&l).contains(" Feature=site-nii__kyoto___b_ State=UNKNOWN\n"));
        let rack = rack_script(&l);
        assert!(
            rack.contains("    worker-2|10.77.1.10) echo /nii__kyoto___b_ ;;\n"),
            "{rack}"
        );
    }

    #[test]
    fn slurm_conf_golden() {
        let mut l = sample();
        l.cluster = "Hadoop-Demo".into();
        assert_eq!(
            slurm_conf(&l),
            "# intercloud cluster Hadoop-Demo\n\
             ClusterName=hadoop-demo\n\
             SlurmctldHost=master-1(10.77.0.10)\n\
             SlurmUser=slurm\n\
             StateSaveLocation=/var/lib/slurm/slurmctld\n\
             AuthType=auth/munge\n\
             SelectType=select/cons_tres\n\
             SelectTypeParameters=CR_Core\n\
             ReturnToService=2\n\
             NodeName=worker-1 NodeAddr=10.77.0.11 CPUs=1 Feature=site-hokkaido State=UNKNOWN\n\
             NodeName=worker-2 NodeAddr=10.77.1.10 CPUs=1 Feature=site-nii State=UNKNOWN\n\
             PartitionName=all Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n"
        );
    }
}
