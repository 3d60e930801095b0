//! The tracing wrapper: one span per call with site, method and resource, one outcome
//! event, and nothing secret.

mod wrap_support;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use intercloud_core::wrap::{stack, SitePolicy, Traced};
use intercloud_core::{
    CloudProvider, ErrorKind, FaultTiming, MemoryProvider, Method, UserData, VmFilter, VmId,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use wrap_support::{spec, Probe};

/// One captured span or event: its name (or message), level, and fields as text.
#[derive(Debug, Clone)]
struct Seen {
    name: String,
    level: Level,
    fields: Vec<(String, String)>,
    /// The id of the span it belongs to (events) or its own id (spans).
    span: Option<u64>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

/// A minimal subscriber that keeps spans and events in memory.
#[derive(Default)]
struct Capture {
    spans: Mutex<Vec<Seen>>,
    events: Mutex<Vec<Seen>>,
    next: AtomicU64,
    current: Mutex<Vec<u64>>,
}

#[derive(Clone)]
struct Shared(Arc<Capture>);

impl Subscriber for Shared {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.0.next.fetch_add(1, Ordering::SeqCst) + 1;
        let mut f = Fields(Vec::new());
        attrs.record(&mut f);
        self.0.spans.lock().unwrap().push(Seen {
            name: attrs.metadata().name().to_owned(),
            level: *attrs.metadata().level(),
            fields: f.0,
            span: Some(id),
        });
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut f = Fields(Vec::new());
        event.record(&mut f);
        let name =
            f.0.iter()
                .find(|(k, _)| k == "message")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
        self.0.events.lock().unwrap().push(Seen {
            name,
            level: *event.metadata().level(),
            fields: f.0,
            span: self.0.current.lock().unwrap().last().copied(),
        });
    }
    fn enter(&self, span: &Id) {
        self.0.current.lock().unwrap().push(span.into_u64());
    }
    fn exit(&self, _: &Id) {
        self.0.current.lock().unwrap().pop();
    }
}

fn capture() -> (Arc<Capture>, tracing::subscriber::DefaultGuard) {
    let cap = Arc::new(Capture::default());
    let guard = tracing::subscriber::set_default(Shared(cap.clone()));
    (cap, guard)
}

#[tokio::test(start_paused = true)]
async fn every_call_gets_a_span_and_an_outcome_event() {
    let (cap, _guard) = capture();
    let probe = Probe::new("hokkaido")
        .delay(Duration::from_millis(40))
        .script(&[ErrorKind::QuotaExceeded]);
    let traced = Traced::new(probe);
    let err = traced.create_vms(&spec("key-7"), 2).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    traced.delete_vm(&VmId::new("i-9")).await.unwrap();
    traced.list_vms(&VmFilter::default()).await.unwrap();
    traced.offerings().await.unwrap();
    traced.capacity().await.unwrap();

    let spans = cap.spans.lock().unwrap().clone();
    let events = cap.events.lock().unwrap().clone();
    let methods: Vec<&str> = spans.iter().filter_map(|s| s.field("method")).collect();
    assert_eq!(
        methods,
        vec![
            "create_vms",
            "delete_vm",
            "list_vms",
            "offerings",
            "capacity"
        ]
    );
    assert!(spans
        .iter()
        .all(|s| s.name == "provider_call" && s.field("site") == Some("hokkaido")));
    assert_eq!(spans[0].field("resource"), Some("key-7"));
    assert_eq!(spans[1].field("resource"), Some("i-9"));

    // One event per call, inside that call's span.
    assert_eq!(events.len(), 5);
    for (span, event) in spans.iter().zip(&events) {
        assert_eq!(event.span, span.span);
        assert_eq!(event.field("elapsed_ms"), Some("40"));
    }
    assert_eq!(events[0].name, "failed");
    assert_eq!(events[0].level, Level::WARN);
    assert_eq!(events[0].field("kind"), Some("quota_exceeded"));
    assert!(events[1..]
        .iter()
        .all(|e| e.name == "ok" && e.level == Level::DEBUG));
}

#[tokio::test(start_paused = true)]
async fn temporary_failures_log_at_debug_and_retries_nest_in_the_call_span() {
    let (cap, _guard) = capture();
    let mem = Arc::new(MemoryProvider::new("nii"));
    mem.fail_next(Method::List, ErrorKind::Unavailable, FaultTiming::Before);
    let traced = Traced::new(
        stack(mem.clone(), &SitePolicy::default())
            .unwrap()
            .with_seed(4),
    );
    traced.list_vms(&VmFilter::default()).await.unwrap();

    let spans = cap.spans.lock().unwrap().clone();
    let events = cap.events.lock().unwrap().clone();
    assert_eq!(spans.len(), 1, "one span per logical call");
    let retrying: Vec<&Seen> = events.iter().filter(|e| e.name == "retrying").collect();
    assert_eq!(retrying.len(), 1);
    assert_eq!(retrying[0].span, spans[0].span);
    assert_eq!(retrying[0].field("attempt"), Some("1"));
    assert!(retrying[0]
        .field("error")
        .unwrap()
        .contains("injected fault"));
    assert_eq!(events.last().unwrap().name, "ok");

    // Without the stack the temporary failure itself is logged at DEBUG.
    let traced = Traced::new(mem.clone());
    mem.fail_next(Method::List, ErrorKind::Unavailable, FaultTiming::Before);
    let _ = traced.list_vms(&VmFilter::default()).await;
    let last = cap.events.lock().unwrap().last().cloned().unwrap();
    assert_eq!((last.name.as_str(), last.level), ("failed", Level::DEBUG));
    assert_eq!(last.field("temporary"), Some("true"));
}

#[tokio::test(start_paused = true)]
async fn user_data_never_reaches_the_logs() {
    let (cap, _guard) = capture();
    let traced = Traced::new(MemoryProvider::new("s"));
    let mut s = spec("ud-1");
    s.user_data = Some(UserData("PrivateKey = c2VjcmV0LXdpcmVndWFyZC1rZXk=".into()));
    traced.create_vms(&s, 1).await.unwrap();
    let all = format!(
        "{:?}{:?}",
        cap.spans.lock().unwrap(),
        cap.events.lock().unwrap()
    );
    assert!(all.contains("ud-1"));
    assert!(!all.contains("c2VjcmV0"), "{all}");
    assert!(!all.contains("PrivateKey"), "{all}");
}

#[tokio::test(start_paused = true)]
async fn works_over_arc_dyn() {
    let p: Arc<dyn CloudProvider> = Arc::new(MemoryProvider::new("dyn"));
    let traced: Arc<dyn CloudProvider> = Arc::new(Traced::new(p));
    assert_eq!(traced.site().as_str(), "dyn");
    assert!(traced.capabilities().idempotent_create);
    assert_eq!(traced.create_vms(&spec("t"), 2).await.unwrap().len(), 2);
}
