//! `/credentials`: register, test and remove a user's keys per site.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use intercloud_core::{Credentials, Middleware, SiteId};
use serde::Deserialize;

use super::{html_status, not_found, signed_in};
use crate::auth::Visitor;
use crate::render::{self, KeyRow};
use crate::AppState;

/// A submitted secret: its `Debug` never shows the value.
#[derive(Deserialize, Default)]
#[serde(transparent)]
pub(super) struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("******")
    }
}

async fn rows(app: &AppState, user: &str) -> Result<Vec<KeyRow>, String> {
    let mut out = Vec::new();
    for s in &app.backend.federation().sites {
        let identity = app
            .vault
            .get(user, &s.id)
            .await
            .map_err(|e| e.to_string())?
            .map(|c| c.identity());
        out.push(KeyRow {
            site: s.id.to_string(),
            middleware: s.middleware,
            identity,
        });
    }
    Ok(out)
}

async fn page(app: &AppState, v: &Visitor, user: &str, msg: Option<(bool, &str)>) -> Response {
    match rows(app, user).await {
        Ok(r) => {
            let status = match msg {
                Some((false, _)) => StatusCode::BAD_REQUEST,
                _ => StatusCode::OK,
            };
            html_status(
                v,
                status,
                "Cloud keys",
                &render::credentials(&v.csrf, &r, msg),
            )
        }
        Err(e) => html_status(
            v,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Cloud keys",
            &format!(
                "<p class=\"err\">the vault cannot be read: {}</p>",
                crate::html::escape(&e)
            ),
        ),
    }
}

pub(super) async fn list(
    State(app): State<AppState>,
    Extension(v): Extension<Visitor>,
) -> Response {
    let user = match signed_in(&v) {
        Ok(u) => u.to_owned(),
        Err(r) => return r,
    };
    page(&app, &v, &user, None).await
}

#[derive(Deserialize, Debug)]
pub(super) struct KeyForm {
    identity: String,
    secret: Secret,
    #[serde(default)]
    token: Secret,
}

fn site_of(app: &AppState, site: &str) -> Option<(SiteId, Middleware)> {
    app.backend
        .federation()
        .sites
        .iter()
        .find(|s| s.id.as_str() == site)
        .map(|s| (s.id.clone(), s.middleware))
}

pub(super) async fn save(
    State(app): State<AppState>,
    Extension(v): Extension<Visitor>,
    Path(site): Path<String>,
    Form(f): Form<KeyForm>,
) -> Response {
    let user = match signed_in(&v) {
        Ok(u) => u.to_owned(),
        Err(r) => return r,
    };
    let Some((site, mw)) = site_of(&app, &site) else {
        return not_found(&v);
    };
    let identity = f.identity.trim();
    if identity.is_empty() || f.secret.0.is_empty() {
        return page(&app, &v, &user, Some((false, "both fields are required"))).await;
    }
    let creds = match mw {
        Middleware::CloudStack => Credentials::cloudstack(identity, f.secret.0),
        Middleware::OpenNebula => Credentials::opennebula(identity, f.secret.0),
        _ => {
            let token = Some(f.token.0).filter(|t| !t.is_empty());
            Credentials::ec2(identity, f.secret.0, token)
        }
    };
    if let Err(e) = app.vault.put(&user, &site, creds).await {
        let msg = format!("could not store the keys: {e}");
        return page(&app, &v, &user, Some((false, &msg))).await;
    }
    tracing::info!(user = %user, site = %site, "keys registered");
    let msg = format!("keys for {site} saved");
    page(&app, &v, &user, Some((true, &msg))).await
}

pub(super) async fn test(
    State(app): State<AppState>,
    Extension(v): Extension<Visitor>,
    Path(site): Path<String>,
) -> Response {
    let user = match signed_in(&v) {
        Ok(u) => u.to_owned(),
        Err(r) => return r,
    };
    let Some((site, _)) = site_of(&app, &site) else {
        return not_found(&v);
    };
    let creds = match app.vault.get(&user, &site).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            let msg = format!("no keys registered for {site}");
            return page(&app, &v, &user, Some((false, &msg))).await;
        }
        Err(e) => return page(&app, &v, &user, Some((false, &e.to_string()))).await,
    };
    let outcome = match app.backend.connect(&site, &creds) {
        Ok(p) => p.offerings().await.map(|o| o.len()),
        Err(e) => Err(e),
    };
    tracing::info!(user = %user, site = %site, ok = outcome.is_ok(), "connection test");
    let msg = match &outcome {
        Ok(used) => {
            format!("{site}: connection OK, the keys are accepted ({used} offerings listed)")
        }
        Err(e) => format!("{site}: connection failed: {e}"),
    };
    page(&app, &v, &user, Some((outcome.is_ok(), &msg))).await
}

pub(super) async fn remove(
    State(app): State<AppState>,
    Extension(v): Extension<Visitor>,
    Path(site): Path<String>,
) -> Response {
    let user = match signed_in(&v) {
        Ok(u) => u.to_owned(),
        Err(r) => return r,
    };
    let Some((site, _)) = site_of(&app, &site) else {
        return not_found(&v);
    };
    match app.vault.remove(&user, &site).await {
        Ok(_) => {
            tracing::info!(user = %user, site = %site, "keys removed");
            let msg = format!("keys for {site} removed");
            page(&app, &v, &user, Some((true, &msg))).await
        }
        Err(e) => page(&app, &v, &user, Some((false, &e.to_string()))).await,
    }
}
