//! `create_vms` of [`Ec2Provider`]: the key lookup, adoption, the one `RunInstances`
//! per batch and how its instances get their indices (see [`crate::provider`] for the
//! contract in prose). Planning is pure ([`Indexing`], [`launch_tags`],
//! [`assign_indices`]); the calls are at the edges.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use intercloud_core::{Error, ErrorKind, Result, Tags, VmId, VmSpec, TAG_INDEX, TAG_KEY};

use crate::model::{self, Instance, TAG_INDEX_BASE};
use crate::provider::Ec2Provider;
use crate::query::{self, filter, LaunchOptions, RunInstances, ALIVE_STATES};
use crate::subnet;

/// Most resource ids one `CreateTags` names (AWS accepts up to 1000).
const MAX_TAG_RESOURCES: usize = 1000;

/// How the instances of one `RunInstances` learn their intercloud index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Indexing {
    /// One instance: its own index and `Name` go with the common tags.
    Single,
    /// Contiguous indices `base..base + n`: the shared tag [`TAG_INDEX_BASE`] = `base`,
    /// and each instance's index is `base + amiLaunchIndex`.
    Base(u32),
    /// Indices with gaps (a top-up around survivors): one `CreateTags` per instance.
    PerInstance,
}

impl Indexing {
    /// The scheme for launching `missing` (ascending, distinct).
    pub(crate) fn of(missing: &[u32]) -> Self {
        match missing {
            [_] => Self::Single,
            [first, ..] if missing.iter().zip(*first..).all(|(m, want)| *m == want) => {
                Self::Base(*first)
            }
            _ => Self::PerInstance,
        }
    }
}

/// The tags every instance of the call shares: the common tags of `spec` (cluster,
/// role, key, extra tags) plus, by `indexing`, the single VM's index and `Name`, or
/// the index base.
pub(crate) fn launch_tags(spec: &VmSpec, missing: &[u32], indexing: Indexing) -> Tags {
    let first = missing.first().copied().unwrap_or(0);
    let mut tags = spec.tags_for(first);
    match indexing {
        Indexing::Single => {
            tags.insert("Name".into(), spec.key.vm_name(first));
        }
        Indexing::Base(base) => {
            tags.remove(TAG_INDEX);
            tags.insert(TAG_INDEX_BASE.into(), base.to_string());
        }
        Indexing::PerInstance => {
            tags.remove(TAG_INDEX);
        }
    }
    tags
}

/// Whether the `amiLaunchIndex` of the launched instances is a permutation of
/// `0..n` (every instance has one, distinct, in range), so that the index base
/// derives every index.
pub(crate) fn launch_indices_usable(instances: &[Instance]) -> bool {
    let distinct: BTreeSet<u32> = instances.iter().filter_map(|i| i.launch_index).collect();
    distinct.len() == instances.len()
        && instances.iter().all(|i| {
            i.launch_index
                .is_some_and(|l| (l as usize) < instances.len())
        })
}

/// Maps launched instances to the missing indices: by `amiLaunchIndex` when usable
/// ([`launch_indices_usable`]), else in answer order. `instances` is as long as
/// `missing` (checked by the caller).
pub(crate) fn assign_indices(missing: &[u32], instances: &[Instance]) -> Vec<(u32, String)> {
    let usable = launch_indices_usable(instances) && instances.len() == missing.len();
    instances
        .iter()
        .zip(missing)
        .map(|(inst, by_order)| {
            let by_launch = inst
                .launch_index
                .and_then(|l| missing.get(l as usize))
                .filter(|_| usable);
            (*by_launch.unwrap_or(by_order), inst.id.clone())
        })
        .collect()
}

impl Ec2Provider {
    pub(crate) async fn create_inner(&self, spec: &VmSpec, count: u32) -> Result<Vec<VmId>> {
        self.validate(spec, count)?;
        if count == 0 {
            return Ok(Vec::new());
        }
        // A `fresh` key was never sent: nothing to look up.
        let existing = if spec.fresh {
            Vec::new()
        } else {
            self.describe_instances(&[
                filter(format!("tag:{TAG_KEY}"), [spec.key.as_str()]),
                filter("instance-state-name", ALIVE_STATES),
            ])
            .await?
        };
        let mut by_index: BTreeMap<u32, String> = BTreeMap::new();
        let mut untagged: Vec<Instance> = Vec::new();
        for inst in existing {
            if inst.tags.get(TAG_KEY).map(String::as_str) != Some(spec.key.as_str()) {
                continue;
            }
            match inst.index() {
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
        self.tag_each(spec, &adopt).await?;
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
    /// Follow-up calls only where tags cannot go at launch (one `CreateTags` for the
    /// whole call), for gaps, or for an answer without usable `amiLaunchIndex`.
    async fn launch(&self, spec: &VmSpec, missing: &[u32]) -> Result<Vec<(u32, String)>> {
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let n = u32::try_from(missing.len()).unwrap_or(u32::MAX);
        let indexing = Indexing::of(missing);
        let shared = launch_tags(spec, missing, indexing);
        let at_launch = if self.tag_on_create {
            shared.clone()
        } else {
            Tags::new()
        };
        let token = query::client_token(spec.key.as_str(), missing);
        let image = spec
            .image
            .as_ref()
            .map(|i| i.0.as_str())
            .unwrap_or_default();
        let (placement, private_ip) = self.placement_for(spec, missing).await?;
        let req = query::run_instances(&RunInstances {
            image_id: image,
            instance_type: &spec.offering,
            count: n,
            client_token: &token,
            tags: &at_launch,
            user_data: spec.user_data.as_ref().map(|u| u.0.as_str()),
            placement: &placement,
            private_ip: private_ip.as_deref(),
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
        let shared_tags_index_all = match indexing {
            Indexing::Single => true,
            Indexing::Base(_) => launch_indices_usable(&instances),
            Indexing::PerInstance => false,
        };
        if shared_tags_index_all {
            if !self.tag_on_create {
                let ids: Vec<&str> = pairs.iter().map(|(_, id)| id.as_str()).collect();
                for chunk in ids.chunks(MAX_TAG_RESOURCES) {
                    self.create_tags(chunk, &shared).await?;
                }
            }
        } else {
            self.tag_each(spec, &pairs).await?;
        }
        Ok(pairs)
    }

    /// Where the instances of `missing` launch: the site's settings, or, when `spec`
    /// gives addresses, the guest subnet and the one instance's `PrivateIpAddress`.
    async fn placement_for(
        &self,
        spec: &VmSpec,
        missing: &[u32],
    ) -> Result<(LaunchOptions, Option<String>)> {
        if spec.addresses.is_empty() {
            return Ok((self.launch.clone(), None));
        }
        let &[index] = missing else {
            return Err(Error::invalid(format!(
                "EC2 takes a chosen private address for one instance per RunInstances, but {} VMs were asked with addresses; create them one per call (count 1)",
                missing.len()
            )));
        };
        let Some(subnet) = self.guest_subnet().await? else {
            return Err(Error::invalid(
                "this site lists no subnets (DescribeSubnets unsupported): it cannot place VMs at chosen addresses",
            ));
        };
        let address = spec.addresses.get(index as usize).ok_or_else(|| {
            Error::invalid(format!(
                "VM {index} of {} has no address (VmSpec::addresses has {})",
                spec.key,
                spec.addresses.len()
            ))
        })?;
        subnet::check_address(address, &subnet.cidr).map_err(|why| {
            Error::invalid(format!(
                "VM {index} of {}: {why}; choose addresses from guest_network() (subnet {})",
                spec.key, subnet.id
            ))
        })?;
        let mut placement = self.launch.clone();
        // The address belongs to the guest subnet, whether configured or the default.
        placement.subnet_id = Some(subnet.id);
        Ok((placement, Some(address.clone())))
    }

    /// Tags each `(index, id)` with its own index and `Name` (plus the common tags
    /// when they were not given at launch): one `CreateTags` per instance, at most
    /// `tag_concurrency` in flight. Only for adoption, gaps and answers without usable
    /// `amiLaunchIndex`.
    async fn tag_each(&self, spec: &VmSpec, pairs: &[(u32, String)]) -> Result<()> {
        // A plain loop over chunks keeps the future `Send` inside `async_trait`.
        for chunk in pairs.chunks(self.tag_concurrency.max(1)) {
            let mut calls = Vec::with_capacity(chunk.len());
            for (index, id) in chunk {
                let mut tags = if self.tag_on_create {
                    Tags::new()
                } else {
                    spec.tags_for(*index)
                };
                tags.insert(TAG_INDEX.into(), index.to_string());
                tags.insert("Name".into(), spec.key.vm_name(*index));
                calls.push(async move { self.create_tags(&[id.as_str()], &tags).await });
            }
            futures::future::try_join_all(calls).await?;
        }
        Ok(())
    }

    /// `CreateTags` of `tags` on `ids`. EC2 is eventually consistent: a just-launched
    /// instance may be unknown to `CreateTags` for a moment, so `NotFound` is retried
    /// a few times, then reported as temporary (a retried create finds the instances
    /// through their key tag, or their token).
    async fn create_tags(&self, ids: &[&str], tags: &Tags) -> Result<()> {
        let req = query::create_tags(ids, tags);
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
        let which = match ids {
            [one] => format!("instance {one} is"),
            [first, ..] => format!("{} instances (first {first}) are", ids.len()),
            [] => "no instance is".to_owned(),
        };
        Err(Error::unavailable(format!(
            "CreateTags: {which} not visible yet (EC2 eventual consistency); retry the create"
        ))
        .with_temporary(true))
    }
}

#[cfg(test)]
mod tests {
    use intercloud_core::IdempotencyKey;

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
        let got = assign_indices(&[2, 5], &[inst("b", Some(2)), inst("a", Some(0))]);
        assert_eq!(got, vec![(2, "b".into()), (5, "a".into())]);
        assert!(!launch_indices_usable(&[
            inst("b", Some(2)),
            inst("a", Some(0))
        ]));
        assert!(launch_indices_usable(&[
            inst("b", Some(1)),
            inst("a", Some(0))
        ]));
    }

    #[test]
    fn contiguous_indices_share_a_base() {
        assert_eq!(Indexing::of(&[0, 1, 2, 3, 4]), Indexing::Base(0));
        assert_eq!(Indexing::of(&[2, 3]), Indexing::Base(2));
        assert_eq!(Indexing::of(&[3]), Indexing::Single);
        assert_eq!(Indexing::of(&[0, 2]), Indexing::PerInstance);
        assert_eq!(Indexing::of(&[1, 2, 4]), Indexing::PerInstance);
    }

    #[test]
    fn launch_tags_by_scheme() {
        let spec = VmSpec::new("c", "w", IdempotencyKey::new("k").unwrap(), "S", "t");
        let base = launch_tags(&spec, &[2, 3], Indexing::Base(2));
        assert_eq!(base.get(TAG_INDEX_BASE).map(String::as_str), Some("2"));
        assert!(!base.contains_key(TAG_INDEX) && !base.contains_key("Name"));
        assert_eq!(base.get(TAG_KEY).map(String::as_str), Some("k"));
        let single = launch_tags(&spec, &[3], Indexing::Single);
        assert_eq!(single.get(TAG_INDEX).map(String::as_str), Some("3"));
        assert_eq!(single.get("Name").map(String::as_str), Some("k-3"));
        assert!(!single.contains_key(TAG_INDEX_BASE));
        let gaps = launch_tags(&spec, &[0, 2], Indexing::PerInstance);
        assert!(!gaps.contains_key(TAG_INDEX) && !gaps.contains_key(TAG_INDEX_BASE));
        assert_eq!(gaps.len(), 3, "cluster, role, key: {gaps:?}");
    }
}
