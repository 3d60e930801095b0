//! # intercloud-cloudstack
//!
//! The Apache CloudStack backend of intercloud: a [`CloudProvider`] for one zone and a
//! [`VpnFabric`] for CloudStack's native site-to-site and remote-access VPN, over the
//! signed JSON API.
//!
//! ```no_run
//! use intercloud_core::{CloudProvider, Credentials};
//! use intercloud_cloudstack::CloudStackBuilder;
//! # async fn demo() -> intercloud_core::Result<()> {
//! let provider = CloudStackBuilder::new()
//!     .site("hokkaido")
//!     .endpoint("http://127.0.0.1:8080/client/api")
//!     .credentials(Credentials::cloudstack("API-KEY", "SECRET-KEY"))
//!     .zone("zone1")
//!     .build()?;
//! let offerings = provider.offerings().await?;
//! # Ok(()) }
//! ```
//!
//! - [`sign`]: request signing exactly as the management server verifies it;
//! - [`CloudStackBuilder`]: configuration, `from_env()`;
//! - [`CloudStackProvider`]: VM lifecycle, async jobs followed by batch listing;
//! - [`CloudStackVpn`]: VPN gateways, customer gateways, connections, remote access.
//!
//! Errors map CloudStack's codes in one table (see the `error` module source); no
//! error, log line or `Debug` output contains the secret key, a signature or a signed
//! URL.
//!
//! [`CloudProvider`]: intercloud_core::CloudProvider
//! [`VpnFabric`]: intercloud_core::VpnFabric

mod builder;
mod client;
mod error;
mod jobs;
mod model;
mod provider;
pub mod sign;
mod vpn;

pub use builder::CloudStackBuilder;
pub use client::Clock;
pub use provider::{CloudStackProvider, DeployStarted, MAX_BATCH, MAX_USER_DATA};
pub use sign::SignatureAlgorithm;
pub use vpn::{CloudStackVpn, VpnMode};
