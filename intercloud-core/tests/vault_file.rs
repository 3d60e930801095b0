//! The encrypted file vault: round trips, refusals that never touch the file,
//! atomic writes, tenant isolation.

mod vault_support;

use std::sync::Arc;

use intercloud_core::{
    Credentials, EncryptedFileVault, ErrorKind, KdfParams, MemoryVault, SiteId, Vault, VaultError,
};
use secrecy::SecretString;
use vault_support::*;

const USERS: usize = 20;
const SITES: usize = 5;

async fn fill(vault: &dyn Vault) {
    for u in 0..USERS {
        for s in 0..SITES {
            vault
                .put(&user(u), &site(s), creds_for(u, s))
                .await
                .unwrap();
        }
    }
}

async fn check_all(vault: &dyn Vault) {
    for u in 0..USERS {
        let sites = vault.list(&user(u)).await.unwrap();
        assert_eq!(sites, (0..SITES).map(site).collect::<Vec<_>>(), "user {u}");
        for s in 0..SITES {
            let got = vault.get(&user(u), &site(s)).await.unwrap().expect("entry");
            assert!(got.same_as(&creds_for(u, s)), "user {u} site {s}: {got:?}");
        }
    }
}

#[tokio::test]
async fn round_trips_20_users_by_5_sites_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("creds.vault");
    {
        let v = create(&path).await;
        fill(&v).await;
        check_all(&v).await;
    }
    let v = EncryptedFileVault::open(&path, &passphrase())
        .await
        .unwrap();
    check_all(&v).await;
    // Every middleware and both token cases are really in there.
    let kinds: Vec<_> = (0..4).map(|i| format!("{:?}", creds_for(0, i))).collect();
    assert!(kinds[0].starts_with("CloudStack") && kinds[1].starts_with("OpenNebula"));
    assert!(kinds[2].contains("Some") && kinds[3].contains("None"));

    // Replace one, remove one, reopen: both changes persisted, nothing else moved.
    let replacement = Credentials::cloudstack("new-key", format!("{SECRET_MARK}-new"));
    v.put(&user(3), &site(2), replacement.clone())
        .await
        .unwrap();
    assert!(v.remove(&user(7), &site(4)).await.unwrap());
    assert!(!v.remove(&user(7), &site(4)).await.unwrap());
    drop(v);
    let v = EncryptedFileVault::open(&path, &passphrase())
        .await
        .unwrap();
    assert!(v
        .get(&user(3), &site(2))
        .await
        .unwrap()
        .unwrap()
        .same_as(&replacement));
    assert!(v.get(&user(7), &site(4)).await.unwrap().is_none());
    assert_eq!(v.list(&user(7)).await.unwrap().len(), SITES - 1);
    assert!(v
        .get(&user(8), &site(4))
        .await
        .unwrap()
        .unwrap()
        .same_as(&creds_for(8, 4)));
}

/// The trait contract, on any vault: isolation, sorted list, remove semantics.
async fn contract(vault: &dyn Vault) {
    let shared = SiteId::new("hokkaido");
    let a = Credentials::cloudstack("alice-key", format!("{SECRET_MARK}-alice"));
    let b = Credentials::cloudstack("bob-key", format!("{SECRET_MARK}-bob"));
    vault.put("alice", &shared, a.clone()).await.unwrap();
    vault
        .put("alice", &"nii".into(), Credentials::opennebula("x", "y"))
        .await
        .unwrap();
    assert!(vault.get("bob", &shared).await.unwrap().is_none());
    assert!(vault.list("bob").await.unwrap().is_empty());
    assert!(!vault.remove("bob", &shared).await.unwrap());
    vault.put("bob", &shared, b.clone()).await.unwrap();
    // Bob's put did not replace Alice's entry, and each sees only their own.
    assert!(vault
        .get("alice", &shared)
        .await
        .unwrap()
        .unwrap()
        .same_as(&a));
    assert!(vault
        .get("bob", &shared)
        .await
        .unwrap()
        .unwrap()
        .same_as(&b));
    assert_eq!(
        vault.list("alice").await.unwrap(),
        vec![SiteId::new("hokkaido"), SiteId::new("nii")]
    );
    assert_eq!(vault.list("bob").await.unwrap(), vec![shared.clone()]);
    assert!(vault.remove("bob", &shared).await.unwrap());
    assert!(vault
        .get("alice", &shared)
        .await
        .unwrap()
        .unwrap()
        .same_as(&a));
    // Names are case-sensitive and not prefixes of one another.
    assert!(vault.get("Alice", &shared).await.unwrap().is_none());
    assert!(vault.get("alic", &shared).await.unwrap().is_none());
    // Empty names are refused, not treated as a wildcard.
    for e in [
        vault.get("", &shared).await.unwrap_err(),
        vault.list(" ").await.unwrap_err(),
        vault.put("alice", &"".into(), b.clone()).await.unwrap_err(),
        vault.remove("", &shared).await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
    }
}

#[tokio::test]
async fn users_are_isolated_in_both_vaults() {
    contract(&MemoryVault::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v");
    contract(&create(&path).await).await;
    // Isolation survives a reopen.
    let v = EncryptedFileVault::open(&path, &passphrase())
        .await
        .unwrap();
    assert!(v.get("bob", &"hokkaido".into()).await.unwrap().is_none());
    assert_eq!(v.list("alice").await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_wrong_passphrase_is_refused_and_the_file_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.vault");
    create(&path)
        .await
        .put("u", &"s".into(), creds_for(1, 1))
        .await
        .unwrap();
    let before = snapshot(&path);
    let e = EncryptedFileVault::options()
        .create(true)
        .open(&path, &wrong_passphrase())
        .await
        .unwrap_err();
    assert_eq!(snapshot(&path), before);
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert!(matches!(
        vault_error(&e),
        VaultError::WrongPassphrase { .. }
    ));
    let text = e.to_string();
    assert!(
        text.contains("wrong passphrase, or the vault file was modified"),
        "{text}"
    );
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert_no_secret(&error_texts(&e));
    // The right one still opens it.
    let v = EncryptedFileVault::open(&path, &passphrase())
        .await
        .unwrap();
    assert!(v
        .get("u", &"s".into())
        .await
        .unwrap()
        .unwrap()
        .same_as(&creds_for(1, 1)));
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    BadMagic,
    Version,
    Kdf,
    WrongPassphrase,
    Tampered,
}

fn classify(e: &VaultError) -> Option<Expect> {
    Some(match e {
        VaultError::BadMagic { .. } => Expect::BadMagic,
        VaultError::UnsupportedVersion { .. } => Expect::Version,
        VaultError::BadKdfParams { .. } => Expect::Kdf,
        VaultError::WrongPassphrase { .. } => Expect::WrongPassphrase,
        VaultError::Tampered { .. } => Expect::Tampered,
        _ => return None,
    })
}

#[tokio::test]
async fn a_flipped_byte_anywhere_is_refused_with_its_own_error_and_the_file_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.vault");
    let v = create(&path).await;
    fill(&v).await;
    drop(v);
    let good = std::fs::read(&path).unwrap();
    let n = good.len();
    // (offset, xor mask, expected); the layout is in src/vault/format.rs.
    let cases = [
        (0, 0x01, Expect::BadMagic),                 // magic
        (7, 0x20, Expect::BadMagic),                 // magic, last byte
        (9, 0x02, Expect::Version),                  // format version
        (10, 0x04, Expect::Kdf),                     // KDF id
        (14, 0x01, Expect::WrongPassphrase),         // memory cost 8 -> 9 KiB: other key
        (11, 0x80, Expect::Kdf),                     // memory cost beyond 1 GiB
        (18, 0x02, Expect::WrongPassphrase),         // iterations 1 -> 3
        (22, 0x80, Expect::Kdf),                     // parallelism 129
        (23, 0x01, Expect::WrongPassphrase),         // salt, first byte
        (38, 0x40, Expect::WrongPassphrase),         // salt, last byte
        (46, 0x01, Expect::WrongPassphrase),         // body length
        (47, 0x01, Expect::WrongPassphrase),         // nonce, first byte
        (70, 0x10, Expect::WrongPassphrase),         // nonce, last byte
        (71, 0x01, Expect::WrongPassphrase),         // header tag
        (86, 0x01, Expect::WrongPassphrase),         // header tag, last byte
        (87, 0x01, Expect::Tampered),                // ciphertext, first byte
        (87 + (n - 87) / 2, 0x08, Expect::Tampered), // ciphertext, middle
        (n - 16, 0x01, Expect::Tampered),            // body tag, first byte
        (n - 1, 0x80, Expect::Tampered),             // body tag, last byte
    ];
    for (offset, mask, expected) in cases {
        let mut bad = good.clone();
        bad[offset] ^= mask;
        std::fs::write(&path, &bad).unwrap();
        let before = snapshot(&path);
        let e = EncryptedFileVault::options()
            .create(true)
            .open(&path, &passphrase())
            .await
            .unwrap_err();
        assert_eq!(snapshot(&path), before, "offset {offset}: file changed");
        let ve = vault_error(&e);
        assert_eq!(classify(ve), Some(expected), "offset {offset}: {e}");
        let text = e.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert_no_secret(&error_texts(&e));
    }
    // Put back, it opens again.
    std::fs::write(&path, &good).unwrap();
    check_all(
        &EncryptedFileVault::open(&path, &passphrase())
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn truncated_foreign_newer_and_padded_files_get_distinct_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.vault");
    let v = create(&path).await;
    v.put("u", &"s".into(), creds_for(2, 2)).await.unwrap();
    drop(v);
    let good = std::fs::read(&path).unwrap();
    let n = good.len();
    let mut cases: Vec<(Vec<u8>, &str)> = [0, 1, 7, 8, 9, 10, 50, 86, 87, 88, n - 16, n - 1]
        .into_iter()
        .map(|cut| (good[..cut].to_vec(), "truncated"))
        .collect();
    cases.push((b"{\"users\": {}}".to_vec(), "not an intercloud vault file"));
    let mut newer = good.clone();
    newer[8..10].copy_from_slice(&2u16.to_be_bytes());
    cases.push((newer, "written by a newer intercloud"));
    let mut padded = good.clone();
    padded.extend_from_slice(b"xx");
    cases.push((padded, "2 unexpected bytes"));
    for (bytes, expected) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let before = snapshot(&path);
        let e = EncryptedFileVault::options()
            .create(true)
            .open(&path, &passphrase())
            .await
            .unwrap_err();
        assert_eq!(snapshot(&path), before);
        let text = e.to_string();
        assert!(text.contains(expected), "{} bytes: {text}", bytes.len());
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert_eq!(e.kind(), ErrorKind::Config, "{text}");
        assert_no_secret(&error_texts(&e));
    }
    let e = vault_error(
        &EncryptedFileVault::open(dir.path().join("missing"), &passphrase())
            .await
            .unwrap_err(),
    )
    .to_string();
    assert!(e.contains("does not exist") && e.contains("missing"), "{e}");
    assert!(!dir.path().join("missing").exists());
}

#[tokio::test]
async fn create_makes_an_empty_private_file_with_the_chosen_kdf_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.vault");
    let kdf = KdfParams {
        memory_kib: 16,
        iterations: 2,
        parallelism: 2,
    };
    let v = EncryptedFileVault::options()
        .create(true)
        .kdf(kdf)
        .open(&path, &passphrase())
        .await
        .unwrap();
    assert_eq!(v.kdf().await, kdf);
    assert_eq!(v.path(), path);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..10], b"ICVAULT\0\x00\x01");
    assert_eq!(&bytes[11..15], &16u32.to_be_bytes());
    assert_eq!(&bytes[15..19], &2u32.to_be_bytes());
    assert_eq!(&bytes[19..23], &2u32.to_be_bytes());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    v.put("u", &"s".into(), creds_for(0, 0)).await.unwrap();
    drop(v);
    // Opening with `create` again keeps what is there (and the file's own KDF).
    let v = EncryptedFileVault::options()
        .create(true)
        .kdf(fast())
        .open(&path, &passphrase())
        .await
        .unwrap();
    assert_eq!(v.kdf().await, kdf);
    assert_eq!(v.list("u").await.unwrap(), vec![SiteId::new("s")]);

    // An empty passphrase or bad cost is refused before anything is written.
    let p2 = dir.path().join("other.vault");
    let e = EncryptedFileVault::options()
        .create(true)
        .open(&p2, &SecretString::from(""))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    let e = EncryptedFileVault::options()
        .create(true)
        .kdf(KdfParams {
            memory_kib: 1,
            iterations: 1,
            parallelism: 1,
        })
        .open(&p2, &passphrase())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("memory cost"), "{e}");
    assert!(!p2.exists());
}

#[tokio::test]
async fn every_write_uses_a_fresh_nonce_keeps_the_salt_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.vault");
    let v = create(&path).await;
    let mut seen_nonces = std::collections::HashSet::new();
    let first = std::fs::read(&path).unwrap();
    for i in 0..30 {
        // The same content each time: only the nonce may make the bytes differ.
        v.put("u", &"s".into(), creds_for(1, 1)).await.unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes[23..39], first[23..39], "salt changed at write {i}");
        assert!(
            seen_nonces.insert(bytes[47..71].to_vec()),
            "nonce reused at write {i}"
        );
        assert_eq!(listing(dir.path()), vec![path.clone()]);
    }
    assert!(v.remove("u", &"s".into()).await.unwrap());
    assert_eq!(listing(dir.path()), vec![path.clone()]);
}

#[tokio::test]
async fn a_failed_write_changes_neither_memory_nor_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.vault");
    let v = create(&path).await;
    let old = creds_for(0, 0);
    v.put("u", &"s".into(), old.clone()).await.unwrap();
    // Put a non-empty directory where the file is, so the rename fails.
    let aside = dir.path().join("aside");
    std::fs::rename(&path, &aside).unwrap();
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("blocker"), b"x").unwrap();
    let e = v.put("u", &"s".into(), creds_for(9, 9)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("rename"), "{e}");
    assert_no_secret(&error_texts(&e));
    let e = v.remove("u", &"s".into()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(v
        .get("u", &"s".into())
        .await
        .unwrap()
        .unwrap()
        .same_as(&old));
    assert_eq!(listing(dir.path()), vec![aside.clone(), path.clone()]);
    // The file on disk still holds the old value.
    std::fs::remove_dir_all(&path).unwrap();
    std::fs::rename(&aside, &path).unwrap();
    let v = EncryptedFileVault::open(&path, &passphrase())
        .await
        .unwrap();
    assert!(v
        .get("u", &"s".into())
        .await
        .unwrap()
        .unwrap()
        .same_as(&old));
}

#[tokio::test]
async fn concurrent_writers_through_arc_dyn_vault_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.vault");
    let vault: Arc<dyn Vault> = Arc::new(create(&path).await);
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let vault = Arc::clone(&vault);
            tokio::spawn(async move { vault.put(&user(i % 8), &site(i), creds_for(i, i)).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    drop(vault);
    let v = EncryptedFileVault::open(&path, &passphrase())
        .await
        .unwrap();
    for i in 0..40 {
        assert!(v
            .get(&user(i % 8), &site(i))
            .await
            .unwrap()
            .unwrap()
            .same_as(&creds_for(i, i)));
    }
    assert_eq!(listing(dir.path()), vec![path]);
}

#[tokio::test]
async fn changing_the_passphrase_re_keys_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.vault");
    let v = create(&path).await;
    v.put("u", &"s".into(), creds_for(3, 3)).await.unwrap();
    let salt_before = std::fs::read(&path).unwrap()[23..39].to_vec();
    let new = SecretString::from("ZQXpassphraseZQX the second");
    v.change_passphrase(&new, fast()).await.unwrap();
    assert_ne!(std::fs::read(&path).unwrap()[23..39], salt_before[..]);
    // Still writable with the new key.
    v.put("u", &"t".into(), creds_for(4, 4)).await.unwrap();
    drop(v);
    let e = EncryptedFileVault::open(&path, &passphrase())
        .await
        .unwrap_err();
    assert!(matches!(
        vault_error(&e),
        VaultError::WrongPassphrase { .. }
    ));
    let v = EncryptedFileVault::open(&path, &new).await.unwrap();
    assert_eq!(
        v.list("u").await.unwrap(),
        vec![SiteId::new("s"), SiteId::new("t")]
    );
    let e = v
        .change_passphrase(&SecretString::from(""), fast())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn the_production_kdf_default_round_trips() {
    // One real-cost derivation per open (64 MiB, 3 passes): the default path works.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prod.vault");
    let started = std::time::Instant::now();
    let v = EncryptedFileVault::options()
        .create(true)
        .open(&path, &passphrase())
        .await
        .unwrap();
    eprintln!(
        "create with KdfParams::production(): {:?}",
        started.elapsed()
    );
    assert_eq!(v.kdf().await, KdfParams::production());
    v.put("u", &"s".into(), creds_for(2, 0)).await.unwrap();
    drop(v);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[11..15], &(64u32 * 1024).to_be_bytes());
    let v = EncryptedFileVault::open(&path, &passphrase())
        .await
        .unwrap();
    assert!(v
        .get("u", &"s".into())
        .await
        .unwrap()
        .unwrap()
        .same_as(&creds_for(2, 0)));
}

#[cfg(unix)]
#[tokio::test]
async fn a_vault_file_readable_by_others_is_private_again_after_the_next_write() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.vault");
    drop(create(&path).await);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let v = EncryptedFileVault::open(&path, &passphrase())
        .await
        .unwrap();
    v.put("u", &"s".into(), creds_for(0, 1)).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}
