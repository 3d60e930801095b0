//! The one error type every intercloud API returns.
//!
//! Backends decide the [`ErrorKind`] where they parse a response (one `parse_error`
//! per backend, citing the middleware's documentation); everything above them —
//! retry, deployer, CLI — only asks [`Error::kind`] and [`Error::is_temporary`].
//!
//! Messages never contain secrets or signed URLs: backends build them from the
//! command name, the site and the cloud's own error text, never from the request.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::SiteId;

/// The result type of intercloud.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a caller acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The resource does not exist (or no longer exists).
    NotFound,
    /// A resource with that name or key exists already.
    AlreadyExists,
    /// The credentials were refused (wrong key, bad signature, expired token).
    Unauthenticated,
    /// The credentials are valid but not allowed to do this.
    PermissionDenied,
    /// The site has no capacity or the account's quota is used up.
    QuotaExceeded,
    /// The site throttled the call; try again later.
    RateLimited,
    /// The site is unreachable or answered with a transient failure.
    Unavailable,
    /// The request is wrong (a bad parameter, an unknown offering).
    InvalidRequest,
    /// The site or backend cannot do this at all.
    Unsupported,
    /// The cloud answered something that cannot be parsed.
    Protocol,
    /// intercloud's own configuration is wrong (a config file, a missing credential).
    Config,
    /// The call did not finish in time; whether it took effect is unknown.
    Timeout,
    /// A deployment's journal could not be written or read.
    Journal,
}

impl ErrorKind {
    /// Whether an error of this kind may go away by itself, so retrying makes sense.
    pub fn is_temporary(self) -> bool {
        matches!(self, Self::RateLimited | Self::Unavailable | Self::Timeout)
    }

    /// A stable snake_case name of the kind, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::QuotaExceeded => "quota_exceeded",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::InvalidRequest => "invalid_request",
            Self::Unsupported => "unsupported",
            Self::Protocol => "protocol",
            Self::Config => "config",
            Self::Timeout => "timeout",
            Self::Journal => "journal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An intercloud error: a kind, the site and resource it concerns, and a message.
///
/// The message says what happened and, where known, what to fix. It never holds a
/// secret: constructors take only text the caller has already made safe.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub struct Error {
    kind: ErrorKind,
    site: Option<SiteId>,
    resource: Option<String>,
    message: String,
    temporary: Option<bool>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with a message (which must not contain secrets).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            site: None,
            resource: None,
            message: message.into(),
            temporary: None,
            source: None,
        }
    }

    /// Shorthand for a [`ErrorKind::Config`] error.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    /// Shorthand for a [`ErrorKind::Protocol`] error.
    pub fn protocol(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol, message)
    }

    /// Shorthand for a [`ErrorKind::InvalidRequest`] error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    /// Shorthand for a [`ErrorKind::NotFound`] error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Shorthand for a [`ErrorKind::Unsupported`] error.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// Shorthand for a [`ErrorKind::Unavailable`] error.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// Names the site this error concerns.
    pub fn with_site(mut self, site: impl Into<SiteId>) -> Self {
        self.site = Some(site.into());
        self
    }

    /// Names the resource (VM id, idempotency key, offering, file…) this error concerns.
    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Overrides whether the error is temporary (the default follows the kind).
    pub fn with_temporary(mut self, temporary: bool) -> Self {
        self.temporary = Some(temporary);
        self
    }

    /// Attaches the underlying cause. The cause's `Display` must not contain secrets;
    /// for HTTP clients strip the URL first (see the backends).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The site concerned, if known.
    pub fn site(&self) -> Option<&SiteId> {
        self.site.as_ref()
    }

    /// The resource concerned, if known.
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// The message, without site and resource.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_temporary(&self) -> bool {
        self.temporary.unwrap_or_else(|| self.kind.is_temporary())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(site) = &self.site {
            write!(f, "site {site}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(resource) = &self.resource {
            write!(f, " (resource {resource})")?;
        }
        write!(f, " [{}]", self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_site_resource_and_kind() {
        let e = Error::new(ErrorKind::QuotaExceeded, "no capacity for 3 x L")
            .with_site("hokkaido")
            .with_resource("ic-key-1");
        assert_eq!(
            e.to_string(),
            "site hokkaido: no capacity for 3 x L (resource ic-key-1) [quota_exceeded]"
        );
        assert!(!e.is_temporary());
    }

    #[test]
    fn temporariness_follows_kind_unless_overridden() {
        assert!(Error::new(ErrorKind::RateLimited, "x").is_temporary());
        assert!(Error::new(ErrorKind::Unavailable, "x").is_temporary());
        assert!(!Error::new(ErrorKind::Protocol, "x").is_temporary());
        assert!(!Error::unavailable("x").with_temporary(false).is_temporary());
        assert!(Error::protocol("x").with_temporary(true).is_temporary());
    }
}
