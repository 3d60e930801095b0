//! OpenNebula template text: `NAME=VALUE` and `NAME=[A=1,B="x y"]`, quoted values with
//! `\"` as the only escape, `#` comments; names are stored uppercase.

/// A template attribute value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TVal {
    Single(String),
    Vector(Vec<(String, String)>),
}

/// A parsed template, attributes in order (names may repeat: NIC, DISK).
pub(crate) type Template = Vec<(String, TVal)>;

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn skip(&mut self) {
        while let Some(&c) = self.s.get(self.pos) {
            if c == b'#' {
                while self.s.get(self.pos).is_some_and(|c| *c != b'\n') {
                    self.pos += 1;
                }
            } else if c.is_ascii_whitespace() {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn name(&mut self) -> Result<String, String> {
        self.skip();
        let start = self.pos;
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.error("expecting VARIABLE"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).to_ascii_uppercase())
    }

    fn expect(&mut self, c: u8, what: &str) -> Result<(), String> {
        self.skip();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expecting {what}")))
        }
    }

    fn error(&self, what: &str) -> String {
        let found = if self.pos >= self.s.len() {
            "$end".to_owned()
        } else {
            format!("'{}'", char::from(self.s[self.pos]))
        };
        format!(
            "Parse error: syntax error, unexpected {found}, {what} at line 1, columns {}:{}",
            self.pos,
            self.pos + 1
        )
    }

    fn value(&mut self, in_vector: bool) -> Result<String, String> {
        self.skip();
        if self.s.get(self.pos) == Some(&b'"') {
            self.pos += 1;
            let mut out = Vec::new();
            loop {
                match self.s.get(self.pos) {
                    None => return Err(self.error("expecting '\"'")),
                    Some(b'\\') if self.s.get(self.pos + 1) == Some(&b'"') => {
                        out.push(b'"');
                        self.pos += 2;
                    }
                    Some(b'"') => {
                        self.pos += 1;
                        break;
                    }
                    Some(&c) => {
                        out.push(c);
                        self.pos += 1;
                    }
                }
            }
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
        let start = self.pos;
        while let Some(&c) = self.s.get(self.pos) {
            if c.is_ascii_whitespace()
                || c == b'#'
                || (in_vector && (c == b',' || c == b']'))
                || c == b'='
                || c == b'['
            {
                break;
            }
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.error("expecting STRING"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }
}

/// Parses template text.
///
/// # Errors
/// The oned-style parse error message.
pub(crate) fn parse(text: &str) -> Result<Template, String> {
    let mut lx = Lexer {
        s: text.as_bytes(),
        pos: 0,
    };
    let mut out = Vec::new();
    loop {
        lx.skip();
        if lx.pos >= lx.s.len() {
            break;
        }
        let name = lx.name()?;
        lx.expect(b'=', "EQUAL")?;
        lx.skip();
        if lx.s.get(lx.pos) == Some(&b'[') {
            lx.pos += 1;
            let mut pairs = Vec::new();
            loop {
                lx.skip();
                if lx.s.get(lx.pos) == Some(&b']') {
                    lx.pos += 1;
                    break;
                }
                let k = lx.name()?;
                lx.expect(b'=', "EQUAL")?;
                let v = lx.value(true)?;
                pairs.push((k, v));
                lx.skip();
                match lx.s.get(lx.pos) {
                    Some(b',') => lx.pos += 1,
                    Some(b']') => {}
                    _ => return Err(lx.error("expecting COMMA or CBRACKET")),
                }
            }
            if !pairs.is_empty() {
                out.push((name, TVal::Vector(pairs)));
            }
        } else {
            let v = lx.value(false)?;
            out.push((name, TVal::Single(v)));
        }
    }
    Ok(out)
}

/// `Template::merge`: each top-level name in `extra` erases all of that name in `base`.
pub(crate) fn merge(base: &Template, extra: &Template) -> Template {
    let mut out: Template = base
        .iter()
        .filter(|(n, _)| !extra.iter().any(|(m, _)| m == n))
        .cloned()
        .collect();
    out.extend(extra.iter().cloned());
    out
}

/// Renders attributes as oned's XML (values in CDATA).
pub(crate) fn to_xml(t: &[(String, TVal)]) -> String {
    let mut s = String::new();
    for (n, v) in t {
        match v {
            TVal::Single(v) => s.push_str(&format!("<{n}><![CDATA[{v}]]></{n}>")),
            TVal::Vector(pairs) => {
                s.push_str(&format!("<{n}>"));
                for (k, v) in pairs {
                    s.push_str(&format!("<{k}><![CDATA[{v}]]></{k}>"));
                }
                s.push_str(&format!("</{n}>"));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vectors_quotes_and_comments() {
        let t = parse("NAME=\"x\" cpu=1 # c\nCONTEXT=[NETWORK=\"YES\",USER_DATA=\"a\\\"b\"]\nNIC=[NETWORK_ID=0]\nNIC=[NETWORK_ID=1]").unwrap();
        assert_eq!(t[0], ("NAME".into(), TVal::Single("x".into())));
        assert_eq!(t[1], ("CPU".into(), TVal::Single("1".into())));
        assert_eq!(
            t[2].1,
            TVal::Vector(vec![
                ("NETWORK".into(), "YES".into()),
                ("USER_DATA".into(), "a\"b".into())
            ])
        );
        assert_eq!(t.iter().filter(|(n, _)| n == "NIC").count(), 2);
        assert!(parse("CPU=").unwrap_err().contains("unexpected $end"));
        assert!(parse("CPU=\"1").is_err());
    }

    #[test]
    fn merge_replaces_whole_attribute() {
        let base = parse("CONTEXT=[NETWORK=\"YES\",SSH_PUBLIC_KEY=\"k\"] CPU=1").unwrap();
        let extra = parse("CONTEXT=[USER_DATA=\"u\"] LABEL=x").unwrap();
        let m = merge(&base, &extra);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].1, TVal::Vector(vec![("USER_DATA".into(), "u".into())]));
        assert_eq!(to_xml(&m[..1]), "<CPU><![CDATA[1]]></CPU>");
    }
}
