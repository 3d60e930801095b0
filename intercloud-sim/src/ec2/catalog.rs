//! Read-only EC2 calls: instance types, images, zones, regions, account attributes, VPCs.

use super::xml::el;
use super::{region, Ec2Error, Ec2Result, Params, OWNER_ID};
use crate::engine::Engine;

pub(super) fn instance_types(e: &Engine, p: &Params) -> Ec2Result {
    let want = p.list("InstanceType");
    for w in &want {
        if !e.cfg.offerings.iter().any(|o| o.name == *w) {
            return Err(Ec2Error::client(
                "InvalidInstanceType",
                format!("The following supplied instance types do not exist: [{w}]"),
            ));
        }
    }
    let items: String = e
        .cfg
        .offerings
        .iter()
        .filter(|o| want.is_empty() || want.contains(&o.name))
        .map(|o| {
            format!(
                "<item>{}<currentGeneration>true</currentGeneration><vCpuInfo><defaultVCpus>{}</defaultVCpus></vCpuInfo><memoryInfo><sizeInMiB>{}</sizeInMiB></memoryInfo><supportedRootDeviceTypes><item>ebs</item></supportedRootDeviceTypes></item>",
                el("instanceType", &o.name),
                o.cpus,
                o.memory_mb
            )
        })
        .collect();
    Ok(format!("<instanceTypeSet>{items}</instanceTypeSet>"))
}

pub(super) fn images(e: &Engine, p: &Params) -> Ec2Result {
    let want = p.list("ImageId");
    for w in &want {
        if !e.cfg.images.contains(w) {
            return Err(Ec2Error::client(
                "InvalidAMIID.NotFound",
                format!("The image id '[{w}]' does not exist"),
            ));
        }
    }
    let name_filter: Vec<String> = p
        .filters()
        .into_iter()
        .filter(|(n, _)| n == "name")
        .flat_map(|(_, v)| v)
        .collect();
    let items: String = e
        .cfg
        .images
        .iter()
        .filter(|i| want.is_empty() || want.contains(i))
        .filter(|i| name_filter.is_empty() || name_filter.iter().any(|n| glob(n, i)))
        .map(|i| {
            format!(
                "<item>{}{}<imageState>available</imageState>{}<isPublic>true</isPublic><architecture>x86_64</architecture><imageType>machine</imageType>{}<rootDeviceType>ebs</rootDeviceType><virtualizationType>hvm</virtualizationType><hypervisor>xen</hypervisor></item>",
                el("imageId", i),
                el("imageLocation", &format!("amazon/{i}")),
                el("imageOwnerId", OWNER_ID),
                el("name", i)
            )
        })
        .collect();
    Ok(format!("<imagesSet>{items}</imagesSet>"))
}

/// `*` wildcard matching, as EC2 name filters do.
fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, tail)) => {
            s.starts_with(head)
                && (0..=s.len() - head.len())
                    .any(|i| s.is_char_boundary(head.len() + i) && glob(tail, &s[head.len() + i..]))
        }
    }
}

pub(super) fn zones(e: &Engine, _p: &Params) -> Ec2Result {
    let r = region(e);
    let items: String = super::subnets::zones(e)
        .iter()
        .enumerate()
        .map(|(k, z)| {
            format!(
                "<item>{}<zoneState>available</zoneState><regionName>{r}</regionName><zoneId>{r}-az{}</zoneId><messageSet/></item>",
                el("zoneName", z),
                k + 1
            )
        })
        .collect();
    Ok(format!(
        "<availabilityZoneInfo>{items}</availabilityZoneInfo>"
    ))
}

pub(super) fn regions(e: &Engine, _p: &Params) -> Ec2Result {
    let r = region(e);
    Ok(format!(
        "<regionInfo><item><regionName>{r}</regionName><regionEndpoint>ec2.{r}.amazonaws.com</regionEndpoint><optInStatus>opt-in-not-required</optInStatus></item></regionInfo>"
    ))
}

pub(super) fn account_attributes(e: &Engine, _p: &Params) -> Ec2Result {
    let max: u64 = e.cfg.offerings.iter().map(|o| u64::from(o.capacity)).sum();
    let attr = |n: &str, v: &str| {
        format!(
            "<item>{}<attributeValueSet><item>{}</item></attributeValueSet></item>",
            el("attributeName", n),
            el("attributeValue", v)
        )
    };
    Ok(format!(
        "<accountAttributeSet>{}{}{}</accountAttributeSet>",
        attr("max-instances", &max.to_string()),
        attr("supported-platforms", "VPC"),
        attr("default-vpc", &default_vpc(e))
    ))
}

/// The id of the site's default VPC.
pub(super) fn default_vpc(e: &Engine) -> String {
    let h = e
        .cfg
        .id
        .as_str()
        .bytes()
        .fold(0u64, |a, b| a.wrapping_mul(131).wrapping_add(u64::from(b)));
    format!("vpc-{h:017x}")
}

pub(super) fn vpcs(e: &Engine, _p: &Params) -> Ec2Result {
    Ok(format!(
        "<vpcSet><item>{}<state>available</state><cidrBlock>172.31.0.0/16</cidrBlock><isDefault>true</isDefault>{}</item></vpcSet>",
        el("vpcId", &default_vpc(e)),
        el("ownerId", OWNER_ID)
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn globbing() {
        assert!(super::glob("al2023-ami-*", "al2023-ami-2023.1"));
        assert!(super::glob("*", "x"));
        assert!(!super::glob("a*c", "abd"));
    }
}
