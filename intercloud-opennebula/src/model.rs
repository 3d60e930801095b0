//! OpenNebula documents (`<VM>`, `<VM_POOL>`, `<VMTEMPLATE>`, `<HOST_POOL>`, `<USER>`)
//! read into plain structs, and a VM turned into core's [`Vm`]. Pure.
//!
//! These documents arrive as the `<string>` of an XML-RPC answer and are parsed a
//! second time here. Template values are CDATA in real output, plain text in the
//! documentation's examples; both read the same. Unknown elements are ignored (the
//! schema grows between 6.10 and 7.x); a missing required field (`ID`, `NAME`,
//! `STATE`, `LCM_STATE`) or a number that does not parse is an error.

use std::collections::BTreeMap;
use std::net::IpAddr;

use intercloud_core::{SiteId, Tags, Vm, VmId, TAG_PREFIX};

use crate::dom::{self, Element};
use crate::state;
use crate::template::tag_key;
use crate::xmlrpc::clip;

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError(String);

impl ModelError {
    /// The description.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ModelError {}

fn root(xml: &str, expected: &str) -> Result<Element, ModelError> {
    root_with(xml, expected, &|_, _| true)
}

fn root_with(
    xml: &str,
    expected: &str,
    keep: &dyn Fn(&[Element], &str) -> bool,
) -> Result<Element, ModelError> {
    let e = dom::parse_with(xml, keep)
        .map_err(|e| ModelError(format!("<{expected}> document: {e}")))?;
    if e.name != expected {
        return Err(ModelError(format!(
            "expected a <{expected}> document, got <{}>",
            clip(&e.name)
        )));
    }
    Ok(e)
}

fn required<'a>(e: &'a Element, path: &str) -> Result<&'a str, ModelError> {
    e.text_at(path)
        .ok_or_else(|| ModelError(format!("<{}> has no <{path}>", e.name)))
}

fn int(e: &Element, path: &str) -> Result<i64, ModelError> {
    let t = required(e, path)?;
    t.parse().map_err(|_| {
        ModelError(format!(
            "<{}>/<{path}> holds {:?}, not an integer",
            e.name,
            clip(t)
        ))
    })
}

/// A number that may be absent, empty, an integer or a float (quota values, CPU).
fn number(e: &Element, path: &str) -> Result<Option<f64>, ModelError> {
    match e.text_at(path) {
        None | Some("") => Ok(None),
        Some(t) => t.parse::<f64>().map(Some).map_err(|_| {
            ModelError(format!(
                "<{}>/<{path}> holds {:?}, not a number",
                e.name,
                clip(t)
            ))
        }),
    }
}

/// The leaf children of `e` as (name, exact text) pairs; vector children are skipped.
fn leaves(e: &Element) -> Vec<(String, String)> {
    e.children
        .iter()
        .filter(|c| c.children.is_empty())
        .map(|c| (c.name.clone(), c.text.clone()))
        .collect()
}

/// One VM as OpenNebula describes it (the fields intercloud reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneVm {
    /// `ID`.
    pub id: i64,
    /// `NAME`.
    pub name: String,
    /// `STATE`.
    pub state: i64,
    /// `LCM_STATE`.
    pub lcm_state: i64,
    /// `TEMPLATE/TEMPLATE_ID`: the template it was instantiated from.
    pub template_id: Option<String>,
    /// `IP`, `IP6_GLOBAL`, `IP6` of every `TEMPLATE/NIC` and `NIC_ALIAS`, in order.
    pub ips: Vec<String>,
    /// `EXTERNAL_IP` of every NIC, in order.
    pub external_ips: Vec<String>,
    /// The single attributes of `USER_TEMPLATE`, exact values.
    pub user_template: BTreeMap<String, String>,
}

impl OneVm {
    fn from_element(e: &Element) -> Result<Self, ModelError> {
        let mut ips = Vec::new();
        let mut external_ips = Vec::new();
        if let Some(t) = e.child("TEMPLATE") {
            for nic in t
                .children
                .iter()
                .filter(|c| c.name == "NIC" || c.name == "NIC_ALIAS")
            {
                for field in ["IP", "IP6_GLOBAL", "IP6"] {
                    if let Some(ip) = nic.text_at(field).filter(|s| !s.is_empty()) {
                        ips.push(ip.to_owned());
                    }
                }
                if let Some(ip) = nic.text_at("EXTERNAL_IP").filter(|s| !s.is_empty()) {
                    external_ips.push(ip.to_owned());
                }
            }
        }
        Ok(Self {
            id: int(e, "ID")?,
            name: required(e, "NAME")?.to_owned(),
            state: int(e, "STATE")?,
            lcm_state: int(e, "LCM_STATE")?,
            template_id: e
                .text_at("TEMPLATE/TEMPLATE_ID")
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            ips,
            external_ips,
            user_template: e
                .child("USER_TEMPLATE")
                .map(|u| leaves(u).into_iter().collect())
                .unwrap_or_default(),
        })
    }

    /// The VM's tags: every single `USER_TEMPLATE` attribute, its name spelled back
    /// as a core key (`INTERCLOUD_CLUSTER` → `intercloud-cluster`, `ARCH` → `arch`).
    pub fn tags(&self) -> Tags {
        self.user_template
            .iter()
            .map(|(k, v)| (tag_key(k), v.clone()))
            .collect()
    }

    /// The VM in core's terms.
    pub fn to_vm(&self, site: &SiteId) -> Vm {
        let (private_ip, public_ip) = addresses(&self.ips, &self.external_ips);
        Vm {
            id: VmId::new(self.id.to_string()),
            site: site.clone(),
            name: self.name.clone(),
            state: state::vm_state(self.state, self.lcm_state),
            tags: self.tags(),
            offering: self.template_id.clone(),
            private_ip,
            public_ip,
        }
    }

    /// Whether the VM carries any intercloud tag.
    pub fn is_intercloud(&self) -> bool {
        self.tags().keys().any(|k| k.starts_with(TAG_PREFIX))
    }
}

/// The first private address (else the first address) and the first external or
/// public address.
fn addresses(ips: &[String], external: &[String]) -> (Option<String>, Option<String>) {
    let private = ips
        .iter()
        .find(|ip| is_private(ip))
        .or_else(|| ips.first())
        .cloned();
    let public = external
        .first()
        .or_else(|| ips.iter().find(|ip| !is_private(ip)))
        .filter(|ip| Some(*ip) != private.as_ref())
        .cloned();
    (private, public)
}

fn is_private(ip: &str) -> bool {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let o = v4.octets();
            v4.is_private() || v4.is_link_local() || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments()[0];
            (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
        }
        Err(_) => false,
    }
}

/// Keeps the parts of a `<VM>` that [`OneVm`] reads; the rest (CONTEXT, DISK,
/// HISTORY_RECORDS, MONITORING, …: most of a pool's bytes) is stepped over.
fn vm_fields(ancestors: &[Element], name: &str) -> bool {
    let Some(vm) = ancestors.iter().position(|a| a.name == "VM") else {
        return true;
    };
    match &ancestors[vm + 1..] {
        [] => matches!(
            name,
            "ID" | "NAME" | "STATE" | "LCM_STATE" | "TEMPLATE" | "USER_TEMPLATE"
        ),
        [t] if t.name == "TEMPLATE" => matches!(name, "NIC" | "NIC_ALIAS" | "TEMPLATE_ID"),
        _ => true,
    }
}

/// Reads a `<VM>` document (`one.vm.info`).
///
/// # Errors
/// Malformed XML, another root, or a missing/non-numeric required field.
pub fn parse_vm(xml: &str) -> Result<OneVm, ModelError> {
    OneVm::from_element(&root_with(xml, "VM", &vm_fields)?)
}

/// Reads a `<VM_POOL>` document (`one.vmpool.info*`).
///
/// # Errors
/// As [`parse_vm`], for any VM of the pool (naming its position).
pub fn parse_vm_pool(xml: &str) -> Result<Vec<OneVm>, ModelError> {
    root_with(xml, "VM_POOL", &vm_fields)?
        .children_named("VM")
        .enumerate()
        .map(|(i, e)| {
            OneVm::from_element(e).map_err(|err| ModelError(format!("VM #{i} of the pool: {err}")))
        })
        .collect()
}

/// A VM template (`one.template.info`, `one.templatepool.info`).
#[derive(Debug, Clone, PartialEq)]
pub struct OneTemplate {
    /// `ID`.
    pub id: i64,
    /// `NAME`.
    pub name: String,
    /// `TEMPLATE/CONTEXT` single attributes in document order, exact values.
    pub context: Vec<(String, String)>,
    /// `TEMPLATE/VCPU`.
    pub vcpu: Option<f64>,
    /// `TEMPLATE/CPU` (a fraction of a physical CPU).
    pub cpu: Option<f64>,
    /// `TEMPLATE/MEMORY`, MB.
    pub memory_mb: Option<f64>,
}

impl OneTemplate {
    fn from_element(e: &Element) -> Result<Self, ModelError> {
        Ok(Self {
            id: int(e, "ID")?,
            name: required(e, "NAME")?.to_owned(),
            context: e.path("TEMPLATE/CONTEXT").map(leaves).unwrap_or_default(),
            vcpu: number(e, "TEMPLATE/VCPU")?,
            cpu: number(e, "TEMPLATE/CPU")?,
            memory_mb: number(e, "TEMPLATE/MEMORY")?,
        })
    }
}

/// Reads a `<VMTEMPLATE>` document.
///
/// # Errors
/// Malformed XML, another root, a missing `ID`/`NAME` or a non-numeric size.
pub fn parse_template(xml: &str) -> Result<OneTemplate, ModelError> {
    OneTemplate::from_element(&root(xml, "VMTEMPLATE")?)
}

/// Reads a `<VMTEMPLATE_POOL>` document.
///
/// # Errors
/// As [`parse_template`], for any template of the pool.
pub fn parse_template_pool(xml: &str) -> Result<Vec<OneTemplate>, ModelError> {
    root(xml, "VMTEMPLATE_POOL")?
        .children_named("VMTEMPLATE")
        .map(OneTemplate::from_element)
        .collect()
}

/// One host's share (`HOST/HOST_SHARE`): CPU in percent of a core (×100), memory KB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostShare {
    /// `STATE` (3 ERROR, 4 DISABLED, 8 OFFLINE take no VMs).
    pub state: i64,
    /// `MAX_CPU`.
    pub max_cpu: f64,
    /// `CPU_USAGE` (allocated to VMs).
    pub cpu_usage: f64,
    /// `MAX_MEM`, KB.
    pub max_mem_kb: f64,
    /// `MEM_USAGE` (allocated to VMs), KB.
    pub mem_usage_kb: f64,
}

impl HostShare {
    /// Whether the scheduler places VMs on this host.
    pub fn schedulable(&self) -> bool {
        !matches!(self.state, 3 | 4 | 8)
    }
}

/// Reads a `<HOST_POOL>` document (`one.hostpool.info`).
///
/// # Errors
/// Malformed XML, another root, a host without `STATE` or with non-numeric shares.
pub fn parse_host_pool(xml: &str) -> Result<Vec<HostShare>, ModelError> {
    root(xml, "HOST_POOL")?
        .children_named("HOST")
        .map(|h| {
            let share = |f: &str| number(h, &format!("HOST_SHARE/{f}")).map(|v| v.unwrap_or(0.0));
            Ok(HostShare {
                state: int(h, "STATE")?,
                max_cpu: share("MAX_CPU")?,
                cpu_usage: share("CPU_USAGE")?,
                max_mem_kb: share("MAX_MEM")?,
                mem_usage_kb: share("MEM_USAGE")?,
            })
        })
        .collect()
}

/// One quota: a limit (`-1` = the default, `-2` = unlimited) and its usage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    /// The limit as stored.
    pub limit: f64,
    /// The usage.
    pub used: f64,
}

/// `USER/VM_QUOTA/VM`, with `-1` limits resolved against `DEFAULT_USER_QUOTAS`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct VmQuota {
    /// `VMS` / `VMS_USED`; `None` limit = unlimited.
    pub vms: (Option<f64>, f64),
    /// `CPU` / `CPU_USED`.
    pub cpu: (Option<f64>, f64),
    /// `MEMORY` / `MEMORY_USED`, MB.
    pub memory_mb: (Option<f64>, f64),
}

/// Reads the VM quota of a `<USER>` document (`one.user.info`).
///
/// A limit of `-1` takes the value in the document's `DEFAULT_USER_QUOTAS`; `-2`, a
/// negative default, or no quota at all mean unlimited (docs `quotas.rst`).
///
/// # Errors
/// Malformed XML, another root, or a non-numeric quota value.
pub fn parse_user_quota(xml: &str) -> Result<VmQuota, ModelError> {
    let user = root(xml, "USER")?;
    let own = user.path("VM_QUOTA/VM");
    let default = user.path("DEFAULT_USER_QUOTAS/VM_QUOTA/VM");
    let one = |name: &str| -> Result<(Option<f64>, f64), ModelError> {
        let limit = match own {
            Some(vm) => number(vm, name)?,
            None => None,
        };
        let used = match own {
            Some(vm) => number(vm, &format!("{name}_USED"))?.unwrap_or(0.0),
            None => 0.0,
        };
        let default_limit = match default {
            Some(d) => number(d, name)?,
            None => None,
        };
        let resolved = match limit {
            Some(l) if l == -1.0 || l.is_nan() => default_limit,
            other => other,
        }
        .filter(|l| *l >= 0.0);
        Ok((resolved, used))
    };
    Ok(VmQuota {
        vms: one("VMS")?,
        cpu: one("CPU")?,
        memory_mb: one("MEMORY")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_with_cdata_and_empty_user_template() {
        let vm = parse_vm(
            "<VM><ID>5</ID><NAME>k-0</NAME><STATE>3</STATE><LCM_STATE>2</LCM_STATE>\
             <TEMPLATE><NIC><IP><![CDATA[10.0.0.5]]></IP><EXTERNAL_IP><![CDATA[203.0.113.9]]></EXTERNAL_IP></NIC>\
             <NIC><IP6_GLOBAL><![CDATA[2001:db8::1]]></IP6_GLOBAL></NIC><TEMPLATE_ID><![CDATA[7]]></TEMPLATE_ID></TEMPLATE>\
             <USER_TEMPLATE><INTERCLOUD_CLUSTER><![CDATA[c1 \"x\" ]]></INTERCLOUD_CLUSTER>\
             <SCHED_ACTION><ID>0</ID></SCHED_ACTION><NEW_FIELD_7X/></USER_TEMPLATE><FUTURE><X/></FUTURE></VM>",
        )
        .unwrap();
        assert_eq!(vm.ips, ["10.0.0.5", "2001:db8::1"]);
        let v = vm.to_vm(&SiteId::new("s"));
        assert_eq!(v.id.as_str(), "5");
        assert_eq!(v.state, intercloud_core::VmState::Pending);
        assert_eq!(v.tags["intercloud-cluster"], "c1 \"x\" ");
        assert!(!v.tags.contains_key("sched-action"));
        assert_eq!(v.private_ip.as_deref(), Some("10.0.0.5"));
        assert_eq!(v.public_ip.as_deref(), Some("203.0.113.9"));
        assert_eq!(v.offering.as_deref(), Some("7"));
        assert!(vm.is_intercloud());
    }

    #[test]
    fn missing_or_wrong_fields_are_errors() {
        for (xml, needle) in [
            (
                "<VM><NAME>a</NAME><STATE>1</STATE><LCM_STATE>0</LCM_STATE></VM>",
                "no <ID>",
            ),
            (
                "<VM><ID>x</ID><NAME>a</NAME><STATE>1</STATE><LCM_STATE>0</LCM_STATE></VM>",
                "not an integer",
            ),
            ("<VMX/>", "expected a <VM>"),
            ("<VM><ID>1</ID>", "truncated"),
        ] {
            let e = parse_vm(xml).unwrap_err();
            assert!(e.message().contains(needle), "{xml}: {e}");
        }
        let e = parse_vm_pool("<VM_POOL><VM><ID>1</ID></VM></VM_POOL>").unwrap_err();
        assert!(e.message().contains("VM #0"), "{e}");
    }

    #[test]
    fn quotas_resolve_defaults_and_unlimited() {
        let q = parse_user_quota(
            "<USER><ID>2</ID><VM_QUOTA><VM><VMS><![CDATA[-1]]></VMS><VMS_USED><![CDATA[3]]></VMS_USED>\
             <CPU><![CDATA[-2]]></CPU><CPU_USED><![CDATA[1.5]]></CPU_USED>\
             <MEMORY><![CDATA[4096]]></MEMORY><MEMORY_USED><![CDATA[1024]]></MEMORY_USED></VM></VM_QUOTA>\
             <DEFAULT_USER_QUOTAS><VM_QUOTA><VM><VMS><![CDATA[10]]></VMS><CPU><![CDATA[-1]]></CPU></VM></VM_QUOTA></DEFAULT_USER_QUOTAS></USER>",
        )
        .unwrap();
        assert_eq!(q.vms, (Some(10.0), 3.0));
        assert_eq!(q.cpu, (None, 1.5));
        assert_eq!(q.memory_mb, (Some(4096.0), 1024.0));
        let none = parse_user_quota("<USER><ID>0</ID><VM_QUOTA/></USER>").unwrap();
        assert_eq!(none.vms, (None, 0.0));
    }

    #[test]
    fn hosts_and_templates() {
        let hosts = parse_host_pool(
            "<HOST_POOL><HOST><ID>0</ID><STATE>2</STATE><HOST_SHARE><MAX_CPU>800</MAX_CPU>\
             <CPU_USAGE>100</CPU_USAGE><MAX_MEM>16777216</MAX_MEM><MEM_USAGE>1048576</MEM_USAGE></HOST_SHARE></HOST>\
             <HOST><ID>1</ID><STATE>4</STATE></HOST></HOST_POOL>",
        )
        .unwrap();
        assert!(hosts[0].schedulable() && !hosts[1].schedulable());
        assert_eq!(hosts[0].max_cpu, 800.0);
        let t = parse_template(
            "<VMTEMPLATE><ID>7</ID><NAME>small</NAME><TEMPLATE><CONTEXT><NETWORK><![CDATA[YES]]></NETWORK>\
             <SSH_PUBLIC_KEY><![CDATA[$USER[SSH_PUBLIC_KEY]]]></SSH_PUBLIC_KEY></CONTEXT>\
             <CPU><![CDATA[0.5]]></CPU><VCPU><![CDATA[2]]></VCPU><MEMORY><![CDATA[1024]]></MEMORY></TEMPLATE></VMTEMPLATE>",
        )
        .unwrap();
        assert_eq!(
            t.context,
            [
                ("NETWORK".to_owned(), "YES".to_owned()),
                (
                    "SSH_PUBLIC_KEY".to_owned(),
                    "$USER[SSH_PUBLIC_KEY]".to_owned()
                )
            ]
        );
        assert_eq!(
            (t.cpu, t.vcpu, t.memory_mb),
            (Some(0.5), Some(2.0), Some(1024.0))
        );
    }
}
