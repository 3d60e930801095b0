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

impl Credentials {
    /// Credentials for a `middleware` site from environment variables named
    /// `PREFIX_…`, the `credentials = "env:PREFIX"` contract of `federation.toml`:
    ///
    /// | middleware | variables |
    /// |---|---|
    /// | CloudStack | `PREFIX_API_KEY`, `PREFIX_SECRET_KEY` |
    /// | OpenNebula | `PREFIX_AUTH` = `user:password` (or `user:token`) |
    /// | EC2, Eucalyptus | `PREFIX_ACCESS_KEY_ID`, `PREFIX_SECRET_ACCESS_KEY`, optional `PREFIX_SESSION_TOKEN` |
    ///
    /// `lookup` reads one variable (`|name| std::env::var(name).ok()` in a program, a
    /// map in a test). Values are trimmed of surrounding whitespace; an empty value
    /// counts as missing.
    ///
    /// # Errors
    /// `Config` naming the missing or malformed variable, never its value.
    pub fn from_env(
        middleware: Middleware,
        prefix: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> crate::Result<Self> {
        let var = |suffix: &str| -> crate::Result<String> {
            let name = format!("{prefix}_{suffix}");
            match lookup(&name) {
                Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
                Some(_) => Err(crate::Error::config(format!(
                    "environment variable {name} is empty ({middleware} credentials)"
                ))),
                None => Err(crate::Error::config(format!(
                    "environment variable {name} is not set ({middleware} credentials)"
                ))),
            }
        };
        match middleware {
            Middleware::CloudStack => Ok(Self::cloudstack(var("API_KEY")?, var("SECRET_KEY")?)),
            Middleware::OpenNebula => {
                let auth = zeroize::Zeroizing::new(var("AUTH")?);
                Self::opennebula_auth(&auth).map_err(|_| {
                    crate::Error::config(format!(
                        "environment variable {prefix}_AUTH must be 'user:password' (or 'user:token')"
                    ))
                })
            }
            Middleware::Ec2 | Middleware::Eucalyptus => {
                // Optional; an empty one (`export P_SESSION_TOKEN=`) means none.
                let token = lookup(&format!("{prefix}_SESSION_TOKEN"))
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty());
                Ok(Self::ec2(
                    var("ACCESS_KEY_ID")?,
                    var("SECRET_ACCESS_KEY")?,
                    token,
                ))
            }
        }
    }
}

/// Where a site's credentials come from: the `credentials` field of a site in
/// `federation.toml`.
///
/// `"vault:NAME"` names an entry of the user's [`crate::vault::Vault`] (by site
/// id `NAME`); `"env:PREFIX"` reads `PREFIX_…` variables (see
/// [`Credentials::from_env`]). Parse with [`str::parse`]; [`fmt::Display`] gives
/// the string back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CredentialRef {
    /// An entry of the vault, by name.
    Vault(String),
    /// Environment variables with this prefix.
    Env(String),
}

impl CredentialRef {
    /// Resolves the reference for `user` at a `middleware` site: a vault entry from
    /// `vault`, or environment variables through `lookup`.
    ///
    /// # Errors
    /// `Config` when the vault has no such entry for the user, when the entry is for
    /// another middleware, or when a variable is missing; the vault's own errors.
    pub async fn resolve(
        &self,
        vault: &dyn crate::vault::Vault,
        user: &str,
        middleware: Middleware,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> crate::Result<Credentials> {
        let creds = match self {
            Self::Env(prefix) => Credentials::from_env(middleware, prefix, lookup)?,
            Self::Vault(name) => vault
                .get(user, &crate::model::SiteId::new(name.as_str()))
                .await?
                .ok_or_else(|| {
                    crate::Error::config(format!(
                        "the vault has no credentials named '{name}' for user '{user}'; add them first"
                    ))
                })?,
        };
        if !creds.fits(middleware) {
            return Err(crate::Error::config(format!(
                "credentials '{self}' are not {middleware} credentials"
            )));
        }
        Ok(creds)
    }
}

impl fmt::Display for CredentialRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vault(name) => write!(f, "vault:{name}"),
            Self::Env(prefix) => write!(f, "env:{prefix}"),
        }
    }
}

impl std::str::FromStr for CredentialRef {
    type Err = crate::Error;

    /// Parses `vault:NAME` or `env:PREFIX`. The input is never echoed whole (someone
    /// may paste a key by mistake): only a short scheme name is.
    fn from_str(s: &str) -> crate::Result<Self> {
        const EXPECTED: &str = "credentials must be 'vault:NAME' or 'env:PREFIX'";
        let s = s.trim();
        let Some((scheme, rest)) = s.split_once(':') else {
            return Err(crate::Error::config(format!(
                "{EXPECTED} (no ':' in the value)"
            )));
        };
        match scheme {
            "vault" => {
                let valid = !rest.is_empty()
                    && rest
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                if valid {
                    Ok(Self::Vault(rest.to_owned()))
                } else {
                    Err(crate::Error::config(
                        "credentials 'vault:NAME': NAME must be non-empty letters, digits, '-', '_' or '.'",
                    ))
                }
            }
            "env" => {
                let mut chars = rest.chars();
                let valid = chars
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
                if valid {
                    Ok(Self::Env(rest.to_owned()))
                } else {
                    Err(crate::Error::config(
                        "credentials 'env:PREFIX': PREFIX must be a variable-name prefix \
                         (letters, digits, '_', not starting with a digit)",
                    ))
                }
            }
            other => {
                // Echo only what looks like a mistyped scheme (short, lowercase), never
                // something that may be a pasted key.
                let short = other.len() <= 8 && other.chars().all(|c| c.is_ascii_lowercase());
                Err(crate::Error::config(if short {
                    format!("{EXPECTED}; unknown scheme '{other}'")
                } else {
                    format!("{EXPECTED}; the part before ':' is not a scheme")
                }))
            }
        }
    }
}

impl serde::Serialize for CredentialRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CredentialRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|e: crate::Error| serde::de::Error::custom(e.message().to_owned()))
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

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    #[test]
    fn from_env_reads_each_middleware_contract() {
        let cs = Credentials::from_env(
            Middleware::CloudStack,
            "HOK",
            env(&[("HOK_API_KEY", "ak"), ("HOK_SECRET_KEY", " S3CRET-sk\n")]),
        )
        .unwrap();
        assert!(cs.same_as(&Credentials::cloudstack("ak", "S3CRET-sk")));
        let one = Credentials::from_env(
            Middleware::OpenNebula,
            "NII",
            env(&[("NII_AUTH", "oneadmin:S3CRET-pw")]),
        )
        .unwrap();
        assert!(one.same_as(&Credentials::opennebula("oneadmin", "S3CRET-pw")));
        for mw in [Middleware::Ec2, Middleware::Eucalyptus] {
            let with = Credentials::from_env(
                mw,
                "AWS",
                env(&[
                    ("AWS_ACCESS_KEY_ID", "AKID"),
                    ("AWS_SECRET_ACCESS_KEY", "S3CRET-sak"),
                    ("AWS_SESSION_TOKEN", "S3CRET-tok"),
                ]),
            )
            .unwrap();
            assert!(with.same_as(&Credentials::ec2(
                "AKID",
                "S3CRET-sak",
                Some("S3CRET-tok".into())
            )));
            let without = Credentials::from_env(
                mw,
                "AWS",
                env(&[
                    ("AWS_ACCESS_KEY_ID", "AKID"),
                    ("AWS_SECRET_ACCESS_KEY", "S3CRET-sak"),
                ]),
            )
            .unwrap();
            assert!(without.same_as(&Credentials::ec2("AKID", "S3CRET-sak", None)));
            let blank = Credentials::from_env(
                mw,
                "AWS",
                env(&[
                    ("AWS_ACCESS_KEY_ID", "AKID"),
                    ("AWS_SECRET_ACCESS_KEY", "S3CRET-sak"),
                    ("AWS_SESSION_TOKEN", " "),
                ]),
            )
            .unwrap();
            assert!(blank.same_as(&Credentials::ec2("AKID", "S3CRET-sak", None)));
        }
    }

    type EnvCase<'a> = (Middleware, &'a [(&'a str, &'a str)], &'a str);

    #[test]
    fn from_env_names_the_missing_variable_never_a_value() {
        let cases: [EnvCase<'_>; 6] = [
            (
                Middleware::CloudStack,
                &[("P_API_KEY", "S3CRET-a")],
                "P_SECRET_KEY",
            ),
            (
                Middleware::CloudStack,
                &[("P_SECRET_KEY", "S3CRET-b")],
                "P_API_KEY",
            ),
            (
                Middleware::OpenNebula,
                &[("P_AUTH", "S3CRET-no-colon")],
                "P_AUTH",
            ),
            (Middleware::OpenNebula, &[], "P_AUTH"),
            (
                Middleware::Ec2,
                &[("P_ACCESS_KEY_ID", "AKID")],
                "P_SECRET_ACCESS_KEY",
            ),
            (
                Middleware::Eucalyptus,
                &[
                    ("P_ACCESS_KEY_ID", " "),
                    ("P_SECRET_ACCESS_KEY", "S3CRET-c"),
                    ("P_SESSION_TOKEN", "S3CRET-t"),
                ],
                "P_ACCESS_KEY_ID",
            ),
        ];
        for (mw, vars, missing) in cases {
            let e = Credentials::from_env(mw, "P", env(vars)).unwrap_err();
            let text = format!("{e} {e:?}");
            assert_eq!(e.kind(), crate::ErrorKind::Config);
            assert!(text.contains(missing), "{mw}: {text}");
            assert!(!text.contains("S3CRET"), "{text}");
        }
    }

    #[test]
    fn credential_refs_parse_display_and_refuse_clearly() {
        let v: CredentialRef = "vault:hokkaido".parse().unwrap();
        assert_eq!(v, CredentialRef::Vault("hokkaido".into()));
        assert_eq!(v.to_string(), "vault:hokkaido");
        let e: CredentialRef = " env:HOK_1 ".parse().unwrap();
        assert_eq!(e, CredentialRef::Env("HOK_1".into()));
        assert_eq!(e.to_string(), "env:HOK_1");
        for bad in [
            "vault:",
            "env:",
            "env:1ABC",
            "env:A-B",
            "vault:a/b",
            "hokkaido",
            "",
        ] {
            let err = bad.parse::<CredentialRef>().unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Config, "{bad}");
            assert!(
                err.to_string().contains("vault:NAME") || err.to_string().contains("env:PREFIX"),
                "{err}"
            );
        }
        let err = "vualt:x".parse::<CredentialRef>().unwrap_err();
        assert!(err.to_string().contains("unknown scheme 'vualt'"), "{err}");
        // A pasted secret is not echoed.
        let err = "AKIDS3CRETVALUE0123:S3CRET"
            .parse::<CredentialRef>()
            .unwrap_err();
        assert!(!err.to_string().contains("S3CRET"), "{err}");
        let err = "oneadmin:S3CRET-password"
            .parse::<CredentialRef>()
            .unwrap_err();
        assert!(!err.to_string().contains("S3CRET"), "{err}");
    }

    #[test]
    fn credential_refs_serde_as_strings() {
        let v: CredentialRef = serde_json::from_str("\"env:AWS\"").unwrap();
        assert_eq!(v, CredentialRef::Env("AWS".into()));
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"env:AWS\"");
        assert!(serde_json::from_str::<CredentialRef>("\"nope\"").is_err());
    }

    #[tokio::test]
    async fn credential_refs_resolve_from_vault_or_env_and_check_middleware() {
        use crate::vault::{MemoryVault, Vault};
        let vault = MemoryVault::new();
        vault
            .put("alice", &"hok".into(), Credentials::cloudstack("ak", "sk"))
            .await
            .unwrap();
        let r = CredentialRef::Vault("hok".into());
        let c = r
            .resolve(&vault, "alice", Middleware::CloudStack, |_| None)
            .await
            .unwrap();
        assert!(c.same_as(&Credentials::cloudstack("ak", "sk")));
        let wrong_user = r
            .resolve(&vault, "bob", Middleware::CloudStack, |_| None)
            .await
            .unwrap_err();
        assert!(wrong_user.to_string().contains("'hok'"), "{wrong_user}");
        let wrong_mw = r
            .resolve(&vault, "alice", Middleware::Ec2, |_| None)
            .await
            .unwrap_err();
        assert!(wrong_mw.to_string().contains("not ec2"), "{wrong_mw}");
        let e = CredentialRef::Env("X".into())
            .resolve(
                &vault,
                "alice",
                Middleware::OpenNebula,
                env(&[("X_AUTH", "u:p")]),
            )
            .await
            .unwrap();
        assert!(e.same_as(&Credentials::opennebula("u", "p")));
    }
}
