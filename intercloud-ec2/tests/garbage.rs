//! Property tests: whatever a site answers — random bytes, truncated or mutated
//! recordings, HTML pages — the parsers return a clear error or a value, never panic,
//! and broken success answers are `Protocol` errors.

use std::path::Path;

use intercloud_core::{ErrorKind, SiteId};
use intercloud_ec2::client::parse_success;
use intercloud_ec2::error::{api_error, parse_error_body};
use intercloud_ec2::{model, vpn, xml};
use proptest::prelude::*;

/// Every recorded success answer with its action name.
fn recordings() -> Vec<(&'static str, String)> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ec2");
    [
        ("RunInstances", "moto-5.2.5/run_instances.xml"),
        (
            "DescribeInstances",
            "moto-5.2.5/describe_instances_tag_filter.xml",
        ),
        ("TerminateInstances", "moto-5.2.5/terminate_instances.xml"),
        (
            "DescribeVpnConnections",
            "moto-5.2.5/describe_vpn_connections.xml",
        ),
        (
            "CreateVpnConnection",
            "moto-5.2.5/create_vpn_connection.xml",
        ),
        ("DescribeImages", "libcloud/describe_images.xml"),
        ("DescribeInstances", "libcloud/describe_instances.xml"),
        ("RunInstances", "libcloud/run_instances_idem.xml"),
        (
            "DescribeInstanceTypes",
            "moto-5.2.5-intercloud/describe_instance_types.xml",
        ),
        (
            "DescribeAvailabilityZones",
            "libcloud/describe_availability_zones.xml",
        ),
    ]
    .iter()
    .map(|(a, f)| {
        let body = std::fs::read_to_string(base.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        (*a, body)
    })
    .collect()
}

/// Runs every reader of this crate over `body` as an answer to `action`.
fn read_everything(action: &str, body: &str) {
    let site = SiteId::new("p");
    let _ = parse_error_body(body);
    for status in [200u16, 400, 401, 500, 503] {
        let e = api_error(&site, action, status, body);
        assert!(!e.message().is_empty());
    }
    let _ = vpn::parse_customer_gateway_configuration(body);
    if let Ok(root) = xml::parse(body) {
        let _ = model::run_instances(&root);
        let _ = model::describe_instances(&root);
        let _ = model::terminate_instances(&root);
        let _ = model::instance_types(&root);
        let _ = model::images(&root);
        let _ = model::availability_zones(&root);
        let _ = model::account_attribute(&root, "max-instances");
        let _ = vpn::parse_vpn_connections(&root);
    }
    match parse_success(&site, action, body) {
        Ok(root) => assert_eq!(root.name, format!("{action}Response")),
        Err(e) => assert!(
            e.to_string().contains(action),
            "the error names the call: {e}"
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(body in ".{0,400}") {
        read_everything("DescribeInstances", &body);
    }

    #[test]
    fn random_xml_like_text_never_panics(body in "(<[a-zA-Z/!?]{0,3}[a-zA-Z:]{0,8}( [a-z]+=\"[^\"]{0,5}\")?/?>|&[a-z#0-9]{0,5};?|[^<&]{0,6}){0,60}") {
        read_everything("RunInstances", &body);
    }

    #[test]
    fn truncated_recordings_are_protocol_errors(pick in 0usize..10, frac in 0.0f64..1.0) {
        let recs = recordings();
        let (action, body) = &recs[pick % recs.len()];
        let body = body.trim_end();
        let mut cut = ((body.len() as f64) * frac) as usize;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        let truncated = &body[..cut];
        read_everything(action, truncated);
        let e = parse_success(&SiteId::new("p"), action, truncated).expect_err("a truncated answer must not parse");
        prop_assert_eq!(e.kind(), ErrorKind::Protocol, "{}", e);
    }

    #[test]
    fn mutated_recordings_never_panic(pick in 0usize..10, edits in prop::collection::vec((0.0f64..1.0, any::<u8>()), 1..8)) {
        let recs = recordings();
        let (action, body) = &recs[pick % recs.len()];
        let mut bytes = body.clone().into_bytes();
        for (pos, b) in edits {
            let i = ((bytes.len() as f64) * pos) as usize % bytes.len();
            bytes[i] = b;
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        read_everything(action, &text);
    }

    #[test]
    fn html_pages_are_protocol_errors(title in "[a-zA-Z0-9 ]{0,30}", para in "[a-zA-Z0-9 .]{0,80}", close in any::<bool>()) {
        let end = if close { "</p></body></html>" } else { "" };
        let page = format!("<!doctype html>\n<html lang=\"en\"><head><title>{title}</title></head><body><h1>{title}</h1><p>{para}{end}");
        let e = parse_success(&SiteId::new("p"), "DescribeInstances", &page).expect_err("HTML is not an answer");
        prop_assert_eq!(e.kind(), ErrorKind::Protocol);
        prop_assert!(e.to_string().contains("HTML") || e.to_string().contains("<html>"), "{}", e);
        let err = api_error(&SiteId::new("p"), "DescribeInstances", 502, &page);
        prop_assert_eq!(err.kind(), ErrorKind::Unavailable);
        prop_assert!(err.to_string().contains("HTML page"), "{}", err);
    }
}

#[test]
fn every_recording_parses_whole() {
    for (action, body) in recordings() {
        parse_success(&SiteId::new("p"), action, &body).unwrap_or_else(|e| panic!("{action}: {e}"));
        // Losing only the last `>` is still a truncated answer.
        let t = body.trim_end();
        let e = parse_success(&SiteId::new("p"), action, &t[..t.len() - 1]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{action}: {e}");
    }
}
