//! A simulated cloud federation on loopback: what moto is for AWS, for CloudStack,
//! OpenNebula and EC2 together.
//!
//! [`Federation::start`] binds one HTTP server per site on `127.0.0.1` (ephemeral ports
//! unless configured), each speaking its middleware's real wire protocol:
//!
//! | middleware | endpoint | auth |
//! |---|---|---|
//! | CloudStack | `http://127.0.0.1:P/client/api` (`response=json`) | HMAC-SHA1 signature over the sorted, lowercased query (exactly as `ApiServer.verifyRequest`) |
//! | OpenNebula | `http://127.0.0.1:P/RPC2` (XML-RPC) | session string `user:password` as first parameter |
//! | EC2 | `http://127.0.0.1:P/` (Query API, POST form) | SigV4 (`Authorization` header or presigned query), service `ec2`, the site's region |
//!
//! Behind every site sits one engine ([`engine`](crate::ResourceRecord)) with capacity per
//! offering, a boot-time distribution, per-request latency (a non-blocking tokio sleep),
//! a token-bucket rate limit answered with the middleware's own throttling error, and
//! fault injection (error rate per call, job failure rate, outage window, slow factor),
//! all driven by one seeded RNG and tokio's clock scaled by
//! [`FederationConfig::time_scale`].
//!
//! Guest networks are those the cloud VPN gateways route: each CloudStack site has one
//! VPC tier (`listNetworks`, VPC `10.{100+i}.0.0/16` for site position `i`, tier
//! `10.{100+i}.0.0/20`), each EC2 site the default VPC `172.31.0.0/16` with one `/20`
//! default subnet per zone (`DescribeSubnets`, `DescribeNetworkInterfaces`). VMs get
//! the next free address of their network, or the one `deployVirtualMachine
//! ipaddress=` / `RunInstances PrivateIpAddress=` asks for, refused with the cloud's own
//! error when another VM holds it (CloudStack 533 "Unable to acquire Guest IP address
//! for network …", EC2 `InvalidIPAddress.InUse`). A CloudStack VPC's source NAT IP
//! belongs to the VPC (`listPublicIpAddresses vpcid=`), as on a real cloud; an EC2
//! default VPC has a main route table (`DescribeRouteTables`) into which an attached
//! VPN gateway's routes propagate (`EnableVgwRoutePropagation`, refused with
//! `Gateway.NotAttached` otherwise).
//!
//! Introspection ([`Federation::resources`], [`SiteHandle::calls`],
//! [`Federation::alive_with_tag`]) lets tests check that nothing is left behind.
//!
//! The default federation ([`FederationConfig::seed_default`]) mirrors the seed
//! experiment; its credentials are:
//! - `hokkaido` (CloudStack, zone `hokkaido-zone1`): api key `hokkaido-api-key`, secret `hokkaido-secret-key`;
//! - `nii` (OpenNebula): `oneadmin:nii-password`;
//! - `tokyo` (EC2, region `ap-northeast-1`): `AKIDTOKYOEXAMPLE` / `tokyo-secret-access-key`.

mod cloudstack;
pub mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
mod ec2;
mod engine;
mod federation;
mod opennebula;
mod server;
pub mod testing;

pub use config::{Faults, FederationConfig, OfferingConfig, SimCredentials, SiteConfig};
pub use engine::{ResourceKind, ResourceRecord};
pub use federation::{Federation, SiteHandle, StartError};
