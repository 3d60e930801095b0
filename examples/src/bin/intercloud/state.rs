//! The CLI's state directory: one folder per cluster holding the journal, the
//! request, the federation it was deployed on, a lock file, and the overlay's
//! secrets (owner-only, written atomically as soon as they exist).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use intercloud_core::deploy::{Batch, ConfigContext, NodeConfigurer};
use intercloud_core::{Error, Result, UserData};
use intercloud_vpn::{CompositeFabric, RenderedOverlay};

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

    /// Whether the cluster has been deployed from this state folder.
    pub(crate) fn exists(state_dir: &Path, cluster: &str) -> bool {
        state_dir.join(cluster).join("request.toml").exists()
    }
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
