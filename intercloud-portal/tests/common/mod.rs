//! Test harness: a portal over the in-memory federation and an encrypted vault in a
//! temp dir, a cookie-keeping client driving it with `oneshot`, and captured logs.

#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use intercloud_core::deploy::DeployOptions;
use intercloud_core::{Credentials, EncryptedFileVault, KdfParams, SiteId, Vault, VmId};
use intercloud_portal::{app, Backend, MemoryBackend, PortalConfig, SimBackend};
use secrecy::{ExposeSecret, SecretString};
use tower::ServiceExt;

/// Log lines written while a test runs (every level).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this test binary, at every level: one global subscriber writing
/// into one buffer, installed before any portal exists (per-thread subscribers can miss
/// events of callsites first hit on another thread).
pub fn capture_logs() -> Logs {
    static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let w = logs.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || w.clone())
            .finish();
        tracing::subscriber::set_global_default(sub).expect("one global subscriber");
        logs
    })
    .clone()
}

/// The clouds behind a test portal.
#[derive(Clone)]
pub enum Clouds {
    /// The built-in federation on in-memory providers.
    Memory(Arc<MemoryBackend>),
    /// The simulated federation (intercloud-sim) on loopback, through the real clients.
    Sim(Arc<SimBackend>),
}

/// Wall-clock seconds per simulated second in tests (boots of 5-20 s take 0.1-0.4 s).
pub const SIM_TIME_SCALE: f64 = 0.02;

impl Clouds {
    pub async fn sim() -> Self {
        Self::Sim(Arc::new(SimBackend::start(SIM_TIME_SCALE).await.unwrap()))
    }

    pub fn memory() -> Self {
        Self::Memory(Arc::new(
            MemoryBackend::new(Duration::from_millis(100)).unwrap(),
        ))
    }

    pub fn backend(&self) -> Arc<dyn Backend> {
        match self {
            Self::Memory(m) => m.clone(),
            Self::Sim(s) => s.clone(),
        }
    }

    pub fn credentials(&self, site: &str) -> Credentials {
        match self {
            Self::Memory(m) => m.accepted_credentials(&SiteId::new(site)).unwrap().clone(),
            Self::Sim(s) => s.accepted_credentials(&SiteId::new(site)).unwrap(),
        }
    }

    /// Alive VMs at `site`.
    pub fn alive(&self, site: &str) -> usize {
        match self {
            Self::Memory(m) => m
                .cloud(&SiteId::new(site))
                .unwrap()
                .all_vms()
                .iter()
                .filter(|v| v.state.is_alive())
                .count(),
            Self::Sim(s) => s.sim().site(site).unwrap().alive_vms().len(),
        }
    }

    /// Deletes one alive VM at `site` behind the portal's back (a lost node).
    pub async fn kill_one(&self, site: &str) {
        let id = match self {
            Self::Memory(m) => {
                m.cloud(&SiteId::new(site))
                    .unwrap()
                    .all_vms()
                    .into_iter()
                    .find(|v| v.state.is_alive())
                    .unwrap()
                    .id
            }
            Self::Sim(s) => VmId::new(s.sim().site(site).unwrap().alive_vms()[0].id.clone()),
        };
        let p = self
            .backend()
            .connect(&SiteId::new(site), &self.credentials(site))
            .unwrap();
        p.delete_vm(&id).await.unwrap();
        for _ in 0..200 {
            if self.alive(site) == 0 || !self.is_alive(site, &id) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("VM {id} at {site} did not go away");
    }

    /// The user data of every alive VM at `site` as sent (base64 decoded when it is),
    /// or `None` on in-memory clouds (which do not keep it).
    pub fn user_data(&self, site: &str) -> Option<Vec<String>> {
        use base64::Engine as _;
        let Self::Sim(s) = self else { return None };
        Some(
            s.sim()
                .site(site)
                .unwrap()
                .alive_vms()
                .into_iter()
                .map(|r| {
                    let raw = r.user_data.unwrap_or_default();
                    base64::engine::general_purpose::STANDARD
                        .decode(raw.trim())
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok())
                        .unwrap_or(raw)
                })
                .collect(),
        )
    }

    fn is_alive(&self, site: &str, id: &VmId) -> bool {
        match self {
            Self::Memory(m) => m
                .cloud(&SiteId::new(site))
                .unwrap()
                .all_vms()
                .iter()
                .any(|v| &v.id == id && v.state.is_alive()),
            Self::Sim(s) => s
                .sim()
                .site(site)
                .unwrap()
                .alive_vms()
                .iter()
                .any(|r| r.id == id.as_str()),
        }
    }
}

pub struct Harness {
    pub router: Router,
    pub clouds: Clouds,
    pub vault: Arc<EncryptedFileVault>,
    _dir: tempfile::TempDir,
}

pub const PASSWORD: &str = "correct horse battery staple";

pub fn fast_deploy() -> DeployOptions {
    DeployOptions {
        poll_min: Duration::from_millis(20),
        poll_max: Duration::from_millis(100),
        ..DeployOptions::default()
    }
}

/// An encrypted vault in a fresh temp dir.
pub async fn vault() -> (Arc<EncryptedFileVault>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let vault = Arc::new(
        EncryptedFileVault::options()
            .create(true)
            .kdf(KdfParams::insecure_fast_for_tests())
            .open(
                dir.path().join("vault.icv"),
                &SecretString::from("test passphrase"),
            )
            .await
            .unwrap(),
    );
    (vault, dir)
}

/// A portal on the simulated federation with local users alice and bob (and SSO from
/// `proxy` when given).
pub async fn harness(proxy: Option<IpAddr>) -> Harness {
    capture_logs();
    harness_on(proxy, Clouds::sim().await).await
}

/// A portal on `clouds`.
pub async fn harness_on(proxy: Option<IpAddr>, clouds: Clouds) -> Harness {
    capture_logs();
    let (vault, dir) = vault().await;
    let config = PortalConfig {
        trusted_proxy: proxy,
        local_users: ["alice", "bob"]
            .iter()
            .map(|u| (u.to_string(), SecretString::from(PASSWORD)))
            .collect(),
        secure_cookies: true,
        deploy: fast_deploy(),
    };
    let router = app(clouds.backend(), vault.clone() as Arc<dyn Vault>, config).unwrap();
    Harness {
        router,
        clouds,
        vault,
        _dir: dir,
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub location: Option<String>,
    pub set_cookie: Vec<String>,
    pub body: String,
}

/// One browser: a cookie, a peer address, extra headers.
pub struct Client {
    pub router: Router,
    pub cookie: Option<String>,
    pub peer: SocketAddr,
    pub headers: Vec<(String, String)>,
    /// Every response body this client saw.
    pub bodies: Vec<String>,
}

impl Client {
    pub fn new(h: &Harness) -> Self {
        Self {
            router: h.router.clone(),
            cookie: None,
            peer: "127.0.0.1:50000".parse().unwrap(),
            headers: Vec::new(),
            bodies: Vec::new(),
        }
    }

    pub async fn send(&mut self, method: &str, path: &str, form: Option<&[(&str, &str)]>) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(c) = &self.cookie {
            b = b.header(header::COOKIE, format!("ic_session={c}"));
        }
        for (k, v) in &self.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let body = match form {
            Some(f) => {
                b = b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                let mut s = url::form_urlencoded::Serializer::new(String::new());
                for (k, v) in f {
                    s.append_pair(k, v);
                }
                Body::from(s.finish())
            }
            None => Body::empty(),
        };
        let mut req = b.body(body).unwrap();
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let location = resp
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let set_cookie: Vec<String> = resp
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for c in &set_cookie {
            let v = c
                .split(';')
                .next()
                .unwrap()
                .trim_start_matches("ic_session=");
            self.cookie = (!v.is_empty()).then(|| v.to_owned());
        }
        let body = String::from_utf8(
            resp.into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap();
        self.bodies.push(body.clone());
        Resp {
            status,
            headers,
            location,
            set_cookie,
            body,
        }
    }

    pub async fn get_full(&mut self, path: &str) -> Resp {
        self.send("GET", path, None).await
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        self.send("GET", path, None).await
    }

    /// The CSRF token of the current session (from a page that shows a form).
    pub async fn csrf(&mut self) -> String {
        let page = self.get("/login").await.body;
        let page = if page.contains("name=\"csrf\"") {
            page
        } else {
            self.get("/credentials").await.body
        };
        csrf_in(&page).expect("a page with a CSRF field")
    }

    /// POSTs `form` plus this session's CSRF token.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        let token = self.csrf().await;
        let mut f: Vec<(&str, &str)> = form.to_vec();
        f.push(("csrf", &token));
        self.send("POST", path, Some(&f)).await
    }

    pub async fn login(h: &Harness, user: &str) -> Self {
        let mut c = Self::new(h);
        let r = c
            .post("/login", &[("user", user), ("password", PASSWORD)])
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert_eq!(r.location.as_deref(), Some("/clusters"));
        c
    }

    /// Registers the keys the in-memory clouds accept, for every site.
    pub async fn register_all(&mut self, h: &Harness) {
        for s in ["hokkaido", "nii", "tokyo"] {
            let (id, secret) = accepted(h, s);
            let r = self
                .post(
                    &format!("/credentials/{s}"),
                    &[("identity", &id), ("secret", &secret)],
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(
                r.body.contains(&format!("keys for {s} saved")),
                "{}",
                r.body
            );
        }
    }
}

/// The CSRF token in a page.
pub fn csrf_in(page: &str) -> Option<String> {
    let start = page.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = page[start..].find('"')?;
    Some(page[start..start + end].to_owned())
}

/// The identity and secret `site` accepts.
pub fn accepted(h: &Harness, site: &str) -> (String, String) {
    match h.clouds.credentials(site) {
        Credentials::CloudStack {
            api_key,
            secret_key,
        } => (api_key, secret_key.expose_secret().to_owned()),
        Credentials::OpenNebula { user, password } => (user, password.expose_secret().to_owned()),
        Credentials::Ec2 {
            access_key_id,
            secret_access_key,
            ..
        } => (access_key_id, secret_access_key.expose_secret().to_owned()),
        _ => unreachable!(),
    }
}

/// Every accepted secret.
pub fn all_secrets(h: &Harness) -> Vec<String> {
    ["hokkaido", "nii", "tokyo"]
        .iter()
        .map(|s| accepted(h, s).1)
        .collect()
}

/// The seed's request form: 3 × S at hokkaido, 2 × L at nii, 1 Gbps.
pub fn seed_form(name: &str) -> Vec<(&str, &str)> {
    vec![
        ("name", name),
        ("profile", "hosts"),
        ("vpn_mbps", "500"),
        ("min_sites", "1"),
        ("g0_role", "small"),
        ("g0_count", "3"),
        ("g0_level", "S"),
        ("g0_site", "hokkaido"),
        ("g1_role", "large"),
        ("g1_count", "2"),
        ("g1_level", "L"),
        ("g1_site", "nii"),
    ]
}

/// The id of the draft in a plan page.
pub fn draft_in(page: &str) -> String {
    let start = page.find("/drafts/").expect("a confirm form") + "/drafts/".len();
    let end = page[start..].find('/').unwrap();
    page[start..start + end].to_owned()
}

/// Plans and confirms the seed request; returns the cluster id.
pub async fn deploy_seed(c: &mut Client, name: &str) -> String {
    let r = c.post("/request", &seed_form(name)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let draft = draft_in(&r.body);
    let r = c
        .post(
            &format!("/drafts/{draft}/confirm"),
            &[("choice", "planner")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let loc = r.location.unwrap();
    loc.trim_start_matches("/clusters/")
        .trim_end_matches("/progress")
        .to_owned()
}

/// The phase shown on a cluster page.
pub fn phase_in(page: &str) -> Option<String> {
    let start = page.find("<b id=\"phase\">")? + "<b id=\"phase\">".len();
    let end = page[start..].find('<')?;
    Some(page[start..start + end].to_owned())
}

/// Polls the cluster page until its phase is `want` (or fails after 20 s).
pub async fn wait_phase(c: &mut Client, id: &str, want: &str) -> String {
    for _ in 0..400 {
        let r = c.get(&format!("/clusters/{id}")).await;
        if phase_in(&r.body).as_deref() == Some(want) {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last = c.get(&format!("/clusters/{id}/progress")).await.body;
    panic!("cluster {id} never reached {want}: {last}");
}
