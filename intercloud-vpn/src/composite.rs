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
//!
//! For `l2tp`, a site's "native" fabric is its cloud's remote-access VPN (CloudStack's
//! `VpnMode::RemoteAccess`): `connect` adds the VPN user there, reads the server
//! address, pre-shared key and user back through [`VpnFabric::peer_access`], and
//! renders the client site's gateway VM an [`L2tpClient`] (xl2tpd, pppd, strongSwan;
//! secrets only inside mode-0600 files), served by
//! [`CompositeFabric::gateway_bootstrap`].
//!
//! Every inner endpoint and link is written into the composite endpoint and link id
//! (see `composite_ids`), so teardown works from the deployer's journal in a later
//! process.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use intercloud_core::{
    Bootstrap, Capabilities, Error, FabricChoice, FabricKind, LinkId, LinkSpec, LinkState, Member,
    Result, SiteContext, SiteEndpoint, SiteId, VpnFabric,
};

use crate::composite_ids::{self, merge_endpoint, split_endpoint, Holder, ATTR_HOLDERS};
use crate::ipsec::{generate_psk, StrongSwanFabric};
use crate::l2tp::L2tpClient;
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

#[derive(Debug)]
struct SiteFabrics {
    caps: Capabilities,
    native: Option<Arc<dyn VpnFabric>>,
    /// The site's own overlay subnet, replacing the cluster-wide one the deployer
    /// passes (IPsec traffic selectors must not overlap).
    subnet: Option<String>,
    /// Hints added to the deployer's (which win): the gateway VM's addresses.
    hints: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct State {
    /// Inner endpoints of each site, by holder.
    endpoints: BTreeMap<SiteId, BTreeMap<Holder, SiteEndpoint>>,
    /// L2TP/IPsec clients of each client site, by server site.
    l2tp: BTreeMap<SiteId, BTreeMap<SiteId, L2tpClient>>,
}

/// A fabric choosing, per site pair, native IPsec, native-to-strongSwan, strongSwan,
/// WireGuard or L2TP/IPsec, and delegating to those fabrics.
///
/// Every site is registered (capabilities and its cloud's native fabric, if any)
/// before `prepare_site`, which prepares on each inner fabric the site's pairs need.
/// A site whose capabilities claim `native_vpn` but that was given no native fabric
/// counts as having none. For `l2tp`, give CloudStack sites their remote-access
/// fabric as the native one.
#[derive(Debug)]
pub struct CompositeFabric {
    wish: FabricChoice,
    sites: BTreeMap<SiteId, SiteFabrics>,
    wireguard: Arc<WireGuardFabric>,
    strongswan: Arc<StrongSwanFabric>,
    state: Mutex<State>,
}

/// A pre-shared key every cloud accepts: 40 letters and digits, not starting with
/// `0` (EC2's rule).
fn link_psk() -> SecretString {
    loop {
        let k = generate_psk();
        if !k.expose_secret().starts_with('0') {
            return k;
        }
    }
}

/// An L2TP connection name for the server `site` (letters, digits, `-`, `_`).
fn l2tp_name(site: &SiteId) -> String {
    let clean: String = site
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    format!("ic-{clean}")
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
        self.sites.insert(
            site.into(),
            SiteFabrics {
                caps,
                native,
                subnet: None,
                hints: BTreeMap::new(),
            },
        );
        self
    }

    /// Gives a registered `site` its own overlay `subnet` (used instead of the
    /// context's) and `hints` (the context's own hints win): `public_address` and
    /// `private_address` of its gateway VM, `vpc_id`, `public_ip_id`.
    ///
    /// # Errors
    /// `Config` for a site not registered with [`CompositeFabric::with_site`].
    pub fn with_site_context(
        mut self,
        site: &SiteId,
        subnet: Option<String>,
        hints: BTreeMap<String, String>,
    ) -> Result<Self> {
        let s = self.sites.get_mut(site).ok_or_else(|| unregistered(site))?;
        s.subnet = subnet;
        s.hints = hints;
        Ok(self)
    }

    /// The wish this composite serves.
    pub fn wish(&self) -> FabricChoice {
        self.wish
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn caps(&self, site: &SiteId) -> Result<Capabilities> {
        let s = self.sites.get(site).ok_or_else(|| unregistered(site))?;
        let mut caps = s.caps;
        caps.native_vpn &= s.native.is_some();
        Ok(caps)
    }

    /// How sites `a` and `b` are linked.
    ///
    /// # Errors
    /// `Config` for an unregistered site; errors of [`choose`], naming both sites.
    ///
    /// The decision does not depend on the order of `a` and `b`: where [`choose`]
    /// picks by position (two remote-access servers for `l2tp`: the first serves),
    /// the site with the lower id comes first.
    pub fn plan(&self, a: &SiteId, b: &SiteId) -> Result<PairFabric> {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let chosen = choose(&self.caps(lo)?, &self.caps(hi)?, self.wish).map_err(|e| {
            Error::new(e.kind(), format!("sites {lo} and {hi}: {}", e.message())).with_site(lo)
        })?;
        if a <= b {
            return Ok(chosen);
        }
        let flip = |s: Side| match s {
            Side::A => Side::B,
            Side::B => Side::A,
        };
        Ok(match chosen {
            PairFabric::NativeToStrongSwan { native } => PairFabric::NativeToStrongSwan {
                native: flip(native),
            },
            PairFabric::L2tp { server } => PairFabric::L2tp {
                server: flip(server),
            },
            other => other,
        })
    }

    /// Checks that every pair of registered sites can be linked, before anything is
    /// created.
    ///
    /// # Errors
    /// The first pair's error from [`CompositeFabric::plan`].
    pub fn validate(&self) -> Result<()> {
        let sites: Vec<&SiteId> = self.sites.keys().collect();
        for (i, a) in sites.iter().enumerate() {
            for b in &sites[i + 1..] {
                self.plan(a, b)?;
            }
        }
        Ok(())
    }

    /// The sites whose pairs need a gateway VM there (strongSwan, WireGuard or an
    /// L2TP client), which must have a reserved public address.
    pub fn gateway_vm_sites(&self) -> BTreeSet<SiteId> {
        self.sites
            .keys()
            .filter(|s| {
                self.holders(s).is_ok_and(|h| {
                    h.iter()
                        .any(|h| matches!(h, Holder::StrongSwan | Holder::WireGuard))
                })
            })
            .cloned()
            .collect()
    }

    fn native(&self, site: &SiteId) -> Result<Arc<dyn VpnFabric>> {
        self.sites
            .get(site)
            .and_then(|s| s.native.clone())
            .ok_or_else(|| {
                Error::config(format!("site {site} has no native VPN fabric")).with_site(site)
            })
    }

    fn native_kind(&self, site: &SiteId) -> FabricKind {
        self.native(site).map_or(FabricKind::Ipsec, |f| f.kind())
    }

    fn fabric(&self, h: &Holder) -> Result<Arc<dyn VpnFabric>> {
        Ok(match h {
            Holder::Native(site) => self.native(site)?,
            Holder::StrongSwan => self.strongswan.clone(),
            Holder::WireGuard => self.wireguard.clone(),
            Holder::L2tpClient => {
                return Err(Error::config(
                    "an L2TP client has no fabric of its own (it is rendered by the composite)",
                ))
            }
        })
    }

    /// The inner fabrics `site` needs for its pairs with every other registered site.
    fn holders(&self, site: &SiteId) -> Result<BTreeSet<Holder>> {
        let mut need = BTreeSet::new();
        for other in self.sites.keys().filter(|o| *o != site) {
            let h = match self.plan(site, other)? {
                PairFabric::NativeIpsec | PairFabric::NativeToStrongSwan { native: Side::A } => {
                    Holder::Native(site.clone())
                }
                PairFabric::NativeToStrongSwan { native: Side::B } | PairFabric::StrongSwan => {
                    Holder::StrongSwan
                }
                PairFabric::WireGuard => Holder::WireGuard,
                PairFabric::L2tp { server: Side::A } => Holder::Native(site.clone()),
                PairFabric::L2tp { server: Side::B } => Holder::L2tpClient,
            };
            need.insert(h);
        }
        Ok(need)
    }

    /// The inner endpoints of a composite endpoint: from this process's state, else
    /// decoded from the endpoint itself (as journaled by an earlier process).
    fn inner_endpoints(&self, ep: &SiteEndpoint) -> Result<BTreeMap<Holder, SiteEndpoint>> {
        if let Some(m) = self.lock().endpoints.get(&ep.site) {
            if !m.is_empty() {
                return Ok(m.clone());
            }
        }
        split_endpoint(ep, self.native_kind(&ep.site))
    }

    /// What the gateway VM of `site` needs at boot: its strongSwan connections, its
    /// WireGuard gateway configuration, its L2TP/IPsec clients (each secret only in a
    /// mode-0600 file). `None` when the site needs no gateway VM (native sites).
    /// Call it after every link is made (the deployer links sites before it creates
    /// VMs).
    ///
    /// # Errors
    /// `Config` naming the site when it should dial an L2TP server but no link was
    /// made in this process (the VPN user's password exists only where it was
    /// created); `Invalid` from rendering.
    pub fn gateway_bootstrap(&self, site: &SiteId) -> Result<Option<Bootstrap>> {
        let holders = self.holders(site)?;
        let mut parts = Vec::new();
        for h in &holders {
            match h {
                Holder::Native(_) => {}
                Holder::StrongSwan => parts.push(self.strongswan.gateway_bootstrap(site)?),
                Holder::WireGuard => parts.push(self.wireguard.gateway_bootstrap(site)?),
                Holder::L2tpClient => {
                    let clients: Vec<L2tpClient> = self
                        .lock()
                        .l2tp
                        .get(site)
                        .map(|m| m.values().cloned().collect())
                        .unwrap_or_default();
                    if clients.is_empty() {
                        return Err(Error::config(format!(
                            "site {site} dials an L2TP/IPsec server but its link was not made by \
                             this process, so the VPN user's password is unknown: render the \
                             gateway where the link was made, or disconnect and connect again"
                        ))
                        .with_site(site));
                    }
                    for c in clients {
                        parts.push(c.bootstrap().map_err(|e| e.with_site(site))?);
                    }
                    // The server routes back only to the client's PPP address: the
                    // site's other nodes go out masqueraded behind it.
                    parts.push(Bootstrap {
                        packages: vec!["iptables".into()],
                        files: Vec::new(),
                        commands: vec![
                            "sysctl -w net.ipv4.ip_forward=1".into(),
                            "iptables -t nat -C POSTROUTING -o ppp+ -j MASQUERADE 2>/dev/null \
                             || iptables -t nat -A POSTROUTING -o ppp+ -j MASQUERADE"
                                .into(),
                        ],
                    });
                }
            }
        }
        Ok((!parts.is_empty()).then(|| merge(parts)))
    }

    /// Every registered site's gateway configuration ([`Self::gateway_bootstrap`]),
    /// for a later process that must boot a replacement gateway VM (save it with the
    /// deployment, readable by its owner only: it holds pre-shared keys).
    ///
    /// # Errors
    /// As [`Self::gateway_bootstrap`].
    pub fn rendered_gateways(&self) -> Result<BTreeMap<SiteId, Bootstrap>> {
        let mut out = BTreeMap::new();
        for site in self.sites.keys() {
            if let Some(b) = self.gateway_bootstrap(site)? {
                out.insert(site.clone(), b);
            }
        }
        Ok(out)
    }

    /// Each registered site's own overlay subnet (see
    /// [`Self::with_site_context`]).
    pub fn site_subnets(&self) -> BTreeMap<SiteId, String> {
        self.sites
            .iter()
            .filter_map(|(s, f)| f.subnet.clone().map(|n| (s.clone(), n)))
            .collect()
    }

    /// Whether `site` is linked to some other site through its cloud's own VPN
    /// (site-to-site gateway or remote-access server). Such a cloud routes only the
    /// site's guest network, so the site's nodes must hold guest-network addresses
    /// (see [`crate::plan_overlay`]).
    pub fn uses_native_vpn(&self, site: &SiteId) -> bool {
        self.holders(site)
            .is_ok_and(|h| h.contains(&Holder::Native(site.clone())))
    }

    /// Whether `site`'s members reach the other sites through a gateway VM of the
    /// cluster (strongSwan or an L2TP/IPsec client) rather than through their
    /// cloud's router (native gateways) or WireGuard.
    pub fn routes_through_gateway_vm(&self, site: &SiteId) -> bool {
        self.holders(site).is_ok_and(|h| {
            h.iter()
                .any(|h| matches!(h, Holder::StrongSwan | Holder::L2tpClient))
        })
    }

    /// Links a native endpoint `first` (connected first) and the other side
    /// `second`: when `first`'s fabric reports peer access (EC2's tunnel address and
    /// key), `second` is linked to that address with that key.
    async fn native_then_other(
        &self,
        first: (&Holder, &SiteEndpoint),
        second: (&Holder, &SiteEndpoint),
        spec: &LinkSpec,
        made: &mut Vec<(Holder, LinkId)>,
    ) -> Result<()> {
        let (h1, e1) = first;
        let (h2, e2) = second;
        let l1 = self.fabric(h1)?.connect(e1, e2, spec).await?;
        made.push((h1.clone(), l1.clone()));
        let mut e1 = e1.clone();
        let mut spec2 = spec.clone();
        if let Some(access) = self.fabric(h1)?.peer_access(&l1).await? {
            if access.address.is_some() {
                e1.public_address = access.address;
            }
            if access.psk.is_some() {
                spec2.psk = access.psk;
            }
        }
        let l2 = self.fabric(h2)?.connect(e2, &e1, &spec2).await?;
        made.push((h2.clone(), l2));
        Ok(())
    }

    /// Adds the VPN user on `server`'s remote-access VPN and renders the client.
    async fn l2tp_pair(
        &self,
        server: &SiteEndpoint,
        client: &SiteEndpoint,
        spec: &LinkSpec,
        made: &mut Vec<(Holder, LinkId)>,
    ) -> Result<()> {
        let h = Holder::Native(server.site.clone());
        let fabric = self.fabric(&h)?;
        let link = fabric.connect(server, client, spec).await?;
        made.push((h, link.clone()));
        let missing = |what: &str| {
            Error::config(format!(
                "the remote-access VPN of site {} did not give {what} for site {}'s L2TP/IPsec \
                 client (a VPN user left from an earlier run? remove it and deploy again)",
                server.site, client.site
            ))
            .with_site(&server.site)
        };
        let access = fabric
            .peer_access(&link)
            .await?
            .ok_or_else(|| missing("access details"))?;
        let mut routes = vec![server.overlay_subnet.clone()];
        if let Some(more) = server.attributes.get("cidrs") {
            routes.extend(more.split(',').filter(|s| !s.is_empty()).map(str::to_owned));
        }
        routes.dedup();
        let c = L2tpClient::new(
            l2tp_name(&server.site),
            access
                .address
                .ok_or_else(|| missing("the server address"))?,
            access.username.ok_or_else(|| missing("the VPN user"))?,
            access
                .password
                .ok_or_else(|| missing("the VPN user's password"))?,
            access.psk.ok_or_else(|| missing("the pre-shared key"))?,
            routes,
        );
        c.validate().map_err(|e| e.with_site(&client.site))?;
        self.lock()
            .l2tp
            .entry(client.site.clone())
            .or_default()
            .insert(server.site.clone(), c);
        Ok(())
    }
}

fn unregistered(site: &SiteId) -> Error {
    Error::config(format!(
        "site {site} is not registered with the composite fabric"
    ))
    .with_site(site)
}

/// One bootstrap from several: packages once each, files with the same path joined
/// (xl2tpd.conf with one `[lac]` per server), commands in order without repeats.
fn merge(parts: Vec<Bootstrap>) -> Bootstrap {
    let mut boot = Bootstrap::default();
    for part in parts {
        for p in part.packages {
            if !boot.packages.contains(&p) {
                boot.packages.push(p);
            }
        }
        for f in part.files {
            match boot.files.iter_mut().find(|x| x.path == f.path) {
                Some(x) if x.content != f.content => {
                    x.content.push('\n');
                    x.content.push_str(&f.content);
                }
                Some(_) => {}
                None => boot.files.push(f),
            }
        }
        for c in part.commands {
            if !boot.commands.contains(&c) {
                boot.commands.push(c);
            }
        }
    }
    boot
}

fn rank(s: &LinkState) -> u8 {
    match s {
        LinkState::Up => 0,
        LinkState::Pending => 1,
        LinkState::Down => 2,
        LinkState::Failed(_) => 3,
    }
}

#[async_trait]
impl VpnFabric for CompositeFabric {
    fn kind(&self) -> FabricKind {
        FabricKind::Composite
    }

    async fn prepare_site(&self, ctx: &SiteContext) -> Result<SiteEndpoint> {
        let holders = self.holders(&ctx.site)?;
        let mut ctx = ctx.clone();
        if let Some(s) = self.sites.get(&ctx.site) {
            if let Some(sub) = &s.subnet {
                ctx.overlay_subnet.clone_from(sub);
            }
            for (k, v) in &s.hints {
                ctx.hints.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let mut ep = SiteEndpoint {
            site: ctx.site.clone(),
            kind: FabricKind::Composite,
            public_address: None,
            overlay_subnet: ctx.overlay_subnet.clone(),
            resources: Default::default(),
            attributes: [(ATTR_HOLDERS.to_owned(), String::new())].into(),
        };
        for h in holders {
            let inner = match &h {
                Holder::L2tpClient => SiteEndpoint {
                    site: ctx.site.clone(),
                    kind: FabricKind::L2tp,
                    public_address: ctx.hints.get("public_address").cloned(),
                    overlay_subnet: ctx.overlay_subnet.clone(),
                    resources: Default::default(),
                    attributes: [("role".to_owned(), "l2tp-client".to_owned())].into(),
                },
                h => self.fabric(h)?.prepare_site(&ctx).await?,
            };
            merge_endpoint(&mut ep, &h, &inner);
            self.lock()
                .endpoints
                .entry(ctx.site.clone())
                .or_default()
                .insert(h, inner);
        }
        Ok(ep)
    }

    async fn connect(&self, a: &SiteEndpoint, b: &SiteEndpoint, link: &LinkSpec) -> Result<LinkId> {
        let (sa, sb) = (&a.site, &b.site);
        let spec = LinkSpec {
            bandwidth_mbps: link.bandwidth_mbps,
            psk: Some(link.psk.clone().unwrap_or_else(link_psk)),
        };
        let (ia, ib) = (self.inner_endpoints(a)?, self.inner_endpoints(b)?);
        let get = |m: &BTreeMap<Holder, SiteEndpoint>, site: &SiteId, h: &Holder| {
            m.get(h).cloned().ok_or_else(|| {
                Error::config(format!(
                    "site {site} was not prepared for this link ({})",
                    h.name()
                ))
                .with_site(site)
            })
        };
        let mut made: Vec<(Holder, LinkId)> = Vec::new();
        let result = match self.plan(sa, sb)? {
            PairFabric::NativeIpsec => {
                let (na, nb) = (Holder::Native(sa.clone()), Holder::Native(sb.clone()));
                let (ea, eb) = (get(&ia, sa, &na)?, get(&ib, sb, &nb)?);
                // A gateway that learns its address only from its connection (EC2)
                // goes first; the other side then points at that address.
                match (&ea.public_address, &eb.public_address) {
                    (None, None) => Err(Error::unsupported(format!(
                        "sites {sa} and {sb}: neither native VPN gateway has an address before \
                         it is connected (two EC2 regions); use fabric = \"wireguard\", or a \
                         strongSwan gateway VM on one side"
                    ))
                    .with_site(sa)),
                    (None, _) => {
                        self.native_then_other((&na, &ea), (&nb, &eb), &spec, &mut made)
                            .await
                    }
                    _ => {
                        self.native_then_other((&nb, &eb), (&na, &ea), &spec, &mut made)
                            .await
                    }
                }
            }
            PairFabric::NativeToStrongSwan { native } => {
                let (ns, ss, ins, iss) = match native {
                    Side::A => (sa, sb, &ia, &ib),
                    Side::B => (sb, sa, &ib, &ia),
                };
                let nh = Holder::Native(ns.clone());
                let en = get(ins, ns, &nh)?;
                let es = get(iss, ss, &Holder::StrongSwan)?;
                self.native_then_other((&nh, &en), (&Holder::StrongSwan, &es), &spec, &mut made)
                    .await
            }
            PairFabric::StrongSwan => {
                let h = Holder::StrongSwan;
                let (ea, eb) = (get(&ia, sa, &h)?, get(&ib, sb, &h)?);
                match self.strongswan.connect(&ea, &eb, &spec).await {
                    Ok(l) => {
                        made.push((h, l));
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            PairFabric::WireGuard => {
                let h = Holder::WireGuard;
                let (ea, eb) = (get(&ia, sa, &h)?, get(&ib, sb, &h)?);
                match self.wireguard.connect(&ea, &eb, &spec).await {
                    Ok(l) => {
                        made.push((h, l));
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            PairFabric::L2tp { server } => {
                let (ss, cs, iss, ics) = match server {
                    Side::A => (sa, sb, &ia, &ib),
                    Side::B => (sb, sa, &ib, &ia),
                };
                let es = get(iss, ss, &Holder::Native(ss.clone()))?;
                let ec = get(ics, cs, &Holder::L2tpClient)?;
                self.l2tp_pair(&es, &ec, &spec, &mut made).await
            }
        };
        if let Err(e) = result {
            // undo the half made so far: nothing half-linked stays behind
            for (h, l) in made.iter().rev() {
                if let Ok(f) = self.fabric(h) {
                    if let Err(undo) = f.disconnect(l).await {
                        tracing::warn!(link = %l, error = %undo, "could not undo a half-made VPN link");
                    }
                }
            }
            return Err(e);
        }
        Ok(composite_ids::link_id(sa, sb, &made))
    }

    fn member_bootstrap(&self, member: &Member) -> Result<Bootstrap> {
        let holders: Vec<Holder> = self
            .lock()
            .endpoints
            .get(&member.site)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let mut parts = Vec::new();
        for h in holders.iter().filter(|h| **h != Holder::L2tpClient) {
            parts.push(self.fabric(h)?.member_bootstrap(member)?);
        }
        Ok(merge(parts))
    }

    async fn link_status(&self, link: &LinkId) -> Result<LinkState> {
        let (_, _, inner) = composite_ids::parse_link(link)?;
        let mut worst = LinkState::Up;
        for (h, l) in inner {
            let s = self.fabric(&h)?.link_status(&l).await?;
            if rank(&s) > rank(&worst) {
                worst = s;
            }
        }
        Ok(worst)
    }

    async fn disconnect(&self, link: &LinkId) -> Result<()> {
        let (a, b, inner) = composite_ids::parse_link(link)?;
        for (h, l) in inner {
            self.fabric(&h)?.disconnect(&l).await?;
        }
        let mut st = self.lock();
        for (x, y) in [(&a, &b), (&b, &a)] {
            if let Some(m) = st.l2tp.get_mut(x) {
                m.remove(y);
            }
        }
        Ok(())
    }

    async fn release_site(&self, endpoint: &SiteEndpoint) -> Result<()> {
        let inner = self.inner_endpoints(endpoint)?;
        for (h, ep) in inner {
            if h != Holder::L2tpClient {
                self.fabric(&h)?.release_site(&ep).await?;
            }
            if let Some(m) = self.lock().endpoints.get_mut(&endpoint.site) {
                m.remove(&h);
            }
        }
        let mut st = self.lock();
        st.endpoints.remove(&endpoint.site);
        st.l2tp.remove(&endpoint.site);
        Ok(())
    }
}
