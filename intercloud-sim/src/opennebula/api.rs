//! The OpenNebula methods: argument checks as xmlrpc-c does them (faults), then oned's
//! logic (error arrays).

use sha2::{Digest, Sha256};

use super::doc::{base_template, host_pool_xml, template_xml, user_xml, vm_xml};
use super::template::{self, to_xml, TVal, Template};
use super::xmlrpc::{Fault, XVal};
use super::{Args, OneError, ACTION, AUTHORIZATION, INTERNAL, NO_EXISTS, RPC_API};
use crate::config::SimCredentials;
use crate::engine::{Engine, Phase};

pub(super) const METHODS: &[&str] = &[
    "one.template.instantiate",
    "one.vm.allocate",
    "one.vm.info",
    "one.vm.action",
    "one.vm.update",
    "one.vmpool.info",
    "one.vmpool.infoextended",
    "one.vmpool.infoset",
    "one.template.info",
    "one.templatepool.info",
    "one.user.info",
    "one.hostpool.info",
    "one.system.version",
];

type R = Result<Result<XVal, OneError>, Fault>;

const ALLOCATE: i64 = 0x4000;

pub(super) fn run(e: &Engine, method: &str, a: &Args<'_>) -> R {
    match method {
        "one.template.instantiate" => instantiate(e, a),
        "one.vm.allocate" => allocate(e, a),
        "one.vm.info" => {
            let id = a.int(0)?;
            let now = e.now();
            let st = e.lock();
            Ok(match find(&st, id) {
                Some(i) => Ok(XVal::Str(vm_xml(e, &st.vms[i], now, true))),
                None => Err(OneError::new(
                    NO_EXISTS,
                    format!("Error getting virtual machine [{id}]."),
                    id,
                )),
            })
        }
        "one.vm.action" => action(e, a),
        "one.vm.update" => update(e, a),
        "one.vmpool.info" => pool(e, a, false),
        "one.vmpool.infoextended" => pool(e, a, true),
        "one.vmpool.infoset" => {
            let ids = a.string(0)?.to_owned();
            let extended = a.opt_bool(1)?;
            let now = e.now();
            let st = e.lock();
            let mut body = String::from("<VM_POOL>");
            for id in ids.split(',').filter_map(|s| s.trim().parse::<i64>().ok()) {
                if let Some(i) = find(&st, id) {
                    body.push_str(&vm_xml(e, &st.vms[i], now, extended));
                }
            }
            body.push_str("</VM_POOL>");
            Ok(Ok(XVal::Str(body)))
        }
        "one.template.info" => {
            let id = a.int(0)?;
            Ok(
                match usize::try_from(id)
                    .ok()
                    .filter(|i| *i < e.cfg.offerings.len())
                {
                    Some(i) => Ok(XVal::Str(template_xml(e, i))),
                    None => Err(OneError::new(
                        NO_EXISTS,
                        format!("Error getting virtual machine template [{id}]."),
                        id,
                    )),
                },
            )
        }
        "one.templatepool.info" => {
            let filter = a.int(0)?;
            a.int(1)?;
            a.int(2)?;
            if filter < -4 {
                return Ok(Err(OneError::new(RPC_API, "Incorrect filter_flag", -1)));
            }
            let body: String = (0..e.cfg.offerings.len())
                .map(|i| template_xml(e, i))
                .collect();
            Ok(Ok(XVal::Str(format!(
                "<VMTEMPLATE_POOL>{body}</VMTEMPLATE_POOL>"
            ))))
        }
        "one.user.info" => {
            let id = a.int(0)?;
            if id != -1 && id != 0 {
                return Ok(Err(OneError::new(
                    NO_EXISTS,
                    format!("Error getting user [{id}]."),
                    id,
                )));
            }
            let SimCredentials::Opennebula { user, password } = &e.cfg.credentials else {
                return Ok(Err(OneError::new(INTERNAL, "no user", -1)));
            };
            let hash = hex::encode(Sha256::digest(password.as_bytes()));
            Ok(Ok(XVal::Str(user_xml(e, user, &hash, e.now()))))
        }
        "one.hostpool.info" => Ok(Ok(XVal::Str(host_pool_xml(e, e.now())))),
        "one.system.version" => Ok(Ok(XVal::Str("6.10.0".into()))),
        _ => Err(Fault {
            code: -506,
            text: format!("Method '{method}' not defined"),
        }),
    }
}

fn find(st: &crate::engine::State, id: i64) -> Option<usize> {
    st.vm_index.get(&id.to_string()).copied()
}

/// Attributes oned keeps in TEMPLATE; everything else lands in USER_TEMPLATE.
const TEMPLATE_ATTRS: &[&str] = &[
    "CPU",
    "VCPU",
    "MEMORY",
    "DISK",
    "NIC",
    "NIC_ALIAS",
    "NIC_DEFAULT",
    "CONTEXT",
    "GRAPHICS",
    "OS",
    "FEATURES",
    "INPUT",
    "RAW",
    "PCI",
    "TOPOLOGY",
    "NUMA_NODE",
    "VMGROUP",
    "CPU_MODEL",
    "MEMORY_COST",
    "CPU_COST",
    "DISK_COST",
    "SCHED_REQUIREMENTS_",
    "TEMPLATE_ID",
    "VMID",
    "AUTOMATIC_REQUIREMENTS",
];

/// Creates one VM from a merged template; fills NIC, CONTEXT, TEMPLATE_ID, VMID; splits
/// USER_TEMPLATE off as tags.
fn create(
    e: &Engine,
    method: &str,
    offering: usize,
    merged: Template,
    name: Option<String>,
    hold: bool,
    tmpl_id: Option<usize>,
) -> Result<XVal, OneError> {
    let tmpl_name = e
        .cfg
        .offerings
        .get(offering)
        .map(|o| o.name.clone())
        .unwrap_or_default();
    let (sys, user): (Template, Template) = merged
        .into_iter()
        .filter(|(n, _)| n != "NAME")
        .partition(|(n, _)| TEMPLATE_ATTRS.contains(&n.as_str()));
    let tags: Vec<(String, String)> = user
        .iter()
        .filter_map(|(n, v)| match v {
            TVal::Single(s) => Some((n.clone(), s.clone())),
            TVal::Vector(_) => None,
        })
        .collect();
    let user_data = sys.iter().find_map(|(n, v)| match (n.as_str(), v) {
        ("CONTEXT", TVal::Vector(p)) => p
            .iter()
            .find(|(k, _)| k == "USER_DATA" || k == "USERDATA")
            .map(|(_, v)| v.clone()),
        _ => None,
    });
    let mut st = e.lock();
    let available = e.available(&st, offering);
    let namer = |num: u64| {
        name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| {
            if tmpl_id.is_some() {
                format!("{tmpl_name}-{num}")
            } else {
                format!("one-{num}")
            }
        })
    };
    let idx = match e.create_vms(
        &mut st,
        offering,
        1,
        &namer,
        &tmpl_name,
        &tags,
        user_data.as_deref(),
    ) {
        Ok(v) => v[0],
        Err(_) => {
            let cap = available
                + u32::try_from(
                    st.vms
                        .iter()
                        .filter(|v| v.offering == offering && v.phase(e.now()) != Phase::Deleted)
                        .count(),
                )
                .unwrap_or(0);
            let what = if tmpl_id.is_some() {
                "virtual machine template"
            } else {
                "virtual machine"
            };
            let _ = what;
            return Err(OneError::new(
                AUTHORIZATION,
                format!("User [0] : user [0] limit of {cap} reached for VMS quota in VM."),
                -1,
            ));
        }
    };
    let v = &st.vms[idx];
    let ip = v.ip.to_string();
    let o = v.ip.octets();
    let mac = format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]);
    let num = v.num;
    let mut full: Template = Vec::new();
    let mut nic_id = 0;
    for (n, val) in sys {
        match (n.as_str(), val) {
            ("NIC", TVal::Vector(mut p)) => {
                if nic_id == 0 {
                    p.push(("IP".into(), ip.clone()));
                    p.push(("MAC".into(), mac.clone()));
                }
                p.push(("NETWORK".into(), "private".into()));
                p.push(("NIC_ID".into(), nic_id.to_string()));
                p.sort();
                nic_id += 1;
                full.push((n, TVal::Vector(p)));
            }
            ("CONTEXT", TVal::Vector(mut p)) => {
                p.push(("DISK_ID".into(), "1".into()));
                p.push(("ETH0_IP".into(), ip.clone()));
                p.push(("ETH0_MAC".into(), mac.clone()));
                p.push(("TARGET".into(), "hda".into()));
                p.sort();
                full.push((n, TVal::Vector(p)));
            }
            (_, val) => full.push((n, val)),
        }
    }
    if let Some(t) = tmpl_id {
        full.push(("TEMPLATE_ID".into(), TVal::Single(t.to_string())));
    }
    full.push(("VMID".into(), TVal::Single(num.to_string())));
    full.sort_by(|a, b| a.0.cmp(&b.0));
    let short: Template = full
        .iter()
        .filter(|(n, _)| ["CPU", "MEMORY", "VCPU", "NIC", "DISK", "GRAPHICS"].contains(&n.as_str()))
        .map(|(n, v)| match (n.as_str(), v) {
            ("NIC", TVal::Vector(p)) => (
                n.clone(),
                TVal::Vector(
                    p.iter()
                        .filter(|(k, _)| {
                            [
                                "IP",
                                "MAC",
                                "NETWORK",
                                "NETWORK_ID",
                                "NIC_ID",
                                "SECURITY_GROUPS",
                            ]
                            .contains(&k.as_str())
                        })
                        .cloned()
                        .collect(),
                ),
            ),
            _ => (n.clone(), v.clone()),
        })
        .collect();
    let v = &mut st.vms[idx];
    v.extra.push(("tmpl_xml", to_xml(&full)));
    v.extra.push(("tmpl_short", to_xml(&short)));
    if hold {
        let boot = v.ready.saturating_duration_since(v.created);
        v.extra.push(("hold", "1".into()));
        v.extra.push(("boot_ms", boot.as_millis().to_string()));
        v.ready = v.created + std::time::Duration::from_secs(100 * 365 * 86_400);
    }
    let _ = method;
    Ok(XVal::Int(i64::try_from(num).unwrap_or(i64::MAX)))
}

fn instantiate(e: &Engine, a: &Args<'_>) -> R {
    let id = a.int(0)?;
    let name = a.string(1)?.to_owned();
    let hold = a.opt_bool(2)?;
    let extra = a.opt_string(3)?.to_owned();
    a.opt_bool(4)?;
    let Some(i) = usize::try_from(id)
        .ok()
        .filter(|i| *i < e.cfg.offerings.len())
    else {
        return Ok(Err(OneError::new(
            NO_EXISTS,
            format!("Error getting virtual machine template [{id}]."),
            id,
        )));
    };
    let extra = match template::parse(&extra) {
        Ok(t) => t,
        Err(msg) => {
            return Ok(Err(OneError::new(
                ALLOCATE,
                format!("Error allocating a new virtual machine template. {msg}"),
                -1,
            )))
        }
    };
    let merged = template::merge(&base_template(e, i), &extra);
    Ok(create(
        e,
        "one.template.instantiate",
        i,
        merged,
        Some(name),
        hold,
        Some(i),
    ))
}

fn allocate(e: &Engine, a: &Args<'_>) -> R {
    let text = a.string(0)?.to_owned();
    let hold = a.opt_bool(1)?;
    let t = match template::parse(&text) {
        Ok(t) => t,
        Err(msg) => return Ok(Err(OneError::new(INTERNAL, msg, -1))),
    };
    let single = |n: &str| {
        t.iter().find_map(|(k, v)| match v {
            TVal::Single(s) if k == n => Some(s.clone()),
            _ => None,
        })
    };
    if single("MEMORY").is_none() {
        return Ok(Err(OneError::new(
            ALLOCATE,
            "Error allocating a new virtual machine. No MEMORY in template.",
            -1,
        )));
    }
    let mem: Option<u32> = single("MEMORY").and_then(|m| m.parse().ok());
    let vcpu: Option<u32> = single("VCPU")
        .or_else(|| single("CPU"))
        .and_then(|c| c.parse::<f64>().ok())
        .map(|c| c.ceil() as u32);
    let offering = e
        .cfg
        .offerings
        .iter()
        .position(|o| Some(o.memory_mb) == mem && vcpu.is_none_or(|c| c == o.cpus))
        .unwrap_or(0);
    let name = single("NAME");
    Ok(create(e, "one.vm.allocate", offering, t, name, hold, None))
}

const ACTIONS: &[&str] = &[
    "terminate-hard",
    "terminate",
    "undeploy-hard",
    "undeploy",
    "poweroff-hard",
    "poweroff",
    "reboot-hard",
    "reboot",
    "hold",
    "release",
    "stop",
    "suspend",
    "resume",
    "resched",
    "unresched",
];

fn action(e: &Engine, a: &Args<'_>) -> R {
    let act = a.string(0)?.to_owned();
    let id = a.int(1)?;
    if !ACTIONS.contains(&act.as_str()) {
        return Ok(Err(OneError::new(
            ACTION,
            format!("Action \"{act}\" is not supported"),
            id,
        )));
    }
    let now = e.now();
    let mut st = e.lock();
    let Some(i) = find(&st, id) else {
        return Ok(Err(OneError::new(
            NO_EXISTS,
            format!("Error getting virtual machine [{id}]."),
            id,
        )));
    };
    let (state, lcm) = super::doc::states(&st.vms[i], now);
    let wrong = || {
        Ok(Err(OneError::new(
            ACTION,
            format!(
                "Error performing action \"{act}\": This action is not available for state {}",
                state_name(state, lcm)
            ),
            id,
        )))
    };
    let v = &mut st.vms[i];
    match act.as_str() {
        "terminate" | "terminate-hard" => {
            if state != 6 {
                v.deleted = Some(now);
            }
        }
        "hold" => {
            if state != 1 {
                return wrong();
            }
            let boot = v.ready.saturating_duration_since(now);
            v.extra.push(("hold", "1".into()));
            v.extra.push(("boot_ms", boot.as_millis().to_string()));
            v.ready = now + std::time::Duration::from_secs(100 * 365 * 86_400);
        }
        "release" => {
            if state != 2 {
                return wrong();
            }
            let ms: u64 = v.extra("boot_ms").and_then(|m| m.parse().ok()).unwrap_or(0);
            v.extra.retain(|(k, _)| *k != "hold" && *k != "boot_ms");
            v.created = now;
            v.ready = now + std::time::Duration::from_millis(ms);
        }
        "poweroff" | "poweroff-hard" | "undeploy" | "undeploy-hard" | "stop" | "suspend" => {
            if (state, lcm) != (3, 3) && !(act.starts_with("undeploy") && state == 8) {
                return wrong();
            }
            let p = match act.as_str() {
                "stop" => "stopped",
                "suspend" => "suspended",
                a if a.starts_with("undeploy") => "undeployed",
                _ => "poweroff",
            };
            v.power_off(p);
        }
        "resume" => {
            // From STOPPED, SUSPENDED, POWEROFF, UNDEPLOYED (docs vm_instances.rst): the
            // same VM boots again (BOOT_POWEROFF / BOOT_SUSPENDED, or PENDING for the
            // ones whose disks left the host), then RUNNING.
            if ![4, 5, 8, 9].contains(&state) {
                return wrong();
            }
            let from = v.power().unwrap_or_default().to_owned();
            v.extra.retain(|(k, _)| *k != "resumed");
            v.extra.push(("resumed", from));
            e.power_on(&mut st, i);
        }
        _ => {
            if (state, lcm) != (3, 3) {
                return wrong();
            }
        }
    }
    Ok(Ok(XVal::Int(id)))
}

fn state_name(state: u32, lcm: u32) -> String {
    let s = [
        "INIT",
        "PENDING",
        "HOLD",
        "ACTIVE",
        "STOPPED",
        "SUSPENDED",
        "DONE",
        "FAILED",
        "POWEROFF",
        "UNDEPLOYED",
    ];
    let name = s.get(state as usize).copied().unwrap_or("UNKNOWN");
    if state == 3 {
        let l = match lcm {
            1 => "PROLOG",
            2 => "BOOT",
            3 => "RUNNING",
            36 => "BOOT_FAILURE",
            _ => "LCM_INIT",
        };
        return l.to_owned();
    }
    name.to_owned()
}

fn update(e: &Engine, a: &Args<'_>) -> R {
    let id = a.int(0)?;
    let text = a.string(1)?.to_owned();
    let kind = if a.v.len() > 2 { a.int(2)? } else { 0 };
    if !(0..=1).contains(&kind) {
        return Ok(Err(OneError::new(ACTION, "Wrong update type", id)));
    }
    let t = match template::parse(&text) {
        Ok(t) => t,
        Err(msg) => return Ok(Err(OneError::new(ACTION, msg, id))),
    };
    let mut st = e.lock();
    let Some(i) = find(&st, id) else {
        return Ok(Err(OneError::new(
            NO_EXISTS,
            format!("Error getting virtual machine [{id}]."),
            id,
        )));
    };
    let v = &mut st.vms[i];
    if kind == 0 {
        v.tags.clear();
    }
    for (n, val) in t {
        if let TVal::Single(s) = val {
            v.set_tag(&n, &s);
        }
    }
    Ok(Ok(XVal::Int(id)))
}

fn pool(e: &Engine, a: &Args<'_>, extended: bool) -> R {
    let filter = a.int(0)?;
    let start = a.int(1)?;
    let end = a.int(2)?;
    let state = a.int(3)?;
    let kv = a.opt_string(4)?;
    if filter < -4 {
        return Ok(Err(OneError::new(RPC_API, "Incorrect filter_flag", -1)));
    }
    if !(-2..=11).contains(&state) || state == 7 {
        return Ok(Err(OneError::new(
            RPC_API,
            "Incorrect filter_flag, state",
            -1,
        )));
    }
    if !kv.is_empty() {
        return Ok(Err(OneError::new(
            INTERNAL,
            "JSON query search is not supported by the SQL backend",
            -1,
        )));
    }
    let now = e.now();
    let st = e.lock();
    let selected = st.vms.iter().filter(|v| {
        let (s, _) = super::doc::states(v, now);
        match state {
            -2 => true,
            -1 => s != 6,
            n => i64::from(s) == n,
        }
    });
    // Ids grow with creation order, so the vector order is the id order.
    let num = |v: &&crate::engine::VmRec| i64::try_from(v.num).unwrap_or(i64::MAX);
    let body: String = if end < -1 {
        let offset = usize::try_from(start.max(0)).unwrap_or(0);
        let size = usize::try_from(-end).unwrap_or(0);
        selected
            .skip(offset)
            .take(size)
            .map(|v| vm_xml(e, v, now, extended))
            .collect()
    } else {
        selected
            .filter(|v| (start < 0 || num(v) >= start) && (end < 0 || num(v) <= end))
            .map(|v| vm_xml(e, v, now, extended))
            .collect()
    };
    Ok(Ok(XVal::Str(format!("<VM_POOL>{body}</VM_POOL>"))))
}
