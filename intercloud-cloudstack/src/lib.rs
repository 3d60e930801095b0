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
//! A VPN fabric comes from the same builder: `.vpc(id).build_vpn(VpnMode::SiteToSite)`
//! or `.public_ip(id).build_vpn(VpnMode::RemoteAccess)` (a zone is not needed).
//! Tests and the simulator shorten `.poll_interval(..)`, `.job_timeout(..)` and
//! `.request_timeout(..)`.
//!
//! What the server sees, per operation:
//! - `create_vms(spec, n)`: `listVirtualMachines` by the key tag and by `keyword`
//!   (adoption), then per missing VM `deployVirtualMachine` (POST) and `createTags`,
//!   then one `listVirtualMachines` by the key tag per poll until every VM is tagged
//!   and has left `Starting` (or the job timeout: still-starting VMs are returned);
//! - `list_vms`: `listVirtualMachines` with `listall=true`, `zoneid`, one tag, paged;
//! - `delete_vm`: `destroyVirtualMachine` (POST, `expunge=true`) and its job;
//! - `offerings`: `listServiceOfferings`; `capacity`: `listAccounts`;
//! - `guest_network`: once `listNetworks` (`id=` the builder's network, else
//!   `zoneid=`: the zone's one VPC tier), then `listVirtualMachines networkid=` for the
//!   addresses in use; a create with [`VmSpec::addresses`] deploys each VM with
//!   `networkids=` the tier and `ipaddress=` its address, and CloudStack's 533 "Unable
//!   to acquire Guest IP address" for it is a temporary `AlreadyExists`.
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
//! [`VmSpec::addresses`]: intercloud_core::VmSpec::addresses
//! [`VpnFabric`]: intercloud_core::VpnFabric

mod builder;
mod client;
mod error;
mod jobs;
mod model;
mod network;
mod provider;
pub mod sign;
mod vpn;

pub use builder::CloudStackBuilder;
pub use client::Clock;
pub use provider::{CloudStackProvider, DeployStarted, MAX_BATCH, MAX_USER_DATA};
pub use sign::SignatureAlgorithm;
pub use vpn::{CloudStackVpn, VpnMode};
