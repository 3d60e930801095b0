//! Virtual machines, tags and async jobs.

use serde_json::{json, Map, Value};

use super::catalog::zone_name;
use super::network;
use super::{
    date, fixed_id, list_payload, owner, paginate, CsError, CsResult, Params, KIND_OFFERING,
    KIND_TEMPLATE, KIND_ZONE,
};
use crate::engine::{Engine, JobResult, Phase, State, VmRec};

/// The CloudStack state name of a VM at `now`, or `None` once it is gone.
fn state_name(v: &VmRec, now: tokio::time::Instant) -> Option<&'static str> {
    if v.deleted.is_some() && v.phase(now) != Phase::Deleted {
        return Some("Expunging");
    }
    if v.power().is_some() && v.phase(now) != Phase::Deleted {
        return Some("Stopped");
    }
    match v.phase(now) {
        Phase::Booting => Some("Starting"),
        Phase::Running => Some("Running"),
        Phase::Failed => Some("Error"),
        Phase::Deleted => None,
    }
}

pub(super) fn vm_json(e: &Engine, v: &VmRec, state: &str) -> Value {
    let o = e.cfg.offerings.get(v.offering);
    let tmpl = e.cfg.images.iter().position(|i| *i == v.image).unwrap_or(0);
    let mut m = Map::new();
    m.insert("id".into(), json!(v.id));
    m.insert("name".into(), json!(v.name));
    m.insert(
        "displayname".into(),
        json!(v.extra("displayname").unwrap_or(&v.name)),
    );
    owner(e, &mut m);
    m.insert("created".into(), json!(date(e, v.created)));
    m.insert("state".into(), json!(state));
    m.insert("haenable".into(), json!(false));
    m.insert("zoneid".into(), json!(fixed_id(e, KIND_ZONE, 0)));
    m.insert("zonename".into(), json!(zone_name(e)));
    m.insert("templateid".into(), json!(fixed_id(e, KIND_TEMPLATE, tmpl)));
    m.insert("templatename".into(), json!(v.image));
    m.insert("passwordenabled".into(), json!(false));
    m.insert(
        "serviceofferingid".into(),
        json!(fixed_id(e, KIND_OFFERING, v.offering)),
    );
    m.insert(
        "serviceofferingname".into(),
        json!(o.map(|o| o.name.as_str()).unwrap_or("")),
    );
    m.insert("cpunumber".into(), json!(o.map_or(1, |o| o.cpus)));
    m.insert("cpuspeed".into(), json!(2000));
    m.insert("memory".into(), json!(o.map_or(1024, |o| o.memory_mb)));
    m.insert("hypervisor".into(), json!("KVM"));
    m.insert("instancename".into(), json!(format!("i-2-{}-VM", v.num)));
    let tier = network::tier(e);
    let mac = format!(
        "02:00:{:02x}:{:02x}:{:02x}:{:02x}",
        v.ip.octets()[0],
        v.ip.octets()[1],
        v.ip.octets()[2],
        v.ip.octets()[3]
    );
    m.insert(
        "nic".into(),
        json!([{
            "id": format!("{}-nic0", v.id), "networkid": network::tier_id(e),
            "networkname": network::tier_name(e), "netmask": tier.netmask().to_string(),
            "gateway": network::gateway(e).to_string(),
            "ipaddress": v.ip.to_string(), "traffictype": "Guest", "type": "Isolated",
            "isdefault": true, "macaddress": mac
        }]),
    );
    let tags: Vec<Value> = v
        .tags
        .iter()
        .map(|(k, val)| {
            let mut t = Map::new();
            t.insert("key".into(), json!(k));
            t.insert("value".into(), json!(val));
            t.insert("resourcetype".into(), json!("UserVm"));
            t.insert("resourceid".into(), json!(v.id));
            owner(e, &mut t);
            Value::Object(t)
        })
        .collect();
    m.insert("tags".into(), Value::Array(tags));
    m.insert("affinitygroup".into(), json!([]));
    m.insert("securitygroup".into(), json!([]));
    Value::Object(m)
}

/// How long a short job (tags, destroy, VPN objects) takes, in simulated seconds.
pub(super) fn short_job(e: &Engine) -> f64 {
    (2.0 * e.cfg.latency_ms / 1000.0).max(0.05)
}

pub(super) fn deploy(e: &Engine, p: &Params) -> CsResult {
    let c = "deployVirtualMachine";
    let off_id = p.required(c, "serviceofferingid")?;
    let tmpl_id = p.required(c, "templateid")?;
    let zone_id = p.required(c, "zoneid")?;
    if zone_id != fixed_id(e, KIND_ZONE, 0) {
        return Err(CsError::param(format!(
            "Unable to find zone by id {zone_id}"
        )));
    }
    let offering = (0..e.cfg.offerings.len())
        .find(|i| fixed_id(e, KIND_OFFERING, *i) == off_id)
        .ok_or_else(|| CsError::param(format!("Unable to find service offering: {off_id}")))?;
    let image = (0..e.cfg.images.len())
        .find(|i| fixed_id(e, KIND_TEMPLATE, *i) == tmpl_id)
        .and_then(|i| e.cfg.images.get(i))
        .ok_or_else(|| CsError::param(format!("Unable to use template {tmpl_id}")))?
        .clone();
    let user_data = p.get("userdata");
    if let Some(ud) = user_data {
        use base64::Engine as _;
        if base64::engine::general_purpose::STANDARD
            .decode(ud)
            .is_err()
        {
            return Err(CsError::param("User data is not base64 encoded"));
        }
        if ud.len() > 1_048_576 {
            return Err(CsError::param("User data is too long for POST request"));
        }
    }
    let mut st = e.lock();
    let name = p.get("name").map(str::to_owned);
    if let Some(n) = &name {
        let now = e.now();
        if st
            .vms
            .iter()
            .any(|v| v.name == *n && v.phase(now) != Phase::Deleted)
        {
            return Err(CsError::param(format!(
                "The vm with hostName {n} already exists in the network domain: cs1cloud.internal; network=guestnet"
            )));
        }
    }
    let ip = network::address_for(e, &st, p)?;
    let namer = |num: u64| name.clone().unwrap_or_else(|| format!("VM-{num}"));
    let idx = e
        .create_vms(&mut st, offering, 1, &namer, &image, &[], user_data)
        .map_err(|_| {
            CsError::new(
                535,
                "Maximum number of resources of type 'user_vm' for account name=admin in domain id=1 has been exceeded.",
            )
        })?;
    let idx = idx[0];
    st.vms[idx].ip = ip;
    if let Some(d) = p.get("displayname") {
        st.vms[idx].extra.push(("displayname", d.to_owned()));
    }
    let vm_id = st.vms[idx].id.clone();
    let done = st.vms[idx].ready;
    let job = e.add_job(
        &mut st,
        c,
        done,
        JobResult::Deploy(idx),
        ("VirtualMachine", vm_id.clone()),
    );
    Ok(json!({ "id": vm_id, "jobid": job }))
}

pub(super) fn destroy(e: &Engine, p: &Params) -> CsResult {
    let id = p.required("destroyVirtualMachine", "id")?;
    let mut st = e.lock();
    let now = e.now();
    let idx = find_vm(&st, id, now)?;
    let done = now + e.delay(&st, short_job(e));
    if st.vms[idx].deleted.is_some() {
        return Err(CsError::new(
            530,
            format!("VM {id} is already being destroyed"),
        ));
    }
    st.vms[idx].deleted = Some(done);
    let job = e.add_job(
        &mut st,
        "destroyVirtualMachine",
        done,
        JobResult::Destroy(idx),
        ("VirtualMachine", id.to_owned()),
    );
    Ok(json!({ "jobid": job }))
}

/// `startVirtualMachine` (async, StartVMCmd): a Stopped VM boots again, same id; the
/// job ends when it runs, with the VM in its result. A VM that is not Stopped is
/// refused with 431, as CloudStack's `UserVmManagerImpl.startVirtualMachine` does
/// for one already running; one being destroyed with 530.
pub(super) fn start(e: &Engine, p: &Params) -> CsResult {
    let c = "startVirtualMachine";
    let id = p.required(c, "id")?;
    let mut st = e.lock();
    let now = e.now();
    let idx = find_vm(&st, id, now)?;
    let v = &st.vms[idx];
    if v.deleted.is_some() {
        return Err(CsError::new(530, format!("VM {id} is being destroyed")));
    }
    match state_name(v, now) {
        Some("Stopped") => {}
        Some(other) => {
            return Err(CsError::param(format!(
                "The virtual machine {id} ({}) is already {}",
                v.name,
                if other == "Error" {
                    "in state Error"
                } else {
                    "running"
                }
            )))
        }
        None => {
            return Err(CsError::param(format!(
                "Unable to find virtual machine with specified id {id}"
            )))
        }
    }
    e.power_on(&mut st, idx);
    let done = st.vms[idx].ready;
    let job = e.add_job(
        &mut st,
        c,
        done,
        JobResult::Start(idx),
        ("VirtualMachine", id.to_owned()),
    );
    Ok(json!({ "jobid": job }))
}

/// `stopVirtualMachine` (async, StopVMCmd): a Running VM is powered off, keeping its
/// id, disk and address; one Stopped already is a job that succeeds; one Starting
/// or in Error is refused with 530.
pub(super) fn stop(e: &Engine, p: &Params) -> CsResult {
    let c = "stopVirtualMachine";
    let id = p.required(c, "id")?;
    let mut st = e.lock();
    let now = e.now();
    let idx = find_vm(&st, id, now)?;
    match state_name(&st.vms[idx], now) {
        Some("Running") => st.vms[idx].power_off("stopped"),
        Some("Stopped") => {}
        Some(other) => {
            return Err(CsError::new(
                530,
                format!("Unable to stop VM {id}: it is {other}"),
            ))
        }
        None => {
            return Err(CsError::param(format!(
                "Unable to find virtual machine with specified id {id}"
            )))
        }
    }
    let done = now + e.delay(&st, short_job(e));
    let job = e.add_job(
        &mut st,
        c,
        done,
        JobResult::Stop(idx),
        ("VirtualMachine", id.to_owned()),
    );
    Ok(json!({ "jobid": job }))
}

fn find_vm(st: &State, id: &str, now: tokio::time::Instant) -> Result<usize, CsError> {
    st.vm_index
        .get(id)
        .copied()
        .filter(|i| st.vms[*i].phase(now) != Phase::Deleted)
        .ok_or_else(|| {
            CsError::param(format!(
                "Unable to find virtual machine with specified id {id}"
            ))
        })
}

pub(super) fn list(e: &Engine, p: &Params) -> CsResult {
    let now = e.now();
    let tags = p.map_list("tags", "key", "value");
    let ids: Option<Vec<&str>> = p.get("ids").map(|s| s.split(',').collect());
    // Every VM is on the one tier.
    let on_network = p.get("networkid").is_none_or(|n| n == network::tier_id(e));
    let st = e.lock();
    let items: Vec<Value> = st
        .vms
        .iter()
        .filter_map(|v| state_name(v, now).map(|s| (v, s)))
        .filter(|(v, s)| {
            on_network
                && p.get("id").is_none_or(|i| i == v.id)
                && ids.as_ref().is_none_or(|ids| ids.contains(&v.id.as_str()))
                && p.get("name").is_none_or(|n| n == v.name)
                && p.get("state")
                    .is_none_or(|want| want.eq_ignore_ascii_case(s))
                && p.get("keyword").is_none_or(|k| v.name.contains(k))
                && tags.iter().all(|(k, val)| v.tag(k) == Some(val.as_str()))
        })
        .map(|(v, s)| vm_json(e, v, s))
        .collect();
    drop(st);
    let (items, total) = paginate(p, items)?;
    Ok(list_payload("virtualmachine", items, total))
}

fn job_json(e: &Engine, st: &State, j: &crate::engine::Job, now: tokio::time::Instant) -> Value {
    let mut m = Map::new();
    m.insert(
        "accountid".into(),
        json!(fixed_id(e, super::KIND_ACCOUNT, 2)),
    );
    m.insert("userid".into(), json!(fixed_id(e, super::KIND_ACCOUNT, 3)));
    m.insert("cmd".into(), json!(cmd_class(j.cmd)));
    m.insert("jobid".into(), json!(j.id));
    m.insert("jobprocstatus".into(), json!(0));
    m.insert("created".into(), json!(date(e, j.created)));
    m.insert("jobinstancetype".into(), json!(j.instance_type));
    m.insert("jobinstanceid".into(), json!(j.instance_id));
    if now < j.done {
        m.insert("jobstatus".into(), json!(0));
        m.insert("jobresultcode".into(), json!(0));
        return Value::Object(m);
    }
    let fail = |code: u16, text: String| (2, 530, json!({ "errorcode": code, "errortext": text }));
    let (status, code, result) = match &j.result {
        JobResult::Deploy(i) => {
            let v = &st.vms[*i];
            if v.fails {
                fail(533, format!("Unable to create a deployment for VM instance {{\"id\":{},\"instanceName\":\"i-2-{}-VM\",\"uuid\":\"{}\"}}", v.num, v.num, v.id))
            } else {
                (1, 0, json!({ "virtualmachine": vm_json(e, v, "Running") }))
            }
        }
        JobResult::Start(i) => match state_name(&st.vms[*i], now) {
            Some("Running") => (
                1,
                0,
                json!({ "virtualmachine": vm_json(e, &st.vms[*i], "Running") }),
            ),
            other => fail(
                530,
                format!(
                    "Unable to start VM {}: it is {}",
                    st.vms[*i].id,
                    other.unwrap_or("Destroyed")
                ),
            ),
        },
        JobResult::Stop(i) => (
            1,
            0,
            json!({ "virtualmachine": vm_json(e, &st.vms[*i], "Stopped") }),
        ),
        JobResult::Destroy(i) => (
            1,
            0,
            json!({ "virtualmachine": vm_json(e, &st.vms[*i], "Destroyed") }),
        ),
        JobResult::Success => (1, 0, json!({ "success": true })),
        JobResult::Object(i, name) => (
            1,
            0,
            json!({ *name: super::vpn::obj_json(e, &st.objects[*i]) }),
        ),
    };
    m.insert("jobstatus".into(), json!(status));
    m.insert("jobresultcode".into(), json!(code));
    m.insert("jobresulttype".into(), json!("object"));
    m.insert("jobresult".into(), result);
    m.insert("completed".into(), json!(date(e, j.done)));
    Value::Object(m)
}

fn cmd_class(cmd: &str) -> String {
    let (pkg, class) = match cmd {
        "deployVirtualMachine" => ("vm", "DeployVMCmd"),
        "destroyVirtualMachine" => ("vm", "DestroyVMCmd"),
        "startVirtualMachine" => ("vm", "StartVMCmd"),
        "stopVirtualMachine" => ("vm", "StopVMCmd"),
        "createTags" => ("tag", "CreateTagsCmd"),
        "deleteTags" => ("tag", "DeleteTagsCmd"),
        other => ("vpn", other),
    };
    let class = if pkg == "vpn" {
        let mut c = class.to_owned();
        if let Some(f) = c.get_mut(0..1) {
            f.make_ascii_uppercase();
        }
        format!("{c}Cmd")
    } else {
        class.to_owned()
    };
    format!("org.apache.cloudstack.api.command.user.{pkg}.{class}")
}

pub(super) fn query_job(e: &Engine, p: &Params) -> CsResult {
    let id = p.required("queryAsyncJobResult", "jobid")?;
    let now = e.now();
    let st = e.lock();
    let j = st
        .job_index
        .get(id)
        .map(|i| &st.jobs[*i])
        .ok_or_else(|| CsError::param(format!("Unable to find a job by id {id}")))?;
    Ok(job_json(e, &st, j, now))
}

pub(super) fn list_jobs(e: &Engine, p: &Params) -> CsResult {
    let now = e.now();
    let st = e.lock();
    let items: Vec<Value> = st.jobs.iter().map(|j| job_json(e, &st, j, now)).collect();
    drop(st);
    let (items, total) = paginate(p, items)?;
    Ok(list_payload("asyncjobs", items, total))
}

pub(super) fn create_tags(e: &Engine, p: &Params, create: bool) -> CsResult {
    let c = if create { "createTags" } else { "deleteTags" };
    let ids = p.required(c, "resourceids")?;
    let rtype = p.required(c, "resourcetype")?;
    let tags = p.map_list("tags", "key", "value");
    if create && tags.is_empty() {
        return Err(CsError::param(
            "Unable to execute API command createtags due to missing parameter tags",
        ));
    }
    let now = e.now();
    let mut st = e.lock();
    let mut targets = Vec::new();
    for id in ids.split(',').filter(|s| !s.is_empty()) {
        match (rtype.eq_ignore_ascii_case("UserVm"), st.vm_index.get(id)) {
            (true, Some(i)) if st.vms[*i].phase(now) != Phase::Deleted => targets.push(Some(*i)),
            (false, _) if st.obj_index.contains_key(id) => targets.push(None),
            _ => {
                return Err(CsError::param(format!(
                    "Unable to find resource by id {id} and type {rtype}"
                )))
            }
        }
    }
    for (n, id) in ids.split(',').filter(|s| !s.is_empty()).enumerate() {
        for (k, v) in &tags {
            match targets[n] {
                Some(i) if create => st.vms[i].set_tag(k, v),
                Some(i) => st.vms[i].tags.retain(|(tk, _)| tk != k),
                None => {
                    if let Some(&o) = st.obj_index.get(id) {
                        let obj = &mut st.objects[o];
                        obj.tags.retain(|(tk, _)| tk != k);
                        if create {
                            obj.tags.push((k.clone(), v.clone()));
                        }
                    }
                }
            }
        }
        if !create && tags.is_empty() {
            if let Some(i) = targets[n] {
                st.vms[i].tags.clear();
            }
        }
    }
    let done = now + e.delay(&st, short_job(e));
    let job = e.add_job(
        &mut st,
        c,
        done,
        JobResult::Success,
        ("None", String::new()),
    );
    Ok(json!({ "jobid": job }))
}

pub(super) fn list_tags(e: &Engine, p: &Params) -> CsResult {
    let now = e.now();
    let st = e.lock();
    let mut items = Vec::new();
    for v in st.vms.iter().filter(|v| v.phase(now) != Phase::Deleted) {
        for (k, val) in &v.tags {
            if p.get("key").is_some_and(|x| x != k) || p.get("value").is_some_and(|x| x != val) {
                continue;
            }
            if p.get("resourceid").is_some_and(|x| x != v.id) {
                continue;
            }
            let mut t = Map::new();
            t.insert("key".into(), json!(k));
            t.insert("value".into(), json!(val));
            t.insert("resourcetype".into(), json!("UserVm"));
            t.insert("resourceid".into(), json!(v.id));
            owner(e, &mut t);
            items.push(Value::Object(t));
        }
    }
    drop(st);
    let (items, total) = paginate(p, items)?;
    Ok(list_payload("tag", items, total))
}
