//! Every case of the AWS SigV4 test suite (`tests/fixtures/sigv4`, from
//! awslabs/aws-c-auth, Apache-2.0): canonical request, string to sign and signature,
//! in the header form and the presigned query form, plus the classic 5-file cases.

use std::path::{Path, PathBuf};

use intercloud_ec2::sigv4::{self, AwsCredentials, Scope, SignableRequest};
use secrecy::SecretString;
use time::OffsetDateTime;

const SUITE_TOKEN: &str = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sigv4")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// A request of the suite: method, path, decoded query, headers, body.
struct Req {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .expect("utf-8")
        .into_owned()
}

fn parse_request(text: &str) -> Req {
    let (head, body) = match text.split_once("\n\n") {
        Some((h, b)) => (h, b),
        None => (text.trim_end_matches('\n'), ""),
    };
    let mut lines = head.lines();
    let first = lines.next().expect("request line");
    let mut parts = first.splitn(3, ' ');
    let method = parts.next().expect("method").to_owned();
    let target = parts.next().expect("target");
    let (path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let query = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').expect("header line");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    Req {
        method,
        path: path.to_owned(),
        query,
        headers,
        body: body.as_bytes().to_vec(),
    }
}

fn signable<'a>(
    r: &'a Req,
    query: &'a [(String, String)],
    headers: &'a [(String, String)],
) -> SignableRequest<'a> {
    SignableRequest {
        method: &r.method,
        path: &r.path,
        query,
        headers,
        payload: &r.body,
    }
}

struct Context {
    creds: AwsCredentials,
    region: String,
    service: String,
    time: OffsetDateTime,
    sign_body: bool,
    expires: u64,
}

fn context(dir: &Path) -> Context {
    let v: serde_json::Value =
        serde_json::from_str(&read(&dir.join("context.json"))).expect("json");
    let c = &v["credentials"];
    let token = c["token"]
        .as_str()
        .map(|t| SecretString::from(t.to_owned()));
    let ts = v["timestamp"].as_str().expect("timestamp");
    Context {
        creds: AwsCredentials::new(
            c["access_key_id"].as_str().expect("key id"),
            SecretString::from(c["secret_access_key"].as_str().expect("secret").to_owned()),
            token,
        ),
        region: v["region"].as_str().expect("region").into(),
        service: v["service"].as_str().expect("service").into(),
        time: OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
            .expect("time"),
        sign_body: v["sign_body"].as_bool().unwrap_or(false),
        expires: v["expiration_in_seconds"].as_u64().unwrap_or(3600),
    }
}

fn cases(sub: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(suite_dir().join(sub))
        .expect("suite dir")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

#[test]
fn v4_header_form_every_case() {
    let all = cases("v4");
    assert_eq!(all.len(), 10, "the suite has 10 v4 cases");
    for dir in all {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let ctx = context(&dir);
        let req = parse_request(&read(&dir.join("request.txt")));
        let scope = Scope {
            region: &ctx.region,
            service: &ctx.service,
        };
        let mut headers = req.headers.clone();
        if ctx.sign_body {
            headers.push(("x-amz-content-sha256".into(), sigv4::hex_sha256(&req.body)));
        }
        // The public entry point adds X-Amz-Date and the token itself.
        let added = sigv4::sign_headers(
            &ctx.creds,
            &scope,
            ctx.time,
            &signable(&req, &req.query, &headers),
        );
        let mut all = headers.clone();
        all.extend(added.iter().filter(|(k, _)| k != "Authorization").cloned());
        let parts = sigv4::sign(
            &ctx.creds,
            &scope,
            ctx.time,
            &signable(&req, &req.query, &all),
        );
        assert_eq!(
            parts.canonical_request,
            read(&dir.join("header-canonical-request.txt")),
            "{name}: canonical request"
        );
        assert_eq!(
            parts.string_to_sign,
            read(&dir.join("header-string-to-sign.txt")),
            "{name}: string to sign"
        );
        assert_eq!(
            parts.signature,
            read(&dir.join("header-signature.txt")).trim(),
            "{name}: signature"
        );
        let auth = &added
            .iter()
            .find(|(k, _)| k == "Authorization")
            .expect("authorization")
            .1;
        let signed_req = read(&dir.join("header-signed-request.txt"));
        assert!(
            signed_req.contains(&format!("Authorization:{auth}")),
            "{name}: Authorization header {auth}"
        );
    }
}

#[test]
fn v4_query_form_every_case() {
    for dir in cases("v4") {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let ctx = context(&dir);
        let req = parse_request(&read(&dir.join("request.txt")));
        let scope = Scope {
            region: &ctx.region,
            service: &ctx.service,
        };
        let (query, parts) = sigv4::presign(
            &ctx.creds,
            &scope,
            ctx.time,
            ctx.expires,
            &signable(&req, &req.query, &req.headers),
        );
        assert_eq!(
            parts.canonical_request,
            read(&dir.join("query-canonical-request.txt")),
            "{name}: canonical request"
        );
        assert_eq!(
            parts.string_to_sign,
            read(&dir.join("query-string-to-sign.txt")),
            "{name}: string to sign"
        );
        let want = read(&dir.join("query-signature.txt"));
        assert_eq!(parts.signature, want.trim(), "{name}: signature");
        assert_eq!(
            query.last(),
            Some(&("X-Amz-Signature".to_owned(), want.trim().to_owned())),
            "{name}: the signature is appended last"
        );
    }
}

#[test]
fn classic_cases_creq_sts_authz() {
    let all = cases("classic");
    assert_eq!(all.len(), 7, "7 classic cases");
    for dir in all {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let file = |ext: &str| read(&dir.join(format!("{name}.{ext}")));
        let req = parse_request(&file("req"));
        let mut headers = req.headers.clone();
        if name.contains("session-token") {
            headers.push(("X-Amz-Security-Token".into(), SUITE_TOKEN.into()));
        }
        let creds = AwsCredentials::new(
            "AKIDEXAMPLE",
            SecretString::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned()),
            None,
        );
        let scope = Scope {
            region: "us-east-1",
            service: "service",
        };
        let t = time::macros::datetime!(2015-08-30 12:36:00 UTC);
        let parts = sigv4::sign(&creds, &scope, t, &signable(&req, &req.query, &headers));
        assert_eq!(parts.canonical_request, file("creq"), "{name}: creq");
        assert_eq!(parts.string_to_sign, file("sts"), "{name}: sts");
        let authz = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{}, SignedHeaders={}, Signature={}",
            parts.scope, parts.signed_headers, parts.signature
        );
        assert_eq!(authz, file("authz"), "{name}: authz");
    }
}
