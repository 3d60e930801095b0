//! One create call's per-node parts in constant size.
//!
//! Every VM of a create call receives the same user data and finds its own part by
//! its index (EC2's `ami-launch-index`, or the `-INDEX` suffix CloudStack and
//! OpenNebula give its name). Shipping each node's part would make the user data
//! O(batch), and EC2 makes hundreds of VMs per call. But the parts of a call's
//! members differ only by the node's name, overlay address and WireGuard private
//! key: each part is turned into a *template* by replacing those three values with
//! `@IC_NAME@`, `@IC_IP@` and `@IC_WGKEY@` (checked: substituting them back gives
//! the part exactly, else the part is kept as it is), equal templates are shipped
//! once, and a table `INDEX NAME IP TEMPLATE GROUP` (compressed into runs by
//! [`sh_lines`]) tells each VM which template is its own. The private key is not in
//! the table: the VM derives it from its key group's secret and its name
//! (`crate::wireguard::DERIVE_FN`), so the call carries one secret per key group —
//! one for a call of the initial plan, whose members belong to one group.
//!
//! A template used by one node only (a site's gateway, a member with a rotated key)
//! ships as that node's literal part: explicit exceptions, bounded by the call.
//!
//! `/etc/intercloud/batch.sh` applies the VM's template: files under
//! `/etc/intercloud/tpl/T/root` are copied to `/` with the values substituted (`sed`),
//! and `/etc/intercloud/tpl/T/run.sh` becomes `/etc/intercloud/run.sh` and runs.
//! For tests, `IC_ROOT` prefixes every path written (and then nothing runs) and
//! `IC_INDEX` gives the index.

use std::fmt::Write as _;

use secrecy::{ExposeSecret, SecretString};

use intercloud_core::bootstrap::{sh_lines, sh_quote, RUN_FN};
use intercloud_core::{BootFile, Bootstrap};

use crate::wireguard::{KeyGroup, DERIVE_FN};

const NAME: &str = "@IC_NAME@";
const IP: &str = "@IC_IP@";
const KEY: &str = "@IC_WGKEY@";

/// The program each VM of a multi-node call runs to apply its own part.
pub(crate) const BATCH_SCRIPT: &str = "/etc/intercloud/batch.sh";

/// One node's part of a create call and the values its template abstracts.
#[derive(Debug)]
pub(crate) struct NodePart {
    /// The VM index in the call.
    pub index: usize,
    /// The node's name.
    pub name: String,
    /// Its overlay address.
    pub ip: String,
    /// Its key group id and secret and its derived private key, when it has one.
    pub key: Option<(String, KeyGroup, SecretString)>,
    /// The part.
    pub part: Bootstrap,
}

fn replace_all(b: &Bootstrap, pairs: &[(&str, &str)]) -> Bootstrap {
    let apply = |s: &str| {
        pairs
            .iter()
            .filter(|(from, _)| !from.is_empty())
            .fold(s.to_owned(), |acc, (from, to)| acc.replace(from, to))
    };
    Bootstrap {
        packages: b.packages.clone(),
        files: b
            .files
            .iter()
            .map(|f| BootFile {
                content: apply(&f.content),
                ..f.clone()
            })
            .collect(),
        commands: b.commands.iter().map(|c| apply(c)).collect(),
    }
}

/// `n`'s template, and whether it uses the derived key; the literal part when
/// substituting back would not give the part.
fn template(n: &NodePart) -> (Bootstrap, bool) {
    let key = n.key.as_ref().map(|(_, _, k)| k.expose_secret().to_owned());
    let key = key.as_deref().unwrap_or("");
    let tpl = replace_all(&n.part, &[(key, KEY), (&n.ip, IP), (&n.name, NAME)]);
    // the order `batch.sh`'s sed substitutes in
    let back = replace_all(&tpl, &[(NAME, &n.name), (IP, &n.ip), (KEY, key)]);
    let literal_ok = replace_all(&n.part, &[(NAME, ""), (IP, ""), (KEY, "")]) == n.part;
    if back == n.part && literal_ok {
        let uses_key = !key.is_empty()
            && (tpl.files.iter().any(|f| f.content.contains(KEY))
                || tpl.commands.iter().any(|c| c.contains(KEY)));
        (tpl, uses_key)
    } else {
        (n.part.clone(), false)
    }
}

/// The parts of a multi-node create call: the templates, the table and
/// [`BATCH_SCRIPT`] (see the module docs). Empty when no node has a part.
pub(crate) fn batch_parts(nodes: &[NodePart]) -> Vec<Bootstrap> {
    if nodes.is_empty() {
        return Vec::new();
    }
    let templated: Vec<(Bootstrap, bool)> = nodes.iter().map(template).collect();
    let mut uses: Vec<(&Bootstrap, usize)> = Vec::new();
    for (t, _) in &templated {
        match uses.iter_mut().find(|(u, _)| *u == t) {
            Some((_, n)) => *n += 1,
            None => uses.push((t, 1)),
        }
    }
    let shared = |t: &Bootstrap| uses.iter().any(|(u, n)| *u == t && *n > 1);
    let mut templates: Vec<Bootstrap> = Vec::new();
    let mut groups: Vec<(String, KeyGroup)> = Vec::new();
    let mut table = String::new();
    for (n, (t, uses_key)) in nodes.iter().zip(&templated) {
        // a template of one node is that node's literal part
        let (t, uses_key) = if shared(t) {
            (t.clone(), *uses_key)
        } else {
            (n.part.clone(), false)
        };
        let ti = match templates.iter().position(|x| *x == t) {
            Some(i) => i,
            None => {
                templates.push(t);
                templates.len() - 1
            }
        };
        let gi = match (&n.key, uses_key) {
            (Some((id, secret, _)), true) => match groups.iter().position(|(g, _)| g == id) {
                Some(i) => i + 1,
                None => {
                    groups.push((id.clone(), secret.clone()));
                    groups.len()
                }
            },
            _ => 0,
        };
        let _ = writeln!(table, "{} {} {} {ti} {gi}", n.index, n.name, n.ip);
    }
    let mut out = Bootstrap::default();
    for (ti, t) in templates.into_iter().enumerate() {
        let dir = format!("/etc/intercloud/tpl/{ti}");
        for p in t.packages {
            if !out.packages.contains(&p) {
                out.packages.push(p);
            }
        }
        out.files.extend(t.files.into_iter().map(|f| BootFile {
            path: format!("{dir}/root{}", f.path),
            ..f
        }));
        let mut script = String::from("#!/bin/sh\nset -e\n");
        for c in &t.commands {
            script.push_str(c);
            script.push('\n');
        }
        out.files.push(BootFile {
            path: format!("{dir}/run.sh"),
            mode: "0700".into(),
            content: script,
        });
    }
    if !groups.is_empty() && !out.packages.iter().any(|p| p == "openssl") {
        out.packages.push("openssl".into());
    }
    out.files.push(BootFile {
        path: BATCH_SCRIPT.into(),
        mode: "0700".into(),
        content: batch_script(&table, &groups),
    });
    out.commands.push(format!("sh {BATCH_SCRIPT}"));
    vec![out]
}

fn batch_script(table: &str, groups: &[(String, KeyGroup)]) -> String {
    let mut s = format!(
        "#!/bin/sh\nset -e\n{RUN_FN}{DERIVE_FN}ic_nodes() {{\n{}}}\n",
        sh_lines(table)
    );
    s.push_str("ic_secret() { case $1 in\n");
    for (i, (_, g)) in groups.iter().enumerate() {
        let _ = writeln!(s, "  {}) echo {} ;;", i + 1, sh_quote(g.hex()));
    }
    s.push_str("esac; }\n");
    s.push_str(
        r#"i=${IC_INDEX:-$(curl -sf --max-time 2 http://169.254.169.254/latest/meta-data/ami-launch-index || hostname | sed 's/.*-//')}
line=$(ic_nodes | awk -v i="$i" '$1 == i')
[ -n "$line" ] || exit 0
set -- $line
name=$2 ip=$3 t=$4 g=$5 key=
[ "$g" = 0 ] || key=$(ic_wgkey "$(ic_secret "$g")" "$name")
esc() { printf '%s\n' "$1" | sed 's/[\\&|]/\\&/g'; }
sub="s|@IC_NAME@|$(esc "$name")|g;s|@IC_IP@|$(esc "$ip")|g;s|@IC_WGKEY@|$(esc "$key")|g"
d=$IC_ROOT/etc/intercloud/tpl/$t
if [ -d "$d/root" ]; then
  (cd "$d/root" && find . -type f) | while read -r f; do
    f=${f#.}
    mkdir -p "$IC_ROOT$(dirname "$f")"
    cp -p "$d/root$f" "$IC_ROOT$f"
    sed -i "$sub" "$IC_ROOT$f"
  done
fi
sed "$sub" "$d/run.sh" > "$IC_ROOT/etc/intercloud/run.sh"
chmod 700 "$IC_ROOT/etc/intercloud/run.sh"
[ -n "$IC_ROOT" ] || sh /etc/intercloud/run.sh
"#,
    );
    s
}
