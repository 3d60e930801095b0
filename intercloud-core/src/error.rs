//! The one error type every intercloud API returns.
//!
//! Backends decide the [`ErrorKind`] where they parse a response (one `parse_error`
//! per backend, citing the middleware's documentation); everything above them —
//! retry, deployer, CLI — only asks [`Error::kind`], [`Error::is_temporary`],
//! [`Error::class`] and [`Error::retries_spent`].
//!
//! Messages never contain secrets or signed URLs: backends build them from the
//! command name, the site and the cloud's own error text, never from the request.
//!
//! # Acting on an error
//! - [`Error::class`] says **who can fix it** ([`ErrorClass`]): the user's request,
//!   the cloud, the operator's configuration, or nobody (it is transient). A front end
//!   picks its message, its HTTP status or its exit code from it.
//! - [`Error::retries_spent`] says a retry layer ([`crate::wrap::Retry`]) already
//!   retried this temporary error until its budget ran out: an outer loop should not
//!   retry it again at once (the deployer's executor does not).
//! - [`Error::constraints`] names the planner constraints that cannot be met, for a
//!   front end that points at the field to change.
//! - [`ErrorInfo`] is a plain, serialisable snapshot of an error for reports and
//!   events (a node's failure, a failed step).
//!
//! ```
//! use intercloud_core::{Error, ErrorClass, ErrorKind};
//!
//! let refused = Error::new(ErrorKind::Unauthenticated, "signature does not match")
//!     .with_site("hokkaido");
//! assert_eq!(refused.class(), ErrorClass::OperatorConfig);
//!
//! let busy = Error::new(ErrorKind::RateLimited, "slow down");
//! assert_eq!(busy.class(), ErrorClass::Transient);
//! assert!(!busy.retries_spent());
//!
//! // A caller that knows better overrides the class the kind suggests.
//! let bad_pin = Error::not_found("no site named mars").with_class(ErrorClass::UserInput);
//! assert_eq!(bad_pin.class(), ErrorClass::UserInput);
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::SiteId;
use crate::planner::Constraint;

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

impl ErrorKind {
    /// The class an error of this kind has when nothing overrides it (see the table
    /// on [`ErrorClass`]): the class of a non-temporary error of this kind.
    pub fn class(self) -> ErrorClass {
        match self {
            Self::InvalidRequest => ErrorClass::UserInput,
            Self::NotFound
            | Self::AlreadyExists
            | Self::PermissionDenied
            | Self::QuotaExceeded
            | Self::Unsupported
            | Self::RateLimited
            | Self::Unavailable
            | Self::Timeout => ErrorClass::CloudRefused,
            Self::Unauthenticated | Self::Config | Self::Protocol | Self::Journal => {
                ErrorClass::OperatorConfig
            }
        }
    }
}

/// Who can make an error go away: what a front end acts on.
///
/// [`Error::class`] decides it in this order:
/// 1. a class set with [`Error::with_class`] (a caller that knows better than the
///    kind, e.g. a `NotFound` for a site the user typed);
/// 2. [`UserInput`](Self::UserInput) when the error names planner constraints
///    ([`Error::constraints`]): the request cannot be met by this federation;
/// 3. [`Transient`](Self::Transient) when the error [is temporary](Error::is_temporary);
/// 4. otherwise by kind ([`ErrorKind::class`]):
///
/// | kind | class | why |
/// |---|---|---|
/// | `InvalidRequest` | `UserInput` | a bad parameter, an unknown offering, contradictory constraints |
/// | `QuotaExceeded` | `CloudRefused` | the site has no capacity or the account's quota is used up (`UserInput` from the planner: it names the constraint) |
/// | `NotFound`, `AlreadyExists` | `CloudRefused` | the cloud does not have, or already has, the resource |
/// | `PermissionDenied` | `CloudRefused` | valid credentials the cloud does not allow this |
/// | `Unsupported` | `CloudRefused` | the site or backend cannot do it at all |
/// | `RateLimited`, `Unavailable`, `Timeout` | `Transient` | temporary by kind; `CloudRefused` when marked not temporary (a VM the cloud put in error) |
/// | `Unauthenticated` | `OperatorConfig` | credentials refused: fix them in the vault (or the portal's key store) |
/// | `Config` | `OperatorConfig` | a federation file, a missing credential, a wrong option |
/// | `Protocol` | `OperatorConfig` | the endpoint answered something that is not the cloud's API: check the endpoint (a wrong URL, a proxy page); otherwise report it |
/// | `Journal` | `OperatorConfig` | the state directory or journal store cannot be written or read |
///
/// Any kind marked temporary ([`Error::with_temporary`]) is `Transient`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorClass {
    /// The user's request is wrong or cannot be met: change the request.
    UserInput,
    /// The cloud refused (quota, permission, a missing resource, a feature it lacks):
    /// the site's administrators or another site can help, retrying cannot.
    CloudRefused,
    /// intercloud's configuration is wrong (federation file, credentials, endpoint,
    /// state directory): the operator fixes it.
    OperatorConfig,
    /// It may go away by itself: try again later (see [`Error::retries_spent`]
    /// before retrying at once).
    Transient,
}

impl ErrorClass {
    /// A stable snake_case name of the class, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserInput => "user_input",
            Self::CloudRefused => "cloud_refused",
            Self::OperatorConfig => "operator_config",
            Self::Transient => "transient",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
///
/// Besides the kind it knows who can fix it ([`Error::class`]), whether a retry
/// layer already gave up on it ([`Error::retries_spent`]) and, from the planner,
/// which constraints cannot be met ([`Error::constraints`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub struct Error {
    kind: ErrorKind,
    site: Option<SiteId>,
    resource: Option<String>,
    message: String,
    temporary: Option<bool>,
    class: Option<ErrorClass>,
    retries_spent: bool,
    constraints: Vec<Constraint>,
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
            class: None,
            retries_spent: false,
            constraints: Vec::new(),
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

    /// Overrides the class (the default follows the kind; see [`ErrorClass`]).
    pub fn with_class(mut self, class: ErrorClass) -> Self {
        self.class = Some(class);
        self
    }

    /// Marks the error as one a retry layer already retried until its budget (attempts
    /// or time) ran out. [`crate::wrap::Retry`] sets it; a loop of its own that gives
    /// up on a temporary error may set it too.
    pub fn with_retries_spent(mut self, spent: bool) -> Self {
        self.retries_spent = spent;
        self
    }

    /// Names a planner constraint that cannot be met (several calls add several, when
    /// they fail only together). Such an error's class is [`ErrorClass::UserInput`].
    pub fn with_constraint(mut self, constraint: Constraint) -> Self {
        if !self.constraints.contains(&constraint) {
            self.constraints.push(constraint);
        }
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
    ///
    /// It stays true after a retry layer gave up: the failure is still one that may
    /// pass; [`Error::retries_spent`] says whether retrying *now* is sensible.
    pub fn is_temporary(&self) -> bool {
        self.temporary.unwrap_or_else(|| self.kind.is_temporary())
    }

    /// Who can make this error go away: see [`ErrorClass`] for how it is decided.
    pub fn class(&self) -> ErrorClass {
        if let Some(class) = self.class {
            class
        } else if !self.constraints.is_empty() {
            ErrorClass::UserInput
        } else if self.is_temporary() {
            ErrorClass::Transient
        } else {
            self.kind.class()
        }
    }

    /// Whether a retry layer already retried this error until its budget ran out
    /// (OpenDAL's temporary → persistent). An outer loop should not retry the same
    /// call again at once — that would multiply the attempts — but treat the error as
    /// final for this pass. False for errors no retry layer saw, for errors the layer
    /// did not retry (not temporary, a create whose provider is not idempotent) and
    /// when the layer's policy allows a single attempt.
    pub fn retries_spent(&self) -> bool {
        self.retries_spent
    }

    /// The planner constraints that cannot be met, when this error is a planner's
    /// infeasibility (empty otherwise). The message names them too, with the figures.
    pub fn constraints(&self) -> &[Constraint] {
        &self.constraints
    }

    /// A serialisable snapshot of this error (see [`ErrorInfo`]).
    pub fn info(&self) -> ErrorInfo {
        ErrorInfo::from(self)
    }

    /// The same kind, site, resource, class, temporariness, retry state and
    /// constraints with another message (the source is not kept: it is not `Clone`).
    pub fn with_message(&self, message: impl Into<String>) -> Self {
        Self {
            kind: self.kind,
            site: self.site.clone(),
            resource: self.resource.clone(),
            message: message.into(),
            temporary: self.temporary,
            class: self.class,
            retries_spent: self.retries_spent,
            constraints: self.constraints.clone(),
            source: None,
        }
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

/// A plain, serialisable snapshot of an error, for reports and events: why a node
/// failed ([`crate::deploy::NodeReport::error`]), why a step failed or is retried
/// ([`crate::deploy::EventKind`]).
///
/// `Display` prints [`message`](Self::message) alone: the same text the error's own
/// `Display` gave, so logs and the CLI read as before. The other fields are for a
/// front end to act on without parsing it.
///
/// ```
/// use intercloud_core::{Error, ErrorClass, ErrorKind};
///
/// let e = Error::new(ErrorKind::QuotaExceeded, "no capacity for 3 x L").with_site("tokyo");
/// let info = e.info();
/// assert_eq!(info.to_string(), e.to_string());
/// assert_eq!(info.class, ErrorClass::CloudRefused);
/// assert_eq!(info.site.as_ref().map(|s| s.as_str()), Some("tokyo"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorInfo {
    /// The error's kind.
    pub kind: ErrorKind,
    /// Who can make it go away.
    pub class: ErrorClass,
    /// The site concerned, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<SiteId>,
    /// The full text, as the error's `Display` shows it (site, resource and kind
    /// included), possibly with context the deployer added.
    pub message: String,
    /// A retry layer already spent its retries on it ([`Error::retries_spent`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retries_spent: bool,
    /// The planner constraints that cannot be met ([`Error::constraints`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
}

impl ErrorInfo {
    /// A snapshot of an error of `kind` with `message` as its whole text and the
    /// kind's class (for failures the deployer decides itself, with no [`Error`]).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            class: if kind.is_temporary() {
                ErrorClass::Transient
            } else {
                kind.class()
            },
            site: None,
            message: message.into(),
            retries_spent: false,
            constraints: Vec::new(),
        }
    }

    /// Names the site.
    pub fn with_site(mut self, site: impl Into<SiteId>) -> Self {
        self.site = Some(site.into());
        self
    }

    /// Overrides the class.
    pub fn with_class(mut self, class: ErrorClass) -> Self {
        self.class = class;
        self
    }

    /// The same error with `message` as its whole text.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }
}

impl From<&Error> for ErrorInfo {
    fn from(e: &Error) -> Self {
        Self {
            kind: e.kind(),
            class: e.class(),
            site: e.site().cloned(),
            message: e.to_string(),
            retries_spent: e.retries_spent(),
            constraints: e.constraints().to_vec(),
        }
    }
}

impl From<Error> for ErrorInfo {
    fn from(e: Error) -> Self {
        Self::from(&e)
    }
}

impl fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
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

    #[test]
    fn every_kind_has_the_class_of_the_table() {
        use ErrorClass::*;
        let table = [
            (ErrorKind::NotFound, CloudRefused),
            (ErrorKind::AlreadyExists, CloudRefused),
            (ErrorKind::Unauthenticated, OperatorConfig),
            (ErrorKind::PermissionDenied, CloudRefused),
            (ErrorKind::QuotaExceeded, CloudRefused),
            (ErrorKind::RateLimited, Transient),
            (ErrorKind::Unavailable, Transient),
            (ErrorKind::InvalidRequest, UserInput),
            (ErrorKind::Unsupported, CloudRefused),
            (ErrorKind::Protocol, OperatorConfig),
            (ErrorKind::Config, OperatorConfig),
            (ErrorKind::Timeout, Transient),
            (ErrorKind::Journal, OperatorConfig),
        ];
        for (kind, class) in table {
            assert_eq!(Error::new(kind, "x").class(), class, "{kind}");
            assert_eq!(ErrorInfo::new(kind, "x").class, class, "{kind}");
        }
    }

    #[test]
    fn temporariness_constraints_and_overrides_decide_the_class() {
        // A transient kind the backend marks final: the cloud refused.
        let failed_vm = Error::unavailable("VM 7 is failed").with_temporary(false);
        assert_eq!(failed_vm.class(), ErrorClass::CloudRefused);
        // Any kind marked temporary is transient.
        let flaky =
            Error::new(ErrorKind::QuotaExceeded, "insufficient capacity now").with_temporary(true);
        assert_eq!(flaky.class(), ErrorClass::Transient);
        // A planner shortfall names its constraint: the request must change.
        let short = Error::new(ErrorKind::QuotaExceeded, "capacity: short by 3")
            .with_constraint(Constraint::Capacity);
        assert_eq!(short.class(), ErrorClass::UserInput);
        assert_eq!(short.constraints(), &[Constraint::Capacity]);
        // An explicit class wins over everything.
        let e = Error::unavailable("x")
            .with_constraint(Constraint::Link)
            .with_class(ErrorClass::OperatorConfig);
        assert_eq!(e.class(), ErrorClass::OperatorConfig);
    }

    #[test]
    fn retries_spent_is_off_unless_set_and_survives_a_new_message() {
        let e = Error::unavailable("down").with_site("tokyo");
        assert!(!e.retries_spent());
        let spent = e
            .with_retries_spent(true)
            .with_constraint(Constraint::Pinning);
        let again = spent.with_message("down (again)");
        assert!(again.retries_spent());
        assert!(again.is_temporary());
        assert_eq!(again.class(), ErrorClass::UserInput);
        assert_eq!(again.constraints(), &[Constraint::Pinning]);
        assert_eq!(again.to_string(), "site tokyo: down (again) [unavailable]");
    }

    #[test]
    fn info_keeps_the_display_text_and_serialises_compactly() {
        let e = Error::new(ErrorKind::RateLimited, "slow down")
            .with_site("hokkaido")
            .with_resource("ic-1")
            .with_retries_spent(true);
        let info = e.info();
        assert_eq!(info.to_string(), e.to_string());
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "kind": "rate_limited",
                "class": "transient",
                "site": "hokkaido",
                "message": "site hokkaido: slow down (resource ic-1) [rate_limited]",
                "retries_spent": true,
            })
        );
        let back: ErrorInfo = serde_json::from_value(json).unwrap();
        assert_eq!(back, info);
        let plain = serde_json::to_value(ErrorInfo::new(ErrorKind::Timeout, "late")).unwrap();
        assert_eq!(
            plain,
            serde_json::json!({"kind": "timeout", "class": "transient", "message": "late"})
        );
    }

    #[test]
    fn the_error_stays_small_enough_to_return_by_value() {
        // clippy's result_large_err warns from 128 bytes.
        assert!(
            std::mem::size_of::<Error>() <= 128,
            "{}",
            std::mem::size_of::<Error>()
        );
    }
}
