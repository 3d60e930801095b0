//! OpenNebula's error codes, XML-RPC faults and HTTP failures mapped to core's kinds:
//! the one place this backend decides what an error means.
//!
//! Sources: OpenNebula `include/Request.h` (`ErrorCode`) and the XML-RPC reference
//! (docs `integration_and_development/system_interfaces/api.rst`, table "Error codes");
//! xmlrpc-c `XMLRPC_*_ERROR` for faults; oned's Abyss HTTP server for statuses.
//! Messages are built from the method name and the server's own text, never from the
//! request (whose first parameter is the session secret).

use intercloud_core::{Error, ErrorKind};

/// `0x0100` AUTHENTICATION: the session was refused.
pub const AUTHENTICATION: i64 = 0x0100;
/// `0x0200` AUTHORIZATION: not allowed (also VM quota exceeded).
pub const AUTHORIZATION: i64 = 0x0200;
/// `0x0400` NO_EXISTS: no such object.
pub const NO_EXISTS: i64 = 0x0400;
/// `0x0800` ACTION: the action is unknown or not allowed in the object's state.
pub const ACTION: i64 = 0x0800;
/// `0x1000` XML_RPC_API: a bad parameter value (filter flag, state…).
pub const XML_RPC_API: i64 = 0x1000;
/// `0x2000` INTERNAL: oned failed internally (also template parse errors on allocate).
pub const INTERNAL: i64 = 0x2000;
/// `0x4000` ALLOCATE: the object could not be created.
pub const ALLOCATE: i64 = 0x4000;
/// `0x8000` LOCKED: the object is locked.
pub const LOCKED: i64 = 0x8000;
/// `0x10000` REPLICATION: an HA follower could not replicate the call (not in the docs
/// table; `include/Request.h`).
pub const REPLICATION: i64 = 0x10000;

/// The kind of an OpenNebula error array `[false, message, code, …]`, and the code's
/// name as `Request.h` spells it.
///
/// | code | name | kind | why |
/// |---|---|---|---|
/// | 0x0100 | AUTHENTICATION | Unauthenticated | wrong `user:password` or expired token |
/// | 0x0200 | AUTHORIZATION | PermissionDenied, or QuotaExceeded when the message says a quota limit was reached (`… limit of 2 reached for VMS quota in VM.`) | |
/// | 0x0400 | NO_EXISTS | NotFound | `Error getting virtual machine [ID]` |
/// | 0x0800 | ACTION | InvalidRequest | unknown action, or wrong state for it |
/// | 0x1000 | XML_RPC_API | InvalidRequest | `Incorrect filter_flag` and similar |
/// | 0x2000 | INTERNAL | InvalidRequest for `Parse error` / `not supported`, else Unavailable (temporary) | template syntax errors on allocate come back as INTERNAL |
/// | 0x4000 | ALLOCATE | QuotaExceeded when quota is named, else InvalidRequest | bad template, unknown image or network |
/// | 0x8000 | LOCKED | PermissionDenied | someone locked the object; it will not unlock by itself |
/// | 0x10000 | REPLICATION | Unavailable (temporary) | HA log replication lagging |
/// | other | — | Protocol | not a code oned sends |
pub fn kind_of(code: i64, message: &str) -> (ErrorKind, &'static str) {
    let quota = mentions_quota(message);
    match code {
        AUTHENTICATION => (ErrorKind::Unauthenticated, "AUTHENTICATION"),
        AUTHORIZATION if quota => (ErrorKind::QuotaExceeded, "AUTHORIZATION"),
        AUTHORIZATION => (ErrorKind::PermissionDenied, "AUTHORIZATION"),
        NO_EXISTS => (ErrorKind::NotFound, "NO_EXISTS"),
        ACTION => (ErrorKind::InvalidRequest, "ACTION"),
        XML_RPC_API => (ErrorKind::InvalidRequest, "XML_RPC_API"),
        INTERNAL if message.contains("Parse error") || message.contains("not supported") => {
            (ErrorKind::InvalidRequest, "INTERNAL")
        }
        INTERNAL => (ErrorKind::Unavailable, "INTERNAL"),
        ALLOCATE if quota => (ErrorKind::QuotaExceeded, "ALLOCATE"),
        ALLOCATE => (ErrorKind::InvalidRequest, "ALLOCATE"),
        LOCKED => (ErrorKind::PermissionDenied, "LOCKED"),
        REPLICATION => (ErrorKind::Unavailable, "REPLICATION"),
        _ => (ErrorKind::Protocol, "UNKNOWN"),
    }
}

fn mentions_quota(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("quota") && (m.contains("limit") || m.contains("exceed"))
}

/// An error for an OpenNebula error array returned by `method`.
pub(crate) fn from_one(method: &str, code: i64, message: &str) -> Error {
    let (kind, name) = kind_of(code, message);
    let mut text = format!(
        "{method} failed: {} (OpenNebula {name} {code:#x})",
        message.trim()
    );
    if kind == ErrorKind::Unauthenticated {
        text.push_str("; check the user:password in ONE_AUTH or the site's credentials");
    }
    Error::new(kind, text)
}

/// An error for an XML-RPC `<fault>` (xmlrpc-c codes; oned itself never faults, the
/// library does when a parameter is missing or of the wrong type).
///
/// | faultCode | meaning | kind |
/// |---|---|---|
/// | -501 | a parameter has the wrong type, or is missing | InvalidRequest |
/// | -503 | the server could not parse our XML | Protocol |
/// | -506 | method not defined (an older oned) | Unsupported |
/// | other | | Protocol |
pub(crate) fn from_fault(method: &str, code: i64, message: &str) -> Error {
    let (kind, hint) = match code {
        -501 => (
            ErrorKind::InvalidRequest,
            "; this oned expects other parameters for the method (version mismatch?)",
        ),
        -503 => (ErrorKind::Protocol, ""),
        -506 => (
            ErrorKind::Unsupported,
            "; this OpenNebula version lacks the method",
        ),
        _ => (ErrorKind::Protocol, ""),
    };
    Error::new(
        kind,
        format!("{method}: XML-RPC fault {code}: {}{hint}", message.trim()),
    )
}

/// An error for an HTTP status other than 200 from the endpoint.
///
/// oned's Abyss server answers 404 for a path other than `/RPC2` and 405 for a method
/// other than POST; a proxy in front may add 401/403/429/5xx.
pub(crate) fn from_status(method: &str, endpoint: &str, status: u16) -> Error {
    let (kind, hint) = match status {
        404 | 405 => (
            ErrorKind::Config,
            "; the XML-RPC endpoint is usually http://HOST:2633/RPC2 (ONE_XMLRPC)",
        ),
        401 => (ErrorKind::Unauthenticated, ""),
        403 => (ErrorKind::PermissionDenied, ""),
        408 | 504 => (ErrorKind::Timeout, ""),
        429 => (ErrorKind::RateLimited, ""),
        500..=599 => (ErrorKind::Unavailable, ""),
        _ => (ErrorKind::Protocol, ""),
    };
    Error::new(
        kind,
        format!("{method}: {endpoint} answered HTTP {status}{hint}"),
    )
}

/// An error for a failed HTTP exchange (connect, timeout, reset). The reqwest error
/// is attached without its URL.
pub(crate) fn from_transport(method: &str, endpoint: &str, err: reqwest::Error) -> Error {
    let kind = if err.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Unavailable
    };
    let what = if err.is_connect() {
        "cannot connect to"
    } else if err.is_timeout() {
        "timed out talking to"
    } else {
        "lost the exchange with"
    };
    Error::new(kind, format!("{method}: {what} {endpoint}")).with_source(err.without_url())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_maps_every_documented_code() {
        let cases = [
            (AUTHENTICATION, "x", ErrorKind::Unauthenticated),
            (AUTHORIZATION, "not authorized", ErrorKind::PermissionDenied),
            (
                AUTHORIZATION,
                "[one.template.instantiate] User [2] : user [2] limit of 2 reached for VMS quota in VM.",
                ErrorKind::QuotaExceeded,
            ),
            (NO_EXISTS, "x", ErrorKind::NotFound),
            (ACTION, "x", ErrorKind::InvalidRequest),
            (XML_RPC_API, "Incorrect filter_flag", ErrorKind::InvalidRequest),
            (INTERNAL, "[one.vm.allocate] Parse error: syntax error", ErrorKind::InvalidRequest),
            (INTERNAL, "JSON query search is not supported by the SQL backend", ErrorKind::InvalidRequest),
            (INTERNAL, "db down", ErrorKind::Unavailable),
            (ALLOCATE, "Error allocating a new virtual machine template", ErrorKind::InvalidRequest),
            (ALLOCATE, "VM quota limit exceeded", ErrorKind::QuotaExceeded),
            (LOCKED, "x", ErrorKind::PermissionDenied),
            (REPLICATION, "x", ErrorKind::Unavailable),
            (7, "x", ErrorKind::Protocol),
        ];
        for (code, msg, kind) in cases {
            assert_eq!(kind_of(code, msg).0, kind, "{code:#x} {msg}");
        }
        assert!(from_one("one.vm.info", INTERNAL, "db down").is_temporary());
        assert!(!from_one("one.vm.info", NO_EXISTS, "gone").is_temporary());
    }

    #[test]
    fn faults_and_statuses() {
        assert_eq!(from_fault("m", -501, "x").kind(), ErrorKind::InvalidRequest);
        assert_eq!(from_fault("m", -503, "x").kind(), ErrorKind::Protocol);
        assert_eq!(from_fault("m", -506, "x").kind(), ErrorKind::Unsupported);
        assert_eq!(from_status("m", "e", 404).kind(), ErrorKind::Config);
        assert_eq!(from_status("m", "e", 503).kind(), ErrorKind::Unavailable);
        assert_eq!(from_status("m", "e", 429).kind(), ErrorKind::RateLimited);
    }
}
