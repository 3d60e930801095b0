//! Test doubles and plan inputs shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use intercloud_core::{
    Bootstrap, FabricKind, LevelOffering, Link, LinkId, LinkSpec, LinkState, Member, Middleware,
    PeerAccess, Result, ServiceLevel, Site, SiteContext, SiteEndpoint, SiteId, VpnFabric,
};
use intercloud_vpn::ipsec::{ATTR_ESP_POLICY, ATTR_IKE_POLICY};
use secrecy::{ExposeSecret, SecretString};

/// A native cloud gateway that records what it was asked. `addressless` gateways
/// (EC2) learn their address only from a connection and report it, with their key,
/// through `peer_access`.
#[derive(Debug, Default)]
pub struct FakeNative {
    pub addressless: bool,
    /// Links report `Up` (else they stay `Pending`).
    pub up: bool,
    /// Every site context `prepare_site` was given.
    pub contexts: Mutex<Vec<SiteContext>>,
    pub calls: Mutex<Vec<String>>,
    pub psks: Mutex<Vec<String>>,
    pub live: Mutex<Vec<String>>,
}

impl FakeNative {
    /// The IKE and ESP policies its endpoints announce (CloudStack's form).
    pub fn policy_attributes() -> BTreeMap<String, String> {
        [
            (
                ATTR_IKE_POLICY.to_owned(),
                "aes128-sha1;modp1536".to_owned(),
            ),
            (ATTR_ESP_POLICY.to_owned(), "aes128-sha1".to_owned()),
        ]
        .into()
    }
}

#[async_trait]
impl VpnFabric for FakeNative {
    fn kind(&self) -> FabricKind {
        FabricKind::Ipsec
    }
    async fn prepare_site(&self, ctx: &SiteContext) -> Result<SiteEndpoint> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("prepare {}", ctx.site));
        self.contexts.lock().unwrap().push(ctx.clone());
        Ok(SiteEndpoint {
            site: ctx.site.clone(),
            kind: FabricKind::Ipsec,
            public_address: (!self.addressless)
                .then(|| format!("198.51.100.{}", ctx.site.to_string().len())),
            overlay_subnet: ctx.overlay_subnet.clone(),
            resources: [("vpn_gateway".to_owned(), format!("vgw-{}", ctx.site))].into(),
            attributes: FakeNative::policy_attributes(),
        })
    }
    async fn connect(&self, a: &SiteEndpoint, b: &SiteEndpoint, link: &LinkSpec) -> Result<LinkId> {
        let peer = b.public_address.clone().ok_or_else(|| {
            intercloud_core::Error::invalid(format!("peer {} has no address", b.site))
        })?;
        self.calls
            .lock()
            .unwrap()
            .push(format!("connect {}->{} at {peer}", a.site, b.site));
        if let Some(p) = &link.psk {
            self.psks.lock().unwrap().push(p.expose_secret().to_owned());
        }
        let id = format!("vpn-{}-{}", a.site, b.site);
        self.live.lock().unwrap().push(id.clone());
        Ok(LinkId(id))
    }
    fn member_bootstrap(&self, _member: &Member) -> Result<Bootstrap> {
        Ok(Bootstrap::default())
    }
    async fn link_status(&self, link: &LinkId) -> Result<LinkState> {
        if self.live.lock().unwrap().contains(&link.0) {
            Ok(if self.up {
                LinkState::Up
            } else {
                LinkState::Pending
            })
        } else {
            Err(intercloud_core::Error::not_found(format!("no {link}")))
        }
    }
    async fn peer_access(&self, _link: &LinkId) -> Result<Option<PeerAccess>> {
        Ok(self.addressless.then(|| PeerAccess {
            address: Some("52.10.1.100".into()),
            psk: Some(SecretString::from("Tunnel_psk_from_cloud")),
            ..PeerAccess::default()
        }))
    }
    async fn disconnect(&self, link: &LinkId) -> Result<()> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("disconnect {link}"));
        self.live.lock().unwrap().retain(|l| *l != link.0);
        Ok(())
    }
    async fn release_site(&self, ep: &SiteEndpoint) -> Result<()> {
        self.calls.lock().unwrap().push(format!(
            "release {} {}",
            ep.site, ep.resources["vpn_gateway"]
        ));
        Ok(())
    }
}

/// A site offering level `M` (`medium`, room for 100 VMs).
pub fn site(id: &str, middleware: Middleware) -> Site {
    Site {
        id: SiteId::new(id),
        middleware,
        endpoint: "http://127.0.0.1:9/api".into(),
        zone: None,
        levels: [(
            ServiceLevel::new("M"),
            LevelOffering {
                offering: "medium".into(),
                image: None,
                price_per_hour: 0.1,
                capacity: 100,
            },
        )]
        .into(),
        rate_limit: None,
        max_concurrency: None,
    }
}

/// A 20 ms, 1 Gbit/s link between sites `a` and `b`.
pub fn link(a: &str, b: &str) -> Link {
    Link {
        between: [SiteId::new(a), SiteId::new(b)],
        rtt_ms: 20.0,
        bandwidth_mbps: 1000.0,
        vpn_overhead: 0.21,
    }
}
