//! [`OpenNebulaProvider`]: core's [`CloudProvider`] over oned's XML-RPC methods.
//!
//! | provider method | OpenNebula calls |
//! |---|---|
//! | `create_vms` | `one.vmpool.infoextended` (the key's VMs; not for a `fresh` spec), then per missing index `one.template.instantiate` (bounded concurrency); `one.templatepool.info` to resolve a template name, `one.template.info` to merge CONTEXT when there is user data (both cached for 5 min per provider) |
//! | `list_vms` | one `one.vmpool.infoextended`, filtered here by `USER_TEMPLATE` tags |
//! | `delete_vm` | `one.vm.action("terminate-hard", id)`; `one.vm.info` when the action is refused |
//! | `start_vm` | `one.vm.action("resume", id)` (from POWEROFF, SUSPENDED, STOPPED, UNDEPLOYED); `one.vm.info` when the action is refused |
//! | `offerings` | `one.templatepool.info` |
//! | `capacity` | `one.user.info(-1)` quotas, `one.hostpool.info` shares when allowed |
//!
//! Tags live in `USER_TEMPLATE` as upper-case attributes (`intercloud-key` →
//! `INTERCLOUD_KEY`), set at creation through the instantiate call's extra template
//! (unknown attributes stay in `USER_TEMPLATE`). oned cannot filter pools by them on
//! its default SQLite backend, so listing filters client-side.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use futures::stream::{self, StreamExt};
use tokio::sync::Mutex;
use tokio::time::Instant;

use intercloud_core::{
    Capabilities, Capacity, CloudProvider, Error, ErrorKind, Limit, Offering, Result, SiteId,
    UserDataFormat, Vm, VmFilter, VmId, VmSpec, VmState,
};

use crate::builder::PoolFilter;
use crate::client::OneClient;
use crate::model::{self, OneTemplate};
use crate::state;
use crate::template::{tag_attribute, Template};

/// The largest `count` one `create_vms` accepts (each VM is one instantiate call).
pub const MAX_BATCH: u32 = 1000;
/// The largest user data accepted, in bytes before base64.
pub const MAX_USER_DATA: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) pool_filter: PoolFilter,
    pub(crate) create_concurrency: usize,
    pub(crate) poll_interval: Duration,
    pub(crate) running_timeout: Duration,
}

/// An OpenNebula site. Build it with [`crate::OpenNebulaBuilder`].
#[derive(Debug, Clone)]
pub struct OpenNebulaProvider {
    site: SiteId,
    client: OneClient,
    settings: Settings,
    /// Resolved templates by (offering, with CONTEXT), shared by clones.
    templates: Arc<Mutex<TemplateCache>>,
}

/// Resolved templates and when they were fetched.
type TemplateCache = HashMap<(String, bool), (Instant, OneTemplate)>;

/// How long a resolved template is reused: the create calls of one deployment share
/// one lookup; a template edited at the site is read again after this.
const TEMPLATE_TTL: Duration = Duration::from_secs(300);

impl OpenNebulaProvider {
    pub(crate) fn new(site: SiteId, client: OneClient, settings: Settings) -> Self {
        Self {
            site,
            client,
            settings,
            templates: Arc::default(),
        }
    }

    /// The XML-RPC client, for methods the provider does not wrap.
    pub fn client(&self) -> &OneClient {
        &self.client
    }

    /// Checks endpoint and credentials with `one.system.version`; returns the version.
    ///
    /// # Errors
    /// `Unauthenticated` for wrong credentials, `Unavailable`/`Config` for a wrong
    /// endpoint.
    pub async fn check(&self) -> Result<String> {
        self.client.system_version().await
    }

    /// Polls `list_vms` (one call per tick, at the builder's `poll_interval`) until every
    /// VM in `ids` is `Running`; returns them in the order of `ids`.
    ///
    /// # Errors
    /// `Unavailable` (not temporary) when a VM is `Failed` or gone, `Timeout` after the
    /// builder's `running_timeout`, or the listing's own errors.
    pub async fn wait_running(&self, ids: &[VmId]) -> Result<Vec<Vm>> {
        let deadline = tokio::time::Instant::now() + self.settings.running_timeout;
        let filter = VmFilter::default()
            .ids(ids.iter().cloned())
            .with_terminated();
        loop {
            let vms = self.list_vms(&filter).await?;
            let by_id: BTreeMap<&VmId, &Vm> = vms.iter().map(|v| (&v.id, v)).collect();
            let mut all = true;
            for id in ids {
                match by_id.get(id).map(|v| &v.state) {
                    Some(VmState::Running) => {}
                    Some(VmState::Pending) => all = false,
                    Some(other) => {
                        return Err(self
                            .err(
                                ErrorKind::Unavailable,
                                format!("VM {id} is {other}, not booting"),
                            )
                            .with_resource(id.as_str())
                            .with_temporary(false))
                    }
                    None => {
                        return Err(self
                            .err(
                                ErrorKind::NotFound,
                                format!("VM {id} is not listed among alive VMs (DONE or deleted)"),
                            )
                            .with_resource(id.as_str()))
                    }
                }
            }
            if all {
                return Ok(ids
                    .iter()
                    .filter_map(|id| by_id.get(id).map(|v| (*v).clone()))
                    .collect());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(self.err(
                    ErrorKind::Timeout,
                    format!("VMs not running after {:?}", self.settings.running_timeout),
                ));
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
    }

    fn err(&self, kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::new(kind, message).with_site(&self.site)
    }

    /// The template an offering names, from the cache or the site (held locked while
    /// fetching, so concurrent create calls wait for one lookup).
    async fn resolve_template(&self, offering: &str, need_context: bool) -> Result<OneTemplate> {
        let key = (offering.trim().to_owned(), need_context);
        let mut cache = self.templates.lock().await;
        if let Some((at, t)) = cache.get(&key) {
            if at.elapsed() < TEMPLATE_TTL {
                return Ok(t.clone());
            }
        }
        let t = self.fetch_template(&key.0, need_context).await?;
        cache.insert(key, (Instant::now(), t.clone()));
        Ok(t)
    }

    async fn fetch_template(&self, offering: &str, need_context: bool) -> Result<OneTemplate> {
        if let Ok(id) = offering.parse::<i64>() {
            if !need_context {
                return Ok(OneTemplate {
                    id,
                    name: offering.to_owned(),
                    context: Vec::new(),
                    vcpu: None,
                    cpu: None,
                    memory_mb: None,
                });
            }
            let xml = self
                .client
                .template_info(id)
                .await
                .map_err(|e| unknown_offering(e, offering))?;
            return model::parse_template(&xml)
                .map_err(|e| self.err(ErrorKind::Protocol, format!("one.template.info: {e}")));
        }
        let xml = self
            .client
            .templatepool_info(self.settings.pool_filter.flag())
            .await?;
        let pool = model::parse_template_pool(&xml)
            .map_err(|e| self.err(ErrorKind::Protocol, format!("one.templatepool.info: {e}")))?;
        let matching: Vec<&OneTemplate> = pool.iter().filter(|t| t.name == offering).collect();
        match matching.as_slice() {
            [one] if need_context => {
                let xml = self.client.template_info(one.id).await?;
                model::parse_template(&xml)
                    .map_err(|e| self.err(ErrorKind::Protocol, format!("one.template.info: {e}")))
            }
            [one] => Ok((*one).clone()),
            [] => Err(self
                .err(
                    ErrorKind::InvalidRequest,
                    format!(
                        "no VM template named {offering:?} is visible to this user; templates: {}",
                        names(&pool)
                    ),
                )
                .with_resource(offering)),
            many => Err(self
                .err(
                    ErrorKind::InvalidRequest,
                    format!(
                        "{} VM templates are named {offering:?} (ids {}); give the id as the offering",
                        many.len(),
                        many.iter().map(|t| t.id.to_string()).collect::<Vec<_>>().join(", ")
                    ),
                )
                .with_resource(offering)),
        }
    }
}

fn names(pool: &[OneTemplate]) -> String {
    let mut n: Vec<&str> = pool.iter().map(|t| t.name.as_str()).take(20).collect();
    if pool.len() > 20 {
        n.push("…");
    }
    if n.is_empty() {
        "none".into()
    } else {
        n.join(", ")
    }
}

fn unknown_offering(e: Error, offering: &str) -> Error {
    if e.kind() == ErrorKind::NotFound {
        let site = e.site().cloned();
        let mut out = Error::invalid(format!("unknown VM template {offering}: {}", e.message()))
            .with_resource(offering);
        if let Some(s) = site {
            out = out.with_site(s);
        }
        out
    } else {
        e
    }
}

/// The extra template of VM `index`: the template's CONTEXT with `USER_DATA` (base64)
/// and `USER_DATA_ENCODING="base64"` merged in — sent whole, because oned replaces a
/// top-level attribute rather than merging it — when there is user data, then one
/// `USER_TEMPLATE` attribute per tag. A template without CONTEXT gets
/// `NETWORK="YES"` too, so the guest configures its NICs. `spec.image` is not used:
/// an OpenNebula template carries its disks.
///
/// # Errors
/// `InvalidRequest` for a tag key that cannot be an attribute name, or a value (from
/// the tags or the template's CONTEXT) the template syntax cannot carry.
pub fn extra_template(template: &OneTemplate, spec: &VmSpec, index: u32) -> Result<String> {
    let mut t = Template::new();
    if let Some(ud) = &spec.user_data {
        let mut context: Vec<(String, String)> = template
            .context
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "USER_DATA" | "USER_DATA_ENCODING" | "USERDATA" | "USERDATA_ENCODING"
                )
            })
            .cloned()
            .collect();
        if template.context.is_empty() {
            context.push(("NETWORK".into(), "YES".into()));
        }
        context.push((
            "USER_DATA".into(),
            base64::engine::general_purpose::STANDARD.encode(ud.0.as_bytes()),
        ));
        context.push(("USER_DATA_ENCODING".into(), "base64".into()));
        t = t.vector("CONTEXT", context);
    }
    for (key, value) in spec.tags_for(index) {
        let attr = tag_attribute(&key).map_err(|e| Error::invalid(e.to_string()))?;
        t = t.single(attr, value);
    }
    t.render().map_err(|e| Error::invalid(e.to_string()))
}

#[async_trait]
impl CloudProvider for OpenNebulaProvider {
    fn site(&self) -> &SiteId {
        &self.site
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            batch_create: false,
            max_batch: MAX_BATCH,
            idempotent_create: true,
            server_idempotency: false,
            server_tag_filter: false,
            native_vpn: false,
            user_data: UserDataFormat::OneContext,
            max_user_data: MAX_USER_DATA,
            start_vm: true,
        }
    }

    async fn offerings(&self) -> Result<Vec<Offering>> {
        let xml = self
            .client
            .templatepool_info(self.settings.pool_filter.flag())
            .await?;
        let pool = model::parse_template_pool(&xml)
            .map_err(|e| self.err(ErrorKind::Protocol, format!("one.templatepool.info: {e}")))?;
        Ok(pool
            .into_iter()
            .map(|t| Offering {
                id: t.id.to_string(),
                name: t.name,
                vcpus: t.vcpu.or(t.cpu).map(|c| c.ceil().max(0.0) as u32),
                memory_mb: t.memory_mb.map(|m| m.max(0.0) as u64),
            })
            .collect())
    }

    async fn capacity(&self) -> Result<Capacity> {
        let user = self.client.user_info().await?;
        let quota = model::parse_user_quota(&user)
            .map_err(|e| self.err(ErrorKind::Protocol, format!("one.user.info: {e}")))?;
        let limit = |(max, used): (Option<f64>, f64)| {
            Limit::new(
                used.ceil().max(0.0) as u64,
                max.map(|m| m.floor().max(0.0) as u64),
            )
        };
        let mut capacity = Capacity {
            instances: limit(quota.vms),
            vcpus: limit(quota.cpu),
            memory_mb: limit(quota.memory_mb),
        };
        match self.client.hostpool_info().await {
            Ok(xml) => {
                let hosts = model::parse_host_pool(&xml).map_err(|e| {
                    self.err(ErrorKind::Protocol, format!("one.hostpool.info: {e}"))
                })?;
                let up: Vec<_> = hosts.iter().filter(|h| h.schedulable()).collect();
                let sum = |f: fn(&model::HostShare) -> f64| up.iter().map(|h| f(h)).sum::<f64>();
                let cpu = Limit::new(
                    (sum(|h| h.cpu_usage) / 100.0).ceil() as u64,
                    Some((sum(|h| h.max_cpu) / 100.0).floor() as u64),
                );
                let mem = Limit::new(
                    (sum(|h| h.mem_usage_kb) / 1024.0).ceil() as u64,
                    Some((sum(|h| h.max_mem_kb) / 1024.0).floor() as u64),
                );
                capacity.vcpus = tighter(capacity.vcpus, cpu);
                capacity.memory_mb = tighter(capacity.memory_mb, mem);
            }
            // Only oneadmin-like users may list hosts; quotas are then all we know.
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {}
            Err(e) => return Err(e),
        }
        Ok(capacity)
    }

    async fn create_vms(&self, spec: &VmSpec, count: u32) -> Result<Vec<VmId>> {
        let key = spec.key.as_str();
        if count == 0 {
            return Ok(Vec::new());
        }
        if count > MAX_BATCH {
            return Err(self
                .err(
                    ErrorKind::InvalidRequest,
                    format!("count {count} exceeds {MAX_BATCH} VMs per create_vms"),
                )
                .with_resource(key));
        }
        if spec
            .user_data
            .as_ref()
            .is_some_and(|u| u.0.len() > MAX_USER_DATA)
        {
            return Err(self
                .err(
                    ErrorKind::InvalidRequest,
                    format!("user data is larger than {MAX_USER_DATA} bytes"),
                )
                .with_resource(key));
        }
        // Fail on unstorable tags before any call.
        for k in spec.tags_for(0).keys() {
            tag_attribute(k).map_err(|e| self.err(ErrorKind::InvalidRequest, e.to_string()))?;
        }

        let mut by_index: BTreeMap<u32, VmId> = BTreeMap::new();
        let existing = if spec.fresh {
            Vec::new()
        } else {
            self.list_vms(&VmFilter::key(&spec.key)).await?
        };
        for vm in existing {
            if let Some(i) = vm.index() {
                let keep = by_index
                    .get(&i)
                    .is_none_or(|old| numeric(&vm.id) < numeric(old));
                if keep {
                    by_index.insert(i, vm.id);
                }
            }
        }
        let missing: Vec<u32> = (0..count).filter(|i| !by_index.contains_key(i)).collect();
        if !missing.is_empty() {
            let template = self
                .resolve_template(&spec.offering, spec.user_data.is_some())
                .await
                .map_err(|e| e.with_resource(key))?;
            let extras = missing
                .iter()
                .map(|&i| {
                    extra_template(&template, spec, i)
                        .map(|x| (i, x))
                        .map_err(|e| {
                            self.err(e.kind(), e.message().to_owned())
                                .with_resource(key)
                        })
                })
                .collect::<Result<Vec<_>>>()?;
            let results: Vec<(u32, Result<i64>)> = stream::iter(extras)
                .map(|(i, extra)| {
                    let name = spec.key.vm_name(i);
                    let client = &self.client;
                    let tid = template.id;
                    async move {
                        let r = client
                            .template_instantiate(tid, &name, false, &extra, false)
                            .await;
                        (i, r)
                    }
                })
                .buffer_unordered(self.settings.create_concurrency)
                .collect()
                .await;
            let mut first_error: Option<Error> = None;
            let mut failed = 0usize;
            for (i, r) in results {
                match r {
                    Ok(id) => {
                        by_index.insert(i, VmId::new(id.to_string()));
                    }
                    Err(e) => {
                        failed += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = first_error {
                let e = unknown_offering(e, &spec.offering);
                let message = format!(
                    "{} ({failed} of {} instantiations failed; a retry with the same key \
                     creates only the missing VMs)",
                    e.message(),
                    missing.len()
                );
                return Err(self
                    .err(e.kind(), message)
                    .with_temporary(e.is_temporary())
                    .with_resource(key));
            }
        }
        (0..count)
            .map(|i| {
                by_index.get(&i).cloned().ok_or_else(|| {
                    self.err(
                        ErrorKind::Protocol,
                        format!("VM {i} of key {key} is missing"),
                    )
                })
            })
            .collect()
    }

    async fn list_vms(&self, filter: &VmFilter) -> Result<Vec<Vm>> {
        let state = if filter.include_terminated { -2 } else { -1 };
        let xml = self
            .client
            .vmpool_infoextended(self.settings.pool_filter.flag(), state)
            .await?;
        let pool = model::parse_vm_pool(&xml)
            .map_err(|e| self.err(ErrorKind::Protocol, format!("one.vmpool.infoextended: {e}")))?;
        Ok(pool
            .iter()
            .map(|v| v.to_vm(&self.site))
            .filter(|v| filter.matches(v))
            .collect())
    }

    async fn delete_vm(&self, id: &VmId) -> Result<()> {
        let Ok(n) = id.as_str().trim().parse::<i64>() else {
            return Err(self
                .err(ErrorKind::InvalidRequest, "OpenNebula VM ids are integers")
                .with_resource(id.as_str()));
        };
        match self.client.vm_action("terminate-hard", n).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) if e.kind() == ErrorKind::InvalidRequest => {
                // Refused in the VM's current state: gone already, or mid-transition.
                let xml = match self.client.vm_info(n).await {
                    Ok(xml) => xml,
                    Err(info) if info.kind() == ErrorKind::NotFound => return Ok(()),
                    Err(_) => return Err(e.with_resource(id.as_str())),
                };
                let vm = model::parse_vm(&xml).map_err(|err| {
                    self.err(ErrorKind::Protocol, format!("one.vm.info: {err}"))
                        .with_resource(id.as_str())
                })?;
                match state::vm_state(vm.state, vm.lcm_state) {
                    VmState::Terminated => Ok(()),
                    VmState::Pending => Err(self
                        .err(
                            ErrorKind::Unavailable,
                            format!(
                                "VM {n} is in {}, which refuses terminate-hard for now: {}",
                                state::lcm_state_name(vm.lcm_state)
                                    .or(state::state_name(vm.state))
                                    .unwrap_or("an unknown state"),
                                e.message()
                            ),
                        )
                        .with_resource(id.as_str())),
                    _ => Err(e.with_resource(id.as_str())),
                }
            }
            Err(e) => Err(e.with_resource(id.as_str())),
        }
    }

    async fn start_vm(&self, id: &VmId) -> Result<()> {
        let Ok(n) = id.as_str().trim().parse::<i64>() else {
            return Err(self
                .err(ErrorKind::InvalidRequest, "OpenNebula VM ids are integers")
                .with_resource(id.as_str()));
        };
        // `one.vm.action("resume", id)`: resumes a POWEROFF, SUSPENDED, STOPPED or
        // UNDEPLOYED VM (docs api.rst, vm_instances.rst); asynchronous, success means
        // the VM is on its way to RUNNING. An unknown id is NO_EXISTS (`NotFound`); the
        // wrong state is ACTION (`InvalidRequest`), resolved by `one.vm.info`.
        match self.client.vm_action("resume", n).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::InvalidRequest => self.resume_refused(id, n, e).await,
            Err(e) => Err(e.with_resource(id.as_str())),
        }
    }
}

impl OpenNebulaProvider {
    /// `resume` refused (ACTION, 0x0800): decide from the VM's state. Running or
    /// booting already is `Ok`; done or unknown to oned is `NotFound`; otherwise the
    /// refusal stands.
    async fn resume_refused(&self, id: &VmId, n: i64, e: Error) -> Result<()> {
        let xml = match self.client.vm_info(n).await {
            Ok(xml) => xml,
            Err(info) if info.kind() == ErrorKind::NotFound => {
                return Err(info.with_resource(id.as_str()))
            }
            Err(_) => return Err(e.with_resource(id.as_str())),
        };
        let vm = model::parse_vm(&xml).map_err(|err| {
            self.err(ErrorKind::Protocol, format!("one.vm.info: {err}"))
                .with_resource(id.as_str())
        })?;
        match state::vm_state(vm.state, vm.lcm_state) {
            VmState::Running | VmState::Pending => Ok(()),
            VmState::Terminated => Err(self
                .err(
                    ErrorKind::NotFound,
                    format!("VM {n} is DONE (terminated); it cannot be resumed"),
                )
                .with_resource(id.as_str())),
            _ => Err(e.with_resource(id.as_str())),
        }
    }
}

fn numeric(id: &VmId) -> i64 {
    id.as_str().parse().unwrap_or(i64::MAX)
}

/// The limit with less left (an unlimited one loses to any limit).
fn tighter(a: Limit, b: Limit) -> Limit {
    match (a.available(), b.available()) {
        (None, _) => b,
        (_, None) => a,
        (Some(x), Some(y)) if y < x => b,
        _ => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use intercloud_core::{IdempotencyKey, UserData};

    fn tmpl(context: &[(&str, &str)]) -> OneTemplate {
        OneTemplate {
            id: 7,
            name: "small".into(),
            context: context
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            vcpu: None,
            cpu: None,
            memory_mb: None,
        }
    }

    #[test]
    fn extra_template_merges_context_and_adds_tags() {
        let mut spec = VmSpec::new("c1", "worker", IdempotencyKey::new("k1").unwrap(), "S", "7");
        spec.user_data = Some(UserData("#cloud-config\nruncmd:\n  - echo hi\n".into()));
        let t = tmpl(&[
            ("NETWORK", "YES"),
            ("SSH_PUBLIC_KEY", "$USER[SSH_PUBLIC_KEY]"),
            ("USERDATA", "old"),
        ]);
        assert_eq!(
            extra_template(&t, &spec, 1).unwrap(),
            "CONTEXT=[NETWORK=\"YES\",SSH_PUBLIC_KEY=\"$USER[SSH_PUBLIC_KEY]\",\
             USER_DATA=\"I2Nsb3VkLWNvbmZpZwpydW5jbWQ6CiAgLSBlY2hvIGhpCg==\",USER_DATA_ENCODING=\"base64\"]\n\
             INTERCLOUD_CLUSTER=\"c1\"\nINTERCLOUD_INDEX=\"1\"\nINTERCLOUD_KEY=\"k1\"\nINTERCLOUD_ROLE=\"worker\""
        );
        spec.user_data = None;
        assert_eq!(
            extra_template(&t, &spec, 0).unwrap(),
            "INTERCLOUD_CLUSTER=\"c1\"\nINTERCLOUD_INDEX=\"0\"\nINTERCLOUD_KEY=\"k1\"\nINTERCLOUD_ROLE=\"worker\""
        );
        spec.extra_tags.insert("Bad_Key".into(), "v".into());
        assert_eq!(
            extra_template(&t, &spec, 0).unwrap_err().kind(),
            ErrorKind::InvalidRequest
        );
    }

    #[test]
    fn a_template_without_context_gets_network_yes() {
        let mut spec = VmSpec::new("c", "r", IdempotencyKey::new("k").unwrap(), "S", "7");
        spec.user_data = Some(UserData("x".into()));
        let text = extra_template(&tmpl(&[]), &spec, 0).unwrap();
        assert!(
            text.starts_with(
                "CONTEXT=[NETWORK=\"YES\",USER_DATA=\"eA==\",USER_DATA_ENCODING=\"base64\"]\n"
            ),
            "{text}"
        );
        let kept = extra_template(&tmpl(&[("NETWORK", "NO")]), &spec, 0).unwrap();
        assert!(
            kept.starts_with("CONTEXT=[NETWORK=\"NO\",USER_DATA="),
            "{kept}"
        );
    }

    #[test]
    fn tighter_picks_the_smaller_remainder() {
        let unlimited = Limit::new(3, None);
        let small = Limit::new(1, Some(4));
        let big = Limit::new(0, Some(100));
        assert_eq!(tighter(unlimited, small), small);
        assert_eq!(tighter(big, small), small);
        assert_eq!(tighter(small, unlimited), small);
    }
}
