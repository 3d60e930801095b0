//! A small element tree of an EC2 XML answer, keyed by **local names**.
//!
//! AWS answers in `http://ec2.amazonaws.com/doc/2016-11-15/`, moto in the same URI
//! without the trailing slash, Eucalyptus in its own; errors come with or without a
//! namespace. Matching on local names and ignoring namespaces reads them all.
//! Parsing never panics: malformed, truncated or non-XML input (an HTML error page)
//! is a [`ParseError`] the client turns into a `Protocol` error.

use std::fmt;

use quick_xml::events::Event;
use quick_xml::Reader;

/// Deepest nesting accepted (EC2 answers nest about 10 levels).
const MAX_DEPTH: usize = 64;

/// Why a body is not the XML we expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One element: its local name, its (trimmed, unescaped) text and its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// The local name (no prefix, no namespace).
    pub name: String,
    /// The concatenated text content directly inside this element.
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Element>,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The element at a `/`-separated path of child names.
    pub fn at(&self, path: &str) -> Option<&Element> {
        path.split('/')
            .filter(|p| !p.is_empty())
            .try_fold(self, |e, p| e.child(p))
    }

    /// The non-empty text at `path`.
    pub fn text_at(&self, path: &str) -> Option<&str> {
        self.at(path)
            .map(|e| e.text.as_str())
            .filter(|t| !t.is_empty())
    }

    /// The `<item>` children of the set at `path` (`instancesSet`, `tagSet`).
    pub fn items<'a>(&'a self, path: &str) -> Vec<&'a Element> {
        self.at(path)
            .map(|s| s.children_named("item").collect())
            .unwrap_or_default()
    }

    /// Every descendant named `name`, depth first.
    pub fn descendants<'a>(&'a self, name: &str, out: &mut Vec<&'a Element>) {
        for c in &self.children {
            if c.name == name {
                out.push(c);
            }
            c.descendants(name, out);
        }
    }
}

/// Parses a whole document into its root element.
///
/// # Errors
/// A [`ParseError`] describing the first problem: not XML, unbalanced or truncated,
/// too deep, or empty.
pub fn parse(body: &str) -> Result<Element, ParseError> {
    let mut reader = Reader::from_str(body);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader.read_event().map_err(|e| {
            ParseError(format!(
                "malformed XML at byte {}: {e}",
                reader.buffer_position()
            ))
        })?;
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(ParseError("content after the root element".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(ParseError(format!("XML nested deeper than {MAX_DEPTH}")));
                }
                stack.push(Element {
                    name: local(start.local_name().as_ref()),
                    ..Element::default()
                });
            }
            Event::Empty(start) => {
                let el = Element {
                    name: local(start.local_name().as_ref()),
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None if root.is_none() => root = Some(el),
                    None => return Err(ParseError("content after the root element".into())),
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| ParseError("closing tag without opening tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(text) => {
                let t = text
                    .unescape()
                    .map_err(|e| ParseError(format!("bad text in XML: {e}")))?;
                push_text(&mut stack, &t)?;
            }
            Event::CData(data) => {
                let t = String::from_utf8_lossy(data.as_ref()).into_owned();
                push_text(&mut stack, &t)?;
            }
            Event::Eof => break,
            // Prolog, comments, processing instructions, DOCTYPE: nothing to keep.
            _ => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(ParseError(format!(
            "XML ends inside <{}> (truncated body?)",
            open.name
        )));
    }
    root.ok_or_else(|| ParseError("no XML element in the body".into()))
}

fn push_text(stack: &mut [Element], t: &str) -> Result<(), ParseError> {
    match stack.last_mut() {
        Some(el) => {
            el.text.push_str(t);
            Ok(())
        }
        None if t.trim().is_empty() => Ok(()),
        None => Err(ParseError("text outside any XML element".into())),
    }
}

fn local(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_and_prefixes_are_ignored() {
        let a = parse(r#"<a:R xmlns:a="urn:x"><a:item><b>1</b></a:item></a:R>"#).unwrap();
        assert_eq!(a.name, "R");
        assert_eq!(a.text_at("item/b"), Some("1"));
    }

    #[test]
    fn entities_are_unescaped() {
        let a = parse("<r><c>&lt;x&gt; &amp; y</c></r>").unwrap();
        assert_eq!(a.text_at("c"), Some("<x> & y"));
    }

    #[test]
    fn broken_inputs_are_errors() {
        for bad in [
            "",
            "not xml at all",
            "<r><c>1</c>",
            "<r></x>",
            "<r/><s/>",
            "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>",
            "<r>&bogus;</r>",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must not parse");
        }
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(&deep).unwrap_err().0.contains("deeper"));
    }
}
