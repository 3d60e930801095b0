//! Core's conformance suite against a small stateful CloudStack stand-in (wiremock):
//! it verifies signatures, keeps VMs, tags and jobs, and answers with CloudStack's
//! shapes (UUID-like string ids, `{}` for empty lists, 431 for ids naming nothing,
//! 535 at the account's VM limit, one VPC tier whose addresses deploys may choose,
//! 533 "Unable to acquire Guest IP address" for one in use). The simulator's real
//! endpoint is the other stand-in (`sim_conformance.rs`).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{param, params_of, API_KEY, SECRET};
use intercloud_cloudstack::sign::{self, SignatureAlgorithm};
use intercloud_cloudstack::CloudStackBuilder;
use intercloud_core::testkit::{self, Fixture};
use intercloud_core::Credentials;
use serde_json::{json, Value};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const BOOT: Duration = Duration::from_millis(30);

struct VmRec {
    name: String,
    displayname: String,
    tags: BTreeMap<String, String>,
    created: Instant,
    ip: String,
}

#[derive(Default)]
struct Cloud {
    vms: BTreeMap<String, VmRec>,
    jobs: HashMap<String, Value>,
    next: u64,
    vm_limit: Option<usize>,
}

#[derive(Clone, Default)]
struct StatefulCloud(Arc<Mutex<Cloud>>);

fn ok(cmd: &str, payload: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({ format!("{}response", cmd.to_lowercase()): payload }))
}

fn fail(cmd: &str, code: u16, text: &str) -> ResponseTemplate {
    ResponseTemplate::new(code).set_body_json(json!({ format!("{}response", cmd.to_lowercase()):
        {"uuidList": [], "errorcode": code, "cserrorcode": 4350, "errortext": text} }))
}

impl Cloud {
    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}-0000-4000-8000-{:012}", self.next)
    }

    fn vm_json(&self, id: &str, vm: &VmRec) -> Value {
        let state = if vm.created.elapsed() >= BOOT {
            "Running"
        } else {
            "Starting"
        };
        let tags: Vec<Value> = vm
            .tags
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v, "resourceid": id, "resourcetype": "UserVm"}))
            .collect();
        json!({"id": id, "name": vm.name, "displayname": vm.displayname, "state": state,
               "zoneid": "z1", "serviceofferingid": "so-1", "serviceofferingname": "Small Instance",
               "nic": [{"id": "n", "networkid": "net-1", "ipaddress": vm.ip, "isdefault": true}], "tags": tags})
    }

    fn job(&mut self, result: Value) -> String {
        let jobid = self.id("job");
        self.jobs.insert(
            jobid.clone(),
            json!({"jobid": jobid, "jobstatus": 1, "jobresultcode": 0, "jobresulttype": "object", "jobresult": result}),
        );
        jobid
    }

    fn handle(&mut self, p: &[(String, String)]) -> ResponseTemplate {
        let cmd = param(p, "command").unwrap_or("");
        let get = |k: &str| param(p, k).map(str::to_owned);
        match cmd {
            "listZones" => ok(cmd, json!({"count": 1, "zone": [{"id": "z1", "name": "Sydney"}]})),
            "listServiceOfferings" => ok(
                cmd,
                json!({"count": 1, "serviceoffering": [{"id": "so-1", "name": "Small Instance", "cpunumber": 1, "memory": 512}]}),
            ),
            "listTemplates" => ok(
                cmd,
                json!({"count": 1, "template": [{"id": "t-1", "name": "centos", "isready": true}]}),
            ),
            "listNetworks" => ok(
                cmd,
                json!({"count": 1, "network": [{"id": "net-1", "name": "tier1", "cidr": "10.1.1.0/24", "gateway": "10.1.1.1", "vpcid": "vpc-1", "zoneid": "z1"}]}),
            ),
            "deployVirtualMachine" => {
                for required in ["zoneid", "serviceofferingid", "templateid"] {
                    if get(required).is_none() {
                        return fail(cmd, 431, &format!("{required} is required"));
                    }
                }
                if let Some(limit) = self.vm_limit {
                    if self.vms.len() >= limit {
                        return fail(cmd, 535, "Maximum number of resources of type 'user_vm' for account has been exceeded.");
                    }
                }
                let ip = match get("ipaddress") {
                    Some(ip) if self.vms.values().any(|v| v.ip == ip) => {
                        return fail(cmd, 533, "Unable to acquire Guest IP address for network Ntwk[204|Guest|8]");
                    }
                    Some(ip) => ip,
                    None => (10..250)
                        .map(|n| format!("10.1.1.{n}"))
                        .find(|ip| !self.vms.values().any(|v| v.ip == *ip))
                        .unwrap_or_default(),
                };
                let id = self.id("vm");
                let rec = VmRec {
                    ip,
                    name: get("name").unwrap_or_else(|| format!("VM-{id}")),
                    displayname: get("displayname").unwrap_or_default(),
                    tags: BTreeMap::new(),
                    created: Instant::now(),
                };
                let vm = self.vm_json(&id, &rec);
                self.vms.insert(id.clone(), rec);
                let jobid = self.job(json!({"virtualmachine": vm}));
                ok(cmd, json!({"id": id, "jobid": jobid}))
            }
            "createTags" => {
                let mut tags = BTreeMap::new();
                for i in 0.. {
                    match (get(&format!("tags[{i}].key")), get(&format!("tags[{i}].value"))) {
                        (Some(k), Some(v)) => tags.insert(k, v),
                        _ => break,
                    };
                }
                for id in get("resourceids").unwrap_or_default().split(',') {
                    match self.vms.get_mut(id) {
                        Some(vm) => vm.tags.extend(tags.clone()),
                        None => return fail(cmd, 431, "Unable to find resource by id"),
                    }
                }
                let jobid = self.job(json!({"success": true}));
                ok(cmd, json!({"jobid": jobid}))
            }
            "listVirtualMachines" => {
                if let Some(id) = get("id") {
                    if !self.vms.contains_key(&id) {
                        return fail(cmd, 431, "Unable to execute API command listvirtualmachines due to invalid value. Invalid parameter id value=x due to incorrect long value format, or entity does not exist");
                    }
                }
                let tag = get("tags[0].key").zip(get("tags[0].value"));
                let keyword = get("keyword");
                let all: Vec<Value> = self
                    .vms
                    .iter()
                    .filter(|(id, _)| get("id").is_none_or(|want| &want == *id))
                    .filter(|_| get("networkid").is_none_or(|n| n == "net-1"))
                    .filter(|(_, vm)| tag.as_ref().is_none_or(|(k, v)| vm.tags.get(k) == Some(v)))
                    .filter(|(_, vm)| keyword.as_ref().is_none_or(|k| vm.name.contains(k.as_str()) || vm.displayname.contains(k.as_str())))
                    .map(|(id, vm)| self.vm_json(id, vm))
                    .collect();
                let size: usize = get("pagesize").and_then(|s| s.parse().ok()).unwrap_or(500);
                let page: usize = get("page").and_then(|s| s.parse().ok()).unwrap_or(1);
                let items: Vec<Value> = all.iter().skip((page - 1) * size).take(size).cloned().collect();
                if all.is_empty() {
                    ok(cmd, json!({}))
                } else {
                    ok(cmd, json!({"count": all.len(), "virtualmachine": items}))
                }
            }
            "destroyVirtualMachine" => {
                let id = get("id").unwrap_or_default();
                let Some(vm) = self.vms.remove(&id) else {
                    return fail(cmd, 431, "entity does not exist");
                };
                let mut v = self.vm_json(&id, &vm);
                v["state"] = "Destroyed".into();
                let jobid = self.job(json!({"virtualmachine": v}));
                ok(cmd, json!({"jobid": jobid}))
            }
            "queryAsyncJobResult" => match get("jobid").and_then(|j| self.jobs.get(&j).cloned()) {
                Some(job) => ok(cmd, job),
                None => fail(cmd, 431, "no such job"),
            },
            _ => ResponseTemplate::new(401).set_body_json(json!({"errorresponse": {"errorcode": 401, "errortext": "unable to verify user credentials and/or request signature"}})),
        }
    }
}

impl Respond for StatefulCloud {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let p = params_of(req);
        let sig = param(&p, "signature").unwrap_or("");
        if sig != sign::signature(&p, SECRET.as_bytes(), SignatureAlgorithm::HmacSha1) {
            return ResponseTemplate::new(401).set_body_json(json!({"errorresponse": {"errorcode": 401, "errortext": "unable to verify user credentials and/or request signature"}}));
        }
        self.0.lock().unwrap().handle(&p)
    }
}

async fn start(limit: Option<usize>) -> (MockServer, StatefulCloud) {
    let cloud = StatefulCloud::default();
    cloud.0.lock().unwrap().vm_limit = limit;
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::path("/client/api"))
        .respond_with(cloud.clone())
        .mount(&server)
        .await;
    (server, cloud)
}

fn provider(server: &MockServer) -> intercloud_cloudstack::CloudStackProvider {
    CloudStackBuilder::new()
        .site("hokkaido")
        .endpoint(format!("{}/client/api", server.uri()))
        .credentials(Credentials::cloudstack(API_KEY, SECRET))
        .zone("Sydney")
        .poll_interval(Duration::from_millis(10))
        .job_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn fixture() -> Fixture {
    Fixture::new("Small Instance")
        .image("centos")
        .missing_id("00000000-0000-4000-8000-000000000000")
}

#[tokio::test]
async fn conformance_suite_passes_on_a_stateful_cloudstack_fake() {
    let (server, cloud) = start(None).await;
    let p = provider(&server);
    testkit::run_all(&p, &fixture()).await;
    assert!(cloud.0.lock().unwrap().vms.is_empty(), "scenarios clean up");
}

#[tokio::test]
async fn capacity_scenario_passes_at_the_account_vm_limit() {
    let (server, cloud) = start(Some(3)).await;
    let p = provider(&server);
    testkit::capacity_exceeded(&p, &fixture(), 3).await;
    assert!(
        cloud.0.lock().unwrap().vms.is_empty(),
        "rolled back and cleaned up"
    );
}
