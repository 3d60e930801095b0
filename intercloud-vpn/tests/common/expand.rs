//! Applying a create call's user data the way one of its VMs does, with the real
//! `sh`: the compact programs (`cluster-files.sh`, `batch.sh`, and optionally a
//! gateway's `wg-peers.sh`) run under a scratch root (`IC_ROOT`), as VM `index`
//! (`IC_INDEX`). Other commands (host name, `wg-quick up`) are not run.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use super::cloud_config::parse_cloud_config;

/// The files VM `index` of the call holds after its user data `doc` ran under
/// `root`: path → (mode as 4 octal digits, content). With `wg_peers`, a gateway's
/// `wg-peers.sh` appends its members (needs `openssl` and `wg`).
pub(crate) fn expand(
    doc: &str,
    index: usize,
    root: &Path,
    wg_peers: bool,
) -> BTreeMap<String, (String, String)> {
    let (files, commands) = parse_cloud_config(doc);
    for (path, (mode, content)) in &files {
        let p = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        let mode = u32::from_str_radix(mode, 8).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let mut pending: Vec<String> = commands;
    let mut i = 0;
    while i < pending.len() {
        let cmd = pending[i].clone();
        i += 1;
        let Some(rest) = cmd.strip_prefix("sh ") else {
            continue;
        };
        let (script, append) = match rest.split_once(" >> ") {
            Some((s, to)) => (s.trim_matches('\''), Some(to)),
            None => (rest.trim_matches('\''), None),
        };
        if !script.starts_with("/etc/intercloud/") || (script.ends_with("wg-peers.sh") && !wg_peers)
        {
            continue;
        }
        let out = Command::new("sh")
            .arg(root.join(script.trim_start_matches('/')))
            .env("IC_ROOT", root)
            .env("IC_INDEX", index.to_string())
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(to) = append {
            let p = root.join(to.trim_start_matches('/'));
            let mut text = std::fs::read_to_string(&p).unwrap();
            text.push_str(&String::from_utf8(out.stdout).unwrap());
            std::fs::write(&p, text).unwrap();
        }
        if script == "/etc/intercloud/batch.sh" {
            // the VM's own commands, as batch.sh would run them
            let run = root.join("etc/intercloud/run.sh");
            if let Ok(text) = std::fs::read_to_string(run) {
                pending.extend(text.lines().skip(2).map(str::to_owned));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (String, String)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
            let rel = format!("/{}", p.strip_prefix(root).unwrap().display());
            out.insert(
                rel,
                (format!("{mode:04o}"), std::fs::read_to_string(&p).unwrap()),
            );
        }
    }
}
