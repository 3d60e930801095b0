//! `{:?}` and `Display` of the builder, provider, VPN fabric and every error path omit
//! the secret key and every signature sent; configuration errors say what to fix.

mod common;

use std::time::Duration;

use common::{builder, fixture, param, params_of, FakeCloud, SECRET};
use intercloud_cloudstack::{CloudStackBuilder, VpnMode};
use intercloud_core::{CloudProvider, Credentials, ErrorKind, VmFilter, VmId};

fn assert_clean(text: &str, signatures: &[String]) {
    assert!(!text.contains("S3CRET"), "secret key shown: {text}");
    assert!(!text.contains(SECRET), "secret key shown: {text}");
    for s in signatures {
        assert!(!text.contains(s.as_str()), "signature {s} shown: {text}");
        let enc = s
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        assert!(!text.contains(&enc), "signature {enc} shown: {text}");
    }
}

#[tokio::test]
async fn debug_and_errors_never_show_secret_or_signature() {
    let fake = FakeCloud::default();
    fake.on("listZones", 200, fixture("libcloud/listZones_default.json"))
        .on(
            "listServiceOfferings",
            200,
            "{\"listserviceofferingsresponse\": {",
        )
        .on(
            "listAccounts",
            530,
            r#"{"listaccountsresponse":{"errorcode":530,"errortext":"internal"}}"#,
        )
        .on(
            "destroyVirtualMachine",
            200,
            fixture("libcloud/destroyVirtualMachine_default.json"),
        )
        .on(
            "queryAsyncJobResult/17166",
            200,
            r#"{"queryasyncjobresultresponse":{"jobid":17166,"jobstatus":0}}"#,
        );
    let server = fake.start().await;
    let b = builder(&server).job_timeout(Duration::from_millis(20));
    let provider = b.build().unwrap();
    let vpn = b.build_vpn(VpnMode::SiteToSite).unwrap();
    let mut shown = vec![
        format!("{b:?} {b:#?}"),
        format!("{provider:?} {provider:#?}"),
        format!("{vpn:?} {vpn:#?}"),
    ];
    for e in [
        provider.offerings().await.unwrap_err(),
        provider.capacity().await.unwrap_err(),
        provider.delete_vm(&VmId::new("2602")).await.unwrap_err(),
        builder(&server)
            .credentials(Credentials::cloudstack("fnord", "wrong-S3CRET"))
            .build()
            .unwrap()
            .list_vms(&VmFilter::default())
            .await
            .unwrap_err(),
    ] {
        shown.push(format!("{e} {e:?} {:?}", std::error::Error::source(&e)));
    }
    // The provider's Debug after it cached lookups.
    provider.zone_id().await.unwrap();
    shown.push(format!("{provider:?}"));
    let signatures: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| param(&params_of(r), "signature").map(str::to_owned))
        .collect();
    assert!(
        signatures.len() >= 5,
        "requests were signed: {signatures:?}"
    );
    for text in &shown {
        assert_clean(text, &signatures);
    }
}

#[tokio::test]
async fn transport_error_hides_the_signed_url() {
    let p = CloudStackBuilder::new()
        .endpoint("http://127.0.0.1:9/client/api")
        .credentials(Credentials::cloudstack("k", "S3CRET-k"))
        .zone("z")
        .build()
        .unwrap();
    let e = p.delete_vm(&VmId::new("1")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    let text = format!("{e} {e:?} {:?}", std::error::Error::source(&e));
    assert!(!text.contains("signature"), "{text}");
    assert!(!text.contains("apiKey"), "{text}");
    assert_clean(&text, &[]);
}

#[test]
fn build_errors_say_what_to_fix() {
    let e = CloudStackBuilder::new().build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("endpoint"), "{e}");

    let e = CloudStackBuilder::new()
        .site("hok")
        .endpoint("not a url")
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("not a URL"), "{e}");
    assert_eq!(e.site().map(|s| s.as_str()), Some("hok"));

    let e = CloudStackBuilder::new()
        .endpoint("http://user:S3CRET-pw@127.0.0.1/client/api")
        .credentials(Credentials::cloudstack("k", "S3CRET-k"))
        .zone("z")
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("must not carry a user"), "{e}");
    assert!(!e.to_string().contains("S3CRET"), "{e}");

    let e = CloudStackBuilder::new()
        .endpoint("http://127.0.0.1/client/api")
        .credentials(Credentials::opennebula("u", "S3CRET-p"))
        .zone("z")
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("not CloudStack credentials"), "{e}");

    let e = CloudStackBuilder::new()
        .endpoint("http://127.0.0.1/client/api")
        .credentials(Credentials::cloudstack("k", "S3CRET-k"))
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("zone"), "{e}");
    // A VPN fabric needs no zone.
    CloudStackBuilder::new()
        .endpoint("http://127.0.0.1/client/api")
        .credentials(Credentials::cloudstack("k", "S3CRET-k"))
        .build_vpn(VpnMode::SiteToSite)
        .unwrap();
}

#[test]
fn from_env_reads_the_terraform_names() {
    // Only this test touches these variables.
    std::env::set_var("CLOUDSTACK_API_URL", "http://127.0.0.1:8080/client/api");
    std::env::set_var("CLOUDSTACK_API_KEY", "env-key");
    std::env::set_var("CLOUDSTACK_SECRET_KEY", "env-S3CRET");
    std::env::set_var("CLOUDSTACK_ZONE", "zone1");
    let b = CloudStackBuilder::from_env();
    assert!(!format!("{b:?}").contains("S3CRET"));
    let p = b.build().unwrap();
    assert_eq!(p.site().as_str(), "127.0.0.1");
    std::env::remove_var("CLOUDSTACK_SECRET_KEY");
    let e = CloudStackBuilder::from_env().build().unwrap_err();
    assert!(e.to_string().contains("CLOUDSTACK_API_KEY"), "{e}");

    let e = CloudStackBuilder::from_env_prefix("ICTEST_NOPE")
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("ICTEST_NOPE_API_URL"), "{e}");
}
