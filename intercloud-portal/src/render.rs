//! Every page's body, rendered from plain data. Pure functions; handlers wrap the
//! result in [`crate::html::page`].

use std::fmt::Write as _;

use intercloud_core::config::FederationConfig;
use intercloud_core::deploy::{ClusterStatus, Event, EventKind};
use intercloud_core::planner::Placement;
use intercloud_core::{Middleware, PlacementCounts};

use crate::form::{RequestForm, FABRICS, GROUP_ROWS, PROFILES};
use crate::html::{csrf_field, escape as e};

/// The login form; `sso` replaces it with a pointer to the institution's sign-on.
pub fn login(csrf: &str, error: Option<&str>, sso: bool) -> String {
    if sso {
        return "<p>This portal signs you in through your institution's single sign-on. \
                Open it through the SSO proxy.</p>"
            .into();
    }
    let err = error
        .map(|m| format!(r#"<p class="err" id="error">{}</p>"#, e(m)))
        .unwrap_or_default();
    format!(
        r#"{err}<form method="post" action="/login">{}
<p><label>User <input name="user" id="login-user" autocomplete="username" required></label></p>
<p><label>Password <input type="password" name="password" id="login-password" autocomplete="current-password" required></label></p>
<p><button id="login-submit">Log in</button></p></form>"#,
        csrf_field(csrf)
    )
}

/// One site on the keys page.
#[derive(Debug, Clone)]
pub struct KeyRow {
    /// Site id.
    pub site: String,
    /// Its middleware.
    pub middleware: Middleware,
    /// The registered keys' public identity (never the secret), if any.
    pub identity: Option<String>,
}

fn key_labels(m: Middleware) -> (&'static str, &'static str, bool) {
    match m {
        Middleware::CloudStack => ("API key", "Secret key", false),
        Middleware::OpenNebula => ("User", "Password or token", false),
        _ => ("Access key ID", "Secret access key", true),
    }
}

/// The keys page: per site, what is registered, a form to (re)register, test and
/// remove. Secrets are write-only: no form is ever pre-filled with one.
pub fn credentials(csrf: &str, rows: &[KeyRow], message: Option<(bool, &str)>) -> String {
    let mut out = String::new();
    if let Some((ok, m)) = message {
        let _ = write!(
            out,
            r#"<p class="{}" id="message">{}</p>"#,
            if ok { "ok" } else { "err" },
            e(m)
        );
    }
    out.push_str("<p>Keys are stored encrypted in the vault, for you only. Secrets are never shown again.</p>");
    for r in rows {
        let (id_label, secret_label, token) = key_labels(r.middleware);
        let site = e(&r.site);
        let _ = write!(
            out,
            r#"<fieldset id="site-{site}"><legend>{site} ({mw})</legend><p>Registered: <span id="identity-{site}">{reg}</span></p>
<form method="post" action="/credentials/{site}">{csrf}
<label>{id_label} <input name="identity" id="identity-input-{site}" autocomplete="off" required></label>
<label>{secret_label} <input type="password" name="secret" id="secret-input-{site}" autocomplete="new-password" required></label>
{tok}<button id="save-{site}">Save</button></form>"#,
            mw = r.middleware,
            reg = r
                .identity
                .as_deref()
                .map(e)
                .unwrap_or_else(|| "none".into()),
            csrf = csrf_field(csrf),
            tok = if token {
                r#"<label>Session token (optional) <input type="password" name="token" autocomplete="off"></label>"#
            } else {
                ""
            },
        );
        if r.identity.is_some() {
            let _ = write!(
                out,
                r#"<form class="inline" method="post" action="/credentials/{site}/test">{c}<button id="test-{site}">Test connection</button></form>
<form class="inline" method="post" action="/credentials/{site}/delete">{c}<button id="delete-{site}">Remove</button></form>"#,
                c = csrf_field(csrf)
            );
        }
        out.push_str("</fieldset>");
    }
    out
}

/// The request form, pre-filled with `form`.
pub fn request(
    csrf: &str,
    fed: &FederationConfig,
    form: &RequestForm,
    error: Option<&str>,
) -> String {
    let mut out = String::new();
    if let Some(m) = error {
        let _ = write!(out, r#"<p class="err" id="error">{}</p>"#, e(m));
    }
    let _ = write!(
        out,
        r#"<form method="post" action="/request">{}
<p><label>Name <input name="name" id="name" value="{}" required></label>
<label>Profile <select name="profile">"#,
        csrf_field(csrf),
        e(&form.name)
    );
    for p in PROFILES {
        let sel = if p == form.profile { " selected" } else { "" };
        let _ = write!(out, r#"<option{sel}>{p}</option>"#);
    }
    let _ = write!(
        out,
        r#"</select></label>
<label>VPN bandwidth (Mbit/s) <input name="vpn_mbps" value="{}"></label>
<label>At least <input name="min_sites" value="{}" size="2"> sites</label></p>
{}
<table><tr><th>Role</th><th>Count</th><th>Level</th><th>Sites (none ticked: any)</th></tr>"#,
        form.vpn_mbps,
        form.min_sites,
        fabric_select(form)
    );
    let levels: std::collections::BTreeSet<String> = fed
        .sites
        .iter()
        .flat_map(|s| s.levels.keys().map(|l| l.as_str().to_owned()))
        .collect();
    for i in 0..GROUP_ROWS {
        let g = form.groups.get(i);
        let _ = write!(
            out,
            r#"<tr><td><input name="g{i}_role" value="{}" size="10"></td><td><input name="g{i}_count" value="{}" size="4"></td><td><select name="g{i}_level">"#,
            e(g.map_or("", |g| g.role.as_str())),
            g.map_or(String::new(), |g| g.count.to_string()),
        );
        for l in &levels {
            let sel = if g.is_some_and(|g| &g.level == l) {
                " selected"
            } else {
                ""
            };
            let _ = write!(out, r#"<option{sel}>{}</option>"#, e(l));
        }
        out.push_str("</select></td><td>");
        for s in &fed.sites {
            let id = s.id.as_str();
            let checked = if g.is_some_and(|g| g.sites.iter().any(|x| x == id)) {
                " checked"
            } else {
                ""
            };
            let _ = write!(
                out,
                r#"<label><input type="checkbox" name="g{i}_site" value="{id}"{checked}>{id}</label> "#,
                id = e(id)
            );
        }
        out.push_str("</td></tr>");
    }
    out.push_str(r#"</table><p><button id="plan">Plan</button></p></form>"#);
    out
}

/// The VPN fabric choice: a select, and a list explaining each option.
fn fabric_select(form: &RequestForm) -> String {
    let mut out = String::from(
        r#"<p><label>VPN fabric <select name="fabric" id="fabric" aria-describedby="fabric-help">"#,
    );
    for (choice, value, label, _) in FABRICS {
        let sel = if choice == form.fabric {
            " selected"
        } else {
            ""
        };
        let _ = write!(out, r#"<option value="{value}"{sel}>{label}</option>"#);
    }
    out.push_str(r#"</select></label></p><ul class="help" id="fabric-help">"#);
    for (_, _, label, help) in FABRICS {
        let _ = write!(out, "<li><b>{label}</b>: {}</li>", e(help));
    }
    out.push_str("</ul>");
    out
}

fn counts_table(counts: &PlacementCounts) -> String {
    let mut out =
        String::from("<table class=\"placement\"><tr><th>Group</th><th>Site</th><th>VMs</th></tr>");
    for (g, sites) in counts {
        for (s, n) in sites.iter().filter(|(_, n)| **n > 0) {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{n}</td></tr>",
                e(g),
                e(s.as_str())
            );
        }
    }
    out.push_str("</table>");
    out
}

/// The planner's answer: the placement, its cost and method, the alternatives, and
/// the confirm form choosing one of them.
pub fn plan(csrf: &str, draft: &str, name: &str, p: &Placement) -> String {
    let mut out = format!(
        r#"<p>Cluster <b>{}</b>: the planner's placement ({}), {:.4} per hour, communication {:.2} s per job.</p>{}
<form method="post" action="/drafts/{}/confirm">{}
<p><label><input type="radio" name="choice" value="planner" checked> deploy the planner's placement</label></p>"#,
        e(name),
        e(&format!("{:?}", p.method).to_lowercase()),
        p.cost.money_per_hour,
        p.cost.communication_s,
        counts_table(&p.placement),
        e(draft),
        csrf_field(csrf),
    );
    if !p.alternatives.is_empty() {
        out.push_str("<h2>Alternatives</h2>");
    }
    for (i, a) in p.alternatives.iter().enumerate() {
        let _ = write!(
            out,
            r#"<div class="alt"><label><input type="radio" name="choice" value="alt{i}"> {} : {:.4} per hour, communication {:.2} s</label>{}</div>"#,
            e(&a.name),
            a.money_per_hour,
            a.communication_s,
            counts_table(&a.placement)
        );
    }
    out.push_str(r#"<p><button id="confirm">Confirm and deploy</button> <a href="/request">Change the request</a></p></form>"#);
    out
}

/// One cluster in the list.
#[derive(Debug, Clone)]
pub struct ClusterRow {
    /// Portal id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Phase label.
    pub phase: String,
    /// Nodes wanted.
    pub nodes: u32,
}

/// The user's clusters.
pub fn clusters(rows: &[ClusterRow]) -> String {
    if rows.is_empty() {
        return r#"<p>No cluster yet. <a href="/request">Request one</a>.</p>"#.into();
    }
    let mut out = String::from("<table><tr><th>Name</th><th>Nodes</th><th>State</th></tr>");
    for r in rows {
        let _ = write!(
            out,
            r#"<tr><td><a href="/clusters/{id}">{}</a></td><td>{}</td><td class="phase">{}</td></tr>"#,
            e(&r.name),
            r.nodes,
            e(&r.phase),
            id = e(&r.id)
        );
    }
    out.push_str("</table>");
    out
}

/// The cluster page: phase, nodes with overlay addresses, links, repair and destroy.
pub fn cluster(
    csrf: &str,
    id: &str,
    phase: &str,
    detail: Option<&str>,
    status: Result<&ClusterStatus, &str>,
) -> String {
    let id = e(id);
    let mut out = format!(
        r#"<p>State: <b id="phase">{}</b>{} · <a href="/clusters/{id}/progress">progress log</a></p>"#,
        e(phase),
        detail.map(|d| format!(" ({})", e(d))).unwrap_or_default()
    );
    match status {
        Ok(st) => {
            out.push_str("<table id=\"nodes\"><tr><th>Node</th><th>Role</th><th>Site</th><th>VM</th><th>State</th><th>Overlay address</th><th>Private address</th></tr>");
            for n in &st.nodes {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"state\">{}</td><td>{}</td><td>{}</td></tr>",
                    e(&n.name),
                    e(&n.role),
                    e(n.site.as_str()),
                    e(&n.vm_id.as_ref().map(|v| v.to_string()).unwrap_or_default()),
                    e(&n.state),
                    e(&n.overlay_ip),
                    e(n.private_ip.as_deref().unwrap_or(""))
                );
            }
            out.push_str("</table>");
            for l in &st.links {
                let _ = write!(
                    out,
                    "<p>VPN link {} ↔ {}: {}</p>",
                    e(l.between[0].as_str()),
                    e(l.between[1].as_str()),
                    e(&l.state)
                );
            }
            for (s, ss) in &st.sites {
                if let Some(err) = &ss.error {
                    let _ = write!(out, r#"<p class="err">{}: {}</p>"#, e(s.as_str()), e(err));
                }
            }
        }
        Err(m) => {
            let _ = write!(out, r#"<p class="err">status unavailable: {}</p>"#, e(m));
        }
    }
    if phase != "destroyed" {
        let _ = write!(
            out,
            r#"<form class="inline" method="post" action="/clusters/{id}/repair">{c}<button id="repair">Repair</button></form>
<form class="inline" method="post" action="/clusters/{id}/destroy">{c}<button id="destroy">Destroy</button></form>"#,
            c = csrf_field(csrf)
        );
    }
    out
}

/// The live progress page: the log so far, then lines streamed by server-sent events.
pub fn progress(id: &str, lines: &[String]) -> String {
    let id = e(id);
    let mut log = String::new();
    for l in lines {
        log.push_str(&e(l));
        log.push('\n');
    }
    format!(
        r#"<p>State: <b id="phase">…</b> · <a href="/clusters/{id}">cluster page</a></p>
<div id="progress" data-events="/clusters/{id}/events"><div id="log"></div></div>
<script src="/static/progress.js"></script>
<noscript><pre>{log}</pre></noscript>"#
    )
}

/// One event, for people.
pub fn describe_event(ev: &Event) -> String {
    let site = ev
        .site
        .as_ref()
        .map(|s| format!("[{s}] "))
        .unwrap_or_default();
    let group = ev
        .group
        .as_deref()
        .map(|g| format!("{g}: "))
        .unwrap_or_default();
    let what = match &ev.kind {
        EventKind::PlanStarted {
            nodes,
            sites,
            batches,
        } => {
            format!("deploying {nodes} nodes on {sites} sites in {batches} create calls")
        }
        EventKind::EndpointReady => "VPN endpoint ready".into(),
        EventKind::LinkRequested { peer } => format!("VPN link to {peer} requested"),
        EventKind::LinkUp { peer, .. } => format!("VPN link to {peer} up"),
        EventKind::VmRequested { count, .. } => format!("{count} VMs requested"),
        EventKind::VmRunning { node, vm_id } => format!("{node} running ({vm_id})"),
        EventKind::Retry {
            step,
            attempt,
            error,
        } => {
            format!("retrying {step} (attempt {attempt} failed: {error})")
        }
        EventKind::StepFailed { step, error } => format!("{step} failed: {error}"),
        EventKind::Replaced { node, from } => format!("{node} moved away from {from}"),
        EventKind::VmDeleted { vm_id } => format!("VM {vm_id} deleted"),
        EventKind::RolledBack { deleted } => format!("rolled back: {deleted} VMs deleted"),
        EventKind::Repaired { node } => format!("{node} repaired"),
        EventKind::Finished {
            result,
            running,
            wanted,
        } => {
            format!(
                "finished: {} ({running}/{wanted} nodes running)",
                result.as_cli_str()
            )
        }
        other => format!("{other:?}"),
    };
    format!("{:>7.1}s {site}{group}{what}", ev.elapsed.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn events_read_as_sentences() {
        let ev = Event {
            elapsed: Duration::from_millis(1500),
            site: Some("nii".into()),
            group: Some("large".into()),
            kind: EventKind::VmRunning {
                node: "large-1".into(),
                vm_id: intercloud_core::VmId::new("vm-7"),
            },
        };
        assert_eq!(
            describe_event(&ev),
            "    1.5s [nii] large: large-1 running (vm-7)"
        );
    }

    #[test]
    fn key_forms_are_never_prefilled() {
        let rows = [KeyRow {
            site: "hokkaido".into(),
            middleware: Middleware::CloudStack,
            identity: Some("api-h…".into()),
        }];
        let html = credentials("t", &rows, None);
        assert!(html.contains("test-hokkaido") && html.contains("API key"));
        assert!(!html.contains("value=\"api"), "{html}");
    }
}
