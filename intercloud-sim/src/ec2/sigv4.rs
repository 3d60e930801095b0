//! AWS Signature Version 4 verification (header and presigned-query forms), written from
//! the published algorithm: canonical request, string to sign, derived signing key.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::server::HttpRequest;

/// Why a request's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SigError {
    /// No `Authorization` header and no `X-Amz-Algorithm` query.
    Missing,
    /// The header or query form is malformed (message says how).
    Malformed(String),
    /// The access key id is not the site's.
    UnknownKey,
    /// The scope names another region or service.
    Scope(String),
    /// The signature does not match.
    Mismatch,
    /// `X-Amz-Date` is too far from now (or the presigned URL expired).
    Expired,
}

/// The parts of a SigV4 signature found in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Presented {
    pub(crate) access_key: String,
    pub(crate) date: String,
    pub(crate) amz_date: String,
    pub(crate) region: String,
    pub(crate) service: String,
    pub(crate) signed_headers: Vec<String>,
    pub(crate) signature: String,
    /// Presigned (query) form: the query excludes `X-Amz-Signature`.
    pub(crate) query_form: bool,
    pub(crate) expires: Option<i64>,
}

/// RFC 3986 encoding as SigV4 wants it: keep `A-Z a-z 0-9 - . _ ~`.
pub(crate) fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The canonical query string of a raw query (optionally leaving out `X-Amz-Signature`).
pub(crate) fn canonical_query(raw: &str, skip_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&decode(k)), uri_encode(&decode(v)))
        })
        .filter(|(k, _)| !(skip_signature && k == "X-Amz-Signature"))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/')
        .map(|seg| uri_encode(&decode(seg)))
        .collect::<Vec<_>>()
        .join("/")
}

fn header_value(req: &HttpRequest, name: &str) -> String {
    let vals: Vec<String> = req
        .headers
        .get_all(name)
        .iter()
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    vals.join(",")
}

/// Reads the signature from the `Authorization` header or the presigned query.
pub(crate) fn presented(req: &HttpRequest) -> Result<Presented, SigError> {
    if let Some(auth) = req.header("authorization") {
        let rest = auth
            .strip_prefix("AWS4-HMAC-SHA256 ")
            .ok_or_else(|| SigError::Malformed("unsupported Authorization algorithm".into()))?;
        let mut cred = None;
        let mut signed = None;
        let mut sig = None;
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                cred = Some(v.to_owned());
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed = Some(v.to_owned());
            } else if let Some(v) = part.strip_prefix("Signature=") {
                sig = Some(v.to_owned());
            }
        }
        let (Some(cred), Some(signed), Some(sig)) = (cred, signed, sig) else {
            return Err(SigError::Malformed(
                "Authorization header requires Credential, SignedHeaders and Signature".into(),
            ));
        };
        let amz_date = req
            .header("x-amz-date")
            .ok_or_else(|| SigError::Malformed("missing X-Amz-Date header".into()))?
            .to_owned();
        return build(&cred, &signed, sig, amz_date, false, None);
    }
    let q: Vec<(String, String)> = req
        .query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    let get = |n: &str| q.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    if get("X-Amz-Algorithm").is_none() {
        return Err(SigError::Missing);
    }
    if get("X-Amz-Algorithm").as_deref() != Some("AWS4-HMAC-SHA256") {
        return Err(SigError::Malformed("unsupported X-Amz-Algorithm".into()));
    }
    let need = |n: &str| get(n).ok_or_else(|| SigError::Malformed(format!("missing {n}")));
    let expires = get("X-Amz-Expires").and_then(|e| e.parse().ok());
    build(
        &need("X-Amz-Credential")?,
        &need("X-Amz-SignedHeaders")?,
        need("X-Amz-Signature")?,
        need("X-Amz-Date")?,
        true,
        expires,
    )
}

fn build(
    cred: &str,
    signed: &str,
    signature: String,
    amz_date: String,
    query_form: bool,
    expires: Option<i64>,
) -> Result<Presented, SigError> {
    let parts: Vec<&str> = cred.split('/').collect();
    let [key, date, region, service, term] = parts.as_slice() else {
        return Err(SigError::Malformed(
            "Credential must be KEY/DATE/REGION/SERVICE/aws4_request".into(),
        ));
    };
    if *term != "aws4_request" {
        return Err(SigError::Malformed(
            "Credential must end with aws4_request".into(),
        ));
    }
    if !amz_date.starts_with(date) {
        return Err(SigError::Malformed(
            "the credential date does not match X-Amz-Date".into(),
        ));
    }
    Ok(Presented {
        access_key: (*key).to_owned(),
        date: (*date).to_owned(),
        amz_date,
        region: (*region).to_owned(),
        service: (*service).to_owned(),
        signed_headers: signed.split(';').map(str::to_owned).collect(),
        signature,
        query_form,
        expires,
    })
}

/// The canonical request for the presented signature.
pub(crate) fn canonical_request(req: &HttpRequest, p: &Presented) -> String {
    let headers: String = p
        .signed_headers
        .iter()
        .map(|h| format!("{h}:{}\n", header_value(req, h)))
        .collect();
    let payload = hex::encode(Sha256::digest(&req.body));
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(&req.path),
        canonical_query(&req.query, p.query_form),
        headers,
        p.signed_headers.join(";"),
        payload
    )
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else {
        return Vec::new();
    };
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// The hex signature of `req` under `secret` for the presented scope.
pub(crate) fn expected_signature(req: &HttpRequest, p: &Presented, secret: &str) -> String {
    let creq = canonical_request(req, p);
    let scope = format!("{}/{}/{}/aws4_request", p.date, p.region, p.service);
    let sts = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        p.amz_date,
        hex::encode(Sha256::digest(creq.as_bytes()))
    );
    let k = hmac(format!("AWS4{secret}").as_bytes(), p.date.as_bytes());
    let k = hmac(&k, p.region.as_bytes());
    let k = hmac(&k, p.service.as_bytes());
    let k = hmac(&k, b"aws4_request");
    hex::encode(hmac(&k, sts.as_bytes()))
}

fn parse_amz_date(s: &str) -> Option<time::OffsetDateTime> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, &fmt)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

/// Verifies a request: key, scope (region, service), signature, then freshness
/// (15 minutes either way, or the presigned expiry) against `now`.
pub(crate) fn verify(
    req: &HttpRequest,
    key: &str,
    secret: &str,
    region: &str,
    service: &str,
    now: Option<time::OffsetDateTime>,
) -> Result<(), SigError> {
    let p = presented(req)?;
    if p.access_key != key {
        return Err(SigError::UnknownKey);
    }
    if p.region != region || p.service != service {
        return Err(SigError::Scope(format!(
            "Credential should be scoped to a valid region and service ({region}/{service}), not '{}/{}'",
            p.region, p.service
        )));
    }
    let want = expected_signature(req, &p, secret);
    if !crate::cloudstack::sign::constant_time_eq(want.as_bytes(), p.signature.as_bytes()) {
        return Err(SigError::Mismatch);
    }
    if let Some(now) = now {
        let t = parse_amz_date(&p.amz_date)
            .ok_or_else(|| SigError::Malformed("X-Amz-Date is not YYYYMMDDTHHMMSSZ".into()))?;
        let skew = (now - t).whole_seconds();
        let too_old = match (p.query_form, p.expires) {
            (true, Some(exp)) => skew > exp,
            _ => skew > 900,
        };
        if too_old || skew < -900 {
            return Err(SigError::Expired);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a `*-signed-request.txt` of the AWS suite into a request.
    fn parse_signed(text: &str) -> HttpRequest {
        let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
        let mut lines = head.lines();
        let first = lines.next().unwrap();
        let mut it = first.split(' ');
        let method = it.next().unwrap().to_owned();
        let target = it.next().unwrap();
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut headers = hyper::header::HeaderMap::new();
        for l in lines {
            let (k, v) = l.split_once(':').unwrap();
            headers.append(
                hyper::header::HeaderName::from_bytes(k.trim().to_ascii_lowercase().as_bytes())
                    .unwrap(),
                hyper::header::HeaderValue::from_str(v).unwrap(),
            );
        }
        HttpRequest {
            method,
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            body: body.to_owned().into(),
        }
    }

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const CASES: &[(&str, &str, &str, &str)] = &[
        (
            "get-vanilla",
            include_str!("../../tests/fixtures/sigv4/v4/get-vanilla/header-signed-request.txt"),
            include_str!("../../tests/fixtures/sigv4/v4/get-vanilla/query-signed-request.txt"),
            include_str!("../../tests/fixtures/sigv4/v4/get-vanilla/header-canonical-request.txt"),
        ),
        (
            "get-vanilla-query-order-key-case",
            include_str!("../../tests/fixtures/sigv4/v4/get-vanilla-query-order-key-case/header-signed-request.txt"),
            include_str!("../../tests/fixtures/sigv4/v4/get-vanilla-query-order-key-case/query-signed-request.txt"),
            include_str!("../../tests/fixtures/sigv4/v4/get-vanilla-query-order-key-case/header-canonical-request.txt"),
        ),
        (
            "get-vanilla-query-unreserved",
            include_str!("../../tests/fixtures/sigv4/v4/get-vanilla-query-unreserved/header-signed-request.txt"),
            include_str!("../../tests/fixtures/sigv4/v4/get-vanilla-query-unreserved/query-signed-request.txt"),
            include_str!("../../tests/fixtures/sigv4/v4/get-vanilla-query-unreserved/header-canonical-request.txt"),
        ),
        (
            "get-vanilla-utf8-query",
            include_str!("../../tests/fixtures/sigv4/v4/get-vanilla-utf8-query/header-signed-request.txt"),
            include_str!("../../tests/fixtures/sigv4/v4/get-vanilla-utf8-query/query-signed-request.txt"),
            include_str!("../../tests/fixtures/sigv4/v4/get-vanilla-utf8-query/header-canonical-request.txt"),
        ),
        (
            "get-vanilla-empty-query-key",
            include_str!("../../tests/fixtures/sigv4/v4/get-vanilla-empty-query-key/header-signed-request.txt"),
            include_str!("../../tests/fixtures/sigv4/v4/get-vanilla-empty-query-key/query-signed-request.txt"),
            include_str!("../../tests/fixtures/sigv4/v4/get-vanilla-empty-query-key/header-canonical-request.txt"),
        ),
        (
            "get-vanilla-with-session-token",
            include_str!("../../tests/fixtures/sigv4/v4/get-vanilla-with-session-token/header-signed-request.txt"),
            include_str!("../../tests/fixtures/sigv4/v4/get-vanilla-with-session-token/query-signed-request.txt"),
            include_str!("../../tests/fixtures/sigv4/v4/get-vanilla-with-session-token/header-canonical-request.txt"),
        ),
        (
            "post-vanilla",
            include_str!("../../tests/fixtures/sigv4/v4/post-vanilla/header-signed-request.txt"),
            include_str!("../../tests/fixtures/sigv4/v4/post-vanilla/query-signed-request.txt"),
            include_str!("../../tests/fixtures/sigv4/v4/post-vanilla/header-canonical-request.txt"),
        ),
        (
            "post-vanilla-query",
            include_str!("../../tests/fixtures/sigv4/v4/post-vanilla-query/header-signed-request.txt"),
            include_str!("../../tests/fixtures/sigv4/v4/post-vanilla-query/query-signed-request.txt"),
            include_str!("../../tests/fixtures/sigv4/v4/post-vanilla-query/header-canonical-request.txt"),
        ),
        (
            "post-x-www-form-urlencoded",
            include_str!("../../tests/fixtures/sigv4/v4/post-x-www-form-urlencoded/header-signed-request.txt"),
            include_str!("../../tests/fixtures/sigv4/v4/post-x-www-form-urlencoded/query-signed-request.txt"),
            include_str!("../../tests/fixtures/sigv4/v4/post-x-www-form-urlencoded/header-canonical-request.txt"),
        ),
    ];

    #[test]
    fn aws_suite_vectors_verify_and_tampering_fails() {
        for (name, header_form, query_form, creq) in CASES {
            let req = parse_signed(header_form);
            let p = presented(&req).unwrap();
            assert_eq!(
                canonical_request(&req, &p),
                *creq,
                "{name}: canonical request"
            );
            assert_eq!(
                verify(&req, "AKIDEXAMPLE", SECRET, "us-east-1", "service", None),
                Ok(()),
                "{name}"
            );
            assert_eq!(
                verify(&req, "AKIDEXAMPLE", "wrong", "us-east-1", "service", None),
                Err(SigError::Mismatch),
                "{name}"
            );
            assert!(matches!(
                verify(&req, "AKIDEXAMPLE", SECRET, "eu-west-1", "service", None),
                Err(SigError::Scope(_))
            ));
            assert_eq!(
                verify(&req, "OTHER", SECRET, "us-east-1", "service", None),
                Err(SigError::UnknownKey)
            );
            let mut tampered = req.clone();
            tampered.body = format!("{}x", String::from_utf8_lossy(&req.body)).into();
            assert_eq!(
                verify(
                    &tampered,
                    "AKIDEXAMPLE",
                    SECRET,
                    "us-east-1",
                    "service",
                    None
                ),
                Err(SigError::Mismatch),
                "{name}"
            );
            let now = time::OffsetDateTime::now_utc();
            assert_eq!(
                verify(
                    &req,
                    "AKIDEXAMPLE",
                    SECRET,
                    "us-east-1",
                    "service",
                    Some(now)
                ),
                Err(SigError::Expired)
            );

            let q = parse_signed(query_form);
            assert_eq!(
                verify(&q, "AKIDEXAMPLE", SECRET, "us-east-1", "service", None),
                Ok(()),
                "{name} (query form)"
            );
        }
    }

    #[test]
    fn ec2_known_answer() {
        // POST https://ec2.us-east-1.amazonaws.com/ Action=DescribeRegions, 20150830T123600Z.
        let mut headers = hyper::header::HeaderMap::new();
        headers.insert("host", "ec2.us-east-1.amazonaws.com".parse().unwrap());
        headers.insert(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8"
                .parse()
                .unwrap(),
        );
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=0961b80cfe2d492b65901a9220582465d0ed2094d2964a79fe0e9fdd612541ab"
                .parse()
                .unwrap(),
        );
        let req = HttpRequest {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers,
            body: "Action=DescribeRegions&Version=2016-11-15".into(),
        };
        assert_eq!(
            verify(&req, "AKIDEXAMPLE", SECRET, "us-east-1", "ec2", None),
            Ok(())
        );
    }
}
