//! The one place that signs and sends EC2 Query API calls (reqwest).
//!
//! Every call is a `POST` of a form body to the endpoint, signed with SigV4 in the
//! `Authorization` header (AWS, Eucalyptus, moto) or with SigV2 parameters (old
//! Eucalyptus). The answer is parsed by local names; errors are decided here through
//! [`crate::error`]'s table. Nothing secret reaches a log line or an error: messages
//! are built from the action name, the HTTP status and the cloud's own error text.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use intercloud_core::{Error, ErrorKind, Result, SiteId};
use time::OffsetDateTime;
use url::Url;

use crate::error::{api_error, looks_like_html, parse_error_body};
use crate::query::{form_encode, QueryRequest};
use crate::sigv2::{self, Sigv2Method};
use crate::sigv4::{self, AwsCredentials, Scope, SignableRequest};
use crate::xml::{self, Element};

/// The content type of every request.
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// How requests are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// Signature Version 4 in the `Authorization` header (AWS, Eucalyptus ≥ 4, moto).
    V4,
    /// Signature Version 2 parameters (old Eucalyptus endpoints).
    V2(Sigv2Method),
}

/// A source of the current time, injectable for tests.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// A signed EC2 Query API client for one endpoint and one key.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: Url,
    region: String,
    signing: Signing,
    creds: AwsCredentials,
    site: SiteId,
    clock: Clock,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("site", &self.site)
            .field("endpoint", &self.endpoint.as_str())
            .field("region", &self.region)
            .field("signing", &self.signing)
            .field("credentials", &self.creds)
            .finish()
    }
}

impl Client {
    /// A client; `timeout` bounds each whole call.
    pub(crate) fn new(
        site: SiteId,
        endpoint: Url,
        region: String,
        signing: Signing,
        creds: AwsCredentials,
        clock: Clock,
        timeout: Duration,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| {
                Error::config(format!("cannot build the HTTP client: {}", e.without_url()))
                    .with_site(site.clone())
            })?;
        Ok(Self {
            http,
            endpoint,
            region,
            signing,
            creds,
            site,
            clock,
        })
    }

    /// The site this client talks to.
    pub fn site(&self) -> &SiteId {
        &self.site
    }

    /// The region in the signature scope.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// `host[:port]` as sent in the `Host` header (port only when not the default).
    fn host_header(&self) -> String {
        let host = self.endpoint.host_str().unwrap_or_default();
        match self.endpoint.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        }
    }

    /// Signs `req` for `service` and returns the headers and body to send.
    pub(crate) fn signed(
        &self,
        service: &str,
        req: &QueryRequest,
    ) -> (Vec<(String, String)>, String) {
        let now = (self.clock)();
        let host = self.host_header();
        let path = percent_encoding::percent_decode_str(self.endpoint.path())
            .decode_utf8_lossy()
            .into_owned();
        match self.signing {
            Signing::V4 => {
                let body = req.form_body();
                let mut headers = vec![
                    ("Content-Type".to_owned(), FORM_CONTENT_TYPE.to_owned()),
                    ("Host".to_owned(), host),
                ];
                let added = sigv4::sign_headers(
                    &self.creds,
                    &Scope {
                        region: &self.region,
                        service,
                    },
                    now,
                    &SignableRequest {
                        method: "POST",
                        path: &path,
                        query: &[],
                        headers: &headers,
                        payload: body.as_bytes(),
                    },
                );
                headers.extend(added);
                (headers, body)
            }
            Signing::V2(alg) => {
                let mut params = req.params().to_vec();
                sigv2::sign(&self.creds, alg, now, "POST", &host, &path, &mut params);
                let headers = vec![
                    ("Content-Type".to_owned(), FORM_CONTENT_TYPE.to_owned()),
                    ("Host".to_owned(), host),
                ];
                (headers, form_encode(&params))
            }
        }
    }

    /// Sends `req` to the `ec2` service and returns the root of a successful answer.
    ///
    /// # Errors
    /// The kind from the EC2 error code (see [`crate::error`]) or the HTTP status;
    /// `Protocol` when a success answer is not the expected XML; `Timeout` and
    /// `Unavailable` for transport failures.
    pub async fn call(&self, req: &QueryRequest) -> Result<Element> {
        self.call_service("ec2", req).await
    }

    /// As [`Client::call`], for another service of the same endpoint (moto's IAM).
    pub async fn call_service(&self, service: &str, req: &QueryRequest) -> Result<Element> {
        let action = req.action();
        let (status, body) = self.send(service, req).await?;
        tracing::debug!(site = %self.site, action, status, bytes = body.len(), "ec2 call");
        if !(200..300).contains(&status) {
            return Err(api_error(&self.site, action, status, &body));
        }
        parse_success(&self.site, action, &body)
    }

    async fn send(&self, service: &str, req: &QueryRequest) -> Result<(u16, String)> {
        let action = req.action();
        let (headers, body) = self.signed(service, req);
        let mut builder = self.http.post(self.endpoint.clone()).body(body);
        for (k, v) in &headers {
            // reqwest sets Host from the URL, to the same value we signed.
            if !k.eq_ignore_ascii_case("host") {
                builder = builder.header(k.as_str(), v.as_str());
            }
        }
        let resp = builder
            .send()
            .await
            .map_err(|e| self.transport_error(action, "sending the request", e))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| self.transport_error(action, "reading the answer", e))?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
            Error::protocol(format!("{action}: the answer (HTTP {status}) is not UTF-8"))
                .with_site(self.site.clone())
        })?;
        Ok((status, text))
    }

    fn transport_error(&self, action: &str, what: &str, e: reqwest::Error) -> Error {
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Unavailable
        };
        let e = e.without_url();
        Error::new(
            kind,
            format!(
                "{action}: {what} to {} failed: {e}",
                self.endpoint_for_errors()
            ),
        )
        .with_site(self.site.clone())
        .with_temporary(true)
    }

    /// The endpoint without any user info or query (safe to print).
    fn endpoint_for_errors(&self) -> String {
        format!(
            "{}://{}{}",
            self.endpoint.scheme(),
            self.host_header(),
            self.endpoint.path()
        )
    }
}

/// Parses a 2xx answer of `action`; the root must be `{action}Response`.
///
/// # Errors
/// `Protocol` for anything else (invalid or truncated XML, an HTML page, another
/// root); the kind of the EC2 error when the body is one.
pub fn parse_success(site: &SiteId, action: &str, body: &str) -> Result<Element> {
    let root = xml::parse(body).map_err(|e| {
        let what = if looks_like_html(body) {
            "an HTML page instead of XML".to_owned()
        } else {
            format!("invalid XML ({e})")
        };
        Error::protocol(format!("{action}: the site answered {what}")).with_site(site.clone())
    })?;
    let expected = format!("{action}Response");
    if root.name == expected {
        return Ok(root);
    }
    if parse_error_body(body).is_some() {
        return Err(api_error(site, action, 400, body));
    }
    Err(Error::protocol(format!(
        "{action}: expected <{expected}>, the site answered <{}> (is the endpoint an EC2 API?)",
        root.name
    ))
    .with_site(site.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn client(signing: Signing) -> Client {
        let t = time::macros::datetime!(2015-08-30 12:36:00 UTC);
        Client::new(
            SiteId::new("s"),
            Url::parse("https://ec2.us-east-1.amazonaws.com/").unwrap(),
            "us-east-1".into(),
            signing,
            AwsCredentials::new(
                "AKIDEXAMPLE",
                SecretString::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                Some(SecretString::from("T0KEN-secret")),
            ),
            Arc::new(move || t),
            Duration::from_secs(5),
        )
        .unwrap()
    }

    #[test]
    fn v4_signs_content_type_host_date_and_token() {
        let (headers, body) =
            client(Signing::V4).signed("ec2", &QueryRequest::new("DescribeRegions"));
        assert_eq!(body, "Action=DescribeRegions&Version=2016-11-15");
        let auth = &headers
            .iter()
            .find(|(k, _)| k == "Authorization")
            .unwrap()
            .1;
        assert!(auth.contains("Credential=AKIDEXAMPLE/20150830/us-east-1/ec2/aws4_request"));
        assert!(auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"));
    }

    #[test]
    fn v2_puts_the_signature_in_the_body() {
        let (_, body) = client(Signing::V2(Sigv2Method::HmacSha256))
            .signed("ec2", &QueryRequest::new("DescribeRegions"));
        assert!(body.contains("SignatureVersion=2&"), "{body}");
        assert!(body.contains("&Signature="), "{body}");
    }

    #[test]
    fn debug_shows_no_secret() {
        let d = format!("{:?}", client(Signing::V4));
        assert!(
            !d.contains("wJalrXUtnFEMI") && !d.contains("T0KEN-secret"),
            "{d}"
        );
    }

    #[test]
    fn success_answers_are_checked() {
        let site = SiteId::new("s");
        let ok = "<XResponse xmlns=\"a\"><requestId>1</requestId></XResponse>";
        assert!(parse_success(&site, "X", ok).is_ok());
        let other = parse_success(&site, "X", "<ListAllMyBucketsResult/>").unwrap_err();
        assert_eq!(other.kind(), ErrorKind::Protocol);
        assert!(other.to_string().contains("ListAllMyBucketsResult"));
        let html = parse_success(&site, "X", "<!doctype html><html><p>hi").unwrap_err();
        assert!(html.to_string().contains("HTML page"), "{html}");
    }
}
