//! EC2 Query API requests (`Version=2016-11-15`), built as plain parameter lists.
//!
//! Lists are `Name.N` (1-based), structures `Name.Sub`, lists of structures
//! `Name.N.Sub` (EC2 API reference, "Query requests"). Nothing here does I/O; the
//! client form-encodes, signs and sends.

use base64::Engine;
use intercloud_core::Tags;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

/// The API version every request names.
pub const API_VERSION: &str = "2016-11-15";

/// Largest `MaxResults` DescribeInstances accepts.
pub const MAX_RESULTS: u32 = 1000;

/// The states of an instance that still holds resources.
pub const ALIVE_STATES: [&str; 4] = ["pending", "running", "stopping", "stopped"];

/// One Query API call: its action and parameters (`Action` and `Version` included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRequest {
    action: &'static str,
    params: Vec<(String, String)>,
}

impl QueryRequest {
    /// A request for `action` with `Action` and `Version` set.
    pub fn new(action: &'static str) -> Self {
        Self {
            action,
            params: vec![
                ("Action".into(), action.into()),
                ("Version".into(), API_VERSION.into()),
            ],
        }
    }

    /// A request for `action` of another Query API (`version` `2010-05-08` for IAM),
    /// for services sharing the endpoint (moto).
    pub fn with_version(action: &'static str, version: &str) -> Self {
        Self {
            action,
            params: vec![
                ("Action".into(), action.into()),
                ("Version".into(), version.into()),
            ],
        }
    }

    /// The action name (`RunInstances`).
    pub fn action(&self) -> &'static str {
        self.action
    }

    /// The parameters in order.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The value of parameter `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Adds one parameter.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Adds `prefix.1 … prefix.N`.
    pub fn list<S: AsRef<str>>(
        mut self,
        prefix: &str,
        values: impl IntoIterator<Item = S>,
    ) -> Self {
        for (i, v) in values.into_iter().enumerate() {
            self.params
                .push((format!("{prefix}.{}", i + 1), v.as_ref().to_owned()));
        }
        self
    }

    /// Adds `Filter.N.Name` / `Filter.N.Value.M` for each filter.
    pub fn filters(mut self, filters: &[(String, Vec<String>)]) -> Self {
        for (i, (name, values)) in filters.iter().enumerate() {
            let n = i + 1;
            self.params.push((format!("Filter.{n}.Name"), name.clone()));
            for (j, v) in values.iter().enumerate() {
                self.params
                    .push((format!("Filter.{n}.Value.{}", j + 1), v.clone()));
            }
        }
        self
    }

    /// Adds `TagSpecification.1` for `resource_type` with `tags`.
    pub fn tag_specification(mut self, resource_type: &str, tags: &Tags) -> Self {
        if tags.is_empty() {
            return self;
        }
        self.params.push((
            "TagSpecification.1.ResourceType".into(),
            resource_type.into(),
        ));
        for (i, (k, v)) in tags.iter().enumerate() {
            let n = i + 1;
            self.params
                .push((format!("TagSpecification.1.Tag.{n}.Key"), k.clone()));
            self.params
                .push((format!("TagSpecification.1.Tag.{n}.Value"), v.clone()));
        }
        self
    }

    /// The body, form-encoded the way Python's `urlencode` does it (space `+`, every
    /// byte but `A-Z a-z 0-9 - . _ ~` as `%XX`): AWS accepts it, and moto, which
    /// re-encodes the parsed form to check signatures, needs exactly this.
    pub fn form_body(&self) -> String {
        form_encode(&self.params)
    }
}

const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b' ');

/// `application/x-www-form-urlencoded` of `params`, space as `+`.
pub fn form_encode(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, FORM).to_string().replace(' ', "+")
}

/// A `(name, values)` filter.
pub fn filter(
    name: impl Into<String>,
    values: impl IntoIterator<Item = impl Into<String>>,
) -> (String, Vec<String>) {
    (name.into(), values.into_iter().map(Into::into).collect())
}

/// Filters selecting `tags` exactly (`tag:K = V` for each).
pub fn tag_filters(tags: &Tags) -> Vec<(String, Vec<String>)> {
    tags.iter()
        .map(|(k, v)| filter(format!("tag:{k}"), [v.clone()]))
        .collect()
}

/// What a `RunInstances` call needs.
#[derive(Debug, Clone)]
pub struct RunInstances<'a> {
    /// The AMI.
    pub image_id: &'a str,
    /// The instance type.
    pub instance_type: &'a str,
    /// How many (MinCount = MaxCount: all or nothing).
    pub count: u32,
    /// The idempotency token (≤ 64 ASCII characters).
    pub client_token: &'a str,
    /// Tags every instance gets at launch.
    pub tags: &'a Tags,
    /// Raw user data (encoded here).
    pub user_data: Option<&'a str>,
    /// Availability zone, subnet, key pair, security groups.
    pub placement: &'a LaunchOptions,
    /// `PrivateIpAddress` (with `count` 1), in `placement`'s subnet.
    pub private_ip: Option<&'a str>,
}

/// Site-wide launch settings from the builder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaunchOptions {
    /// `Placement.AvailabilityZone`.
    pub availability_zone: Option<String>,
    /// `SubnetId`.
    pub subnet_id: Option<String>,
    /// `KeyName`.
    pub key_name: Option<String>,
    /// `SecurityGroupId.N`.
    pub security_group_ids: Vec<String>,
}

/// `RunInstances` with `MinCount = MaxCount = count`, `ClientToken`,
/// `TagSpecification` (instance) and base64 `UserData`.
pub fn run_instances(r: &RunInstances<'_>) -> QueryRequest {
    let mut q = QueryRequest::new("RunInstances")
        .param("ImageId", r.image_id)
        .param("InstanceType", r.instance_type)
        .param("MinCount", r.count.to_string())
        .param("MaxCount", r.count.to_string())
        .param("ClientToken", r.client_token);
    if let Some(ud) = r.user_data {
        q = q.param(
            "UserData",
            base64::engine::general_purpose::STANDARD.encode(ud.as_bytes()),
        );
    }
    if let Some(az) = &r.placement.availability_zone {
        q = q.param("Placement.AvailabilityZone", az);
    }
    if let Some(subnet) = &r.placement.subnet_id {
        q = q.param("SubnetId", subnet);
    }
    if let Some(key) = &r.placement.key_name {
        q = q.param("KeyName", key);
    }
    if let Some(ip) = r.private_ip {
        q = q.param("PrivateIpAddress", ip);
    }
    q.list("SecurityGroupId", &r.placement.security_group_ids)
        .tag_specification("instance", r.tags)
}

/// The `ClientToken` of a create: the key itself when creating indices `0..n` (the
/// first attempt and its retries), otherwise a digest of key and indices, so each
/// distinct top-up has its own stable token (EC2 rejects a token reused with other
/// parameters). Always ≤ 64 ASCII characters.
pub fn client_token(key: &str, indices: &[u32]) -> String {
    let first_attempt = indices.iter().enumerate().all(|(i, &x)| x as usize == i);
    if first_attempt && key.len() <= 64 {
        return key.to_owned();
    }
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    for i in indices {
        h.update(b":");
        h.update(i.to_string().as_bytes());
    }
    let digest = hex::encode(h.finalize());
    let head: String = key.chars().take(23).collect();
    format!("{head}-{}", &digest[..40])
}

/// `DescribeInstances` with filters, one page of at most `max_results` (5–1000;
/// `None` leaves paging to the server, for endpoints without `MaxResults`).
pub fn describe_instances(
    filters: &[(String, Vec<String>)],
    max_results: Option<u32>,
    next_token: Option<&str>,
) -> QueryRequest {
    let mut q = QueryRequest::new("DescribeInstances").filters(filters);
    if let Some(n) = max_results {
        q = q.param("MaxResults", n.clamp(5, MAX_RESULTS).to_string());
    }
    if let Some(t) = next_token {
        q = q.param("NextToken", t);
    }
    q
}

/// `TerminateInstances` of `ids`.
pub fn terminate_instances<S: AsRef<str>>(ids: &[S]) -> QueryRequest {
    QueryRequest::new("TerminateInstances").list("InstanceId", ids.iter().map(AsRef::as_ref))
}

/// `StartInstances` of `ids` (`InstanceId.N`; AWS API reference, StartInstances).
pub fn start_instances<S: AsRef<str>>(ids: &[S]) -> QueryRequest {
    QueryRequest::new("StartInstances").list("InstanceId", ids.iter().map(AsRef::as_ref))
}

/// `StopInstances` of `ids` (`InstanceId.N`; AWS API reference, StopInstances).
pub fn stop_instances<S: AsRef<str>>(ids: &[S]) -> QueryRequest {
    QueryRequest::new("StopInstances").list("InstanceId", ids.iter().map(AsRef::as_ref))
}

/// `CreateTags` of `tags` on every resource in `ids`.
pub fn create_tags<S: AsRef<str>>(ids: &[S], tags: &Tags) -> QueryRequest {
    let mut q = QueryRequest::new("CreateTags").list("ResourceId", ids.iter().map(AsRef::as_ref));
    for (i, (k, v)) in tags.iter().enumerate() {
        q = q
            .param(format!("Tag.{}.Key", i + 1), k)
            .param(format!("Tag.{}.Value", i + 1), v);
    }
    q
}

/// `DescribeInstanceTypes`, one page; `types` empty means all.
pub fn describe_instance_types<S: AsRef<str>>(
    types: &[S],
    next_token: Option<&str>,
) -> QueryRequest {
    let mut q = QueryRequest::new("DescribeInstanceTypes")
        .list("InstanceType", types.iter().map(AsRef::as_ref));
    if types.is_empty() {
        q = q.param("MaxResults", "100");
    }
    if let Some(t) = next_token {
        q = q.param("NextToken", t);
    }
    q
}

/// `DescribeImages` of `owners` (`amazon`, `self`, an account id) with filters.
pub fn describe_images<S: AsRef<str>>(
    owners: &[S],
    filters: &[(String, Vec<String>)],
) -> QueryRequest {
    QueryRequest::new("DescribeImages")
        .list("Owner", owners.iter().map(AsRef::as_ref))
        .filters(filters)
}

/// `DescribeAvailabilityZones` of the endpoint's region.
pub fn describe_availability_zones() -> QueryRequest {
    QueryRequest::new("DescribeAvailabilityZones")
}

/// `DescribeRegions` (the regions enabled for the account).
pub fn describe_regions() -> QueryRequest {
    QueryRequest::new("DescribeRegions")
}

/// `DescribeAccountAttributes` of `names` (`max-instances`).
pub fn describe_account_attributes(names: &[&str]) -> QueryRequest {
    QueryRequest::new("DescribeAccountAttributes").list("AttributeName", names.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_matches_python_urlencode() {
        let q = QueryRequest::new("X")
            .param("Filter.1.Name", "tag:intercloud-key")
            .param("V", "a b/c+d=é");
        assert_eq!(
            q.form_body(),
            "Action=X&Version=2016-11-15&Filter.1.Name=tag%3Aintercloud-key&V=a+b%2Fc%2Bd%3D%C3%A9"
        );
    }

    /// The body boto3 sent for the recorded moto `RunInstances` (requests.txt), less
    /// the parameters intercloud does not use, in intercloud's order.
    #[test]
    fn run_instances_params() {
        let mut tags = Tags::new();
        tags.insert("intercloud:cluster".into(), "c1".into());
        let opts = LaunchOptions::default();
        let q = run_instances(&RunInstances {
            image_id: "ami-1e749f67",
            instance_type: "t3.micro",
            count: 2,
            client_token: "ic-tok-1",
            tags: &tags,
            user_data: Some("#!/bin/sh\necho hi\n"),
            placement: &opts,
            private_ip: None,
        });
        assert_eq!(
            q.form_body(),
            "Action=RunInstances&Version=2016-11-15&ImageId=ami-1e749f67&InstanceType=t3.micro&MinCount=2&MaxCount=2&ClientToken=ic-tok-1&UserData=IyEvYmluL3NoCmVjaG8gaGkK&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=intercloud%3Acluster&TagSpecification.1.Tag.1.Value=c1"
        );
    }

    #[test]
    fn describe_instances_filters() {
        let q = describe_instances(
            &[
                filter("tag:intercloud:cluster", ["c1"]),
                filter("instance-state-name", ["pending", "running"]),
            ],
            Some(MAX_RESULTS),
            Some("tok"),
        );
        assert_eq!(
            q.form_body(),
            "Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Aintercloud%3Acluster&Filter.1.Value.1=c1&Filter.2.Name=instance-state-name&Filter.2.Value.1=pending&Filter.2.Value.2=running&MaxResults=1000&NextToken=tok"
        );
    }

    #[test]
    fn client_tokens_are_stable_short_and_distinct() {
        let k = "ic-c1-0123456789abcdef";
        assert_eq!(client_token(k, &[0, 1, 2]), k);
        let topup = client_token(k, &[2, 3]);
        assert_eq!(topup, client_token(k, &[2, 3]));
        assert_ne!(topup, client_token(k, &[3]));
        assert!(topup.len() <= 64);
        let long = "x".repeat(64);
        assert!(client_token(&long, &[5]).len() <= 64);
    }
}
