use std::time::Duration;

use serde_json::Value;

use super::sign;
use crate::config::FederationConfig;
use crate::engine::Engine;
use crate::server::{dispatch, HttpRequest};

const KEY: &str = "hokkaido-api-key";
const SECRET: &str = "hokkaido-secret-key";

fn engine() -> Engine {
    let mut cfg = FederationConfig::seed_default().sites.remove(0);
    cfg.rate_limit = None;
    cfg.offerings[0].capacity = 5;
    Engine::new(cfg, 1, 1.0, 1, tokio::time::Instant::now())
}

fn enc(v: &str) -> String {
    sign::java_url_encode(v)
}

/// Builds a signed GET (independent of the server's parser: we encode here).
fn signed(params: &[(&str, &str)], secret: &str) -> HttpRequest {
    let mut all: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    all.push(("apiKey".into(), KEY.into()));
    all.push(("response".into(), "json".into()));
    let sig = sign::sign(secret, &sign::string_to_sign(&all));
    all.push(("signature".into(), sig));
    let query: Vec<String> = all
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    HttpRequest {
        method: "GET".into(),
        path: "/client/api".into(),
        query: query.join("&"),
        headers: Default::default(),
        body: Default::default(),
    }
}

async fn call(e: &Engine, params: &[(&str, &str)]) -> (u16, Value) {
    let r = dispatch(e, signed(params, SECRET)).await;
    (
        r.status,
        serde_json::from_slice(&r.body).expect("json body"),
    )
}

#[test]
fn signing_vectors_from_fixtures() {
    let text = include_str!("../../tests/fixtures/cloudstack/signing_vectors.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 16);
    for v in vectors {
        let params: Vec<(String, String)> = v["params"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, val)| (k.clone(), val.as_str().unwrap().to_owned()))
            .collect();
        let secret = v["secret"].as_str().unwrap();
        let sts = sign::string_to_sign(&params);
        let sig = sign::sign(secret, &sts);
        if let Some(expected) = v["string_to_sign"].as_str() {
            assert_eq!(sts, expected, "{}", v["source"]);
        }
        // The cs-client `~` vector records what cs 5.2.0 sends, which the server rejects.
        if v["note"].as_str().unwrap_or("").contains("differs") {
            assert_ne!(sig, v["signature"].as_str().unwrap());
            continue;
        }
        assert_eq!(sig, v["signature"].as_str().unwrap(), "{}", v["source"]);
        let mut with_sig = params.clone();
        with_sig.push(("signature".into(), sig));
        let key = sign::param_ci(&params, "apikey").unwrap().to_owned();
        let now = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert!(
            sign::verify(&with_sig, &key, secret, now),
            "{}",
            v["source"]
        );
        assert!(!sign::verify(&with_sig, &key, "wrong", now));
    }
}

#[tokio::test(start_paused = true)]
async fn wrong_signature_gets_the_real_401_body() {
    let e = engine();
    let r = dispatch(&e, signed(&[("command", "listZones")], "not-the-secret")).await;
    assert_eq!(r.status, 401);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["listzonesresponse"]["errorcode"], 401);
    assert_eq!(
        v["listzonesresponse"]["errortext"],
        "unable to verify user credentials and/or request signature"
    );
    assert!(v["listzonesresponse"].get("cserrorcode").is_none());
    let r = dispatch(&e, signed(&[("command", "launchRockets")], SECRET)).await;
    assert_eq!(r.status, 401, "unknown commands look like bad signatures");
    assert!(!r.text().contains(SECRET));
    // Expired v3 request.
    let (s, _) = call(
        &e,
        &[
            ("command", "listZones"),
            ("signatureVersion", "3"),
            ("expires", "2001-01-01T00:00:00+0000"),
        ],
    )
    .await;
    assert_eq!(s, 401);
    let (s, _) = call(
        &e,
        &[
            ("command", "listZones"),
            ("signatureVersion", "3"),
            ("expires", "2100-01-01T00:00:00+0000"),
        ],
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test(start_paused = true)]
async fn deploy_poll_tag_list_destroy() {
    let e = engine();
    let (_, z) = call(&e, &[("command", "listZones")]).await;
    let zone = z["listzonesresponse"]["zone"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, o) = call(&e, &[("command", "listServiceOfferings")]).await;
    let off = o["listserviceofferingsresponse"]["serviceoffering"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, t) = call(
        &e,
        &[
            ("command", "listTemplates"),
            ("templatefilter", "executable"),
        ],
    )
    .await;
    let tmpl = t["listtemplatesresponse"]["template"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = call(&e, &[("command", "listTemplates")]).await;
    assert_eq!(s, 431, "templatefilter is required");

    let (s, d) = call(
        &e,
        &[
            ("command", "deployVirtualMachine"),
            ("serviceofferingid", &off),
            ("templateid", &tmpl),
            ("zoneid", &zone),
            ("name", "w-0"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{d}");
    let vm = d["deployvirtualmachineresponse"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = d["deployvirtualmachineresponse"]["jobid"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, q) = call(&e, &[("command", "queryAsyncJobResult"), ("jobid", &job)]).await;
    assert_eq!(q["queryasyncjobresultresponse"]["jobstatus"], 0);
    assert!(q["queryasyncjobresultresponse"].get("jobresult").is_none());

    let (_, tg) = call(
        &e,
        &[
            ("command", "createTags"),
            ("resourceids", &vm),
            ("resourcetype", "UserVm"),
            ("tags[0].key", "intercloud-cluster"),
            ("tags[0].value", "c1"),
        ],
    )
    .await;
    assert!(tg["createtagsresponse"]["jobid"].is_string());

    let (_, l) = call(
        &e,
        &[
            ("command", "listVirtualMachines"),
            ("tags[0].key", "intercloud-cluster"),
            ("tags[0].value", "c1"),
            ("listall", "true"),
        ],
    )
    .await;
    assert_eq!(l["listvirtualmachinesresponse"]["count"], 1);
    assert_eq!(
        l["listvirtualmachinesresponse"]["virtualmachine"][0]["state"],
        "Starting"
    );
    let (_, none) = call(
        &e,
        &[
            ("command", "listVirtualMachines"),
            ("tags[0].key", "intercloud-cluster"),
            ("tags[0].value", "other"),
        ],
    )
    .await;
    assert_eq!(
        none,
        serde_json::json!({"listvirtualmachinesresponse": {}}),
        "empty lists are {{}}"
    );

    tokio::time::advance(Duration::from_secs(10)).await;
    let (_, q) = call(&e, &[("command", "queryAsyncJobResult"), ("jobid", &job)]).await;
    let q = &q["queryasyncjobresultresponse"];
    assert_eq!(q["jobstatus"], 1);
    assert_eq!(q["jobresult"]["virtualmachine"]["state"], "Running");
    assert_eq!(
        q["jobresult"]["virtualmachine"]["tags"][0]["key"],
        "intercloud-cluster"
    );
    assert!(q["jobresult"]["virtualmachine"]["nic"][0]["ipaddress"].is_string());

    let (_, x) = call(
        &e,
        &[
            ("command", "destroyVirtualMachine"),
            ("id", &vm),
            ("expunge", "true"),
        ],
    )
    .await;
    let djob = x["destroyvirtualmachineresponse"]["jobid"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::advance(Duration::from_secs(1)).await;
    let (_, q) = call(&e, &[("command", "queryAsyncJobResult"), ("jobid", &djob)]).await;
    assert_eq!(q["queryasyncjobresultresponse"]["jobstatus"], 1);
    assert_eq!(
        q["queryasyncjobresultresponse"]["jobresult"]["virtualmachine"]["state"],
        "Destroyed"
    );
    let (_, l) = call(&e, &[("command", "listVirtualMachines")]).await;
    assert_eq!(l["listvirtualmachinesresponse"], serde_json::json!({}));
    let (s, _) = call(&e, &[("command", "destroyVirtualMachine"), ("id", &vm)]).await;
    assert_eq!(s, 431);
    assert_eq!(e.calls()["deployVirtualMachine"], 1);
    let recs = e.records();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].state, "deleted");
}

#[tokio::test(start_paused = true)]
async fn capacity_pagination_throttling_and_job_failure() {
    let e = engine();
    let zone = super::fixed_id(&e, super::KIND_ZONE, 0);
    let off = super::fixed_id(&e, super::KIND_OFFERING, 0);
    let tmpl = super::fixed_id(&e, super::KIND_TEMPLATE, 0);
    let deploy = [
        ("command", "deployVirtualMachine"),
        ("serviceofferingid", off.as_str()),
        ("templateid", tmpl.as_str()),
        ("zoneid", zone.as_str()),
    ];
    for _ in 0..5 {
        assert_eq!(call(&e, &deploy).await.0, 200);
    }
    let (s, body) = call(&e, &deploy).await;
    assert_eq!(s, 535, "{body}");
    assert_eq!(body["deployvirtualmachineresponse"]["errorcode"], 535);

    let (_, p1) = call(
        &e,
        &[
            ("command", "listVirtualMachines"),
            ("page", "1"),
            ("pagesize", "2"),
        ],
    )
    .await;
    assert_eq!(p1["listvirtualmachinesresponse"]["count"], 5);
    assert_eq!(
        p1["listvirtualmachinesresponse"]["virtualmachine"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (_, p3) = call(
        &e,
        &[
            ("command", "listVirtualMachines"),
            ("page", "3"),
            ("pagesize", "2"),
        ],
    )
    .await;
    assert_eq!(
        p3["listvirtualmachinesresponse"]["virtualmachine"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (s, _) = call(&e, &[("command", "listVirtualMachines"), ("pagesize", "2")]).await;
    assert_eq!(s, 431);

    // Rate limit: CloudStack's own 429.
    let mut cfg = FederationConfig::seed_default().sites.remove(0);
    cfg.rate_limit = Some(2.0);
    let e2 = Engine::new(cfg, 1, 1.0, 1, tokio::time::Instant::now());
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(call(&e2, &[("command", "listZones")]).await.0);
    }
    assert_eq!(statuses, vec![200, 200, 429]);

    // Job failure: the job ends with jobstatus 2 and the VM in Error.
    let mut cfg = FederationConfig::seed_default().sites.remove(0);
    cfg.rate_limit = None;
    cfg.faults.job_failure_rate = 1.0;
    let e3 = Engine::new(cfg, 1, 1.0, 1, tokio::time::Instant::now());
    let off = super::fixed_id(&e3, super::KIND_OFFERING, 0);
    let deploy = [
        ("command", "deployVirtualMachine"),
        ("serviceofferingid", off.as_str()),
        ("templateid", tmpl.as_str()),
        ("zoneid", zone.as_str()),
    ];
    let (_, d) = call(&e3, &deploy).await;
    let job = d["deployvirtualmachineresponse"]["jobid"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::advance(Duration::from_secs(10)).await;
    let (s, q) = call(&e3, &[("command", "queryAsyncJobResult"), ("jobid", &job)]).await;
    assert_eq!(s, 200);
    assert_eq!(q["queryasyncjobresultresponse"]["jobstatus"], 2);
    assert_eq!(
        q["queryasyncjobresultresponse"]["jobresult"]["errorcode"],
        533
    );
    let (_, l) = call(&e3, &[("command", "listVirtualMachines")]).await;
    assert_eq!(
        l["listvirtualmachinesresponse"]["virtualmachine"][0]["state"],
        "Error"
    );
}

#[tokio::test(start_paused = true)]
async fn vpn_objects_site_to_site_and_remote_access() {
    let e = engine();
    let (_, v) = call(&e, &[("command", "listVPCs")]).await;
    let vpc = v["listvpcsresponse"]["vpc"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, g) = call(&e, &[("command", "createVpnGateway"), ("vpcid", &vpc)]).await;
    let gw = g["createvpngatewayresponse"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, c) = call(
        &e,
        &[
            ("command", "createVpnCustomerGateway"),
            ("gateway", "198.51.100.7"),
            ("cidrlist", "10.2.0.0/16"),
            ("ipsecpsk", "psk-1"),
            ("ikepolicy", "aes128-sha1;modp1536"),
            ("esppolicy", "aes128-sha1"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{c}");
    let cjob = c["createvpncustomergatewayresponse"]["jobid"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::advance(Duration::from_secs(1)).await;
    let (_, q) = call(&e, &[("command", "queryAsyncJobResult"), ("jobid", &cjob)]).await;
    let cgw_obj = &q["queryasyncjobresultresponse"]["jobresult"]["vpncustomergateway"];
    assert_eq!(cgw_obj["ikelifetime"], 86400);
    assert_eq!(cgw_obj["dpd"], false);
    let cgw = cgw_obj["id"].as_str().unwrap().to_owned();
    let (_, k) = call(
        &e,
        &[
            ("command", "createVpnConnection"),
            ("s2svpngatewayid", &gw),
            ("s2scustomergatewayid", &cgw),
        ],
    )
    .await;
    assert!(k["createvpnconnectionresponse"]["jobid"].is_string());
    let (_, l) = call(&e, &[("command", "listVpnConnections")]).await;
    let conn = &l["listvpnconnectionsresponse"]["vpnconnection"][0];
    assert_eq!(conn["state"], "Connected");
    assert_eq!(conn["gateway"], "198.51.100.7");
    let conn_id = conn["id"].as_str().unwrap().to_owned();
    let (s, _) = call(&e, &[("command", "deleteVpnGateway"), ("id", &gw)]).await;
    assert_eq!(s, 536, "gateway in use");
    for (cmd, id) in [
        ("deleteVpnConnection", &conn_id),
        ("deleteVpnCustomerGateway", &cgw),
        ("deleteVpnGateway", &gw),
    ] {
        assert_eq!(
            call(&e, &[("command", cmd), ("id", id)]).await.0,
            200,
            "{cmd}"
        );
    }

    let (_, ips) = call(&e, &[("command", "listPublicIpAddresses")]).await;
    let ipid = ips["listpublicipaddressesresponse"]["publicipaddress"][1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, r) = call(
        &e,
        &[("command", "createRemoteAccessVpn"), ("publicipid", &ipid)],
    )
    .await;
    let rjob = r["createremoteaccessvpnresponse"]["jobid"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, u) = call(
        &e,
        &[
            ("command", "addVpnUser"),
            ("username", "ic"),
            ("password", "pw"),
        ],
    )
    .await;
    assert!(u["addvpnuserresponse"]["id"].is_string());
    tokio::time::advance(Duration::from_secs(1)).await;
    let (_, q) = call(&e, &[("command", "queryAsyncJobResult"), ("jobid", &rjob)]).await;
    let ra = &q["queryasyncjobresultresponse"]["jobresult"]["remoteaccessvpn"];
    assert_eq!(ra["state"], "Running");
    assert_eq!(ra["presharedkey"].as_str().unwrap().len(), 24);
    let (_, l) = call(
        &e,
        &[("command", "listRemoteAccessVpns"), ("publicipid", &ipid)],
    )
    .await;
    assert_eq!(l["listremoteaccessvpnsresponse"]["count"], 1);
    assert_eq!(
        call(
            &e,
            &[("command", "deleteRemoteAccessVpn"), ("publicipid", &ipid)]
        )
        .await
        .0,
        200
    );
    assert_eq!(
        call(&e, &[("command", "removeVpnUser"), ("username", "ic")])
            .await
            .0,
        200
    );
    assert!(e.records().iter().all(|r| !r.is_alive()));
}

/// The ids `deployVirtualMachine` needs: zone, offering, template.
async fn deploy_ids(e: &Engine) -> (String, String, String) {
    let (_, z) = call(e, &[("command", "listZones")]).await;
    let (_, o) = call(e, &[("command", "listServiceOfferings")]).await;
    let (_, t) = call(
        e,
        &[
            ("command", "listTemplates"),
            ("templatefilter", "executable"),
        ],
    )
    .await;
    let id = |v: &Value| v.as_str().unwrap().to_owned();
    (
        id(&z["listzonesresponse"]["zone"][0]["id"]),
        id(&o["listserviceofferingsresponse"]["serviceoffering"][0]["id"]),
        id(&t["listtemplatesresponse"]["template"][0]["id"]),
    )
}

#[tokio::test(start_paused = true)]
async fn vpc_tier_addresses_and_requested_ip() {
    let e = engine();
    let (zone, off, tmpl) = deploy_ids(&e).await;
    let (_, vpcs) = call(&e, &[("command", "listVPCs")]).await;
    assert_eq!(vpcs["listvpcsresponse"]["vpc"][0]["cidr"], "10.101.0.0/16");
    let vpc = vpcs["listvpcsresponse"]["vpc"][0]["id"].clone();
    let (s, n) = call(
        &e,
        &[
            ("command", "listNetworks"),
            ("zoneid", &zone),
            ("listall", "true"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{n}");
    let tier = &n["listnetworksresponse"]["network"][0];
    assert_eq!(n["listnetworksresponse"]["count"], 1);
    assert_eq!(tier["vpcid"], vpc);
    assert_eq!(tier["cidr"], "10.101.0.0/20");
    let net = tier["id"].as_str().unwrap().to_owned();
    let (_, none) = call(&e, &[("command", "listNetworks"), ("id", "nope")]).await;
    assert_eq!(none["listnetworksresponse"], serde_json::json!({}));

    let deploy = |extra: Vec<(&'static str, String)>| {
        let (zone, off, tmpl) = (zone.clone(), off.clone(), tmpl.clone());
        let e = &e;
        async move {
            let mut params = vec![
                ("command", "deployVirtualMachine".to_owned()),
                ("serviceofferingid", off),
                ("templateid", tmpl),
                ("zoneid", zone),
            ];
            params.extend(extra);
            let refs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            call(e, &refs).await
        }
    };
    // By default: the next free host from .10 up.
    let (s, d) = deploy(vec![]).await;
    assert_eq!(s, 200, "{d}");
    let first = d["deployvirtualmachineresponse"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A requested address (with the network) is honoured.
    let (s, d) = deploy(vec![
        ("networkids", net.clone()),
        ("ipaddress", "10.101.3.7".into()),
    ])
    .await;
    assert_eq!(s, 200, "{d}");
    let (_, l) = call(
        &e,
        &[
            ("command", "listVirtualMachines"),
            ("networkid", &net),
            ("listall", "true"),
        ],
    )
    .await;
    let ips: Vec<&str> = l["listvirtualmachinesresponse"]["virtualmachine"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["nic"][0]["ipaddress"].as_str().unwrap())
        .collect();
    assert_eq!(ips, ["10.101.0.10", "10.101.3.7"]);
    let (_, other) = call(
        &e,
        &[("command", "listVirtualMachines"), ("networkid", "other")],
    )
    .await;
    assert_eq!(other["listvirtualmachinesresponse"], serde_json::json!({}));
    // In use: CloudStack's 533 from the guest network guru.
    let (s, d) = deploy(vec![("ipaddress", "10.101.3.7".into())]).await;
    assert_eq!(s, 533, "{d}");
    assert_eq!(
        d["deployvirtualmachineresponse"]["errortext"],
        "Unable to acquire Guest IP address for network Ntwk[204|Guest|8]"
    );
    // Outside the tier, or an unknown network: parameter errors.
    let (s, d) = deploy(vec![("ipaddress", "10.200.0.5".into())]).await;
    assert_eq!(s, 431, "{d}");
    let (s, _) = deploy(vec![("networkids", "nope".into())]).await;
    assert_eq!(s, 431);
    // The next default address skips the taken ones; a destroyed VM frees its own.
    let (s, d) = deploy(vec![]).await;
    assert_eq!(s, 200, "{d}");
    let (s, _) = call(
        &e,
        &[
            ("command", "destroyVirtualMachine"),
            ("id", &first),
            ("expunge", "true"),
        ],
    )
    .await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let (s, d) = deploy(vec![("ipaddress", "10.101.0.10".into())]).await;
    assert_eq!(s, 200, "{d}");
}

#[tokio::test]
async fn public_ips_of_the_vpc_and_its_source_nat() {
    let e = engine();
    let (_, nets) = call(&e, &[("command", "listNetworks")]).await;
    let tier = nets["listnetworksresponse"]["network"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let vpc = nets["listnetworksresponse"]["network"][0]["vpcid"]
        .as_str()
        .unwrap()
        .to_owned();
    let ips = |v: &Value| -> Vec<(String, bool)> {
        v["listpublicipaddressesresponse"]["publicipaddress"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|ip| {
                        (
                            ip["id"].as_str().unwrap_or_default().to_owned(),
                            ip["issourcenat"].as_bool().unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (_, all) = call(&e, &[("command", "listPublicIpAddresses")]).await;
    let all = ips(&all);
    assert_eq!(all.len(), 2);
    // The VPC's source NAT IP: found by vpcid, not by the tier.
    let (_, by_vpc) = call(
        &e,
        &[
            ("command", "listPublicIpAddresses"),
            ("vpcid", &vpc),
            ("issourcenat", "true"),
            ("listall", "true"),
        ],
    )
    .await;
    assert_eq!(ips(&by_vpc), [all[0].clone()]);
    assert!(all[0].1);
    let snat = &by_vpc["listpublicipaddressesresponse"]["publicipaddress"][0];
    assert!(snat.get("associatednetworkid").is_none(), "{snat}");
    assert_eq!(snat["vpcid"], vpc.as_str());
    let (_, by_tier) = call(
        &e,
        &[
            ("command", "listPublicIpAddresses"),
            ("associatednetworkid", &tier),
            ("issourcenat", "true"),
        ],
    )
    .await;
    assert!(ips(&by_tier).is_empty(), "{by_tier}");
    let (_, tier_ips) = call(
        &e,
        &[
            ("command", "listPublicIpAddresses"),
            ("associatednetworkid", &tier),
        ],
    )
    .await;
    assert_eq!(ips(&tier_ips), [all[1].clone()]);
    let (_, other) = call(
        &e,
        &[
            ("command", "listPublicIpAddresses"),
            ("vpcid", "00000000-0000-0000-0000-000000000000"),
        ],
    )
    .await;
    assert!(ips(&other).is_empty());
}

#[tokio::test(start_paused = true)]
async fn stop_and_start_keep_the_vm_and_refuse_wrong_states() {
    let e = engine();
    let (zone, off, tmpl) = deploy_ids(&e).await;
    let (_, d) = call(
        &e,
        &[
            ("command", "deployVirtualMachine"),
            ("serviceofferingid", &off),
            ("templateid", &tmpl),
            ("zoneid", &zone),
            ("name", "w-0"),
        ],
    )
    .await;
    let id = d["deployvirtualmachineresponse"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let state = |v: &Value| v["listvirtualmachinesresponse"]["virtualmachine"][0]["state"].clone();
    let list = [("command", "listVirtualMachines"), ("id", id.as_str())];
    let (s, r) = call(&e, &[("command", "startVirtualMachine"), ("id", &id)]).await;
    assert_eq!(s, 431, "a Starting VM is refused: {r}");
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(state(&call(&e, &list).await.1), "Running");
    let ip = call(&e, &list).await.1["listvirtualmachinesresponse"]["virtualmachine"][0]["nic"][0]
        ["ipaddress"]
        .clone();

    // Running → Stopped through the async stop job.
    let (s, r) = call(&e, &[("command", "stopVirtualMachine"), ("id", &id)]).await;
    assert_eq!(s, 200, "{r}");
    let job = r["stopvirtualmachineresponse"]["jobid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(state(&call(&e, &list).await.1), "Stopped");
    tokio::time::advance(Duration::from_secs(5)).await;
    let (_, j) = call(&e, &[("command", "queryAsyncJobResult"), ("jobid", &job)]).await;
    let j = &j["queryasyncjobresultresponse"];
    assert_eq!(j["jobstatus"], 1, "{j}");
    assert_eq!(j["jobresult"]["virtualmachine"]["state"], "Stopped");
    assert_eq!(
        j["cmd"],
        "org.apache.cloudstack.api.command.user.vm.StopVMCmd"
    );
    assert_eq!(e.records()[0].state, "stopped");

    // Stopped → Starting → Running: same id, same address; the job ends when it runs.
    let (s, r) = call(&e, &[("command", "startVirtualMachine"), ("id", &id)]).await;
    assert_eq!(s, 200, "{r}");
    let job = r["startvirtualmachineresponse"]["jobid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(state(&call(&e, &list).await.1), "Starting");
    let (_, j) = call(&e, &[("command", "queryAsyncJobResult"), ("jobid", &job)]).await;
    assert_eq!(j["queryasyncjobresultresponse"]["jobstatus"], 0);
    tokio::time::advance(Duration::from_secs(60)).await;
    let (_, j) = call(&e, &[("command", "queryAsyncJobResult"), ("jobid", &job)]).await;
    let j = &j["queryasyncjobresultresponse"];
    assert_eq!(j["jobstatus"], 1, "{j}");
    assert_eq!(j["jobresult"]["virtualmachine"]["id"], id.as_str());
    let (_, l) = call(&e, &list).await;
    assert_eq!(state(&l), "Running");
    assert_eq!(
        l["listvirtualmachinesresponse"]["virtualmachine"][0]["nic"][0]["ipaddress"],
        ip
    );
    assert_eq!(e.records().len(), 1, "no VM was made");

    // Running: start refused with 431; unknown or destroyed ids with 431 too.
    let (s, r) = call(&e, &[("command", "startVirtualMachine"), ("id", &id)]).await;
    assert_eq!(s, 431, "{r}");
    assert!(r.to_string().contains("already running"), "{r}");
    call(
        &e,
        &[
            ("command", "destroyVirtualMachine"),
            ("id", &id),
            ("expunge", "true"),
        ],
    )
    .await;
    tokio::time::advance(Duration::from_secs(5)).await;
    for cmd in ["startVirtualMachine", "stopVirtualMachine"] {
        let (s, r) = call(&e, &[("command", cmd), ("id", &id)]).await;
        assert_eq!(s, 431, "{cmd}: {r}");
        assert!(
            r.to_string().contains("Unable to find virtual machine"),
            "{r}"
        );
    }
}
