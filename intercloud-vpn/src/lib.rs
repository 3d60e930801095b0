//! Middleware-neutral VPN fabrics for intercloud (WireGuard, IPsec, L2TP) and overlay IPAM: not implemented yet, see issue 9.
//!
//! This crate holds only its documentation until its issue lands; it exports nothing.
