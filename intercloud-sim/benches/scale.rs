//! Scale benchmark: 2,000 VMs across 4 simulated sites (CloudStack, 2 × OpenNebula, EC2),
//! created and listed over the real wire protocols; prints the process RSS.
//!
//! Run: `cargo bench -p intercloud-sim --bench scale`

use std::time::{Duration, Instant};

use intercloud_core::model::SiteId;
use intercloud_sim::testing::{cloudstack_query, ec2_form, ec2_headers, http};
use intercloud_sim::{Federation, FederationConfig, SimCredentials, SiteHandle};

const PER_SITE: usize = 500;
const WORKERS: usize = 8;

fn rss_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn cloudstack(site: SiteHandle) {
    let SimCredentials::Cloudstack {
        api_key,
        secret_key,
    } = site.credentials().clone()
    else {
        return;
    };
    let get = |params: Vec<(&str, &str)>| {
        format!(
            "/client/api?{}",
            cloudstack_query(&params, &api_key, &secret_key)
        )
    };
    let (_, zones) = http(
        site.addr(),
        "GET",
        &get(vec![("command", "listZones")]),
        &[],
        "",
    )
    .await
    .expect("listZones");
    let (_, offs) = http(
        site.addr(),
        "GET",
        &get(vec![("command", "listServiceOfferings")]),
        &[],
        "",
    )
    .await
    .expect("offerings");
    let (_, tmpls) = http(
        site.addr(),
        "GET",
        &get(vec![
            ("command", "listTemplates"),
            ("templatefilter", "executable"),
        ]),
        &[],
        "",
    )
    .await
    .expect("templates");
    let id = |doc: &str, key: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(doc).expect("json");
        let inner = v
            .as_object()
            .and_then(|o| o.values().next())
            .expect("envelope");
        inner[key][0]["id"].as_str().expect("id").to_owned()
    };
    let (zone, off, tmpl) = (
        id(&zones, "zone"),
        id(&offs, "serviceoffering"),
        id(&tmpls, "template"),
    );
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let (site, api_key, secret_key, zone, off, tmpl) = (
            site.clone(),
            api_key.clone(),
            secret_key.clone(),
            zone.clone(),
            off.clone(),
            tmpl.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for i in (w..PER_SITE).step_by(WORKERS) {
                let name = format!("w-{i}");
                let q = cloudstack_query(
                    &[
                        ("command", "deployVirtualMachine"),
                        ("serviceofferingid", &off),
                        ("templateid", &tmpl),
                        ("zoneid", &zone),
                        ("name", &name),
                    ],
                    &api_key,
                    &secret_key,
                );
                let (st, body) = http(site.addr(), "GET", &format!("/client/api?{q}"), &[], "")
                    .await
                    .expect("deploy");
                assert_eq!(st, 200, "{body}");
                let v: serde_json::Value = serde_json::from_str(&body).expect("json");
                let vm = v["deployvirtualmachineresponse"]["id"]
                    .as_str()
                    .expect("id")
                    .to_owned();
                let q = cloudstack_query(
                    &[
                        ("command", "createTags"),
                        ("resourceids", &vm),
                        ("resourcetype", "UserVm"),
                        ("tags[0].key", "intercloud-cluster"),
                        ("tags[0].value", "scale"),
                    ],
                    &api_key,
                    &secret_key,
                );
                assert_eq!(
                    http(site.addr(), "GET", &format!("/client/api?{q}"), &[], "")
                        .await
                        .expect("tags")
                        .0,
                    200
                );
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
}

async fn opennebula(site: SiteHandle) {
    let SimCredentials::Opennebula { user, password } = site.credentials().clone() else {
        return;
    };
    let session = format!("{user}:{password}");
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let (site, session) = (site.clone(), session.clone());
        tasks.push(tokio::spawn(async move {
            for i in (w..PER_SITE).step_by(WORKERS) {
                let body = format!(
                    "<?xml version='1.0'?><methodCall><methodName>one.template.instantiate</methodName><params><param><value><string>{session}</string></value></param><param><value><int>0</int></value></param><param><value><string>w-{i}</string></value></param><param><value><boolean>0</boolean></value></param><param><value><string>INTERCLOUD_CLUSTER=\"scale\"</string></value></param><param><value><boolean>0</boolean></value></param></params></methodCall>"
                );
                let (st, resp) = http(site.addr(), "POST", "/RPC2", &[("Content-Type".into(), "text/xml".into())], &body).await.expect("instantiate");
                assert!(st == 200 && resp.contains("<boolean>1</boolean>"), "{resp}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
}

async fn ec2(site: SiteHandle) {
    let SimCredentials::Ec2 {
        access_key_id,
        secret_access_key,
    } = site.credentials().clone()
    else {
        return;
    };
    let region = site.zone().unwrap_or("us-east-1").to_owned();
    let image = site.config().images[0].clone();
    let n = PER_SITE.to_string();
    let body = ec2_form(&[
        ("Action", "RunInstances"),
        ("ImageId", &image),
        ("InstanceType", "t3.small"),
        ("MinCount", &n),
        ("MaxCount", &n),
        ("TagSpecification.1.ResourceType", "instance"),
        ("TagSpecification.1.Tag.1.Key", "intercloud-cluster"),
        ("TagSpecification.1.Tag.1.Value", "scale"),
    ]);
    let headers = ec2_headers(
        &site.addr().to_string(),
        &body,
        &access_key_id,
        &secret_access_key,
        &region,
    );
    let (st, resp) = http(site.addr(), "POST", "/", &headers, &body)
        .await
        .expect("run");
    assert_eq!(st, 200, "{resp}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut cfg = FederationConfig::seed_default();
    cfg.time_scale = 0.001;
    let mut osaka = cfg.sites[1].clone();
    osaka.id = SiteId::new("osaka");
    cfg.sites.push(osaka);
    for s in &mut cfg.sites {
        s.rate_limit = None;
        s.offerings[0].capacity = 1000;
    }
    let rss0 = rss_kb("VmRSS:");
    let fed = Federation::start(cfg).await.expect("start");
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for s in fed.sites() {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            match s.middleware() {
                intercloud_core::model::Middleware::CloudStack => cloudstack(s).await,
                intercloud_core::model::Middleware::OpenNebula => opennebula(s).await,
                _ => ec2(s).await,
            }
        }));
    }
    for t in tasks {
        t.await.expect("site");
    }
    let created = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let alive = fed.resources().iter().filter(|r| r.is_alive()).count();
    let running = fed
        .resources()
        .iter()
        .filter(|r| r.state == "running")
        .count();
    let tagged = fed.alive_with_tag("intercloud-cluster", "scale").len()
        + fed.alive_with_tag("INTERCLOUD_CLUSTER", "scale").len();
    // One list call per site, the deployer's polling pattern.
    let t1 = Instant::now();
    let nii = fed.site("nii").expect("nii").clone();
    let SimCredentials::Opennebula { user, password } = nii.credentials().clone() else {
        return;
    };
    let body = format!("<?xml version='1.0'?><methodCall><methodName>one.vmpool.infoextended</methodName><params><param><value><string>{user}:{password}</string></value></param><param><value><int>-2</int></value></param><param><value><int>-1</int></value></param><param><value><int>-1</int></value></param><param><value><int>-1</int></value></param></params></methodCall>");
    let (_, pool) = http(nii.addr(), "POST", "/RPC2", &[], &body)
        .await
        .expect("pool");
    let list_one = t1.elapsed();
    println!(
        "scale: {alive} alive VMs ({running} running, {tagged} tagged) across {} sites",
        fed.sites().len()
    );
    println!(
        "scale: created in {:.2?} over the wire; one.vmpool.infoextended of {} VMs: {:.2?}, {} KiB",
        created,
        PER_SITE,
        list_one,
        pool.len() / 1024
    );
    println!(
        "scale: RSS before start {} MiB, now {} MiB, peak {} MiB",
        rss0 / 1024,
        rss_kb("VmRSS:") / 1024,
        rss_kb("VmHWM:") / 1024
    );
    assert_eq!(alive, 4 * PER_SITE);
    assert!(rss_kb("VmHWM:") < 200 * 1024, "over 200 MB");
    fed.shutdown().await;
}
