//! # intercloud-vpn
//!
//! Middleware-neutral pieces of the overlay that links a cluster's sites:
//!
//! - [`ipam`]: deterministic overlay addresses from a private CIDR, a subnet per site,
//!   assigned at plan time and never reused while an old configuration may be live;
//! - [`wireguard`]: locally generated keys, wg-quick files for site gateways (fully
//!   meshed) and members (one peer: their gateway), incremental peer changes and key
//!   rotation as `wg set` commands, and [`WireGuardFabric`], the `VpnFabric` over it;
//! - [`ipsec`]: strongSwan site-to-site gateways (`swanctl.conf`) facing CloudStack's
//!   or EC2's native VPN gateways or each other, with the clouds' IKE/ESP policies
//!   converted to strongSwan proposals;
//! - [`l2tp`]: the L2TP/IPsec client (xl2tpd, pppd, strongSwan IKEv1) joining
//!   CloudStack's remote-access VPN; PPTP is refused;
//! - [`composite`]: the one place that chooses, per site pair, native IPsec,
//!   native-to-strongSwan, strongSwan, WireGuard or L2TP/IPsec, and
//!   [`CompositeFabric`] over them;
//! - [`cluster`]: a cluster's overlay for a deployer plan ([`plan_overlay`]: WireGuard,
//!   or the composite for `ipsec` / `l2tp`) and the [`ClusterConfigurer`] rendering
//!   each node's cloud-init (profile + overlay).

pub mod cluster;
pub mod composite;
mod composite_ids;
pub mod ipam;
pub mod ipsec;
pub mod l2tp;
mod node_parts;
pub mod wireguard;

pub use cluster::{
    check_user_data, deployed_composite, overlay_addresses, plan_cluster, plan_overlay,
    slots_for_level, wireguard_overlay, ClusterConfigurer, ClusterOverlay, OverlayBoot,
    RenderedOverlay, SiteVpn, KEY_GROUP_MEMBERS,
};
pub use composite::{choose, CompositeFabric, PairFabric, Side};
pub use ipam::{Ipam, SiteSubnet, DEFAULT_OVERLAY_CIDR};
pub use wireguard::{Mesh, WireGuardFabric};
