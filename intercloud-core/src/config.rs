//! The CLI's file contracts: `federation.toml` and `cluster.toml`.
//!
//! Both are documented in the README. Parsing refuses unknown keys and reports every
//! mistake with the file name, the line and what to fix; it never panics.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::{
    ClusterRequest, LevelOffering, Link, Middleware, ServiceLevel, Site, SiteId, Topology,
};
use crate::{Error, Result};

/// One `[[site]]` of `federation.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// The federation's name for the site.
    pub id: SiteId,
    /// `cloudstack` | `opennebula` | `ec2` | `eucalyptus`.
    pub middleware: Middleware,
    /// The API endpoint URL.
    pub endpoint: String,
    /// CloudStack zone, EC2 region; unused for OpenNebula.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// `vault:NAME` or `env:PREFIX` (see [`crate::CredentialRef`]).
    pub credentials: String,
    /// API calls per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<f64>,
    /// Calls in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// The public address reserved for the site's overlay gateway (a floating or
    /// elastic IP the operator associates with the site's first node); needed by the
    /// WireGuard fabric, whose member configs are rendered before any VM exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// The guest network new VMs join: a CloudStack network (VPC tier) id, an EC2
    /// subnet id. Needed only where the cloud's own VPN gateway links the site
    /// (`[vpn] fabric = "ipsec"` or `"l2tp"`) and the cloud cannot tell which network
    /// that is (several VPC tiers; an EC2 subnet outside the default VPC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Service level → offering.
    #[serde(default)]
    pub levels: std::collections::BTreeMap<ServiceLevel, LevelOffering>,
}

impl SiteConfig {
    /// The site as the planner and providers see it.
    pub fn to_site(&self) -> Site {
        Site {
            id: self.id.clone(),
            middleware: self.middleware,
            endpoint: self.endpoint.clone(),
            zone: self.zone.clone(),
            levels: self.levels.clone(),
            rate_limit: self.rate_limit,
            max_concurrency: self.max_concurrency,
        }
    }
}

/// `federation.toml`: the sites and the links between them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// The sites.
    #[serde(rename = "site", default)]
    pub sites: Vec<SiteConfig>,
    /// The links.
    #[serde(rename = "link", default)]
    pub links: Vec<Link>,
}

impl FederationConfig {
    /// Parses and validates `federation.toml` text; `origin` names the file in errors.
    ///
    /// # Errors
    /// `Config` with file, line and the fix.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let cfg: Self = parse_toml(text, origin)?;
        cfg.validate().map_err(|e| prefix(origin, e))?;
        Ok(cfg)
    }

    /// Reads and parses a file.
    ///
    /// # Errors
    /// `Config` when the file cannot be read or is invalid.
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_toml(&read(path)?, &path.display().to_string())
    }

    /// The topology the planner works on.
    pub fn topology(&self) -> Topology {
        Topology::new(
            self.sites.iter().map(SiteConfig::to_site),
            self.links.clone(),
        )
    }

    /// The site with `id`.
    pub fn site(&self, id: &SiteId) -> Option<&SiteConfig> {
        self.sites.iter().find(|s| &s.id == id)
    }

    fn validate(&self) -> Result<()> {
        if self.sites.is_empty() {
            return Err(Error::config("no [[site]] is defined"));
        }
        let mut seen = BTreeSet::new();
        for s in &self.sites {
            if !seen.insert(&s.id) {
                return Err(Error::config(format!(
                    "site id {:?} is defined twice",
                    s.id.as_str()
                )));
            }
            let site =
                |msg: String| Error::config(format!("site {}: {msg}", s.id)).with_site(&s.id);
            let url = url::Url::parse(&s.endpoint)
                .map_err(|e| site(format!("endpoint {:?} is not a URL ({e})", s.endpoint)))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(site(format!(
                    "endpoint {:?} must be http:// or https://",
                    s.endpoint
                )));
            }
            if let Err(e) = s.credentials.parse::<crate::CredentialRef>() {
                return Err(site(e.message().to_owned()));
            }
            if matches!(s.middleware, Middleware::CloudStack | Middleware::Ec2) && s.zone.is_none()
            {
                return Err(site(format!(
                    "{} sites need `zone` (CloudStack zone or EC2 region)",
                    s.middleware
                )));
            }
            if let Some(r) = s.rate_limit {
                if !(r.is_finite() && r > 0.0) {
                    return Err(site("rate_limit must be > 0 calls per second".into()));
                }
            }
            if s.max_concurrency == Some(0) {
                return Err(site("max_concurrency must be at least 1".into()));
            }
            if let Some(g) = &s.gateway {
                if g.parse::<std::net::IpAddr>().is_err() {
                    return Err(site(format!("gateway {g:?} must be an IP address")));
                }
            }
            if s.levels.is_empty() {
                return Err(site(
                    "defines no service level; add e.g. [site.levels.S]".into(),
                ));
            }
        }
        self.topology().validate()
    }
}

/// Parses and validates `cluster.toml` text; `origin` names the file in errors.
///
/// # Errors
/// `Config` with file, line and the fix.
pub fn cluster_from_toml(text: &str, origin: &str) -> Result<ClusterRequest> {
    let req: ClusterRequest = parse_toml(text, origin)?;
    req.validate().map_err(|e| prefix(origin, e))?;
    Ok(req)
}

/// Reads and parses a cluster file.
///
/// # Errors
/// `Config` when the file cannot be read or is invalid.
pub fn load_cluster(path: &Path) -> Result<ClusterRequest> {
    cluster_from_toml(&read(path)?, &path.display().to_string())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("cannot read {}: {e}", path.display())))
}

fn prefix(origin: &str, e: Error) -> Error {
    let mut out = Error::config(format!("{origin}: {}", e.message()));
    if let Some(site) = e.site() {
        out = out.with_site(site);
    }
    out
}

/// Deserialises TOML, turning the error into `origin:LINE:COL: message`.
fn parse_toml<T: serde::de::DeserializeOwned>(text: &str, origin: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let msg = e.message().trim().to_owned();
        match e.span() {
            Some(span) => {
                let (line, col) = line_col(text, span.start);
                Error::config(format!("{origin}:{line}:{col}: {msg}"))
            }
            None => Error::config(format!("{origin}: {msg}")),
        }
    })
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let upto = &text[..offset.min(text.len())];
    let line = upto.matches('\n').count() + 1;
    let col = upto.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FED: &str = r#"
[[site]]
id = "hokkaido"
middleware = "cloudstack"
endpoint = "https://cloud.example.ac.jp/client/api"
zone = "zone1"
credentials = "vault:hokkaido"
rate_limit = 25
max_concurrency = 16
[site.levels.S]
offering = "Small Instance"
image = "centos-7"
price_per_hour = 0.02
capacity = 200

[[site]]
id = "nii"
middleware = "opennebula"
endpoint = "http://one.example.ac.jp:2633/RPC2"
credentials = "env:NII"
[site.levels.S]
offering = "small"
price_per_hour = 0.03
capacity = 100

[[link]]
between = ["hokkaido", "nii"]
rtt_ms = 20
bandwidth_mbps = 1000
"#;

    const CLUSTER: &str = r#"
name = "hadoop-demo"
profile = "hadoop"
[[group]]
role = "master"
count = 1
level = "L"
colocate = true
[[group]]
role = "worker"
count = 4
level = "S"
traffic = { pattern = "all-to-all", bytes_per_job = 10e9 }
sites = ["hokkaido", "nii"]
max_rtt_ms = 30
[spread]
min_sites = 2
survive_site_loss = 0.5
[vpn]
fabric = "auto"
bandwidth_mbps = 1000
"#;

    #[test]
    fn design_examples_parse() {
        let f = FederationConfig::from_toml(FED, "federation.toml").unwrap();
        assert_eq!(f.sites.len(), 2);
        let t = f.topology();
        let usable = t.usable_mbps(&"hokkaido".into(), &"nii".into()).unwrap();
        assert!((usable - 790.0).abs() < 1e-9);
        let c = cluster_from_toml(CLUSTER, "cluster.toml").unwrap();
        assert_eq!(c.total_nodes(), 5);
        assert_eq!(c.spread.min_sites, 2);
    }

    #[test]
    fn negative_vpn_bandwidth_names_file_line_and_column() {
        let bad = CLUSTER.replace("bandwidth_mbps = 1000", "bandwidth_mbps = -5");
        let e = cluster_from_toml(&bad, "cluster.toml").unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Config);
        let s = e.to_string();
        assert!(s.starts_with("cluster.toml:21:18:"), "{s}");
        assert!(s.contains("must be a number >= 0"), "{s}");
        let mut req = cluster_from_toml(CLUSTER, "cluster.toml").unwrap();
        req.vpn.bandwidth_mbps = Some(f64::NAN);
        assert!(
            req.validate().is_err(),
            "built in code, not parsed: still refused"
        );
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let bad = CLUSTER.replace("colocate = true", "colocat = true");
        let e = cluster_from_toml(&bad, "cluster.toml").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("cluster.toml:8:"), "{s}");
        assert!(s.contains("colocat"), "{s}");
    }

    #[test]
    fn bad_values_say_what_to_fix() {
        let bad = FED.replace("rtt_ms = 20", "rtt_ms = -3");
        let e = FederationConfig::from_toml(&bad, "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("rtt_ms must be >= 0"), "{e}");
        let bad = FED.replace("\"vault:hokkaido\"", "\"hunter2\"");
        let e = FederationConfig::from_toml(&bad, "f.toml").unwrap_err();
        assert_eq!(e.site().map(SiteId::as_str), Some("hokkaido"));
        let bad = FED.replace("middleware = \"opennebula\"", "middleware = \"openstack\"");
        let e = FederationConfig::from_toml(&bad, "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.toml:18:"), "{e}");
        let bad = CLUSTER.replace("count = 4", "count = 0");
        assert!(cluster_from_toml(&bad, "c")
            .unwrap_err()
            .to_string()
            .contains("count must be at least 1"));
        let e = cluster_from_toml("name = \"x\"\n[[group]]\nrole=", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.toml:3:"), "{e}");
    }
}
