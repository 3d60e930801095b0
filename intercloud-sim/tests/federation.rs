//! The in-process federation: endpoints, faults switched at run time, rate limits with
//! the middleware's own answer, the orphan query, seeded reproducibility, and no secrets
//! in `Debug`.

use intercloud_sim::testing::{cloudstack_query, ec2_form, ec2_headers, http};
use intercloud_sim::{Faults, Federation, FederationConfig, SimCredentials, SiteHandle};

fn fast() -> FederationConfig {
    let mut cfg = FederationConfig::seed_default();
    cfg.time_scale = 0.001;
    cfg
}

async fn cs(site: &SiteHandle, params: &[(&str, &str)]) -> (u16, String) {
    let SimCredentials::Cloudstack {
        api_key,
        secret_key,
    } = site.credentials()
    else {
        panic!("creds")
    };
    let q = cloudstack_query(params, api_key, secret_key);
    http(site.addr(), "GET", &format!("/client/api?{q}"), &[], "")
        .await
        .expect("http")
}

async fn one(site: &SiteHandle, method: &str, params: &str) -> (u16, String) {
    let SimCredentials::Opennebula { user, password } = site.credentials() else {
        panic!("creds")
    };
    let body = format!(
        "<?xml version='1.0'?><methodCall><methodName>{method}</methodName><params><param><value><string>{user}:{password}</string></value></param>{params}</params></methodCall>"
    );
    http(site.addr(), "POST", "/RPC2", &[], &body)
        .await
        .expect("http")
}

#[tokio::test]
async fn default_federation_mirrors_the_seed() {
    let fed = Federation::start(fast()).await.expect("start");
    let ids: Vec<&str> = fed.sites().iter().map(|s| s.id().as_str()).collect();
    assert_eq!(ids, ["hokkaido", "nii", "tokyo"]);
    assert!(fed
        .site("hokkaido")
        .expect("site")
        .endpoint()
        .ends_with("/client/api"));
    assert!(fed.site("nii").expect("site").endpoint().ends_with("/RPC2"));
    assert!(fed
        .site("tokyo")
        .expect("site")
        .endpoint()
        .starts_with("http://127.0.0.1:"));
    let link = fed
        .links()
        .iter()
        .find(|l| l.between[0].as_str() == "hokkaido" && l.between[1].as_str() == "tokyo")
        .expect("link");
    assert_eq!(link.rtt_ms, 20.0);
    assert!((link.usable_mbps() - 790.0).abs() < 1.0);
    let topo = fed.topology();
    topo.validate().expect("valid topology");
    let hk = &topo.sites[&intercloud_core::model::SiteId::new("hokkaido")];
    assert_eq!(
        hk.levels[&intercloud_core::model::ServiceLevel::new("S")].offering,
        "Small Instance"
    );
    assert_eq!(
        hk.levels[&intercloud_core::model::ServiceLevel::new("S")].capacity,
        2000
    );
    assert_eq!(hk.rate_limit, Some(25.0 / 0.001), "wall-clock rate");
    assert!(fed
        .site("nii")
        .expect("nii")
        .core_credentials()
        .fits(intercloud_core::model::Middleware::OpenNebula));
    let dbg = format!(
        "{fed:?} {:?} {topo:?} {:?}",
        fed.sites(),
        fed.site("tokyo").expect("t").core_credentials()
    );
    for secret in [
        "hokkaido-secret-key",
        "nii-password",
        "tokyo-secret-access-key",
    ] {
        assert!(!dbg.contains(secret), "Debug leaks {secret}");
    }
    fed.shutdown().await;
}

#[tokio::test]
async fn outage_error_rate_and_throttling_switch_at_run_time() {
    let fed = Federation::start(fast()).await.expect("start");
    let h = fed.site("hokkaido").expect("site");
    assert_eq!(cs(h, &[("command", "listZones")]).await.0, 200);
    h.set_faults(Faults {
        outage: Some([0.0, 1.0e9]),
        ..Faults::default()
    });
    assert_eq!(cs(h, &[("command", "listZones")]).await.0, 503);
    h.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let (status, body) = cs(h, &[("command", "listZones")]).await;
    assert_eq!(status, 530, "{body}");
    assert!(body.contains("\"errorcode\":530"));
    h.set_faults(Faults::default());

    // Real time, no latency: the 25-token bucket empties and CloudStack answers 429.
    let mut cfg = FederationConfig::seed_default();
    cfg.sites[0].latency_ms = 0.0;
    let slow = Federation::start(cfg).await.expect("start");
    let h2 = slow.site("hokkaido").expect("site");
    let mut codes = Vec::new();
    for _ in 0..30 {
        codes.push(cs(h2, &[("command", "listZones")]).await.0);
    }
    assert!(codes.iter().filter(|c| **c == 200).count() >= 25);
    assert!(codes.contains(&429), "{codes:?}");
    assert!(h2.throttled() >= 1);
    assert_eq!(h2.calls()["listZones"], 30);

    let mut cfg = FederationConfig::seed_default();
    cfg.sites[1].latency_ms = 0.0;
    cfg.sites[1].rate_limit = Some(2.0);
    let limited = Federation::start(cfg).await.expect("start");
    let nl = limited.site("nii").expect("site");
    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(one(nl, "one.system.version", "").await.0);
    }
    assert_eq!(codes[..2], [200, 200]);
    assert!(
        codes[2..].contains(&503),
        "a rate-limiting proxy's 503: {codes:?}"
    );

    let n = fed.site("nii").expect("site");
    n.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let (_, body) = one(n, "one.system.version", "").await;
    assert!(body.contains("<i4>8192</i4>"), "{body}");
}

#[tokio::test]
async fn orphan_query_sees_only_alive_tagged_resources() {
    let fed = Federation::start(fast()).await.expect("start");
    let t = fed.site("tokyo").expect("site");
    let SimCredentials::Ec2 {
        access_key_id,
        secret_access_key,
    } = t.credentials()
    else {
        panic!("creds")
    };
    let image = t.config().images[0].clone();
    let body = ec2_form(&[
        ("Action", "RunInstances"),
        ("ImageId", &image),
        ("InstanceType", "t3.small"),
        ("MinCount", "3"),
        ("MaxCount", "3"),
        ("UserData", "I2Nsb3VkLWNvbmZpZwo="),
        ("TagSpecification.1.ResourceType", "instance"),
        ("TagSpecification.1.Tag.1.Key", "intercloud-cluster"),
        ("TagSpecification.1.Tag.1.Value", "orphans"),
    ]);
    let headers = ec2_headers(
        &t.addr().to_string(),
        &body,
        access_key_id,
        secret_access_key,
        t.zone().expect("region"),
    );
    let (status, resp) = http(t.addr(), "POST", "/", &headers, &body)
        .await
        .expect("run");
    assert_eq!(status, 200, "{resp}");
    let alive = fed.alive_with_tag("intercloud-cluster", "orphans");
    assert_eq!(alive.len(), 3);
    assert_eq!(alive[0].user_data.as_deref(), Some("I2Nsb3VkLWNvbmZpZwo="));
    assert!(
        !format!("{alive:?}").contains("I2Nsb3VkLWNvbmZpZwo="),
        "Debug hides user data"
    );
    let body = ec2_form(&[
        ("Action", "TerminateInstances"),
        ("InstanceId.1", &alive[0].id),
    ]);
    let headers = ec2_headers(
        &t.addr().to_string(),
        &body,
        access_key_id,
        secret_access_key,
        t.zone().expect("region"),
    );
    assert_eq!(
        http(t.addr(), "POST", "/", &headers, &body)
            .await
            .expect("term")
            .0,
        200
    );
    assert_eq!(fed.alive_with_tag("intercloud-cluster", "orphans").len(), 2);
    assert_eq!(
        fed.resources().len(),
        3,
        "deleted resources stay in the history"
    );
    assert_eq!(t.calls()["RunInstances"], 1);
}

#[tokio::test]
async fn equal_seeds_give_equal_runs() {
    async fn ids(seed: u64) -> Vec<String> {
        let mut cfg = fast();
        cfg.seed = seed;
        let fed = Federation::start(cfg).await.expect("start");
        let n = fed.site("hokkaido").expect("site");
        let (_, z) = cs(n, &[("command", "listZones")]).await;
        let (_, o) = cs(n, &[("command", "listServiceOfferings")]).await;
        let (_, t) = cs(
            n,
            &[
                ("command", "listTemplates"),
                ("templatefilter", "executable"),
            ],
        )
        .await;
        let pick = |doc: &str, k: &str| -> String {
            let v: serde_json::Value = serde_json::from_str(doc).expect("json");
            v.as_object().and_then(|o| o.values().next()).expect("env")[k][0]["id"]
                .as_str()
                .expect("id")
                .to_owned()
        };
        let (zone, off, tmpl) = (
            pick(&z, "zone"),
            pick(&o, "serviceoffering"),
            pick(&t, "template"),
        );
        for _ in 0..3 {
            let (s, b) = cs(
                n,
                &[
                    ("command", "deployVirtualMachine"),
                    ("zoneid", &zone),
                    ("serviceofferingid", &off),
                    ("templateid", &tmpl),
                ],
            )
            .await;
            assert_eq!(s, 200, "{b}");
        }
        fed.resources().into_iter().map(|r| r.id).collect()
    }
    assert_eq!(ids(11).await, ids(11).await);
    assert_ne!(ids(11).await, ids(12).await);
}
