//! The WireGuard fabric: keys, wg-quick files, the per-cluster mesh and live changes.

mod config;
mod derive;
mod fabric;
mod keys;
mod mesh;

pub use config::{peer_changes, wg_quick, wg_setconf, Interface, Peer};
pub use derive::{KeyGroup, DERIVE_FN};
pub use fabric::{PeerUpdate, WireGuardFabric};
pub use keys::KeyPair;
pub use mesh::{Mesh, DEFAULT_PORT};
