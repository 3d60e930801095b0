//! What the wire tests share: the recorded answers of `tests/fixtures/ec2`, a loopback
//! mock server answering an action with one of them, the requests it received, and
//! the VPN fabric they drive.
#![allow(dead_code)]

use std::path::Path;

use intercloud_core::Credentials;
use intercloud_ec2::{Ec2Builder, Ec2VpnFabric};
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The recorded answer `rel` (under `tests/fixtures/ec2`).
pub(crate) fn fixture(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ec2")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Answers every request of `action` with `status` and `body`.
pub(crate) async fn answer(server: &MockServer, action: &str, status: u16, body: String) {
    Mock::given(method("POST"))
        .and(body_string_contains(format!("Action={action}&")))
        .respond_with(ResponseTemplate::new(status).set_body_string(body))
        .mount(server)
        .await;
}

/// The bodies of the requests of `action` the server received, in order.
pub(crate) async fn sent(server: &MockServer, action: &str) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .filter(|b| b.starts_with(&format!("Action={action}&")))
        .collect()
}

/// The VPN fabric of site `aws` (region `us-east-1`) talking to `server`.
pub(crate) fn fabric(server: &MockServer) -> Ec2VpnFabric {
    Ec2Builder::aws()
        .site("aws")
        .region("us-east-1")
        .endpoint(server.uri())
        .credentials(Credentials::ec2("AKIDVPN", "S3CRET-vpn", None))
        .build()
        .expect("provider")
        .vpn_fabric()
}
