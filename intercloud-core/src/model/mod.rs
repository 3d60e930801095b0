//! The federation's vocabulary as plain data: sites, VMs, topology, cluster requests.
//!
//! Everything here is `serde`-serialisable so it can be journaled, printed as JSON and
//! read from the CLI's TOML files. Nothing here does I/O.

mod capacity;
mod natural;
mod request;
mod site;
mod tags;
mod topology;
mod vm;

pub use capacity::{Capabilities, Capacity, Limit, Offering, UserDataFormat};
pub use natural::natural_cmp;
pub use request::{
    validate_cluster_name, ClusterRequest, FabricChoice, NodeGroup, Profile, Spread, Traffic,
    TrafficPattern, VpnWish, DEFAULT_OVERLAY_CIDR,
};
pub use site::{ImageRef, LevelOffering, Middleware, ServiceLevel, Site, SiteId};
pub use tags::{
    IdempotencyKey, Tags, TAG_CLUSTER, TAG_DEPLOYMENT, TAG_INDEX, TAG_KEY, TAG_PREFIX, TAG_ROLE,
};
pub use topology::{
    Link, PlacementCounts, Topology, DEFAULT_VPN_OVERHEAD, INTRA_SITE_BANDWIDTH_MBPS,
    INTRA_SITE_RTT_MS,
};
pub use vm::{GuestNetwork, UserData, Vm, VmFilter, VmId, VmSpec, VmState};
