//! [`StrongSwanFabric`]: the [`VpnFabric`] of strongSwan gateway VMs.
//!
//! A site's endpoint is a gateway VM the deployer creates with
//! [`StrongSwanFabric::gateway_bootstrap`] as user data; `prepare_site` reads its
//! addresses from the context hints `public_address` and `private_address`. A link
//! is one `swanctl` connection on each strongSwan side. The other side may be a
//! native cloud gateway (an endpoint another fabric prepared): its policy is read
//! from the endpoint's attributes (see [`policy_from_attributes`]), and this side
//! initiates (EC2 requires the customer gateway to).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use rand::distr::{Alphanumeric, SampleString as _};
use secrecy::SecretString;

use intercloud_core::{
    Bootstrap, Error, FabricKind, LinkId, LinkSpec, LinkState, Member, Result, SiteContext,
    SiteEndpoint, SiteId, VpnFabric,
};

use super::swanctl::{IkeVersion, IpsecPolicy, SiteToSite};

/// Endpoint attribute naming who made the endpoint; this fabric sets `strongswan`.
pub const ATTR_GATEWAY: &str = "ipsec_gateway";
/// Endpoint attributes a native gateway may set: strongSwan-syntax proposals.
pub const ATTR_IKE_PROPOSALS: &str = "ike_proposals";
/// See [`ATTR_IKE_PROPOSALS`].
pub const ATTR_ESP_PROPOSALS: &str = "esp_proposals";
/// CloudStack-syntax policies (`aes128-sha1;modp1536`), converted when no
/// strongSwan-syntax proposal is given.
pub const ATTR_IKE_POLICY: &str = "ike_policy";
/// See [`ATTR_IKE_POLICY`].
pub const ATTR_ESP_POLICY: &str = "esp_policy";
/// `ike`, `ikev1` or `ikev2`.
pub const ATTR_IKE_VERSION: &str = "ike_version";
/// Lifetimes in seconds.
pub const ATTR_IKE_LIFETIME: &str = "ike_lifetime";
/// See [`ATTR_IKE_LIFETIME`].
pub const ATTR_ESP_LIFETIME: &str = "esp_lifetime";

/// The policy a native gateway announces in its endpoint attributes: strongSwan
/// proposals (`ike_proposals`, `esp_proposals`) or CloudStack policies
/// (`ike_policy`, `esp_policy`), with optional `ike_version`, `ike_lifetime`,
/// `esp_lifetime`. Without any, [`IpsecPolicy::strongswan_default`].
///
/// # Errors
/// `Invalid` naming the attribute that is not understood.
pub fn policy_from_attributes(attrs: &BTreeMap<String, String>) -> Result<IpsecPolicy> {
    let num = |k: &str, default: u32| -> Result<u32> {
        attrs.get(k).map_or(Ok(default), |v| {
            v.trim().parse().map_err(|_| {
                Error::invalid(format!("endpoint attribute {k} = {v:?} is not seconds"))
            })
        })
    };
    let mut p = IpsecPolicy::strongswan_default();
    if let (Some(ike), Some(esp)) = (attrs.get(ATTR_IKE_POLICY), attrs.get(ATTR_ESP_POLICY)) {
        p = IpsecPolicy::cloudstack(
            ike,
            esp,
            p.ike_lifetime_s,
            p.esp_lifetime_s,
            attrs.get(ATTR_IKE_VERSION).map(String::as_str),
            true,
        )?;
    }
    if let Some(v) = attrs.get(ATTR_IKE_PROPOSALS) {
        p.ike = v.clone();
    }
    if let Some(v) = attrs.get(ATTR_ESP_PROPOSALS) {
        p.esp = v.clone();
    }
    if let Some(v) = attrs.get(ATTR_IKE_VERSION) {
        p.version = IkeVersion::parse(v)?;
    }
    p.ike_lifetime_s = num(ATTR_IKE_LIFETIME, p.ike_lifetime_s)?;
    p.esp_lifetime_s = num(ATTR_ESP_LIFETIME, p.esp_lifetime_s)?;
    Ok(p)
}

/// strongSwan's "any local address" for `local_addrs`.
const ANY_ADDRESS: &str = "%any";

#[derive(Debug, Clone)]
struct Gateway {
    public: Option<String>,
    private: Option<String>,
    networks: Vec<String>,
}

#[derive(Debug, Default)]
struct State {
    gateways: BTreeMap<SiteId, Gateway>,
    /// Connections of each strongSwan site, by remote site.
    conns: BTreeMap<SiteId, BTreeMap<SiteId, SiteToSite>>,
}

/// strongSwan site-to-site gateways for one cluster.
#[derive(Debug, Default)]
pub struct StrongSwanFabric {
    state: Mutex<State>,
}

impl StrongSwanFabric {
    /// An empty fabric.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connections of `site`'s gateway, ordered by remote site.
    pub fn connections(&self, site: &SiteId) -> Vec<SiteToSite> {
        self.lock()
            .conns
            .get(site)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The boot configuration of `site`'s gateway VM (its `swanctl.conf` holds every
    /// link made so far; re-render and `swanctl --load-all` after new links).
    ///
    /// # Errors
    /// `Config` when the site was not prepared; `Invalid` from rendering.
    pub fn gateway_bootstrap(&self, site: &SiteId) -> Result<Bootstrap> {
        if !self.lock().gateways.contains_key(site) {
            return Err(
                Error::config(format!("site {site} has no strongSwan gateway")).with_site(site),
            );
        }
        super::gateway_bootstrap(&self.connections(site))
    }
}

fn pair(a: &SiteId, b: &SiteId) -> (SiteId, SiteId) {
    if a <= b {
        (a.clone(), b.clone())
    } else {
        (b.clone(), a.clone())
    }
}

fn link_id(a: &SiteId, b: &SiteId) -> LinkId {
    let (a, b) = pair(a, b);
    LinkId(format!("ipsec:{a}~{b}"))
}

fn parse_link(link: &LinkId) -> Result<(SiteId, SiteId)> {
    link.0
        .strip_prefix("ipsec:")
        .and_then(|r| r.split_once('~'))
        .map(|(a, b)| (SiteId::from(a), SiteId::from(b)))
        .ok_or_else(|| Error::invalid(format!("{link} is not a strongSwan link id")))
}

fn is_ours(ep: &SiteEndpoint) -> bool {
    ep.attributes.get(ATTR_GATEWAY).map(String::as_str) == Some("strongswan")
}

/// A fresh 40-character alphanumeric PSK (about 238 bits); no quote or newline, so
/// every cloud API accepts it (CloudStack forbids `"` and newlines).
pub fn generate_psk() -> SecretString {
    SecretString::from(Alphanumeric.sample_string(&mut rand::rng(), 40))
}

#[async_trait]
impl VpnFabric for StrongSwanFabric {
    fn kind(&self) -> FabricKind {
        FabricKind::Ipsec
    }

    async fn prepare_site(&self, ctx: &SiteContext) -> Result<SiteEndpoint> {
        let public = ctx.hints.get("public_address").cloned();
        let private = ctx.hints.get("private_address").cloned();
        let mut networks = vec![ctx.overlay_subnet.clone()];
        networks.extend(ctx.local_cidrs.iter().cloned());
        networks.retain(|n| !n.is_empty());
        if networks.is_empty() {
            return Err(Error::config(
                "a strongSwan gateway needs the site's overlay subnet or networks",
            )
            .with_site(&ctx.site));
        }
        self.lock().gateways.insert(
            ctx.site.clone(),
            Gateway {
                public: public.clone(),
                private,
                networks,
            },
        );
        let p = IpsecPolicy::strongswan_default();
        let mut ep = SiteEndpoint {
            site: ctx.site.clone(),
            kind: FabricKind::Ipsec,
            public_address: public,
            overlay_subnet: ctx.overlay_subnet.clone(),
            resources: Default::default(),
            attributes: Default::default(),
        };
        ep.attributes
            .insert(ATTR_GATEWAY.into(), "strongswan".into());
        ep.attributes.insert(ATTR_IKE_PROPOSALS.into(), p.ike);
        ep.attributes.insert(ATTR_ESP_PROPOSALS.into(), p.esp);
        ep.attributes
            .insert(ATTR_IKE_VERSION.into(), "ikev2".into());
        Ok(ep)
    }

    async fn connect(&self, a: &SiteEndpoint, b: &SiteEndpoint, link: &LinkSpec) -> Result<LinkId> {
        if !is_ours(a) && !is_ours(b) {
            return Err(Error::unsupported(format!(
                "neither {} nor {} has a strongSwan gateway; native-to-native links belong to the cloud's fabric",
                a.site, b.site
            )));
        }
        let psk = link.psk.clone().unwrap_or_else(generate_psk);
        let mut st = self.lock();
        for (me, other) in [(a, b), (b, a)] {
            if !is_ours(me) {
                continue;
            }
            let gw = st.gateways.get(&me.site).cloned().ok_or_else(|| {
                Error::config(format!("site {} was not prepared for strongSwan", me.site))
                    .with_site(&me.site)
            })?;
            let remote = other.public_address.clone().ok_or_else(|| {
                Error::config(format!(
                    "the IPsec gateway of site {} has no public address yet",
                    other.site
                ))
                .with_site(&other.site)
            })?;
            if gw.private.is_none() && gw.public.is_none() {
                return Err(Error::config(format!(
                    "the strongSwan gateway of site {} has no address yet (hint public_address)",
                    me.site
                ))
                .with_site(&me.site));
            }
            // Bind the private address when known; else any local address: behind a
            // cloud's NAT the VM does not own its public address, which stays its
            // IKE identity.
            let local_addr = gw.private.clone().unwrap_or_else(|| ANY_ADDRESS.into());
            let policy = if is_ours(other) {
                IpsecPolicy::strongswan_default()
            } else {
                policy_from_attributes(&other.attributes).map_err(|e| e.with_site(&other.site))?
            };
            let remote_ts = if is_ours(other) {
                st.gateways
                    .get(&other.site)
                    .map(|g| g.networks.clone())
                    .unwrap_or_else(|| vec![other.overlay_subnet.clone()])
            } else {
                vec![other.overlay_subnet.clone()]
            };
            let conn = SiteToSite {
                name: format!("ic-{}-{}", me.site, other.site),
                local_addr,
                remote_addr: remote,
                local_id: gw.public.clone(),
                remote_id: None,
                local_ts: gw.networks.clone(),
                remote_ts,
                policy,
                // a native peer waits for us; between two strongSwan gateways the
                // lower site id initiates
                initiate: !is_ours(other) || me.site < other.site,
                psk: psk.clone(),
            };
            conn.validate().map_err(|e| e.with_site(&me.site))?;
            st.conns
                .entry(me.site.clone())
                .or_default()
                .insert(other.site.clone(), conn);
        }
        Ok(link_id(&a.site, &b.site))
    }

    fn member_bootstrap(&self, member: &Member) -> Result<Bootstrap> {
        // Members reach remote sites through their gateway: a route per remote network.
        let st = self.lock();
        let mut boot = Bootstrap::default();
        let Some(gw) = st.gateways.get(&member.site) else {
            return Ok(boot);
        };
        let Some(via) = gw.private.as_ref() else {
            return Ok(boot);
        };
        for conn in st
            .conns
            .get(&member.site)
            .into_iter()
            .flat_map(|m| m.values())
        {
            for net in &conn.remote_ts {
                boot.commands
                    .push(format!("ip route replace {net} via {via}"));
            }
        }
        Ok(boot)
    }

    async fn link_status(&self, link: &LinkId) -> Result<LinkState> {
        let (a, b) = parse_link(link)?;
        let st = self.lock();
        let has = |x: &SiteId, y: &SiteId| st.conns.get(x).is_some_and(|m| m.contains_key(y));
        if !has(&a, &b) && !has(&b, &a) {
            return Err(Error::not_found(format!("no link {link}")));
        }
        // Configuration-level: SAs are observed on the gateways (`swanctl --list-sas`).
        Ok(LinkState::Up)
    }

    async fn disconnect(&self, link: &LinkId) -> Result<()> {
        let (a, b) = parse_link(link)?;
        let mut st = self.lock();
        for (x, y) in [(&a, &b), (&b, &a)] {
            if let Some(m) = st.conns.get_mut(x) {
                m.remove(y);
            }
        }
        Ok(())
    }

    async fn release_site(&self, endpoint: &SiteEndpoint) -> Result<()> {
        let mut st = self.lock();
        st.gateways.remove(&endpoint.site);
        st.conns.remove(&endpoint.site);
        for m in st.conns.values_mut() {
            m.remove(&endpoint.site);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn ctx(site: &str, public: &str, subnet: &str) -> SiteContext {
        SiteContext {
            site: site.into(),
            cluster: "c".into(),
            overlay_subnet: subnet.into(),
            local_cidrs: vec![],
            hints: [
                ("public_address".to_owned(), public.to_owned()),
                ("private_address".to_owned(), format!("{public}0")),
            ]
            .into_iter()
            .collect(),
        }
    }

    fn native(site: &str, attrs: &[(&str, &str)]) -> SiteEndpoint {
        SiteEndpoint {
            site: site.into(),
            kind: FabricKind::Ipsec,
            public_address: Some("198.51.100.7".into()),
            overlay_subnet: "10.77.1.0/24".into(),
            resources: Default::default(),
            attributes: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[tokio::test]
    async fn a_gateway_behind_nat_binds_any_address_and_identifies_as_its_public_one() {
        let f = StrongSwanFabric::new();
        let mut c = ctx("a", "192.0.2.1", "10.77.0.0/24");
        c.hints.remove("private_address");
        let a = f.prepare_site(&c).await.unwrap();
        let ec2 = native("ec2", &[]);
        f.connect(&a, &ec2, &LinkSpec::default()).await.unwrap();
        let conn = &f.connections(&"a".into())[0];
        assert_eq!(
            conn.local_addr, "%any",
            "the VM does not own its public address"
        );
        assert_eq!(conn.local_id.as_deref(), Some("192.0.2.1"));
        let text = &f.gateway_bootstrap(&"a".into()).unwrap().files[0].content;
        assert!(text.contains("local_addrs = %any"), "{text}");
        assert!(text.contains("id = 192.0.2.1"), "{text}");
    }

    #[tokio::test]
    async fn strongswan_to_cloudstack_native_gateway() {
        let f = StrongSwanFabric::new();
        let a = f
            .prepare_site(&ctx("a", "192.0.2.1", "10.77.0.0/24"))
            .await
            .unwrap();
        let cs = native(
            "cs",
            &[
                (ATTR_IKE_POLICY, "aes128-sha1;modp1536"),
                (ATTR_ESP_POLICY, "aes128-sha1"),
            ],
        );
        let spec = LinkSpec {
            bandwidth_mbps: None,
            psk: Some(SecretString::from("shared-psk-0123")),
        };
        let link = f.connect(&cs, &a, &spec).await.unwrap();
        assert_eq!(link.0, "ipsec:a~cs");
        let conns = f.connections(&"a".into());
        assert_eq!(conns.len(), 1);
        let c = &conns[0];
        assert_eq!(c.policy.ike, "aes128-sha1-modp1536");
        assert_eq!(c.remote_addr, "198.51.100.7");
        assert_eq!(c.local_addr, "192.0.2.10", "binds the private address");
        assert_eq!(
            c.local_id.as_deref(),
            Some("192.0.2.1"),
            "identifies as public"
        );
        assert!(c.initiate, "the customer side initiates");
        assert_eq!(c.psk.expose_secret(), "shared-psk-0123");
        let boot = f.gateway_bootstrap(&"a".into()).unwrap();
        assert!(boot.files[0].content.contains("remote_ts = 10.77.1.0/24"));
        let m = f
            .member_bootstrap(&Member {
                name: "w".into(),
                role: "worker".into(),
                site: "a".into(),
                overlay_ip: "10.77.0.10".into(),
            })
            .unwrap();
        assert_eq!(m.commands, ["ip route replace 10.77.1.0/24 via 192.0.2.10"]);
        assert_eq!(f.link_status(&link).await.unwrap(), LinkState::Up);
        f.disconnect(&link).await.unwrap();
        assert!(f.link_status(&link).await.is_err());
        f.release_site(&a).await.unwrap();
        assert!(f.gateway_bootstrap(&"a".into()).is_err());
    }

    #[tokio::test]
    async fn two_strongswan_gateways_share_a_generated_psk_and_one_initiates() {
        let f = StrongSwanFabric::new();
        let a = f
            .prepare_site(&ctx("a", "192.0.2.1", "10.77.0.0/24"))
            .await
            .unwrap();
        let b = f
            .prepare_site(&ctx("b", "192.0.2.2", "10.77.1.0/24"))
            .await
            .unwrap();
        f.connect(&b, &a, &LinkSpec::default()).await.unwrap();
        let ca = &f.connections(&"a".into())[0];
        let cb = &f.connections(&"b".into())[0];
        assert_eq!(ca.psk.expose_secret(), cb.psk.expose_secret());
        assert_eq!(ca.psk.expose_secret().len(), 40);
        assert!(ca.initiate && !cb.initiate);
        assert_eq!(ca.remote_ts, ["10.77.1.0/24"]);
        assert!(!format!("{:?}", f.connections(&"a".into())).contains(ca.psk.expose_secret()));
    }

    #[tokio::test]
    async fn native_peer_without_address_or_with_bad_policy_is_a_clear_error() {
        let f = StrongSwanFabric::new();
        let a = f
            .prepare_site(&ctx("a", "192.0.2.1", "10.77.0.0/24"))
            .await
            .unwrap();
        let mut n = native("ec2", &[]);
        n.public_address = None;
        let e = f.connect(&a, &n, &LinkSpec::default()).await.unwrap_err();
        assert!(e.to_string().contains("ec2 has no public address"), "{e}");
        let n = native(
            "cs",
            &[
                (ATTR_IKE_POLICY, "rot13-md5"),
                (ATTR_ESP_POLICY, "aes128-sha1"),
            ],
        );
        let e = f.connect(&a, &n, &LinkSpec::default()).await.unwrap_err();
        assert_eq!(e.site().map(|s| s.to_string()).as_deref(), Some("cs"));
        assert!(e.to_string().contains("rot13"), "{e}");
        let e = f
            .connect(&native("x", &[]), &native("y", &[]), &LinkSpec::default())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), intercloud_core::ErrorKind::Unsupported);
    }
}
