//! Small helpers for writing EC2 XML.

/// Escapes text for XML element content (quotes stay literal, as AWS writes them).
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `<name>escaped value</name>`.
pub(crate) fn el(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", esc(value))
}

/// `<tagSet><item><key>…</key><value>…</value></item>…</tagSet>` (empty set when no tags).
pub(crate) fn tag_set(tags: &[(String, String)]) -> String {
    let items: String = tags
        .iter()
        .map(|(k, v)| format!("<item>{}{}</item>", el("key", k), el("value", v)))
        .collect();
    format!("<tagSet>{items}</tagSet>")
}

/// `<name><code>N</code><name>state</name></name>` for an instance state.
pub(crate) fn state(name: &str, state: &str) -> String {
    let code = match state {
        "pending" => 0,
        "running" => 16,
        "shutting-down" => 32,
        "terminated" => 48,
        "stopping" => 64,
        _ => 80,
    };
    format!("<{name}><code>{code}</code><name>{state}</name></{name}>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(el("a", "x<&>\"'"), "<a>x&lt;&amp;&gt;\"'</a>");
        assert_eq!(tag_set(&[]), "<tagSet></tagSet>");
        assert_eq!(
            state("currentState", "terminated"),
            "<currentState><code>48</code><name>terminated</name></currentState>"
        );
    }
}
