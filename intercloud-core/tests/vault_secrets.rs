//! No secret in any `Debug`/`Display`/error text of credentials, vaults and their
//! errors, and none in the vault file's bytes.

mod vault_support;

use intercloud_core::{
    CredentialRef, Credentials, EncryptedFileVault, KdfParams, MemoryVault, Middleware, Vault,
    VaultOptions,
};
use vault_support::*;

fn all_formats<T: std::fmt::Debug>(v: &T) -> String {
    format!("{v:?}\n{v:#?}\n")
}

#[tokio::test]
async fn no_secret_in_any_formatted_output_or_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.vault");
    let mut out = String::new();

    let creds: Vec<Credentials> = (0..4).map(|i| creds_for(i, 0)).collect();
    for c in &creds {
        out += &all_formats(c);
        out += &c.identity();
    }

    let file = create(&path).await;
    let memory = MemoryVault::new();
    for (i, c) in creds.iter().enumerate() {
        file.put("alice", &site(i), c.clone()).await.unwrap();
        memory.put("alice", &site(i), c.clone()).await.unwrap();
    }
    out += &all_formats(&file);
    out += &all_formats(&memory);
    out += &all_formats(&file.list("alice").await.unwrap());
    out += &all_formats(&file.get("alice", &site(2)).await.unwrap());
    out += &all_formats(&EncryptedFileVault::options().kdf(KdfParams::production()));
    out += &all_formats(&VaultOptions::new());
    drop(file);

    // Errors: wrong passphrase, tampered, truncated, missing, empty names.
    let good = std::fs::read(&path).unwrap();
    let reopen = || async { EncryptedFileVault::open(&path, &wrong_passphrase()).await };
    let mut errors = vec![reopen().await.unwrap_err()];
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    errors.push(
        EncryptedFileVault::open(&path, &passphrase())
            .await
            .unwrap_err(),
    );
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    errors.push(
        EncryptedFileVault::open(&path, &passphrase())
            .await
            .unwrap_err(),
    );
    errors.push(
        EncryptedFileVault::open(dir.path().join("none"), &passphrase())
            .await
            .unwrap_err(),
    );
    errors.push(memory.get("", &site(0)).await.unwrap_err());
    // Credential references and environment lookups.
    errors.push(
        format!("{SECRET_MARK}:x")
            .parse::<CredentialRef>()
            .unwrap_err(),
    );
    errors.push(
        format!("oneadmin:{SECRET_MARK}")
            .parse::<CredentialRef>()
            .unwrap_err(),
    );
    errors.push(
        format!("vault:{SECRET_MARK}/x")
            .parse::<CredentialRef>()
            .unwrap_err(),
    );
    errors.push(
        format!("env:{SECRET_MARK}-x")
            .parse::<CredentialRef>()
            .unwrap_err(),
    );
    let lookup = |name: &str| -> Option<String> {
        match name {
            "P_AUTH" => Some(format!("no-colon-{SECRET_MARK}")),
            "P_SECRET_KEY" | "P_SECRET_ACCESS_KEY" => Some(format!("{SECRET_MARK}-v")),
            _ => None,
        }
    };
    for mw in [
        Middleware::CloudStack,
        Middleware::OpenNebula,
        Middleware::Ec2,
    ] {
        errors.push(Credentials::from_env(mw, "P", lookup).unwrap_err());
    }
    assert_eq!(errors.len(), 12);
    for e in &errors {
        out += &error_texts(e);
    }

    assert_no_secret(&out);
    // The test looked at real output: it names what it should.
    assert!(
        out.contains("******") && out.contains("wrong passphrase"),
        "{out}"
    );
    assert!(out.contains("P_API_KEY") && out.contains("P_AUTH") && out.contains("P_ACCESS_KEY_ID"));
}

#[tokio::test]
async fn the_vault_file_holds_no_secret_user_or_site_name_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.vault");
    let v = create(&path).await;
    for u in 0..3 {
        for s in 0..4 {
            v.put(&user(u), &site(s), creds_for(u, s)).await.unwrap();
        }
    }
    let bytes = std::fs::read(&path).unwrap();
    let haystack = String::from_utf8_lossy(&bytes);
    for needle in [
        SECRET_MARK,
        "user-00",
        "site-1",
        "apikey",
        "AKID",
        "cloudstack",
        PASSPHRASE,
    ] {
        assert!(
            !haystack.contains(needle),
            "{needle:?} in clear in the file"
        );
    }
    assert!(bytes.len() > 12 * 40, "the file really holds the entries");
}
