use std::time::Duration;

use super::xmlrpc::{parse_call, render_value, XVal};
use crate::config::FederationConfig;
use crate::engine::Engine;
use crate::server::{dispatch, HttpRequest, HttpResponse};

const SESSION: &str = "oneadmin:nii-password";

fn engine() -> Engine {
    let mut cfg = FederationConfig::seed_default().sites.remove(1);
    cfg.offerings[0].capacity = 3;
    Engine::new(cfg, 5, 1.0, 2, tokio::time::Instant::now())
}

fn body(method: &str, params: &[XVal]) -> String {
    let p: String = params
        .iter()
        .map(|v| format!("<param>{}</param>", render_value(v)))
        .collect();
    format!("<?xml version='1.0'?>\n<methodCall>\n<methodName>{method}</methodName>\n<params>{p}</params></methodCall>")
}

fn req(text: String) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        path: "/RPC2".into(),
        query: String::new(),
        headers: Default::default(),
        body: text.into(),
    }
}

async fn raw(e: &Engine, method: &str, params: &[XVal]) -> HttpResponse {
    dispatch(e, req(body(method, params))).await
}

/// Calls a method with the session prepended and returns the response array.
async fn call(e: &Engine, method: &str, params: &[XVal]) -> Vec<XVal> {
    let mut all = vec![XVal::Str(SESSION.into())];
    all.extend_from_slice(params);
    let r = raw(e, method, &all).await;
    assert_eq!(r.status, 200);
    // Re-read the response with the request parser by wrapping it as a call.
    let text = r.text().replace("methodResponse", "methodCall").replacen(
        "<params>",
        "<methodName>r</methodName><params>",
        1,
    );
    let (_, mut v) = parse_call(&text).unwrap_or_else(|f| panic!("{f:?}: {}", r.text()));
    match v.pop() {
        Some(XVal::Array(items)) => items,
        other => panic!("{other:?}"),
    }
}

fn s(v: &str) -> XVal {
    XVal::Str(v.into())
}
fn i(v: i64) -> XVal {
    XVal::Int(v)
}

fn text(v: &[XVal]) -> &str {
    match &v[1] {
        XVal::Str(s) => s,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn instantiate_progresses_and_terminates() {
    let e = engine();
    let extra = "CONTEXT=[NETWORK=\"YES\",USER_DATA=\"I2Nsb3VkLWNvbmZpZwo=\",USER_DATA_ENCODING=\"base64\"]\nINTERCLOUD_CLUSTER=\"c1\"\nINTERCLOUD_KEY=\"k-1\"";
    let r = call(
        &e,
        "one.template.instantiate",
        &[
            i(0),
            s("w-0"),
            XVal::Bool(false),
            s(extra),
            XVal::Bool(false),
        ],
    )
    .await;
    assert_eq!(r[0], XVal::Bool(true), "{r:?}");
    assert_eq!(r.len(), 3);
    let XVal::Int(id) = r[1] else { panic!("{r:?}") };
    let raw_resp = raw(&e, "one.vm.info", &[s(SESSION), i(id)]).await;
    assert!(
        raw_resp.text().contains("<value><i4>0</i4></value>"),
        "xmlrpc-c writes i4"
    );
    assert!(
        raw_resp
            .text()
            .contains("&lt;STATE&gt;1&lt;/STATE&gt;&lt;LCM_STATE&gt;0&lt;/LCM_STATE&gt;"),
        "entity-escaped, PENDING first"
    );
    tokio::time::advance(Duration::from_millis(4000)).await;
    let doc = call(&e, "one.vm.info", &[i(id)]).await;
    assert!(
        text(&doc).contains("<STATE>3</STATE><LCM_STATE>1</LCM_STATE>")
            || text(&doc).contains("<LCM_STATE>2</LCM_STATE>"),
        "{}",
        text(&doc)
    );
    tokio::time::advance(Duration::from_secs(20)).await;
    let doc = call(&e, "one.vm.info", &[i(id)]).await;
    let d = text(&doc);
    assert!(
        d.contains("<STATE>3</STATE><LCM_STATE>3</LCM_STATE>"),
        "{d}"
    );
    assert!(d.contains("<USER_TEMPLATE><INTERCLOUD_CLUSTER><![CDATA[c1]]></INTERCLOUD_CLUSTER><INTERCLOUD_KEY><![CDATA[k-1]]></INTERCLOUD_KEY></USER_TEMPLATE>"), "{d}");
    assert!(d.contains("<ETH0_IP><![CDATA[10.2."), "{d}");
    assert!(d.contains("<NAME>w-0</NAME>"));
    assert!(
        !d.contains("SSH_PUBLIC_KEY"),
        "extra CONTEXT replaces the template's whole CONTEXT"
    );

    let pool = call(
        &e,
        "one.vmpool.infoextended",
        &[i(-2), i(-1), i(-1), i(-1), s("")],
    )
    .await;
    assert!(text(&pool).contains("INTERCLOUD_KEY"));
    let page = call(
        &e,
        "one.vmpool.infoextended",
        &[i(-2), i(0), i(-10), i(-1), s("")],
    )
    .await;
    assert_eq!(text(&page).matches("<VM>").count(), 1);
    let short = call(&e, "one.vmpool.info", &[i(-2), i(-1), i(-1), i(-1)]).await;
    assert!(
        !text(&short).contains("INTERCLOUD_KEY"),
        "short bodies drop custom labels"
    );

    let r = call(&e, "one.vm.action", &[s("terminate-hard"), i(id)]).await;
    assert_eq!(r[1], XVal::Int(id));
    let doc = call(&e, "one.vm.info", &[i(id)]).await;
    assert!(text(&doc).contains("<STATE>6</STATE>"));
    let all = call(
        &e,
        "one.vmpool.infoextended",
        &[i(-2), i(-1), i(-1), i(-2), s("")],
    )
    .await;
    assert!(
        text(&all).contains("<STATE>6</STATE>"),
        "state -2 shows DONE"
    );
    let live = call(
        &e,
        "one.vmpool.infoextended",
        &[i(-2), i(-1), i(-1), i(-1), s("")],
    )
    .await;
    assert_eq!(text(&live), "<VM_POOL></VM_POOL>", "state -1 hides DONE");
    let r = call(&e, "one.vm.action", &[s("terminate"), i(id)]).await;
    assert_eq!(r[0], XVal::Bool(true), "terminate on DONE succeeds");
    assert_eq!(e.records()[0].state, "deleted");
}

#[tokio::test(start_paused = true)]
async fn errors_faults_and_quota() {
    let e = engine();
    let r = raw(&e, "one.vm.info", &[s("oneadmin:wrong"), i(1)]).await;
    assert!(
        r.text().contains("User couldn&apos;t be authenticated")
            || r.text().contains("User couldn't be authenticated")
    );
    assert!(
        r.text().contains(
            "<value><i4>256</i4></value>\n<value><i4>-1</i4></value>\n<value><i8>-1</i8></value>"
        ),
        "{}",
        r.text()
    );
    assert!(!r.text().contains("nii-password"));
    let r = call(&e, "one.vm.info", &[i(999)]).await;
    assert_eq!(r.len(), 5);
    assert_eq!(
        r[1],
        s("[one.vm.info] Error getting virtual machine [999].")
    );
    assert_eq!(r[2], XVal::Int(1024));
    assert_eq!(r[3], XVal::Int(999));
    let r = call(&e, "one.vm.action", &[s("explode"), i(1)]).await;
    assert_eq!(
        r[1],
        s("[one.vm.action] Action \"explode\" is not supported")
    );
    let f = raw(&e, "one.vm.info", &[s(SESSION), s("1")]).await;
    assert!(
        f.text().contains("<fault>") && f.text().contains("-501"),
        "{}",
        f.text()
    );
    let f = raw(&e, "one.vm.explode", &[s(SESSION)]).await;
    assert!(f.text().contains("Method 'one.vm.explode' not defined"));
    let f = dispatch(&e, req("<methodCall><methodName>x".into())).await;
    assert!(f.text().contains("-503"));
    let r = call(&e, "one.vmpool.info", &[i(-5), i(-1), i(-1), i(-1)]).await;
    assert_eq!(r[2], XVal::Int(4096));
    let r = call(
        &e,
        "one.vmpool.infoextended",
        &[i(-2), i(-1), i(-1), i(-1), s("INTERCLOUD_KEY=k")],
    )
    .await;
    assert_eq!(r[2], XVal::Int(8192));
    for _ in 0..3 {
        let r = call(
            &e,
            "one.template.instantiate",
            &[i(0), s(""), XVal::Bool(false), s(""), XVal::Bool(false)],
        )
        .await;
        assert_eq!(r[0], XVal::Bool(true), "{r:?}");
    }
    let r = call(
        &e,
        "one.template.instantiate",
        &[i(0), s(""), XVal::Bool(false), s(""), XVal::Bool(false)],
    )
    .await;
    assert_eq!(r[2], XVal::Int(512), "{r:?}");
    let r = call(
        &e,
        "one.vm.allocate",
        &[s("NAME=\"x\" CPU=\"1\" MEMORY="), XVal::Bool(false)],
    )
    .await;
    assert_eq!(r[2], XVal::Int(8192));
    assert!(matches!(&r[1], XVal::Str(m) if m.starts_with("[one.vm.allocate] Parse error")));
    let get = dispatch(
        &e,
        HttpRequest {
            method: "GET".into(),
            ..req(String::new())
        },
    )
    .await;
    assert_eq!(get.status, 405);
    let other = dispatch(
        &e,
        HttpRequest {
            path: "/".into(),
            ..req(String::new())
        },
    )
    .await;
    assert_eq!(other.status, 404);
}

#[tokio::test(start_paused = true)]
async fn catalog_calls_and_hold_release() {
    let e = engine();
    let v = call(&e, "one.system.version", &[]).await;
    assert_eq!(v[1], s("6.10.0"));
    let t = call(&e, "one.templatepool.info", &[i(-2), i(-1), i(-1)]).await;
    assert_eq!(text(&t).matches("<VMTEMPLATE>").count(), 3);
    let t = call(&e, "one.template.info", &[i(1)]).await;
    assert!(text(&t).contains("<NAME>medium</NAME>"));
    let u = call(&e, "one.user.info", &[i(-1)]).await;
    assert!(
        text(&u).contains("<VMS><![CDATA[303]]></VMS>"),
        "{}",
        text(&u)
    );
    assert!(!text(&u).contains("nii-password"));
    let h = call(&e, "one.hostpool.info", &[]).await;
    assert!(text(&h).contains("<HOST_SHARE>"));
    let r = call(
        &e,
        "one.vm.allocate",
        &[
            s("NAME=\"held\" CPU=\"1\" VCPU=\"1\" MEMORY=\"1024\" LABEL=\"x\""),
            XVal::Bool(true),
        ],
    )
    .await;
    let XVal::Int(id) = r[1] else { panic!("{r:?}") };
    tokio::time::advance(Duration::from_secs(60)).await;
    let d = call(&e, "one.vm.info", &[i(id)]).await;
    assert!(text(&d).contains("<STATE>2</STATE>"), "held");
    call(&e, "one.vm.action", &[s("release"), i(id)]).await;
    tokio::time::advance(Duration::from_secs(60)).await;
    let d = call(&e, "one.vm.info", &[i(id)]).await;
    assert!(
        text(&d).contains("<STATE>3</STATE><LCM_STATE>3</LCM_STATE>"),
        "{}",
        text(&d)
    );
    let r = call(
        &e,
        "one.vm.update",
        &[i(id), s("INTERCLOUD_ROLE=\"worker\""), i(1)],
    )
    .await;
    assert_eq!(r[0], XVal::Bool(true));
    let d = call(&e, "one.vm.info", &[i(id)]).await;
    assert!(
        text(&d).contains(
            "<LABEL><![CDATA[x]]></LABEL><INTERCLOUD_ROLE><![CDATA[worker]]></INTERCLOUD_ROLE>"
        ),
        "{}",
        text(&d)
    );
    assert_eq!(e.calls()["one.vm.info"], 3);
}

#[tokio::test(start_paused = true)]
async fn poweroff_then_resume_boots_the_same_vm_again() {
    let e = engine();
    let r = call(
        &e,
        "one.template.instantiate",
        &[i(0), s("w-0"), XVal::Bool(false), s(""), XVal::Bool(false)],
    )
    .await;
    let XVal::Int(id) = r[1] else { panic!("{r:?}") };
    let r = call(&e, "one.vm.action", &[s("resume"), i(id)]).await;
    assert_eq!(r[0], XVal::Bool(false), "a PENDING VM cannot be resumed");
    assert!(
        text(&r).contains("Error performing action \"resume\""),
        "{r:?}"
    );
    tokio::time::advance(Duration::from_secs(60)).await;
    let r = call(&e, "one.vm.action", &[s("poweroff"), i(id)]).await;
    assert_eq!(r[0], XVal::Bool(true), "{r:?}");
    let doc = call(&e, "one.vm.info", &[i(id)]).await;
    assert!(
        text(&doc).contains("<STATE>8</STATE><LCM_STATE>0</LCM_STATE>"),
        "POWEROFF"
    );
    assert_eq!(e.records()[0].state, "stopped");

    let r = call(&e, "one.vm.action", &[s("resume"), i(id)]).await;
    assert_eq!(r[0], XVal::Bool(true), "{r:?}");
    let doc = call(&e, "one.vm.info", &[i(id)]).await;
    assert!(
        text(&doc).contains("<STATE>3</STATE><LCM_STATE>20</LCM_STATE>"),
        "BOOT_POWEROFF: {}",
        text(&doc)
    );
    tokio::time::advance(Duration::from_secs(60)).await;
    let doc = call(&e, "one.vm.info", &[i(id)]).await;
    assert!(
        text(&doc).contains("<STATE>3</STATE><LCM_STATE>3</LCM_STATE>"),
        "RUNNING"
    );
    let r = call(&e, "one.vm.action", &[s("resume"), i(id)]).await;
    assert_eq!(r[0], XVal::Bool(false), "a RUNNING VM cannot be resumed");
    assert_eq!(e.records().len(), 1);
    call(&e, "one.vm.action", &[s("terminate-hard"), i(id)]).await;
    let r = call(&e, "one.vm.action", &[s("resume"), i(id + 1000)]).await;
    assert!(text(&r).contains("Error getting virtual machine"), "{r:?}");
}
