//! A minimal W3C WebDriver client over reqwest, enough to drive chromedriver on
//! loopback: sessions, navigation, elements (find, type, click, text), scripts and
//! screenshots. Test-only.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser session.
pub struct Browser {
    http: reqwest::Client,
    base: String,
}

impl Browser {
    /// Opens a session on the chromedriver at `driver` (`http://127.0.0.1:PORT`).
    pub async fn open(driver: &str, chromium: &str, args: &[String]) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args}
        }}});
        let v = call(
            &http,
            reqwest::Method::POST,
            &format!("{driver}/session"),
            Some(caps),
        )
        .await?;
        let id = v["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no sessionId in {v}"))?;
        Ok(Self {
            base: format!("{driver}/session/{id}"),
            http,
        })
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}{path}", self.base),
            Some(body),
        )
        .await
    }

    async fn get(&self, path: &str) -> Result<Value, String> {
        call(
            &self.http,
            reqwest::Method::GET,
            &format!("{}{path}", self.base),
            None,
        )
        .await
    }

    /// Loads `url`.
    pub async fn goto(&self, url: &str) -> Result<(), String> {
        self.post("/url", json!({ "url": url })).await.map(|_| ())
    }

    /// The current URL.
    pub async fn url(&self) -> Result<String, String> {
        Ok(self
            .get("/url")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// The element matching CSS `selector`.
    pub async fn find(&self, selector: &str) -> Result<String, String> {
        let v = self
            .post(
                "/element",
                json!({"using": "css selector", "value": selector}),
            )
            .await
            .map_err(|e| format!("{selector}: {e}"))?;
        v[ELEMENT_KEY]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{selector}: no element id in {v}"))
    }

    /// Types `text` into the element matching `selector`.
    pub async fn fill(&self, selector: &str, text: &str) -> Result<(), String> {
        let el = self.find(selector).await?;
        self.post(&format!("/element/{el}/clear"), json!({}))
            .await?;
        self.post(&format!("/element/{el}/value"), json!({ "text": text }))
            .await
            .map(|_| ())
    }

    /// Clicks the element matching `selector`.
    pub async fn click(&self, selector: &str) -> Result<(), String> {
        let el = self.find(selector).await?;
        self.post(&format!("/element/{el}/click"), json!({}))
            .await
            .map(|_| ())
    }

    /// The visible text of the element matching `selector`.
    pub async fn text(&self, selector: &str) -> Result<String, String> {
        let el = self.find(selector).await?;
        Ok(self
            .get(&format!("/element/{el}/text"))
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Runs `script` in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Result<Value, String> {
        self.post("/execute/sync", json!({"script": script, "args": []}))
            .await
    }

    /// Polls `selector`'s text until `pred` holds (or `timeout`).
    pub async fn wait_text(
        &self,
        selector: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let end = std::time::Instant::now() + timeout;
        let mut last = String::new();
        while std::time::Instant::now() < end {
            if let Ok(t) = self.text(selector).await {
                if pred(&t) {
                    return Ok(t);
                }
                last = t;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("{selector}: timed out, last text {last:?}"))
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<(), String> {
        let v = self.get("/screenshot").await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_err(|e| e.to_string())?;
        std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Ends the session (closes the browser).
    pub async fn close(self) {
        let _ = call(&self.http, reqwest::Method::DELETE, &self.base, None).await;
    }
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let mut req = http.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let v: Value = resp.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("webdriver {status}: {}", v["value"]));
    }
    Ok(v["value"].clone())
}
