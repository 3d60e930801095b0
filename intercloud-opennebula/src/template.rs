//! OpenNebula template text (`NAME="value"`, `NAME=[A="1",B="2"]`) with escaping, and
//! the mapping between intercloud tag keys and `USER_TEMPLATE` attribute names. Pure.
//!
//! The rules follow oned's lexer and grammar (`src/parsers/template_parser.l`,
//! `template_syntax.y`): a quoted value is `"` then any mix of `\"` and non-`"`
//! characters then `"`, newlines included; the only unescape is `\"` → `"`. Hence:
//! - `"` is written `\"`, and every other character verbatim;
//! - a value ending in `\` is refused (its closing quote would read as `\"`);
//! - a value containing `]]>` is refused (the lexer turns any line holding it into a
//!   CDATA token the grammar aborts on);
//! - characters XML cannot carry (NUL, most C0 controls) are refused.
//!
//! Errors name the attribute, never the value (values may be secrets).

use std::fmt;

/// One attribute of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attr {
    Single(String, String),
    Vector(String, Vec<(String, String)>),
}

/// A template to render: attributes in the order they were added.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Template {
    attrs: Vec<Attr>,
}

impl fmt::Debug for Template {
    // Values can hold user data or keys: list names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.attrs.iter().map(|a| match a {
                Attr::Single(n, _) | Attr::Vector(n, _) => n.as_str(),
            }))
            .finish()
    }
}

/// Why a template cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(String);

impl TemplateError {
    /// The description (names the attribute, not its value).
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

impl Template {
    /// An empty template.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a single attribute `NAME="value"`.
    pub fn single(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attrs.push(Attr::Single(name.into(), value.into()));
        self
    }

    /// Adds a vector attribute `NAME=[K="v",…]`, pairs in the given order.
    pub fn vector<K, V>(
        mut self,
        name: impl Into<String>,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let pairs = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.attrs.push(Attr::Vector(name.into(), pairs));
        self
    }

    /// Whether no attribute was added.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }

    /// Renders the template, one attribute per line, no trailing newline.
    ///
    /// # Errors
    /// A name that is not `[A-Z][A-Z0-9_]*`, or a value that oned would misread (see
    /// the module docs).
    pub fn render(&self) -> Result<String, TemplateError> {
        let mut out = String::new();
        for (i, attr) in self.attrs.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            match attr {
                Attr::Single(name, value) => {
                    check_name(name)?;
                    out.push_str(name);
                    out.push('=');
                    push_quoted(&mut out, name, value)?;
                }
                Attr::Vector(name, pairs) => {
                    check_name(name)?;
                    out.push_str(name);
                    out.push_str("=[");
                    for (j, (k, v)) in pairs.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        check_name(k)?;
                        out.push_str(k);
                        out.push('=');
                        push_quoted(&mut out, &format!("{name}/{k}"), v)?;
                    }
                    out.push(']');
                }
            }
        }
        Ok(out)
    }
}

fn check_name(name: &str) -> Result<(), TemplateError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(TemplateError(format!(
            "template attribute name {:?} must be upper-case letters, digits and '_', starting with a letter",
            crate::xmlrpc::clip(name)
        )))
    }
}

fn push_quoted(out: &mut String, name: &str, value: &str) -> Result<(), TemplateError> {
    if value.contains("]]>") {
        return Err(TemplateError(format!(
            "the value of {name} contains ']]>', which OpenNebula's template parser rejects; \
             base64-encode it"
        )));
    }
    if value.ends_with('\\') {
        return Err(TemplateError(format!(
            "the value of {name} ends with '\\', which OpenNebula's template syntax cannot \
             express; base64-encode it"
        )));
    }
    if let Some(c) = value.chars().find(|&c| {
        ((c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r'))
            || c == '\u{FFFE}'
            || c == '\u{FFFF}'
    }) {
        return Err(TemplateError(format!(
            "the value of {name} holds control character U+{:04X}; base64-encode it",
            c as u32
        )));
    }
    out.push('"');
    for c in value.chars() {
        if c == '"' {
            out.push_str("\\\"");
        } else {
            out.push(c);
        }
    }
    out.push('"');
    Ok(())
}

/// The `USER_TEMPLATE` attribute holding tag `key`: upper-case, `-` → `_`
/// (`intercloud-cluster` → `INTERCLOUD_CLUSTER`).
///
/// # Errors
/// When the key does not come back unchanged through [`tag_key`] (it must be
/// lower-case letters, digits and `-`, starting with a letter), so that a VM created
/// with a tag is always found by a filter on the same tag.
pub fn tag_attribute(key: &str) -> Result<String, TemplateError> {
    let attr: String = key
        .chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    if check_name(&attr).is_err() || tag_key(&attr) != key {
        return Err(TemplateError(format!(
            "tag key {:?} cannot be stored as an OpenNebula USER_TEMPLATE attribute: use \
             lower-case letters, digits and '-', starting with a letter",
            crate::xmlrpc::clip(key)
        )));
    }
    Ok(attr)
}

/// The tag key an attribute name stands for: lower-case, `_` → `-`
/// (`INTERCLOUD_CLUSTER` → `intercloud-cluster`).
pub fn tag_key(attr: &str) -> String {
    attr.chars()
        .map(|c| {
            if c == '_' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reads template text back the way oned's lexer and grammar do (for tests):
    /// `NAME=` then a quoted string of `\"` / non-`"` characters, or `[` pairs `]`.
    pub(crate) fn parse_back(text: &str) -> Vec<(String, Vec<(String, String)>)> {
        let b: Vec<char> = text.chars().collect();
        let mut i = 0;
        let mut out = Vec::new();
        let name = |i: &mut usize| {
            let s = *i;
            while *i < b.len() && (b[*i].is_ascii_alphanumeric() || b[*i] == '_') {
                *i += 1;
            }
            b[s..*i].iter().collect::<String>()
        };
        let quoted = |i: &mut usize| {
            assert_eq!(b[*i], '"');
            *i += 1;
            let mut raw = String::new();
            loop {
                if b[*i] == '\\' && b.get(*i + 1) == Some(&'"') {
                    raw.push_str("\\\"");
                    *i += 2;
                } else if b[*i] == '"' {
                    *i += 1;
                    break;
                } else {
                    raw.push(b[*i]);
                    *i += 1;
                }
            }
            raw.replace("\\\"", "\"")
        };
        while i < b.len() {
            if b[i] == '\n' {
                i += 1;
                continue;
            }
            let n = name(&mut i);
            assert_eq!(b[i], '=');
            i += 1;
            if b[i] == '[' {
                i += 1;
                let mut pairs = Vec::new();
                while b[i] != ']' {
                    if b[i] == ',' {
                        i += 1;
                    }
                    let k = name(&mut i);
                    assert_eq!(b[i], '=');
                    i += 1;
                    pairs.push((k, quoted(&mut i)));
                }
                i += 1;
                out.push((n, pairs));
            } else {
                out.push((n.clone(), vec![(n, quoted(&mut i))]));
            }
        }
        out
    }

    #[test]
    fn renders_the_allocate_fixture_shape() {
        let t = Template::new()
            .single("NAME", "vm-a")
            .single("CPU", "1")
            .vector("DISK", [("IMAGE_ID", "3")])
            .vector(
                "CONTEXT",
                [("NETWORK", "YES"), ("USER_DATA_ENCODING", "base64")],
            );
        assert_eq!(
            t.render().unwrap(),
            "NAME=\"vm-a\"\nCPU=\"1\"\nDISK=[IMAGE_ID=\"3\"]\nCONTEXT=[NETWORK=\"YES\",USER_DATA_ENCODING=\"base64\"]"
        );
    }

    #[test]
    fn escapes_quotes_and_keeps_newlines() {
        let t = Template::new().single("A", "say \"hi\"\nline2 \\\" x");
        let text = t.render().unwrap();
        assert_eq!(text, "A=\"say \\\"hi\\\"\nline2 \\\\\" x\"");
        assert_eq!(parse_back(&text)[0].1[0].1, "say \"hi\"\nline2 \\\" x");
    }

    #[test]
    fn refuses_what_oned_would_misread_without_echoing_values() {
        for (v, needle) in [
            ("x]]>S3CRET", "]]>"),
            ("S3CRET\\", "ends with"),
            ("S3CRET\u{1}", "control character"),
        ] {
            let e = Template::new()
                .vector("CONTEXT", [("USER_DATA", v)])
                .render()
                .unwrap_err();
            assert!(e.message().contains(needle), "{e}");
            assert!(e.message().contains("CONTEXT/USER_DATA"), "{e}");
            assert!(!e.message().contains("S3CRET"), "{e}");
        }
        let t = Template::new().vector("CONTEXT", [("USER_DATA", "S3CRET")]);
        assert_eq!(format!("{t:?}"), "[\"CONTEXT\"]");
        assert!(Template::new().single("lower", "x").render().is_err());
        assert!(Template::new().single("A B", "x").render().is_err());
        assert!(Template::new().single("", "x").render().is_err());
    }

    #[test]
    fn tag_names_round_trip() {
        assert_eq!(
            tag_attribute("intercloud-cluster").unwrap(),
            "INTERCLOUD_CLUSTER"
        );
        assert_eq!(tag_key("INTERCLOUD_CLUSTER"), "intercloud-cluster");
        for bad in ["Owner", "my_tag", "1x", "", "a b", "x=y"] {
            assert!(tag_attribute(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn rendered_values_read_back_exactly(values in proptest::collection::vec(any::<String>(), 1..4)) {
            let mut t = Template::new();
            for (i, v) in values.iter().enumerate() {
                t = t.single(format!("A{i}"), v.clone());
            }
            t = t.vector("CONTEXT", values.iter().enumerate().map(|(i, v)| (format!("K{i}"), v.clone())));
            match t.render() {
                Ok(text) => {
                    let back = parse_back(&text);
                    for (i, v) in values.iter().enumerate() {
                        prop_assert_eq!(&back[i].1[0].1, v);
                        prop_assert_eq!(&back[values.len()].1[i].1, v);
                    }
                    prop_assert!(!text.contains("]]>"));
                }
                Err(e) => prop_assert!(values.iter().any(|v| v.contains("]]>")
                    || v.ends_with('\\')
                    || v.chars().any(|c| ((c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r'))
                        || c == '\u{FFFE}' || c == '\u{FFFF}')), "{}", e),
            }
        }

        #[test]
        fn tag_mapping_never_panics_and_round_trips_when_accepted(key in "\\PC{0,20}") {
            if let Ok(attr) = tag_attribute(&key) {
                prop_assert_eq!(tag_key(&attr), key);
            }
        }
    }
}
