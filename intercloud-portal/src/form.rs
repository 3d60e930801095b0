//! The request form: its fields, the seed's example as defaults, and parsing into a
//! [`ClusterRequest`]. Pure functions.

use intercloud_core::config::FederationConfig;
use intercloud_core::{ClusterRequest, FabricChoice};
use serde_json::json;

/// Group rows the form offers.
pub const GROUP_ROWS: usize = 4;

/// Profiles offered.
pub const PROFILES: [&str; 5] = ["none", "hosts", "mpi", "hadoop", "slurm"];

/// VPN fabrics offered: the request's `[vpn] fabric` value, the label shown and a
/// one-line explanation. The first is the default.
pub const FABRICS: [(FabricChoice, &str, &str, &str); 4] = [
    (
        FabricChoice::Auto,
        "auto",
        "Automatic",
        "the clouds' own IPsec gateways where sites have them, WireGuard elsewhere",
    ),
    (
        FabricChoice::Wireguard,
        "wireguard",
        "WireGuard",
        "a WireGuard gateway node on every site; works on every cloud",
    ),
    (
        FabricChoice::Ipsec,
        "ipsec",
        "IPsec site-to-site",
        "the clouds' VPN gateways, or a strongSwan gateway node where a cloud has none",
    ),
    (
        FabricChoice::L2tp,
        "l2tp",
        "L2TP/IPsec",
        "other sites dial a CloudStack site's remote-access VPN (needs a CloudStack site)",
    ),
];

/// The request's name of `fabric` (`auto`, `wireguard`, `ipsec`, `l2tp`).
pub fn fabric_value(fabric: FabricChoice) -> &'static str {
    FABRICS
        .iter()
        .find(|f| f.0 == fabric)
        .map_or("auto", |f| f.1)
}

/// Longest name a user may give (the portal appends `-` and 6 characters).
pub const MAX_NAME: usize = 25;

/// One group row as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    /// Role.
    pub role: String,
    /// Count.
    pub count: u32,
    /// Level.
    pub level: String,
    /// Pinned sites (empty: any).
    pub sites: Vec<String>,
}

/// The form's values.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestForm {
    /// Cluster name.
    pub name: String,
    /// Profile.
    pub profile: String,
    /// VPN bandwidth between sites, Mbit/s (0: no minimum).
    pub vpn_mbps: f64,
    /// Minimum distinct sites.
    pub min_sites: u32,
    /// The VPN fabric linking the sites (`[vpn] fabric`).
    pub fabric: FabricChoice,
    /// Group rows.
    pub groups: Vec<GroupRow>,
}

impl RequestForm {
    /// The seed portal's example: 3 × S at the first site, 2 × L at the second, a VPN
    /// of 1 Gbps or what their link can carry after the VPN overhead, if less.
    pub fn seed_example(fed: &FederationConfig) -> Self {
        let site = |i: usize| fed.sites.get(i).map(|s| s.id.to_string());
        let usable = match (fed.sites.first(), fed.sites.get(1)) {
            (Some(a), Some(b)) => fed.topology().usable_mbps(&a.id, &b.id),
            _ => None,
        };
        Self {
            name: "seed-portal".into(),
            profile: "hosts".into(),
            vpn_mbps: usable.map_or(1000.0, |u| u.min(1000.0).floor()),
            min_sites: 1,
            fabric: FabricChoice::Auto,
            groups: vec![
                GroupRow {
                    role: "small".into(),
                    count: 3,
                    level: "S".into(),
                    sites: site(0).into_iter().collect(),
                },
                GroupRow {
                    role: "large".into(),
                    count: 2,
                    level: "L".into(),
                    sites: site(1).into_iter().collect(),
                },
            ],
        }
    }

    /// Reads the submitted fields (`name`, `profile`, `vpn_mbps`, `min_sites`,
    /// `fabric` (one of [`FABRICS`]; missing or empty: `auto`), `gN_role`, `gN_count`, `gN_level`, `gN_site` repeated).
    ///
    /// # Errors
    /// A message naming the field to fix.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, String> {
        let one = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default()
        };
        let num = |k: &str, label: &str| -> Result<f64, String> {
            let v = one(k);
            if v.is_empty() {
                return Ok(0.0);
            }
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| format!("{label} must be a number ≥ 0 (got {v:?})"))
        };
        let mut groups = Vec::new();
        for i in 0..GROUP_ROWS {
            let role = one(&format!("g{i}_role"));
            let count = one(&format!("g{i}_count"));
            if role.is_empty() && (count.is_empty() || count == "0") {
                continue;
            }
            let count: u32 = count
                .parse()
                .map_err(|_| format!("group {}: count must be a whole number", i + 1))?;
            if count == 0 {
                continue;
            }
            let key = format!("g{i}_site");
            groups.push(GroupRow {
                role,
                count,
                level: one(&format!("g{i}_level")),
                sites: pairs
                    .iter()
                    .filter(|(n, v)| *n == key && !v.is_empty())
                    .map(|(_, v)| v.clone())
                    .collect(),
            });
        }
        let name = one("name");
        if name.len() > MAX_NAME {
            return Err(format!(
                "the cluster name may have at most {MAX_NAME} characters"
            ));
        }
        let fabric = match one("fabric") {
            v if v.is_empty() => FabricChoice::Auto,
            v => FABRICS
                .iter()
                .find(|f| f.1 == v)
                .map(|f| f.0)
                .ok_or_else(|| {
                    format!("VPN fabric must be one of auto, wireguard, ipsec or l2tp (got {v:?})")
                })?,
        };
        Ok(Self {
            name,
            profile: one("profile"),
            vpn_mbps: num("vpn_mbps", "VPN bandwidth")?,
            min_sites: num("min_sites", "minimum sites")?.max(1.0) as u32,
            fabric,
            groups,
        })
    }

    /// The cluster request, named `tag` (the deployer's name), checked against the
    /// federation.
    ///
    /// # Errors
    /// A message naming what to fix.
    pub fn to_request(&self, tag: &str, fed: &FederationConfig) -> Result<ClusterRequest, String> {
        if !PROFILES.contains(&self.profile.as_str()) {
            return Err(format!("unknown profile {:?}", self.profile));
        }
        for g in &self.groups {
            for s in &g.sites {
                if fed.sites.iter().all(|c| c.id.as_str() != s) {
                    return Err(format!("group {}: unknown site {s:?}", g.role));
                }
            }
        }
        let groups: Vec<_> = self
            .groups
            .iter()
            .map(|g| {
                let mut v = json!({"role": g.role, "count": g.count, "level": g.level});
                if !g.sites.is_empty() {
                    v["sites"] = json!(g.sites);
                }
                v
            })
            .collect();
        let mut vpn = json!({"fabric": fabric_value(self.fabric)});
        if self.vpn_mbps > 0.0 {
            vpn["bandwidth_mbps"] = json!(self.vpn_mbps);
        }
        let v = json!({
            "name": tag,
            "profile": self.profile,
            "group": groups,
            "spread": {"min_sites": self.min_sites},
            "vpn": vpn,
        });
        let req: ClusterRequest =
            serde_json::from_value(v).map_err(|e| format!("invalid request: {e}"))?;
        req.validate().map_err(|e| e.message().to_owned())?;
        Ok(req)
    }
}

/// Whether `name` is a usable cluster name (letters, digits, '-', starting with a
/// letter, at most [`MAX_NAME`]).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && name.as_bytes()[0].is_ascii_alphabetic()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BUILTIN_FEDERATION;

    fn fed() -> FederationConfig {
        FederationConfig::from_toml(BUILTIN_FEDERATION, "t").unwrap()
    }

    fn p(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn seed_form_round_trips_to_the_seed_request() {
        let pairs = vec![
            p("name", "demo"),
            p("profile", "hosts"),
            p("vpn_mbps", "1000"),
            p("g0_role", "small"),
            p("g0_count", "3"),
            p("g0_level", "S"),
            p("g0_site", "hokkaido"),
            p("g1_role", "large"),
            p("g1_count", "2"),
            p("g1_level", "L"),
            p("g1_site", "nii"),
            p("g2_role", ""),
            p("g2_count", ""),
        ];
        let f = RequestForm::from_pairs(&pairs).unwrap();
        assert_eq!(f.groups.len(), 2);
        let r = f.to_request("demo-abc123", &fed()).unwrap();
        assert_eq!(r.name, "demo-abc123");
        assert_eq!(r.total_nodes(), 5);
        assert_eq!(r.groups[1].sites.as_ref().unwrap()[0].as_str(), "nii");
        assert_eq!(r.vpn.bandwidth_mbps, Some(1000.0));
        assert_eq!(r.vpn.fabric, FabricChoice::Auto, "no choice: auto");
    }

    #[test]
    fn every_offered_fabric_reaches_the_request() {
        for (choice, value, _, _) in FABRICS {
            let f = RequestForm::from_pairs(&[
                p("name", "demo"),
                p("profile", "none"),
                p("fabric", value),
                p("g0_role", "w"),
                p("g0_count", "2"),
                p("g0_level", "S"),
            ])
            .unwrap();
            assert_eq!(f.fabric, choice);
            let r = f.to_request("demo-abc123", &fed()).unwrap();
            assert_eq!(r.vpn.fabric, choice, "{value}");
            assert_eq!(fabric_value(choice), value);
        }
        let e = RequestForm::from_pairs(&[p("fabric", "gre")]).unwrap_err();
        assert!(e.contains("VPN fabric") && e.contains("\"gre\""), "{e}");
    }

    #[test]
    fn bad_fields_are_named() {
        let e = RequestForm::from_pairs(&[p("g0_role", "a"), p("g0_count", "x")]).unwrap_err();
        assert!(e.contains("group 1"), "{e}");
        let e = RequestForm::from_pairs(&[p("vpn_mbps", "-3")]).unwrap_err();
        assert!(e.contains("VPN bandwidth"), "{e}");
        let mut f = RequestForm::seed_example(&fed());
        f.groups[0].sites = vec!["mars".into()];
        assert!(f.to_request("x-1", &fed()).unwrap_err().contains("mars"));
        assert_eq!(RequestForm::seed_example(&fed()).vpn_mbps, 1000.0);
        let slow = BUILTIN_FEDERATION.replace("bandwidth_mbps = 2500", "bandwidth_mbps = 1000");
        let slow = FederationConfig::from_toml(&slow, "t").unwrap();
        assert_eq!(RequestForm::seed_example(&slow).vpn_mbps, 790.0);
        assert!(!valid_name("1abc") && !valid_name("a b") && valid_name("seed-portal"));
    }
}
