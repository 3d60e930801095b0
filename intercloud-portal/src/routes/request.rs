//! `/request` (the form, then the planner's placement and alternatives) and
//! `/drafts/{id}/confirm` (deploy the chosen placement).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use intercloud_core::planner::Objective;
use serde::Deserialize;

use super::{html, html_status, not_found, signed_in};
use crate::auth::Visitor;
use crate::clusters::launch;
use crate::form::{valid_name, RequestForm};
use crate::session::random_token;
use crate::{render, AppState, Draft, MAX_DRAFTS_PER_USER};

pub(super) async fn form(
    State(app): State<AppState>,
    Extension(v): Extension<Visitor>,
) -> Response {
    if let Err(r) = signed_in(&v) {
        return r;
    }
    let fed = app.backend.federation();
    let f = RequestForm::seed_example(fed);
    html(&v, "New cluster", &render::request(&v.csrf, fed, &f, None))
}

pub(super) async fn plan(
    State(app): State<AppState>,
    Extension(v): Extension<Visitor>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let user = match signed_in(&v) {
        Ok(u) => u.to_owned(),
        Err(r) => return r,
    };
    let fed = app.backend.federation();
    let bad = |form: &RequestForm, msg: &str| {
        html_status(
            &v,
            StatusCode::BAD_REQUEST,
            "New cluster",
            &render::request(&v.csrf, fed, form, Some(msg)),
        )
    };
    let form = match RequestForm::from_pairs(&pairs) {
        Ok(f) => f,
        Err(m) => return bad(&RequestForm::seed_example(fed), &m),
    };
    if !valid_name(&form.name) {
        return bad(
            &form,
            "the name must be 1-25 letters, digits or '-', starting with a letter",
        );
    }
    let tag = format!("{}-{}", form.name, &random_token()[..6]);
    let request = match form.to_request(&tag, fed) {
        Ok(r) => r,
        Err(m) => return bad(&form, &m),
    };
    let placement = match app
        .planner
        .plan(&fed.topology(), &request, &Objective::default())
    {
        Ok(p) => p,
        Err(e) => {
            return bad(
                &form,
                &format!("the planner cannot place this cluster: {e}"),
            )
        }
    };
    let id = random_token();
    let body = render::plan(&v.csrf, &id, &form.name, &placement);
    let mut drafts = app.drafts.lock().unwrap_or_else(|p| p.into_inner());
    let mut mine: Vec<(std::time::Instant, String)> = drafts
        .iter()
        .filter(|(_, d)| d.owner == user)
        .map(|(k, d)| (d.created, k.clone()))
        .collect();
    mine.sort();
    let excess = (mine.len() + 1).saturating_sub(MAX_DRAFTS_PER_USER);
    for (_, k) in mine.into_iter().take(excess) {
        drafts.remove(&k);
    }
    drafts.insert(
        id,
        Draft {
            owner: user,
            name: form.name,
            request,
            placement,
            created: std::time::Instant::now(),
        },
    );
    drop(drafts);
    html(&v, "Placement", &body)
}

#[derive(Deserialize)]
pub(super) struct ConfirmForm {
    choice: String,
}

pub(super) async fn confirm(
    State(app): State<AppState>,
    Extension(v): Extension<Visitor>,
    Path(id): Path<String>,
    Form(f): Form<ConfirmForm>,
) -> Response {
    let user = match signed_in(&v) {
        Ok(u) => u.to_owned(),
        Err(r) => return r,
    };
    let draft = {
        let mut drafts = app.drafts.lock().unwrap_or_else(|p| p.into_inner());
        match drafts.get(&id) {
            Some(d) if d.owner == user => drafts.remove(&id),
            _ => None,
        }
    };
    let Some(draft) = draft else {
        return not_found(&v);
    };
    let counts = match f
        .choice
        .strip_prefix("alt")
        .and_then(|i| i.parse::<usize>().ok())
    {
        Some(i) => match draft.placement.alternatives.get(i) {
            Some(a) => a.placement.clone(),
            None => return not_found(&v),
        },
        None => draft.placement.placement.clone(),
    };
    match launch(
        &app,
        &user,
        &draft.name,
        &draft.request,
        &counts,
        app.deploy.clone(),
    )
    .await
    {
        Ok(rec) => Redirect::to(&format!("/clusters/{}/progress", rec.id)).into_response(),
        Err(m) => html_status(
            &v,
            StatusCode::BAD_REQUEST,
            "Cannot deploy",
            &format!(
                r#"<p class="err" id="error">{}</p><p><a href="/request">Back to the request</a></p>"#,
                crate::html::escape(&m)
            ),
        ),
    }
}
