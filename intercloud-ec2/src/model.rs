//! EC2 answers read into plain types: instances, instance types, images, zones.
//!
//! Each `from_*` function takes the parsed root element of one answer and reads it by
//! local names; a missing required field (an instance without `instanceId`) is an
//! error message, never a panic.

use intercloud_core::{Offering, SiteId, Tags, Vm, VmId, VmState, TAG_INDEX, TAG_KEY};

use crate::xml::Element;

/// Tag key holding the first intercloud index one `RunInstances` call made, shared by
/// all its instances: instance `j` of the call (`amiLaunchIndex` `j`) is VM
/// `base + j`. One tag at launch indexes a whole batch, with no call per instance.
pub const TAG_INDEX_BASE: &str = "intercloud-index-base";

/// One instance as EC2 lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `i-…`.
    pub id: String,
    /// `instanceState/name` (`pending`, `running`, …).
    pub state: String,
    /// `instanceType`.
    pub instance_type: Option<String>,
    /// `amiLaunchIndex`: position within its RunInstances call.
    pub launch_index: Option<u32>,
    /// `privateIpAddress`.
    pub private_ip: Option<String>,
    /// `ipAddress`.
    pub public_ip: Option<String>,
    /// `tagSet`.
    pub tags: Tags,
}

/// EC2 instance state name → core state.
pub fn vm_state(state: &str) -> VmState {
    match state {
        "pending" => VmState::Pending,
        "running" => VmState::Running,
        "stopping" | "stopped" => VmState::Stopped,
        // `shutting-down` is a delete in progress: it never comes back.
        "shutting-down" | "terminated" => VmState::Terminated,
        other => VmState::Unknown(other.to_owned()),
    }
}

impl Instance {
    /// Reads one `instancesSet/item`.
    ///
    /// # Errors
    /// A message when `instanceId` is missing.
    pub fn from_item(item: &Element) -> Result<Self, String> {
        let id = item
            .text_at("instanceId")
            .ok_or("an instance without instanceId")?
            .trim()
            .to_owned();
        let state = item
            .text_at("instanceState/name")
            .or_else(|| item.text_at("currentState/name"))
            .unwrap_or("unknown")
            .trim()
            .to_owned();
        Ok(Self {
            id,
            state,
            instance_type: item.text_at("instanceType").map(str::to_owned),
            launch_index: item
                .text_at("amiLaunchIndex")
                .and_then(|s| s.trim().parse().ok()),
            private_ip: item.text_at("privateIpAddress").map(str::to_owned),
            public_ip: item.text_at("ipAddress").map(str::to_owned),
            tags: tags_of(item),
        })
    }

    /// The intercloud index of this instance: its explicit [`TAG_INDEX`] tag when it
    /// has one (instances tagged one by one), else [`TAG_INDEX_BASE`] plus
    /// `amiLaunchIndex`. `None` when neither is there or parses (an instance an
    /// interrupted create launched but did not index, or not intercloud's).
    pub fn index(&self) -> Option<u32> {
        if let Some(explicit) = self.tags.get(TAG_INDEX) {
            return explicit.trim().parse().ok();
        }
        let base: u32 = self.tags.get(TAG_INDEX_BASE)?.trim().parse().ok()?;
        base.checked_add(self.launch_index?)
    }

    /// The tags as the core sees them: the cloud's tags plus [`TAG_INDEX`] derived by
    /// [`Instance::index`] when the instance has no explicit one.
    pub fn core_tags(&self) -> Tags {
        let mut tags = self.tags.clone();
        if !tags.contains_key(TAG_INDEX) {
            if let Some(i) = self.index() {
                tags.insert(TAG_INDEX.into(), i.to_string());
            }
        }
        tags
    }

    /// The core view of this instance, with [`Instance::core_tags`]. Its name is the
    /// `Name` tag, else `{key}-{index}` from the intercloud tags (index derived as in
    /// [`Instance::index`]), else the instance id.
    pub fn to_vm(&self, site: &SiteId) -> Vm {
        let tags = self.core_tags();
        let name = self
            .tags
            .get("Name")
            .cloned()
            .or_else(|| {
                let key = tags.get(TAG_KEY)?;
                let index = tags.get(TAG_INDEX)?;
                Some(format!("{key}-{index}"))
            })
            .unwrap_or_else(|| self.id.clone());
        Vm {
            id: VmId::new(&self.id),
            site: site.clone(),
            name,
            state: vm_state(&self.state),
            tags,
            offering: self.instance_type.clone(),
            private_ip: self.private_ip.clone(),
            public_ip: self.public_ip.clone(),
        }
    }
}

/// The `tagSet` of a resource.
pub fn tags_of(el: &Element) -> Tags {
    el.items("tagSet")
        .into_iter()
        .filter_map(|t| {
            let k = t.text_at("key")?;
            Some((k.to_owned(), t.text_at("value").unwrap_or("").to_owned()))
        })
        .collect()
}

/// The instances of a RunInstances answer (`instancesSet/item`).
pub fn run_instances(root: &Element) -> Result<Vec<Instance>, String> {
    root.items("instancesSet")
        .into_iter()
        .map(Instance::from_item)
        .collect()
}

/// The instances and `nextToken` of one DescribeInstances page.
pub fn describe_instances(root: &Element) -> Result<(Vec<Instance>, Option<String>), String> {
    let mut out = Vec::new();
    for reservation in root.items("reservationSet") {
        for item in reservation.items("instancesSet") {
            out.push(Instance::from_item(item)?);
        }
    }
    Ok((out, next_token(root)))
}

/// The `nextToken`, if any.
pub fn next_token(root: &Element) -> Option<String> {
    root.text_at("nextToken").map(|t| t.trim().to_owned())
}

/// `(instanceId, currentState)` of a TerminateInstances answer (the legacy
/// `shutdownState` is read too).
pub fn terminate_instances(root: &Element) -> Result<Vec<(String, String)>, String> {
    root.items("instancesSet")
        .into_iter()
        .map(|item| {
            let id = item
                .text_at("instanceId")
                .ok_or("an instance without instanceId")?;
            let state = item
                .text_at("currentState/name")
                .or_else(|| item.text_at("shutdownState/name"))
                .unwrap_or("unknown");
            Ok((id.to_owned(), state.to_owned()))
        })
        .collect()
}

/// `(instanceId, currentState, previousState)` of a StartInstances or StopInstances
/// answer (`instancesSet/item/{instanceId, currentState/name, previousState/name}`,
/// AWS API reference `InstanceStateChange`).
pub fn state_changes(root: &Element) -> Result<Vec<(String, String, String)>, String> {
    root.items("instancesSet")
        .into_iter()
        .map(|item| {
            let id = item
                .text_at("instanceId")
                .ok_or("an instance without instanceId")?;
            let name = |path| item.text_at(path).unwrap_or("unknown").to_owned();
            Ok((
                id.to_owned(),
                name("currentState/name"),
                name("previousState/name"),
            ))
        })
        .collect()
}

/// The offerings of a DescribeInstanceTypes page, and its `nextToken`.
///
/// Reads AWS's `instanceTypeSet/item/{instanceType, vCpuInfo/defaultVCpus,
/// memoryInfo/sizeInMiB}` and Eucalyptus' `instanceTypeDetails/item/{name, cpu,
/// memory}`.
pub fn instance_types(root: &Element) -> (Vec<Offering>, Option<String>) {
    let mut items = root.items("instanceTypeSet");
    items.extend(root.items("instanceTypeDetails"));
    let offerings = items
        .into_iter()
        .filter_map(|item| {
            let name = item
                .text_at("instanceType")
                .or_else(|| item.text_at("name"))?;
            let vcpus = item
                .text_at("vCpuInfo/defaultVCpus")
                .or_else(|| item.text_at("cpu"))
                .and_then(|s| s.trim().parse().ok());
            let memory_mb = item
                .text_at("memoryInfo/sizeInMiB")
                .or_else(|| item.text_at("memory"))
                .and_then(|s| s.trim().parse().ok());
            Some(Offering {
                id: name.to_owned(),
                name: name.to_owned(),
                vcpus,
                memory_mb,
            })
        })
        .collect();
    (offerings, next_token(root))
}

/// One image of DescribeImages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `ami-…`.
    pub id: String,
    /// Its name.
    pub name: Option<String>,
    /// `available`, `pending`, …
    pub state: Option<String>,
    /// Owner account id.
    pub owner: Option<String>,
    /// `x86_64`, `arm64`.
    pub architecture: Option<String>,
    /// ISO 8601 creation date, when given.
    pub creation_date: Option<String>,
}

/// The images of a DescribeImages answer.
pub fn images(root: &Element) -> Vec<Image> {
    root.items("imagesSet")
        .into_iter()
        .filter_map(|item| {
            Some(Image {
                id: item.text_at("imageId")?.to_owned(),
                name: item.text_at("name").map(str::to_owned),
                state: item.text_at("imageState").map(str::to_owned),
                owner: item.text_at("imageOwnerId").map(str::to_owned),
                architecture: item.text_at("architecture").map(str::to_owned),
                creation_date: item.text_at("creationDate").map(str::to_owned),
            })
        })
        .collect()
}

/// One availability zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityZone {
    /// `us-east-1a`.
    pub name: String,
    /// `available`, …
    pub state: String,
    /// The region.
    pub region: Option<String>,
}

/// The zones of a DescribeAvailabilityZones answer.
pub fn availability_zones(root: &Element) -> Vec<AvailabilityZone> {
    root.items("availabilityZoneInfo")
        .into_iter()
        .filter_map(|item| {
            Some(AvailabilityZone {
                name: item.text_at("zoneName")?.to_owned(),
                state: item.text_at("zoneState").unwrap_or("unknown").to_owned(),
                region: item.text_at("regionName").map(str::to_owned),
            })
        })
        .collect()
}

/// The first value of account attribute `name` (`max-instances`).
pub fn account_attribute(root: &Element, name: &str) -> Option<String> {
    root.items("accountAttributeSet")
        .into_iter()
        .find(|i| i.text_at("attributeName") == Some(name))
        .and_then(|i| {
            i.items("attributeValueSet")
                .first()
                .and_then(|v| v.text_at("attributeValue"))
        })
        .map(|v| v.trim().to_owned())
}

/// `(regionName, regionEndpoint)` of a DescribeRegions answer.
pub fn regions(root: &Element) -> Vec<(String, Option<String>)> {
    root.items("regionInfo")
        .into_iter()
        .filter_map(|item| {
            Some((
                item.text_at("regionName")?.to_owned(),
                item.text_at("regionEndpoint").map(str::to_owned),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(tags: &[(&str, &str)], launch_index: Option<u32>) -> Instance {
        Instance {
            id: "i-1".into(),
            state: "running".into(),
            instance_type: None,
            launch_index,
            private_ip: None,
            public_ip: None,
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn index_is_base_plus_launch_index_unless_tagged() {
        let site = SiteId::new("s");
        let derived = inst(&[(TAG_KEY, "k"), (TAG_INDEX_BASE, "2")], Some(3));
        assert_eq!(derived.index(), Some(5));
        let vm = derived.to_vm(&site);
        assert_eq!(vm.index(), Some(5));
        assert_eq!(vm.name, "k-5");
        assert_eq!(vm.tags[TAG_INDEX_BASE], "2", "the cloud's tags are kept");

        // An explicit index (and Name) wins over the derived one.
        let explicit = inst(
            &[
                (TAG_KEY, "k"),
                (TAG_INDEX_BASE, "2"),
                (TAG_INDEX, "7"),
                ("Name", "custom"),
            ],
            Some(3),
        );
        assert_eq!(explicit.index(), Some(7));
        let vm = explicit.to_vm(&site);
        assert_eq!((vm.index(), vm.name.as_str()), (Some(7), "custom"));

        // Nothing to derive from: no index, named by id.
        for none in [
            inst(&[(TAG_KEY, "k"), (TAG_INDEX_BASE, "2")], None),
            inst(&[(TAG_KEY, "k")], Some(1)),
            inst(&[(TAG_KEY, "k"), (TAG_INDEX_BASE, "x")], Some(1)),
            inst(&[(TAG_KEY, "k"), (TAG_INDEX_BASE, "4294967295")], Some(1)),
        ] {
            assert_eq!(none.index(), None, "{none:?}");
            let vm = none.to_vm(&site);
            assert_eq!((vm.index(), vm.name.as_str()), (None, "i-1"));
            assert!(!vm.tags.contains_key(TAG_INDEX));
        }
    }
}
