//! # intercloud-ec2
//!
//! The AWS EC2 and Eucalyptus backend of intercloud, over the EC2 Query API
//! (`Version=2016-11-15`):
//!
//! - [`Ec2Provider`] implements [`intercloud_core::CloudProvider`]: one `RunInstances`
//!   per create (`MinCount = MaxCount`, `ClientToken`, `TagSpecification`, base64
//!   `UserData`) and nothing more: the batch shares an `intercloud-index-base` tag and
//!   each VM's index is derived from its `amiLaunchIndex` when listing; idempotent
//!   through the key tag; `DescribeInstances` with tag filters
//!   and `NextToken` for listing; `TerminateInstances` for delete (gone = `Ok`);
//!   `DescribeInstanceTypes` for offerings; account attributes for capacity.
//! - [`Ec2VpnFabric`] implements [`intercloud_core::VpnFabric`] with VPN gateways,
//!   customer gateways and VPN connections.
//! - [`Ec2Builder`] configures AWS (`region`, or [`Ec2Builder::from_env`]) or
//!   Eucalyptus (an endpoint, SigV4 or SigV2): one crate, two configurations.
//! - Its `guest_network` is the configured or default subnet ([`subnet`]): a create
//!   with chosen addresses is one `RunInstances` per VM with `SubnetId` and
//!   `PrivateIpAddress`; `InvalidIPAddress.InUse` is a temporary `AlreadyExists`.
//! - [`sigv4`] and [`sigv2`] sign requests (pure, clock passed in), checked on the
//!   published vectors; [`xml`] reads answers by local names; [`error`] holds the one
//!   table mapping EC2 error codes to [`intercloud_core::ErrorKind`].

pub mod builder;
pub mod client;
mod create;
pub mod error;
pub mod model;
pub mod provider;
pub mod query;
pub mod sigv2;
pub mod sigv4;
pub mod subnet;
pub mod vpn;
pub mod xml;

pub use builder::Ec2Builder;
pub use client::{Client, Signing};
pub use provider::{Ec2Provider, Flavour, MAX_USER_DATA};
pub use sigv2::Sigv2Method;
pub use sigv4::AwsCredentials;
pub use vpn::{Ec2VpnFabric, Tunnel, VpnConnection};
