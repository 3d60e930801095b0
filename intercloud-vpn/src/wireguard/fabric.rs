//! [`WireGuardFabric`]: the [`VpnFabric`] over a [`Mesh`].
//!
//! WireGuard needs no cloud resource: a site's endpoint is its gateway node (a VM the
//! deployer creates with [`WireGuardFabric::gateway_bootstrap`] as user data), and a
//! link is a pair of gateway peer entries. `prepare_site` reads the gateway's
//! addresses from the context hints `public_address` and `private_address` once the
//! gateway VM is known.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use intercloud_core::{
    BootFile, Bootstrap, Error, FabricKind, LinkId, LinkSpec, LinkState, Member, Result,
    SiteContext, SiteEndpoint, SiteId, VpnFabric,
};

use secrecy::SecretString;

use super::config::{peer_changes, Peer};
use super::derive::KeyGroup;
use super::mesh::Mesh;

/// A live change of one gateway's peers (key rotation, a node added or moved):
/// apply [`PeerUpdate::commands`] on the running gateway, no restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerUpdate {
    /// The site whose gateway changes.
    pub site: SiteId,
    /// The gateway's peers before.
    pub before: Vec<Peer>,
    /// The gateway's peers after.
    pub after: Vec<Peer>,
}

impl PeerUpdate {
    /// The `wg set` commands for the gateway's interface `iface` (removals first).
    pub fn commands(&self, iface: &str) -> Vec<String> {
        peer_changes(iface, &self.before, &self.after)
    }
}

/// A WireGuard overlay for one cluster.
#[derive(Debug)]
pub struct WireGuardFabric {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    mesh: Mesh,
    links: BTreeSet<(SiteId, SiteId)>,
}

impl WireGuardFabric {
    /// A fabric over `mesh` (which holds the cluster's address plan).
    ///
    /// Gateways are fully meshed, so every pair of gateways already in `mesh` counts
    /// as connected: a mesh saved by one process and loaded by another (resume,
    /// repair) reports the same links.
    pub fn new(mesh: Mesh) -> Self {
        let sites = mesh.gateway_sites();
        let mut links = BTreeSet::new();
        for (i, a) in sites.iter().enumerate() {
            for b in &sites[i + 1..] {
                links.insert((a.clone(), b.clone()));
            }
        }
        Self {
            state: Mutex::new(State { mesh, links }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of the current mesh (addresses, keys, endpoints).
    pub fn mesh(&self) -> Mesh {
        self.lock().mesh.clone()
    }

    /// The boot configuration of `site`'s gateway node: peers are the other gateways
    /// and the members known so far (see [`WireGuardFabric::plan_members`]).
    ///
    /// # Errors
    /// `Config` when the site was not prepared.
    pub fn gateway_bootstrap(&self, site: &SiteId) -> Result<Bootstrap> {
        let st = self.lock();
        let conf = st.mesh.gateway_config(site)?;
        Ok(bootstrap(st.mesh.iface(), conf))
    }

    /// [`WireGuardFabric::gateway_bootstrap`] in constant size: the file without the
    /// members whose keys derive from a key group, and `/etc/intercloud/wg-peers.sh`
    /// appending their peers on the node before `wg-quick up` (see
    /// [`Mesh::gateway_compact`]). The resulting file is the same.
    ///
    /// # Errors
    /// `Config` when the site was not prepared.
    pub fn gateway_bootstrap_compact(&self, site: &SiteId) -> Result<Bootstrap> {
        let st = self.lock();
        let (base, script) = st.mesh.gateway_compact(site)?;
        let iface = st.mesh.iface();
        let mut b = bootstrap(iface, base);
        b.packages.push("openssl".into());
        b.files.push(BootFile {
            path: PEERS_SCRIPT.into(),
            mode: "0700".into(),
            content: script,
        });
        b.commands.insert(
            0,
            format!("sh {PEERS_SCRIPT} >> /etc/wireguard/{iface}.conf"),
        );
        Ok(b)
    }

    /// Where member `name`'s key comes from: its key group's id and secret and the
    /// private key (base64) derived from them; `None` for a random key.
    pub fn member_key_source(&self, name: &str) -> Option<(String, KeyGroup, SecretString)> {
        let st = self.lock();
        st.mesh
            .member_key_source(name)
            .map(|(g, k, p)| (g.to_owned(), k.clone(), SecretString::from(p)))
    }
}

/// The gateway's program appending its derived members' peers.
const PEERS_SCRIPT: &str = "/etc/intercloud/wg-peers.sh";

impl WireGuardFabric {
    /// Registers the cluster's planned members (keys generated, addresses checked
    /// against the plan) so that [`WireGuardFabric::gateway_bootstrap`] already holds
    /// them as peers. Call it before rendering gateway user data: a member first seen
    /// by `member_bootstrap` after its gateway booted is missing there until a
    /// [`PeerUpdate`] from [`WireGuardFabric::member_update`] is applied.
    ///
    /// # Errors
    /// `Config` when a member's planned address differs from the mesh's.
    pub fn plan_members(&self, members: &[Member]) -> Result<()> {
        let mut st = self.lock();
        for m in members {
            check_planned(&mut st.mesh, m)?;
        }
        Ok(())
    }

    /// Adds (or moves) `member` and returns the change its gateway needs, for a
    /// member joining after the gateway booted.
    ///
    /// # Errors
    /// `Config` as [`WireGuardFabric::plan_members`], or when the site has no gateway.
    pub fn member_update(&self, member: &Member) -> Result<PeerUpdate> {
        let mut st = self.lock();
        let before = st.mesh.gateway_peers(&member.site)?;
        check_planned(&mut st.mesh, member)?;
        let after = st.mesh.gateway_peers(&member.site)?;
        Ok(PeerUpdate {
            site: member.site.clone(),
            before,
            after,
        })
    }

    /// Gives member `name` a new key. Render the member's new file with
    /// [`VpnFabric::member_bootstrap`] (same name, same address) and apply the
    /// returned update on its gateway.
    ///
    /// # Errors
    /// `Config` when there is no such member or its site has no gateway.
    pub fn rotate_member_key(&self, name: &str) -> Result<PeerUpdate> {
        let mut st = self.lock();
        let site = st
            .mesh
            .ipam()
            .node(name)
            .map(|(s, _)| s.clone())
            .ok_or_else(|| Error::config(format!("no overlay member {name:?}")))?;
        let before = st.mesh.gateway_peers(&site)?;
        st.mesh.rotate_member_key(name)?;
        let after = st.mesh.gateway_peers(&site)?;
        Ok(PeerUpdate {
            site,
            before,
            after,
        })
    }
}

fn check_planned(mesh: &mut Mesh, member: &Member) -> Result<()> {
    let known = mesh.member_public_key(&member.name).is_some();
    let ip = mesh.add_member(&member.name, &member.site)?;
    if ip.to_string() != member.overlay_ip {
        if !known {
            // not a peer anywhere; its address is retired, never handed out again
            mesh.remove_member(&member.name);
        }
        return Err(Error::config(format!(
            "member {} was planned with overlay address {} but the mesh holds {ip}",
            member.name, member.overlay_ip
        ))
        .with_site(&member.site));
    }
    Ok(())
}

fn bootstrap(iface: &str, conf: String) -> Bootstrap {
    Bootstrap {
        packages: vec!["wireguard-tools".into()],
        files: vec![BootFile {
            path: format!("/etc/wireguard/{iface}.conf"),
            mode: "0600".into(),
            content: conf,
        }],
        commands: vec![format!("wg-quick up {iface}")],
    }
}

fn link_id(a: &SiteId, b: &SiteId) -> LinkId {
    LinkId(format!("wg:{a}~{b}"))
}

fn parse_link(link: &LinkId) -> Result<(SiteId, SiteId)> {
    link.0
        .strip_prefix("wg:")
        .and_then(|r| r.split_once('~'))
        .map(|(a, b)| (SiteId::from(a), SiteId::from(b)))
        .ok_or_else(|| Error::invalid(format!("{link} is not a WireGuard link id")))
}

#[async_trait]
impl VpnFabric for WireGuardFabric {
    fn kind(&self) -> FabricKind {
        FabricKind::WireGuard
    }

    async fn prepare_site(&self, ctx: &SiteContext) -> Result<SiteEndpoint> {
        let mut st = self.lock();
        let public_key = st.mesh.add_site(&ctx.site)?.to_owned();
        let public = ctx.hints.get("public_address").map(String::as_str);
        let private = ctx.hints.get("private_address").map(String::as_str);
        if public.is_some() || private.is_some() {
            st.mesh
                .set_gateway_address(&ctx.site, public.or(private), private)?;
        }
        let sub = st
            .mesh
            .ipam()
            .site(&ctx.site)
            .ok_or_else(|| Error::config("no overlay subnet").with_site(&ctx.site))?;
        let mut ep = SiteEndpoint {
            site: ctx.site.clone(),
            kind: FabricKind::WireGuard,
            public_address: public.map(str::to_owned),
            overlay_subnet: sub.subnet.to_string(),
            resources: Default::default(),
            attributes: Default::default(),
        };
        ep.attributes.insert("public_key".into(), public_key);
        ep.attributes
            .insert("overlay_gateway".into(), sub.gateway.to_string());
        Ok(ep)
    }

    async fn connect(
        &self,
        a: &SiteEndpoint,
        b: &SiteEndpoint,
        _link: &LinkSpec,
    ) -> Result<LinkId> {
        let mut st = self.lock();
        for s in [&a.site, &b.site] {
            st.mesh.add_site(s)?;
        }
        let pair = if a.site <= b.site {
            (a.site.clone(), b.site.clone())
        } else {
            (b.site.clone(), a.site.clone())
        };
        let id = link_id(&pair.0, &pair.1);
        st.links.insert(pair);
        Ok(id)
    }

    fn member_bootstrap(&self, member: &Member) -> Result<Bootstrap> {
        let mut st = self.lock();
        check_planned(&mut st.mesh, member)?;
        let conf = st.mesh.member_config(&member.name)?;
        Ok(bootstrap(st.mesh.iface(), conf))
    }

    async fn link_status(&self, link: &LinkId) -> Result<LinkState> {
        let (a, b) = parse_link(link)?;
        let st = self.lock();
        if !st.links.contains(&(a.clone(), b.clone())) {
            return Err(Error::not_found(format!("no link {link}")));
        }
        // Configuration-level state: both gateways known and addressed. Handshakes are
        // observed on the nodes (`wg show`), not from here.
        Ok(if st.mesh.gateway_ready(&a) && st.mesh.gateway_ready(&b) {
            LinkState::Up
        } else {
            LinkState::Pending
        })
    }

    async fn disconnect(&self, link: &LinkId) -> Result<()> {
        let pair = parse_link(link)?;
        self.lock().links.remove(&pair);
        Ok(())
    }

    async fn release_site(&self, endpoint: &SiteEndpoint) -> Result<()> {
        let mut st = self.lock();
        st.links
            .retain(|(a, b)| a != &endpoint.site && b != &endpoint.site);
        st.mesh.remove_site(&endpoint.site);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::Ipam;
    use crate::wireguard::DEFAULT_PORT;

    fn ctx(site: &str, public: &str) -> SiteContext {
        SiteContext {
            site: site.into(),
            cluster: "c".into(),
            overlay_subnet: String::new(),
            local_cidrs: vec![],
            hints: [("public_address".to_owned(), public.to_owned())]
                .into_iter()
                .collect(),
        }
    }

    #[tokio::test]
    async fn prepare_connect_bootstrap_and_tear_down() {
        let counts = [("a", 1u32), ("b", 1)]
            .iter()
            .map(|(s, n)| (SiteId::from(*s), *n))
            .collect();
        let f = WireGuardFabric::new(Mesh::new(
            Ipam::plan("10.77.0.0/16", &counts).unwrap(),
            "ic0",
            DEFAULT_PORT,
        ));
        let a = f.prepare_site(&ctx("a", "198.51.100.1")).await.unwrap();
        let b = f.prepare_site(&ctx("b", "198.51.100.2")).await.unwrap();
        assert_eq!(a.overlay_subnet, "10.77.0.0/24");
        assert_eq!(a.attributes["overlay_gateway"], "10.77.0.1");
        let link = f.connect(&b, &a, &LinkSpec::default()).await.unwrap();
        assert_eq!(link.0, "wg:a~b");
        assert_eq!(f.link_status(&link).await.unwrap(), LinkState::Up);

        let member = Member {
            name: "w-1".into(),
            role: "worker".into(),
            site: "b".into(),
            overlay_ip: "10.77.1.10".into(),
        };
        let boot = f.member_bootstrap(&member).unwrap();
        assert_eq!(boot.files[0].path, "/etc/wireguard/ic0.conf");
        assert_eq!(boot.files[0].mode, "0600");
        assert!(boot.files[0]
            .content
            .contains("Endpoint = 198.51.100.2:51820"));
        assert!(
            !format!("{boot:?}").contains("PrivateKey"),
            "Debug hides file contents"
        );
        let gw = f.gateway_bootstrap(&"b".into()).unwrap();
        assert!(gw.files[0].content.contains("AllowedIPs = 10.77.1.10/32"));

        let wrong = Member {
            overlay_ip: "10.77.1.99".into(),
            name: "w-2".into(),
            ..member
        };
        assert!(f.member_bootstrap(&wrong).is_err());
        assert!(
            !f.gateway_bootstrap(&"b".into()).unwrap().files[0]
                .content
                .contains("10.77.1.11/32"),
            "a rejected member is no gateway peer"
        );

        let late = Member {
            name: "w-3".into(),
            role: "worker".into(),
            site: "b".into(),
            overlay_ip: "10.77.1.12".into(),
        };
        let up = f.member_update(&late).unwrap();
        assert_eq!(up.site, SiteId::from("b"));
        let cmds = up.commands("ic0");
        assert_eq!(cmds.len(), 1, "{cmds:?}");
        assert!(cmds[0].ends_with("allowed-ips 10.77.1.12/32"), "{cmds:?}");
        assert!(f.member_update(&late).unwrap().commands("ic0").is_empty());
        f.plan_members(&[late]).unwrap();

        f.disconnect(&link).await.unwrap();
        assert!(f.link_status(&link).await.is_err());
        f.release_site(&a).await.unwrap();
        assert!(f.gateway_bootstrap(&"a".into()).is_err());
    }
}
