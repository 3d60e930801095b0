//! The HTTP edge: one hyper server per site, on loopback. Each request waits the site's
//! sampled latency (a non-blocking tokio sleep), is refused with 503 during an outage, and
//! is otherwise handed, fully read, to the site's protocol endpoint.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use intercloud_core::model::Middleware;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::engine::Engine;

/// Largest request body accepted (CloudStack allows 1 MiB of user data by POST).
const MAX_BODY: usize = 4 << 20;

/// A fully read HTTP request, as the protocol endpoints see it.
#[derive(Debug, Clone)]
pub(crate) struct HttpRequest {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl HttpRequest {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A response an endpoint renders.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
    pub(crate) extra_headers: Vec<(&'static str, String)>,
}

impl HttpResponse {
    pub(crate) fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type,
            body: body.into(),
            extra_headers: Vec::new(),
        }
    }

    #[cfg(test)]
    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or("")
    }
}

/// Runs one request through the engine and the site's endpoint.
pub(crate) async fn dispatch(engine: &Engine, req: HttpRequest) -> HttpResponse {
    let wait = engine.sample_latency();
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    if engine.in_outage() {
        return HttpResponse::new(
            503,
            "text/html",
            "<html><body><h1>503 Service Unavailable</h1></body></html>",
        );
    }
    match engine.cfg.middleware {
        Middleware::CloudStack => crate::cloudstack::handle(engine, &req),
        Middleware::OpenNebula => crate::opennebula::handle(engine, &req),
        Middleware::Ec2 | Middleware::Eucalyptus => crate::ec2::handle(engine, &req),
    }
}

async fn serve_one(
    engine: Arc<Engine>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let mut r = Response::new(Full::new(Bytes::from_static(
                b"request body too large or broken",
            )));
            *r.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            return Ok(r);
        }
    };
    let req = HttpRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts.headers,
        body,
    };
    let out = dispatch(&engine, req).await;
    let mut r = Response::new(Full::new(Bytes::from(out.body)));
    *r.status_mut() = StatusCode::from_u16(out.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(out.content_type));
    for (k, v) in out.extra_headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().insert(k, v);
        }
    }
    Ok(r)
}

/// Accepts connections until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (stream, _peer): (_, SocketAddr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(site = %engine.cfg.id, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let engine = engine.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| serve_one(engine.clone(), req));
            let conn = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => conn.as_mut().graceful_shutdown(),
            }
        });
    }
}

/// Splits `a=b&c=d` into decoded pairs (`+` is a space, as in HTML forms and servlets).
pub(crate) fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        assert_eq!(
            parse_form("a=b+c&tags%5B0%5D.key=x%2By&e="),
            vec![
                ("a".into(), "b c".into()),
                ("tags[0].key".into(), "x+y".into()),
                ("e".into(), "".into())
            ]
        );
    }
}
