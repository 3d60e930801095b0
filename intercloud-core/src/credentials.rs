//! API credentials per middleware, held so they cannot leak.
//!
//! Secrets are [`secrecy::SecretString`]s; `Debug` is written by hand and prints only
//! the non-secret identifier (user name, key id) and `******`.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::model::Middleware;

/// Credentials for one site.
#[derive(Clone)]
#[non_exhaustive]
pub enum Credentials {
    /// CloudStack API key and secret key.
    CloudStack {
        /// The API key (sent with every request; identifies the account).
        api_key: String,
        /// The secret key (signs requests; never sent).
        secret_key: SecretString,
    },
    /// OpenNebula user and password or login token (`ONE_AUTH` = `user:password`).
    OpenNebula {
        /// The user name.
        user: String,
        /// The password or token.
        password: SecretString,
    },
    /// EC2 or Eucalyptus access key, secret and optional session token.
    Ec2 {
        /// The access key id.
        access_key_id: String,
        /// The secret access key.
        secret_access_key: SecretString,
        /// The session token of temporary credentials.
        session_token: Option<SecretString>,
    },
}

impl Credentials {
    /// CloudStack credentials.
    pub fn cloudstack(api_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Self::CloudStack {
            api_key: api_key.into(),
            secret_key: SecretString::from(secret_key.into()),
        }
    }

    /// OpenNebula credentials.
    pub fn opennebula(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self::OpenNebula {
            user: user.into(),
            password: SecretString::from(password.into()),
        }
    }

    /// OpenNebula credentials from a `user:password` string (the `ONE_AUTH` format).
    ///
    /// # Errors
    /// `Config` when there is no `:` or either side is empty (the text is not echoed).
    pub fn opennebula_auth(auth: &str) -> crate::Result<Self> {
        let auth = auth.trim();
        match auth.split_once(':') {
            Some((u, p)) if !u.is_empty() && !p.is_empty() => Ok(Self::opennebula(u, p)),
            _ => Err(crate::Error::config(
                "OpenNebula auth must be 'user:password' (or 'user:token')",
            )),
        }
    }

    /// EC2 credentials.
    pub fn ec2(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Self {
        Self::Ec2 {
            access_key_id: access_key_id.into(),
            secret_access_key: SecretString::from(secret_access_key.into()),
            session_token: session_token.map(SecretString::from),
        }
    }

    /// The middlewares these credentials are for.
    pub fn fits(&self, middleware: Middleware) -> bool {
        matches!(
            (self, middleware),
            (Self::CloudStack { .. }, Middleware::CloudStack)
                | (Self::OpenNebula { .. }, Middleware::OpenNebula)
                | (Self::Ec2 { .. }, Middleware::Ec2 | Middleware::Eucalyptus)
        )
    }

    /// The non-secret identifier: API key prefix, user name, access key id.
    pub fn identity(&self) -> String {
        match self {
            Self::CloudStack { api_key, .. } => redact_prefix(api_key),
            Self::OpenNebula { user, .. } => user.clone(),
            Self::Ec2 { access_key_id, .. } => access_key_id.clone(),
        }
    }

    /// Whether two credentials are equal, secrets included (constant-time is not
    /// needed: this is for tests and vault updates, not authentication).
    pub fn same_as(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Self::CloudStack {
                    api_key: a,
                    secret_key: s,
                },
                Self::CloudStack {
                    api_key: b,
                    secret_key: t,
                },
            ) => a == b && s.expose_secret() == t.expose_secret(),
            (
                Self::OpenNebula {
                    user: a,
                    password: s,
                },
                Self::OpenNebula {
                    user: b,
                    password: t,
                },
            ) => a == b && s.expose_secret() == t.expose_secret(),
            (
                Self::Ec2 {
                    access_key_id: a,
                    secret_access_key: s,
                    session_token: x,
                },
                Self::Ec2 {
                    access_key_id: b,
                    secret_access_key: t,
                    session_token: y,
                },
            ) => {
                a == b
                    && s.expose_secret() == t.expose_secret()
                    && x.as_ref().map(|v| v.expose_secret().to_owned())
                        == y.as_ref().map(|v| v.expose_secret().to_owned())
            }
            _ => false,
        }
    }
}

/// Shows at most the first 4 characters of an identifier.
fn redact_prefix(id: &str) -> String {
    let head: String = id.chars().take(4).collect();
    format!("{head}…")
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CloudStack { api_key, .. } => f
                .debug_struct("CloudStack")
                .field("api_key", &redact_prefix(api_key))
                .field("secret_key", &"******")
                .finish(),
            Self::OpenNebula { user, .. } => f
                .debug_struct("OpenNebula")
                .field("user", user)
                .field("password", &"******")
                .finish(),
            Self::Ec2 {
                access_key_id,
                session_token,
                ..
            } => f
                .debug_struct("Ec2")
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &"******")
                .field("session_token", &session_token.as_ref().map(|_| "******"))
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let all = [
            Credentials::cloudstack("APIKEY-PUBLIC-123456", "S3CRET-cs-value"),
            Credentials::opennebula("oneadmin", "S3CRET-one-value"),
            Credentials::ec2(
                "AKIDEXAMPLE",
                "S3CRET-ec2-value",
                Some("S3CRET-token".into()),
            ),
        ];
        for c in &all {
            let d = format!("{c:?} {:#?} {}", c, c.identity());
            assert!(!d.contains("S3CRET"), "{d}");
        }
        assert!(!format!("{:?}", all[0]).contains("APIKEY-PUBLIC-123456"));
    }

    #[test]
    fn one_auth_parsing_does_not_echo_input() {
        let c = Credentials::opennebula_auth("oneadmin:pa:ss\n").unwrap();
        assert!(c.same_as(&Credentials::opennebula("oneadmin", "pa:ss")));
        let e = Credentials::opennebula_auth("nocolonS3CRET").unwrap_err();
        assert!(!e.to_string().contains("S3CRET"));
    }

    #[test]
    fn credentials_fit_their_middleware() {
        let c = Credentials::ec2("a", "b", None);
        assert!(c.fits(Middleware::Ec2) && c.fits(Middleware::Eucalyptus));
        assert!(!c.fits(Middleware::CloudStack));
    }
}
