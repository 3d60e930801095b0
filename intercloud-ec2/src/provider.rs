//! [`Ec2Provider`]: the [`CloudProvider`] of an AWS region or a Eucalyptus cloud.
//!
//! # How `create_vms(spec, n)` keeps the contract
//! 1. `DescribeInstances` filtered on `tag:intercloud-key = key` (alive states) finds
//!    what earlier attempts made. moto ignores `ClientToken`, and even AWS's token
//!    does not cover a *larger* retry, so this lookup is what makes creates idempotent.
//! 2. Instances carrying the key but no index tag (an attempt that died between
//!    `RunInstances` and `CreateTags`) are adopted for the lowest missing indices.
//! 3. The indices still missing are made by **one** `RunInstances` with
//!    `MinCount = MaxCount = missing`, `ClientToken` (the key for a first attempt, see
//!    [`crate::query::client_token`]) and a `TagSpecification` carrying the common
//!    tags (cluster, role, key, extra tags), so every instance is findable from birth.
//! 4. EC2 cannot give instances of one call different tags, so each new instance then
//!    gets its own `intercloud-index` and `Name` by one `CreateTags` per instance
//!    (bounded concurrency), mapping `amiLaunchIndex` `j` to the `j`-th missing index.
//!    A create of a single VM puts index and name in the `TagSpecification` and makes
//!    one call only. Where tag-on-create is off (Eucalyptus by default), each instance
//!    gets all its tags by that `CreateTags`, and `ClientToken` alone guards retries
//!    until then.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use intercloud_core::{
    Capabilities, Capacity, CloudProvider, Error, ErrorKind, Limit, Offering, Result, SiteId, Tags,
    UserDataFormat, Vm, VmFilter, VmId, VmSpec, TAG_INDEX, TAG_KEY,
};

use crate::client::Client;
use crate::model::{self, AvailabilityZone, Image, Instance};
use crate::query::{self, filter, LaunchOptions, RunInstances, ALIVE_STATES};
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

    fn validate(&self, spec: &VmSpec, count: u32) -> Result<()> {
        if count > self.max_batch {
            return Err(Error::invalid(format!(
                "create_vms({count}) exceeds this site's max batch of {}",
                self.max_batch
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

    /// Tags instance `id` as VM `index` of `spec`: its index and `Name`, plus the
    /// common tags when they were not given at launch. EC2 is eventually consistent:
    /// a just-launched instance may be unknown to `CreateTags` for a moment, so
    /// `NotFound` is retried a few times, then reported as temporary (a retried
    /// create adopts the instance through its key tag, or its token).
    async fn tag_index(&self, spec: &VmSpec, id: &str, index: u32) -> Result<()> {
        let mut tags = if self.tag_on_create {
            Tags::new()
        } else {
            spec.tags_for(index)
        };
        tags.insert(TAG_INDEX.into(), index.to_string());
        tags.insert("Name".into(), spec.key.vm_name(index));
        let req = query::create_tags(&[id], &tags);
        let mut delay = Duration::from_millis(250);
        for _ in 0..4 {
            match self.client.call(&req).await {
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                other => return other.map(|_| ()),
            }
        }
        Err(Error::unavailable(format!(
            "CreateTags: instance {id} is not visible yet (EC2 eventual consistency); retry the create"
        ))
        .with_temporary(true))
    }

    async fn create_inner(&self, spec: &VmSpec, count: u32) -> Result<Vec<VmId>> {
        self.validate(spec, count)?;
        if count == 0 {
            return Ok(Vec::new());
        }
        let existing = self
            .describe_instances(&[
                filter(format!("tag:{TAG_KEY}"), [spec.key.as_str()]),
                filter("instance-state-name", ALIVE_STATES),
            ])
            .await?;
        let mut by_index: BTreeMap<u32, String> = BTreeMap::new();
        let mut untagged: Vec<Instance> = Vec::new();
        for inst in existing {
            if inst.tags.get(TAG_KEY).map(String::as_str) != Some(spec.key.as_str()) {
                continue;
            }
            match inst.tags.get(TAG_INDEX).and_then(|i| i.parse::<u32>().ok()) {
                Some(i) => {
                    by_index.entry(i).or_insert(inst.id);
                }
                None => untagged.push(inst),
            }
        }
        let mut missing: Vec<u32> = (0..count).filter(|i| !by_index.contains_key(i)).collect();

        // Adopt instances an interrupted attempt launched but did not index.
        untagged.sort_by(|a, b| (a.launch_index, &a.id).cmp(&(b.launch_index, &b.id)));
        let adopt: Vec<(u32, String)> = missing
            .iter()
            .copied()
            .zip(untagged.into_iter().map(|i| i.id))
            .collect();
        self.tag_all(spec, &adopt).await?;
        for (i, id) in adopt {
            missing.retain(|m| *m != i);
            by_index.insert(i, id);
        }

        if !missing.is_empty() {
            let launched = self.launch(spec, &missing).await?;
            by_index.extend(launched);
        }
        (0..count)
            .map(|i| {
                by_index
                    .get(&i)
                    .map(|id| VmId::new(id.clone()))
                    .ok_or_else(|| {
                        Error::protocol(format!("no instance for index {i} after RunInstances"))
                    })
            })
            .collect()
    }

    /// One RunInstances for the `missing` indices; returns `(index, id)` pairs.
    async fn launch(&self, spec: &VmSpec, missing: &[u32]) -> Result<Vec<(u32, String)>> {
        let n = u32::try_from(missing.len()).unwrap_or(u32::MAX);
        let single = missing.len() == 1 && self.tag_on_create;
        let Some(&first) = missing.first() else {
            return Ok(Vec::new());
        };
        let mut tags = spec.tags_for(first);
        if single {
            tags.insert("Name".into(), spec.key.vm_name(first));
        } else {
            tags.remove(TAG_INDEX);
        }
        if !self.tag_on_create {
            tags.clear();
        }
        let token = query::client_token(spec.key.as_str(), missing);
        let image = spec
            .image
            .as_ref()
            .map(|i| i.0.as_str())
            .unwrap_or_default();
        let req = query::run_instances(&RunInstances {
            image_id: image,
            instance_type: &spec.offering,
            count: n,
            client_token: &token,
            tags: &tags,
            user_data: spec.user_data.as_ref().map(|u| u.0.as_str()),
            placement: &self.launch,
        });
        let root = self.client.call(&req).await?;
        let instances = model::run_instances(&root)
            .map_err(|m| Error::protocol(format!("RunInstances: {m}")))?;
        if instances.len() != missing.len() {
            return Err(Error::protocol(format!(
                "RunInstances asked for {} instances, the answer lists {}",
                missing.len(),
                instances.len()
            )));
        }
        let pairs = assign_indices(missing, &instances);
        if !single {
            self.tag_all(spec, &pairs).await?;
        }
        Ok(pairs)
    }

    async fn tag_all(&self, spec: &VmSpec, pairs: &[(u32, String)]) -> Result<()> {
        // Chunks of `tag_concurrency` calls in flight (a plain loop keeps the future
        // `Send` inside `async_trait`).
        for chunk in pairs.chunks(self.tag_concurrency.max(1)) {
            let mut calls = Vec::with_capacity(chunk.len());
            for (i, id) in chunk {
                calls.push(self.tag_index(spec, id, *i));
            }
            futures::future::try_join_all(calls).await?;
        }
        Ok(())
    }
}

/// Maps launched instances to the missing indices: by `amiLaunchIndex` when every
/// instance has a distinct one in range, else in answer order.
pub(crate) fn assign_indices(missing: &[u32], instances: &[Instance]) -> Vec<(u32, String)> {
    let launch: BTreeSet<u32> = instances.iter().filter_map(|i| i.launch_index).collect();
    let usable = launch.len() == instances.len()
        && instances
            .iter()
            .all(|i| i.launch_index.is_some_and(|l| (l as usize) < missing.len()));
    instances
        .iter()
        .enumerate()
        .map(|(pos, inst)| {
            let j = if usable {
                inst.launch_index.map_or(pos, |l| l as usize)
            } else {
                pos
            };
            (missing[j], inst.id.clone())
        })
        .collect()
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
        let mut filters = query::tag_filters(&f.tags);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(id: &str, li: Option<u32>) -> Instance {
        Instance {
            id: id.into(),
            state: "pending".into(),
            instance_type: None,
            launch_index: li,
            private_ip: None,
            public_ip: None,
            tags: Tags::new(),
        }
    }

    #[test]
    fn launch_index_maps_to_missing_indices() {
        let got = assign_indices(&[2, 5], &[inst("b", Some(1)), inst("a", Some(0))]);
        assert_eq!(got, vec![(5, "b".into()), (2, "a".into())]);
        // Without usable launch indices, answer order.
        let got = assign_indices(&[2, 5], &[inst("b", None), inst("a", Some(0))]);
        assert_eq!(got, vec![(2, "b".into()), (5, "a".into())]);
        let got = assign_indices(&[2, 5], &[inst("b", Some(0)), inst("a", Some(0))]);
        assert_eq!(got, vec![(2, "b".into()), (5, "a".into())]);
    }
}
