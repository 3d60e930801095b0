//! Assembling a node's cloud-init user data from profile files and fabric parts.

use base64::Engine as _;

use super::profiles::{
    core_site_xml, hadoop_workers, hosts_file, mpi_hostfile, mpich_hostfile, rack_script,
    slurm_conf,
};
use super::ClusterLayout;
use crate::model::{Profile, SiteId, UserData};
use crate::vpn::{BootFile, Bootstrap};
use crate::{Error, Result};

fn file(path: &str, mode: &str, content: String) -> BootFile {
    BootFile {
        path: path.into(),
        mode: mode.into(),
        content,
    }
}

/// The files and commands of the cluster's profile, the same on every node.
///
/// The hosts block is written to `/etc/intercloud/hosts` and merged into `/etc/hosts`
/// by a command that replaces an earlier intercloud block, so a re-run (or a replaced
/// node) never duplicates lines.
pub fn profile_bootstrap(layout: &ClusterLayout) -> Bootstrap {
    let mut b = Bootstrap::default();
    if layout.profile == Profile::None {
        return b;
    }
    b.files
        .push(file("/etc/intercloud/hosts", "0644", hosts_file(layout)));
    b.commands.push(
        "sed -i '/# intercloud cluster /,/# end intercloud/d' /etc/hosts && \
         cat /etc/intercloud/hosts >> /etc/hosts && echo '# end intercloud' >> /etc/hosts"
            .into(),
    );
    match layout.profile {
        Profile::None | Profile::Hosts => {}
        Profile::Mpi => {
            b.files.push(file(
                "/etc/intercloud/mpi-hostfile",
                "0644",
                mpi_hostfile(layout),
            ));
            b.files.push(file(
                "/etc/intercloud/mpich-hostfile",
                "0644",
                mpich_hostfile(layout),
            ));
        }
        Profile::Hadoop => {
            b.files
                .push(file("/etc/hadoop/workers", "0644", hadoop_workers(layout)));
            b.files.push(file(
                "/etc/hadoop/core-site.xml",
                "0644",
                core_site_xml(layout),
            ));
            b.files.push(file(
                "/etc/hadoop/intercloud-rack.sh",
                "0755",
                rack_script(layout),
            ));
        }
        Profile::Slurm => {
            b.files
                .push(file("/etc/slurm/slurm.conf", "0644", slurm_conf(layout)));
        }
    }
    b
}

/// A YAML scalar for any text: JSON strings are valid YAML double-quoted scalars.
fn yaml_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// Renders `parts` (profile, fabric, …) into one `#cloud-config` document.
///
/// File contents are base64 (`encoding: b64`) so no content can break the YAML;
/// packages are merged without duplicates; commands run in the order of `parts`.
///
/// # Errors
/// `InvalidRequest` naming `site` when the document exceeds `max_bytes` (the
/// middleware's user-data limit, e.g. CloudStack's 32 KiB), with the size and the fix.
pub fn cloud_init(parts: &[Bootstrap], max_bytes: usize, site: &SiteId) -> Result<UserData> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = String::from("#cloud-config\n");
    let mut packages: Vec<&str> = Vec::new();
    for p in parts.iter().flat_map(|p| &p.packages) {
        if !packages.contains(&p.as_str()) {
            packages.push(p);
        }
    }
    if !packages.is_empty() {
        out.push_str("packages:\n");
        for p in packages {
            out.push_str(&format!("  - {}\n", yaml_str(p)));
        }
    }
    let files: Vec<&BootFile> = parts.iter().flat_map(|p| &p.files).collect();
    if !files.is_empty() {
        out.push_str("write_files:\n");
        for f in files {
            out.push_str(&format!(
                "  - path: {}\n    permissions: {}\n    encoding: b64\n    content: {}\n",
                yaml_str(&f.path),
                yaml_str(&f.mode),
                b64.encode(f.content.as_bytes())
            ));
        }
    }
    let commands: Vec<&String> = parts.iter().flat_map(|p| &p.commands).collect();
    if !commands.is_empty() {
        out.push_str("runcmd:\n");
        for c in commands {
            out.push_str(&format!("  - [sh, -c, {}]\n", yaml_str(c)));
        }
    }
    if out.len() > max_bytes {
        return Err(Error::invalid(format!(
            "user data is {} bytes, over the site's limit of {max_bytes} bytes; use a \
             smaller profile (e.g. profile = \"hosts\") or split the cluster",
            out.len()
        ))
        .with_site(site));
    }
    Ok(UserData(out))
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn hadoop_user_data_carries_every_file() {
        let b = profile_bootstrap(&sample());
        let paths: Vec<_> = b.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/etc/intercloud/hosts",
                "/etc/hadoop/workers",
                "/etc/hadoop/core-site.xml",
                "/etc/hadoop/intercloud-rack.sh"
            ]
        );
        let ud = cloud_init(&[b], 32 * 1024, &"hokkaido".into()).unwrap();
        assert!(
            ud.0.starts_with("#cloud-config\nwrite_files:\n  - path: \"/etc/intercloud/hosts\"\n"),
            "{}",
            ud.0
        );
        let workers_b64 = base64::engine::general_purpose::STANDARD.encode("worker-1\nworker-2\n");
        assert!(ud.0.contains(&format!("content: {workers_b64}\n")));
        assert!(ud.0.contains("runcmd:\n  - [sh, -c, \"sed -i "));
    }

    #[test]
    fn commands_with_quotes_stay_one_yaml_scalar() {
        let part = Bootstrap {
            packages: vec!["wireguard-tools".into(), "wireguard-tools".into()],
            files: vec![],
            commands: vec!["echo \"a: b\" 'c' \\ # d".into()],
        };
        let ud = cloud_init(&[part], 4096, &"s".into()).unwrap();
        assert_eq!(
            ud.0,
            "#cloud-config\npackages:\n  - \"wireguard-tools\"\nruncmd:\n  - [sh, -c, \"echo \\\"a: b\\\" 'c' \\\\ # d\"]\n"
        );
    }

    #[test]
    fn oversized_user_data_names_the_site_and_limit() {
        let mut l = sample();
        for i in 0..2000 {
            l.nodes.push(super::super::NodeInfo {
                name: format!("w-{i}"),
                role: "worker".into(),
                site: "nii".into(),
                overlay_ip: format!("10.78.{}.{}", i / 250, i % 250),
                slots: 1,
            });
        }
        let e = cloud_init(&[profile_bootstrap(&l)], 32 * 1024, &"hokkaido".into()).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidRequest);
        let s = e.to_string();
        assert!(
            s.starts_with("site hokkaido: user data is ") && s.contains("limit of 32768 bytes"),
            "{s}"
        );
    }

    #[test]
    fn profile_none_adds_nothing() {
        let mut l = sample();
        l.profile = Profile::None;
        assert_eq!(profile_bootstrap(&l), Bootstrap::default());
    }
}
