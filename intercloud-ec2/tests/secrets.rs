//! Secrets (secret key, session token, signatures, pre-shared keys) never appear in
//! `Debug` output or errors; transport failures are clear, temporary errors.

use std::time::Duration;

use intercloud_core::{CloudProvider, Credentials, ErrorKind, VmFilter};
use intercloud_ec2::{Ec2Builder, Sigv2Method};
use secrecy::SecretString;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "S3CRET-wJalrXUtnFEMI";
const TOKEN: &str = "T0KEN-FQoGZXIvYXdzE";

fn builder(endpoint: &str) -> Ec2Builder {
    Ec2Builder::aws()
        .site("s")
        .region("us-east-1")
        .endpoint(endpoint)
        .credentials(Credentials::ec2("AKIDPUBLIC", SECRET, Some(TOKEN.into())))
}

fn assert_clean(text: &str) {
    assert!(!text.contains(SECRET), "secret key leaked: {text}");
    assert!(!text.contains(TOKEN), "session token leaked: {text}");
}

#[test]
fn debug_of_builder_provider_client_fabric_and_credentials() {
    let b = builder("http://127.0.0.1:9/");
    assert_clean(&format!("{b:?} {b:#?}"));
    let p = b.clone().build().unwrap();
    assert_clean(&format!("{p:?} {:?} {:?}", p.client(), p.vpn_fabric()));
    assert!(
        format!("{p:?}").contains("AKIDPUBLIC"),
        "the key id is shown"
    );
    let v2 = b.signature_v2(Sigv2Method::HmacSha1).build().unwrap();
    assert_clean(&format!("{v2:?}"));
    let c = intercloud_ec2::AwsCredentials::new(
        "AKIDPUBLIC",
        SecretString::from(SECRET),
        Some(SecretString::from(TOKEN)),
    );
    assert_clean(&format!("{c:?}"));
}

#[tokio::test]
async fn refused_connection_is_a_temporary_unavailable_error() {
    // A loopback port that was just free: nothing listens on it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let p = builder(&format!("http://127.0.0.1:{port}/"))
        .build()
        .unwrap();
    let e = p.list_vms(&VmFilter::default()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_temporary());
    assert!(e.to_string().contains("DescribeInstances"), "{e}");
    assert_eq!(e.site().map(|s| s.as_str()), Some("s"));
    assert_clean(&format!("{e} {e:?}"));
}

#[tokio::test]
async fn slow_answer_is_a_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let p = builder(&server.uri())
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let e = p.capacity().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_temporary());
    assert_clean(&format!("{e} {e:?}"));
}

#[tokio::test]
async fn error_text_from_the_cloud_does_not_carry_our_signature() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(403).set_body_string(
            "<Response><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error></Errors></Response>",
        ))
        .mount(&server)
        .await;
    let p = builder(&server.uri()).build().unwrap();
    let e = p.list_vms(&VmFilter::default()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert!(
        e.to_string().contains("check the access key id and secret"),
        "{e}"
    );
    let text = format!("{e} {e:?}");
    assert_clean(&text);
    let req = &server.received_requests().await.unwrap()[0];
    let auth = req.headers.get("authorization").unwrap().to_str().unwrap();
    let sig = auth.rsplit("Signature=").next().unwrap();
    assert_eq!(sig.len(), 64);
    assert!(!text.contains(sig), "signature leaked: {text}");
    let token = req
        .headers
        .get("x-amz-security-token")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(token, TOKEN, "the token is sent (signed) to the cloud only");
}
