//! Whatever bytes a vault file holds, opening it returns an error (or, for a real
//! vault, the vault) and never panics or touches the file.

mod vault_support;

use intercloud_core::EncryptedFileVault;
use proptest::prelude::*;
use vault_support::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Opens `bytes` as a vault file; asserts the file is unchanged afterwards.
fn open_bytes(bytes: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.vault");
    std::fs::write(&path, bytes).unwrap();
    let before = snapshot(&path);
    let result = runtime().block_on(async {
        EncryptedFileVault::options()
            .create(true)
            .open(&path, &passphrase())
            .await
    });
    assert_eq!(snapshot(&path), before);
    assert_eq!(listing(dir.path()), vec![path.clone()]);
    match result {
        Ok(_) => Ok(()),
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains(&path.display().to_string()), "{text}");
            Err(text)
        }
    }
}

/// A header that passes the structural checks (cheap KDF costs), then anything.
fn plausible_file() -> impl Strategy<Value = Vec<u8>> {
    (
        8u32..64,
        1u32..3,
        proptest::collection::vec(any::<u8>(), 16 + 8 + 24 + 16),
        proptest::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(m, t, middle, body)| {
            let mut f = b"ICVAULT\0\x00\x01\x01".to_vec();
            f.extend_from_slice(&m.to_be_bytes());
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&1u32.to_be_bytes());
            f.extend_from_slice(&middle);
            f.extend_from_slice(&body);
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_open_and_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        prop_assert!(open_bytes(&bytes).is_err());
    }

    #[test]
    fn plausible_headers_with_garbage_never_open(bytes in plausible_file()) {
        let e = open_bytes(&bytes).unwrap_err();
        prop_assert!(e.contains("wrong passphrase") || e.contains("truncated"), "{}", e);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_single_byte_change_to_a_real_vault_is_refused(
        at in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("src.vault");
        let good = runtime().block_on(async {
            let v = create(&path).await;
            for s in 0..3 {
                intercloud_core::Vault::put(&v, "u", &site(s), creds_for(1, s)).await.unwrap();
            }
            std::fs::read(&path).unwrap()
        });
        prop_assert!(open_bytes(&good).is_ok());
        let mut bad = good.clone();
        let i = at.index(bad.len());
        bad[i] ^= mask;
        let e = open_bytes(&bad).unwrap_err();
        assert_no_secret(&e);
    }
}
