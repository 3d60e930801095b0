//! [`Ec2Builder`]: configure an AWS region or a Eucalyptus cloud, then `build()`.
//!
//! ```no_run
//! # fn main() -> intercloud_core::Result<()> {
//! use intercloud_ec2::Ec2Builder;
//! // AWS: region → https://ec2.{region}.amazonaws.com/
//! let aws = Ec2Builder::aws()
//!     .site("tokyo")
//!     .region("ap-northeast-1")
//!     .access_key("AKIA…", "secret…")
//!     .build()?;
//! // Eucalyptus: an endpoint, SigV4 (default) or SigV2, no region discovery.
//! let euca = Ec2Builder::eucalyptus()
//!     .site("hokkaido-euca")
//!     .endpoint("http://euca.example.ac.jp:8773/services/compute")
//!     .access_key("AKI…", "secret…")
//!     .build()?;
//! // From AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION,
//! // AWS_ENDPOINT_URL:
//! let env = Ec2Builder::from_env().site("aws").build()?;
//! # Ok(()) }
//! ```
//!
//! Setters never fail; [`Ec2Builder::build`] validates and names what to fix.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use intercloud_core::{Credentials, Error, Middleware, Result, Site, SiteId};
use time::OffsetDateTime;
use url::Url;

use crate::client::{Client, Clock, Signing};
use crate::provider::{Ec2Provider, Flavour};
use crate::query::LaunchOptions;
use crate::sigv2::Sigv2Method;
use crate::sigv4::AwsCredentials;

/// Region used in the SigV4 scope of a Eucalyptus endpoint when none is set
/// (Eucalyptus does not check it).
pub const EUCALYPTUS_DEFAULT_REGION: &str = "eucalyptus";

/// Builder of an [`Ec2Provider`].
#[derive(Clone)]
pub struct Ec2Builder {
    flavour: Flavour,
    site: Option<SiteId>,
    region: Option<String>,
    endpoint: Option<String>,
    credentials: Option<Credentials>,
    signing: Signing,
    launch: LaunchOptions,
    timeout: Duration,
    max_batch: u32,
    tag_concurrency: usize,
    tag_on_create: Option<bool>,
    credentials_hint: Option<String>,
    clock: Option<Clock>,
}

impl fmt::Debug for Ec2Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Credentials`' own Debug prints only the key id.
        f.debug_struct("Ec2Builder")
            .field("flavour", &self.flavour)
            .field("site", &self.site)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .field("signing", &self.signing)
            .field("launch", &self.launch)
            .field("timeout", &self.timeout)
            .field("max_batch", &self.max_batch)
            .field("tag_on_create", &self.tag_on_create)
            .finish()
    }
}

impl Default for Ec2Builder {
    fn default() -> Self {
        Self::aws()
    }
}

impl Ec2Builder {
    /// A builder for Amazon EC2 (or an EC2-compatible endpoint such as moto).
    pub fn aws() -> Self {
        Self {
            flavour: Flavour::Aws,
            site: None,
            region: None,
            endpoint: None,
            credentials: None,
            signing: Signing::V4,
            launch: LaunchOptions::default(),
            timeout: Duration::from_secs(60),
            max_batch: 1000,
            tag_concurrency: 8,
            tag_on_create: None,
            credentials_hint: None,
            clock: None,
        }
    }

    /// A builder for Eucalyptus: needs [`Ec2Builder::endpoint`]; signs with SigV4
    /// unless [`Ec2Builder::signature_v2`] is set.
    pub fn eucalyptus() -> Self {
        Self {
            flavour: Flavour::Eucalyptus,
            ..Self::aws()
        }
    }

    /// An AWS builder from the environment: `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`, `AWS_REGION` (or
    /// `AWS_DEFAULT_REGION`) and optional `AWS_ENDPOINT_URL_EC2` or `AWS_ENDPOINT_URL`.
    /// Missing variables are reported by [`Ec2Builder::build`].
    pub fn from_env() -> Self {
        Self::from_env_with(|k| std::env::var(k).ok())
    }

    /// As [`Ec2Builder::from_env`], reading variables through `get` (for tests and
    /// embedders with their own environment).
    pub fn from_env_with(get: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let mut b = Self::aws();
        if let (Some(id), Some(secret)) = (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
            b.credentials = Some(Credentials::ec2(id, secret, get("AWS_SESSION_TOKEN")));
        }
        b.region = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION"));
        b.endpoint = get("AWS_ENDPOINT_URL_EC2").or_else(|| get("AWS_ENDPOINT_URL"));
        b
    }

    /// Credentials from `{prefix}_ACCESS_KEY_ID`, `{prefix}_SECRET_ACCESS_KEY` and
    /// optional `{prefix}_SESSION_TOKEN` (the federation file's `env:PREFIX`); when
    /// they are missing, [`Ec2Builder::build`] names the variables.
    pub fn credentials_from_env(self, prefix: &str) -> Self {
        self.credentials_from_env_with(prefix, |k| std::env::var(k).ok())
    }

    /// As [`Ec2Builder::credentials_from_env`], reading variables through `get`.
    pub fn credentials_from_env_with(
        mut self,
        prefix: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let get = |k: &str| get(&format!("{prefix}_{k}")).filter(|v| !v.trim().is_empty());
        self.credentials = match (get("ACCESS_KEY_ID"), get("SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => Some(Credentials::ec2(id, secret, get("SESSION_TOKEN"))),
            _ => None,
        };
        self.credentials_hint = Some(format!(
            "{prefix}_ACCESS_KEY_ID and {prefix}_SECRET_ACCESS_KEY"
        ));
        self
    }

    /// A builder for a federation site of middleware `ec2` or `eucalyptus`: its
    /// endpoint, `zone` as the region, and `credentials`.
    pub fn for_site(site: &Site, credentials: Credentials) -> Self {
        let mut b = match site.middleware {
            Middleware::Eucalyptus => Self::eucalyptus(),
            _ => Self::aws(),
        };
        b.site = Some(site.id.clone());
        b.region = site.zone.clone();
        if !site.endpoint.trim().is_empty() {
            b.endpoint = Some(site.endpoint.clone());
        }
        b.credentials = Some(credentials);
        b
    }

    /// The federation's name for this site (default: the region, or the endpoint host).
    pub fn site(mut self, site: impl Into<SiteId>) -> Self {
        self.site = Some(site.into());
        self
    }

    /// The region (`us-east-1`): picks the AWS endpoint and the SigV4 scope.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The endpoint URL (`http://127.0.0.1:5000/`, `https://euca:8773/services/compute`).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Credentials (must be [`Credentials::Ec2`]).
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Access key id and secret (no session token).
    pub fn access_key(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::ec2(id, secret, None));
        self
    }

    /// Signs with SigV2 and `method` (old Eucalyptus endpoints).
    pub fn signature_v2(mut self, method: Sigv2Method) -> Self {
        self.signing = Signing::V2(method);
        self
    }

    /// Signs with SigV4 (the default).
    pub fn signature_v4(mut self) -> Self {
        self.signing = Signing::V4;
        self
    }

    /// `Placement.AvailabilityZone` of every launch.
    pub fn availability_zone(mut self, az: impl Into<String>) -> Self {
        self.launch.availability_zone = Some(az.into());
        self
    }

    /// `SubnetId` of every launch.
    pub fn subnet_id(mut self, subnet: impl Into<String>) -> Self {
        self.launch.subnet_id = Some(subnet.into());
        self
    }

    /// `KeyName` (an EC2 key pair) of every launch.
    pub fn key_name(mut self, key: impl Into<String>) -> Self {
        self.launch.key_name = Some(key.into());
        self
    }

    /// Adds a security group id to every launch.
    pub fn security_group_id(mut self, sg: impl Into<String>) -> Self {
        self.launch.security_group_ids.push(sg.into());
        self
    }

    /// Time limit of each API call (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest `count` of one `create_vms` (default 1000).
    pub fn max_batch(mut self, max: u32) -> Self {
        self.max_batch = max;
        self
    }

    /// `CreateTags` calls in flight when instances are indexed one by one (default 8):
    /// only for adopted instances, top-ups with gaps and `RunInstances` answers without
    /// `amiLaunchIndex`; a batch is normally indexed by its `intercloud-index-base` tag.
    pub fn tag_concurrency(mut self, n: usize) -> Self {
        self.tag_concurrency = n;
        self
    }

    /// Whether RunInstances carries the tags (`TagSpecification`, API 2016-11-15).
    /// Default: on for AWS; off for Eucalyptus, whose releases predate or only partly
    /// implement tag-on-create, so instances are tagged after launch by one `CreateTags`
    /// naming every instance of the call.
    pub fn tag_on_create(mut self, on: bool) -> Self {
        self.tag_on_create = Some(on);
        self
    }

    /// The clock used for signatures (default: the system clock).
    pub fn clock(mut self, clock: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Validates and builds the provider.
    ///
    /// # Errors
    /// `Config` naming what to fix: no or non-EC2 credentials, no region and no
    /// endpoint, a Eucalyptus site without endpoint, an endpoint that is not an
    /// `http(s)` URL or carries a user name or password.
    pub fn build(self) -> Result<Ec2Provider> {
        let site_hint = self.site.clone();
        let cfg = |m: String| {
            let e = Error::config(m);
            match &site_hint {
                Some(s) => e.with_site(s.clone()),
                None => e,
            }
        };
        let creds =
            match &self.credentials {
                Some(Credentials::Ec2 {
                    access_key_id,
                    secret_access_key,
                    session_token,
                }) => {
                    if access_key_id.trim().is_empty() {
                        return Err(cfg("the EC2 access key id is empty".into()));
                    }
                    AwsCredentials::new(
                        access_key_id.trim(),
                        secret_access_key.clone(),
                        session_token.clone(),
                    )
                }
                Some(_) => return Err(cfg(
                    "EC2/Eucalyptus sites need EC2 credentials (access key id + secret access key)"
                        .into(),
                )),
                None => {
                    let vars = self
                        .credentials_hint
                        .as_deref()
                        .unwrap_or("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
                    return Err(cfg(format!(
                        "no EC2 credentials: set an access key (or {vars})"
                    )));
                }
            };
        let region = match (&self.region, self.flavour) {
            (Some(r), _) if !r.trim().is_empty() => r.trim().to_owned(),
            (_, Flavour::Eucalyptus) => EUCALYPTUS_DEFAULT_REGION.to_owned(),
            (_, Flavour::Aws) => {
                return Err(cfg(
                    "no EC2 region: set the site's zone to a region (or AWS_REGION)".into(),
                ))
            }
        };
        let endpoint =
            match (&self.endpoint, self.flavour) {
                (Some(e), _) => e.trim().to_owned(),
                (None, Flavour::Aws) => format!("https://ec2.{region}.amazonaws.com/"),
                (None, Flavour::Eucalyptus) => return Err(cfg(
                    "a Eucalyptus site needs its endpoint, e.g. http://HOST:8773/services/compute"
                        .into(),
                )),
            };
        let url = Url::parse(&endpoint)
            .map_err(|e| cfg(format!("endpoint {endpoint:?} is not a URL: {e}")))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(cfg(format!("endpoint {endpoint:?} must be http or https")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(cfg(
                "the endpoint must not carry a user name or password; use credentials".into(),
            ));
        }
        if url.host_str().is_none() {
            return Err(cfg(format!("endpoint {endpoint:?} has no host")));
        }
        if self.max_batch == 0 {
            return Err(cfg("max_batch must be at least 1".into()));
        }
        let site = self.site.clone().unwrap_or_else(|| match self.flavour {
            Flavour::Aws => SiteId::new(region.clone()),
            Flavour::Eucalyptus => SiteId::new(url.host_str().unwrap_or("eucalyptus")),
        });
        let clock: Clock = self
            .clock
            .clone()
            .unwrap_or_else(|| Arc::new(OffsetDateTime::now_utc));
        let client = Client::new(site, url, region, self.signing, creds, clock, self.timeout)?;
        Ok(Ec2Provider {
            client: Arc::new(client),
            flavour: self.flavour,
            launch: self.launch,
            max_batch: self.max_batch,
            tag_concurrency: self.tag_concurrency,
            // Eucalyptus is not known to page DescribeInstances: let it answer whole.
            page_size: match self.flavour {
                Flavour::Aws => Some(crate::query::MAX_RESULTS),
                Flavour::Eucalyptus => None,
            },
            tag_on_create: self.tag_on_create.unwrap_or(self.flavour == Flavour::Aws),
            guest: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use intercloud_core::{CloudProvider, ErrorKind};

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn from_env_reads_the_aws_variables() {
        let b = Ec2Builder::from_env_with(env(&[
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "S3CRET-env"),
            ("AWS_SESSION_TOKEN", "T0KEN-env"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/"),
        ]));
        let d = format!("{b:?}");
        assert!(!d.contains("S3CRET") && !d.contains("T0KEN"), "{d}");
        let p = b.build().unwrap();
        assert_eq!(p.site().as_str(), "eu-west-1");
        assert_eq!(p.client().region(), "eu-west-1");
        assert_eq!(p.client().endpoint().as_str(), "http://127.0.0.1:5000/");
        let d = format!("{p:?}");
        assert!(
            !d.contains("S3CRET") && !d.contains("T0KEN") && d.contains("AKIDENV"),
            "{d}"
        );
    }

    #[test]
    fn credentials_from_an_env_prefix() {
        let get = env(&[
            ("NII_ACCESS_KEY_ID", "AKIDNII"),
            ("NII_SECRET_ACCESS_KEY", "S3CRET-nii"),
        ]);
        let p = Ec2Builder::aws()
            .region("r")
            .credentials_from_env_with("NII", &get)
            .build()
            .unwrap();
        assert!(format!("{p:?}").contains("AKIDNII"));
        let e = Ec2Builder::aws()
            .region("r")
            .credentials_from_env_with("TOKYO", &get)
            .build()
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("TOKYO_ACCESS_KEY_ID and TOKYO_SECRET_ACCESS_KEY"),
            "{e}"
        );
    }

    #[test]
    fn aws_endpoint_follows_region() {
        let p = Ec2Builder::aws()
            .region("ap-northeast-1")
            .access_key("a", "b")
            .build()
            .unwrap();
        assert_eq!(
            p.client().endpoint().as_str(),
            "https://ec2.ap-northeast-1.amazonaws.com/"
        );
        assert!(p.capabilities().native_vpn);
    }

    #[test]
    fn build_names_what_to_fix() {
        let cases: Vec<(Ec2Builder, &str)> = vec![
            (
                Ec2Builder::from_env_with(env(&[("AWS_REGION", "x")])),
                "AWS_ACCESS_KEY_ID",
            ),
            (Ec2Builder::aws().access_key("a", "b"), "region"),
            (Ec2Builder::eucalyptus().access_key("a", "b"), "endpoint"),
            (
                Ec2Builder::aws()
                    .region("r")
                    .endpoint("ftp://x/")
                    .access_key("a", "b"),
                "http or https",
            ),
            (
                Ec2Builder::aws()
                    .region("r")
                    .endpoint("http://u:S3CRET@h/")
                    .access_key("a", "b"),
                "user name or password",
            ),
            (
                Ec2Builder::aws()
                    .region("r")
                    .credentials(Credentials::cloudstack("k", "S3CRET")),
                "EC2 credentials",
            ),
        ];
        for (b, want) in cases {
            let e = b.site("s1").build().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert_eq!(e.site().map(|s| s.as_str()), Some("s1"));
            let m = e.to_string();
            assert!(m.contains(want), "{m} should mention {want}");
            assert!(!m.contains("S3CRET"), "{m}");
        }
    }

    #[test]
    fn for_site_reads_endpoint_zone_and_middleware() {
        let site: Site = serde_json::from_value(serde_json::json!({
            "id": "hokkaido-euca",
            "middleware": "eucalyptus",
            "endpoint": "http://euca.example.ac.jp:8773/services/compute",
            "zone": "hokkaido-1",
        }))
        .unwrap();
        let p = Ec2Builder::for_site(&site, Credentials::ec2("a", "b", None))
            .build()
            .unwrap();
        assert_eq!(p.site().as_str(), "hokkaido-euca");
        assert_eq!(p.client().region(), "hokkaido-1");
        assert_eq!(p.flavour(), Flavour::Eucalyptus);
        assert_eq!(
            p.client().endpoint().as_str(),
            "http://euca.example.ac.jp:8773/services/compute"
        );
    }

    #[test]
    fn eucalyptus_is_a_configuration() {
        let p = Ec2Builder::eucalyptus()
            .endpoint("http://euca.example.com:8773/services/compute")
            .access_key("a", "b")
            .signature_v2(Sigv2Method::HmacSha1)
            .build()
            .unwrap();
        assert_eq!(p.site().as_str(), "euca.example.com");
        assert_eq!(p.client().region(), EUCALYPTUS_DEFAULT_REGION);
        assert!(!p.capabilities().native_vpn);
    }
}
