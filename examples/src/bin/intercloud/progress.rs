//! Live progress from the deployer's events: one bar per site (indicatif), counting
//! pending, running and failed nodes and retries. Hidden when stderr is not a terminal
//! or `--json` is given; a summary line per site is printed either way at the end.

use std::collections::BTreeMap;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;

use intercloud_core::deploy::{Event, EventKind};
use intercloud_core::SiteId;

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    requested: u64,
    running: u64,
    failed: u64,
    retries: u64,
}

/// Draws events until the channel closes; returns every failed step as
/// `site S: STEP: ERROR` (or `STEP: ERROR` when it concerns no site), in order, so
/// that a failed pass whose nodes name no error can still say why.
pub(crate) async fn draw(
    mut rx: UnboundedReceiver<Event>,
    wanted: BTreeMap<SiteId, u64>,
    visible: bool,
) -> Vec<String> {
    let multi = MultiProgress::with_draw_target(if visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let style = ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let mut bars: BTreeMap<SiteId, (ProgressBar, Counts)> = BTreeMap::new();
    for (site, n) in &wanted {
        let bar = multi.add(ProgressBar::new(*n));
        bar.set_style(style.clone());
        bar.set_prefix(site.to_string());
        bars.insert(site.clone(), (bar, Counts::default()));
    }
    let mut failures: Vec<String> = Vec::new();
    while let Some(ev) = rx.recv().await {
        if let EventKind::StepFailed { step, error } = &ev.kind {
            let text = match &ev.site {
                Some(site) => format!("site {site}: {step}: {error}"),
                None => format!("{step}: {error}"),
            };
            if !failures.contains(&text) {
                failures.push(text);
            }
        }
        let Some(site) = ev.site.clone() else {
            continue;
        };
        let (bar, c) = bars.entry(site.clone()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(0));
            bar.set_style(style.clone());
            bar.set_prefix(site.to_string());
            (bar, Counts::default())
        });
        match &ev.kind {
            EventKind::VmRequested { count, .. } => c.requested += u64::from(*count),
            EventKind::VmRunning { .. } | EventKind::Repaired { .. } => {
                c.running += 1;
                bar.inc(1);
            }
            EventKind::Retry { .. } => c.retries += 1,
            EventKind::StepFailed { .. } => c.failed += 1,
            EventKind::LinkUp { peer, .. } => bar.println(format!("{site}: link to {peer} up")),
            _ => {}
        }
        let pending = c.requested.saturating_sub(c.running + c.failed);
        bar.set_message(format!(
            "pending {pending} running {} failed {} retries {}",
            c.running, c.failed, c.retries
        ));
    }
    for (bar, _) in bars.values() {
        bar.finish();
    }
    failures
}
