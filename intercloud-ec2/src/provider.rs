//! [`Ec2Provider`]: the [`CloudProvider`] of an AWS region or a Eucalyptus cloud.
//!
//! # How `create_vms(spec, n)` keeps the contract (code in `create.rs`)
//! 1. `DescribeInstances` filtered on `tag:intercloud-key = key` (alive states) finds
//!    what earlier attempts made. moto ignores `ClientToken`, and even AWS's token
//!    does not cover a *larger* retry, so this lookup is what makes creates idempotent.
//! 2. Instances carrying the key but no index (neither an `intercloud-index` tag nor
//!    `intercloud-index-base` with an `amiLaunchIndex`) are adopted for the lowest
//!    missing indices, each by one `CreateTags`.
//! 3. The indices still missing are made by **one** `RunInstances` with
//!    `MinCount = MaxCount = missing`, `ClientToken` (the key for a first attempt, see
//!    [`crate::query::client_token`]) and a `TagSpecification` carrying the common
//!    tags (cluster, role, key, extra tags), so every instance is findable from birth.
//! 4. EC2 cannot give instances of one call different tags. When the missing indices
//!    are contiguous (always for a first create, and for a top-up of a contiguous
//!    range), the `TagSpecification` also carries
//!    [`intercloud-index-base`](crate::model::TAG_INDEX_BASE) = the first of them, and
//!    nothing else is sent: listing derives each instance's `intercloud-index` as
//!    `base + amiLaunchIndex` and its name as `{key}-{index}`
//!    ([`crate::model::Instance::index`], [`crate::model::Instance::to_vm`]), so
//!    `Vm::index()` and `Vm::name` are as if tagged one by one. **A create is two
//!    calls whatever `n`: the key lookup and one `RunInstances`** (before: `2 + n`).
//!    A single VM gets its index and `Name` in the `TagSpecification` directly.
//! 5. Rare paths keep one `CreateTags` per instance (explicit `intercloud-index` and
//!    `Name`, which win over derived ones): a top-up whose missing indices have gaps,
//!    and a `RunInstances` answer without a distinct `amiLaunchIndex` per instance.
//! 6. Where tag-on-create is off (Eucalyptus by default), `RunInstances` carries no
//!    tags and **one** `CreateTags` naming all its instances then sets the shared tags
//!    (common tags plus index base, or the single VM's full tags); `ClientToken` alone
//!    guards retries until then.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use intercloud_core::{
    Capabilities, Capacity, CloudProvider, Error, ErrorKind, GuestNetwork, Limit, Offering, Result,
    SiteId, UserDataFormat, Vm, VmFilter, VmId, VmSpec, TAG_INDEX,
};

use crate::client::Client;
use crate::model::{self, AvailabilityZone, Image, Instance};
use crate::query::{self, filter, LaunchOptions, ALIVE_STATES};
use crate::subnet::{self, Subnet};
use crate::vpn::Ec2VpnFabric;

/// Largest user data EC2 accepts, before base64 (AWS docs: 16 KB).
pub const MAX_USER_DATA: usize = 16 * 1024;

/// Pages followed at most in one listing (a loop guard against a server repeating
/// `nextToken`).
const MAX_PAGES: usize = 10_000;

/// Which cloud speaks the EC2 API at this endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// Amazon EC2 (or moto).
    Aws,
    /// Eucalyptus: same API, its own endpoint, no VPN gateways.
    Eucalyptus,
}

/// The EC2/Eucalyptus provider. Build it with [`crate::Ec2Builder`].
#[derive(Debug, Clone)]
pub struct Ec2Provider {
    pub(crate) client: Arc<Client>,
    pub(crate) flavour: Flavour,
    pub(crate) launch: LaunchOptions,
    pub(crate) max_batch: u32,
    pub(crate) tag_concurrency: usize,
    /// `MaxResults` of DescribeInstances (`None`: not sent).
    pub(crate) page_size: Option<u32>,
    /// Tags go in RunInstances' `TagSpecification`; otherwise by `CreateTags` after.
    pub(crate) tag_on_create: bool,
    /// The guest subnet once resolved (shared by clones).
    pub(crate) guest: Arc<std::sync::Mutex<Option<Subnet>>>,
}

impl Ec2Provider {
    /// The signed client (shared with the VPN fabric).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Which cloud this is.
    pub fn flavour(&self) -> Flavour {
        self.flavour
    }

    /// The native VPN fabric of this site (VPN gateway, customer gateways, VPN
    /// connections), sharing this provider's client.
    pub fn vpn_fabric(&self) -> Ec2VpnFabric {
        Ec2VpnFabric::new(self.client.clone())
    }

    fn err(&self, e: Error) -> Error {
        e.with_site(self.client.site().clone())
    }

    /// `NotFound` for an instance that is terminated (or shutting down).
    fn terminated(&self, id: &VmId) -> Error {
        self.err(Error::not_found(format!(
            "StartInstances: instance {id} is terminated; it cannot be started"
        )))
        .with_resource(id.as_str())
    }

    /// Every instance passing `filters`, following `nextToken`.
    pub async fn describe_instances(
        &self,
        filters: &[(String, Vec<String>)],
    ) -> Result<Vec<Instance>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = BTreeSet::new();
        for _ in 0..MAX_PAGES {
            let root = self
                .client
                .call(&query::describe_instances(
                    filters,
                    self.page_size,
                    token.as_deref(),
                ))
                .await?;
            let (page, next) = model::describe_instances(&root)
                .map_err(|m| self.err(Error::protocol(format!("DescribeInstances: {m}"))))?;
            out.extend(page);
            match next {
                Some(t) if !seen.contains(&t) => {
                    seen.insert(t.clone());
                    token = Some(t);
                }
                Some(_) => {
                    return Err(self.err(Error::protocol(
                        "DescribeInstances: the site repeated a nextToken",
                    )))
                }
                None => return Ok(out),
            }
        }
        Err(self.err(Error::protocol(format!(
            "DescribeInstances: more than {MAX_PAGES} pages"
        ))))
    }

    /// Region discovery (AWS): `(region, endpoint host)` of every region the account
    /// may use. Eucalyptus has one endpoint per cloud and no regions to discover.
    ///
    /// # Errors
    /// `Unsupported` on a Eucalyptus site.
    pub async fn regions(&self) -> Result<Vec<(String, Option<String>)>> {
        if self.flavour == Flavour::Eucalyptus {
            return Err(self.err(Error::unsupported(
                "Eucalyptus has no regions to discover: configure its endpoint",
            )));
        }
        let root = self.client.call(&query::describe_regions()).await?;
        Ok(model::regions(&root))
    }

    /// The availability zones of the region.
    pub async fn availability_zones(&self) -> Result<Vec<AvailabilityZone>> {
        let root = self
            .client
            .call(&query::describe_availability_zones())
            .await?;
        Ok(model::availability_zones(&root))
    }

    /// Images owned by `owners` (`amazon`, `self`, an account id) whose name matches
    /// `name_pattern` (EC2 wildcards `*` and `?`), if given.
    pub async fn images(&self, owners: &[&str], name_pattern: Option<&str>) -> Result<Vec<Image>> {
        let filters: Vec<_> = name_pattern
            .map(|p| filter("name", [p]))
            .into_iter()
            .collect();
        let root = self
            .client
            .call(&query::describe_images(owners, &filters))
            .await?;
        Ok(model::images(&root))
    }

    /// Instance types of the given names (all when empty), following `nextToken`.
    async fn instance_types(&self, names: &[String]) -> Result<Vec<Offering>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let root = self
                .client
                .call(&query::describe_instance_types(names, token.as_deref()))
                .await?;
            let (page, next) = model::instance_types(&root);
            out.extend(page);
            match next {
                Some(t) if token.as_deref() != Some(t.as_str()) => token = Some(t),
                _ => return Ok(out),
            }
        }
        Ok(out)
    }

    /// The subnet new instances join (see [`crate::subnet`]), cached; `None` when the
    /// endpoint has no `DescribeSubnets` (EC2-Classic-style Eucalyptus).
    ///
    /// # Errors
    /// `Config` naming the site when the configured subnet is not listed or there is
    /// no default subnet to use; the call's errors otherwise.
    pub async fn guest_subnet(&self) -> Result<Option<Subnet>> {
        if let Some(s) = self.guest.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(Some(s));
        }
        let configured = self.launch.subnet_id.as_deref();
        let req = match configured {
            Some(id) => subnet::describe_subnet(id),
            None => subnet::describe_default_subnets(),
        };
        let root = match self.client.call(&req).await {
            Ok(root) => root,
            Err(e) if e.kind() == ErrorKind::Unsupported => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let all = subnet::subnets(&root)
            .map_err(|m| self.err(Error::protocol(format!("DescribeSubnets: {m}"))))?;
        let config = |m: String| {
            self.err(Error::config(format!(
                "EC2 site {}: {m}",
                self.client.site()
            )))
        };
        let chosen = match configured {
            Some(id) => all.into_iter().find(|s| s.id == id).ok_or_else(|| {
                config(format!(
                    "subnet {id} is not listed by DescribeSubnets; check the site's subnet id"
                ))
            })?,
            None => subnet::choose_default(all, self.launch.availability_zone.as_deref())
                .map_err(config)?,
        };
        *self.guest.lock().unwrap_or_else(|e| e.into_inner()) = Some(chosen.clone());
        Ok(Some(chosen))
    }

    /// Every private address of the network interfaces in subnet `id`.
    async fn addresses_in(&self, id: &str) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = BTreeSet::new();
        for _ in 0..MAX_PAGES {
            let root = self
                .client
                .call(&subnet::describe_interfaces(id, token.as_deref()))
                .await?;
            let (page, next) = subnet::interface_addresses(&root);
            for a in page {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
            match next {
                Some(t) if seen.insert(t.clone()) => token = Some(t),
                Some(_) => {
                    return Err(Error::protocol(
                        "DescribeNetworkInterfaces: the site repeated a nextToken",
                    ))
                }
                None => return Ok(out),
            }
        }
        Err(Error::protocol(format!(
            "DescribeNetworkInterfaces: more than {MAX_PAGES} pages"
        )))
    }

    pub(crate) fn validate(&self, spec: &VmSpec, count: u32) -> Result<()> {
        if count > self.max_batch {
            return Err(Error::invalid(format!(
                "create_vms({count}) exceeds this site's max batch of {}",
                self.max_batch
            )));
        }
        if !spec.addresses.is_empty() && count > 1 {
            return Err(Error::invalid(format!(
                "create_vms({count}) with chosen addresses: EC2 takes a private address for one instance per RunInstances; create such VMs one per call (count 1), as the deployer does"
            )));
        }
        if spec.image.is_none() {
            return Err(Error::invalid(format!(
                "level {} needs an image (an AMI id) to launch {} on EC2",
                spec.level, spec.offering
            )));
        }
        if let Some(ud) = &spec.user_data {
            if ud.0.len() > MAX_USER_DATA {
                return Err(Error::invalid(format!(
                    "user data of {} bytes exceeds EC2's {MAX_USER_DATA} bytes",
                    ud.0.len()
                )));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl CloudProvider for Ec2Provider {
    fn site(&self) -> &SiteId {
        self.client.site()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            batch_create: true,
            max_batch: self.max_batch,
            idempotent_create: true,
            server_idempotency: true,
            server_tag_filter: true,
            native_vpn: self.flavour == Flavour::Aws,
            user_data: UserDataFormat::CloudInit,
            max_user_data: MAX_USER_DATA,
            start_vm: true,
        }
    }

    async fn offerings(&self) -> Result<Vec<Offering>> {
        self.instance_types(&[]).await.map_err(|e| self.err(e))
    }

    /// Instances: alive instances against the `max-instances` account attribute
    /// (where the API still reports it). vCPUs and memory in use are summed from the
    /// instance types of the alive instances; EC2's vCPU quotas live in the Service
    /// Quotas API, so their maximum is reported as unknown (`None`).
    async fn capacity(&self) -> Result<Capacity> {
        // Endpoints without the attribute (or the call) just report no maximum.
        let max_instances = match self
            .client
            .call(&query::describe_account_attributes(&["max-instances"]))
            .await
        {
            Ok(attrs) => model::account_attribute(&attrs, "max-instances")
                .and_then(|v| v.parse::<u64>().ok()),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Unsupported | ErrorKind::InvalidRequest | ErrorKind::NotFound
                ) =>
            {
                None
            }
            Err(e) => return Err(self.err(e)),
        };
        let alive = self
            .describe_instances(&[filter("instance-state-name", ALIVE_STATES)])
            .await
            .map_err(|e| self.err(e))?;
        let mut per_type: BTreeMap<String, u64> = BTreeMap::new();
        for inst in &alive {
            if let Some(t) = &inst.instance_type {
                *per_type.entry(t.clone()).or_default() += 1;
            }
        }
        let (mut vcpus, mut memory) = (0u64, 0u64);
        if !per_type.is_empty() {
            let names: Vec<String> = per_type.keys().cloned().collect();
            let types = self.instance_types(&names).await.map_err(|e| self.err(e))?;
            for t in types {
                let n = per_type.get(&t.name).copied().unwrap_or(0);
                vcpus += n * u64::from(t.vcpus.unwrap_or(0));
                memory += n * t.memory_mb.unwrap_or(0);
            }
        }
        Ok(Capacity {
            instances: Limit::new(alive.len() as u64, max_instances),
            vcpus: Limit::new(vcpus, None),
            memory_mb: Limit::new(memory, None),
        })
    }

    async fn create_vms(&self, spec: &VmSpec, count: u32) -> Result<Vec<VmId>> {
        self.create_inner(spec, count)
            .await
            .map_err(|e| self.err(e).with_resource(spec.key.as_str()))
    }

    async fn list_vms(&self, f: &VmFilter) -> Result<Vec<Vm>> {
        // The index may be derived (index base + amiLaunchIndex), which no server-side
        // tag filter sees: it is checked client-side by `f.matches`.
        let mut server_tags = f.tags.clone();
        server_tags.remove(TAG_INDEX);
        let mut filters = query::tag_filters(&server_tags);
        if let Some(ids) = &f.ids {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            // A filter, not InstanceId.N: an unknown id must not fail the listing.
            filters.push(filter("instance-id", ids.iter().map(|i| i.0.clone())));
        }
        if !f.include_terminated {
            filters.push(filter("instance-state-name", ALIVE_STATES));
        }
        let site = self.client.site();
        let instances = self
            .describe_instances(&filters)
            .await
            .map_err(|e| self.err(e))?;
        Ok(instances
            .iter()
            .map(|i| i.to_vm(site))
            .filter(|vm| f.matches(vm))
            .collect())
    }

    async fn delete_vm(&self, id: &VmId) -> Result<()> {
        match self
            .client
            .call(&query::terminate_instances(&[id.as_str()]))
            .await
        {
            Ok(root) => {
                model::terminate_instances(&root)
                    .map_err(|m| self.err(Error::protocol(format!("TerminateInstances: {m}"))))?;
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err(e).with_resource(id.as_str())),
        }
    }

    async fn start_vm(&self, id: &VmId) -> Result<()> {
        // StartInstances (AWS API reference): starts an EBS-backed instance that is
        // `stopped`; one already `pending`/`running` is left as it is. A terminated one
        // is refused with `IncorrectInstanceState` by AWS, while moto 5.2 answers 200
        // with `previousState` terminated (recorded in tests/fixtures): both are gone.
        match self
            .client
            .call(&query::start_instances(&[id.as_str()]))
            .await
        {
            Ok(root) => {
                let changes = model::state_changes(&root)
                    .map_err(|m| self.err(Error::protocol(format!("StartInstances: {m}"))))?;
                let gone = changes.iter().any(|(i, _, prev)| {
                    i == id.as_str() && matches!(prev.as_str(), "terminated" | "shutting-down")
                });
                if gone {
                    return Err(self.terminated(id));
                }
                Ok(())
            }
            Err(e) if e.message().contains("IncorrectInstanceState") => {
                let state = self
                    .describe_instances(&[query::filter("instance-id", [id.as_str()])])
                    .await
                    .ok()
                    .and_then(|is| is.into_iter().find(|i| i.id == id.as_str()))
                    .map(|i| i.state);
                match state.as_deref() {
                    None | Some("terminated" | "shutting-down") => Err(self.terminated(id)),
                    Some("pending" | "running") => Ok(()),
                    // `stopping`: startable once stopped; the error stays temporary.
                    _ => Err(self.err(e).with_resource(id.as_str())),
                }
            }
            Err(e) => Err(self.err(e).with_resource(id.as_str())),
        }
    }

    async fn guest_network(&self) -> Result<Option<GuestNetwork>> {
        let Some(s) = self.guest_subnet().await? else {
            return Ok(None);
        };
        let in_use = self.addresses_in(&s.id).await.map_err(|e| self.err(e))?;
        Ok(Some(GuestNetwork {
            id: s.id,
            cidr: s.cidr,
            vpc: s.vpc_id,
            in_use,
        }))
    }
}
