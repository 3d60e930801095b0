//! Who is asking: single sign-on through a trusted proxy's identity header, local
//! accounts for development, the session that remembers either, and the CSRF check on
//! every POST.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};

use crate::session::{cookie_value, same_token, COOKIE as SESSION_COOKIE};
use crate::AppState;

/// Identity headers an SSO proxy (Shibboleth, mod_auth_openidc) sets, in the order
/// they are read.
pub const IDENTITY_HEADERS: [&str; 2] = ["x-remote-user", "remote_user"];

/// Largest form body accepted.
pub(crate) const MAX_FORM_BYTES: usize = 64 * 1024;

/// The visitor of one request, put in the request's extensions by [`authenticate`].
#[derive(Debug, Clone)]
pub(crate) struct Visitor {
    /// The session id.
    pub(crate) session: String,
    /// The signed-in user.
    pub(crate) user: Option<String>,
    /// The session's CSRF token.
    pub(crate) csrf: String,
}

/// Local accounts (development): user name → argon2 hash.
pub(crate) struct LocalUsers {
    hashes: HashMap<String, String>,
}

impl fmt::Debug for LocalUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalUsers")
            .field("users", &self.hashes.len())
            .finish()
    }
}

/// Whether `name` is an acceptable user name (also for SSO headers).
pub fn valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

impl LocalUsers {
    /// Hashes the passwords of `users`.
    ///
    /// # Errors
    /// A message naming the bad user name, or the hashing failure.
    pub(crate) fn new(users: &[(String, SecretString)]) -> Result<Self, String> {
        let mut hashes = HashMap::new();
        for (name, password) in users {
            if !valid_user_name(name) {
                return Err(format!(
                    "local user {name:?}: use 1-64 letters, digits, '.', '_', '-' or '@'"
                ));
            }
            let mut salt_bytes = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt_bytes);
            let salt = SaltString::encode_b64(&salt_bytes)
                .map_err(|e| format!("local user {name}: cannot make a salt ({e})"))?;
            let hash = Argon2::default()
                .hash_password(password.expose_secret().as_bytes(), &salt)
                .map_err(|e| format!("local user {name}: cannot hash the password ({e})"))?;
            hashes.insert(name.clone(), hash.to_string());
        }
        Ok(Self { hashes })
    }

    /// Whether `password` is `user`'s.
    pub(crate) fn verify(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.hashes.get(user) else {
            return false;
        };
        PasswordHash::new(hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    }
}

/// The user a trusted proxy vouches for: the identity header, honoured only when the
/// peer is the configured proxy address.
fn sso_user(headers: &HeaderMap, peer: Option<IpAddr>, proxy: Option<IpAddr>) -> Option<String> {
    let value = IDENTITY_HEADERS
        .iter()
        .find_map(|h| headers.get(*h))
        .and_then(|v| v.to_str().ok())
        .map(str::trim)?;
    match (proxy, peer) {
        (Some(proxy), Some(peer)) if proxy == peer => {
            if valid_user_name(value) {
                Some(value.to_owned())
            } else {
                tracing::warn!(
                    "identity header from the proxy holds an invalid user name; ignored"
                );
                None
            }
        }
        _ => {
            tracing::warn!(peer = ?peer, "identity header from an untrusted address; ignored");
            None
        }
    }
}

/// Middleware: resolves the session (creating one, or one for the SSO user), checks
/// the CSRF token of every POST, and sets the cookie when the session is new.
pub(crate) async fn authenticate(
    State(app): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let headers = req.headers();
    let sso = sso_user(headers, peer, app.trusted_proxy);
    let existing = headers
        .get(COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| cookie_value(c, SESSION_COOKIE))
        .and_then(|id| app.sessions.get(id).map(|s| (id.to_owned(), s)));
    let (visitor, fresh) = match (existing, sso) {
        (Some((id, s)), None) if app.trusted_proxy.is_none() || s.user.is_none() => (
            Visitor {
                session: id,
                user: s.user,
                csrf: s.csrf,
            },
            false,
        ),
        (Some((id, s)), Some(u)) if s.user.as_deref() == Some(u.as_str()) => (
            Visitor {
                session: id,
                user: s.user,
                csrf: s.csrf,
            },
            false,
        ),
        (_, sso) => {
            // In SSO mode a session only lives as long as the proxy vouches for it.
            let (id, csrf) = app.sessions.create(sso.clone());
            (
                Visitor {
                    session: id,
                    user: sso,
                    csrf,
                },
                true,
            )
        }
    };
    let (parts, body) = req.into_parts();
    let body = if parts.method == Method::POST {
        let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
            return (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response();
        };
        let token = url::form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned());
        if !token.is_some_and(|t| same_token(&t, &visitor.csrf)) {
            tracing::warn!(path = %parts.uri.path(), "POST without a valid CSRF token; rejected");
            return forbidden_csrf();
        }
        Body::from(bytes)
    } else {
        body
    };
    let mut req = Request::from_parts(parts, body);
    let cookie = fresh.then(|| app.sessions.cookie(&visitor.session));
    req.extensions_mut().insert(visitor);
    let mut resp = next.run(req).await;
    if let Some(c) = cookie {
        if !resp.headers().contains_key(SET_COOKIE) {
            if let Ok(v) = HeaderValue::from_str(&c) {
                resp.headers_mut().append(SET_COOKIE, v);
            }
        }
    }
    resp
}

fn forbidden_csrf() -> Response {
    (
        StatusCode::FORBIDDEN,
        axum::response::Html(crate::html::page(
            "Form expired",
            None,
            "",
            r#"<p class="err">This form is missing its security token or it has expired. Go back, reload the page and try again.</p>"#,
        )),
    )
        .into_response()
}
