//! Sites: one cloud endpoint of one middleware, and its service levels.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The name of a site in a federation (`"hokkaido"`, `"nii"`, `"tokyo"`).
///
/// Site ids are chosen by the user in `federation.toml`; they are not the cloud's own
/// zone or region names (those are [`Site::zone`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SiteId(String);

impl SiteId {
    /// A site id from any string.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl From<&str> for SiteId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for SiteId {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&SiteId> for SiteId {
    fn from(s: &SiteId) -> Self {
        s.clone()
    }
}

impl std::borrow::Borrow<str> for SiteId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// The cloud middleware a site runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Middleware {
    /// Apache CloudStack (signed JSON API).
    #[serde(rename = "cloudstack")]
    CloudStack,
    /// OpenNebula (XML-RPC).
    #[serde(rename = "opennebula")]
    OpenNebula,
    /// Amazon EC2 (Query API, SigV4).
    Ec2,
    /// Eucalyptus (EC2 Query API, SigV2 or SigV4).
    Eucalyptus,
}

impl Middleware {
    /// The lowercase name used in `federation.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CloudStack => "cloudstack",
            Self::OpenNebula => "opennebula",
            Self::Ec2 => "ec2",
            Self::Eucalyptus => "eucalyptus",
        }
    }
}

impl fmt::Display for Middleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A service level (`"S"`, `"M"`, `"L"`, …): the federation-wide size name that each
/// site maps to one of its own offerings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServiceLevel(String);

impl ServiceLevel {
    /// A service level from any string.
    pub fn new(level: impl Into<String>) -> Self {
        Self(level.into())
    }

    /// The level as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ServiceLevel {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl std::borrow::Borrow<str> for ServiceLevel {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// An image reference in the middleware's own terms: a CloudStack template (name or
/// id), an EC2 AMI id. OpenNebula templates carry their image, so it is unused there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ImageRef(pub String);

/// What one service level means at one site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelOffering {
    /// CloudStack service offering (name or id), EC2 instance type, OpenNebula
    /// template (name or id).
    pub offering: String,
    /// CloudStack template or EC2 AMI; unused for OpenNebula.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageRef>,
    /// Price of one VM of this level per hour, in the federation's currency unit.
    #[serde(default)]
    pub price_per_hour: f64,
    /// How many VMs of this level the site may host for the federation.
    pub capacity: u32,
}

/// One cloud endpoint of one middleware: a CloudStack zone, an OpenNebula front-end,
/// an EC2 region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Site {
    /// The federation's name for the site.
    pub id: SiteId,
    /// The middleware the site runs.
    pub middleware: Middleware,
    /// The API endpoint URL.
    pub endpoint: String,
    /// CloudStack zone (name or id), EC2 region; unused for OpenNebula.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Service level → this site's offering, image, price and capacity.
    #[serde(default)]
    pub levels: BTreeMap<ServiceLevel, LevelOffering>,
    /// API calls per second the site accepts (the rate limiter's rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<f64>,
    /// Calls in flight at once (the rate limiter's concurrency cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
}

impl Site {
    /// The offering of `level` at this site, if the site offers it.
    pub fn level(&self, level: &ServiceLevel) -> Option<&LevelOffering> {
        self.levels.get(level)
    }
}
