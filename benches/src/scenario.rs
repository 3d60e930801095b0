//! The deploy benchmark's scenario: simulated sites (50 ms per API call, 5 s boot, the
//! CloudStack site throttled to 25 calls/s), the placement of a cluster over them, and
//! the lower bound its deployment cannot beat.
//!
//! Pure data; the simulator is started by the benchmark binary.

use intercloud_core::model::Middleware;
use intercloud_core::SiteId;
use intercloud_sim::{Faults, FederationConfig, OfferingConfig, SimCredentials, SiteConfig};
use serde::{Deserialize, Serialize};

/// Simulated latency of every API call, in milliseconds.
pub const LATENCY_MS: f64 = 50.0;
/// Simulated boot time of every VM, in seconds (no jitter: the bound is exact).
pub const BOOT_S: f64 = 5.0;
/// API calls per second the CloudStack site admits (CloudStack's `api.throttling`).
pub const CLOUDSTACK_RATE: f64 = 25.0;

/// One site of the scenario: who it is and what a VM of level `S` is there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteSpec {
    /// Site id.
    pub id: String,
    /// Its middleware.
    pub middleware: Middleware,
    /// Zone (CloudStack) or region (EC2, Eucalyptus).
    pub zone: Option<String>,
    /// Offering name (service offering, template, instance type).
    pub offering: String,
    /// Image (CloudStack template name, AMI); `None` for OpenNebula.
    pub image: Option<String>,
    /// API calls per simulated second, if throttled.
    pub rate: Option<f64>,
    /// Credentials the simulated site accepts (fixed, loopback only).
    pub credentials: SimCredentials,
}

/// The four sites: CloudStack (throttled), OpenNebula, EC2, Eucalyptus.
pub fn four_sites() -> Vec<SiteSpec> {
    vec![
        cloudstack_site(),
        SiteSpec {
            id: "nii".into(),
            middleware: Middleware::OpenNebula,
            zone: None,
            offering: "small".into(),
            image: None,
            rate: None,
            credentials: SimCredentials::Opennebula {
                user: "oneadmin".into(),
                password: "nii-password".into(),
            },
        },
        ec2_site(),
        SiteSpec {
            id: "kyushu".into(),
            middleware: Middleware::Eucalyptus,
            zone: Some("eucalyptus".into()),
            offering: "m1.small".into(),
            image: Some("emi-0a1b2c3d".into()),
            rate: None,
            credentials: SimCredentials::Ec2 {
                access_key_id: "AKIDKYUSHUEXAMPLE".into(),
                secret_access_key: "kyushu-secret-access-key".into(),
            },
        },
    ]
}

/// The CloudStack site, throttled to [`CLOUDSTACK_RATE`].
pub fn cloudstack_site() -> SiteSpec {
    SiteSpec {
        id: "hokkaido".into(),
        middleware: Middleware::CloudStack,
        zone: Some("hokkaido-zone1".into()),
        offering: "Small Instance".into(),
        image: Some("centos-7".into()),
        rate: Some(CLOUDSTACK_RATE),
        credentials: SimCredentials::Cloudstack {
            api_key: "hokkaido-api-key".into(),
            secret_key: "hokkaido-secret-key".into(),
        },
    }
}

/// The EC2 site (not throttled).
pub fn ec2_site() -> SiteSpec {
    SiteSpec {
        id: "tokyo".into(),
        middleware: Middleware::Ec2,
        zone: Some("ap-northeast-1".into()),
        offering: "t3.small".into(),
        image: Some("ami-0c3fd0f5d33134a76".into()),
        rate: None,
        credentials: SimCredentials::Ec2 {
            access_key_id: "AKIDTOKYOEXAMPLE".into(),
            secret_access_key: "tokyo-secret-access-key".into(),
        },
    }
}

/// The simulator configuration for `sites`, each with room for `capacity` VMs.
pub fn federation(sites: &[SiteSpec], capacity: u32, time_scale: f64) -> FederationConfig {
    FederationConfig {
        seed: 11,
        time_scale,
        sites: sites
            .iter()
            .map(|s| SiteConfig {
                id: SiteId::new(s.id.as_str()),
                middleware: s.middleware,
                zone: s.zone.clone(),
                port: 0,
                credentials: s.credentials.clone(),
                offerings: vec![OfferingConfig {
                    level: "S".into(),
                    name: s.offering.clone(),
                    cpus: 1,
                    memory_mb: 1024,
                    capacity,
                    price_per_hour: 0.1,
                }],
                images: vec![s.image.clone().unwrap_or_else(|| "centos-7".into())],
                latency_ms: LATENCY_MS,
                boot_s: BOOT_S,
                boot_jitter: 0.0,
                rate_limit: s.rate,
                burst: None,
                faults: Faults::default(),
            })
            .collect(),
        links: Vec::new(),
    }
}

/// `total` VMs split as evenly as possible over `sites` (the first sites get the
/// remainder).
pub fn even_split(total: u32, sites: usize) -> Vec<u32> {
    let n = u32::try_from(sites.max(1)).unwrap_or(u32::MAX);
    (0..n)
        .map(|i| total / n + u32::from(i < total % n))
        .collect()
}

/// The lower bound of a deployment, in simulated seconds: over the sites, the larger
/// of one boot time and the calls the site needs at least divided by its rate.
///
/// The calls needed are one create call per VM on a site without a batch create
/// (CloudStack's `deployVirtualMachine` makes one VM) and nothing more — no tagging,
/// no polling — which no client can go below; sites without a rate limit add nothing.
pub fn lower_bound(sites: &[SiteSpec], counts: &[u32]) -> f64 {
    sites
        .iter()
        .zip(counts)
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| {
            let calls = match s.middleware {
                Middleware::CloudStack | Middleware::OpenNebula => f64::from(*n),
                Middleware::Ec2 | Middleware::Eucalyptus => 1.0,
            };
            let throttled = s.rate.map_or(0.0, |r| calls / r);
            BOOT_S.max(throttled)
        })
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_keeps_the_total() {
        assert_eq!(even_split(2000, 4), vec![500; 4]);
        assert_eq!(even_split(10, 4), vec![3, 3, 2, 2]);
        assert_eq!(even_split(10, 4).iter().sum::<u32>(), 10);
    }

    #[test]
    fn the_bound_is_the_throttled_site_once_it_outweighs_a_boot() {
        let sites = four_sites();
        // 25 VMs on CloudStack = 1 s of calls < 5 s boot.
        assert_eq!(lower_bound(&sites, &even_split(100, 4)), BOOT_S);
        // 500 VMs on CloudStack = 20 s of calls at 25/s.
        assert!((lower_bound(&sites, &even_split(2000, 4)) - 20.0).abs() < 1e-9);
    }

    #[test]
    fn the_simulator_accepts_the_scenario() {
        federation(&four_sites(), 3000, 1.0)
            .validate()
            .expect("valid sim config");
    }
}
