//! How a [`crate::CompositeFabric`] writes what it made into the ids the deployer
//! journals, so that another process (`status`, `repair`, `down`) finds every inner
//! resource again from the journal alone.
//!
//! - A composite endpoint carries each inner endpoint as `HOLDER.KEY` resources and
//!   attributes, its address as attribute `HOLDER.@address`, and the list of holders
//!   as attribute `composite.holders` (`native,strongswan`).
//! - A composite link id is `composite:A~B` followed by `;HOLDER=INNER` per inner
//!   link (`composite:cs~one;native@cs=conn/cgw;strongswan=ipsec:cs~one`).
//!
//! Pure functions; no secret ever goes into these ids (the fabrics keep pre-shared
//! keys out of endpoints and link ids).

use std::collections::BTreeMap;

use intercloud_core::{Error, FabricKind, LinkId, Result, SiteEndpoint, SiteId};

/// Who holds an inner endpoint or link of a composite.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Holder {
    /// The site's cloud (CloudStack, EC2) native VPN fabric.
    Native(SiteId),
    /// A strongSwan gateway VM.
    StrongSwan,
    /// A WireGuard gateway.
    WireGuard,
    /// An L2TP/IPsec client gateway VM dialling another site's remote-access VPN.
    L2tpClient,
}

/// Attribute listing the holders of a composite endpoint.
pub(crate) const ATTR_HOLDERS: &str = "composite.holders";
/// Attribute suffix of an inner endpoint's public address.
const ADDRESS: &str = "@address";
const LINK_PREFIX: &str = "composite:";

impl Holder {
    /// The name used in endpoint keys (site-independent: an endpoint is one site's).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Native(_) => "native",
            Self::StrongSwan => "strongswan",
            Self::WireGuard => "wireguard",
            Self::L2tpClient => "l2tp-client",
        }
    }

    fn from_name(name: &str, site: &SiteId) -> Option<Self> {
        Some(match name {
            "native" => Self::Native(site.clone()),
            "strongswan" => Self::StrongSwan,
            "wireguard" => Self::WireGuard,
            "l2tp-client" => Self::L2tpClient,
            _ => return None,
        })
    }

    /// The name used in link ids (a link spans two sites, so natives name theirs).
    fn link_name(&self) -> String {
        match self {
            Self::Native(site) => format!("native@{site}"),
            other => other.name().to_owned(),
        }
    }

    fn from_link_name(name: &str) -> Option<Self> {
        match name.strip_prefix("native@") {
            Some(site) if !site.is_empty() => Some(Self::Native(SiteId::from(site))),
            Some(_) => None,
            None => Self::from_name(name, &SiteId::from("")),
        }
    }
}

/// Adds `inner` (held by `h`) to the composite endpoint `ep`.
pub(crate) fn merge_endpoint(ep: &mut SiteEndpoint, h: &Holder, inner: &SiteEndpoint) {
    let name = h.name();
    for (k, v) in &inner.resources {
        ep.resources.insert(format!("{name}.{k}"), v.clone());
    }
    for (k, v) in &inner.attributes {
        ep.attributes.insert(format!("{name}.{k}"), v.clone());
    }
    if let Some(a) = &inner.public_address {
        ep.attributes.insert(format!("{name}.{ADDRESS}"), a.clone());
    }
    if ep.public_address.is_none() {
        ep.public_address.clone_from(&inner.public_address);
    }
    let mut holders: Vec<String> = ep
        .attributes
        .get(ATTR_HOLDERS)
        .map(|s| {
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if !holders.iter().any(|x| x == name) {
        holders.push(name.to_owned());
    }
    ep.attributes.insert(ATTR_HOLDERS.into(), holders.join(","));
}

/// The inner endpoints of a composite endpoint; `native_kind` is the kind of the
/// site's native fabric.
///
/// # Errors
/// `Invalid` naming the site when the endpoint names an unknown holder.
pub(crate) fn split_endpoint(
    ep: &SiteEndpoint,
    native_kind: FabricKind,
) -> Result<BTreeMap<Holder, SiteEndpoint>> {
    let mut out = BTreeMap::new();
    let Some(list) = ep.attributes.get(ATTR_HOLDERS) else {
        return Ok(out);
    };
    for name in list.split(',').filter(|s| !s.is_empty()) {
        let h = Holder::from_name(name, &ep.site).ok_or_else(|| {
            Error::invalid(format!(
                "composite endpoint names an unknown fabric {name:?}"
            ))
            .with_site(&ep.site)
        })?;
        let prefix = format!("{name}.");
        let strip = |m: &BTreeMap<String, String>| -> BTreeMap<String, String> {
            m.iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix(&prefix)
                        .filter(|k| !k.starts_with('@'))
                        .map(|k| (k.to_owned(), v.clone()))
                })
                .collect()
        };
        let kind = match h {
            Holder::Native(_) => native_kind,
            Holder::StrongSwan => FabricKind::Ipsec,
            Holder::WireGuard => FabricKind::WireGuard,
            Holder::L2tpClient => FabricKind::L2tp,
        };
        let inner = SiteEndpoint {
            site: ep.site.clone(),
            kind,
            public_address: ep.attributes.get(&format!("{prefix}{ADDRESS}")).cloned(),
            overlay_subnet: ep.overlay_subnet.clone(),
            resources: strip(&ep.resources),
            attributes: strip(&ep.attributes),
        };
        out.insert(h, inner);
    }
    Ok(out)
}

/// The composite link id of sites `a` and `b` made of `inner` links.
pub(crate) fn link_id(a: &SiteId, b: &SiteId, inner: &[(Holder, LinkId)]) -> LinkId {
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    let mut s = format!("{LINK_PREFIX}{a}~{b}");
    for (h, l) in inner {
        s.push(';');
        s.push_str(&h.link_name());
        s.push('=');
        s.push_str(&l.0);
    }
    LinkId(s)
}

/// A composite link taken apart: its two sites and its inner links.
pub(crate) type LinkParts = (SiteId, SiteId, Vec<(Holder, LinkId)>);

/// The two sites and the inner links of a composite link id.
///
/// # Errors
/// `Invalid` when `link` is not a composite link id.
pub(crate) fn parse_link(link: &LinkId) -> Result<LinkParts> {
    let bad = || Error::invalid(format!("{link} is not a composite link id"));
    let rest = link.0.strip_prefix(LINK_PREFIX).ok_or_else(bad)?;
    let mut parts = rest.split(';');
    let (a, b) = parts
        .next()
        .and_then(|p| p.split_once('~'))
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .ok_or_else(bad)?;
    let mut inner = Vec::new();
    for p in parts {
        let (h, id) = p.split_once('=').ok_or_else(bad)?;
        let h = Holder::from_link_name(h).ok_or_else(bad)?;
        if id.is_empty() {
            return Err(bad());
        }
        inner.push((h, LinkId(id.to_owned())));
    }
    Ok((SiteId::from(a), SiteId::from(b), inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_ids_round_trip() {
        let inner = vec![
            (Holder::Native("cs".into()), LinkId("conn-1/cgw-1".into())),
            (Holder::StrongSwan, LinkId("ipsec:cs~one".into())),
            (
                Holder::Native("ra".into()),
                LinkId("l2tp:vpn-1:ic-c-one".into()),
            ),
        ];
        let id = link_id(&"one".into(), &"cs".into(), &inner);
        assert!(
            id.0.starts_with("composite:cs~one;native@cs=conn-1/cgw-1;"),
            "{id}"
        );
        let (a, b, back) = parse_link(&id).unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("cs", "one"));
        assert_eq!(back, inner);
        for bad in [
            "wg:a~b",
            "composite:a",
            "composite:a~b;x=1",
            "composite:a~b;native@=1",
        ] {
            assert!(parse_link(&LinkId(bad.into())).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints_round_trip() {
        let site = SiteId::from("cs");
        let native = SiteEndpoint {
            site: site.clone(),
            kind: FabricKind::L2tp,
            public_address: Some("203.0.113.7".into()),
            overlay_subnet: "10.77.0.0/24".into(),
            resources: [("public_ip".to_owned(), "ip-1".to_owned())].into(),
            attributes: [("created".to_owned(), "true".to_owned())].into(),
        };
        let mut ep = SiteEndpoint {
            site: site.clone(),
            kind: FabricKind::Composite,
            public_address: None,
            overlay_subnet: "10.77.0.0/24".into(),
            resources: Default::default(),
            attributes: Default::default(),
        };
        merge_endpoint(&mut ep, &Holder::Native(site.clone()), &native);
        merge_endpoint(&mut ep, &Holder::Native(site.clone()), &native);
        assert_eq!(ep.attributes[ATTR_HOLDERS], "native");
        assert_eq!(ep.public_address.as_deref(), Some("203.0.113.7"));
        // survives the journal (JSON)
        let ep: SiteEndpoint = serde_json::from_str(&serde_json::to_string(&ep).unwrap()).unwrap();
        let back = split_endpoint(&ep, FabricKind::L2tp).unwrap();
        let got = &back[&Holder::Native(site)];
        assert_eq!(got.resources, native.resources);
        assert_eq!(got.attributes, native.attributes);
        assert_eq!(got.public_address, native.public_address);
        assert_eq!(got.kind, FabricKind::L2tp);
    }
}
