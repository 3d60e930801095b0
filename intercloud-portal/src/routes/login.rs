//! `/`, `/login`, `/logout`.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::{html, html_status};
use crate::auth::Visitor;
use crate::{render, AppState};

pub(super) async fn index(Extension(v): Extension<Visitor>) -> Response {
    if v.user.is_some() {
        Redirect::to("/clusters").into_response()
    } else {
        Redirect::to("/login").into_response()
    }
}

pub(super) async fn form(
    State(app): State<AppState>,
    Extension(v): Extension<Visitor>,
) -> Response {
    if v.user.is_some() {
        return Redirect::to("/clusters").into_response();
    }
    html(
        &v,
        "Log in",
        &render::login(&v.csrf, None, app.trusted_proxy.is_some()),
    )
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    user: String,
    password: String,
}

pub(super) async fn submit(
    State(app): State<AppState>,
    Extension(v): Extension<Visitor>,
    Form(f): Form<LoginForm>,
) -> Response {
    let sso = app.trusted_proxy.is_some();
    if sso || !app.users.verify(&f.user, &f.password) {
        tracing::warn!(sso, "local login refused");
        let msg = if sso {
            "local login is disabled: sign in through single sign-on"
        } else {
            "wrong user name or password"
        };
        return html_status(
            &v,
            StatusCode::UNAUTHORIZED,
            "Log in",
            &render::login(&v.csrf, Some(msg), sso),
        );
    }
    // A new session id at login (no fixation).
    app.sessions.remove(&v.session);
    let (id, _) = app.sessions.create(Some(f.user.clone()));
    tracing::info!(user = %f.user, "local login");
    (
        [(SET_COOKIE, app.sessions.cookie(&id))],
        Redirect::to("/clusters"),
    )
        .into_response()
}

pub(super) async fn logout(
    State(app): State<AppState>,
    Extension(v): Extension<Visitor>,
) -> Response {
    app.sessions.remove(&v.session);
    (
        [(SET_COOKIE, app.sessions.clear_cookie())],
        Redirect::to("/login"),
    )
        .into_response()
}
