//! [`CloudStackProvider`]: the [`CloudProvider`] contract over CloudStack's API.
//!
//! - **Create** (`create_vms`): CloudStack has no batch deploy, so one
//!   `deployVirtualMachine` (POST, user data base64, display name `{key}-{i}`) per
//!   missing index, a bounded number in flight. Each returns the VM id and job id at
//!   once; then **one** `createTags` tags every VM of the call with the call's tags
//!   (cluster, role, key, extras). The index is not a tag: it is read back from the
//!   display name, as EC2 reads it from `amiLaunchIndex`. Idempotent by key: one
//!   `listVirtualMachines` by `keyword` (the key) finds the call's VMs, tagged or not
//!   (a create cut short between deploy and tags), and they are adopted; a
//!   [`VmSpec::fresh`] call skips that lookup.
//! - **Progress** of all new VMs comes from one `listVirtualMachines` by the cluster
//!   tag per tick, shared by the create calls waiting at once; `queryAsyncJobResult`
//!   only fetches one failed job's error. A VM still starting at
//!   the job timeout is returned as pending, never reported as failed.
//! - **List**: `listVirtualMachines` with `listall=true`, the zone, the most selective
//!   tag as `tags[0].key/value`, paged; the filter is then applied exactly. A filter
//!   on the key tag lists by `keyword` instead, so VMs whose tagging was cut short are
//!   found too, reported with the key and index their name carries.
//! - **Delete**: `destroyVirtualMachine` with `expunge=true`; a VM already gone is Ok.
//! - **Start**: `startVirtualMachine` (async job, waited for like the destroy job). A
//!   refusal with 431 (CloudStack's answer both for an id naming no VM and, since 4.x,
//!   for a VM that is already running) is resolved by listing the VM by id: gone is
//!   `NotFound`, running or starting is `Ok`.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use futures::StreamExt as _;
use tokio::sync::Mutex;
use tokio::time::Instant;

use intercloud_core::{
    Capabilities, Capacity, CloudProvider, Error, ErrorKind, GuestNetwork, IdempotencyKey, Limit,
    Offering, Result, SiteId, UserDataFormat, Vm, VmFilter, VmId, VmSpec, VmState, TAG_CLUSTER,
    TAG_INDEX, TAG_KEY,
};

use crate::client::{Call, Client};
use crate::error::protocol;
use crate::jobs::JobOutcome;
use crate::model::{self, Account, Network, ServiceOffering, Template, VirtualMachine, Zone};
use crate::network;

/// The largest user data CloudStack accepts by POST with default settings
/// (`vm.userdata.max.length` = 32768), in bytes before base64.
pub const MAX_USER_DATA: usize = 32 * 1024;

/// The largest `count` one `create_vms` accepts.
pub const MAX_BATCH: u32 = 10_000;

/// A deploy that CloudStack accepted: reported (see
/// [`crate::CloudStackBuilder::on_deploy_started`]) as soon as the VM and job ids are
/// known, before any waiting, so a caller can journal them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeployStarted {
    /// The site.
    pub site: SiteId,
    /// The create call's idempotency key.
    pub key: IdempotencyKey,
    /// The VM's index within the call.
    pub index: u32,
    /// The new VM's id.
    pub vm_id: VmId,
    /// The `deployVirtualMachine` job id.
    pub job_id: String,
}

/// The callback told of every [`DeployStarted`].
#[derive(Clone)]
pub(crate) struct DeployHook(pub(crate) Arc<dyn Fn(&DeployStarted) + Send + Sync>);

impl std::fmt::Debug for DeployHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeployHook")
    }
}

/// Provider settings from the builder.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) zone: String,
    pub(crate) template: Option<String>,
    pub(crate) networks: Vec<String>,
    pub(crate) keypair: Option<String>,
    pub(crate) deploy_concurrency: usize,
    pub(crate) wait_for_running: bool,
    pub(crate) expunge: bool,
    pub(crate) on_deploy: Option<DeployHook>,
}

/// Name → id lookups, made once.
#[derive(Debug, Default)]
struct Cache {
    zone_id: Option<String>,
    offerings: Option<Vec<ServiceOffering>>,
    templates: BTreeMap<String, String>,
    /// The guest network (VPC tier) new VMs join, once resolved.
    tier: Option<Network>,
}

/// A VM this call deployed or adopted, being waited for.
#[derive(Debug, Clone)]
struct Started {
    index: u32,
    id: String,
    deploy_job: Option<String>,
    tag_job: Option<String>,
    /// Carries the call's tags (else the call's one `createTags` adds them).
    tagged: bool,
    /// Deployed by this call (so a failed call may roll it back).
    ours: bool,
}

/// A CloudStack zone as a [`CloudProvider`]. Build it with
/// [`crate::CloudStackBuilder`].
#[derive(Debug)]
pub struct CloudStackProvider {
    client: Client,
    settings: Settings,
    cache: Mutex<Cache>,
    /// The last listing of a cluster's VMs (when it started, the cluster, the VMs),
    /// shared by the create calls waiting for their VMs.
    listing: Mutex<Option<ClusterListing>>,
    expunge_refused: AtomicBool,
}

/// A listing of one cluster's VMs: when it started, the cluster, the VMs by id.
struct ClusterListing {
    taken: Instant,
    cluster: String,
    vms: Arc<BTreeMap<String, VirtualMachine>>,
}

impl std::fmt::Debug for ClusterListing {
    // A count, not thousands of VMs, in the provider's Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterListing")
            .field("cluster", &self.cluster)
            .field("vms", &self.vms.len())
            .finish_non_exhaustive()
    }
}

impl CloudStackProvider {
    pub(crate) fn new(client: Client, settings: Settings) -> Self {
        Self {
            client,
            settings,
            cache: Mutex::new(Cache::default()),
            listing: Mutex::new(None),
            expunge_refused: AtomicBool::new(false),
        }
    }

    fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> Error {
        Error::new(kind, msg).with_site(self.client.site().clone())
    }

    /// The zone's id, from `listZones` (by id or name), cached.
    pub async fn zone_id(&self) -> Result<String> {
        // Held across the lookup: concurrent calls wait for one `listZones`.
        let mut cache = self.cache.lock().await;
        if let Some(z) = &cache.zone_id {
            return Ok(z.clone());
        }
        let zones: Vec<Zone> = self.client.list(&Call::get("listZones"), "zone").await?;
        let want = &self.settings.zone;
        let found = zones.iter().find(|z| &z.id == want).or_else(|| {
            zones
                .iter()
                .find(|z| z.name.as_deref() == Some(want.as_str()))
        });
        let Some(zone) = found else {
            let names: Vec<&str> = zones.iter().filter_map(|z| z.name.as_deref()).collect();
            return Err(self.err(
                ErrorKind::Config,
                format!("zone {want:?} not found; the site lists {names:?}"),
            ));
        };
        cache.zone_id = Some(zone.id.clone());
        Ok(zone.id.clone())
    }

    /// The guest network new VMs join: the builder's network, else the zone's one VPC
    /// tier (`listNetworks`), cached.
    async fn tier(&self) -> Result<Network> {
        if let Some(t) = &self.cache.lock().await.tier {
            return Ok(t.clone());
        }
        let configured = self.settings.networks.first().map(String::as_str);
        let call = match configured {
            Some(id) => Call::get("listNetworks").param("id", id),
            None => Call::get("listNetworks").param("zoneid", self.zone_id().await?),
        }
        .param("listall", "true");
        let networks: Vec<Network> = self.client.list(&call, "network").await?;
        let tier = network::choose_tier(self.client.site(), configured, networks)?;
        self.cache.lock().await.tier = Some(tier.clone());
        Ok(tier)
    }

    /// Checks the addresses `spec` gives the `missing` indices against the tier: each
    /// index has one, inside the tier's CIDR.
    fn check_addresses(&self, spec: &VmSpec, missing: &[u32], tier: &Network) -> Result<()> {
        let cidr = network::tier_cidr(self.client.site(), tier)?;
        for i in missing {
            let invalid = |why: String| {
                self.err(
                    ErrorKind::InvalidRequest,
                    format!(
                        "VM {i} of {}: {why}; choose addresses from guest_network() (network {})",
                        spec.key, tier.id
                    ),
                )
            };
            let Some(a) = spec.addresses.get(*i as usize) else {
                return Err(invalid(format!(
                    "no address (VmSpec::addresses has {})",
                    spec.addresses.len()
                )));
            };
            network::check_address(a, cidr, tier.gateway.as_deref()).map_err(invalid)?;
        }
        Ok(())
    }

    /// `e` as a temporary `AlreadyExists` when it is CloudStack refusing the address
    /// VM `index` of `spec` asked for; otherwise `e`.
    fn address_error(&self, spec: &VmSpec, index: u32, e: Error) -> Error {
        match spec.addresses.get(index as usize) {
            Some(a) if network::is_address_refused(&e) => {
                let net = self.settings_network_label();
                network::address_in_use(self.client.site(), a, &net, &e)
            }
            _ => e,
        }
    }

    /// The configured network id, or "the zone's VPC tier", for messages.
    fn settings_network_label(&self) -> String {
        self.settings
            .networks
            .first()
            .cloned()
            .unwrap_or_else(|| "the zone's VPC tier".to_owned())
    }

    async fn service_offerings(&self) -> Result<Vec<ServiceOffering>> {
        let mut cache = self.cache.lock().await;
        if let Some(o) = &cache.offerings {
            return Ok(o.clone());
        }
        let list: Vec<ServiceOffering> = self
            .client
            .list(&Call::get("listServiceOfferings"), "serviceoffering")
            .await?;
        cache.offerings = Some(list.clone());
        Ok(list)
    }

    async fn offering_id(&self, want: &str) -> Result<String> {
        let list = self.service_offerings().await?;
        list.iter()
            .find(|o| o.id == want)
            .or_else(|| list.iter().find(|o| o.name.as_deref() == Some(want)))
            .map(|o| o.id.clone())
            .ok_or_else(|| {
                self.err(
                    ErrorKind::InvalidRequest,
                    format!("service offering {want:?} not found at this site"),
                )
            })
    }

    async fn template_id(&self, want: &str, zone_id: &str) -> Result<String> {
        let mut cache = self.cache.lock().await;
        if let Some(id) = cache.templates.get(want) {
            return Ok(id.clone());
        }
        let call = Call::get("listTemplates")
            .param("templatefilter", "executable")
            .param("zoneid", zone_id);
        let list: Vec<Template> = self.client.list(&call, "template").await?;
        let ready = |t: &&Template| t.isready != Some(false);
        let found = list
            .iter()
            .filter(ready)
            .find(|t| t.id == want)
            .or_else(|| {
                list.iter()
                    .filter(ready)
                    .find(|t| t.name.as_deref() == Some(want))
            });
        let Some(t) = found else {
            return Err(self.err(
                ErrorKind::InvalidRequest,
                format!("template {want:?} not found (or not ready) in this zone"),
            ));
        };
        cache.templates.insert(want.to_owned(), t.id.clone());
        Ok(t.id.clone())
    }

    /// Lists raw VMs of this zone carrying `tag` (or all), with optional keyword.
    async fn list_raw(
        &self,
        tag: Option<(&str, &str)>,
        keyword: Option<&str>,
    ) -> Result<Vec<VirtualMachine>> {
        let zone = self.zone_id().await?;
        let mut call = Call::get("listVirtualMachines")
            .param("listall", "true")
            .param("zoneid", zone)
            .opt("keyword", keyword);
        if let Some((k, v)) = tag {
            call = call.param("tags[0].key", k).param("tags[0].value", v);
        }
        let vms: Vec<VirtualMachine> = self.client.list(&call, "virtualmachine").await?;
        let mut seen = HashSet::new();
        Ok(vms
            .into_iter()
            .filter(|v| seen.insert(v.id.clone()))
            .collect())
    }

    fn to_vm(&self, raw: VirtualMachine) -> Result<Vm> {
        to_vm(self.client.site(), raw)
    }

    /// The VMs of `key` (alive or not), each with whether it carries the call's tags:
    /// one `listVirtualMachines` by `keyword`, which matches the display name
    /// `{key}-{i}` whether or not the VM was tagged. Untagged VMs named `{key}-{i}` (a
    /// create cut short before `createTags`) are reported with the key and index tags
    /// their name stands for.
    async fn of_key(&self, key: &IdempotencyKey) -> Result<Vec<(Vm, bool)>> {
        let mut out = Vec::new();
        for raw in self.list_raw(None, Some(key.as_str())).await? {
            let mut vm = self.to_vm(raw)?;
            match vm.key() {
                Some(k) if k == key.as_str() => out.push((vm, true)),
                Some(_) => {}
                None => {
                    if let Some(i) = index_in_name(key.as_str(), &vm.name) {
                        vm.tags.insert(TAG_KEY.into(), key.as_str().into());
                        vm.tags.insert(TAG_INDEX.into(), i.to_string());
                        out.push((vm, false));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The alive VMs of `key` by index, each with whether it is tagged.
    async fn existing(&self, key: &IdempotencyKey) -> Result<BTreeMap<u32, (String, bool)>> {
        let mut by_index = BTreeMap::new();
        for (vm, tagged) in self.of_key(key).await? {
            if let (true, Some(i)) = (vm.state.is_alive(), vm.index()) {
                by_index.entry(i).or_insert((vm.id.0, tagged));
            }
        }
        Ok(by_index)
    }

    /// Tags `ids` with the call's tags (all but the index, which the display name
    /// carries) in one `createTags`; returns its job.
    async fn tag(&self, spec: &VmSpec, ids: &[&str]) -> Result<String> {
        let mut tags = spec.tags_for(0);
        tags.remove(TAG_INDEX);
        let call = Call::post("createTags")
            .param("resourceids", ids.join(","))
            .param("resourcetype", "UserVm")
            .tags(&tags);
        Ok(self.client.start(&call).await?.jobid)
    }

    /// Deploys VM `index` of `spec` (named `{key}-{index}`, tagged later).
    async fn deploy_one(&self, spec: &VmSpec, index: u32, base: &Call) -> Result<Started> {
        let mut call = base.clone().param("displayname", spec.key.vm_name(index));
        if let Some(host) = hostname_for(&spec.key.vm_name(index)) {
            call = call.param("name", host);
        }
        if let Some(a) = spec.addresses.get(index as usize) {
            call = call.param("ipaddress", a);
        }
        let reply = match self.client.start(&call).await {
            Ok(r) => r,
            // The deploy may or may not have happened: look the VM up by its name.
            Err(e) if e.kind() == ErrorKind::Timeout => {
                return self.adopt_after_timeout(spec, index, e).await
            }
            Err(e) => return Err(self.address_error(spec, index, e)),
        };
        let id = reply.id.ok_or_else(|| {
            protocol(
                self.client.site(),
                "deployVirtualMachine",
                "the reply has no VM `id`",
            )
        })?;
        tracing::info!(site = %self.client.site(), key = %spec.key, index, vm = %id, job = %reply.jobid, "VM deploy started");
        if let Some(hook) = &self.settings.on_deploy {
            (hook.0)(&DeployStarted {
                site: self.client.site().clone(),
                key: spec.key.clone(),
                index,
                vm_id: VmId::new(id.clone()),
                job_id: reply.jobid.clone(),
            });
        }
        Ok(Started {
            index,
            id,
            deploy_job: Some(reply.jobid),
            tag_job: None,
            tagged: false,
            ours: true,
        })
    }

    /// A deploy timed out: if CloudStack made the VM (named `{key}-{index}`), adopt it
    /// (the call's `createTags` tags it); otherwise the timeout stands (temporary: a
    /// retry is safe).
    async fn adopt_after_timeout(
        &self,
        spec: &VmSpec,
        index: u32,
        timeout: Error,
    ) -> Result<Started> {
        let name = spec.key.vm_name(index);
        let Ok(found) = self.list_raw(None, Some(&name)).await else {
            return Err(timeout);
        };
        let vm = found
            .into_iter()
            .filter_map(|r| self.to_vm(r).ok())
            .find(|vm| {
                vm.name == name
                    && vm.state.is_alive()
                    && vm.key().is_none_or(|k| k == spec.key.as_str())
            });
        let Some(vm) = vm else {
            return Err(timeout);
        };
        tracing::info!(site = %self.client.site(), vm = %vm.id, "deploy timed out but the VM exists: adopted");
        Ok(Started {
            index,
            tagged: vm.key().is_some(),
            id: vm.id.0,
            deploy_job: None,
            tag_job: None,
            ours: true,
        })
    }

    /// Tags every VM of `started` not yet tagged, in one `createTags`. A temporary
    /// failure leaves them untagged for a retry to adopt by name; a permanent one
    /// removes what this call deployed.
    async fn tag_started(&self, spec: &VmSpec, started: &mut [Started]) -> Result<()> {
        let ids: Vec<&str> = started
            .iter()
            .filter(|s| !s.tagged)
            .map(|s| s.id.as_str())
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        match self.tag(spec, &ids).await {
            Ok(job) => {
                for s in started.iter_mut().filter(|s| !s.tagged) {
                    s.tag_job = Some(job.clone());
                    s.tagged = true;
                }
                Ok(())
            }
            Err(e) if e.is_temporary() => Err(e.with_resource(format!(
                "{} (deployed, not yet tagged: a retry adopts them)",
                spec.key
            ))),
            Err(e) => {
                // They can never be tagged: remove them rather than leave them unseen.
                self.remove_all(started.iter().filter(|s| s.ours).map(|s| s.id.as_str()))
                    .await;
                Err(e.with_resource(spec.key.as_str()))
            }
        }
    }

    async fn deploy_call(&self, spec: &VmSpec) -> Result<Call> {
        let user_data = match &spec.user_data {
            Some(u) if u.0.len() > MAX_USER_DATA => {
                return Err(self
                    .err(
                        ErrorKind::InvalidRequest,
                        format!(
                            "user data is {} bytes; CloudStack accepts at most {MAX_USER_DATA}",
                            u.0.len()
                        ),
                    )
                    .with_resource(spec.key.as_str()))
            }
            Some(u) => Some(base64::engine::general_purpose::STANDARD.encode(u.0.as_bytes())),
            None => None,
        };
        let image = spec
            .image
            .as_ref()
            .map(|i| i.0.clone())
            .or_else(|| self.settings.template.clone())
            .ok_or_else(|| {
                self.err(
                    ErrorKind::InvalidRequest,
                    "CloudStack needs a template: set the level's `image` or the builder's template",
                )
            })?;
        let zone = self.zone_id().await?;
        let offering = self.offering_id(&spec.offering).await?;
        let template = self.template_id(&image, &zone).await?;
        // A VM at a chosen address goes to the tier the address belongs to.
        let networks = if spec.addresses.is_empty() {
            self.settings.networks.join(",")
        } else {
            self.tier().await?.id
        };
        Ok(Call::post("deployVirtualMachine")
            .param("zoneid", zone)
            .param("serviceofferingid", offering)
            .param("templateid", template)
            .opt(
                "networkids",
                (!networks.is_empty()).then_some(networks.as_str()),
            )
            .opt("keypair", self.settings.keypair.as_deref())
            .opt("userdata", user_data.as_deref()))
    }

    /// Waits until every started VM is listed with its tags and (when configured)
    /// has left `Starting`: one `listVirtualMachines` per tick.
    async fn await_started(&self, spec: &VmSpec, started: &[Started], running: bool) -> Result<()> {
        let deadline = Instant::now() + self.client.job_timeout;
        let mut not_before = Instant::now();
        loop {
            let listed = self.cluster_listing(&spec.cluster, not_before).await?;
            let mut waiting = Vec::new();
            let mut failed = Vec::new();
            for s in started {
                match listed.get(&s.id) {
                    None => waiting.push(s),
                    Some(vm) => match model::vm_state(&vm.state) {
                        Some(VmState::Failed | VmState::Terminated) => failed.push(s),
                        Some(VmState::Pending) if running => waiting.push(s),
                        Some(_) => {}
                        None => {
                            return Err(protocol(
                                self.client.site(),
                                "listVirtualMachines",
                                format!("unknown VM state {:?} of VM {}", vm.state, vm.id),
                            ))
                        }
                    },
                }
            }
            if !failed.is_empty() {
                return Err(self.deploy_failed(spec, started, &failed).await);
            }
            if waiting.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return self.resolve_timeout(spec, &waiting, &listed).await;
            }
            tokio::time::sleep(self.client.poll_interval).await;
            not_before = Instant::now();
        }
    }

    /// The cluster's VMs by id, from one `listVirtualMachines` by the cluster tag that
    /// started at or after `not_before`. Create calls waiting at once share it: the
    /// lock is held while listing, so the others wait for that listing and reuse it
    /// (one listing per tick for the site, not one per create call).
    async fn cluster_listing(
        &self,
        cluster: &str,
        not_before: Instant,
    ) -> Result<Arc<BTreeMap<String, VirtualMachine>>> {
        let mut last = self.listing.lock().await;
        if let Some(l) = &*last {
            if l.taken >= not_before && l.cluster == cluster {
                return Ok(l.vms.clone());
            }
        }
        let taken = Instant::now();
        let vms: Arc<BTreeMap<String, VirtualMachine>> = Arc::new(
            self.list_raw(Some((TAG_CLUSTER, cluster)), None)
                .await?
                .into_iter()
                .map(|v| (v.id.clone(), v))
                .collect(),
        );
        *last = Some(ClusterListing {
            taken,
            cluster: cluster.to_owned(),
            vms: vms.clone(),
        });
        Ok(vms)
    }

    /// The job timeout passed. VMs listed and still starting may yet succeed: fine.
    /// VMs not listed by their tag: a failed tag or deploy job is reported; anything
    /// still running is `Timeout` (retrying with the same key adopts them).
    async fn resolve_timeout(
        &self,
        spec: &VmSpec,
        waiting: &[&Started],
        listed: &BTreeMap<String, VirtualMachine>,
    ) -> Result<()> {
        // One absent VM's jobs tell whether tagging or deploying failed; checking
        // every absent VM would cost a call per VM.
        if let Some(s) = waiting.iter().find(|s| !listed.contains_key(&s.id)) {
            for (command, job) in [
                ("createTags", &s.tag_job),
                ("deployVirtualMachine", &s.deploy_job),
            ] {
                if let Some(job) = job {
                    if let JobOutcome::Failed(e) = self.client.query_job(command, job, &[]).await? {
                        return Err(e.with_resource(s.id.clone()));
                    }
                }
            }
            return Err(self
                .err(
                    ErrorKind::Timeout,
                    format!(
                        "VM {} ({}) not tagged after {:?}; retrying with the same key is safe",
                        s.id,
                        spec.key.vm_name(s.index),
                        self.client.job_timeout
                    ),
                )
                .with_resource(spec.key.as_str()));
        }
        Ok(())
    }

    /// Reads the error of one failed deploy, removes what failed (and, when the error
    /// is not temporary, everything this call deployed), and returns the error.
    async fn deploy_failed(&self, spec: &VmSpec, all: &[Started], failed: &[&Started]) -> Error {
        let first = failed[0];
        let mut error = None;
        if let Some(job) = &first.deploy_job {
            match self
                .client
                .query_job("deployVirtualMachine", job, &[])
                .await
            {
                Ok(JobOutcome::Failed(e)) => error = Some(self.address_error(spec, first.index, e)),
                Ok(_) => {}
                Err(e) => error = Some(e),
            }
        }
        let error = error
            .unwrap_or_else(|| {
                self.err(
                    ErrorKind::Unavailable,
                    format!("deployVirtualMachine: VM {} ended in state Error", first.id),
                )
            })
            .with_resource(spec.key.vm_name(first.index));
        let doomed: Vec<&Started> = if error.is_temporary() {
            failed.to_vec()
        } else {
            all.iter().filter(|s| s.ours).collect()
        };
        self.remove_all(doomed.iter().map(|s| s.id.as_str())).await;
        error
    }

    /// Best-effort removal of VMs this call made (rollback).
    async fn remove_all<'a>(&self, ids: impl Iterator<Item = &'a str>) {
        let ids: Vec<VmId> = ids.map(VmId::new).collect();
        futures::stream::iter(ids.iter())
            .for_each_concurrent(self.settings.deploy_concurrency, |id| async move {
                if let Err(e) = self.delete_vm(id).await {
                    tracing::warn!(site = %self.client.site(), vm = %id, error = %e, "rollback of a VM failed; it stays tagged for cleanup");
                }
            })
            .await;
    }

    /// Whether `id` names no alive VM (listing it fails with 431, finds nothing, or
    /// finds it destroyed).
    async fn is_gone(&self, id: &VmId) -> Result<bool> {
        Ok(self.state_of(id).await?.is_none())
    }

    /// The state of VM `id`, `None` when it names no alive VM (listing it fails with
    /// 431, finds nothing, or finds it destroyed).
    async fn state_of(&self, id: &VmId) -> Result<Option<VmState>> {
        let call = Call::get("listVirtualMachines")
            .param("id", id.as_str())
            .param("listall", "true");
        match self
            .client
            .list::<VirtualMachine>(&call, "virtualmachine")
            .await
        {
            Ok(vms) => Ok(vms
                .iter()
                .filter(|v| v.id == id.0)
                .map(|v| {
                    model::vm_state(&v.state).unwrap_or_else(|| VmState::Unknown(v.state.clone()))
                })
                .find(VmState::is_alive)),
            Err(e) if e.kind() == ErrorKind::InvalidRequest => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn destroy(&self, id: &VmId, expunge: bool) -> Result<()> {
        let mut call = Call::post("destroyVirtualMachine").param("id", id.as_str());
        if expunge {
            call = call.param("expunge", "true");
        }
        self.client.run(&call).await.map(|_| ())
    }
}

/// The index `i` when `name` is exactly `{key}-{i}`.
fn index_in_name(key: &str, name: &str) -> Option<u32> {
    let rest = name.strip_prefix(key)?.strip_prefix('-')?;
    let i: u32 = rest.parse().ok()?;
    (i.to_string() == rest).then_some(i)
}

/// A host name CloudStack accepts for `name` (RFC 1123 label starting with a letter,
/// `NetUtils.verifyDomainNameLabel`), or `None` to let CloudStack pick one.
fn hostname_for(name: &str) -> Option<String> {
    let candidate = if name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.to_owned()
    } else {
        format!("vm-{name}")
    };
    let ok = candidate.len() <= 63
        && candidate
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !candidate.ends_with('-');
    ok.then_some(candidate)
}

/// Maps a CloudStack VM to intercloud's (pure).
///
/// # Errors
/// `Protocol` naming `listVirtualMachines` for a state CloudStack does not define.
pub(crate) fn to_vm(site: &SiteId, raw: VirtualMachine) -> Result<Vm> {
    let state = model::vm_state(&raw.state).ok_or_else(|| {
        protocol(
            site,
            "listVirtualMachines",
            format!("unknown VM state {:?} of VM {}", raw.state, raw.id),
        )
    })?;
    let private_ip = raw
        .nic
        .iter()
        .find(|n| n.isdefault == Some(true) && n.ipaddress.is_some())
        .or_else(|| raw.nic.iter().find(|n| n.ipaddress.is_some()))
        .and_then(|n| n.ipaddress.clone());
    let name = raw.displayname.or(raw.name).unwrap_or_default();
    let mut tags: intercloud_core::Tags = raw.tags.into_iter().map(|t| (t.key, t.value)).collect();
    // One `createTags` tags all VMs of a create call alike; each one's index is in its
    // display name `{key}-{index}`.
    if !tags.contains_key(TAG_INDEX) {
        if let Some(i) = tags.get(TAG_KEY).and_then(|k| index_in_name(k, &name)) {
            tags.insert(TAG_INDEX.into(), i.to_string());
        }
    }
    Ok(Vm {
        id: VmId::new(raw.id),
        site: site.clone(),
        name,
        state,
        tags,
        offering: raw.serviceofferingname.or(raw.serviceofferingid),
        private_ip,
        public_ip: raw.publicip,
    })
}

#[async_trait]
impl CloudProvider for CloudStackProvider {
    fn site(&self) -> &SiteId {
        self.client.site()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            batch_create: false,
            max_batch: MAX_BATCH,
            idempotent_create: true,
            server_idempotency: false,
            server_tag_filter: true,
            native_vpn: true,
            user_data: UserDataFormat::CloudInit,
            max_user_data: MAX_USER_DATA,
            start_vm: true,
        }
    }

    async fn offerings(&self) -> Result<Vec<Offering>> {
        Ok(self
            .service_offerings()
            .await?
            .into_iter()
            .map(|o| Offering {
                name: o.name.unwrap_or_else(|| o.id.clone()),
                id: o.id,
                vcpus: o.cpunumber.and_then(|c| u32::try_from(c).ok()),
                memory_mb: o.memory,
            })
            .collect())
    }

    async fn capacity(&self) -> Result<Capacity> {
        let accounts: Vec<Account> = self
            .client
            .list(&Call::get("listAccounts"), "account")
            .await?;
        let a = accounts
            .into_iter()
            .next()
            .ok_or_else(|| protocol(self.client.site(), "listAccounts", "no account listed"))?;
        Ok(Capacity {
            instances: Limit::new(a.vmtotal.unwrap_or(0), a.vmlimit),
            vcpus: Limit::new(a.cputotal.unwrap_or(0), a.cpulimit),
            memory_mb: Limit::new(a.memorytotal.unwrap_or(0), a.memorylimit),
        })
    }

    async fn create_vms(&self, spec: &VmSpec, count: u32) -> Result<Vec<VmId>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        if count > MAX_BATCH {
            return Err(self
                .err(
                    ErrorKind::InvalidRequest,
                    format!("count {count} exceeds {MAX_BATCH}"),
                )
                .with_resource(spec.key.as_str()));
        }
        let existing = if spec.fresh {
            BTreeMap::new()
        } else {
            self.existing(&spec.key).await?
        };
        let mut ids: BTreeMap<u32, String> = BTreeMap::new();
        let mut started = Vec::new();
        for (&i, (id, tagged)) in existing.range(0..count) {
            ids.insert(i, id.clone());
            if !*tagged {
                started.push(Started {
                    index: i,
                    id: id.clone(),
                    deploy_job: None,
                    tag_job: None,
                    tagged: false,
                    ours: false,
                });
            }
        }
        let missing: Vec<u32> = (0..count).filter(|i| !ids.contains_key(i)).collect();
        if !spec.addresses.is_empty() && !missing.is_empty() {
            let tier = self.tier().await?;
            self.check_addresses(spec, &missing, &tier)
                .map_err(|e| e.with_resource(spec.key.as_str()))?;
        }
        let mut first_err: Option<Error> = None;
        if !missing.is_empty() {
            let base = self.deploy_call(spec).await?;
            let results: Vec<Result<Started>> = futures::stream::iter(missing)
                .map(|i| self.deploy_one(spec, i, &base))
                .buffer_unordered(self.settings.deploy_concurrency)
                .collect()
                .await;
            for r in results {
                match r {
                    Ok(s) => {
                        ids.insert(s.index, s.id.clone());
                        started.push(s);
                    }
                    Err(e) => {
                        // Keep the most telling error: a permanent one over a temporary one.
                        if first_err
                            .as_ref()
                            .is_none_or(|f| f.is_temporary() && !e.is_temporary())
                        {
                            first_err = Some(e);
                        }
                    }
                }
            }
        }
        if first_err.as_ref().is_some_and(|e| !e.is_temporary()) {
            self.remove_all(started.iter().filter(|s| s.ours).map(|s| s.id.as_str()))
                .await;
        } else {
            self.tag_started(spec, &mut started).await?;
        }
        if let Some(e) = first_err {
            let e = if e.resource().is_none() {
                e.with_resource(spec.key.as_str())
            } else {
                e
            };
            if e.is_temporary() {
                // Keep what was made: a retry with the same key adopts it.
                let _ = self.await_started(spec, &started, false).await;
            }
            return Err(e);
        }
        if !started.is_empty() {
            self.await_started(spec, &started, self.settings.wait_for_running)
                .await?;
        }
        Ok((0..count)
            .filter_map(|i| ids.remove(&i).map(VmId::new))
            .collect())
    }

    async fn list_vms(&self, filter: &VmFilter) -> Result<Vec<Vm>> {
        // Push the most selective tag only: servers differ on whether several
        // `tags[n]` are ANDed or ORed; the rest is filtered here, exactly.
        let tag = [TAG_KEY, TAG_CLUSTER, TAG_INDEX]
            .iter()
            .find_map(|k| filter.tags.get_key_value(*k))
            .or_else(|| filter.tags.iter().next())
            .map(|(k, v)| (k.as_str(), v.as_str()));
        let key = tag
            .filter(|(k, _)| *k == TAG_KEY)
            .and_then(|(_, v)| IdempotencyKey::new(v).ok());
        if let Some(key) = key {
            return Ok(self
                .of_key(&key)
                .await?
                .into_iter()
                .map(|(vm, _)| vm)
                .filter(|vm| filter.matches(vm))
                .collect());
        }
        let raw = self.list_raw(tag, None).await?;
        let mut out = Vec::with_capacity(raw.len());
        for r in raw {
            let vm = self.to_vm(r)?;
            if filter.matches(&vm) {
                out.push(vm);
            }
        }
        Ok(out)
    }

    async fn delete_vm(&self, id: &VmId) -> Result<()> {
        let expunge = self.settings.expunge && !self.expunge_refused.load(Ordering::Relaxed);
        let mut result = self.destroy(id, expunge).await;
        if expunge {
            if let Err(e) = &result {
                if e.kind() == ErrorKind::PermissionDenied {
                    tracing::info!(site = %self.client.site(), "expunge refused for this account; destroying without it");
                    self.expunge_refused.store(true, Ordering::Relaxed);
                    result = self.destroy(id, false).await;
                }
            }
        }
        match result {
            Ok(()) => Ok(()),
            // 431 is also what an id naming no VM gets: check before calling it gone.
            Err(e) if matches!(e.kind(), ErrorKind::InvalidRequest | ErrorKind::NotFound) => {
                match self.is_gone(id).await {
                    Ok(true) => Ok(()),
                    _ => Err(e.with_resource(id.as_str())),
                }
            }
            Err(e) => Err(e.with_resource(id.as_str())),
        }
    }

    async fn start_vm(&self, id: &VmId) -> Result<()> {
        // startVirtualMachine: `id` required; async, its job result is the
        // `virtualmachine` in state Running (CloudStack API docs, StartVMCmd.java;
        // recorded in cloudstack-go's VirtualMachineService.json).
        let call = Call::post("startVirtualMachine").param("id", id.as_str());
        match self.client.run(&call).await {
            Ok(_) => Ok(()),
            // 431 is what both an id naming no VM and a VM already running get:
            // look before deciding.
            Err(e) if matches!(e.kind(), ErrorKind::InvalidRequest | ErrorKind::NotFound) => {
                match self.state_of(id).await {
                    Ok(None) => Err(self
                        .err(
                            ErrorKind::NotFound,
                            format!("startVirtualMachine: no VM {id} (destroyed or never made)"),
                        )
                        .with_resource(id.as_str())),
                    Ok(Some(VmState::Running | VmState::Pending)) => Ok(()),
                    _ => Err(e.with_resource(id.as_str())),
                }
            }
            Err(e) => Err(e.with_resource(id.as_str())),
        }
    }

    async fn guest_network(&self) -> Result<Option<GuestNetwork>> {
        let tier = self.tier().await?;
        let cidr = network::tier_cidr(self.client.site(), &tier)?;
        let call = Call::get("listVirtualMachines")
            .param("networkid", tier.id.as_str())
            .param("listall", "true");
        let vms: Vec<VirtualMachine> = self.client.list(&call, "virtualmachine").await?;
        Ok(Some(GuestNetwork {
            in_use: network::addresses_on(&tier.id, &vms),
            cidr: cidr.to_string(),
            vpc: tier.vpcid,
            id: tier.id,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_indices_round_trip() {
        let key = IdempotencyKey::new("ic-c1-abc").unwrap();
        assert_eq!(index_in_name(key.as_str(), "ic-c1-abc-12"), Some(12));
        assert_eq!(index_in_name(key.as_str(), "ic-c1-abc-012"), None);
        assert_eq!(index_in_name(key.as_str(), "ic-c1-abcd-1"), None);
        assert_eq!(index_in_name(key.as_str(), "ic-c1-abc-1-2"), None);
    }

    #[test]
    fn host_names_are_valid_labels() {
        assert_eq!(hostname_for("ic-a-1").as_deref(), Some("ic-a-1"));
        assert_eq!(hostname_for("3f-a-1").as_deref(), Some("vm-3f-a-1"));
        assert_eq!(hostname_for(&format!("a{}-1", "x".repeat(63))), None);
    }
}
