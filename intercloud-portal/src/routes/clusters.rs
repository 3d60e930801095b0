//! `/clusters`: the list, a cluster's page, its live progress (server-sent events),
//! repair and destroy. Another user's cluster answers 404.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use futures::stream::{self, StreamExt};

use super::{html, not_found, signed_in};
use crate::auth::Visitor;
use crate::clusters::{start_destroy, start_repair, ClusterRecord, Phase};
use crate::render::{self, ClusterRow};
use crate::AppState;

/// How often the event stream looks for new log lines.
const STREAM_TICK: Duration = Duration::from_millis(150);

fn owned(app: &AppState, v: &Visitor, id: &str) -> Result<Arc<ClusterRecord>, Response> {
    let user = signed_in(v)?;
    app.clusters.owned(id, user).ok_or_else(|| {
        tracing::warn!(user, "cluster not found or not the user's");
        not_found(v)
    })
}

pub(super) async fn list(
    State(app): State<AppState>,
    Extension(v): Extension<Visitor>,
) -> Response {
    let user = match signed_in(&v) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let rows: Vec<ClusterRow> = app
        .clusters
        .of(user)
        .iter()
        .map(|c| ClusterRow {
            id: c.id.clone(),
            name: c.name.clone(),
            phase: c.phase().label().to_owned(),
            nodes: c.placement.values().flat_map(|s| s.values()).sum(),
        })
        .collect();
    html(&v, "Your clusters", &render::clusters(&rows))
}

pub(super) async fn show(
    State(app): State<AppState>,
    Extension(v): Extension<Visitor>,
    Path(id): Path<String>,
) -> Response {
    let rec = match owned(&app, &v, &id) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let phase = rec.phase();
    let detail = match &phase {
        Phase::Failed(m) => Some(m.clone()),
        _ => None,
    };
    let status = rec.status().await.map_err(|e| e.to_string());
    let body = render::cluster(
        &v.csrf,
        &rec.id,
        phase.label(),
        detail.as_deref(),
        status.as_ref().map_err(String::as_str),
    );
    html(&v, &format!("Cluster {}", rec.name), &body)
}

pub(super) async fn progress(
    State(app): State<AppState>,
    Extension(v): Extension<Visitor>,
    Path(id): Path<String>,
) -> Response {
    let rec = match owned(&app, &v, &id) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let (lines, _) = rec.log_since(0);
    let lines: Vec<String> = lines.into_iter().map(|l| l.text).collect();
    html(
        &v,
        &format!("Progress of {}", rec.name),
        &render::progress(&rec.id, &lines),
    )
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// The log so far, then each new line, as `message` events; a `phase` event with
/// every batch; an `end` event (the final phase) when the work is done.
pub(super) async fn events(
    State(app): State<AppState>,
    Extension(v): Extension<Visitor>,
    Path(id): Path<String>,
) -> Response {
    let rec = match owned(&app, &v, &id) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let batches = stream::unfold((rec, 0usize, false), |(rec, seen, done)| async move {
        if done {
            return None;
        }
        loop {
            let (lines, busy) = rec.log_since(seen);
            if !lines.is_empty() {
                let next = seen + lines.len();
                let mut out: Vec<SseEvent> = lines
                    .iter()
                    .map(|l| SseEvent::default().data(one_line(&l.text)))
                    .collect();
                out.push(SseEvent::default().event("phase").data(rec.phase().label()));
                return Some((out, (rec, next, false)));
            }
            if !busy {
                let end = vec![SseEvent::default().event("end").data(rec.phase().label())];
                return Some((end, (rec, seen, true)));
            }
            tokio::time::sleep(STREAM_TICK).await;
        }
    });
    let events = batches.flat_map(|b| stream::iter(b.into_iter().map(Ok::<_, Infallible>)));
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

pub(super) async fn repair(
    State(app): State<AppState>,
    Extension(v): Extension<Visitor>,
    Path(id): Path<String>,
) -> Response {
    let rec = match owned(&app, &v, &id) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if !rec.phase().busy() && rec.phase() != Phase::Destroyed {
        start_repair(Arc::clone(&rec));
    }
    Redirect::to(&format!("/clusters/{}/progress", rec.id)).into_response()
}

pub(super) async fn destroy(
    State(app): State<AppState>,
    Extension(v): Extension<Visitor>,
    Path(id): Path<String>,
) -> Response {
    let rec = match owned(&app, &v, &id) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if !rec.phase().busy() {
        start_destroy(Arc::clone(&rec));
    }
    Redirect::to(&format!("/clusters/{}/progress", rec.id)).into_response()
}
