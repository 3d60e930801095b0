//! The routes. Every handler is thin: read the visitor, check ownership, call the
//! library, render.

// Helpers return the early `Response` as `Err` for `?`-free early exits in handlers;
// it is built once per request, so its size does not matter.
#![allow(clippy::result_large_err)]

mod clusters;
mod keys;
mod login;
mod request;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::auth::{authenticate, Visitor};
use crate::html::{page, PROGRESS_JS, SECURITY_HEADERS, STYLESHEET};
use crate::AppState;

/// Every route, behind the session / SSO / CSRF middleware.
pub(crate) fn router(app: AppState) -> Router {
    Router::new()
        .route("/", get(login::index))
        .route("/static/portal.css", get(stylesheet))
        .route("/static/progress.js", get(progress_js))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/credentials", get(keys::list))
        .route("/credentials/{site}", post(keys::save))
        .route("/credentials/{site}/test", post(keys::test))
        .route("/credentials/{site}/delete", post(keys::remove))
        .route("/request", get(request::form).post(request::plan))
        .route("/drafts/{id}/confirm", post(request::confirm))
        .route("/clusters", get(clusters::list))
        .route("/clusters/{id}", get(clusters::show))
        .route("/clusters/{id}/progress", get(clusters::progress))
        .route("/clusters/{id}/events", get(clusters::events))
        .route("/clusters/{id}/repair", post(clusters::repair))
        .route("/clusters/{id}/destroy", post(clusters::destroy))
        .layer(from_fn_with_state(app.clone(), authenticate))
        .layer(from_fn(security_headers))
        .with_state(app)
}

/// The signed-in user, or a redirect to the login page.
fn signed_in(v: &Visitor) -> Result<&str, Response> {
    v.user
        .as_deref()
        .ok_or_else(|| Redirect::to("/login").into_response())
}

/// A full page for the visitor.
fn html(v: &Visitor, title: &str, body: &str) -> Response {
    Html(page(title, v.user.as_deref(), &v.csrf, body)).into_response()
}

/// A page with a status code.
fn html_status(v: &Visitor, status: StatusCode, title: &str, body: &str) -> Response {
    (status, Html(page(title, v.user.as_deref(), &v.csrf, body))).into_response()
}

/// 404 for anything missing or not the visitor's.
fn not_found(v: &Visitor) -> Response {
    html_status(
        v,
        StatusCode::NOT_FOUND,
        "Not found",
        "<p>There is no such page or cluster for you.</p>",
    )
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}

async fn progress_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        PROGRESS_JS,
    )
        .into_response()
}

/// Adds [`SECURITY_HEADERS`] to every response.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    for (name, value) in SECURITY_HEADERS {
        resp.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    resp
}
