//! Minimal signed-request helpers and a tiny HTTP/1.1 client, for tests and benchmarks
//! that talk to the simulator without a backend crate.
//!
//! Not a CloudStack/EC2 client: no retries, no parsing beyond the status line.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cloudstack::sign;
use crate::ec2::sigv4;

/// A CloudStack query string (`response=json` and `apiKey` added) signed with `secret`.
pub fn cloudstack_query(params: &[(&str, &str)], api_key: &str, secret: &str) -> String {
    let mut all: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    all.push(("apiKey".into(), api_key.into()));
    all.push(("response".into(), "json".into()));
    let sig = sign::sign(secret, &sign::string_to_sign(&all));
    all.push(("signature".into(), sig));
    all.iter()
        .map(|(k, v)| format!("{}={}", sign::java_url_encode(k), sign::java_url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A form body `Action=…&Version=2016-11-15&…` (RFC 3986 encoded).
pub fn ec2_form(params: &[(&str, &str)]) -> String {
    let mut all = vec![("Version", "2016-11-15")];
    all.extend_from_slice(params);
    all.iter()
        .map(|(k, v)| format!("{}={}", sigv4::uri_encode(k), sigv4::uri_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Headers (`X-Amz-Date`, `Authorization`) signing a POST of `body` to `host` with SigV4
/// (service `ec2`), at the current time.
pub fn ec2_headers(
    host: &str,
    body: &str,
    key: &str,
    secret: &str,
    region: &str,
) -> Vec<(String, String)> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let amz = time::OffsetDateTime::now_utc()
        .format(&fmt)
        .unwrap_or_default();
    let mut headers = hyper::header::HeaderMap::new();
    let ct = "application/x-www-form-urlencoded; charset=utf-8";
    for (k, v) in [
        ("host", host),
        ("content-type", ct),
        ("x-amz-date", amz.as_str()),
    ] {
        if let Ok(v) = hyper::header::HeaderValue::from_str(v) {
            headers.insert(k, v);
        }
    }
    let req = crate::server::HttpRequest {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers,
        body: body.to_owned().into(),
    };
    let date = amz.get(..8).unwrap_or("").to_owned();
    let p = sigv4::Presented {
        access_key: key.into(),
        date: date.clone(),
        amz_date: amz.clone(),
        region: region.into(),
        service: "ec2".into(),
        signed_headers: vec!["content-type".into(), "host".into(), "x-amz-date".into()],
        signature: String::new(),
        query_form: false,
        expires: None,
    };
    let sig = sigv4::expected_signature(&req, &p, secret);
    vec![
        ("Content-Type".into(), ct.into()),
        ("X-Amz-Date".into(), amz),
        (
            "Authorization".into(),
            format!("AWS4-HMAC-SHA256 Credential={key}/{date}/{region}/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={sig}"),
        ),
    ]
}

/// Sends one HTTP/1.1 request (`Connection: close`) and returns status and body.
///
/// # Errors
/// I/O errors, or a response without a status line.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr).await?;
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status line"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Powers VM `id` off through the cloud's own API, as one of its users would:
/// CloudStack `stopVirtualMachine`, OpenNebula `one.vm.action("poweroff", id)`, EC2
/// `StopInstances` (signed for `region`). `addr` is the site's loopback address.
///
/// # Errors
/// I/O errors, and `Other` with the cloud's answer when it refused.
pub async fn stop_vm(
    addr: SocketAddr,
    credentials: &crate::SimCredentials,
    region: &str,
    id: &str,
) -> std::io::Result<()> {
    use crate::SimCredentials as C;
    let (status, body) = match credentials {
        C::Cloudstack {
            api_key,
            secret_key,
        } => {
            let q = cloudstack_query(
                &[("command", "stopVirtualMachine"), ("id", id)],
                api_key,
                secret_key,
            );
            http(addr, "GET", &format!("/client/api?{q}"), &[], "").await?
        }
        C::Opennebula { user, password } => {
            let n: i64 = id
                .parse()
                .map_err(|_| std::io::Error::other(format!("{id:?} is no OpenNebula VM id")))?;
            let esc = |s: &str| {
                s.replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
            };
            let body = format!(
                "<?xml version='1.0'?>\n<methodCall>\n<methodName>one.vm.action</methodName>\n<params>\n<param>\n<value><string>{}:{}</string></value>\n</param>\n<param>\n<value><string>poweroff</string></value>\n</param>\n<param>\n<value><int>{n}</int></value>\n</param>\n</params>\n</methodCall>\n",
                esc(user),
                esc(password)
            );
            let headers = [("Content-Type".to_owned(), "text/xml".to_owned())];
            let (status, text) = http(addr, "POST", "/RPC2", &headers, &body).await?;
            if text.contains("<boolean>0</boolean>") {
                return Err(std::io::Error::other(format!("oned refused: {text}")));
            }
            (status, text)
        }
        C::Ec2 {
            access_key_id,
            secret_access_key,
        } => {
            let body = ec2_form(&[("Action", "StopInstances"), ("InstanceId.1", id)]);
            let headers = ec2_headers(
                &addr.to_string(),
                &body,
                access_key_id,
                secret_access_key,
                region,
            );
            http(addr, "POST", "/", &headers, &body).await?
        }
    };
    if status == 200 {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("HTTP {status}: {body}")))
    }
}
