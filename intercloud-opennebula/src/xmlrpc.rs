//! XML-RPC values: encoding a `methodCall`, decoding a `methodResponse`. Pure.
//!
//! The encoder writes the layout Python's `xmlrpc.client` (and so pyone, OpenNebula's
//! own client) puts on the wire: `<int>` for 32-bit integers, `<boolean>0|1</boolean>`,
//! text escaped for `&`, `<`, `>` (and `\r` as `&#13;`, which XML would otherwise turn
//! into `\n`). Characters XML 1.0 cannot carry at all (NUL and most C0 controls) are
//! refused rather than sent.
//!
//! The decoder accepts what oned's xmlrpc-c writes and what other servers write:
//! `<int>`, `<i4>` and `<i8>`; a bare `<value>text</value>` as a string; CDATA; and
//! `<fault>` responses.

use std::fmt::Write as _;

use crate::dom::{self, Element};

/// One XML-RPC value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `<int>`, `<i4>` or `<i8>`.
    Int(i64),
    /// `<boolean>`.
    Bool(bool),
    /// `<double>`.
    Double(f64),
    /// `<string>` or untyped text. Also holds `<base64>` and `<dateTime.iso8601>`
    /// verbatim (OpenNebula sends neither).
    String(String),
    /// `<array>`.
    Array(Vec<Value>),
    /// `<struct>`, members in document order.
    Struct(Vec<(String, Value)>),
    /// `<nil/>` (an extension some servers send).
    Nil,
}

impl Value {
    /// A string value.
    pub fn string(s: impl Into<String>) -> Self {
        Self::String(s.into())
    }

    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Int(_) => "int",
            Self::Bool(_) => "boolean",
            Self::Double(_) => "double",
            Self::String(_) => "string",
            Self::Array(_) => "array",
            Self::Struct(_) => "struct",
            Self::Nil => "nil",
        }
    }
}

/// A decoded `methodResponse`.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// `<params>`: the single return value.
    Success(Value),
    /// `<fault>`: the server refused the call itself (bad types, unknown method).
    Fault {
        /// `faultCode` (xmlrpc-c: -501 type error, -503 parse error, -506 no method).
        code: i64,
        /// `faultString`.
        message: String,
    },
}

/// Why a value could not be encoded or a response decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlRpcError(String);

impl XmlRpcError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// The description.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for XmlRpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for XmlRpcError {}

/// Encodes a `methodCall` of `method` with `params`.
///
/// # Errors
/// When a string holds a character XML 1.0 cannot carry (NUL, C0 controls other than
/// tab, newline and carriage return, U+FFFE/U+FFFF), naming the parameter but never
/// echoing its content (the first parameter is the session secret).
pub fn encode_call(method: &str, params: &[Value]) -> Result<String, XmlRpcError> {
    let mut out = String::with_capacity(256);
    out.push_str("<?xml version='1.0'?>\n<methodCall>\n<methodName>");
    escape_into(&mut out, method)
        .map_err(|c| XmlRpcError::new(format!("method name holds character U+{:04X}", c as u32)))?;
    out.push_str("</methodName>\n<params>\n");
    for (i, p) in params.iter().enumerate() {
        out.push_str("<param>\n");
        encode_value(&mut out, p).map_err(|c| {
            XmlRpcError::new(format!(
                "parameter {} of {method} holds character U+{:04X}, which XML cannot carry",
                i + 1,
                c as u32
            ))
        })?;
        out.push_str("</param>\n");
    }
    out.push_str("</params>\n</methodCall>\n");
    Ok(out)
}

fn encode_value(out: &mut String, v: &Value) -> Result<(), char> {
    out.push_str("<value>");
    match v {
        Value::Int(i) if i32::try_from(*i).is_ok() => {
            let _ = write!(out, "<int>{i}</int>");
        }
        Value::Int(i) => {
            let _ = write!(out, "<i8>{i}</i8>");
        }
        Value::Bool(b) => {
            let _ = write!(out, "<boolean>{}</boolean>", u8::from(*b));
        }
        Value::Double(d) => {
            let _ = write!(out, "<double>{d:?}</double>");
        }
        Value::String(s) => {
            out.push_str("<string>");
            escape_into(out, s)?;
            out.push_str("</string>");
        }
        Value::Array(items) => {
            out.push_str("<array><data>\n");
            for item in items {
                encode_value(out, item)?;
            }
            out.push_str("</data></array>");
        }
        Value::Struct(members) => {
            out.push_str("<struct>\n");
            for (name, value) in members {
                out.push_str("<member>\n<name>");
                escape_into(out, name)?;
                out.push_str("</name>\n");
                encode_value(out, value)?;
                out.push_str("</member>\n");
            }
            out.push_str("</struct>");
        }
        Value::Nil => out.push_str("<nil/>"),
    }
    out.push_str("</value>\n");
    Ok(())
}

/// Escapes text content; returns the first character XML cannot carry.
fn escape_into(out: &mut String, s: &str) -> Result<(), char> {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => return Err(c),
            c => out.push(c),
        }
    }
    Ok(())
}

/// Decodes a `methodResponse` body.
///
/// # Errors
/// Malformed XML, a root other than `methodResponse`, no value, an unknown value
/// type, or an integer/boolean/double whose text does not parse.
pub fn decode_response(body: &str) -> Result<Response, XmlRpcError> {
    let root = dom::parse(body).map_err(|e| XmlRpcError::new(e.0))?;
    if root.name != "methodResponse" {
        return Err(XmlRpcError::new(format!(
            "expected <methodResponse>, got <{}>",
            root.name
        )));
    }
    if let Some(fault) = root.child("fault") {
        let value = fault
            .child("value")
            .ok_or_else(|| XmlRpcError::new("<fault> holds no <value>"))?;
        let Value::Struct(members) = decode_value(value)? else {
            return Err(XmlRpcError::new("<fault> value is not a struct"));
        };
        let mut code = None;
        let mut message = String::new();
        for (name, v) in members {
            match (name.as_str(), v) {
                ("faultCode", Value::Int(c)) => code = Some(c),
                ("faultString", Value::String(s)) => message = s,
                _ => {}
            }
        }
        let code = code.ok_or_else(|| XmlRpcError::new("<fault> has no integer faultCode"))?;
        return Ok(Response::Fault { code, message });
    }
    let value = root.path("params/param/value").ok_or_else(|| {
        XmlRpcError::new("<methodResponse> has neither params/param/value nor fault")
    })?;
    Ok(Response::Success(decode_value(value)?))
}

/// Decodes a `methodCall` body into the method name and parameters (what a server,
/// a mock or a test reads).
///
/// # Errors
/// As [`decode_response`]; also a root other than `methodCall` or no `methodName`.
pub fn decode_call(body: &str) -> Result<(String, Vec<Value>), XmlRpcError> {
    let root = dom::parse(body).map_err(|e| XmlRpcError::new(e.0))?;
    if root.name != "methodCall" {
        return Err(XmlRpcError::new(format!(
            "expected <methodCall>, got <{}>",
            clip(&root.name)
        )));
    }
    let method = root
        .text_at("methodName")
        .ok_or_else(|| XmlRpcError::new("<methodCall> has no <methodName>"))?
        .to_owned();
    let params = match root.child("params") {
        Some(p) => p
            .children_named("param")
            .map(|param| {
                param
                    .child("value")
                    .ok_or_else(|| XmlRpcError::new("<param> holds no <value>"))
                    .and_then(decode_value)
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    Ok((method, params))
}

/// Decodes one `<value>` element.
fn decode_value(value: &Element) -> Result<Value, XmlRpcError> {
    let Some(typed) = value.children.first() else {
        // A bare <value>text</value> is a string (XML-RPC spec).
        return Ok(Value::String(value.text.clone()));
    };
    if value.children.len() > 1 {
        return Err(XmlRpcError::new("<value> holds more than one element"));
    }
    let text = typed.text.trim();
    match typed.name.as_str() {
        "int" | "i4" | "i8" => text.parse::<i64>().map(Value::Int).map_err(|_| {
            XmlRpcError::new(format!(
                "<{}> holds {:?}, not an integer",
                typed.name,
                clip(text)
            ))
        }),
        "boolean" => match text {
            "1" => Ok(Value::Bool(true)),
            "0" => Ok(Value::Bool(false)),
            other => Err(XmlRpcError::new(format!(
                "<boolean> holds {:?}, not 0 or 1",
                clip(other)
            ))),
        },
        "double" => text
            .parse::<f64>()
            .map(Value::Double)
            .map_err(|_| XmlRpcError::new(format!("<double> holds {:?}", clip(text)))),
        "string" | "base64" | "dateTime.iso8601" => Ok(Value::String(typed.text.clone())),
        "nil" => Ok(Value::Nil),
        "array" => {
            let data = typed
                .child("data")
                .ok_or_else(|| XmlRpcError::new("<array> holds no <data>"))?;
            data.children_named("value")
                .map(decode_value)
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        "struct" => typed
            .children_named("member")
            .map(|m| {
                let name = m
                    .child("name")
                    .ok_or_else(|| XmlRpcError::new("<member> has no <name>"))?;
                let v = m
                    .child("value")
                    .ok_or_else(|| XmlRpcError::new("<member> has no <value>"))?;
                Ok((name.text.clone(), decode_value(v)?))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Struct),
        other => Err(XmlRpcError::new(format!(
            "unknown XML-RPC value type <{}>",
            clip(other)
        ))),
    }
}

/// At most 40 characters of untrusted text, for error messages.
pub(crate) fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_pyone() {
        let got = encode_call(
            "one.vm.info",
            &[Value::string("oneadmin:opennebula"), Value::Int(800)],
        )
        .unwrap();
        assert_eq!(
            got,
            "<?xml version='1.0'?>\n<methodCall>\n<methodName>one.vm.info</methodName>\n\
             <params>\n<param>\n<value><string>oneadmin:opennebula</string></value>\n</param>\n\
             <param>\n<value><int>800</int></value>\n</param>\n</params>\n</methodCall>\n"
        );
    }

    #[test]
    fn escapes_markup_and_keeps_quotes_and_newlines() {
        let got = encode_call("m", &[Value::string("a<b>&\"c\"\n]]>\r")]).unwrap();
        assert!(
            got.contains("<string>a&lt;b&gt;&amp;\"c\"\n]]&gt;&#13;</string>"),
            "{got}"
        );
        let Response::Success(Value::String(back)) = decode_response(&format!(
            "<methodResponse><params><param>{}</param></params></methodResponse>",
            &got[got.find("<value>").unwrap()..got.find("</param>").unwrap()]
        ))
        .unwrap() else {
            panic!("not a string")
        };
        assert_eq!(back, "a<b>&\"c\"\n]]>\r");
    }

    #[test]
    fn refuses_characters_xml_cannot_carry_without_echoing() {
        let e = encode_call("m", &[Value::string("user:S3CRET\u{0}")]).unwrap_err();
        assert!(e.message().contains("parameter 1"));
        assert!(!e.message().contains("S3CRET"));
    }

    #[test]
    fn calls_round_trip() {
        let params = vec![
            Value::string("u:p"),
            Value::Int(-2),
            Value::Int(1 << 40),
            Value::Bool(true),
            Value::string("a\"<&>\n\r"),
            Value::Array(vec![Value::Int(1), Value::Nil]),
            Value::Struct(vec![("k".into(), Value::Double(1.5))]),
        ];
        let (m, back) = decode_call(&encode_call("one.x", &params).unwrap()).unwrap();
        assert_eq!(m, "one.x");
        assert_eq!(back, params);
    }

    #[test]
    fn large_ints_go_out_as_i8() {
        let got = encode_call("m", &[Value::Int(1 << 40), Value::Int(-1)]).unwrap();
        assert!(got.contains("<i8>1099511627776</i8>") && got.contains("<int>-1</int>"));
    }

    #[test]
    fn decodes_all_integer_spellings_and_bare_strings() {
        let body = "<methodResponse><params><param><value><array><data>\
            <value><int>1</int></value><value><i4>2</i4></value><value><i8>-1</i8></value>\
            <value>bare</value><value/><value><string/></value><value><double>0.5</double></value>\
            <value><nil/></value></data></array></value></param></params></methodResponse>";
        assert_eq!(
            decode_response(body).unwrap(),
            Response::Success(Value::Array(vec![
                Value::Int(1),
                Value::Int(2),
                Value::Int(-1),
                Value::string("bare"),
                Value::string(""),
                Value::string(""),
                Value::Double(0.5),
                Value::Nil,
            ]))
        );
    }

    #[test]
    fn wrong_types_are_clear_errors() {
        for (body, needle) in [
            ("<methodResponse><params><param><value><i4>x</i4></value></param></params></methodResponse>", "not an integer"),
            ("<methodResponse><params><param><value><boolean>yes</boolean></value></param></params></methodResponse>", "not 0 or 1"),
            ("<methodResponse><params><param><value><blob>1</blob></value></param></params></methodResponse>", "unknown XML-RPC value type"),
            ("<methodResponse><params/></methodResponse>", "neither"),
            ("<html><body>404</body></html>", "expected <methodResponse>"),
            ("<methodResponse><fault><value><string>x</string></value></fault></methodResponse>", "not a struct"),
        ] {
            let e = decode_response(body).unwrap_err();
            assert!(e.message().contains(needle), "{body}: {e}");
        }
    }
}
