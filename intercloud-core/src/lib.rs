//! # intercloud-core
//!
//! The federation's vocabulary and machinery, independent of any middleware:
//!
//! - [`model`]: sites, service levels, VMs, tags, topology, cluster requests;
//! - [`planner`]: where each VM goes, by money, capacity, latency and bandwidth;
//! - [`CloudProvider`] and [`VpnFabric`]: the two traits backends implement;
//! - [`Error`] / [`ErrorKind`] / [`ErrorClass`]: one error type whose kinds and
//!   classes callers act on, and [`ErrorInfo`], its serialisable snapshot;
//! - [`Credentials`] and the [`vault`]: API keys held as secrets, stored encrypted;
//! - [`wrap`]: retry, rate limit and timeout around any provider;
//! - [`deploy`]: plans, the deployer, its journal, resume, repair, destroy, status;
//! - [`MemoryProvider`]: an in-memory cloud for tests and examples;
//! - `testkit` (feature): the conformance scenarios every provider must pass.
//!
//! Core never names a backend: CloudStack, OpenNebula and EC2 live in their own crates
//! and depend on this one.

pub mod bootstrap;
pub mod config;
pub mod credentials;
pub mod deploy;
pub mod error;
pub mod memory;
pub mod model;
pub mod planner;
pub mod provider;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod vault;
pub mod vpn;
pub mod wrap;

pub use credentials::{CredentialRef, Credentials};
pub use error::{Error, ErrorClass, ErrorInfo, ErrorKind, Result};
pub use memory::{FaultTiming, MemoryProvider, MemoryProviderBuilder, Method};
pub use model::*;
pub use provider::{CloudProvider, CloudProviderExt};
pub use vault::{EncryptedFileVault, KdfParams, MemoryVault, Vault, VaultError, VaultOptions};
pub use vpn::{
    BootFile, Bootstrap, FabricKind, LinkId, LinkSpec, LinkState, Member, PeerAccess, SiteContext,
    SiteEndpoint, VpnFabric,
};

/// The README's library example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
