//! # intercloud-vpn
//!
//! Middleware-neutral pieces of the overlay that links a cluster's sites:
//!
//! - [`ipam`]: deterministic overlay addresses from a private CIDR, a subnet per site,
//!   assigned at plan time and never reused while an old configuration may be live.
//!
//! The WireGuard, strongSwan and L2TP/IPsec fabrics (issue 9) will live here too.

pub mod ipam;

pub use ipam::{Ipam, SiteSubnet, DEFAULT_OVERLAY_CIDR};
