//! The description of a simulated federation: sites, their offerings, their behaviour
//! (latency, boot time, rate limit, faults) and the links between them.
//!
//! Every duration is in *simulated* seconds or milliseconds; [`FederationConfig::time_scale`]
//! turns them into wall-clock time (0.01 makes a 5 s boot last 50 ms).
//!
//! The TOML the `intercloud-sim` binary reads ([`FederationConfig::from_toml`]):
//!
//! ```
//! let text = r#"
//! seed = 7              # RNG seed (ids, latency, boot times, faults)
//! time_scale = 0.01     # wall-clock seconds per simulated second
//!
//! [[site]]
//! id = "hokkaido"
//! middleware = "cloudstack"          # cloudstack | opennebula | ec2
//! zone = "hokkaido-zone1"            # CloudStack zone name / EC2 region
//! port = 0                           # 0 = ephemeral
//! credentials = { kind = "cloudstack", api_key = "key", secret_key = "secret" }
//! images = ["centos-7"]              # CloudStack templates / EC2 AMI ids
//! latency_ms = 50.0                  # mean per-request latency (±25 %)
//! boot_s = 5.0                       # mean boot time
//! boot_jitter = 0.2                  # ±20 %, uniform
//! rate_limit = 25.0                  # calls per simulated second (token bucket)
//! burst = 25.0                       # bucket size (default: the rate)
//! faults = { error_rate = 0.0, job_failure_rate = 0.0, outage = [600.0, 900.0], slow_factor = 1.0 }
//! [[site.offering]]
//! level = "S"
//! name = "Small Instance"            # service offering / ONE template / instance type
//! cpus = 1
//! memory_mb = 1024
//! capacity = 200                     # alive VMs of this offering at once
//!
//! [[site]]
//! id = "nii"
//! middleware = "opennebula"
//! credentials = { kind = "opennebula", user = "oneadmin", password = "pw" }
//! [[site.offering]]
//! level = "S"
//! name = "small"
//! capacity = 100
//!
//! [[link]]
//! between = ["hokkaido", "nii"]
//! rtt_ms = 20.0
//! bandwidth_mbps = 1000.0
//! "#;
//! let cfg = intercloud_sim::FederationConfig::from_toml(text).unwrap();
//! assert_eq!(cfg.sites.len(), 2);
//! ```

use std::fmt;

use intercloud_core::model::{Link, Middleware, SiteId};
use serde::{Deserialize, Serialize};

/// A whole simulated federation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// Seed of every random choice (latency, boot time, faults, ids): equal seeds and equal
    /// call sequences give equal runs.
    #[serde(default)]
    pub seed: u64,
    /// Wall-clock seconds per simulated second (1.0 = real time, 0.01 = 100× faster).
    #[serde(default = "one")]
    pub time_scale: f64,
    /// The sites.
    #[serde(rename = "site")]
    pub sites: Vec<SiteConfig>,
    /// The network between sites (for the planner; the simulator only reports it).
    #[serde(default, rename = "link")]
    pub links: Vec<Link>,
}

fn one() -> f64 {
    1.0
}

/// Credentials one simulated site accepts.
///
/// `Debug` prints only the public half.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SimCredentials {
    /// CloudStack API key and secret key (HMAC-SHA1 request signatures).
    Cloudstack {
        /// The `apiKey` parameter.
        api_key: String,
        /// The secret the signature is computed with.
        secret_key: String,
    },
    /// OpenNebula `user:password` session string.
    Opennebula {
        /// The user name.
        user: String,
        /// The password (or login token).
        password: String,
    },
    /// EC2 access key id and secret access key (SigV4).
    Ec2 {
        /// The access key id (`AKIA…`).
        access_key_id: String,
        /// The secret access key.
        secret_access_key: String,
    },
}

impl fmt::Debug for SimCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cloudstack { api_key, .. } => f
                .debug_struct("Cloudstack")
                .field("api_key", api_key)
                .field("secret_key", &"******")
                .finish(),
            Self::Opennebula { user, .. } => f
                .debug_struct("Opennebula")
                .field("user", user)
                .field("password", &"******")
                .finish(),
            Self::Ec2 { access_key_id, .. } => f
                .debug_struct("Ec2")
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &"******")
                .finish(),
        }
    }
}

/// One offering of a site: a CloudStack service offering, an OpenNebula template, an EC2
/// instance type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferingConfig {
    /// The service level it serves (`S`, `M`, `L`).
    pub level: String,
    /// Its name as the middleware shows it (`"Small Instance"`, `"t3.small"`, `"small"`).
    pub name: String,
    /// Virtual CPUs.
    #[serde(default = "one_u32")]
    pub cpus: u32,
    /// Memory in MiB.
    #[serde(default = "default_mem")]
    pub memory_mb: u32,
    /// How many VMs of this offering may be alive at once.
    pub capacity: u32,
    /// Price per VM-hour reported to the planner (the simulator charges nothing).
    #[serde(default)]
    pub price_per_hour: f64,
}

fn one_u32() -> u32 {
    1
}
fn default_mem() -> u32 {
    1024
}

/// Injected faults; all default to "none". They can be changed while running with
/// [`crate::SiteHandle::set_faults`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Probability (0..1) that an admitted API call fails with the middleware's internal error.
    pub error_rate: f64,
    /// Probability (0..1) that a VM creation fails asynchronously (job failure, BOOT_FAILURE,
    /// an instance that goes to `terminated`).
    pub job_failure_rate: f64,
    /// A window, in simulated seconds since start, during which the site answers 503.
    pub outage: Option<[f64; 2]>,
    /// Factor applied to latency and boot time (1 = normal; 5 = a slow site).
    pub slow_factor: Option<f64>,
}

/// One simulated site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// The site id (`hokkaido`).
    pub id: SiteId,
    /// The middleware whose wire protocol it speaks (`cloudstack`, `opennebula`, `ec2`).
    pub middleware: Middleware,
    /// Zone (CloudStack) or region (EC2) name; unused for OpenNebula.
    #[serde(default)]
    pub zone: Option<String>,
    /// Fixed port to listen on (0 or absent = an ephemeral port).
    #[serde(default)]
    pub port: u16,
    /// The credentials the site accepts.
    pub credentials: SimCredentials,
    /// Offerings, one per service level.
    #[serde(rename = "offering")]
    pub offerings: Vec<OfferingConfig>,
    /// Images (CloudStack template names, EC2 AMI names); the first is the default.
    #[serde(default = "default_images")]
    pub images: Vec<String>,
    /// Mean per-request latency in simulated milliseconds.
    #[serde(default)]
    pub latency_ms: f64,
    /// Mean boot time in simulated seconds.
    #[serde(default)]
    pub boot_s: f64,
    /// Uniform jitter around the mean boot time, as a fraction (0.2 = ±20 %).
    #[serde(default)]
    pub boot_jitter: f64,
    /// API calls per simulated second (token bucket); absent = unlimited.
    #[serde(default)]
    pub rate_limit: Option<f64>,
    /// Bucket size (burst); defaults to the rate.
    #[serde(default)]
    pub burst: Option<f64>,
    /// Injected faults.
    #[serde(default)]
    pub faults: Faults,
}

fn default_images() -> Vec<String> {
    vec!["centos-7".to_owned()]
}

impl FederationConfig {
    /// Parses a federation from TOML.
    ///
    /// # Errors
    /// A message naming the problem (TOML syntax, unknown field, duplicate site, a
    /// middleware/credentials mismatch).
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let cfg: Self = toml::from_str(text).map_err(|e| format!("sim config: {e}"))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// A message naming the site and what to fix.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.time_scale > 0.0 && self.time_scale.is_finite()) {
            return Err("sim config: time_scale must be a positive number".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for s in &self.sites {
            if !seen.insert(s.id.clone()) {
                return Err(format!("sim config: site {} is defined twice", s.id));
            }
            let ok = matches!(
                (s.middleware, &s.credentials),
                (Middleware::CloudStack, SimCredentials::Cloudstack { .. })
                    | (Middleware::OpenNebula, SimCredentials::Opennebula { .. })
                    | (
                        Middleware::Ec2 | Middleware::Eucalyptus,
                        SimCredentials::Ec2 { .. }
                    )
            );
            if !ok {
                return Err(format!(
                    "sim config: site {}: credentials kind does not match middleware {}",
                    s.id,
                    s.middleware.as_str()
                ));
            }
            if s.offerings.is_empty() {
                return Err(format!(
                    "sim config: site {}: needs at least one [[site.offering]]",
                    s.id
                ));
            }
            if s.images.is_empty() {
                return Err(format!(
                    "sim config: site {}: images must not be empty",
                    s.id
                ));
            }
            if let Some(r) = s.rate_limit {
                if r <= 0.0 || !r.is_finite() {
                    return Err(format!("sim config: site {}: rate_limit must be > 0", s.id));
                }
            }
            for p in [s.faults.error_rate, s.faults.job_failure_rate] {
                if !(0.0..=1.0).contains(&p) {
                    return Err(format!(
                        "sim config: site {}: fault rates are in 0..1",
                        s.id
                    ));
                }
            }
        }
        for l in &self.links {
            for end in &l.between {
                if !seen.contains(end) {
                    return Err(format!("sim config: link names unknown site {end}"));
                }
            }
        }
        Ok(())
    }

    /// The seed federation's site `id` alone, with every offering limited to
    /// `capacity` VMs and no links: the set-up of a capacity test against one
    /// middleware. `None` when `id` is not a seed site.
    pub fn seed_site(id: &str, capacity: u32) -> Option<Self> {
        let mut cfg = Self::seed_default();
        cfg.links.clear();
        cfg.sites.retain(|s| s.id.as_str() == id);
        for o in &mut cfg.sites.first_mut()?.offerings {
            o.capacity = capacity;
        }
        Some(cfg)
    }

    /// The default federation, mirroring the seed experiment: `hokkaido` (CloudStack,
    /// 25 calls/s, 50 ms per call, 5 s boot), `nii` (OpenNebula), `tokyo` (EC2), with
    /// ~20 ms RTT and 1 Gbps (21 % VPN overhead → ~790 Mbps usable) between Hokkaido and
    /// Tokyo. Credentials are the fixed ones listed in the crate docs.
    pub fn seed_default() -> Self {
        let levels = |names: [&str; 3], cap: u32, price: f64| {
            ["S", "M", "L"]
                .iter()
                .zip(names)
                .enumerate()
                .map(|(i, (l, n))| OfferingConfig {
                    level: (*l).to_owned(),
                    name: n.to_owned(),
                    cpus: 1 << i,
                    memory_mb: 1024 << i,
                    capacity: cap >> i,
                    price_per_hour: price * f64::from(1u32 << i),
                })
                .collect::<Vec<_>>()
        };
        let hokkaido = SiteConfig {
            id: SiteId::new("hokkaido"),
            middleware: Middleware::CloudStack,
            zone: Some("hokkaido-zone1".into()),
            port: 0,
            credentials: SimCredentials::Cloudstack {
                api_key: "hokkaido-api-key".into(),
                secret_key: "hokkaido-secret-key".into(),
            },
            offerings: levels(
                ["Small Instance", "Medium Instance", "Large Instance"],
                2000,
                0.02,
            ),
            images: vec!["centos-7".into(), "ubuntu-22.04".into()],
            latency_ms: 50.0,
            boot_s: 5.0,
            boot_jitter: 0.2,
            rate_limit: Some(25.0),
            burst: None,
            faults: Faults::default(),
        };
        let nii = SiteConfig {
            id: SiteId::new("nii"),
            middleware: Middleware::OpenNebula,
            zone: None,
            port: 0,
            credentials: SimCredentials::Opennebula {
                user: "oneadmin".into(),
                password: "nii-password".into(),
            },
            offerings: levels(["small", "medium", "large"], 400, 0.01),
            images: vec!["centos-7".into()],
            latency_ms: 30.0,
            boot_s: 8.0,
            boot_jitter: 0.25,
            rate_limit: None,
            burst: None,
            faults: Faults::default(),
        };
        let tokyo = SiteConfig {
            id: SiteId::new("tokyo"),
            middleware: Middleware::Ec2,
            zone: Some("ap-northeast-1".into()),
            port: 0,
            credentials: SimCredentials::Ec2 {
                access_key_id: "AKIDTOKYOEXAMPLE".into(),
                secret_access_key: "tokyo-secret-access-key".into(),
            },
            offerings: levels(["t3.small", "t3.medium", "t3.large"], 1000, 0.0272),
            images: vec!["ami-0c3fd0f5d33134a76".into()],
            latency_ms: 80.0,
            boot_s: 20.0,
            boot_jitter: 0.3,
            rate_limit: Some(100.0),
            burst: None,
            faults: Faults::default(),
        };
        let link = |a: &str, b: &str, rtt: f64, bw: f64| Link {
            between: [SiteId::new(a), SiteId::new(b)],
            rtt_ms: rtt,
            bandwidth_mbps: bw,
            vpn_overhead: intercloud_core::model::DEFAULT_VPN_OVERHEAD,
        };
        Self {
            seed: 42,
            time_scale: 1.0,
            sites: vec![hokkaido, nii, tokyo],
            links: vec![
                link("hokkaido", "tokyo", 20.0, 1000.0),
                link("hokkaido", "nii", 20.0, 1000.0),
                link("nii", "tokyo", 2.0, 10_000.0),
            ],
        }
    }
}

impl SiteConfig {
    /// The offering serving a level, by level name or offering name.
    pub fn offering(&self, name: &str) -> Option<(usize, &OfferingConfig)> {
        self.offerings
            .iter()
            .enumerate()
            .find(|(_, o)| o.name == name || o.level == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_default_is_valid_and_round_trips_through_toml() {
        let cfg = FederationConfig::seed_default();
        cfg.validate().unwrap();
        let text = toml::to_string(&cfg).unwrap();
        assert_eq!(FederationConfig::from_toml(&text).unwrap(), cfg);
        let usable = cfg.links[0].usable_mbps();
        assert!((usable - 790.0).abs() < 1.0, "{usable}");
    }

    #[test]
    fn bad_config_names_site() {
        let mut cfg = FederationConfig::seed_default();
        cfg.sites[1].credentials = cfg.sites[0].credentials.clone();
        let err = cfg.validate().unwrap_err();
        assert!(err.contains("nii"), "{err}");
        assert!(FederationConfig::from_toml("site = 3").is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let cfg = FederationConfig::seed_default();
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("hokkaido-secret-key"));
        assert!(!dbg.contains("nii-password"));
        assert!(!dbg.contains("tokyo-secret-access-key"));
        assert!(dbg.contains("hokkaido-api-key"));
    }
}
