//! IPsec site-to-site with strongSwan: proposal conversion from the clouds' notations
//! and `swanctl.conf` for a gateway VM facing a native cloud VPN gateway or another
//! strongSwan gateway.

mod fabric;
mod proposal;
mod swanctl;

pub use fabric::{
    generate_psk, policy_from_attributes, StrongSwanFabric, ATTR_ESP_LIFETIME, ATTR_ESP_POLICY,
    ATTR_ESP_PROPOSALS, ATTR_GATEWAY, ATTR_IKE_LIFETIME, ATTR_IKE_POLICY, ATTR_IKE_PROPOSALS,
    ATTR_IKE_VERSION,
};
pub use proposal::{
    from_cloudstack, from_ec2, strongswan_proposal, ProposalFor, CLOUDSTACK_DEFAULT_IKE_GROUP,
};
pub use swanctl::{swanctl_conf, Ec2Phase, IkeVersion, IpsecPolicy, SiteToSite};

use intercloud_core::{BootFile, Bootstrap, Result};

/// Where the gateway's connections file goes (swanctl reads `conf.d/*.conf`).
pub const SWANCTL_PATH: &str = "/etc/swanctl/conf.d/intercloud.conf";

/// The boot configuration of a strongSwan gateway VM holding `conns`: packages,
/// the connections file (mode 0600: it holds the PSKs), IP forwarding, and loading
/// the connections into the running charon.
///
/// # Errors
/// `Invalid` from [`swanctl_conf`].
pub fn gateway_bootstrap(conns: &[SiteToSite]) -> Result<Bootstrap> {
    Ok(Bootstrap {
        packages: vec![
            "strongswan-swanctl".into(),
            "charon-systemd".into(),
            "libstrongswan-standard-plugins".into(),
        ],
        files: vec![BootFile {
            path: SWANCTL_PATH.into(),
            mode: "0600".into(),
            content: swanctl_conf(conns)?,
        }],
        commands: vec![
            "sysctl -w net.ipv4.ip_forward=1".into(),
            "systemctl enable --now strongswan".into(),
            "swanctl --load-all".into(),
        ],
    })
}
