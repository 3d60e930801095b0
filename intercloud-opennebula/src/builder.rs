//! [`OpenNebulaBuilder`]: endpoint, credentials and timings of one OpenNebula site.
//! Setters never fail; [`OpenNebulaBuilder::build`] validates everything.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::ExposeSecret;
use url::Url;

use intercloud_core::{Credentials, Error, Result, SiteId};

use crate::client::OneClient;
use crate::provider::{OpenNebulaProvider, Settings};

/// The endpoint the OpenNebula CLI uses when `ONE_XMLRPC` is unset.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:2633/RPC2";

/// Whose VMs and templates the pool calls list (the pools' `filter_flag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PoolFilter {
    /// `-2`: everything the user may see (the default).
    #[default]
    All,
    /// `-1`: the user's and their groups'.
    MineAndGroups,
    /// `-3`: the user's own.
    Mine,
    /// `-4`: the user's primary group's.
    PrimaryGroup,
    /// `>= 0`: one user's, by UID.
    User(u32),
}

impl PoolFilter {
    /// The `filter_flag` integer.
    pub fn flag(self) -> i32 {
        match self {
            Self::All => -2,
            Self::MineAndGroups => -1,
            Self::Mine => -3,
            Self::PrimaryGroup => -4,
            Self::User(uid) => i32::try_from(uid).unwrap_or(i32::MAX),
        }
    }
}

/// Builds an [`OpenNebulaProvider`].
///
/// ```no_run
/// # fn main() -> intercloud_core::Result<()> {
/// use intercloud_opennebula::OpenNebulaBuilder;
/// let provider = OpenNebulaBuilder::new("nii")
///     .endpoint("http://one.example.ac.jp:2633/RPC2")
///     .auth("oneadmin", "password")
///     .build()?;
/// // or, like the `onevm` CLI: ONE_XMLRPC and ONE_AUTH (a file holding user:password)
/// let from_env = OpenNebulaBuilder::from_env("nii").build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OpenNebulaBuilder {
    site: SiteId,
    endpoint: Option<String>,
    credentials: Option<Credentials>,
    auth_file: Option<PathBuf>,
    timeout: Duration,
    connect_timeout: Duration,
    pool_filter: PoolFilter,
    create_concurrency: usize,
    poll_interval: Duration,
    running_timeout: Duration,
}

impl fmt::Debug for OpenNebulaBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenNebulaBuilder")
            .field("site", &self.site)
            .field("endpoint", &self.endpoint.as_deref().map(redact_url))
            .field("credentials", &self.credentials)
            .field("auth_file", &self.auth_file)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("pool_filter", &self.pool_filter)
            .field("create_concurrency", &self.create_concurrency)
            .field("poll_interval", &self.poll_interval)
            .field("running_timeout", &self.running_timeout)
            .finish()
    }
}

impl OpenNebulaBuilder {
    /// A builder for `site` with defaults: endpoint [`DEFAULT_ENDPOINT`], no
    /// credentials, 60 s request timeout, 10 s connect timeout, [`PoolFilter::All`],
    /// 8 concurrent instantiations, polling every 2 s for up to 10 minutes.
    pub fn new(site: impl Into<SiteId>) -> Self {
        Self {
            site: site.into(),
            endpoint: None,
            credentials: None,
            auth_file: None,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            pool_filter: PoolFilter::All,
            create_concurrency: 8,
            poll_interval: Duration::from_secs(2),
            running_timeout: Duration::from_secs(600),
        }
    }

    /// A builder configured the way the OpenNebula CLI is: the endpoint from
    /// `ONE_XMLRPC` (else [`DEFAULT_ENDPOINT`]) and the credentials from the file named
    /// by `ONE_AUTH` (else `$HOME/.one/one_auth`), read by [`Self::build`].
    pub fn from_env(site: impl Into<SiteId>) -> Self {
        Self::from_env_with(site, |k| std::env::var(k).ok())
    }

    /// [`Self::from_env`] with the variables looked up by `var` (for tests and for
    /// callers with their own environment).
    pub fn from_env_with(site: impl Into<SiteId>, var: impl Fn(&str) -> Option<String>) -> Self {
        let mut b = Self::new(site);
        if let Some(ep) = var("ONE_XMLRPC").filter(|s| !s.trim().is_empty()) {
            b.endpoint = Some(ep.trim().to_owned());
        }
        b.auth_file = var("ONE_AUTH")
            .filter(|s| !s.trim().is_empty())
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".one").join("one_auth")));
        b
    }

    /// The XML-RPC endpoint, e.g. `http://HOST:2633/RPC2`.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// The credentials (must be [`Credentials::OpenNebula`]); they take precedence
    /// over an `ONE_AUTH` file.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// User and password (or login token).
    pub fn auth(self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials(Credentials::opennebula(user, password))
    }

    /// A file holding `user:password`, read by [`Self::build`] when no credentials
    /// were given.
    pub fn auth_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.auth_file = Some(path.into());
        self
    }

    /// The timeout of one HTTP exchange (default 60 s; a large `one.vmpool.infoextended`
    /// may take seconds).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The TCP connect timeout (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Whose VMs and templates to list (default [`PoolFilter::All`]).
    pub fn pool_filter(mut self, filter: PoolFilter) -> Self {
        self.pool_filter = filter;
        self
    }

    /// How many `one.template.instantiate` calls one `create_vms` keeps in flight
    /// (default 8; at least 1).
    pub fn create_concurrency(mut self, n: usize) -> Self {
        self.create_concurrency = n;
        self
    }

    /// The interval of [`OpenNebulaProvider::wait_running`] (default 2 s).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// How long [`OpenNebulaProvider::wait_running`] waits (default 10 minutes).
    pub fn running_timeout(mut self, timeout: Duration) -> Self {
        self.running_timeout = timeout;
        self
    }

    /// Validates the settings and builds the provider. No network call is made; use
    /// [`OpenNebulaProvider::check`] to test the credentials.
    ///
    /// # Errors
    /// `Config`, naming the site and what to fix: an endpoint that is not an
    /// `http(s)://` URL or that embeds credentials, missing or non-OpenNebula
    /// credentials, an unreadable or malformed `ONE_AUTH` file (its content is never
    /// echoed), a zero concurrency or interval.
    pub fn build(self) -> Result<OpenNebulaProvider> {
        let site = self.site.clone();
        let cfg = |m: String| Error::config(m).with_site(&site);
        let raw = self.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT);
        let endpoint = Url::parse(raw).map_err(|e| {
            cfg(format!(
                "OpenNebula endpoint is not a URL ({e}); expected http://HOST:2633/RPC2"
            ))
        })?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(cfg(format!(
                "OpenNebula endpoint must be http(s)://HOST:PORT/RPC2, got scheme {:?}",
                endpoint.scheme()
            )));
        }
        if !endpoint.username().is_empty() || endpoint.password().is_some() {
            return Err(cfg(
                "OpenNebula endpoint must not embed credentials; give user:password through \
                 ONE_AUTH or the site's credentials"
                    .into(),
            ));
        }
        let credentials = match (self.credentials, &self.auth_file) {
            (Some(c), _) => c,
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    cfg(format!(
                        "cannot read the ONE_AUTH file {}: {e}",
                        path.display()
                    ))
                })?;
                let first = text.lines().next().unwrap_or("");
                Credentials::opennebula_auth(first).map_err(|e| {
                    cfg(format!(
                        "the ONE_AUTH file {}: {}",
                        path.display(),
                        e.message()
                    ))
                })?
            }
            (None, None) => {
                return Err(cfg(
                    "no OpenNebula credentials: set ONE_AUTH to a file holding user:password, \
                     or give credentials to the builder"
                        .into(),
                ))
            }
        };
        let Credentials::OpenNebula { user, password } = credentials else {
            return Err(cfg(format!(
                "credentials for another middleware given to an OpenNebula site (identity {})",
                credentials.identity()
            )));
        };
        if user.is_empty() || password.expose_secret().is_empty() || user.contains(':') {
            return Err(cfg(
                "OpenNebula credentials need a non-empty user without ':' and a non-empty password"
                    .into(),
            ));
        }
        if self.create_concurrency == 0 {
            return Err(cfg("create_concurrency must be at least 1".into()));
        }
        if self.poll_interval.is_zero() || self.timeout.is_zero() {
            return Err(cfg(
                "poll_interval and timeout must be longer than zero".into()
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            // oned's Abyss server drops idle keep-alive connections after 15 s.
            .pool_idle_timeout(Duration::from_secs(10))
            .user_agent(concat!("intercloud-opennebula/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| cfg(format!("cannot build the HTTP client: {e}")))?;
        let client = OneClient::new(http, endpoint, site.clone(), user, password);
        Ok(OpenNebulaProvider::new(
            site,
            client,
            Settings {
                pool_filter: self.pool_filter,
                create_concurrency: self.create_concurrency,
                poll_interval: self.poll_interval,
                running_timeout: self.running_timeout,
            },
        ))
    }
}

/// The URL without any `user:password@` part; unparseable text is not shown at all.
fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("******"));
            }
            u.to_string()
        }
        Err(_) => "(not a URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use intercloud_core::ErrorKind;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn from_env_reads_one_xmlrpc_and_the_one_auth_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("one_auth");
        std::fs::write(&path, "oneadmin:S3CRET-pw\n").unwrap();
        let p = OpenNebulaBuilder::from_env_with(
            "nii",
            env(&[
                ("ONE_XMLRPC", "http://127.0.0.1:2633/RPC2"),
                ("ONE_AUTH", path.to_str().unwrap()),
            ]),
        )
        .build()
        .unwrap();
        let d = format!("{p:?}");
        assert!(
            d.contains("127.0.0.1:2633") && d.contains("oneadmin"),
            "{d}"
        );
        assert!(!d.contains("S3CRET"), "{d}");
    }

    #[test]
    fn from_env_defaults_to_home_one_auth() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".one")).unwrap();
        std::fs::write(dir.path().join(".one/one_auth"), "u:p").unwrap();
        let b =
            OpenNebulaBuilder::from_env_with("s", env(&[("HOME", dir.path().to_str().unwrap())]));
        let p = b.build().unwrap();
        assert_eq!(p.client().endpoint().as_str(), DEFAULT_ENDPOINT);
    }

    #[test]
    fn bad_settings_are_config_errors_naming_the_site_without_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let bad_file = dir.path().join("auth");
        std::fs::write(&bad_file, "S3CRET-without-colon").unwrap();
        let cases = [
            OpenNebulaBuilder::new("s")
                .endpoint("not a url")
                .auth("u", "S3CRET"),
            OpenNebulaBuilder::new("s")
                .endpoint("ftp://h/RPC2")
                .auth("u", "S3CRET"),
            OpenNebulaBuilder::new("s")
                .endpoint("http://u:S3CRET@h:2633/RPC2")
                .auth("u", "p"),
            OpenNebulaBuilder::new("s"),
            OpenNebulaBuilder::new("s").auth_file(dir.path().join("missing")),
            OpenNebulaBuilder::new("s").auth_file(&bad_file),
            OpenNebulaBuilder::new("s").credentials(Credentials::cloudstack("k", "S3CRET")),
            OpenNebulaBuilder::new("s")
                .auth("u", "S3CRET")
                .create_concurrency(0),
            OpenNebulaBuilder::new("s").auth("", "S3CRET"),
        ];
        for b in cases {
            let dbg = format!("{b:?}");
            assert!(!dbg.contains("S3CRET"), "{dbg}");
            let e = b.build().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{e}");
            assert_eq!(e.site().map(SiteId::as_str), Some("s"));
            assert!(!e.to_string().contains("S3CRET"), "{e}");
        }
    }

    #[test]
    fn pool_filter_flags() {
        assert_eq!(PoolFilter::default().flag(), -2);
        assert_eq!(PoolFilter::MineAndGroups.flag(), -1);
        assert_eq!(PoolFilter::Mine.flag(), -3);
        assert_eq!(PoolFilter::PrimaryGroup.flag(), -4);
        assert_eq!(PoolFilter::User(5).flag(), 5);
    }
}
