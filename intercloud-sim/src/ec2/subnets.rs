//! The default VPC's subnets (`DescribeSubnets`), instances' network interfaces
//! (`DescribeNetworkInterfaces`) and the private addresses `RunInstances` gives.
//!
//! As in AWS, the default VPC is `172.31.0.0/16` with one default subnet per
//! availability zone, `/20`s in zone order (`172.31.0.0/20`, `172.31.16.0/20`, …). An
//! instance launched without `SubnetId` goes to the first zone's default subnet; its
//! address is the next free host from `.4` up (AWS reserves the first four and the
//! last address of a subnet), or the `PrivateIpAddress` asked for.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use tokio::time::Instant;

use super::catalog::default_vpc;
use super::xml::el;
use super::{region, Ec2Error, Ec2Result, Params, OWNER_ID};
use crate::engine::ipam;
use crate::engine::{Engine, Phase, State, VmRec};

/// The hosts AWS keeps after a subnet's network address (router, DNS, future use):
/// instances get addresses from `.4` up.
const RESERVED_HOSTS: usize = 3;

/// One default subnet.
#[derive(Debug, Clone)]
pub(super) struct DefaultSubnet {
    pub(super) id: String,
    pub(super) zone: String,
    pub(super) net: Ipv4Net,
}

/// The availability zones the site reports.
pub(super) fn zones(e: &Engine) -> Vec<String> {
    vec![format!("{}a", region(e))]
}

/// The default subnets, one per zone, in zone order.
pub(super) fn default_subnets(e: &Engine) -> Vec<DefaultSubnet> {
    let h = e
        .cfg
        .id
        .as_str()
        .bytes()
        .fold(0u64, |a, b| a.wrapping_mul(137).wrapping_add(u64::from(b)));
    zones(e)
        .into_iter()
        .enumerate()
        .map(|(k, zone)| {
            let k8 = u8::try_from(k).unwrap_or(15).min(15);
            DefaultSubnet {
                id: format!(
                    "subnet-{:017x}",
                    (h << 4 | u64::from(k8)) & 0x0fff_ffff_ffff_ffff
                ),
                zone,
                net: Ipv4Net::new_assert(Ipv4Addr::new(172, 31, k8 * 16, 0), 20),
            }
        })
        .collect()
}

/// The subnet `v` is in (its `subnet` extra, else the first default subnet).
pub(super) fn subnet_of(e: &Engine, v: &VmRec) -> Option<DefaultSubnet> {
    let all = default_subnets(e);
    match v.extra("subnet") {
        Some(id) => all.into_iter().find(|s| s.id == id),
        None => all.into_iter().next(),
    }
}

/// The subnet and addresses of `count` new instances, from `SubnetId` and
/// `PrivateIpAddress`, with EC2's errors.
pub(super) fn addresses_for(
    e: &Engine,
    st: &State,
    p: &Params,
    count: u32,
) -> Result<(DefaultSubnet, Vec<Ipv4Addr>), Ec2Error> {
    let all = default_subnets(e);
    let subnet = match p.get("SubnetId") {
        Some(id) => all.into_iter().find(|s| s.id == id).ok_or_else(|| {
            Ec2Error::client(
                "InvalidSubnetID.NotFound",
                format!("The subnet ID '{id}' does not exist"),
            )
        })?,
        None => all.into_iter().next().ok_or_else(|| {
            Ec2Error::client("MissingInput", "No subnets found for the default VPC")
        })?,
    };
    let taken = ipam::in_use(st, e.now());
    if let Some(raw) = p.get("PrivateIpAddress") {
        if count > 1 {
            return Err(Ec2Error::client(
                "InvalidParameterValue",
                "A private IP address cannot be specified when launching more than one instance (MaxCount > 1)",
            ));
        }
        let ip: Ipv4Addr = raw
            .parse()
            .map_err(|_| Ec2Error::invalid(raw, "PrivateIpAddress"))?;
        let net = subnet.net;
        let reserved = ip == net.network()
            || ip == net.broadcast()
            || net.hosts().take(RESERVED_HOSTS).any(|r| r == ip);
        if !net.contains(&ip) || reserved {
            return Err(Ec2Error::client(
                "InvalidParameterValue",
                format!(
                    "Address {ip} does not fall within the subnet's address range ({} is {})",
                    subnet.id, net
                ),
            ));
        }
        if taken.contains(&ip) {
            return Err(Ec2Error::client(
                "InvalidIPAddress.InUse",
                format!("Address {ip} is in use."),
            ));
        }
        return Ok((subnet, vec![ip]));
    }
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let ip = ipam::next_free(subnet.net, RESERVED_HOSTS, &taken, &out).ok_or_else(|| {
            Ec2Error::client(
                "InsufficientFreeAddressesInSubnet",
                format!(
                    "There are not enough free addresses in subnet '{}' to satisfy the requested number of instances.",
                    subnet.id
                ),
            )
        })?;
        out.push(ip);
    }
    Ok((subnet, out))
}

pub(super) fn check_filters(
    filters: &[(String, Vec<String>)],
    known: &[&str],
) -> Result<(), Ec2Error> {
    match filters.iter().find(|(n, _)| !known.contains(&n.as_str())) {
        Some((n, _)) => Err(Ec2Error::client(
            "InvalidParameterValue",
            format!("The filter '{n}' is invalid"),
        )),
        None => Ok(()),
    }
}

/// `DescribeSubnets`: `SubnetId.N`, filters `default-for-az`, `vpc-id`, `subnet-id`,
/// `availability-zone`.
pub(super) fn describe(e: &Engine, p: &Params) -> Ec2Result {
    let filters = p.filters();
    check_filters(
        &filters,
        &["default-for-az", "vpc-id", "subnet-id", "availability-zone"],
    )?;
    let all = default_subnets(e);
    let ids = p.list("SubnetId");
    if let Some(id) = ids.iter().find(|id| !all.iter().any(|s| s.id == **id)) {
        return Err(Ec2Error::client(
            "InvalidSubnetID.NotFound",
            format!("The subnet ID '{id}' does not exist"),
        ));
    }
    let vpc = default_vpc(e);
    let now = e.now();
    let st = e.lock();
    let items: String = all
        .iter()
        .filter(|s| ids.is_empty() || ids.contains(&s.id))
        .filter(|s| {
            filters.iter().all(|(name, values)| {
                let field = match name.as_str() {
                    "default-for-az" => "true".to_owned(),
                    "vpc-id" => vpc.clone(),
                    "subnet-id" => s.id.clone(),
                    _ => s.zone.clone(),
                };
                values.contains(&field)
            })
        })
        .map(|s| {
            let used = st
                .vms
                .iter()
                .filter(|v| v.phase(now) != Phase::Deleted && s.net.contains(&v.ip))
                .count();
            let size = s.net.hosts().count() + 2; // and the network and broadcast addresses
            let free = size.saturating_sub(5 + used);
            format!(
                "<item>{}<subnetArn>arn:aws:ec2:{}:{OWNER_ID}:subnet/{}</subnetArn><state>available</state>{}{}{}<ipv6CidrBlockAssociationSet/><availableIpAddressCount>{free}</availableIpAddressCount>{}<defaultForAz>true</defaultForAz><mapPublicIpOnLaunch>true</mapPublicIpOnLaunch><assignIpv6AddressOnCreation>false</assignIpv6AddressOnCreation></item>",
                el("subnetId", &s.id),
                region(e),
                s.id,
                el("vpcId", &vpc),
                el("ownerId", OWNER_ID),
                el("cidrBlock", &s.net.to_string()),
                el("availabilityZone", &s.zone),
            )
        })
        .collect();
    Ok(format!("<subnetSet>{items}</subnetSet>"))
}

/// `DescribeNetworkInterfaces`: the primary interface of every instance not yet
/// terminated; filters `subnet-id`, `vpc-id`, `attachment.instance-id`,
/// `private-ip-address`.
pub(super) fn interfaces(e: &Engine, p: &Params) -> Ec2Result {
    let filters = p.filters();
    check_filters(
        &filters,
        &[
            "subnet-id",
            "vpc-id",
            "attachment.instance-id",
            "private-ip-address",
        ],
    )?;
    let vpc = default_vpc(e);
    let now: Instant = e.now();
    let st = e.lock();
    let mut items = String::new();
    for v in st.vms.iter().filter(|v| v.phase(now) != Phase::Deleted) {
        let Some(s) = subnet_of(e, v) else {
            continue;
        };
        let ip = v.ip.to_string();
        let keep = filters.iter().all(|(name, values)| {
            let field = match name.as_str() {
                "subnet-id" => s.id.clone(),
                "vpc-id" => vpc.clone(),
                "attachment.instance-id" => v.id.clone(),
                _ => ip.clone(),
            };
            values.contains(&field)
        });
        if !keep {
            continue;
        }
        let eni = format!("eni-{}", v.id.trim_start_matches("i-"));
        let o = v.ip.octets();
        items.push_str(&format!(
            "<item>{}{}{}{}<description/>{}<requesterManaged>false</requesterManaged><status>in-use</status><macAddress>06:00:{:02x}:{:02x}:{:02x}:{:02x}</macAddress>{}<sourceDestCheck>true</sourceDestCheck><groupSet/><attachment><attachmentId>eni-attach-{}</attachmentId>{}{}<deviceIndex>0</deviceIndex><status>attached</status><deleteOnTermination>true</deleteOnTermination></attachment><tagSet/><privateIpAddressesSet><item>{}<primary>true</primary></item></privateIpAddressesSet><ipv6AddressesSet/><interfaceType>interface</interfaceType></item>",
            el("networkInterfaceId", &eni),
            el("subnetId", &s.id),
            el("vpcId", &vpc),
            el("availabilityZone", &s.zone),
            el("ownerId", OWNER_ID),
            o[0], o[1], o[2], o[3],
            el("privateIpAddress", &ip),
            v.id.trim_start_matches("i-"),
            el("instanceId", &v.id),
            el("instanceOwnerId", OWNER_ID),
            el("privateIpAddress", &ip),
        ));
    }
    Ok(format!(
        "<networkInterfaceSet>{items}</networkInterfaceSet>"
    ))
}
