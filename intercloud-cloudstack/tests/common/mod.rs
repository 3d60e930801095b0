//! A loopback CloudStack stand-in on wiremock: it verifies each request's signature
//! with the server's algorithm (anchored by the signing vectors) and replays recorded
//! bodies queued per command.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use intercloud_cloudstack::sign::{self, SignatureAlgorithm};
use intercloud_cloudstack::CloudStackBuilder;
use intercloud_core::Credentials;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const API_KEY: &str = "fnord";
pub const SECRET: &str = "abracadabra-S3CRET";

/// A recorded body from `tests/fixtures/`.
pub fn fixture(path: &str) -> String {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("fixture {full}: {e}"))
}

/// A cloudstack-go recording (`{api: body}`), as the wire body under `response_key`.
pub fn go_fixture(file: &str, api: &str, response_key: &str) -> String {
    let doc: serde_json::Value = serde_json::from_str(&fixture(file)).expect("go fixture");
    let body = &doc[api];
    // Files hold `{api: {"<cmd>response" or "<api>": payload}}`: unwrap the one key.
    let inner = match body.as_object() {
        Some(m) if m.len() == 1 => m.values().next().cloned().unwrap_or_default(),
        _ => body.clone(),
    };
    serde_json::json!({ response_key: inner }).to_string()
}

/// All parameters of a request, decoded, from the query or the form body.
pub fn params_of(req: &Request) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = req
        .url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if req.method.as_str() == "POST" {
        out.extend(
            url::form_urlencoded::parse(&req.body).map(|(k, v)| (k.into_owned(), v.into_owned())),
        );
    }
    out
}

pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The key a response is queued under: the command, plus the job id for
/// `queryAsyncJobResult`, plus `?keyword` / `?id` for `listVirtualMachines` lookups.
pub fn route(params: &[(String, String)]) -> String {
    let cmd = param(params, "command").unwrap_or("").to_owned();
    match cmd.as_str() {
        "queryAsyncJobResult" => format!("{cmd}/{}", param(params, "jobid").unwrap_or("")),
        "listVirtualMachines" if param(params, "keyword").is_some() => format!("{cmd}?keyword"),
        "listVirtualMachines" if param(params, "id").is_some() => format!("{cmd}?id"),
        _ => cmd,
    }
}

#[derive(Default)]
struct State {
    queues: HashMap<String, VecDeque<(u16, String, Duration)>>,
    calls: Vec<(String, Vec<(String, String)>)>,
}

/// The fake: queue answers with [`FakeCloud::on`]; the last answer of a route repeats.
#[derive(Clone, Default)]
pub struct FakeCloud {
    state: Arc<Mutex<State>>,
}

impl FakeCloud {
    pub fn on(&self, route: &str, status: u16, body: impl Into<String>) -> &Self {
        self.on_slow(route, Duration::ZERO, status, body)
    }

    /// Like [`FakeCloud::on`], answering only after `delay`.
    pub fn on_slow(
        &self,
        route: &str,
        delay: Duration,
        status: u16,
        body: impl Into<String>,
    ) -> &Self {
        self.state
            .lock()
            .unwrap()
            .queues
            .entry(route.to_owned())
            .or_default()
            .push_back((status, body.into(), delay));
        self
    }

    /// Replaces whatever was queued for `route`.
    pub fn only(&self, route: &str, status: u16, body: impl Into<String>) -> &Self {
        self.state.lock().unwrap().queues.remove(route);
        self.on(route, status, body)
    }

    /// The routes called, in order.
    pub fn calls(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// The decoded parameters of every call to `route`.
    pub fn params(&self, route: &str) -> Vec<BTreeMap<String, String>> {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|(r, _)| r == route)
            .map(|(_, p)| p.iter().cloned().collect())
            .collect()
    }

    pub async fn start(&self) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::path("/client/api"))
            .respond_with(self.clone())
            .mount(&server)
            .await;
        server
    }
}

impl Respond for FakeCloud {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let params = params_of(req);
        let sig = param(&params, "signature").unwrap_or("").to_owned();
        let expected = sign::signature(&params, SECRET.as_bytes(), SignatureAlgorithm::HmacSha1);
        if sig != expected {
            return ResponseTemplate::new(401).set_body_string(
                r#"{"errorresponse":{"uuidList":[],"errorcode":401,"errortext":"unable to verify user credentials and/or request signature"}}"#,
            );
        }
        let route = route(&params);
        let mut st = self.state.lock().unwrap();
        st.calls.push((route.clone(), params.clone()));
        let answer = st.queues.get_mut(&route).and_then(|q| {
            if q.len() > 1 {
                q.pop_front()
            } else {
                q.front().cloned()
            }
        });
        match answer {
            Some((status, body, delay)) => ResponseTemplate::new(status)
                .insert_header("content-type", "application/json; charset=UTF-8")
                .set_body_string(body)
                .set_delay(delay),
            None => ResponseTemplate::new(401).set_body_string(format!(
                r#"{{"errorresponse":{{"errorcode":401,"errortext":"fake: no answer queued for {route}"}}}}"#
            )),
        }
    }
}

/// A builder pointed at `server` with the test key, zone `Sydney`, and fast polling.
pub fn builder(server: &MockServer) -> CloudStackBuilder {
    CloudStackBuilder::new()
        .site("hokkaido")
        .endpoint(format!("{}/client/api", server.uri()))
        .credentials(Credentials::cloudstack(API_KEY, SECRET))
        .zone("Sydney")
        .poll_interval(Duration::from_millis(5))
        .job_timeout(Duration::from_millis(500))
}

/// The raw query (GET) or body (POST) of every request the server received whose
/// command is `command`.
pub async fn raw_requests(server: &MockServer, command: &str) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| param(&params_of(r), "command") == Some(command))
        .map(|r| {
            if r.method.as_str() == "POST" {
                String::from_utf8_lossy(&r.body).into_owned()
            } else {
                r.url.query().unwrap_or("").to_owned()
            }
        })
        .collect()
}
