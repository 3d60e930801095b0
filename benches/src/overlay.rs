//! A generated cluster for the rendering benchmarks: `n` nodes spread evenly over
//! `sites` sites, as a WireGuard [`Mesh`] (keys generated, gateway addresses set) and
//! as the bootstrap [`ClusterLayout`] every node's files are rendered from.

use std::collections::BTreeMap;

use intercloud_core::bootstrap::{ClusterLayout, NodeInfo};
use intercloud_core::model::Profile;
use intercloud_core::{Result, SiteId};
use intercloud_vpn::{Ipam, Mesh, DEFAULT_OVERLAY_CIDR};

/// The site ids `site-0` … `site-{sites-1}`.
pub fn site_ids(sites: usize) -> Vec<SiteId> {
    (0..sites)
        .map(|s| SiteId::new(format!("site-{s}")))
        .collect()
}

/// The name of node `i` (`node-0` is the master).
pub fn node_name(i: usize) -> String {
    format!("node-{i}")
}

/// A mesh with one gateway per site (public and local address set) and `n` members,
/// node `i` on site `i % sites`.
///
/// # Errors
/// `Config` when the overlay CIDR cannot hold the nodes.
pub fn mesh(n: usize, sites: usize) -> Result<Mesh> {
    let ids = site_ids(sites);
    let mut counts: BTreeMap<SiteId, u32> = BTreeMap::new();
    for i in 0..n {
        *counts.entry(ids[i % sites].clone()).or_default() += 1;
    }
    let ipam = Ipam::plan(DEFAULT_OVERLAY_CIDR, &counts)?;
    let mut mesh = Mesh::new(ipam, "icl0", 51820);
    for (s, id) in ids.iter().enumerate() {
        mesh.add_site(id)?;
        mesh.set_gateway_address(
            id,
            Some(&format!("192.0.2.{}", s + 1)),
            Some(&format!("10.{s}.0.1")),
        )?;
    }
    for i in 0..n {
        mesh.add_member(&node_name(i), &ids[i % sites])?;
    }
    Ok(mesh)
}

/// The layout of the same cluster with the Hadoop profile and the mesh's addresses.
///
/// # Errors
/// `Config` when a node has no overlay address in `mesh`.
pub fn layout(mesh: &Mesh, n: usize) -> Result<ClusterLayout> {
    let nodes = (0..n)
        .map(|i| {
            let name = node_name(i);
            let (site, ip) = mesh.ipam().node(&name).ok_or_else(|| {
                intercloud_core::Error::config(format!("{name} has no overlay address"))
            })?;
            Ok(NodeInfo {
                role: if i == 0 { "master" } else { "worker" }.to_owned(),
                site: site.clone(),
                overlay_ip: ip.to_string(),
                slots: 2,
                name,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ClusterLayout {
        cluster: "bench".to_owned(),
        profile: Profile::Hadoop,
        nodes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_gets_a_member_config_and_gateways_list_their_members() {
        let mesh = mesh(40, 4).expect("mesh");
        let l = layout(&mesh, 40).expect("layout");
        assert_eq!(l.nodes.len(), 40);
        let gw = mesh.gateway_config(&SiteId::new("site-1")).expect("gw");
        // 3 other gateways + 10 members of site-1.
        assert_eq!(gw.matches("[Peer]").count(), 13);
        let member = mesh.member_config("node-39").expect("member");
        assert_eq!(member.matches("[Peer]").count(), 1);
        let hosts = intercloud_core::bootstrap::hosts_file(&l);
        assert!(hosts.contains("node-39"));
    }
}
