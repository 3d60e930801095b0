//! EC2 error codes → [`ErrorKind`]: the one table of this backend.
//!
//! EC2 answers errors as HTTP 4xx/5xx with
//! `<Response><Errors><Error><Code>C</Code><Message>M</Message></Error></Errors>…`
//! (moto: `<ErrorResponse>` with a `<Type>`). Client codes come with 4xx, server codes
//! with 5xx. Sources: "Error codes for the Amazon EC2 API"
//! (<https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html>),
//! "Request throttling" (<https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html>)
//! and botocore's retry lists (`botocore/retries/standard.py`).

use intercloud_core::{Error, ErrorKind, SiteId};

use crate::xml;

/// The kind of a known EC2 error code; `None` for codes the table does not list.
pub fn kind_of_code(code: &str) -> Option<ErrorKind> {
    use ErrorKind::*;
    let kind = match code {
        // Authentication (CommonErrors): the key, the signature or the token is bad.
        "AuthFailure"
        | "SignatureDoesNotMatch"
        | "InvalidClientTokenId"
        | "RequestExpired"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "InvalidSecurity"
        | "ExpiredToken"
        | "InvalidToken" => Unauthenticated,
        // Authorisation: valid credentials, operation not allowed.
        "UnauthorizedOperation" | "OptInRequired" | "Blocked" | "PendingVerification" => {
            PermissionDenied
        }
        // Throttling (ec2-api-throttling; botocore standard throttle list).
        "RequestLimitExceeded"
        | "Throttling"
        | "ThrottlingException"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "EC2ThrottledException"
        | "TooManyRequestsException"
        | "BandwidthLimitExceeded"
        | "SlowDown"
        | "PriorRequestNotComplete" => RateLimited,
        // Capacity and account limits.
        "InsufficientInstanceCapacity"
        | "InstanceLimitExceeded"
        | "VcpuLimitExceeded"
        | "InsufficientCapacity"
        | "InsufficientHostCapacity"
        | "InsufficientReservedInstanceCapacity"
        | "ResourceLimitExceeded"
        | "VpnGatewayLimitExceeded"
        | "CustomerGatewayLimitExceeded"
        | "VpnConnectionLimitExceeded"
        | "InsufficientFreeAddressesInSubnet" => QuotaExceeded,
        // Transient server-side failures, and resources in a passing state.
        "InternalError"
        | "InternalFailure"
        | "Unavailable"
        | "ServiceUnavailable"
        | "RequestTimeout"
        | "RequestTimeoutException"
        | "IncorrectState"
        | "IncorrectInstanceState"
        | "DependencyViolation" => Unavailable,
        // A ClientToken reused with other parameters.
        "IdempotentParameterMismatch" => AlreadyExists,
        // A requested private address another interface holds ("The specified IP
        // address is already in use"; temporary, see `is_temporary_code`).
        "InvalidIPAddress.InUse" => AlreadyExists,
        "InvalidAction" | "UnsupportedOperation" | "Unsupported" => Unsupported,
        "InvalidParameterValue"
        | "InvalidParameterCombination"
        | "InvalidParameter"
        | "MissingParameter"
        | "UnknownParameter"
        | "InvalidQueryParameter"
        | "MalformedQueryString"
        | "ValidationError"
        | "InvalidAMIID.NotFound"
        | "InvalidAMIID.Malformed"
        | "InvalidAMIID.Unavailable"
        | "InvalidInstanceType"
        | "InvalidUserData.Malformed"
        | "InvalidKeyPair.NotFound"
        | "InvalidSubnetID.NotFound"
        | "InvalidGroup.NotFound" => InvalidRequest,
        // `InvalidInstanceID.NotFound`, `InvalidVpnGatewayID.NotFound`, … (after the
        // AMI/key/subnet rows above, which name a bad request rather than a gone resource).
        c if c.ends_with(".NotFound") => NotFound,
        c if c.ends_with(".Malformed") => InvalidRequest,
        c if c.ends_with(".Duplicate") || c.ends_with("AlreadyExists") => AlreadyExists,
        _ => return None,
    };
    Some(kind)
}

/// Codes whose condition passes by itself although their kind is not temporary:
/// `InvalidIPAddress.InUse` (the instance holding a requested address is usually
/// being terminated; once it is gone the same launch succeeds).
pub fn is_temporary_code(code: &str) -> bool {
    code == "InvalidIPAddress.InUse"
}

/// The kind of an EC2 error with a code the table does not list, by HTTP status.
/// (Never `NotFound`: callers treat that as "already gone", which only a
/// `*.NotFound` code may claim.)
pub fn kind_of_status(status: u16) -> ErrorKind {
    match status {
        401 => ErrorKind::Unauthenticated,
        403 => ErrorKind::PermissionDenied,
        429 => ErrorKind::RateLimited,
        500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::InvalidRequest,
    }
}

/// Code and message of an EC2 error body, if it is one.
pub fn parse_error_body(body: &str) -> Option<(String, String)> {
    let root = xml::parse(body).ok()?;
    if root.name != "Response" && root.name != "ErrorResponse" {
        return None;
    }
    let err = root.at("Errors/Error").or_else(|| root.child("Error"))?;
    let code = err.text_at("Code")?.trim().to_owned();
    let message = err.text_at("Message").unwrap_or("").trim().to_owned();
    Some((code, message))
}

/// The error of a failed call: from the EC2 error body when there is one, else from
/// the HTTP status alone (the body of a non-EC2 page is not echoed).
pub fn api_error(site: &SiteId, action: &str, status: u16, body: &str) -> Error {
    match parse_error_body(body) {
        Some((code, message)) => {
            let kind = kind_of_code(&code).unwrap_or_else(|| kind_of_status(status));
            let hint = match kind {
                ErrorKind::Unauthenticated => {
                    " (check the access key id and secret of this site, and the clock)"
                }
                ErrorKind::PermissionDenied => " (the IAM policy of this key does not allow it)",
                _ => "",
            };
            let e = Error::new(kind, format!("{action} failed: {code}: {message}{hint}"))
                .with_site(site.clone());
            if is_temporary_code(&code) {
                e.with_temporary(true)
            } else {
                e
            }
        }
        None => {
            // Not an EC2 error: a proxy's or web server's page, or nothing. Only the
            // statuses that mean the same everywhere keep their kind; anything else
            // (a 404 page from a wrong endpoint path, a 200 with garbage) is Protocol.
            let kind = match status {
                401 | 403 | 429 | 500..=599 => kind_of_status(status),
                _ => ErrorKind::Protocol,
            };
            let what = if looks_like_html(body) {
                "an HTML page"
            } else if body.trim().is_empty() {
                "an empty body"
            } else {
                "a body that is not an EC2 error"
            };
            let hint = if kind == ErrorKind::Protocol {
                " (is the endpoint an EC2 Query API?)"
            } else {
                ""
            };
            Error::new(
                kind,
                format!("{action} failed: HTTP {status} with {what}{hint}"),
            )
            .with_site(site.clone())
        }
    }
}

/// Whether a body looks like an HTML page rather than XML of EC2.
pub fn looks_like_html(body: &str) -> bool {
    let head: String = body
        .trim_start()
        .chars()
        .take(64)
        .collect::<String>()
        .to_ascii_lowercase();
    head.starts_with("<!doctype html") || head.starts_with("<html")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_table() {
        use ErrorKind::*;
        for (code, kind) in [
            ("AuthFailure", Unauthenticated),
            ("InvalidIPAddress.InUse", AlreadyExists),
            ("SignatureDoesNotMatch", Unauthenticated),
            ("UnauthorizedOperation", PermissionDenied),
            ("InvalidInstanceID.NotFound", NotFound),
            ("InvalidVpnConnectionID.NotFound", NotFound),
            ("RequestLimitExceeded", RateLimited),
            ("Throttling", RateLimited),
            ("InsufficientInstanceCapacity", QuotaExceeded),
            ("InstanceLimitExceeded", QuotaExceeded),
            ("InternalError", Unavailable),
            ("IdempotentParameterMismatch", AlreadyExists),
            ("InvalidAMIID.NotFound", InvalidRequest),
            ("InvalidInstanceID.Malformed", InvalidRequest),
        ] {
            assert_eq!(kind_of_code(code), Some(kind), "{code}");
        }
        assert_eq!(kind_of_code("SomethingNew"), None);
        assert_eq!(kind_of_status(503), Unavailable);
        assert_eq!(
            kind_of_status(404),
            InvalidRequest,
            "never NotFound from a status"
        );
        assert!(Error::new(kind_of_status(502), "x").is_temporary());
    }

    #[test]
    fn pages_that_are_not_ec2_errors() {
        let site = SiteId::new("s");
        let html = "<!DOCTYPE html><html><body>Not Found</body></html>";
        let e = api_error(&site, "TerminateInstances", 404, html);
        assert_eq!(
            e.kind(),
            ErrorKind::Protocol,
            "a 404 page is not 'already gone'"
        );
        assert!(e.to_string().contains("HTML page"), "{e}");
        assert_eq!(
            api_error(&site, "X", 502, html).kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            api_error(&site, "X", 401, "").kind(),
            ErrorKind::Unauthenticated
        );
        assert_eq!(
            api_error(&site, "X", 400, "oops").kind(),
            ErrorKind::Protocol
        );
    }

    #[test]
    fn unknown_code_falls_back_to_status() {
        let body = "<Response><Errors><Error><Code>Weird</Code><Message>m</Message></Error></Errors></Response>";
        let e = api_error(&SiteId::new("s"), "RunInstances", 503, body);
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.to_string().contains("Weird"));
    }
}
