//! Request building (pure), signing, and the one place that sends.
//!
//! A [`Call`] is a command and its parameters. [`Client::prepare`] turns it into a
//! signed GET URL or POST form body for a given instant (pure, so tests can assert the
//! exact query); [`Client::send`] sends it and [`parse_response`] reads the answer
//! (pure). Nothing here ever puts the signed URL, the signature or the secret key into
//! an error, a log line or `Debug` output.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use intercloud_core::{Result, SiteId, Tags};

use crate::error::{self, describe_serde, parse_error, protocol, redact, Failure};
use crate::model::AsyncReply;
use crate::sign::{self, SignatureAlgorithm};

/// The clock used for `signatureVersion=3` expiry; injectable for tests.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The most pages one listing follows before giving up (a server ignoring `page`).
const MAX_PAGES: u32 = 10_000;

/// One API command with its parameters (besides `apiKey`, `response` and the signature).
#[derive(Clone)]
pub(crate) struct Call {
    pub(crate) command: &'static str,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) post: bool,
    /// Values that must never appear in an error (PSKs, passwords).
    pub(crate) secrets: Vec<String>,
}

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.params.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Call")
            .field("command", &self.command)
            .field("params", &names)
            .field("post", &self.post)
            .finish()
    }
}

impl Call {
    /// A command sent as GET (reads).
    pub(crate) fn get(command: &'static str) -> Self {
        Self {
            command,
            params: Vec::new(),
            post: false,
            secrets: Vec::new(),
        }
    }

    /// A command sent as a POST form (large or secret parameters).
    pub(crate) fn post(command: &'static str) -> Self {
        Self {
            post: true,
            ..Self::get(command)
        }
    }

    /// Adds a parameter.
    pub(crate) fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Adds a parameter if `value` is set.
    pub(crate) fn opt(self, name: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.param(name, v),
            None => self,
        }
    }

    /// Adds a secret parameter: it is sent (as POST) but never shown in an error.
    pub(crate) fn secret(mut self, name: impl Into<String>, value: &SecretString) -> Self {
        let v = value.expose_secret().to_owned();
        self.secrets.push(v.clone());
        self.post = true;
        self.param(name, v)
    }

    /// Adds `tags[i].key` / `tags[i].value` for every tag, in key order.
    pub(crate) fn tags(mut self, tags: &Tags) -> Self {
        for (i, (k, v)) in tags.iter().enumerate() {
            self = self
                .param(format!("tags[{i}].key"), k.clone())
                .param(format!("tags[{i}].value"), v.clone());
        }
        self
    }
}

/// A signed request ready to send.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Prepared {
    /// POST (form body) or GET (query string).
    pub(crate) post: bool,
    /// The URL (with the signed query for GET).
    pub(crate) url: Url,
    /// The signed form body for POST.
    pub(crate) body: Option<String>,
}

impl fmt::Debug for Prepared {
    // The query and body carry the signature: print only the method and path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("post", &self.post)
            .field("path", &self.url.path())
            .finish()
    }
}

/// Everything needed to talk to one CloudStack endpoint.
#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) endpoint: Url,
    pub(crate) api_key: String,
    pub(crate) secret: SecretString,
    pub(crate) site: SiteId,
    pub(crate) algorithm: SignatureAlgorithm,
    pub(crate) expires_after: Option<Duration>,
    pub(crate) clock: Clock,
    pub(crate) page_size: u32,
    pub(crate) poll_interval: Duration,
    pub(crate) job_timeout: Duration,
    /// The site's limit on wire requests, when set (every request takes a token).
    pub(crate) wire_limit: Option<std::sync::Arc<intercloud_core::wrap::TokenBucket>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("site", &self.site)
            .field("endpoint", &self.endpoint.as_str())
            .field(
                "api_key",
                &intercloud_core::Credentials::cloudstack(self.api_key.clone(), "").identity(),
            )
            .field("secret_key", &"******")
            .field("algorithm", &self.algorithm)
            .field("expires_after", &self.expires_after)
            .field("page_size", &self.page_size)
            .field("poll_interval", &self.poll_interval)
            .field("job_timeout", &self.job_timeout)
            .finish()
    }
}

impl Client {
    /// The site, for errors.
    pub(crate) fn site(&self) -> &SiteId {
        &self.site
    }

    /// All parameters of `call` as signed: `apiKey`, `command`, `response=json`, the
    /// call's own, and `signatureVersion=3` + `expires` when configured.
    pub(crate) fn signed_params(&self, call: &Call, now: SystemTime) -> Vec<(String, String)> {
        let mut params = Vec::with_capacity(call.params.len() + 5);
        params.push(("apiKey".to_owned(), self.api_key.clone()));
        params.push(("command".to_owned(), call.command.to_owned()));
        params.push(("response".to_owned(), "json".to_owned()));
        params.extend(call.params.iter().cloned());
        if let Some(ttl) = self.expires_after {
            params.push(("signatureVersion".to_owned(), "3".to_owned()));
            params.push(("expires".to_owned(), sign::expires_at(now, ttl)));
        }
        params
    }

    /// Builds the signed request for `call` at `now` (pure).
    pub(crate) fn prepare(&self, call: &Call, now: SystemTime) -> Prepared {
        let params = self.signed_params(call, now);
        let sig = sign::signature(
            &params,
            self.secret.expose_secret().as_bytes(),
            self.algorithm,
        );
        let query = sign::wire_query(&params, &sig);
        let mut url = self.endpoint.clone();
        if call.post {
            url.set_query(None);
            Prepared {
                post: true,
                url,
                body: Some(query),
            }
        } else {
            url.set_query(Some(&query));
            Prepared {
                post: false,
                url,
                body: None,
            }
        }
    }

    /// Sends `call` and returns its response object (the value of
    /// `<command>response`). The one place that sends.
    ///
    /// # Errors
    /// Transport failures (`Unavailable`, `Timeout`), CloudStack errors mapped by
    /// [`crate::error`], and `Protocol` when the answer cannot be read.
    pub(crate) async fn send(&self, call: &Call) -> Result<Value> {
        if let Some(bucket) = &self.wire_limit {
            bucket.take().await;
        }
        let prepared = self.prepare(call, (self.clock)());
        let request = if prepared.post {
            self.http
                .post(prepared.url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(prepared.body.unwrap_or_default())
        } else {
            self.http.get(prepared.url)
        };
        tracing::debug!(site = %self.site, command = call.command, post = call.post, "cloudstack call");
        let response = request
            .send()
            .await
            .map_err(|e| error::transport(&self.site, call.command, e))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| error::transport(&self.site, call.command, e))?;
        parse_response(&self.site, call.command, status, &body, &call.secrets)
    }

    /// Sends `call` and decodes its response object as `T`.
    pub(crate) async fn fetch<T: DeserializeOwned>(&self, call: &Call) -> Result<T> {
        let v = self.send(call).await?;
        decode(&self.site, call.command, v)
    }

    /// Sends a `list*` call page by page (`page`, `pagesize`) and collects the items
    /// under `item`. Stops at the reported `count`, or at a short or empty page.
    pub(crate) async fn list<T: DeserializeOwned>(
        &self,
        call: &Call,
        item: &str,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut previous: Option<Value> = None;
        for page in 1..=MAX_PAGES {
            let paged = call
                .clone()
                .param("page", page.to_string())
                .param("pagesize", self.page_size.to_string());
            let payload = self.send(&paged).await?;
            let raw_items = payload.get(item).cloned();
            if page > 1 && raw_items.is_some() && raw_items == previous {
                // The server ignores `page` and sent the same page again: it had
                // sent everything at once.
                tracing::warn!(site = %self.site, command = call.command, "server ignores `page`");
                return Ok(out);
            }
            previous = raw_items;
            let (items, count) = list_items::<T>(&self.site, call.command, payload, item)?;
            let got = items.len();
            out.extend(items);
            let done =
                got < self.page_size as usize || count.is_some_and(|c| out.len() as u64 >= c);
            if done {
                return Ok(out);
            }
        }
        Err(protocol(
            &self.site,
            call.command,
            format!("more than {MAX_PAGES} pages; the server seems to ignore `page`"),
        ))
    }

    /// Starts an async command; returns its job id and, for create commands, the new
    /// object's id.
    pub(crate) async fn start(&self, call: &Call) -> Result<AsyncReply> {
        self.fetch(call).await
    }
}

/// Reads one HTTP answer of `command` (pure). Returns the response object.
///
/// # Errors
/// A CloudStack error (non-2xx status or an `errorcode` in the body) through
/// [`parse_error`]; `Protocol` for anything unreadable. The body itself is never
/// copied into an error (a proxy's error page may echo the signed URL); only the
/// cloud's `errortext`, with `secrets` blanked out.
pub(crate) fn parse_response(
    site: &SiteId,
    command: &str,
    status: u16,
    body: &[u8],
    secrets: &[String],
) -> Result<Value> {
    let ok = (200..300).contains(&status);
    let json: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) if ok => return Err(protocol(site, command, describe_serde(&e))),
        Err(_) => {
            return Err(parse_error(
                site,
                command,
                &Failure {
                    status,
                    ..Failure::default()
                },
            ))
        }
    };
    let wanted = format!("{}response", command.to_ascii_lowercase());
    let payload = match json {
        Value::Object(mut map) => {
            let key = if map.contains_key(&wanted) {
                Some(wanted.clone())
            } else if map.contains_key("errorresponse") {
                Some("errorresponse".to_owned())
            } else {
                None
            };
            key.and_then(|k| map.remove(&k))
        }
        _ => None,
    };
    let Some(payload) = payload else {
        if ok {
            return Err(protocol(site, command, format!("no `{wanted}` object")));
        }
        return Err(parse_error(
            site,
            command,
            &Failure {
                status,
                ..Failure::default()
            },
        ));
    };
    let Value::Object(obj) = &payload else {
        return Err(protocol(
            site,
            command,
            format!("`{wanted}` is not an object"),
        ));
    };
    if !ok || obj.contains_key("errorcode") {
        return Err(parse_error(
            site,
            command,
            &failure_of(status, obj, secrets),
        ));
    }
    Ok(payload)
}

/// The [`Failure`] described by an error object (`errorcode`, `cserrorcode`,
/// `errortext`), with secrets redacted from the text.
pub(crate) fn failure_of(
    status: u16,
    obj: &serde_json::Map<String, Value>,
    secrets: &[String],
) -> Failure {
    let code = |k: &str| match obj.get(k) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    Failure {
        status,
        errorcode: code("errorcode"),
        cserrorcode: code("cserrorcode"),
        errortext: obj
            .get("errortext")
            .and_then(Value::as_str)
            .map(|t| redact(t, secrets)),
    }
}

/// Decodes a response object as `T`, naming the command on failure.
pub(crate) fn decode<T: DeserializeOwned>(site: &SiteId, command: &str, v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| protocol(site, command, describe_serde(&e)))
}

/// The items under `item` of a list response and its `count`. A missing array is an
/// empty list (CloudStack sends `{}`); anything but an array is a protocol error.
pub(crate) fn list_items<T: DeserializeOwned>(
    site: &SiteId,
    command: &str,
    payload: Value,
    item: &str,
) -> Result<(Vec<T>, Option<u64>)> {
    let Value::Object(mut map) = payload else {
        return Err(protocol(
            site,
            command,
            "the list response is not an object",
        ));
    };
    let count = match map.get("count") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_u64(),
        Some(_) => return Err(protocol(site, command, "`count` is not a number")),
    };
    let items = match map.remove(item) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(protocol(site, command, format!("`{item}` is not an array"))),
    };
    let decoded = items
        .into_iter()
        .map(|v| decode::<T>(site, command, v))
        .collect::<Result<Vec<T>>>()?;
    Ok((decoded, count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use intercloud_core::ErrorKind;

    fn site() -> SiteId {
        SiteId::new("s")
    }

    #[test]
    fn empty_list_is_an_empty_object() {
        let v = parse_response(
            &site(),
            "listTemplates",
            200,
            br#"{ "listtemplatesresponse" : {} }"#,
            &[],
        )
        .unwrap();
        let (items, count) =
            list_items::<crate::model::Template>(&site(), "listTemplates", v, "template").unwrap();
        assert!(items.is_empty());
        assert_eq!(count, None);
    }

    #[test]
    fn error_in_a_200_body_is_an_error() {
        let e = parse_response(
            &site(),
            "deployVirtualMachine",
            200,
            br#"{"deployvirtualmachineresponse":{"errorcode":431,"errortext":"Unable to find service offering: 104"}}"#,
            &[],
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    }

    #[test]
    fn garbage_names_the_command() {
        for body in [
            &b"{\"listzonesresponse\": {"[..],
            b"<html>",
            b"[]",
            b"{\"x\":{}}",
            b"{\"listzonesresponse\":3}",
        ] {
            let e = parse_response(&site(), "listZones", 200, body, &[]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Protocol);
            assert!(e.to_string().contains("listZones"), "{e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_bytes_never_panics(
            status in 0u16..1000,
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            if let Ok(v) = parse_response(&site(), "listVirtualMachines", status, &body, &[]) {
                let _ = list_items::<crate::model::VirtualMachine>(&site(), "listVirtualMachines", v, "virtualmachine");
            }
        }

        #[test]
        fn parsing_arbitrary_payloads_never_panics(inner in "[a-z0-9{}\\[\\]\":, -]{0,80}") {
            let body = format!("{{\"listvirtualmachinesresponse\":{inner}}}");
            if let Ok(v) = parse_response(&site(), "listVirtualMachines", 200, body.as_bytes(), &[]) {
                let _ = list_items::<crate::model::VirtualMachine>(&site(), "listVirtualMachines", v, "virtualmachine");
            }
        }
    }

    #[test]
    fn non_json_error_page_uses_the_status_and_hides_the_body() {
        let e = parse_response(
            &site(),
            "listZones",
            503,
            b"<html>GET /client/api?signature=SECRETSIG</html>",
            &[],
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(!e.to_string().contains("SECRETSIG"));
    }
}
