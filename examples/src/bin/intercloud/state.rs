//! The CLI's state directory: one folder per cluster holding the journal, the
//! request, the federation it was deployed on, a lock file, and the overlay's
//! secrets (owner-only, written atomically as soon as they exist).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use intercloud_core::config::load_cluster;
use intercloud_core::deploy::{Batch, ConfigContext, NodeConfigurer};
use intercloud_core::{validate_cluster_name, ClusterRequest, Error, Result, UserData};
use intercloud_vpn::{CompositeFabric, RenderedOverlay};

use crate::federation::Origin;
use crate::{output, Global, Target, EXIT_OK};

/// The folder of one cluster's state, locked for this process while it lives.
#[derive(Debug)]
pub(crate) struct ClusterState {
    dir: PathBuf,
    _lock: File,
}

impl ClusterState {
    /// Opens (creating) `state_dir/cluster/` and takes its lock.
    ///
    /// Refuses when another process holds it: two deployers on one journal would
    /// race each other's creates and deletes.
    pub(crate) fn open(state_dir: &Path, cluster: &str) -> Result<Self> {
        check_name(cluster)?;
        let dir = state_dir.join(cluster);
        fs::create_dir_all(&dir).map_err(|e| {
            Error::config(format!("cannot create state folder {}: {e}", dir.display()))
        })?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::config(format!("cannot open {}: {e}", lock_path.display())))?;
        match lock.try_lock() {
            Ok(()) => Ok(Self { dir, _lock: lock }),
            Err(fs::TryLockError::WouldBlock) => Err(Error::config(format!(
                "cluster {cluster:?} is being worked on by another intercloud process \
                 (lock {}); wait for it to finish",
                lock_path.display()
            ))),
            Err(fs::TryLockError::Error(e)) => Err(Error::config(format!(
                "cannot lock {}: {e}",
                lock_path.display()
            ))),
        }
    }

    /// A file in the cluster's folder.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Whether the cluster has been deployed from this state folder (never for a
    /// `cluster` that is not a valid cluster name).
    pub(crate) fn exists(state_dir: &Path, cluster: &str) -> bool {
        check_name(cluster).is_ok() && state_dir.join(cluster).join("request.toml").exists()
    }

    /// Removes what intercloud wrote in the cluster's folder ([`OWNED_FILES`] and
    /// their `.tmp` leftovers), then the folder if nothing else is in it. Anything
    /// else (a file the user put there) stays, and is returned so the caller can say
    /// so; the folder then stays too.
    pub(crate) fn remove(self) -> Result<Vec<PathBuf>> {
        for name in OWNED_FILES {
            for path in [self.dir.join(name), self.dir.join(format!("{name}.tmp"))] {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Error::config(format!(
                            "cannot remove {}: {e}",
                            path.display()
                        )))
                    }
                }
            }
        }
        let dir = self.dir.clone();
        // Unlocks: the lock file is gone already.
        drop(self);
        let listing = fs::read_dir(&dir)
            .map_err(|e| Error::config(format!("cannot read {}: {e}", dir.display())))?;
        let mut kept: Vec<PathBuf> = listing.filter_map(|e| e.ok().map(|e| e.path())).collect();
        kept.sort();
        if kept.is_empty() {
            fs::remove_dir(&dir)
                .map_err(|e| Error::config(format!("cannot remove {}: {e}", dir.display())))?;
        }
        Ok(kept)
    }

    /// Refuses a cluster file that asks for something other than what is deployed:
    /// `resume` and `repair` work on the stored request, and clusters cannot be
    /// changed in place yet. Compared as parsed requests, so comments, whitespace and
    /// key order do not count.
    pub(crate) fn check_unchanged(&self, file: &Path, deployed: &ClusterRequest) -> Result<()> {
        let given = load_cluster(file)?;
        if &given == deployed {
            return Ok(());
        }
        let stored = self.path("request.toml");
        Err(Error::config(format!(
            "{} differs from the deployment of cluster {} (stored in {}): changing a deployed \
             cluster is not supported yet; run with -c {} to act on the deployment as it is, \
             or `down` it and `up` the new file",
            file.display(),
            deployed.name,
            stored.display(),
            deployed.name
        )))
    }
}

/// The files intercloud writes in a cluster's state folder; `down` removes these (and
/// `NAME.tmp` leftovers of them) and nothing else.
pub(crate) const OWNED_FILES: &[&str] = &[
    "journal.log",
    "request.toml",
    "federation",
    "overlay.json",
    "fabric.json",
    "hosts",
    "inventory.ini",
    "lock",
];

/// Checks a cluster name given on the command line (`-c NAME`) exactly as `name` in
/// `cluster.toml` is checked: it names a folder under the state directory, so a path
/// must never pass.
pub(crate) fn check_name(name: &str) -> Result<()> {
    validate_cluster_name(name).map_err(|e| {
        Error::config(format!(
            "-c: {} (the `name` in its cluster.toml, not a path)",
            e.message()
        ))
    })
}

/// Whether the cluster's journal is absent or empty (`up` on the built-in simulated
/// federation removes it when the command ends).
pub(crate) fn journal_is_empty(state: &ClusterState) -> bool {
    fs::metadata(state.path("journal.log")).map_or(true, |m| m.len() == 0)
}

/// The error for a cluster whose deployment ended with the built-in simulated
/// federation it ran on.
pub(crate) fn ended_with_embedded(cluster: &str) -> Error {
    Error::config(format!(
        "cluster {cluster} was deployed by `up` on the built-in simulated federation, which \
         ended with that command (nothing of it is left; `down -c {cluster}` clears its \
         state). To keep a federation for status, repair and down, run \
         `intercloud sim --write-federation fed.toml` in another terminal, export the \
         variables it prints, and `up` with --federation fed.toml"
    ))
}

/// The cluster a command names: `-f FILE`'s `name`, or `-c NAME` checked as a name.
pub(crate) fn target_name(target: &Target) -> Result<String> {
    match (&target.file, &target.cluster) {
        (Some(f), _) => Ok(load_cluster(f)?.name),
        (None, Some(c)) => {
            check_name(c)?;
            Ok(c.clone())
        }
        (None, None) => Err(Error::config(
            "name the cluster: -c NAME or -f cluster.toml",
        )),
    }
}

/// `down` of a cluster with nothing left to delete: no deployment in the state
/// directory (already down, or never up), or one whose built-in simulated federation
/// ended with its `up`. Prints the usual `down` report (`deleted: 0`), a note on
/// stderr, clears the state of the latter, and returns exit code 0; `None` when the
/// cluster has a live deployment.
pub(crate) fn down_if_gone(g: &Global, target: &Target) -> Result<Option<u8>> {
    let name = target_name(target)?;
    let note = if !ClusterState::exists(&g.state_dir, &name) {
        format!(
            "note: no deployment of cluster {name} in {}: nothing to delete",
            g.state_dir.display()
        )
    } else {
        let state = ClusterState::open(&g.state_dir, &name)?;
        let origin = fs::read_to_string(state.path("federation"))
            .ok()
            .map(|t| Origin::from_text(&t));
        if origin != Some(Origin::Embedded) || !journal_is_empty(&state) {
            return Ok(None);
        }
        remove_state(state)?;
        format!(
            "note: cluster {name} ran on the built-in simulated federation, which ended with \
             its `up`: nothing to delete; its state was cleared"
        )
    };
    eprintln!("{note}");
    if g.json {
        output::json(&serde_json::json!({"cluster": name, "deleted": 0, "remaining": 0}))?;
    } else {
        output::line(&format!("cluster {name}: deleted 0 VMs, 0 remaining"))?;
    }
    Ok(Some(EXIT_OK))
}

/// Removes a cluster's state after `down` (see [`ClusterState::remove`]), saying on
/// stderr which files were kept because intercloud did not write them.
pub(crate) fn remove_state(state: ClusterState) -> Result<()> {
    let dir = state.path("");
    let kept = state.remove()?;
    if !kept.is_empty() {
        eprintln!(
            "note: kept {}: it holds files intercloud did not write: {}",
            dir.display(),
            kept.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// Writes overlay state holding secrets (WireGuard private keys, pre-shared keys,
/// VPN passwords) readable by the owner only, atomically: a killed process leaves
/// the previous file or the new one, never a torn or world-readable one.
pub(crate) fn save_secret_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let failed = |e: std::io::Error| Error::config(format!("cannot write {}: {e}", path.display()));
    let text = serde_json::to_string(value)
        .map_err(|e| Error::config(format!("cannot save the overlay: {e}")))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // A leftover from a killed writer may have any mode: start afresh.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed(e)),
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(failed)?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(failed)?;
    drop(f);
    fs::rename(&tmp, path).map_err(failed)?;
    if let Some(dir) = path.parent() {
        // the rename itself survives a power cut once the folder is synced
        File::open(dir).and_then(|d| d.sync_all()).map_err(failed)?;
    }
    Ok(())
}

/// Saves a composite overlay's gateway configurations ([`RenderedOverlay`]) to `path`
/// whenever they change, before each create call's user data is rendered: the
/// deployer makes every link of a pass before it creates VMs, so what a replacement
/// gateway VM (`repair`, `resume`) needs is on disk before any VM relies on it, even
/// if the process is killed right after.
pub(crate) struct SavingConfigurer {
    inner: Arc<dyn NodeConfigurer>,
    composite: Arc<CompositeFabric>,
    path: PathBuf,
    saved: Mutex<Option<RenderedOverlay>>,
}

impl SavingConfigurer {
    /// Wraps `inner`, saving `composite`'s gateways to `path`.
    pub(crate) fn new(
        inner: Arc<dyn NodeConfigurer>,
        composite: Arc<CompositeFabric>,
        path: PathBuf,
    ) -> Self {
        Self {
            inner,
            composite,
            path,
            saved: Mutex::new(None),
        }
    }

    fn save(&self) -> Result<()> {
        // Not renderable (an L2TP link not made by this process): the inner
        // configurer refuses the gateway's user data with the reason.
        let Ok(rendered) = RenderedOverlay::of(&self.composite) else {
            return Ok(());
        };
        let mut saved = self.saved.lock().unwrap_or_else(|p| p.into_inner());
        if saved.as_ref() != Some(&rendered) {
            save_secret_json(&self.path, &rendered)?;
            *saved = Some(rendered);
        }
        Ok(())
    }
}

impl fmt::Debug for SavingConfigurer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // the rendered gateways hold secrets: only where they go
        f.debug_struct("SavingConfigurer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl NodeConfigurer for SavingConfigurer {
    fn user_data(&self, ctx: &ConfigContext<'_>, batch: &Batch) -> Result<Option<UserData>> {
        self.save()?;
        self.inner.user_data(ctx, batch)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn names_that_are_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["/tmp/x", "../x", "a/b", ".", "", "x y", "1abc"] {
            let e = ClusterState::open(dir.path(), bad).unwrap_err();
            assert!(
                e.to_string().contains("ASCII letters, digits or '-'"),
                "{e}"
            );
            assert!(!ClusterState::exists(dir.path(), bad));
        }
        assert!(ClusterState::open(dir.path(), "ok-1").is_ok());
    }

    #[test]
    fn remove_deletes_only_owned_files_and_keeps_a_folder_with_others() {
        let dir = tempfile::tempdir().unwrap();
        let st = ClusterState::open(dir.path(), "c").unwrap();
        for f in ["journal.log", "request.toml", "fabric.json.tmp", "hosts"] {
            fs::write(st.path(f), "x").unwrap();
        }
        fs::write(st.path("notes.txt"), "mine").unwrap();
        let kept = st.remove().unwrap();
        assert_eq!(kept, vec![dir.path().join("c").join("notes.txt")]);
        let left: Vec<_> = fs::read_dir(dir.path().join("c")).unwrap().collect();
        assert_eq!(left.len(), 1, "only the user's file stays");
        let st = ClusterState::open(dir.path(), "d").unwrap();
        fs::write(st.path("journal.log"), "x").unwrap();
        assert!(st.remove().unwrap().is_empty());
        assert!(!dir.path().join("d").exists(), "an emptied folder goes");
    }

    #[test]
    fn secrets_are_saved_owner_only_replacing_a_wider_file_and_a_torn_leftover() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fabric.json");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let tmp = dir.path().join("fabric.json.tmp");
        fs::write(&tmp, "{\"torn").unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o666)).unwrap();
        save_secret_json(&path, &serde_json::json!({"password": "s3cret"})).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            r#"{"password":"s3cret"}"#
        );
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!tmp.exists());
        let e = save_secret_json(&dir.path().join("no/such/dir/f.json"), &1).unwrap_err();
        assert!(e.to_string().contains("cannot write"), "{e}");
    }
}
