//! Shared helpers of the integration tests: fixtures, a wiremock server, providers.
#![allow(dead_code, unreachable_pub)]

pub mod fake_oned;

use intercloud_opennebula::{OpenNebulaBuilder, OpenNebulaProvider};
use wiremock::{MockServer, ResponseTemplate};

/// A fixture file's exact text (tests/fixtures/…).
pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// An answer the way oned's Abyss server sends it.
pub fn xml(body: impl Into<String>) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "text/xml; charset=utf-8")
        .set_body_string(body.into())
}

/// A provider for site `nii` talking to `server`, as the wire fixtures' made-up user.
pub fn provider(server: &MockServer) -> OpenNebulaProvider {
    provider_as(server, "oneadmin", "opennebula")
}

/// A provider with other credentials.
pub fn provider_as(server: &MockServer, user: &str, password: &str) -> OpenNebulaProvider {
    OpenNebulaBuilder::new("nii")
        .endpoint(format!("{}/RPC2", server.uri()))
        .auth(user, password)
        .build()
        .expect("provider builds")
}

/// The bodies of every request the server received, in order.
pub async fn bodies(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

/// The bodies of the requests calling `method`.
pub async fn calls_of(server: &MockServer, method: &str) -> Vec<String> {
    let tag = format!("<methodName>{method}</methodName>");
    bodies(server)
        .await
        .into_iter()
        .filter(|b| b.contains(&tag))
        .collect()
}

/// A matcher on the XML-RPC method name.
pub fn rpc(method: &str) -> wiremock::matchers::BodyContainsMatcher {
    wiremock::matchers::body_string_contains(format!("<methodName>{method}</methodName>"))
}

/// An XML-RPC success answer `[true, <string>doc</string>, 0]`, the document
/// entity-escaped the way xmlrpc-c writes it.
pub fn ok_string(doc: &str) -> String {
    let escaped = doc
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<params>\r\n\
         <param><value><array><data>\r\n<value><boolean>1</boolean></value>\r\n\
         <value><string>{escaped}</string></value>\r\n<value><i4>0</i4></value>\r\n\
         </data></array></value></param>\r\n</params>\r\n</methodResponse>\r\n"
    )
}

/// An XML-RPC success answer carrying an `<i4>`.
pub fn ok_int(v: i64) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<params>\r\n\
         <param><value><array><data>\r\n<value><boolean>1</boolean></value>\r\n\
         <value><i4>{v}</i4></value>\r\n<value><i4>0</i4></value>\r\n\
         </data></array></value></param>\r\n</params>\r\n</methodResponse>\r\n"
    )
}

/// An OpenNebula failure answer (5 elements).
pub fn failure(message: &str, code: i64, resp_id: i64) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<params>\r\n\
         <param><value><array><data>\r\n<value><boolean>0</boolean></value>\r\n\
         <value><string>{}</string></value>\r\n<value><i4>{code}</i4></value>\r\n\
         <value><i4>{resp_id}</i4></value>\r\n<value><i8>-1</i8></value>\r\n\
         </data></array></value></param>\r\n</params>\r\n</methodResponse>\r\n",
        message.replace('&', "&amp;").replace('<', "&lt;")
    )
}
