//! [`CompositeFabric`]: per site pair, the one place that decides how two sites are
//! linked ([`choose`]), and a [`VpnFabric`] that delegates to the fabrics chosen.
//!
//! | wish \ native gateways | both             | one                     | none            |
//! |------------------------|------------------|-------------------------|-----------------|
//! | `auto`                 | native ⇄ native  | native ⇄ strongSwan VM  | WireGuard       |
//! | `ipsec`                | native ⇄ native  | native ⇄ strongSwan VM  | strongSwan ⇄ strongSwan |
//! | `wireguard`            | WireGuard        | WireGuard               | WireGuard       |
//! | `l2tp`                 | L2TP client on b → a's remote-access VPN | L2TP client → the native site | refused |
//!
//! `auto` prefers what costs no gateway VM (a native gateway is managed by the
//! cloud); WireGuard where no site has one (faster and simpler than IPsec).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use intercloud_core::{
    Bootstrap, Capabilities, Error, FabricChoice, FabricKind, LinkId, LinkSpec, LinkState, Member,
    Result, SiteContext, SiteEndpoint, SiteId, VpnFabric,
};

use crate::ipsec::{generate_psk, StrongSwanFabric};
use crate::wireguard::WireGuardFabric;

/// Which site of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The first site passed to [`choose`].
    A,
    /// The second site.
    B,
}

/// How one pair of sites is linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairFabric {
    /// Both clouds' own site-to-site VPN gateways.
    NativeIpsec,
    /// The `native` site's cloud gateway and a strongSwan gateway VM on the other.
    NativeToStrongSwan {
        /// The site with the native gateway.
        native: Side,
    },
    /// strongSwan gateway VMs on both sites.
    StrongSwan,
    /// WireGuard gateways on both sites.
    WireGuard,
    /// An L2TP/IPsec client on one site dialling the `server` site's native
    /// remote-access VPN (the seed's path).
    L2tp {
        /// The site whose cloud runs the remote-access VPN.
        server: Side,
    },
}

impl PairFabric {
    /// The core's name for this kind of link.
    pub fn kind(self) -> FabricKind {
        match self {
            Self::NativeIpsec | Self::NativeToStrongSwan { .. } | Self::StrongSwan => {
                FabricKind::Ipsec
            }
            Self::WireGuard => FabricKind::WireGuard,
            Self::L2tp { .. } => FabricKind::L2tp,
        }
    }
}

/// Chooses how sites with capabilities `a` and `b` are linked for the request's wish
/// (see the module table). Pure; the only place this decision is made.
///
/// # Errors
/// `Unsupported` for L2TP when neither site has a native VPN, saying what to use.
pub fn choose(a: &Capabilities, b: &Capabilities, wish: FabricChoice) -> Result<PairFabric> {
    let native = match (a.native_vpn, b.native_vpn) {
        (true, true) => Some(None),
        (true, false) => Some(Some(Side::A)),
        (false, true) => Some(Some(Side::B)),
        (false, false) => None,
    };
    Ok(match (wish, native) {
        (FabricChoice::Wireguard, _) | (FabricChoice::Auto, None) => PairFabric::WireGuard,
        (FabricChoice::Auto | FabricChoice::Ipsec, Some(None)) => PairFabric::NativeIpsec,
        (FabricChoice::Auto | FabricChoice::Ipsec, Some(Some(side))) => {
            PairFabric::NativeToStrongSwan { native: side }
        }
        (FabricChoice::Ipsec, None) => PairFabric::StrongSwan,
        (FabricChoice::L2tp, Some(None)) => PairFabric::L2tp { server: Side::A },
        (FabricChoice::L2tp, Some(Some(side))) => PairFabric::L2tp { server: side },
        (FabricChoice::L2tp, None) => {
            return Err(Error::unsupported(
                "L2TP/IPsec needs a site whose cloud runs a remote-access VPN (CloudStack); \
                 neither site has one: ask for `wireguard` or `ipsec`, or `auto`",
            ))
        }
    })
}

/// Who holds an inner endpoint or link.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Holder {
    Native(SiteId),
    StrongSwan,
    WireGuard,
}

#[derive(Debug)]
struct SiteFabrics {
    caps: Capabilities,
    native: Option<Arc<dyn VpnFabric>>,
}

#[derive(Debug, Default)]
struct State {
    /// Inner endpoints of each site, by holder.
    endpoints: BTreeMap<SiteId, BTreeMap<Holder, SiteEndpoint>>,
    /// Inner links of each composite link.
    links: BTreeMap<LinkId, Vec<(Holder, LinkId)>>,
}

/// A fabric choosing, per site pair, native IPsec, native-to-strongSwan, strongSwan
/// or WireGuard, and delegating to those fabrics.
///
/// Every site is registered (capabilities and its cloud's native fabric, if any)
/// before `prepare_site`, which prepares on each inner fabric the site's pairs need.
/// A site whose capabilities claim `native_vpn` but that was given no native fabric
/// counts as having none.
#[derive(Debug)]
pub struct CompositeFabric {
    wish: FabricChoice,
    sites: BTreeMap<SiteId, SiteFabrics>,
    wireguard: Arc<WireGuardFabric>,
    strongswan: Arc<StrongSwanFabric>,
    state: Mutex<State>,
}

impl CompositeFabric {
    /// A composite for the request's `wish` over the cluster's WireGuard and
    /// strongSwan fabrics.
    pub fn new(
        wish: FabricChoice,
        wireguard: Arc<WireGuardFabric>,
        strongswan: Arc<StrongSwanFabric>,
    ) -> Self {
        Self {
            wish,
            sites: BTreeMap::new(),
            wireguard,
            strongswan,
            state: Mutex::new(State::default()),
        }
    }

    /// Registers `site` with its capabilities and its cloud's native VPN fabric.
    pub fn with_site(
        mut self,
        site: impl Into<SiteId>,
        caps: Capabilities,
        native: Option<Arc<dyn VpnFabric>>,
    ) -> Self {
        self.sites.insert(site.into(), SiteFabrics { caps, native });
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn caps(&self, site: &SiteId) -> Result<Capabilities> {
        let s = self.sites.get(site).ok_or_else(|| {
            Error::config(format!(
                "site {site} is not registered with the composite fabric"
            ))
            .with_site(site)
        })?;
        let mut caps = s.caps;
        caps.native_vpn &= s.native.is_some();
        Ok(caps)
    }

    /// How sites `a` and `b` are linked.
    ///
    /// # Errors
    /// `Config` for an unregistered site; errors of [`choose`].
    pub fn plan(&self, a: &SiteId, b: &SiteId) -> Result<PairFabric> {
        choose(&self.caps(a)?, &self.caps(b)?, self.wish)
    }

    fn native(&self, site: &SiteId) -> Result<Arc<dyn VpnFabric>> {
        self.sites
            .get(site)
            .and_then(|s| s.native.clone())
            .ok_or_else(|| {
                Error::config(format!("site {site} has no native VPN fabric")).with_site(site)
            })
    }

    fn fabric(&self, h: &Holder) -> Result<Arc<dyn VpnFabric>> {
        Ok(match h {
            Holder::Native(site) => self.native(site)?,
            Holder::StrongSwan => self.strongswan.clone(),
            Holder::WireGuard => self.wireguard.clone(),
        })
    }

    /// The inner fabrics `site` needs for its pairs with every other registered site.
    fn holders(&self, site: &SiteId) -> Result<BTreeSet<Holder>> {
        let mut need = BTreeSet::new();
        for other in self.sites.keys().filter(|o| *o != site) {
            match self.plan(site, other) {
                Ok(PairFabric::NativeIpsec) => {
                    need.insert(Holder::Native(site.clone()));
                }
                Ok(PairFabric::NativeToStrongSwan { native: Side::A }) => {
                    need.insert(Holder::Native(site.clone()));
                }
                Ok(PairFabric::NativeToStrongSwan { native: Side::B })
                | Ok(PairFabric::StrongSwan) => {
                    need.insert(Holder::StrongSwan);
                }
                Ok(PairFabric::WireGuard) => {
                    need.insert(Holder::WireGuard);
                }
                Ok(PairFabric::L2tp { .. }) | Err(_) => {}
            }
        }
        Ok(need)
    }

    fn endpoint(&self, site: &SiteId, h: &Holder) -> Result<SiteEndpoint> {
        self.lock()
            .endpoints
            .get(site)
            .and_then(|m| m.get(h))
            .cloned()
            .ok_or_else(|| {
                Error::config(format!("site {site} was not prepared for this link")).with_site(site)
            })
    }
}

fn composite_link(a: &SiteId, b: &SiteId) -> LinkId {
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    LinkId(format!("composite:{a}~{b}"))
}

fn holder_name(h: &Holder) -> &'static str {
    match h {
        Holder::Native(_) => "native",
        Holder::StrongSwan => "strongswan",
        Holder::WireGuard => "wireguard",
    }
}

#[async_trait]
impl VpnFabric for CompositeFabric {
    fn kind(&self) -> FabricKind {
        FabricKind::Composite
    }

    async fn prepare_site(&self, ctx: &SiteContext) -> Result<SiteEndpoint> {
        let holders = self.holders(&ctx.site)?;
        let mut ep = SiteEndpoint {
            site: ctx.site.clone(),
            kind: FabricKind::Composite,
            public_address: None,
            overlay_subnet: ctx.overlay_subnet.clone(),
            resources: Default::default(),
            attributes: Default::default(),
        };
        for h in holders {
            let inner = self.fabric(&h)?.prepare_site(ctx).await?;
            let name = holder_name(&h);
            for (k, v) in &inner.resources {
                ep.resources.insert(format!("{name}.{k}"), v.clone());
            }
            for (k, v) in &inner.attributes {
                ep.attributes.insert(format!("{name}.{k}"), v.clone());
            }
            if ep.public_address.is_none() {
                ep.public_address.clone_from(&inner.public_address);
            }
            self.lock()
                .endpoints
                .entry(ctx.site.clone())
                .or_default()
                .insert(h, inner);
        }
        Ok(ep)
    }

    async fn connect(&self, a: &SiteEndpoint, b: &SiteEndpoint, link: &LinkSpec) -> Result<LinkId> {
        let id = composite_link(&a.site, &b.site);
        if self.lock().links.contains_key(&id) {
            return Ok(id);
        }
        let (sa, sb) = (&a.site, &b.site);
        let spec = LinkSpec {
            bandwidth_mbps: link.bandwidth_mbps,
            psk: Some(link.psk.clone().unwrap_or_else(generate_psk)),
        };
        // (fabric holder, this side's endpoint, other side's endpoint) per inner link
        let mut steps: Vec<(Holder, SiteEndpoint, SiteEndpoint)> = Vec::new();
        match self.plan(sa, sb)? {
            PairFabric::NativeIpsec => {
                let (na, nb) = (Holder::Native(sa.clone()), Holder::Native(sb.clone()));
                let (ea, eb) = (self.endpoint(sa, &na)?, self.endpoint(sb, &nb)?);
                steps.push((na, ea.clone(), eb.clone()));
                steps.push((nb, eb, ea));
            }
            PairFabric::NativeToStrongSwan { native } => {
                let (ns, ss) = match native {
                    Side::A => (sa, sb),
                    Side::B => (sb, sa),
                };
                let nh = Holder::Native(ns.clone());
                let (en, es) = (self.endpoint(ns, &nh)?, self.endpoint(ss, &Holder::StrongSwan)?);
                steps.push((nh, en.clone(), es.clone()));
                steps.push((Holder::StrongSwan, es, en));
            }
            PairFabric::StrongSwan => steps.push((
                Holder::StrongSwan,
                self.endpoint(sa, &Holder::StrongSwan)?,
                self.endpoint(sb, &Holder::StrongSwan)?,
            )),
            PairFabric::WireGuard => steps.push((
                Holder::WireGuard,
                self.endpoint(sa, &Holder::WireGuard)?,
                self.endpoint(sb, &Holder::WireGuard)?,
            )),
            PairFabric::L2tp { .. } => {
                return Err(Error::unsupported(format!(
                    "the composite fabric does not drive L2TP/IPsec between {sa} and {sb} yet: \
                     render the client with intercloud_vpn::l2tp::L2tpClient from the remote-access \
                     VPN the CloudStack backend created, or ask for `auto`"
                )))
            }
        }
        let mut inner = Vec::new();
        for (h, x, y) in steps {
            let made = self.fabric(&h)?.connect(&x, &y, &spec).await;
            match made {
                Ok(l) => inner.push((h, l)),
                Err(e) => {
                    // undo the half made so far: nothing half-linked stays behind
                    for (h, l) in inner {
                        if let Ok(f) = self.fabric(&h) {
                            let _ = f.disconnect(&l).await;
                        }
                    }
                    return Err(e);
                }
            }
        }
        self.lock().links.insert(id.clone(), inner);
        Ok(id)
    }

    fn member_bootstrap(&self, member: &Member) -> Result<Bootstrap> {
        let holders: Vec<Holder> = self
            .lock()
            .endpoints
            .get(&member.site)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let mut boot = Bootstrap::default();
        for h in holders {
            let part = self.fabric(&h)?.member_bootstrap(member)?;
            for p in part.packages {
                if !boot.packages.contains(&p) {
                    boot.packages.push(p);
                }
            }
            boot.files.extend(part.files);
            boot.commands.extend(part.commands);
        }
        Ok(boot)
    }

    async fn link_status(&self, link: &LinkId) -> Result<LinkState> {
        let inner = self
            .lock()
            .links
            .get(link)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("no link {link}")))?;
        let mut worst = LinkState::Up;
        for (h, l) in inner {
            let s = self.fabric(&h)?.link_status(&l).await?;
            let rank = |s: &LinkState| match s {
                LinkState::Up => 0,
                LinkState::Pending => 1,
                LinkState::Down => 2,
                LinkState::Failed(_) => 3,
            };
            if rank(&s) > rank(&worst) {
                worst = s;
            }
        }
        Ok(worst)
    }

    async fn disconnect(&self, link: &LinkId) -> Result<()> {
        let inner = self.lock().links.get(link).cloned().unwrap_or_default();
        for (h, l) in inner {
            self.fabric(&h)?.disconnect(&l).await?;
        }
        self.lock().links.remove(link);
        Ok(())
    }

    async fn release_site(&self, endpoint: &SiteEndpoint) -> Result<()> {
        let inner = self
            .lock()
            .endpoints
            .get(&endpoint.site)
            .cloned()
            .unwrap_or_default();
        for (h, ep) in inner {
            self.fabric(&h)?.release_site(&ep).await?;
            if let Some(m) = self.lock().endpoints.get_mut(&endpoint.site) {
                m.remove(&h);
            }
        }
        self.lock().endpoints.remove(&endpoint.site);
        Ok(())
    }
}
