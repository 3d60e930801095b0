//! The caller's hook that renders each create call's user data (cloud-init).

use std::collections::BTreeMap;
use std::fmt;

use super::plan::{Batch, NodePlan};
use crate::model::{SiteId, UserData};
use crate::vpn::{SiteEndpoint, VpnFabric};
use crate::Result;

/// What a [`NodeConfigurer`] sees: the whole cluster as it stands when a batch is
/// created (names, roles, current sites and overlay addresses) and the prepared
/// overlay endpoints.
#[derive(Debug)]
pub struct ConfigContext<'a> {
    /// The cluster's name.
    pub cluster: &'a str,
    /// Every node, with its current site.
    pub nodes: &'a [NodePlan],
    /// The prepared endpoints by site (empty without a fabric).
    pub endpoints: &'a BTreeMap<SiteId, SiteEndpoint>,
    /// The fabric, for [`VpnFabric::member_bootstrap`].
    pub fabric: Option<&'a dyn VpnFabric>,
}

/// Renders the user data of one create call.
///
/// Every VM of a batch receives the same user data (one `create_vms` call carries one
/// document); VM `i` is node `batch.nodes[i]` and finds its own part by its index tag
/// or its overlay address. Return `Ok(None)` for no user data. An error fails the
/// batch's nodes (they are not created).
pub trait NodeConfigurer: Send + Sync + fmt::Debug {
    /// The user data for `batch`.
    ///
    /// # Errors
    /// Any error; the deployer reports it as a failed step for the batch's nodes.
    fn user_data(&self, ctx: &ConfigContext<'_>, batch: &Batch) -> Result<Option<UserData>>;
}

/// The default configurer: no user data.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoUserData;

impl NodeConfigurer for NoUserData {
    fn user_data(&self, _: &ConfigContext<'_>, _: &Batch) -> Result<Option<UserData>> {
        Ok(None)
    }
}

/// A configurer from a closure.
pub struct FnConfigurer<F>(pub F);

impl<F> fmt::Debug for FnConfigurer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnConfigurer")
    }
}

impl<F> NodeConfigurer for FnConfigurer<F>
where
    F: Fn(&ConfigContext<'_>, &Batch) -> Result<Option<UserData>> + Send + Sync,
{
    fn user_data(&self, ctx: &ConfigContext<'_>, batch: &Batch) -> Result<Option<UserData>> {
        (self.0)(ctx, batch)
    }
}
