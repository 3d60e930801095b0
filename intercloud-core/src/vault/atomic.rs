//! Replacing a file atomically: temp file in the same directory, fsync, rename,
//! fsync the directory. Readers see the old file or the new one, never a mix; a
//! crash leaves at worst a stray temp file, never a half-written vault.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::VaultError;

/// Writes `bytes` to `path` atomically, with mode 0600 on Unix. On any failure the
/// temp file is removed and `path` is untouched.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), VaultError> {
    let io = |action, source| VaultError::Io {
        path: path.to_owned(),
        action,
        source,
    };
    let dir = parent_dir(path);
    let tmp = temp_path(path, &dir);
    let mut file = create_private(&tmp).map_err(|e| io("create the temporary file", e))?;
    let written = file
        .write_all(bytes)
        .map_err(|e| io("write the temporary file", e))
        .and_then(|()| {
            file.sync_all()
                .map_err(|e| io("fsync the temporary file", e))
        });
    drop(file);
    let renamed = written.and_then(|()| {
        fs::rename(&tmp, path).map_err(|e| io("rename the temporary file over the vault", e))
    });
    if let Err(e) = renamed {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(&dir).map_err(|e| io("fsync the vault's directory", e))
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// `.NAME.PID.RANDOM.tmp` next to the vault.
fn temp_path(path: &Path, dir: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "vault".to_owned());
    dir.join(format!(
        ".{name}.{}.{:016x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    ))
}

fn create_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.vault");
        write_atomically(&p, b"one").unwrap();
        write_atomically(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_failed_rename_removes_the_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.vault");
        fs::create_dir(&p).unwrap();
        fs::write(p.join("x"), b"keep").unwrap(); // a non-empty dir cannot be replaced
        let e = write_atomically(&p, b"data").unwrap_err();
        assert!(e.to_string().contains("rename"), "{e}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn bare_file_names_live_in_the_current_directory() {
        assert_eq!(parent_dir(Path::new("v.vault")), PathBuf::from("."));
        assert_eq!(parent_dir(Path::new("/a/v")), PathBuf::from("/a"));
    }
}
