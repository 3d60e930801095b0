//! AWS Signature Version 4, pure: every function takes the time as an argument.
//!
//! Follows the AWS IAM guide "Create a signed AWS API request" and is checked against
//! every case of the official SigV4 test suite (`tests/fixtures/sigv4`), in both the
//! `Authorization` header form and the presigned (query) form.
//!
//! ```text
//! CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n HexSHA256(body)
//! StringToSign     = "AWS4-HMAC-SHA256" \n X-Amz-Date \n Scope \n HexSHA256(CanonicalRequest)
//! Scope            = YYYYMMDD/region/service/aws4_request
//! ```

use std::fmt;

use hmac::{Hmac, Mac};
use percent_encoding::{percent_encode, AsciiSet, NON_ALPHANUMERIC};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use time::macros::format_description;
use time::OffsetDateTime;

/// The algorithm name in the `Authorization` header and the string to sign.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
pub(crate) const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An AWS access key: id, secret and optional session token.
///
/// `Debug` shows only the key id; the secret and token never leave this type except
/// into an HMAC or the signed `X-Amz-Security-Token` header.
#[derive(Clone)]
pub struct AwsCredentials {
    access_key_id: String,
    secret_access_key: SecretString,
    session_token: Option<SecretString>,
}

impl AwsCredentials {
    /// Credentials from an access key id, secret and optional session token.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: SecretString,
        session_token: Option<SecretString>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key,
            session_token,
        }
    }

    /// The access key id (not secret).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub(crate) fn secret(&self) -> &str {
        self.secret_access_key.expose_secret()
    }

    pub(crate) fn session_token(&self) -> Option<&str> {
        self.session_token.as_ref().map(|t| t.expose_secret())
    }
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"******")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "******"),
            )
            .finish()
    }
}

/// Where a signature is valid: region and service (`ec2`, `iam`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope<'a> {
    /// The region (`us-east-1`); Eucalyptus accepts any.
    pub region: &'a str,
    /// The service (`ec2`).
    pub service: &'a str,
}

/// The parts of an HTTP request that SigV4 covers.
#[derive(Debug, Clone, Copy)]
pub struct SignableRequest<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The URL path, not yet encoded (`/` for EC2, `/services/compute` on Eucalyptus).
    pub path: &'a str,
    /// Query parameters, decoded (the signer encodes them).
    pub query: &'a [(String, String)],
    /// The headers to sign, `Host` included, any case.
    pub headers: &'a [(String, String)],
    /// The body bytes.
    pub payload: &'a [u8],
}

/// The intermediate values and result of one signature (for tests and debugging;
/// none of them reveals the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParts {
    /// The canonical request.
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
    /// `;`-joined lower-case names of the signed headers.
    pub signed_headers: String,
    /// The credential scope `YYYYMMDD/region/service/aws4_request`.
    pub scope: String,
    /// Lower-case hex signature.
    pub signature: String,
}

/// `YYYYMMDD'T'HHMMSS'Z'` of a UTC time.
pub fn amz_date(time: OffsetDateTime) -> String {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    time.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default()
}

/// Percent-encodes every byte but the unreserved ones, upper-case hex (`UriEncode`).
pub fn uri_encode(s: &str) -> String {
    percent_encode(s.as_bytes(), RFC3986).to_string()
}

/// The canonical URI: each path segment encoded, `/` kept; empty path is `/`.
pub fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/')
        .map(uri_encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// The canonical query string: names and values encoded, sorted by name then value.
pub fn canonical_query(pairs: &[(String, String)]) -> String {
    let mut enc: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    enc.sort();
    enc.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Canonical header block (each `name:value\n`) and signed header list.
fn canonical_headers(headers: &[(String, String)]) -> (String, String) {
    let mut hs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            let value = v.split_whitespace().collect::<Vec<_>>().join(" ");
            (k.to_ascii_lowercase(), value)
        })
        .collect();
    hs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut merged: Vec<(String, String)> = Vec::with_capacity(hs.len());
    for (k, v) in hs {
        match merged.last_mut() {
            Some((lk, lv)) if *lk == k => {
                lv.push(',');
                lv.push_str(&v);
            }
            _ => merged.push((k, v)),
        }
    }
    let block = merged.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed = merged
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    (block, signed)
}

/// Lower-case hex SHA-256.
pub fn hex_sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The canonical request of `req`.
pub fn canonical_request(req: &SignableRequest<'_>) -> (String, String) {
    let (headers, signed) = canonical_headers(req.headers);
    let creq = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.path),
        canonical_query(req.query),
        headers,
        signed,
        hex_sha256(req.payload)
    );
    (creq, signed)
}

/// The credential scope `YYYYMMDD/region/service/aws4_request`.
pub fn credential_scope(time: OffsetDateTime, scope: &Scope<'_>) -> String {
    let date = &amz_date(time)[..8];
    format!("{date}/{}/{}/aws4_request", scope.region, scope.service)
}

/// Signs `req` (whose headers already hold `X-Amz-Date` or whose query holds the
/// presigning parameters) and returns every intermediate value.
pub fn sign(
    creds: &AwsCredentials,
    scope: &Scope<'_>,
    time: OffsetDateTime,
    req: &SignableRequest<'_>,
) -> SignatureParts {
    let (creq, signed_headers) = canonical_request(req);
    let cscope = credential_scope(time, scope);
    let sts = format!(
        "{ALGORITHM}\n{}\n{cscope}\n{}",
        amz_date(time),
        hex_sha256(creq.as_bytes())
    );
    let date = &amz_date(time)[..8];
    let k_date = hmac_sha256(
        format!("AWS4{}", creds.secret()).as_bytes(),
        date.as_bytes(),
    );
    let k_region = hmac_sha256(&k_date, scope.region.as_bytes());
    let k_service = hmac_sha256(&k_region, scope.service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"aws4_request");
    let signature = hex::encode(hmac_sha256(&k_signing, sts.as_bytes()));
    SignatureParts {
        canonical_request: creq,
        string_to_sign: sts,
        signed_headers,
        scope: cscope,
        signature,
    }
}

/// Header-form signing: returns the headers to add (`X-Amz-Date`, optional
/// `X-Amz-Security-Token`, `Authorization`) for a request whose `headers` hold the
/// others to sign (`Host`, `Content-Type`).
pub fn sign_headers(
    creds: &AwsCredentials,
    scope: &Scope<'_>,
    time: OffsetDateTime,
    req: &SignableRequest<'_>,
) -> Vec<(String, String)> {
    let mut added = vec![("X-Amz-Date".to_owned(), amz_date(time))];
    if let Some(token) = creds.session_token() {
        added.push(("X-Amz-Security-Token".to_owned(), token.to_owned()));
    }
    let mut all = req.headers.to_vec();
    all.extend(added.iter().cloned());
    let parts = sign(
        creds,
        scope,
        time,
        &SignableRequest {
            headers: &all,
            ..*req
        },
    );
    added.push((
        "Authorization".to_owned(),
        format!(
            "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={}",
            creds.access_key_id, parts.scope, parts.signed_headers, parts.signature
        ),
    ));
    added
}

/// Query-form (presigned) signing: returns the full query to send, the request's own
/// parameters followed by `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
/// `X-Amz-Expires`, `X-Amz-SignedHeaders`, optional `X-Amz-Security-Token`, and last
/// the unsigned `X-Amz-Signature`. Together with the signature parts.
pub fn presign(
    creds: &AwsCredentials,
    scope: &Scope<'_>,
    time: OffsetDateTime,
    expires_s: u64,
    req: &SignableRequest<'_>,
) -> (Vec<(String, String)>, SignatureParts) {
    let (_, signed) = canonical_headers(req.headers);
    let mut query = req.query.to_vec();
    query.push(("X-Amz-Algorithm".into(), ALGORITHM.into()));
    query.push((
        "X-Amz-Credential".into(),
        format!("{}/{}", creds.access_key_id, credential_scope(time, scope)),
    ));
    query.push(("X-Amz-Date".into(), amz_date(time)));
    query.push(("X-Amz-Expires".into(), expires_s.to_string()));
    query.push(("X-Amz-SignedHeaders".into(), signed));
    if let Some(token) = creds.session_token() {
        query.push(("X-Amz-Security-Token".into(), token.to_owned()));
    }
    let parts = sign(
        creds,
        scope,
        time,
        &SignableRequest {
            query: &query,
            ..*req
        },
    );
    query.push(("X-Amz-Signature".into(), parts.signature.clone()));
    (query, parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn suite_creds() -> AwsCredentials {
        AwsCredentials::new(
            "AKIDEXAMPLE",
            SecretString::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            None,
        )
    }

    /// The EC2 vector of the reference (computed with botocore's SigV4Auth).
    #[test]
    fn ec2_describe_regions_vector() {
        let body = b"Action=DescribeRegions&Version=2016-11-15";
        let headers = vec![
            (
                "Content-Type".to_owned(),
                "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
            ),
            ("Host".to_owned(), "ec2.us-east-1.amazonaws.com".to_owned()),
        ];
        let t = datetime!(2015-08-30 12:36:00 UTC);
        let scope = Scope {
            region: "us-east-1",
            service: "ec2",
        };
        assert_eq!(
            hex_sha256(body),
            "903451d1f3cda66f6ac7101b5810af53eb3ce6b47c5162b0b2238ce9086b6a0d"
        );
        let added = sign_headers(
            &suite_creds(),
            &scope,
            t,
            &SignableRequest {
                method: "POST",
                path: "/",
                query: &[],
                headers: &headers,
                payload: body,
            },
        );
        let auth = &added.last().expect("authorization").1;
        assert!(
            auth.ends_with(
                "SignedHeaders=content-type;host;x-amz-date, Signature=0961b80cfe2d492b65901a9220582465d0ed2094d2964a79fe0e9fdd612541ab"
            ),
            "{auth}"
        );
    }

    #[test]
    fn uri_encoding_rules() {
        assert_eq!(uri_encode("a b/c:ሴ~"), "a%20b%2Fc%3A%E1%88%B4~");
        assert_eq!(canonical_uri("/services/compute"), "/services/compute");
        assert_eq!(canonical_uri(""), "/");
    }

    #[test]
    fn debug_hides_secret_and_token() {
        let c = AwsCredentials::new(
            "AKID",
            SecretString::from("S3CRET"),
            Some(SecretString::from("T0KEN")),
        );
        let d = format!("{c:?}");
        assert!(!d.contains("S3CRET") && !d.contains("T0KEN") && d.contains("AKID"));
    }
}
