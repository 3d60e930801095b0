//! XML-RPC as xmlrpc-c (the library oned links) reads and writes it: `<i4>`/`<i8>` on the
//! way out; `<int>`, `<i4>`, `<i8>`, `<boolean>`, `<string>` or bare text on the way in;
//! `<fault>` for calls that are not proper XML-RPC.

use quick_xml::events::Event;
use quick_xml::Reader;

/// One XML-RPC value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum XVal {
    Str(String),
    Int(i64),
    /// Always written as `<i8>` (the replication index of error arrays).
    I8(i64),
    Bool(bool),
    Double(f64),
    Array(Vec<XVal>),
    Struct(Vec<(String, XVal)>),
}

/// An XML-RPC fault (not an OpenNebula error).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fault {
    pub(crate) code: i32,
    pub(crate) text: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Start(String),
    End(String),
    Text(String),
}

fn parse_fault(detail: &str) -> Fault {
    Fault {
        code: -503,
        text: format!("Call XML not a proper XML-RPC call.  Call is not valid XML.  {detail}"),
    }
}

fn tokens(body: &str) -> Result<Vec<Tok>, Fault> {
    let mut r = Reader::from_str(body);
    let mut out = Vec::new();
    let mut depth = 0i32;
    loop {
        match r.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                out.push(Tok::Start(
                    String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                ));
            }
            Ok(Event::End(e)) => {
                depth -= 1;
                out.push(Tok::End(
                    String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                ));
            }
            Ok(Event::Empty(e)) => {
                let n = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                out.push(Tok::Start(n.clone()));
                out.push(Tok::End(n));
            }
            Ok(Event::Text(t)) => {
                let s = t
                    .unescape()
                    .map_err(|e| parse_fault(&e.to_string()))?
                    .into_owned();
                out.push(Tok::Text(s));
            }
            Ok(Event::CData(c)) => out.push(Tok::Text(
                String::from_utf8_lossy(&c.into_inner()).into_owned(),
            )),
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(parse_fault(&e.to_string())),
        }
    }
    if depth != 0 || out.is_empty() {
        return Err(parse_fault("Problem with token: no element found"));
    }
    Ok(out)
}

struct Cursor {
    toks: Vec<Tok>,
    pos: usize,
}

impl Cursor {
    fn skip_ws(&mut self) {
        while let Some(Tok::Text(t)) = self.toks.get(self.pos) {
            if t.trim().is_empty() {
                self.pos += 1;
            } else {
                break;
            }
        }
    }
    fn peek_start(&mut self) -> Option<String> {
        self.skip_ws();
        match self.toks.get(self.pos) {
            Some(Tok::Start(n)) => Some(n.clone()),
            _ => None,
        }
    }
    fn expect_start(&mut self, name: &str) -> Result<(), Fault> {
        self.skip_ws();
        match self.toks.get(self.pos) {
            Some(Tok::Start(n)) if n == name => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(parse_fault(&format!("expected <{name}>"))),
        }
    }
    fn expect_end(&mut self, name: &str) -> Result<(), Fault> {
        self.skip_ws();
        match self.toks.get(self.pos) {
            Some(Tok::End(n)) if n == name => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(parse_fault(&format!("expected </{name}>"))),
        }
    }
    /// Raw text up to the closing tag (not skipping whitespace: it is data).
    fn text(&mut self) -> String {
        let mut s = String::new();
        while let Some(Tok::Text(t)) = self.toks.get(self.pos) {
            s.push_str(t);
            self.pos += 1;
        }
        s
    }

    fn value(&mut self) -> Result<XVal, Fault> {
        self.expect_start("value")?;
        let v = match self.peek_start() {
            None => XVal::Str(self.text()),
            Some(kind) => {
                self.pos += 1;
                let v = match kind.as_str() {
                    "string" => XVal::Str(self.text()),
                    "int" | "i4" | "i8" => {
                        let t = self.text();
                        XVal::Int(
                            t.trim()
                                .parse()
                                .map_err(|_| parse_fault(&format!("bad integer '{t}'")))?,
                        )
                    }
                    "boolean" => match self.text().trim() {
                        "1" => XVal::Bool(true),
                        "0" => XVal::Bool(false),
                        t => return Err(parse_fault(&format!("bad boolean '{t}'"))),
                    },
                    "double" => {
                        let t = self.text();
                        XVal::Double(
                            t.trim()
                                .parse()
                                .map_err(|_| parse_fault(&format!("bad double '{t}'")))?,
                        )
                    }
                    "array" => {
                        self.expect_start("data")?;
                        let mut items = Vec::new();
                        while self.peek_start().as_deref() == Some("value") {
                            items.push(self.value()?);
                        }
                        self.expect_end("data")?;
                        XVal::Array(items)
                    }
                    "struct" => {
                        let mut members = Vec::new();
                        while self.peek_start().as_deref() == Some("member") {
                            self.pos += 1;
                            self.expect_start("name")?;
                            let n = self.text();
                            self.expect_end("name")?;
                            let v = self.value()?;
                            self.expect_end("member")?;
                            members.push((n, v));
                        }
                        XVal::Struct(members)
                    }
                    other => return Err(parse_fault(&format!("unknown type <{other}>"))),
                };
                self.expect_end(&kind)?;
                v
            }
        };
        self.expect_end("value")?;
        Ok(v)
    }
}

/// Parses a `<methodCall>` into its method name and parameters.
pub(crate) fn parse_call(body: &str) -> Result<(String, Vec<XVal>), Fault> {
    let toks = tokens(body)?;
    let mut c = Cursor { toks, pos: 0 };
    c.expect_start("methodCall")?;
    c.expect_start("methodName")?;
    let name = c.text().trim().to_owned();
    c.expect_end("methodName")?;
    let mut params = Vec::new();
    if c.peek_start().as_deref() == Some("params") {
        c.pos += 1;
        while c.peek_start().as_deref() == Some("param") {
            c.pos += 1;
            params.push(c.value()?);
            c.expect_end("param")?;
        }
        c.expect_end("params")?;
    }
    c.expect_end("methodCall")?;
    Ok((name, params))
}

/// Escapes text for XML content.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Serialises one value the way xmlrpc-c does.
pub(crate) fn render_value(v: &XVal) -> String {
    match v {
        XVal::Str(s) => format!("<value><string>{}</string></value>", esc(s)),
        XVal::Int(i) if i32::try_from(*i).is_ok() => format!("<value><i4>{i}</i4></value>"),
        XVal::Int(i) | XVal::I8(i) => format!("<value><i8>{i}</i8></value>"),
        XVal::Bool(b) => format!("<value><boolean>{}</boolean></value>", u8::from(*b)),
        XVal::Double(d) => format!("<value><double>{d}</double></value>"),
        XVal::Array(items) => {
            let inner: String = items
                .iter()
                .map(|i| format!("{}\n", render_value(i)))
                .collect();
            format!("<value><array><data>\n{inner}</data></array></value>")
        }
        XVal::Struct(m) => {
            let inner: String = m
                .iter()
                .map(|(k, v)| {
                    format!(
                        "<member><name>{}</name>\n{}</member>\n",
                        esc(k),
                        render_value(v)
                    )
                })
                .collect();
            format!("<value><struct>\n{inner}</struct></value>")
        }
    }
}

/// A `<methodResponse>` carrying one value.
pub(crate) fn render_response(v: &XVal) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<params>\r\n<param>{}</param>\r\n</params>\r\n</methodResponse>\r\n", render_value(v))
}

/// A `<methodResponse><fault>`.
pub(crate) fn render_fault(f: &Fault) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<fault>\r\n<value><struct>\r\n<member><name>faultCode</name>\r\n<value><i4>{}</i4></value></member>\r\n<member><name>faultString</name>\r\n<value><string>{}</string></value></member>\r\n</struct></value>\r\n</fault>\r\n</methodResponse>\r\n",
        f.code,
        esc(&f.text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pyone_requests() {
        let (m, p) = parse_call(include_str!(
            "../../tests/fixtures/opennebula/template_instantiate.request.xml"
        ))
        .unwrap();
        assert_eq!(m, "one.template.instantiate");
        assert_eq!(p.len(), 6);
        assert_eq!(p[1], XVal::Int(7));
        assert_eq!(p[2], XVal::Str("vm-a".into()));
        assert_eq!(p[3], XVal::Bool(false));
        assert!(
            matches!(&p[4], XVal::Str(s) if s.contains("INTERCLOUD_LABELS=\"job=42\"\n") || s.contains("\nINTERCLOUD_LABELS"))
        );
        let (m, p) = parse_call(include_str!(
            "../../tests/fixtures/opennebula/vmpool_infoextended.request.xml"
        ))
        .unwrap();
        assert_eq!(m, "one.vmpool.infoextended");
        assert_eq!(
            p[1..5],
            [XVal::Int(-2), XVal::Int(-1), XVal::Int(-1), XVal::Int(-1)]
        );
        assert_eq!(p[5], XVal::Str(String::new()));
        let (_, p) = parse_call("<methodCall><methodName>x</methodName><params><param><value>bare</value></param><param><value><i8>5000000000</i8></value></param></params></methodCall>").unwrap();
        assert_eq!(p, vec![XVal::Str("bare".into()), XVal::Int(5_000_000_000)]);
        assert_eq!(
            parse_call("<methodCall><methodName>x").unwrap_err().code,
            -503
        );
    }

    #[test]
    fn renders_like_xmlrpc_c() {
        let r = render_response(&XVal::Array(vec![
            XVal::Bool(false),
            XVal::Str("a<b".into()),
            XVal::Int(1024),
            XVal::Int(999),
            XVal::Int(-1),
        ]));
        assert!(r.contains("<value><boolean>0</boolean></value>\n<value><string>a&lt;b</string></value>\n<value><i4>1024</i4></value>"));
        assert_eq!(
            render_value(&XVal::Int(1 << 40)),
            "<value><i8>1099511627776</i8></value>"
        );
        let f = render_fault(&Fault {
            code: -506,
            text: "Method 'x' not defined".into(),
        });
        assert!(f.contains("<value><i4>-506</i4></value>"));
    }
}
