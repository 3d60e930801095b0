//! Request signing exactly as CloudStack's management server verifies it.
//!
//! The rules mirror `ApiServer.verifyRequest()` (apache/cloudstack
//! `server/src/main/java/com/cloud/api/ApiServer.java`), not any client library:
//!
//! 1. every parameter except `signature` takes part, with its decoded value; when a
//!    name repeats, the first value wins;
//! 2. names are sorted **as sent, case-sensitively** (Java `Collections.sort`, UTF-16
//!    code-unit order), before anything is lowercased;
//! 3. each pair becomes `name=` + `URLEncoder.encode(value, "UTF-8")` with `+` turned
//!    into `%20`; names are not encoded;
//! 4. the pairs are joined with `&` and the **whole** string is lowercased;
//! 5. HMAC-SHA1 (or HMAC-SHA512 on FIPS servers) keyed with the secret key, encoded as
//!    padded standard base64.
//!
//! Everything here is pure: the clock is an argument where it matters.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hmac::{Hmac, Mac};

/// The HMAC a request is signed with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// HMAC-SHA1, what every CloudStack release verifies (the default).
    #[default]
    HmacSha1,
    /// HMAC-SHA512, accepted by FIPS-mode servers (same string to sign).
    HmacSha512,
}

/// Encodes `s` like Java's `URLEncoder.encode(s, "UTF-8")` followed by
/// `replaceAll("\\+", "%20")`: `A-Z a-z 0-9 . - * _` stay as they are, a space becomes
/// `%20`, every other UTF-8 byte becomes `%XX` with uppercase hex (so `~` is `%7E`,
/// `+` is `%2B`, `[` is `%5B`).
pub fn java_url_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() + s.len() / 2);
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push_str("%20"),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            }
        }
    }
    out
}

/// The parameters that take part in the signature, in the server's order: `signature`
/// (any case) removed, the first value of a repeated name kept, sorted by name in
/// UTF-16 code-unit order.
pub fn canonical_params(params: &[(String, String)]) -> Vec<(&str, &str)> {
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(params.len());
    for (name, value) in params {
        if name.eq_ignore_ascii_case("signature") || out.iter().any(|(n, _)| *n == name) {
            continue;
        }
        out.push((name.as_str(), value.as_str()));
    }
    out.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    out
}

/// The string the server computes the HMAC over (already lowercased).
pub fn string_to_sign(params: &[(String, String)]) -> String {
    canonical_params(params)
        .iter()
        .map(|(n, v)| format!("{n}={}", java_url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
        .to_lowercase()
}

/// The base64 signature of `params` under `secret` (not yet URL-encoded).
pub fn signature(params: &[(String, String)], secret: &[u8], alg: SignatureAlgorithm) -> String {
    let message = string_to_sign(params);
    let digest = match alg {
        SignatureAlgorithm::HmacSha1 => {
            // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
            let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
            mac.update(message.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        SignatureAlgorithm::HmacSha512 => {
            let mut mac = <Hmac<sha2::Sha512> as Mac>::new_from_slice(secret)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
            mac.update(message.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
    };
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// The `expires` value of a `signatureVersion=3` request valid for `ttl` after `now`,
/// in the form every server release parses: `2030-01-01T00:00:00+0000`
/// (`DateUtil.parseTZDateString`).
pub fn expires_at(now: SystemTime, ttl: Duration) -> String {
    let at = time::OffsetDateTime::from(now + ttl);
    let fmt =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+0000");
    at.format(&fmt)
        .unwrap_or_else(|_| "2038-01-01T00:00:00+0000".to_owned())
}

/// The wire form of signed parameters: `name=value&…` in the signing order with every
/// name and value encoded like [`java_url_encode`] and `signature` last. This is the
/// query string of a GET and the form body of a POST.
pub fn wire_query(params: &[(String, String)], signature: &str) -> String {
    let mut out = canonical_params(params)
        .iter()
        .map(|(n, v)| format!("{}={}", java_url_encode(n), java_url_encode(v)))
        .collect::<Vec<_>>();
    out.push(format!("signature={}", java_url_encode(signature)));
    out.join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn encodes_like_java_url_encoder() {
        assert_eq!(java_url_encode("a*b/c:d+e f~g"), "a*b%2Fc%3Ad%2Be%20f%7Eg");
        assert_eq!(java_url_encode("é"), "%C3%A9");
        assert_eq!(java_url_encode("[0]._-"), "%5B0%5D._-");
        assert_eq!(java_url_encode(""), "");
    }

    #[test]
    fn sorts_case_sensitively_before_lowercasing() {
        let s = string_to_sign(&p(&[("templateId", "3"), ("temPlateidd", "4")]));
        assert_eq!(s, "templateidd=4&templateid=3");
    }

    #[test]
    fn drops_signature_and_repeated_names() {
        let s = string_to_sign(&p(&[
            ("b", "1"),
            ("Signature", "x"),
            ("a", "2"),
            ("b", "3"),
        ]));
        assert_eq!(s, "a=2&b=1");
    }

    #[test]
    fn expires_uses_the_plus0000_form() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000 - 600);
        assert_eq!(
            expires_at(t, Duration::from_secs(600)),
            "2030-01-01T00:00:00+0000"
        );
    }

    #[test]
    fn wire_query_encodes_names_and_puts_signature_last() {
        let q = wire_query(&p(&[("tags[0].key", "a b"), ("command", "x")]), "ab+/=");
        assert_eq!(q, "command=x&tags%5B0%5D.key=a%20b&signature=ab%2B%2F%3D");
    }
}
