//! strongSwan `swanctl.conf` for a site-to-site gateway VM: one connection per remote
//! gateway (a CloudStack VPC VPN gateway, an EC2 virtual private gateway tunnel, or
//! another strongSwan gateway), PSK authentication, policy-based tunnels between the
//! sites' networks.

use std::fmt::{self, Write as _};

use secrecy::{ExposeSecret, SecretString};

use intercloud_core::{Error, Result};

use super::proposal::{from_cloudstack, from_ec2, ProposalFor};

/// IKE version of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IkeVersion {
    /// Either (strongSwan initiates with IKEv2, accepts both).
    Any,
    /// IKEv1 (main mode).
    V1,
    /// IKEv2.
    V2,
}

impl IkeVersion {
    /// Parses CloudStack's `ikeversion` notation: `ike` (either), `ikev1`, `ikev2`.
    ///
    /// # Errors
    /// `Invalid` for anything else.
    pub fn parse(v: &str) -> Result<Self> {
        match v.trim().to_ascii_lowercase().as_str() {
            "ike" | "" => Ok(Self::Any),
            "ikev1" => Ok(Self::V1),
            "ikev2" => Ok(Self::V2),
            other => Err(Error::invalid(format!(
                "IKE version {other:?} not understood (ike, ikev1, ikev2)"
            ))),
        }
    }

    fn number(self) -> u8 {
        match self {
            Self::Any => 0,
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }
}

/// The cryptographic policy both ends of a tunnel must agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpsecPolicy {
    /// IKE version.
    pub version: IkeVersion,
    /// IKE proposal, strongSwan syntax (`aes128-sha1-modp1536`).
    pub ike: String,
    /// ESP proposal, strongSwan syntax (`aes128-sha1`).
    pub esp: String,
    /// IKE SA lifetime, seconds.
    pub ike_lifetime_s: u32,
    /// Child (ESP) SA lifetime, seconds.
    pub esp_lifetime_s: u32,
    /// Dead-peer-detection interval, seconds (`None`: off).
    pub dpd_delay_s: Option<u32>,
}

impl IpsecPolicy {
    /// What two intercloud strongSwan gateways use: IKEv2,
    /// `aes256-sha256-modp2048` for IKE and ESP (with PFS), 8 h / 1 h lifetimes.
    pub fn strongswan_default() -> Self {
        Self {
            version: IkeVersion::V2,
            ike: "aes256-sha256-modp2048".into(),
            esp: "aes256-sha256-modp2048".into(),
            ike_lifetime_s: 28_800,
            esp_lifetime_s: 3_600,
            dpd_delay_s: Some(30),
        }
    }

    /// The policy of a CloudStack VPN customer gateway, from its API fields
    /// (`ikepolicy`, `esppolicy`, `ikelifetime`, `esplifetime`, `ikeversion`, `dpd`).
    ///
    /// # Errors
    /// `Invalid` when a policy string or the IKE version is not understood.
    pub fn cloudstack(
        ike_policy: &str,
        esp_policy: &str,
        ike_lifetime_s: u32,
        esp_lifetime_s: u32,
        ike_version: Option<&str>,
        dpd: bool,
    ) -> Result<Self> {
        let version = ike_version.map_or(Ok(IkeVersion::Any), IkeVersion::parse)?;
        Ok(Self {
            version,
            ike: from_cloudstack(ike_policy, ProposalFor::Ike)?,
            esp: from_cloudstack(esp_policy, ProposalFor::Esp)?,
            ike_lifetime_s,
            esp_lifetime_s,
            dpd_delay_s: dpd.then_some(30),
        })
    }

    /// The policy of one EC2 VPN tunnel, from the `ike` and `ipsec` parts of the
    /// customer gateway configuration (`mode` `main` is IKEv1).
    ///
    /// # Errors
    /// `Invalid` when an algorithm name is not understood.
    pub fn ec2(ike: &Ec2Phase, ipsec: &Ec2Phase, dpd_interval_s: Option<u32>) -> Result<Self> {
        Ok(Self {
            version: if ike.mode.as_deref() == Some("main") {
                IkeVersion::V1
            } else {
                IkeVersion::V2
            },
            ike: from_ec2(
                &ike.encryption,
                &ike.authentication,
                ike.pfs_group.as_deref(),
                ProposalFor::Ike,
            )?,
            esp: from_ec2(
                &ipsec.encryption,
                &ipsec.authentication,
                ipsec.pfs_group.as_deref(),
                ProposalFor::Esp,
            )?,
            ike_lifetime_s: ike.lifetime_s,
            esp_lifetime_s: ipsec.lifetime_s,
            dpd_delay_s: dpd_interval_s,
        })
    }
}

/// One phase (`ike` or `ipsec`) of an EC2 tunnel's customer gateway configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Phase {
    /// `encryption_protocol` (`aes-128-cbc`).
    pub encryption: String,
    /// `authentication_protocol` (`sha1`, `hmac-sha1-96`).
    pub authentication: String,
    /// `perfect_forward_secrecy` (`group2`).
    pub pfs_group: Option<String>,
    /// `lifetime`, seconds.
    pub lifetime_s: u32,
    /// `mode` (`main` for IKE, `tunnel` for IPsec).
    pub mode: Option<String>,
}

/// One site-to-site connection of a strongSwan gateway.
#[derive(Clone)]
pub struct SiteToSite {
    /// Connection name (letters, digits, `-`, `_`).
    pub name: String,
    /// This gateway's address to bind (its private address behind NAT), or `%any`
    /// (any local address) when it is not known before the VM exists.
    pub local_addr: String,
    /// The remote gateway's public address.
    pub remote_addr: String,
    /// This gateway's IKE identity (its public address when behind NAT); defaults to
    /// `local_addr`.
    pub local_id: Option<String>,
    /// The remote gateway's IKE identity; defaults to `remote_addr`.
    pub remote_id: Option<String>,
    /// This site's networks (CIDR).
    pub local_ts: Vec<String>,
    /// The remote site's networks (CIDR).
    pub remote_ts: Vec<String>,
    /// Algorithms and lifetimes.
    pub policy: IpsecPolicy,
    /// Whether this side brings the tunnel up at start (EC2 requires the customer
    /// gateway to initiate); otherwise it waits for the peer.
    pub initiate: bool,
    /// The pre-shared key (rendered only into the `secrets` section).
    pub psk: SecretString,
}

impl fmt::Debug for SiteToSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiteToSite")
            .field("name", &self.name)
            .field("local_addr", &self.local_addr)
            .field("remote_addr", &self.remote_addr)
            .field("local_ts", &self.local_ts)
            .field("remote_ts", &self.remote_ts)
            .field("policy", &self.policy)
            .field("initiate", &self.initiate)
            .field("psk", &"[redacted]")
            .finish()
    }
}

fn check_token(what: &str, v: &str, extra: &[char]) -> Result<()> {
    let ok = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what} {v:?} may hold only letters, digits and {extra:?}"
        )))
    }
}

impl SiteToSite {
    /// Checks names and addresses so the rendered file cannot be broken by a value
    /// (no spaces, braces, quotes or newlines), and that the PSK is usable.
    ///
    /// # Errors
    /// `Invalid` naming the connection and the bad field.
    pub fn validate(&self) -> Result<()> {
        let name = &self.name;
        let ctx = |e: Error| Error::invalid(format!("IPsec connection {name}: {}", e.message()));
        check_token("name", name, &['-', '_']).map_err(ctx)?;
        let addr = ['.', ':', '-', '_'];
        if self.local_addr != "%any" {
            check_token("local_addr", &self.local_addr, &addr).map_err(ctx)?;
        }
        for (what, v) in [
            ("remote_addr", Some(&self.remote_addr)),
            ("local_id", self.local_id.as_ref()),
            ("remote_id", self.remote_id.as_ref()),
        ] {
            if let Some(v) = v {
                check_token(what, v, &[&addr[..], &['@']].concat()).map_err(ctx)?;
            }
        }
        for ts in self.local_ts.iter().chain(&self.remote_ts) {
            check_token("traffic selector", ts, &['.', ':', '/']).map_err(ctx)?;
        }
        if self.local_ts.is_empty() || self.remote_ts.is_empty() {
            return Err(ctx(Error::invalid("needs local and remote networks")));
        }
        for p in [&self.policy.ike, &self.policy.esp] {
            check_token("proposal", p, &['-']).map_err(ctx)?;
        }
        if self.psk.expose_secret().len() < 8 {
            return Err(ctx(Error::invalid(
                "the pre-shared key is shorter than 8 characters",
            )));
        }
        Ok(())
    }
}

/// Renders `swanctl.conf` (`/etc/swanctl/conf.d/intercloud.conf`, mode 0600) for the
/// connections: a `connections` section without secrets, then a `secrets` section
/// whose PSKs are hex-encoded (`0x…`), so no byte of a key can break the syntax.
///
/// # Errors
/// `Invalid` from [`SiteToSite::validate`].
pub fn swanctl_conf(conns: &[SiteToSite]) -> Result<String> {
    let mut out = String::from("connections {\n");
    for c in conns {
        c.validate()?;
        let p = &c.policy;
        let _ = writeln!(out, "    {} {{", c.name);
        let _ = writeln!(out, "        version = {}", p.version.number());
        let _ = writeln!(out, "        local_addrs = {}", c.local_addr);
        let _ = writeln!(out, "        remote_addrs = {}", c.remote_addr);
        let _ = writeln!(out, "        proposals = {}", p.ike);
        let _ = writeln!(out, "        rekey_time = {}s", p.ike_lifetime_s * 9 / 10);
        if let Some(d) = p.dpd_delay_s {
            let _ = writeln!(out, "        dpd_delay = {d}s");
        }
        for (side, id) in [
            ("local", c.local_id.as_ref().unwrap_or(&c.local_addr)),
            ("remote", c.remote_id.as_ref().unwrap_or(&c.remote_addr)),
        ] {
            let _ = writeln!(out, "        {side} {{");
            let _ = writeln!(out, "            auth = psk");
            let _ = writeln!(out, "            id = {id}");
            let _ = writeln!(out, "        }}");
        }
        let _ = writeln!(out, "        children {{");
        let _ = writeln!(out, "            {} {{", c.name);
        let _ = writeln!(out, "                mode = tunnel");
        let _ = writeln!(out, "                local_ts = {}", c.local_ts.join(","));
        let _ = writeln!(out, "                remote_ts = {}", c.remote_ts.join(","));
        let _ = writeln!(out, "                esp_proposals = {}", p.esp);
        let _ = writeln!(out, "                life_time = {}s", p.esp_lifetime_s);
        let _ = writeln!(
            out,
            "                rekey_time = {}s",
            p.esp_lifetime_s * 9 / 10
        );
        if p.dpd_delay_s.is_some() {
            let _ = writeln!(out, "                dpd_action = restart");
        }
        let start = if c.initiate { "start" } else { "trap" };
        let _ = writeln!(out, "                start_action = {start}");
        let _ = writeln!(out, "            }}");
        let _ = writeln!(out, "        }}");
        let _ = writeln!(out, "    }}");
    }
    out.push_str("}\n\nsecrets {\n");
    for c in conns {
        let _ = writeln!(out, "    ike-{} {{", c.name);
        let _ = writeln!(
            out,
            "        id-1 = {}",
            c.local_id.as_ref().unwrap_or(&c.local_addr)
        );
        let _ = writeln!(
            out,
            "        id-2 = {}",
            c.remote_id.as_ref().unwrap_or(&c.remote_addr)
        );
        let _ = writeln!(out, "        secret = 0x{}", hex(c.psk.expose_secret()));
        let _ = writeln!(out, "    }}");
    }
    out.push_str("}\n");
    Ok(out)
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn conn() -> SiteToSite {
        SiteToSite {
            name: "icv-a-b".into(),
            local_addr: "192.168.88.1".into(),
            remote_addr: "192.168.88.2".into(),
            local_id: None,
            remote_id: None,
            local_ts: vec!["10.1.0.0/16".into()],
            remote_ts: vec!["10.2.0.0/16".into()],
            policy: IpsecPolicy::strongswan_default(),
            initiate: true,
            psk: SecretString::from("s3cret-psk-value"),
        }
    }

    #[test]
    fn golden_site_to_site() {
        let got = swanctl_conf(&[conn()]).unwrap();
        let want = include_str!("../../tests/fixtures/golden/swanctl-s2s.conf");
        assert_eq!(got, want);
    }

    #[test]
    fn psk_only_in_secrets_and_never_in_debug() {
        let c = conn();
        let text = swanctl_conf(std::slice::from_ref(&c)).unwrap();
        let (conns, secrets) = text.split_once("secrets {").unwrap();
        let hexed = hex("s3cret-psk-value");
        assert!(!conns.contains(&hexed) && secrets.contains(&hexed));
        assert!(!text.contains("s3cret-psk-value"));
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn hostile_values_are_refused() {
        let mut c = conn();
        c.remote_addr = "1.2.3.4 }\nsecrets {".into();
        let e = swanctl_conf(&[c]).unwrap_err().to_string();
        assert!(e.contains("icv-a-b") && e.contains("remote_addr"), "{e}");
        let mut c = conn();
        c.psk = SecretString::from("short");
        let e = swanctl_conf(&[c]).unwrap_err().to_string();
        assert!(
            e.contains("shorter than 8") && !e.contains("short\""),
            "{e}"
        );
    }

    #[test]
    fn cloudstack_and_ec2_policies() {
        let p = IpsecPolicy::cloudstack(
            "aes128-sha1;modp1536",
            "aes128-sha1",
            86_400,
            3_600,
            Some("ikev2"),
            true,
        )
        .unwrap();
        assert_eq!(p.ike, "aes128-sha1-modp1536");
        assert_eq!(p.esp, "aes128-sha1");
        assert_eq!(p.version, IkeVersion::V2);
        assert!(
            IpsecPolicy::cloudstack("aes128-sha1", "aes128-sha1", 1, 1, Some("ikev3"), false)
                .is_err()
        );
    }
}
