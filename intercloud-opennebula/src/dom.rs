//! A tiny read-only XML tree over quick-xml, shared by both decoding layers.
//!
//! oned's answers are XML twice over: the XML-RPC envelope, and inside its `<string>`
//! an entity-escaped OpenNebula document whose template values are CDATA. Both are
//! small enough (a pool of 2,000 VMs is ~15 MB) to read into a tree, which keeps the
//! decoders plain functions over [`Element`]. Entities, character references and CDATA
//! all become text; comments, processing instructions and the declaration are skipped.

use quick_xml::events::Event;
use quick_xml::Reader;

/// Deepest nesting accepted; deeper input is refused instead of recursing on it.
const MAX_DEPTH: usize = 64;

/// One element: its name, its own text (CDATA and entities decoded) and its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) text: String,
    pub(crate) children: Vec<Element>,
}

impl Element {
    /// The first child named `name`.
    pub(crate) fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`, in document order.
    pub(crate) fn children_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The element at a `/`-separated path of first children (`"TEMPLATE/NIC"`).
    pub(crate) fn path(&self, path: &str) -> Option<&Element> {
        path.split('/').try_fold(self, |e, part| e.child(part))
    }

    /// The trimmed text of the element at `path`, if present.
    pub(crate) fn text_at(&self, path: &str) -> Option<&str> {
        self.path(path).map(|e| e.text.trim())
    }
}

/// Why a document could not be read, with the byte offset where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XmlError(pub(crate) String);

impl std::fmt::Display for XmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a whole document into its root element.
///
/// # Errors
/// Malformed XML, unbalanced or mismatched tags, more than one root, no root, text
/// outside the root, or nesting deeper than 64 levels.
pub(crate) fn parse(xml: &str) -> Result<Element, XmlError> {
    parse_with(xml, &|_, _| true)
}

/// [`parse`], skipping every element for which `keep(ancestors, name)` is false (its
/// whole subtree is stepped over unread: a VM pool's HISTORY_RECORDS, DISKs, …).
///
/// # Errors
/// As [`parse`]; a skipped subtree is checked for balanced tags only.
pub(crate) fn parse_with(
    xml: &str,
    keep: &dyn Fn(&[Element], &str) -> bool,
) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let at = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| XmlError(format!("malformed XML at byte {at}: {e}")))?;
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(XmlError(format!(
                        "content after the root element at byte {at}"
                    )));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError(format!(
                        "XML nested deeper than {MAX_DEPTH} levels"
                    )));
                }
                let name = name_of(start.name().as_ref(), at)?;
                if !keep(&stack, &name) {
                    reader.read_to_end(start.name()).map_err(|e| {
                        XmlError(format!("malformed XML in <{name}> at byte {at}: {e}"))
                    })?;
                    continue;
                }
                stack.push(Element {
                    name,
                    ..Element::default()
                });
            }
            Event::Empty(start) => {
                let name = name_of(start.name().as_ref(), at)?;
                if !keep(&stack, &name) {
                    continue;
                }
                let element = Element {
                    name,
                    ..Element::default()
                };
                attach(&mut stack, &mut root, element, at)?;
            }
            Event::End(_) => {
                let element = stack
                    .pop()
                    .ok_or_else(|| XmlError(format!("unexpected end tag at byte {at}")))?;
                attach(&mut stack, &mut root, element, at)?;
            }
            Event::Text(text) => {
                let text = text
                    .unescape()
                    .map_err(|e| XmlError(format!("bad character reference at byte {at}: {e}")))?;
                push_text(&mut stack, &text, at)?;
            }
            Event::CData(data) => {
                let data = std::str::from_utf8(data.as_ref())
                    .map_err(|_| XmlError(format!("CDATA is not UTF-8 at byte {at}")))?
                    .to_owned();
                push_text(&mut stack, &data, at)?;
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(XmlError(format!(
            "document ends inside <{}> (truncated?)",
            open.name
        )));
    }
    root.ok_or_else(|| XmlError("document has no root element".into()))
}

fn name_of(raw: &[u8], at: u64) -> Result<String, XmlError> {
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| XmlError(format!("element name is not UTF-8 at byte {at}")))
}

fn attach(
    stack: &mut [Element],
    root: &mut Option<Element>,
    element: Element,
    at: u64,
) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None if root.is_none() => *root = Some(element),
        None => return Err(XmlError(format!("second root element at byte {at}"))),
    }
    Ok(())
}

fn push_text(stack: &mut [Element], text: &str, at: u64) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(parent) => parent.text.push_str(text),
        None if text.trim().is_empty() => {}
        None => {
            return Err(XmlError(format!(
                "text outside the root element at byte {at}"
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cdata_entities_and_self_closing() {
        let e = parse(
            "<?xml version=\"1.0\"?><VM><A><![CDATA[x]]>y&amp;&#65;</A><B/><C></C><!-- c --></VM>",
        )
        .unwrap();
        assert_eq!(e.name, "VM");
        assert_eq!(e.text_at("A"), Some("xy&A"));
        assert_eq!(e.text_at("B"), Some(""));
        assert_eq!(e.text_at("C"), Some(""));
        assert_eq!(e.children.len(), 3);
    }

    #[test]
    fn skips_unwanted_subtrees() {
        let e = parse_with(
            "<R><A><X>1</X><A>nested</A></A><B>2</B><C/></R>",
            &|anc, name| !(anc.len() == 1 && (name == "A" || name == "C")),
        )
        .unwrap();
        assert_eq!(e.children.len(), 1, "{e:?}");
        assert_eq!(e.text_at("B"), Some("2"));
        assert!(parse_with("<R><A><X></A></R>", &|_, n| n != "A").is_err());
        assert!(parse_with("<R><A>", &|_, n| n != "A").is_err());
    }

    #[test]
    fn rejects_broken_documents() {
        for bad in [
            "",
            "<A>",
            "<A></B>",
            "<A/><B/>",
            "text<A/>",
            "<A>&bogus;</A>",
            "</A>",
            "<A><B></A>",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(&deep).unwrap_err().0.contains("deeper"));
    }
}
