//! Ansible inventories of a cluster, grouped by role and by site.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{ClusterLayout, NodeInfo};

fn groups(layout: &ClusterLayout) -> BTreeMap<String, Vec<&NodeInfo>> {
    let mut g: BTreeMap<String, Vec<&NodeInfo>> = BTreeMap::new();
    for n in &layout.nodes {
        g.entry(ansible_name(&n.role)).or_default().push(n);
        g.entry(format!("site_{}", ansible_name(n.site.as_str())))
            .or_default()
            .push(n);
    }
    for nodes in g.values_mut() {
        nodes.sort_by(|a, b| crate::natural_cmp(&a.name, &b.name));
    }
    g
}

/// Ansible group names allow letters, digits and `_`.
fn ansible_name(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// An INI inventory: every node with `ansible_host` = overlay address, groups per role
/// and per site (`site_NAME`), and a `CLUSTER:children` group of them all.
pub fn ansible_ini(layout: &ClusterLayout) -> String {
    let g = groups(layout);
    let mut out = String::new();
    for (name, nodes) in &g {
        let _ = writeln!(out, "[{name}]");
        for n in nodes {
            let _ = writeln!(
                out,
                "{} ansible_host={} intercloud_site={}",
                n.name, n.overlay_ip, n.site
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "[{}:children]", ansible_name(&layout.cluster));
    for name in g.keys() {
        let _ = writeln!(out, "{name}");
    }
    out
}

/// The same inventory in Ansible's YAML format.
pub fn ansible_yaml(layout: &ClusterLayout) -> String {
    let g = groups(layout);
    let mut out = format!(
        "all:\n  children:\n    {}:\n      children:\n",
        ansible_name(&layout.cluster)
    );
    for (name, nodes) in &g {
        let _ = writeln!(out, "        {name}:\n          hosts:");
        for n in nodes {
            let _ = writeln!(
                out,
                "            {}:\n              ansible_host: \"{}\"\n              intercloud_site: \"{}\"",
                n.name, n.overlay_ip, n.site
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn ini_groups_by_role_and_site() {
        let ini = ansible_ini(&sample());
        assert!(ini.contains("[worker]\nworker-1 ansible_host=10.77.0.11 intercloud_site=hokkaido\nworker-2 ansible_host=10.77.1.10 intercloud_site=nii\n"), "{ini}");
        assert!(ini.contains("[site_nii]\nworker-2 "));
        assert!(
            ini.contains("[hadoop_demo:children]\nmaster\nsite_hokkaido\nsite_nii\nworker\n"),
            "{ini}"
        );
    }

    #[test]
    fn hosts_of_a_group_are_in_natural_order() {
        let mut l = sample();
        let mut ten = l.nodes[2].clone();
        ten.name = "worker-10".into();
        ten.overlay_ip = "10.77.1.11".into();
        l.nodes.insert(1, ten);
        let ini = ansible_ini(&l);
        let (two, ten) = (
            ini.find("\nworker-2 ").unwrap(),
            ini.find("\nworker-10 ").unwrap(),
        );
        assert!(two < ten, "worker-2 before worker-10: {ini}");
    }

    #[test]
    fn yaml_lists_every_host_in_its_groups() {
        let y = ansible_yaml(&sample());
        assert!(y.starts_with("all:\n  children:\n    hadoop_demo:\n      children:\n"));
        assert_eq!(y.matches("ansible_host: \"10.77.1.10\"").count(), 2, "{y}");
    }
}
