//! The CLI's state directory: one folder per cluster holding the journal, the
//! request, the federation it was deployed on, and a lock file.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use intercloud_core::{Error, Result};

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
