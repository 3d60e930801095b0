//! CloudStack request-signature verification, as the management server does it
//! (`ApiServer.verifyRequest`): every parameter but `signature`, first value of a repeated
//! name, names sorted case-sensitively, `name=URLEncoder(value)` with `+` → `%20`, joined
//! with `&`, the whole string lowercased, HMAC-SHA1 with the secret, Base64.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// `java.net.URLEncoder.encode(v, "UTF-8").replaceAll("\\+", "%20")`: keeps
/// `A-Z a-z 0-9 . - * _`, encodes everything else as `%XX` (uppercase hex).
pub(crate) fn java_url_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len() * 3);
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'*' | b'_') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The string the server signs, from the decoded request parameters in arrival order.
pub(crate) fn string_to_sign(params: &[(String, String)]) -> String {
    let mut seen = std::collections::BTreeSet::new();
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for (k, v) in params {
        if k.eq_ignore_ascii_case("signature") || !seen.insert(k.as_str()) {
            continue;
        }
        pairs.push((k, v));
    }
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let joined: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", java_url_encode(v)))
        .collect();
    joined.join("&").to_lowercase()
}

/// Base64 HMAC-SHA1 of `text` under `secret`.
pub(crate) fn sign(secret: &str, text: &str) -> String {
    // HMAC accepts keys of any length; the error branch cannot happen.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Byte comparison whose time does not depend on where the inputs differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The first value of a parameter whose name matches case-insensitively.
pub(crate) fn param_ci<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses `expires` as the server does: ISO offset date-time (`Z`, `+00:00`) or
/// `yyyy-MM-dd'T'HH:mm:ssZ` (`+0000`).
pub(crate) fn parse_expires(s: &str) -> Option<time::OffsetDateTime> {
    use time::format_description::well_known::Iso8601;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(t);
    }
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory][offset_minute]"
    );
    time::OffsetDateTime::parse(s, &fmt).ok()
}

/// Whether the request is correctly signed with `api_key`/`secret` and, for
/// `signatureVersion=3`, not expired.
pub(crate) fn verify(
    params: &[(String, String)],
    api_key: &str,
    secret: &str,
    now: time::OffsetDateTime,
) -> bool {
    let Some(sig) = param_ci(params, "signature") else {
        return false;
    };
    if param_ci(params, "apikey") != Some(api_key) {
        return false;
    }
    if param_ci(params, "signatureversion") == Some("3") {
        match param_ci(params, "expires").and_then(parse_expires) {
            Some(t) if t >= now => {}
            _ => return false,
        }
    }
    let expected = sign(secret, &string_to_sign(params));
    constant_time_eq(expected.as_bytes(), sig.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_encoding_rules() {
        assert_eq!(java_url_encode("a*b/c:d+e ~"), "a*b%2Fc%3Ad%2Be%20%7E");
        assert_eq!(java_url_encode("é"), "%C3%A9");
    }

    #[test]
    fn expires_formats() {
        assert!(parse_expires("2030-01-01T00:00:00+0000").is_some());
        assert!(parse_expires("2030-01-01T00:00:00Z").is_some());
        assert!(parse_expires("2030-01-01T00:00:00+00:00").is_some());
        assert!(parse_expires("tomorrow").is_none());
    }
}
