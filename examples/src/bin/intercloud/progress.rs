//! Live progress from the deployer's events: one bar per site (indicatif), counting
//! pending, running and failed nodes and retries. Hidden when stderr is not a terminal
//! or `--json` is given.
//!
//! When stderr is not a terminal (a log, a CI job, a pipe) the bars are replaced by a
//! **heartbeat**: every [`HEARTBEAT`] one line per site on stderr — its counts, whether
//! it answers, and how long since its last event — so a long or stuck `up` is never
//! silent. Sites found unreachable, and the VMs that may still run there, are named
//! on stderr at the end either way.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use intercloud_core::deploy::{Event, EventKind};
use intercloud_core::SiteId;

/// How often the heartbeat prints its lines.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Site {
    wanted: u64,
    requested: u64,
    running: u64,
    failed: u64,
    retries: u64,
    /// The last retry's error, until the site answers well again.
    trouble: Option<String>,
    /// Set while the site is declared unreachable.
    unreachable: Option<String>,
    last_event: Instant,
    left: usize,
}

impl Site {
    fn new(wanted: u64) -> Self {
        Self {
            wanted,
            requested: 0,
            running: 0,
            failed: 0,
            retries: 0,
            trouble: None,
            unreachable: None,
            last_event: Instant::now(),
            left: 0,
        }
    }

    fn pending(&self) -> u64 {
        self.requested.saturating_sub(self.running + self.failed)
    }

    fn apply(&mut self, kind: &EventKind) {
        self.last_event = Instant::now();
        match kind {
            EventKind::VmRequested { count, .. } => self.requested += u64::from(*count),
            EventKind::VmRunning { .. } | EventKind::Repaired { .. } => {
                self.running += 1;
                self.trouble = None;
            }
            EventKind::Retry { error, .. } => {
                self.retries += 1;
                self.trouble = Some(error.to_string());
            }
            EventKind::StepFailed { .. } => self.failed += 1,
            EventKind::SiteUnreachable { error } => self.unreachable = Some(error.to_string()),
            EventKind::SiteAnswers => {
                self.unreachable = None;
                self.trouble = None;
            }
            EventKind::Leftovers { vms } => self.left = *vms,
            _ => {}
        }
    }

    /// The heartbeat line's words after the site name.
    fn line(&self, now: Instant) -> String {
        let mut s = format!(
            "{}/{} running, {} pending, {} failed, {} retries; ",
            self.running,
            self.wanted.max(self.requested),
            self.pending(),
            self.failed,
            self.retries
        );
        match (&self.unreachable, &self.trouble) {
            (Some(e), _) => {
                let _ = write!(s, "UNREACHABLE ({e})");
            }
            (None, Some(e)) => {
                let _ = write!(s, "retrying ({e})");
            }
            (None, None) => s.push_str("no error reported"),
        }
        let _ = write!(
            s,
            "; last event {} s ago",
            now.saturating_duration_since(self.last_event).as_secs()
        );
        s
    }
}

/// Draws events until the channel closes; returns every failed step as
/// `site S: STEP: ERROR` (or `STEP: ERROR` when it concerns no site), in order, so
/// that a failed pass whose nodes name no error can still say why.
///
/// `visible` draws the bars (no `--json`); the heartbeat runs whenever stderr is not
/// a terminal.
pub(crate) async fn draw(
    rx: UnboundedReceiver<Event>,
    wanted: BTreeMap<SiteId, u64>,
    visible: bool,
) -> Vec<String> {
    let heartbeat = !std::io::stderr().is_terminal();
    let mut stderr = |line: String| eprintln!("{line}");
    draw_with(
        rx,
        wanted,
        visible && !heartbeat,
        heartbeat.then_some(HEARTBEAT),
        &mut stderr,
    )
    .await
}

/// [`draw`], writing heartbeat and summary lines to `say`.
async fn draw_with(
    mut rx: UnboundedReceiver<Event>,
    wanted: BTreeMap<SiteId, u64>,
    bars_visible: bool,
    heartbeat: Option<Duration>,
    say: &mut (dyn FnMut(String) + Send),
) -> Vec<String> {
    let multi = MultiProgress::with_draw_target(if bars_visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let style = ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let new_bar = |site: &SiteId, n: u64| {
        let bar = multi.add(ProgressBar::new(n));
        bar.set_style(style.clone());
        bar.set_prefix(site.to_string());
        bar
    };
    let mut sites: BTreeMap<SiteId, (ProgressBar, Site)> = wanted
        .iter()
        .map(|(s, n)| (s.clone(), (new_bar(s, *n), Site::new(*n))))
        .collect();
    let started = Instant::now();
    let mut ticker = heartbeat.map(|every| tokio::time::interval_at(started + every, every));
    let mut failures: Vec<String> = Vec::new();
    loop {
        let ev = match ticker.as_mut() {
            Some(t) => tokio::select! {
                ev = rx.recv() => ev,
                _ = t.tick() => {
                    let now = Instant::now();
                    let secs = now.saturating_duration_since(started).as_secs();
                    for (site, (_, s)) in &sites {
                        say(format!("heartbeat {secs:>4} s  {site}: {}", s.line(now)));
                    }
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some(ev) = ev else { break };
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
        let (bar, s) = sites
            .entry(site.clone())
            .or_insert_with(|| (new_bar(&site, 0), Site::new(0)));
        s.apply(&ev.kind);
        match &ev.kind {
            EventKind::VmRunning { .. } | EventKind::Repaired { .. } => bar.inc(1),
            EventKind::LinkUp { peer, .. } => bar.println(format!("{site}: link to {peer} up")),
            EventKind::SiteUnreachable { error } if bars_visible => {
                bar.println(format!("{site}: unreachable: {error}"));
            }
            _ => {}
        }
        bar.set_message(format!(
            "pending {} running {} failed {} retries {}",
            s.pending(),
            s.running,
            s.failed,
            s.retries
        ));
    }
    for (site, (bar, s)) in &sites {
        bar.finish();
        if let Some(e) = &s.unreachable {
            say(format!("{site}: unreachable at the end: {e}"));
        }
        if s.left > 0 {
            let n = if s.left >= 1_000_000 {
                "an unknown number of".to_owned()
            } else {
                s.left.to_string()
            };
            say(format!(
                "{site}: {n} VMs of this cluster may still run there unverified; they are \
                 deleted as soon as the site answers (`intercloud repair`, `resume` or `down`)"
            ));
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event's error with `text` as its whole message.
    fn info(text: &str) -> intercloud_core::ErrorInfo {
        intercloud_core::ErrorInfo::new(intercloud_core::ErrorKind::Unauthenticated, text)
    }

    fn ev(site: &str, kind: EventKind) -> Event {
        Event {
            elapsed: Duration::ZERO,
            site: Some(SiteId::new(site)),
            group: None,
            kind,
        }
    }

    #[test]
    fn a_line_says_whether_the_site_answers() {
        let mut s = Site::new(3);
        let now = Instant::now();
        assert!(s
            .line(now)
            .ends_with("no error reported; last event 0 s ago"));
        s.apply(&EventKind::Retry {
            step: "list".into(),
            attempt: 1,
            error: info("site b: refused"),
        });
        assert!(s.line(now).contains("retrying (site b: refused)"));
        s.apply(&EventKind::SiteUnreachable {
            error: info("site b: no answer within 60 s"),
        });
        assert!(s
            .line(now)
            .contains("UNREACHABLE (site b: no answer within 60 s)"));
        s.apply(&EventKind::SiteAnswers);
        assert!(s.line(now).contains("no error reported"));
    }

    #[tokio::test]
    async fn the_heartbeat_ticks_while_events_flow_and_ends_with_the_channel() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let wanted = [(SiteId::new("a"), 2)].into_iter().collect();
        let every = Duration::from_millis(100);
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        let task = tokio::spawn(async move {
            let mut say = move |l: String| sink.lock().unwrap().push(l);
            draw_with(rx, wanted, false, Some(every), &mut say).await
        });
        tx.send(ev(
            "a",
            EventKind::VmRequested {
                key: "k".into(),
                count: 2,
            },
        ))
        .unwrap();
        tokio::time::sleep(every * 5 / 2).await;
        tx.send(ev(
            "b",
            EventKind::SiteUnreachable {
                error: info("site b: refused"),
            },
        ))
        .unwrap();
        tx.send(ev("b", EventKind::Leftovers { vms: 3 })).unwrap();
        tx.send(ev(
            "b",
            EventKind::StepFailed {
                step: "create".into(),
                error: info("refused"),
            },
        ))
        .unwrap();
        tokio::time::sleep(every * 5 / 2).await;
        drop(tx);
        assert_eq!(task.await.unwrap(), ["site b: create: refused"]);
        let lines = lines.lock().unwrap().clone();
        let a: Vec<_> = lines.iter().filter(|l| l.contains(" a: ")).collect();
        // Every 100 ms for about 500 ms, one line per site each time.
        assert!(a.len() >= 3, "{lines:#?}");
        assert!(
            a[0].starts_with("heartbeat    0 s  a: 0/2 running, 2 pending, 0 failed"),
            "{}",
            a[0]
        );
        assert!(lines
            .iter()
            .any(|l| l.starts_with("heartbeat    0 s  b: ") && l.contains("UNREACHABLE")));
        assert!(lines.iter().any(|l| l.starts_with("b: 3 VMs")));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("b: unreachable at the end")));
    }
}
