//! Helpers shared by the vault integration tests.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use intercloud_core::{Credentials, EncryptedFileVault, KdfParams, SiteId, VaultError};
use secrecy::SecretString;

/// Distinctive strings no output may ever contain.
pub const SECRET_MARK: &str = "ZQXsecretZQX";
pub const PASSPHRASE: &str = "ZQXpassphraseZQX correct horse";
pub const WRONG_PASSPHRASE: &str = "ZQXwrongpassZQX battery staple";

pub fn passphrase() -> SecretString {
    SecretString::from(PASSPHRASE)
}

pub fn wrong_passphrase() -> SecretString {
    SecretString::from(WRONG_PASSPHRASE)
}

/// Every string that must never show up anywhere.
pub fn forbidden() -> Vec<&'static str> {
    vec![
        SECRET_MARK,
        "ZQXpassphraseZQX",
        "ZQXwrongpassZQX",
        "correct horse",
    ]
}

pub fn assert_no_secret(text: &str) {
    for f in forbidden() {
        assert!(!text.contains(f), "secret {f:?} leaked in: {text}");
    }
}

/// `Display`, `Debug`, alternate `Debug` of an error and of every source below it.
pub fn error_texts(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        out.push_str(&format!("{err}\n{err:?}\n{err:#?}\n"));
        cur = err.source();
    }
    out
}

/// Credentials for user `u`, site `s`: all three middlewares, session token both
/// present and absent; every secret carries [`SECRET_MARK`].
pub fn creds_for(u: usize, s: usize) -> Credentials {
    match (u + s) % 4 {
        0 => Credentials::cloudstack(
            format!("apikey-{u}-{s}"),
            format!("{SECRET_MARK}-cs-{u}-{s}"),
        ),
        1 => Credentials::opennebula(format!("user{u}"), format!("{SECRET_MARK}-one-{u}-{s}")),
        2 => Credentials::ec2(
            format!("AKID{u}X{s}"),
            format!("{SECRET_MARK}-ec2-{u}-{s}"),
            Some(format!("{SECRET_MARK}-token-{u}-{s}")),
        ),
        _ => Credentials::ec2(
            format!("AKID{u}Y{s}"),
            format!("{SECRET_MARK}-euca-{u}-{s}"),
            None,
        ),
    }
}

pub fn user(u: usize) -> String {
    format!("user-{u:02}@portal")
}

pub fn site(s: usize) -> SiteId {
    SiteId::new(format!("site-{s}"))
}

pub fn fast() -> KdfParams {
    KdfParams::insecure_fast_for_tests()
}

pub async fn create(path: &Path) -> EncryptedFileVault {
    EncryptedFileVault::options()
        .create(true)
        .kdf(fast())
        .open(path, &passphrase())
        .await
        .expect("create vault")
}

/// The file's bytes, modification time and mode: compared before and after a
/// failed open to show the file was not touched.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    bytes: Vec<u8>,
    mtime: SystemTime,
    mode: u32,
}

pub fn snapshot(path: &Path) -> Snapshot {
    let meta = std::fs::metadata(path).expect("metadata");
    #[cfg(unix)]
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode()
    };
    #[cfg(not(unix))]
    let mode = 0;
    Snapshot {
        bytes: std::fs::read(path).expect("read"),
        mtime: meta.modified().expect("mtime"),
        mode,
    }
}

/// Names of the files in `dir`.
pub fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

/// The `VaultError` behind an error, or a panic saying what came instead.
pub fn vault_error(e: &intercloud_core::Error) -> &VaultError {
    VaultError::of(e).unwrap_or_else(|| panic!("not a VaultError: {e}"))
}
