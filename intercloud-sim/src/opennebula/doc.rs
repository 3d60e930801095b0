//! The XML documents oned returns: VM (extended and short), VM template, user with
//! quotas, host pool. Fixed fields are plain text; template values are CDATA.

use tokio::time::Instant;

use super::template::{to_xml, TVal, Template};
use crate::engine::{Engine, Phase, VmRec};

const PERMISSIONS: &str = "<PERMISSIONS><OWNER_U>1</OWNER_U><OWNER_M>1</OWNER_M><OWNER_A>0</OWNER_A><GROUP_U>0</GROUP_U><GROUP_M>0</GROUP_M><GROUP_A>0</GROUP_A><OTHER_U>0</OTHER_U><OTHER_M>0</OTHER_M><OTHER_A>0</OTHER_A></PERMISSIONS>";

/// Seconds since the epoch for an engine instant.
pub(super) fn epoch(e: &Engine, t: Instant) -> i64 {
    let ago = e.now().saturating_duration_since(t);
    (time::OffsetDateTime::now_utc() - ago).unix_timestamp()
}

/// `(STATE, LCM_STATE)` of a VM at `now`.
pub(super) fn states(v: &VmRec, now: Instant) -> (u32, u32) {
    match v.phase(now) {
        Phase::Deleted => return (6, 0),
        Phase::Failed => return (3, 36),
        _ => {}
    }
    match v.power() {
        Some("poweroff") => return (8, 0),
        Some("undeployed") => return (9, 0),
        Some("stopped") => return (4, 0),
        Some("suspended") => return (5, 0),
        _ => {}
    }
    if v.extra("hold") == Some("1") {
        return (2, 0);
    }
    if v.phase(now) == Phase::Running {
        return (3, 3);
    }
    match v.extra("resumed") {
        Some("poweroff") => return (3, 20),  // BOOT_POWEROFF
        Some("suspended") => return (3, 21), // BOOT_SUSPENDED
        _ => {}
    }
    let from = v.created.max(v.booted);
    let total = v.ready.saturating_duration_since(from).as_secs_f64();
    let done = now.saturating_duration_since(from).as_secs_f64();
    let frac = if total > 0.0 { done / total } else { 1.0 };
    if frac < 0.3 {
        (1, 0)
    } else if frac < 0.6 {
        (3, 1)
    } else {
        (3, 2)
    }
}

/// USER_TEMPLATE attributes the short pool body keeps.
const SHORT_USER: &[&str] = &[
    "LABELS",
    "ERROR",
    "SCHED_MESSAGE",
    "SCHED_RANK",
    "SCHED_DS_RANK",
    "SCHED_REQUIREMENTS",
    "SCHED_DS_REQUIREMENTS",
    "USER_PRIORITY",
    "SCHED_ACTION",
];

/// The `<VM>` document; `extended` = one.vm.info / infoextended, else the short pool body.
pub(super) fn vm_xml(e: &Engine, v: &VmRec, now: Instant, extended: bool) -> String {
    let (state, lcm) = states(v, now);
    let etime = if state == 6 {
        v.deleted.map_or(0, |d| epoch(e, d))
    } else {
        0
    };
    let deploy_id = if state == 3 && lcm >= 2 {
        format!("one-{}", v.num)
    } else {
        String::new()
    };
    let tmpl = if extended {
        v.extra("tmpl_xml")
    } else {
        v.extra("tmpl_short")
    }
    .unwrap_or("");
    let user: String = v
        .tags
        .iter()
        .filter(|(k, _)| extended || SHORT_USER.contains(&k.as_str()))
        .map(|(k, val)| format!("<{k}><![CDATA[{val}]]></{k}>"))
        .collect();
    let history = if state == 3 || state >= 8 {
        format!(
            "<HISTORY_RECORDS><HISTORY><OID>{}</OID><SEQ>0</SEQ><HOSTNAME>{}-host0</HOSTNAME><HID>0</HID><CID>0</CID><STIME>{}</STIME><ETIME>0</ETIME><VM_MAD><![CDATA[kvm]]></VM_MAD><TM_MAD><![CDATA[ssh]]></TM_MAD><DS_ID>0</DS_ID><PSTIME>0</PSTIME><PETIME>0</PETIME><RSTIME>0</RSTIME><RETIME>0</RETIME><ESTIME>0</ESTIME><EETIME>0</EETIME><ACTION>0</ACTION><UID>-1</UID><GID>-1</GID><REQUEST_ID>-1</REQUEST_ID></HISTORY></HISTORY_RECORDS>",
            v.num,
            e.cfg.id,
            epoch(e, v.created)
        )
    } else {
        "<HISTORY_RECORDS></HISTORY_RECORDS>".into()
    };
    let backups = if extended {
        "<BACKUPS><BACKUP_CONFIG></BACKUP_CONFIG><BACKUP_IDS></BACKUP_IDS></BACKUPS>"
    } else {
        ""
    };
    format!(
        "<VM><ID>{}</ID><UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME><GNAME>oneadmin</GNAME><NAME>{}</NAME>{PERMISSIONS}<LAST_POLL>0</LAST_POLL><STATE>{state}</STATE><LCM_STATE>{lcm}</LCM_STATE><PREV_STATE>{state}</PREV_STATE><PREV_LCM_STATE>{lcm}</PREV_LCM_STATE><RESCHED>0</RESCHED><STIME>{}</STIME><ETIME>{etime}</ETIME><DEPLOY_ID>{deploy_id}</DEPLOY_ID><MONITORING></MONITORING><SCHED_ACTIONS></SCHED_ACTIONS><TEMPLATE>{tmpl}</TEMPLATE><USER_TEMPLATE>{user}</USER_TEMPLATE>{history}{backups}</VM>",
        v.num,
        super::xmlrpc::esc(&v.name),
        epoch(e, v.created)
    )
}

/// The base template of offering `i` (one VM template per offering).
pub(super) fn base_template(e: &Engine, i: usize) -> Template {
    let Some(o) = e.cfg.offerings.get(i) else {
        return Vec::new();
    };
    let s = |v: &str| TVal::Single(v.to_owned());
    vec![
        (
            "CONTEXT".into(),
            TVal::Vector(vec![
                ("NETWORK".into(), "YES".into()),
                ("SSH_PUBLIC_KEY".into(), "$USER[SSH_PUBLIC_KEY]".into()),
            ]),
        ),
        ("CPU".into(), s(&o.cpus.to_string())),
        (
            "DISK".into(),
            TVal::Vector(vec![("IMAGE_ID".into(), "0".into())]),
        ),
        (
            "GRAPHICS".into(),
            TVal::Vector(vec![
                ("LISTEN".into(), "0.0.0.0".into()),
                ("TYPE".into(), "VNC".into()),
            ]),
        ),
        ("MEMORY".into(), s(&o.memory_mb.to_string())),
        (
            "NIC".into(),
            TVal::Vector(vec![("NETWORK_ID".into(), "0".into())]),
        ),
        (
            "OS".into(),
            TVal::Vector(vec![("ARCH".into(), "x86_64".into())]),
        ),
        ("VCPU".into(), s(&o.cpus.to_string())),
    ]
}

/// `<VMTEMPLATE>` for offering `i`.
pub(super) fn template_xml(e: &Engine, i: usize) -> String {
    let name = e
        .cfg
        .offerings
        .get(i)
        .map(|o| o.name.as_str())
        .unwrap_or("");
    format!(
        "<VMTEMPLATE><ID>{i}</ID><UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME><GNAME>oneadmin</GNAME><NAME>{}</NAME><LOCK></LOCK>{PERMISSIONS}<REGTIME>{}</REGTIME><TEMPLATE>{}</TEMPLATE></VMTEMPLATE>",
        super::xmlrpc::esc(name),
        epoch(e, e.start),
        to_xml(&base_template(e, i))
    )
}

/// Alive (not DONE) VMs' usage: (vms, cpus, memory MB).
pub(super) fn usage(e: &Engine, now: Instant) -> (u64, u64, u64) {
    let st = e.lock();
    let mut acc = (0, 0, 0);
    for v in st.vms.iter().filter(|v| v.phase(now) != Phase::Deleted) {
        acc.0 += 1;
        if let Some(o) = e.cfg.offerings.get(v.offering) {
            acc.1 += u64::from(o.cpus);
            acc.2 += u64::from(o.memory_mb);
        }
    }
    acc
}

fn limits(e: &Engine) -> (u64, u64, u64) {
    e.cfg.offerings.iter().fold((0, 0, 0), |(n, c, m), o| {
        let cap = u64::from(o.capacity);
        (
            n + cap,
            c + cap * u64::from(o.cpus),
            m + cap * u64::from(o.memory_mb),
        )
    })
}

/// `<USER>` with its VM quota (limits = the site's total capacity).
pub(super) fn user_xml(e: &Engine, user: &str, password_hash: &str, now: Instant) -> String {
    let (vms, cpu, mem) = usage(e, now);
    let (max_vms, max_cpu, max_mem) = limits(e);
    let q = |n: &str, v: u64| format!("<{n}><![CDATA[{v}]]></{n}>");
    format!(
        "<USER><ID>0</ID><GID>0</GID><GROUPS><ID>0</ID></GROUPS><GNAME>oneadmin</GNAME><NAME>{}</NAME><PASSWORD>{password_hash}</PASSWORD><AUTH_DRIVER>core</AUTH_DRIVER><ENABLED>1</ENABLED><LOGIN_TOKEN></LOGIN_TOKEN><TEMPLATE><TOKEN_PASSWORD><![CDATA[]]></TOKEN_PASSWORD></TEMPLATE><DATASTORE_QUOTA></DATASTORE_QUOTA><NETWORK_QUOTA></NETWORK_QUOTA><VM_QUOTA><VM>{}{}{}{}{}{}{}{}{}{}{}{}</VM></VM_QUOTA><IMAGE_QUOTA></IMAGE_QUOTA><DEFAULT_USER_QUOTAS><DATASTORE_QUOTA></DATASTORE_QUOTA><NETWORK_QUOTA></NETWORK_QUOTA><VM_QUOTA></VM_QUOTA><IMAGE_QUOTA></IMAGE_QUOTA></DEFAULT_USER_QUOTAS></USER>",
        super::xmlrpc::esc(user),
        q("CPU", max_cpu),
        q("CPU_USED", cpu),
        q("MEMORY", max_mem),
        q("MEMORY_USED", mem),
        q("RUNNING_CPU", max_cpu),
        q("RUNNING_CPU_USED", cpu),
        q("RUNNING_MEMORY", max_mem),
        q("RUNNING_MEMORY_USED", mem),
        q("RUNNING_VMS", max_vms),
        q("RUNNING_VMS_USED", vms),
        q("VMS", max_vms),
        q("VMS_USED", vms),
    )
}

/// `<HOST_POOL>` with one KVM host holding the site's whole capacity.
pub(super) fn host_pool_xml(e: &Engine, now: Instant) -> String {
    let (vms, cpu, mem) = usage(e, now);
    let (_, max_cpu, max_mem) = limits(e);
    let st = e.lock();
    let ids: String = st
        .vms
        .iter()
        .filter(|v| v.phase(now) != Phase::Deleted)
        .map(|v| format!("<ID>{}</ID>", v.num))
        .collect();
    drop(st);
    format!(
        "<HOST_POOL><HOST><ID>0</ID><NAME>{}-host0</NAME><STATE>2</STATE><PREV_STATE>2</PREV_STATE><IM_MAD><![CDATA[kvm]]></IM_MAD><VM_MAD><![CDATA[kvm]]></VM_MAD><CLUSTER_ID>0</CLUSTER_ID><CLUSTER>default</CLUSTER><HOST_SHARE><MEM_USAGE>{}</MEM_USAGE><CPU_USAGE>{}</CPU_USAGE><TOTAL_MEM>{}</TOTAL_MEM><TOTAL_CPU>{}</TOTAL_CPU><MAX_MEM>{}</MAX_MEM><MAX_CPU>{}</MAX_CPU><RUNNING_VMS>{vms}</RUNNING_VMS><VMS_THREAD>1</VMS_THREAD></HOST_SHARE><VMS>{ids}</VMS><TEMPLATE><HYPERVISOR><![CDATA[kvm]]></HYPERVISOR></TEMPLATE><MONITORING><CAPACITY><FREE_CPU>{}</FREE_CPU><FREE_MEMORY>{}</FREE_MEMORY><USED_CPU>{}</USED_CPU><USED_MEMORY>{}</USED_MEMORY></CAPACITY></MONITORING></HOST></HOST_POOL>",
        e.cfg.id,
        mem * 1024,
        cpu * 100,
        max_mem * 1024,
        max_cpu * 100,
        max_mem * 1024,
        max_cpu * 100,
        max_cpu.saturating_sub(cpu) * 100,
        max_mem.saturating_sub(mem) * 1024,
        cpu * 100,
        mem * 1024,
    )
}
