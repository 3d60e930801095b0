//! CloudStack's error codes mapped to intercloud's [`ErrorKind`]s, in one table.
//!
//! CloudStack answers an error with an HTTP status equal to its `errorcode` and a body
//! `{"<command>response" | "errorresponse": {"errorcode": N, "cserrorcode": M,
//! "errortext": "…"}}` (apache/cloudstack `api/.../response/ExceptionResponse.java`,
//! `ApiServer.getSerializedApiError`). A failed async job carries the same object in
//! `jobresult` (with `jobresultcode` 530 around it). The codes are
//! `org.apache.cloudstack.api.ApiErrorCode` (apache/cloudstack
//! `api/src/main/java/org/apache/cloudstack/api/ApiErrorCode.java`).
//!
//! Messages keep the cloud's `errortext` (with any secret we sent blanked out) and never
//! contain the request URL, the signature or the secret key.

use intercloud_core::{Error, ErrorKind, SiteId};

/// What one failure looked like on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The HTTP status (200 for a failed async job).
    pub(crate) status: u16,
    /// CloudStack's `errorcode`, when the body had one.
    pub(crate) errorcode: Option<i64>,
    /// CloudStack's `cserrorcode` (exception class code such as 4350), when present.
    pub(crate) cserrorcode: Option<i64>,
    /// CloudStack's `errortext`, already redacted.
    pub(crate) errortext: Option<String>,
}

/// The kind and an operator hint for a CloudStack error code.
///
/// | code | `ApiErrorCode` | kind |
/// |---|---|---|
/// | 401 | UNAUTHORIZED: bad API key, bad signature, expired `signatureVersion=3` request, or an unknown command (`ApiServlet`, `verifyRequest`) | `Unauthenticated` |
/// | 405 | METHOD_NOT_ALLOWED | `Unsupported` |
/// | 411 | UNAUTHORIZED2FA: the account needs two-factor authentication | `Unauthenticated` |
/// | 429 | API_LIMIT_EXCEED (api.throttling.enabled) | `RateLimited` |
/// | 430 | MALFORMED_PARAMETER_ERROR | `InvalidRequest` |
/// | 431 | PARAM_ERROR (`InvalidParameterValueException`, cs 4350; also an id naming no entity) | `InvalidRequest` |
/// | 432 | UNSUPPORTED_ACTION_ERROR | `Unsupported` |
/// | 530 | INTERNAL_ERROR (a failed job's `jobresultcode`; with a capacity text: `QuotaExceeded`) | `Unavailable` |
/// | 531 | ACCOUNT_ERROR (`PermissionDeniedException`, cs 4365) | `PermissionDenied` |
/// | 532 | ACCOUNT_RESOURCE_LIMIT_ERROR | `QuotaExceeded` |
/// | 533 | INSUFFICIENT_CAPACITY_ERROR | `QuotaExceeded` |
/// | 534 | RESOURCE_UNAVAILABLE_ERROR | `Unavailable` |
/// | 535 | RESOURCE_ALLOCATION_ERROR (`ResourceAllocationException`: a resource limit reached) | `QuotaExceeded` |
/// | 536 | RESOURCE_IN_USE_ERROR | `InvalidRequest` |
/// | 537 | NETWORK_RULE_CONFLICT_ERROR | `AlreadyExists` |
/// | other 4xx | a proxy or an unknown client error | `InvalidRequest` |
/// | 502, 503, 504, other 5xx | a proxy or a starting server | `Unavailable` |
pub(crate) fn kind_for(code: i64, errortext: &str) -> (ErrorKind, &'static str) {
    let text = errortext.to_ascii_lowercase();
    let capacity = text.contains("insufficient")
        || text.contains("capacity")
        || text.contains("resource limit")
        || text.contains("maximum number of resources");
    match code {
        401 => (
            ErrorKind::Unauthenticated,
            "check the API key and secret key, the clock (signatureVersion=3 expiry) \
             and that the server knows this command",
        ),
        405 => (
            ErrorKind::Unsupported,
            "the server refuses this HTTP method",
        ),
        411 => (
            ErrorKind::Unauthenticated,
            "the account requires two-factor authentication; use an API key without it",
        ),
        429 => (
            ErrorKind::RateLimited,
            "the server throttles this account; lower the site's rate_limit",
        ),
        430 | 431 => (ErrorKind::InvalidRequest, "check the site's settings"),
        432 => (
            ErrorKind::Unsupported,
            "this server does not support the call",
        ),
        530 if capacity => (ErrorKind::QuotaExceeded, "the site has no room for this"),
        530 => (ErrorKind::Unavailable, "the server failed internally"),
        531 => (
            ErrorKind::PermissionDenied,
            "the account may not do this; ask the cloud's operator",
        ),
        532 | 533 | 535 => (ErrorKind::QuotaExceeded, "the site has no room for this"),
        534 => (
            ErrorKind::Unavailable,
            "a resource of the cloud is unavailable",
        ),
        536 => (ErrorKind::InvalidRequest, "the resource is still in use"),
        537 => (
            ErrorKind::AlreadyExists,
            "a conflicting network rule exists",
        ),
        400..=499 => (ErrorKind::InvalidRequest, "the server refused the request"),
        _ => (ErrorKind::Unavailable, "the server is unavailable"),
    }
}

/// The one place a CloudStack failure becomes an [`Error`]: the code comes from
/// `errorcode` when the body had one, else from the HTTP status.
pub(crate) fn parse_error(site: &SiteId, command: &str, failure: &Failure) -> Error {
    let code = failure
        .errorcode
        .filter(|c| *c > 0)
        .unwrap_or(i64::from(failure.status));
    let text = failure.errortext.as_deref().unwrap_or("");
    let (kind, hint) = kind_for(code, text);
    let mut message = format!("{command}: CloudStack error {code}");
    if let Some(cs) = failure.cserrorcode {
        message.push_str(&format!(" (cserrorcode {cs})"));
    }
    if !text.is_empty() {
        message.push_str(": ");
        message.push_str(text);
    }
    message.push_str(&format!("; {hint}"));
    Error::new(kind, message).with_site(site.clone())
}

/// A failure to reach the server or read its answer. The URL (which carries the
/// signature) is stripped from the `reqwest` error before it is kept as the source.
pub(crate) fn transport(site: &SiteId, command: &str, err: reqwest::Error) -> Error {
    let timeout = err.is_timeout();
    let err = err.without_url();
    let (kind, what) = if timeout {
        (
            ErrorKind::Timeout,
            "timed out; whether it took effect is unknown",
        )
    } else if err.is_connect() {
        (ErrorKind::Unavailable, "cannot connect to the API endpoint")
    } else {
        (ErrorKind::Unavailable, "the connection failed")
    };
    Error::new(kind, format!("{command}: {what} ({err})"))
        .with_site(site.clone())
        .with_source(err)
}

/// The cloud answered something we cannot read.
pub(crate) fn protocol(site: &SiteId, command: &str, what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Protocol,
        format!("{command}: unexpected response from CloudStack: {what}"),
    )
    .with_site(site.clone())
}

/// Describes a serde error without echoing values from the body (which may hold a
/// pre-shared key): only "missing field `x`", "unknown variant", or the position.
pub(crate) fn describe_serde(err: &serde_json::Error) -> String {
    let text = err.to_string();
    if text.starts_with("missing field") {
        return text;
    }
    match err.classify() {
        serde_json::error::Category::Eof => "the body ends early (truncated JSON)".to_owned(),
        serde_json::error::Category::Syntax => format!(
            "malformed JSON at line {} column {}",
            err.line(),
            err.column()
        ),
        _ => "a field has the wrong type or value".to_owned(),
    }
}

/// Replaces every occurrence of each secret in `text` by `******`.
pub(crate) fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s.as_str(), "******");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, code: Option<i64>, text: &str) -> Error {
        parse_error(
            &SiteId::new("hok"),
            "deployVirtualMachine",
            &Failure {
                status,
                errorcode: code,
                cserrorcode: Some(4350),
                errortext: Some(text.to_owned()),
            },
        )
    }

    #[test]
    fn table_maps_cloudstack_codes() {
        let cases = [
            (401, ErrorKind::Unauthenticated, false),
            (405, ErrorKind::Unsupported, false),
            (411, ErrorKind::Unauthenticated, false),
            (429, ErrorKind::RateLimited, true),
            (430, ErrorKind::InvalidRequest, false),
            (431, ErrorKind::InvalidRequest, false),
            (432, ErrorKind::Unsupported, false),
            (530, ErrorKind::Unavailable, true),
            (531, ErrorKind::PermissionDenied, false),
            (532, ErrorKind::QuotaExceeded, false),
            (533, ErrorKind::QuotaExceeded, false),
            (534, ErrorKind::Unavailable, true),
            (535, ErrorKind::QuotaExceeded, false),
            (536, ErrorKind::InvalidRequest, false),
            (537, ErrorKind::AlreadyExists, false),
            (404, ErrorKind::InvalidRequest, false),
            (503, ErrorKind::Unavailable, true),
        ];
        for (code, kind, temp) in cases {
            let e = err(code, Some(i64::from(code)), "x");
            assert_eq!(e.kind(), kind, "code {code}");
            assert_eq!(e.is_temporary(), temp, "code {code}");
            assert_eq!(e.site().map(SiteId::as_str), Some("hok"));
        }
    }

    #[test]
    fn errorcode_wins_over_status_and_530_with_capacity_is_quota() {
        assert_eq!(
            err(200, Some(533), "x").kind(),
            ErrorKind::QuotaExceeded,
            "a failed job has HTTP 200"
        );
        assert_eq!(
            err(530, None, "Insufficient capacity to deploy").kind(),
            ErrorKind::QuotaExceeded
        );
    }

    #[test]
    fn message_keeps_errortext_command_and_codes() {
        let e = err(431, Some(431), "Unable to find service offering: 104");
        let s = e.to_string();
        assert!(s.contains("deployVirtualMachine"), "{s}");
        assert!(s.contains("431"), "{s}");
        assert!(s.contains("cserrorcode 4350"), "{s}");
        assert!(s.contains("Unable to find service offering: 104"), "{s}");
    }

    #[test]
    fn redact_blanks_secrets() {
        assert_eq!(
            redact("bad psk s3cr3t-psk!", &["s3cr3t-psk".into()]),
            "bad psk ******!"
        );
    }
}
