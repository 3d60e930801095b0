//! # intercloud-opennebula
//!
//! intercloud's backend for [OpenNebula](https://opennebula.io), speaking oned's
//! XML-RPC API (`http://HOST:2633/RPC2`) directly:
//!
//! - [`OpenNebulaBuilder`] → [`OpenNebulaProvider`], core's `CloudProvider`;
//!   `from_env()` reads `ONE_XMLRPC` and `ONE_AUTH` like the `onevm` CLI;
//! - [`OneClient`]: the authenticated XML-RPC client (the only code that sends);
//! - [`xmlrpc`]: encoding and decoding of XML-RPC values;
//! - [`template`]: OpenNebula template text with escaping, and tag ↔ attribute names;
//! - [`model`]: the VM, template, host and user documents;
//! - [`state`]: `STATE` × `LCM_STATE` → core's `VmState`;
//! - [`error`]: OpenNebula's error codes → core's `ErrorKind`.
//!
//! VMs are made with `one.template.instantiate` (the offering is a template name or
//! id), one call per VM, concurrently; user data goes into the template's CONTEXT as
//! base64 `USER_DATA`, and intercloud's tags into `USER_TEMPLATE`. Listing is one
//! `one.vmpool.infoextended` per poll. The session `user:password` is the first
//! parameter of every call and never appears in `Debug` output, logs or errors.

mod builder;
mod client;
mod dom;
pub mod error;
pub mod model;
mod provider;
pub mod state;
pub mod template;
pub mod xmlrpc;

pub use builder::{OpenNebulaBuilder, PoolFilter, DEFAULT_ENDPOINT};
pub use client::OneClient;
pub use provider::{extra_template, OpenNebulaProvider, MAX_BATCH, MAX_USER_DATA};
pub use template::{Template, TemplateError};
pub use xmlrpc::Value;
