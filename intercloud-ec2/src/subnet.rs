//! The guest network of an EC2 site: the subnet new instances join and the private
//! addresses taken in it. Requests and parsing are pure; the calls are in
//! [`crate::provider`].
//!
//! - The subnet is the builder's `subnet_id` (`DescribeSubnets SubnetId.1`), else the
//!   default VPC's default subnet (`Filter default-for-az=true`) of the builder's
//!   availability zone, or of the lowest zone name when none is set (deterministic).
//! - Addresses in use: `DescribeNetworkInterfaces` filtered on `subnet-id`: every
//!   `privateIpAddressesSet/item/privateIpAddress` (primary and secondary), or the
//!   interface's `privateIpAddress`.
//! - An instance at a chosen address: `RunInstances` with `MinCount = MaxCount = 1`,
//!   `PrivateIpAddress` and `SubnetId` (AWS takes a private address for one instance
//!   per call). An address another interface holds fails with
//!   `InvalidIPAddress.InUse` ("The specified IP address is already in use", EC2
//!   API error codes), mapped to a temporary `AlreadyExists` in [`crate::error`].

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::query::{filter, QueryRequest};
use crate::xml::Element;

/// One subnet as `DescribeSubnets` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    /// `subnet-…`.
    pub id: String,
    /// `cidrBlock`.
    pub cidr: String,
    /// `vpcId`.
    pub vpc_id: Option<String>,
    /// `availabilityZone`.
    pub zone: Option<String>,
    /// `defaultForAz`.
    pub default_for_az: bool,
}

/// `DescribeSubnets` of one subnet by id.
pub fn describe_subnet(id: &str) -> QueryRequest {
    QueryRequest::new("DescribeSubnets").param("SubnetId.1", id)
}

/// `DescribeSubnets` of the default subnets (`default-for-az=true`).
pub fn describe_default_subnets() -> QueryRequest {
    QueryRequest::new("DescribeSubnets").filters(&[filter("default-for-az", ["true"])])
}

/// `DescribeNetworkInterfaces` of one subnet, one page.
pub fn describe_interfaces(subnet_id: &str, next_token: Option<&str>) -> QueryRequest {
    let q =
        QueryRequest::new("DescribeNetworkInterfaces").filters(&[filter("subnet-id", [subnet_id])]);
    match next_token {
        Some(t) => q.param("NextToken", t),
        None => q,
    }
}

/// The subnets of a `DescribeSubnets` answer.
///
/// # Errors
/// A message when an item has no `subnetId` or no `cidrBlock`.
pub fn subnets(root: &Element) -> Result<Vec<Subnet>, String> {
    root.items("subnetSet")
        .into_iter()
        .map(|item| {
            let id = item
                .text_at("subnetId")
                .ok_or("a subnet without subnetId")?
                .trim()
                .to_owned();
            let cidr = item
                .text_at("cidrBlock")
                .ok_or_else(|| format!("subnet {id} without cidrBlock"))?
                .trim()
                .to_owned();
            Ok(Subnet {
                cidr,
                vpc_id: item.text_at("vpcId").map(|v| v.trim().to_owned()),
                zone: item
                    .text_at("availabilityZone")
                    .map(|v| v.trim().to_owned()),
                default_for_az: item.text_at("defaultForAz").map(str::trim) == Some("true"),
                id,
            })
        })
        .collect()
}

/// The default subnet new instances join: the one in `zone` when set, else the one
/// of the lowest zone name.
///
/// # Errors
/// A message saying what to configure when there is none (no default VPC, or no
/// default subnet in `zone`).
pub fn choose_default(subnets: Vec<Subnet>, zone: Option<&str>) -> Result<Subnet, String> {
    let mut defaults: Vec<Subnet> = subnets.into_iter().filter(|s| s.default_for_az).collect();
    defaults.sort_by(|a, b| a.zone.cmp(&b.zone).then_with(|| a.id.cmp(&b.id)));
    match zone {
        Some(z) => defaults
            .into_iter()
            .find(|s| s.zone.as_deref() == Some(z))
            .ok_or_else(|| {
                format!("no default subnet in availability zone {z}; set the site's subnet id")
            }),
        None => defaults.into_iter().next().ok_or_else(|| {
            "no default VPC subnet (the account has no default VPC); set the site's subnet id"
                .to_owned()
        }),
    }
}

/// The private addresses of a `DescribeNetworkInterfaces` page, and its `nextToken`.
pub fn interface_addresses(root: &Element) -> (Vec<String>, Option<String>) {
    let mut out: Vec<String> = Vec::new();
    for eni in root.items("networkInterfaceSet") {
        let mut found: Vec<String> = eni
            .items("privateIpAddressesSet")
            .into_iter()
            .filter_map(|i| i.text_at("privateIpAddress"))
            .map(|a| a.trim().to_owned())
            .collect();
        if found.is_empty() {
            found.extend(eni.text_at("privateIpAddress").map(|a| a.trim().to_owned()));
        }
        for a in found {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    (out, crate::model::next_token(root))
}

/// Whether `address` can be asked of subnet `cidr`: IPv4, inside it, not one of the
/// five addresses AWS reserves (the network address, the next three and the
/// broadcast address). `Err` says why not.
pub fn check_address(address: &str, cidr: &str) -> Result<(), String> {
    let ip: Ipv4Addr = address
        .parse()
        .map_err(|_| format!("{address:?} is not an IPv4 address"))?;
    let net = cidr
        .parse::<Ipv4Net>()
        .ok()
        .filter(|n| n.prefix_len() <= 28)
        .ok_or_else(|| format!("the subnet's CIDR {cidr:?} is not an IPv4 CIDR"))?
        .trunc();
    if !net.contains(&ip) {
        return Err(format!("address {ip} is not in the subnet's CIDR {cidr}"));
    }
    let reserved =
        ip == net.network() || ip == net.broadcast() || net.hosts().take(3).any(|h| h == ip);
    if reserved {
        return Err(format!(
            "address {ip} is one of the five addresses AWS reserves in {cidr}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str, zone: &str, default: bool) -> Subnet {
        Subnet {
            id: id.into(),
            cidr: "172.31.0.0/20".into(),
            vpc_id: Some("vpc-1".into()),
            zone: Some(zone.into()),
            default_for_az: default,
        }
    }

    #[test]
    fn default_subnet_by_zone_or_lowest_zone() {
        let all = vec![
            sub("subnet-c", "eu-west-1c", true),
            sub("subnet-a", "eu-west-1a", true),
            sub("subnet-x", "eu-west-1a", false),
        ];
        assert_eq!(choose_default(all.clone(), None).unwrap().id, "subnet-a");
        assert_eq!(
            choose_default(all.clone(), Some("eu-west-1c")).unwrap().id,
            "subnet-c"
        );
        let e = choose_default(all, Some("eu-west-1b")).unwrap_err();
        assert!(e.contains("eu-west-1b") && e.contains("subnet id"), "{e}");
        assert!(choose_default(Vec::new(), None)
            .unwrap_err()
            .contains("no default VPC"));
    }

    #[test]
    fn addresses_inside_and_not_reserved() {
        assert!(check_address("172.31.0.4", "172.31.0.0/20").is_ok());
        assert!(check_address("172.31.15.254", "172.31.0.0/20").is_ok());
        for bad in ["172.31.0.3", "172.31.15.255", "172.31.16.4", "x", "::1"] {
            assert!(check_address(bad, "172.31.0.0/20").is_err(), "{bad}");
        }
        assert!(check_address("10.0.0.5", "10.0.0.0/29").is_err());
        // Host bits in the subnet's CIDR do not move the reserved addresses.
        assert!(check_address("10.0.0.3", "10.0.0.9/24").is_err());
        assert!(check_address("10.0.0.4", "10.0.0.9/24").is_ok());
        assert!(check_address("10.0.0.4", "10.0.0.0/x").is_err());
    }

    #[test]
    fn requests_are_the_documented_query() {
        assert_eq!(
            describe_default_subnets().form_body(),
            "Action=DescribeSubnets&Version=2016-11-15&Filter.1.Name=default-for-az&Filter.1.Value.1=true"
        );
        assert_eq!(
            describe_subnet("subnet-1").form_body(),
            "Action=DescribeSubnets&Version=2016-11-15&SubnetId.1=subnet-1"
        );
        assert_eq!(
            describe_interfaces("subnet-1", Some("t")).form_body(),
            "Action=DescribeNetworkInterfaces&Version=2016-11-15&Filter.1.Name=subnet-id&Filter.1.Value.1=subnet-1&NextToken=t"
        );
    }
}
