//! Property tests: whatever oned (or anything pretending to be it) answers, decoding
//! returns a value or a clear error and never panics; whatever values a caller gives,
//! rendering and encoding either refuse them clearly or carry them exactly.

mod support;

use intercloud_opennebula::model::{
    parse_host_pool, parse_template, parse_user_quota, parse_vm, parse_vm_pool,
};
use intercloud_opennebula::xmlrpc::{decode_call, decode_response, encode_call, Response, Value};
use intercloud_opennebula::Template;
use proptest::prelude::*;
use support::fixture;

const RESPONSES: [&str; 12] = [
    "wire/vm_info_ok.response.xml",
    "wire/vmpool_infoextended.response.xml",
    "wire/vm_info_noexists.response.xml",
    "wire/vm_info_bad_session.response.xml",
    "wire/vm_action_terminate_hard.response.xml",
    "wire/vm_action_unsupported.response.xml",
    "wire/template_instantiate.response.xml",
    "wire/vm_allocate.response.xml",
    "wire/fault_type_int.response.xml",
    "wire/fault_not_enough_params.response.xml",
    "wire/fault_no_such_method.response.xml",
    "wire/fault_parse.response.xml",
];

/// Decodes like the client does, down to the VM documents; must never panic.
fn decode_all_layers(body: &str) {
    if let Ok(Response::Success(Value::Array(items))) = decode_response(body) {
        for item in items {
            if let Value::String(doc) = item {
                let _ = parse_vm(&doc);
                let _ = parse_vm_pool(&doc);
            }
        }
    }
}

#[test]
fn every_recorded_response_decodes() {
    for name in RESPONSES {
        let r = decode_response(&fixture(name));
        assert!(r.is_ok(), "{name}: {r:?}");
    }
    let Response::Success(Value::Array(items)) =
        decode_response(&fixture("wire/vmpool_infoextended.response.xml")).unwrap()
    else {
        panic!("array")
    };
    let Value::String(doc) = &items[1] else {
        panic!("string")
    };
    assert_eq!(parse_vm_pool(doc).unwrap().len(), 1);
}

#[test]
fn docs_examples_parse_with_their_states() {
    let pending = parse_vm(&fixture("docs-examples/vm-pending.xml")).unwrap();
    assert_eq!((pending.id, pending.state, pending.lcm_state), (0, 1, 0));
    assert!(pending.user_template.is_empty() && pending.ips.is_empty());
    let backup = parse_vm(&fixture("docs-examples/vm-active-lcm69-backup.xml")).unwrap();
    assert_eq!(backup.user_template["ARCH"], "x86_64");
    assert_eq!(
        intercloud_opennebula::state::vm_state(backup.state, backup.lcm_state),
        intercloud_core::VmState::Pending
    );
}

#[test]
fn unknown_elements_anywhere_are_ignored() {
    let doc = fixture("docs-examples/vm-pending.xml");
    let noisy = doc
        .replace(
            "<STATE>",
            "<NEW_7X_FIELD a=\"1\"><X><Y/></X></NEW_7X_FIELD><STATE>",
        )
        .replace(
            "<TEMPLATE>",
            "<TEMPLATE><PLAN_ID>3</PLAN_ID><NIC><FUTURE/></NIC>",
        )
        .replace("</VM>", "<BACKUPS><BACKUP_IDS/></BACKUPS><ZZZ>q</ZZZ></VM>");
    let a = parse_vm(&doc).unwrap();
    let b = parse_vm(&noisy).unwrap();
    assert_eq!(
        (a.id, a.name, a.state, a.lcm_state),
        (b.id, b.name, b.state, b.lcm_state)
    );
}

#[test]
fn other_documents_refuse_garbage_with_messages() {
    for bad in [
        "",
        "<",
        "<USER>",
        "<HOST_POOL><HOST><STATE>x</STATE></HOST></HOST_POOL>",
    ] {
        assert!(parse_user_quota(bad).is_err());
        assert!(parse_host_pool(bad).is_err());
        assert!(parse_template(bad).is_err());
    }
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        any::<bool>().prop_map(Value::Bool),
        "[^\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\u{fffe}\u{ffff}]{0,30}".prop_map(Value::String),
        Just(Value::Nil),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(("[a-zA-Z]{1,8}", inner), 0..3).prop_map(Value::Struct),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(body in any::<String>()) {
        decode_all_layers(&body);
        let _ = decode_call(&body);
        let _ = parse_vm(&body);
        let _ = parse_user_quota(&body);
        let _ = parse_host_pool(&body);
    }

    #[test]
    fn xml_shaped_noise_never_panics(body in "(<[A-Za-z_]{1,6}>|</[A-Za-z_]{1,6}>|<[a-z]{1,4}/>|<!\\[CDATA\\[|\\]\\]>|&[a-z#0-9]{0,5};|[a-z0-9 \"'<>&]){0,40}") {
        decode_all_layers(&body);
        let _ = parse_vm(&body);
    }

    #[test]
    fn mutated_recordings_never_panic(
        which in 0..RESPONSES.len(),
        cut in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        insert in "(<|>|&|<i4>|</value>|<string>|&lt;|&gt;|\\]\\]>|x|9|-){1,3}",
    ) {
        let original = fixture(RESPONSES[which]);
        let bytes = original.as_bytes();
        let truncated = String::from_utf8_lossy(&bytes[..cut.index(bytes.len() + 1)]).into_owned();
        decode_all_layers(&truncated);
        let mut spliced = original.clone();
        let pos = at.index(spliced.len() + 1);
        if spliced.is_char_boundary(pos) {
            spliced.insert_str(pos, &insert);
            decode_all_layers(&spliced);
        }
    }

    #[test]
    fn wrong_scalar_types_are_errors(text in "[g-hj-mo-z][^<&]{0,10}") {
        for tag in ["int", "i4", "i8", "boolean", "double"] {
            let body = format!("<methodResponse><params><param><value><{tag}>{text}</{tag}></value></param></params></methodResponse>");
            prop_assert!(decode_response(&body).is_err(), "{}", body);
        }
    }

    #[test]
    fn values_round_trip_through_the_wire(params in proptest::collection::vec(value(), 0..5)) {
        let body = encode_call("one.test", &params).unwrap();
        let (method, back) = decode_call(&body).unwrap();
        prop_assert_eq!(method, "one.test");
        prop_assert_eq!(back, params);
    }

    #[test]
    fn template_values_with_markup_quotes_and_newlines(
        values in proptest::collection::vec("(\\]\\]>|\"|\\\\|\n|\r|<|&|x|\\$|,|\\[|=|\u{1}){0,12}", 1..4),
    ) {
        let mut t = Template::new();
        for (i, v) in values.iter().enumerate() {
            t = t.single(format!("V{i}"), v.clone());
        }
        match t.render() {
            Ok(text) => {
                prop_assert!(!text.contains("]]>"));
                // The template travels as an XML-RPC string unchanged, and oned's
                // lexer reads each value back exactly.
                let body = encode_call("one.vm.allocate", &[Value::string("u:p"), Value::string(text.clone())]).unwrap();
                let (_, back) = decode_call(&body).unwrap();
                prop_assert_eq!(&back[1], &Value::string(text.clone()));
                let parsed = support::fake_oned::parse_template(&text).unwrap();
                for (i, v) in values.iter().enumerate() {
                    prop_assert_eq!(&parsed[i].1[0].1, v);
                }
            }
            Err(e) => {
                let m = e.message().to_owned();
                prop_assert!(m.contains("]]>") || m.contains("ends with") || m.contains("control character"), "{}", m);
                let refusable = values.iter().any(|v| v.contains("]]>") || v.ends_with('\\') || v.contains(char::from(1)));
                prop_assert!(refusable, "refused without cause: {}", m);
            }
        }
    }
}
