//! Reading back the cloud-init documents `intercloud_core::bootstrap::cloud_init`
//! writes, as a VM would apply them.

use base64::Engine as _;
use std::collections::BTreeMap;

/// `write_files` (path → (permissions, decoded content)) and `runcmd` (`sh -c`
/// arguments) of a document in the exact shape `cloud_init` writes.
#[allow(clippy::type_complexity)]
pub(crate) fn parse_cloud_config(doc: &str) -> (BTreeMap<String, (String, String)>, Vec<String>) {
    let json = |s: &str| -> String { serde_json::from_str(s).expect("a JSON/YAML string") };
    let mut files = BTreeMap::new();
    let mut commands = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if let Some(path) = line.strip_prefix("  - path: ") {
            let mode = lines
                .next()
                .and_then(|l| l.strip_prefix("    permissions: "));
            let enc = lines.next();
            let content = lines.next().and_then(|l| l.strip_prefix("    content: "));
            let (Some(mode), Some("    encoding: b64"), Some(content)) = (mode, enc, content)
            else {
                panic!("unexpected write_files entry after {line:?}:\n{doc}");
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(content)
                .expect("base64 content");
            files.insert(
                json(path),
                (json(mode), String::from_utf8(bytes).expect("UTF-8 file")),
            );
        } else if let Some(cmd) = line.strip_prefix("  - [sh, -c, ") {
            commands.push(json(cmd.strip_suffix(']').expect("closing bracket")));
        }
    }
    (files, commands)
}
