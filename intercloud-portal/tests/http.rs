//! HTTP-level tests of every route: sign-on, sessions, CSRF, keys, request → plan →
//! deploy → progress → repair → destroy, tenancy, and secrets kept out of every
//! response body and log line.

mod common;

use std::net::IpAddr;

use axum::http::StatusCode;
use common::*;
use intercloud_core::{SiteId, Vault};

const GET_ROUTES: [&str; 6] = [
    "/credentials",
    "/request",
    "/clusters",
    "/clusters/abc",
    "/clusters/abc/progress",
    "/clusters/abc/events",
];

const POST_ROUTES: [&str; 9] = [
    "/login",
    "/logout",
    "/credentials/hokkaido",
    "/credentials/hokkaido/test",
    "/credentials/hokkaido/delete",
    "/request",
    "/drafts/abc/confirm",
    "/clusters/abc/repair",
    "/clusters/abc/destroy",
];

#[tokio::test]
async fn login_page_sets_a_secure_httponly_samesite_session_with_csrf() {
    let h = harness(None).await;
    let mut c = Client::new(&h);
    let r = c.get("/login").await;
    assert_eq!(r.status, StatusCode::OK);
    let cookie = r.set_cookie.first().expect("a session cookie");
    for attr in [
        "ic_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Path=/",
    ] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(
        csrf_in(&r.body).is_some_and(|t| t.len() == 64),
        "{}",
        r.body
    );
    let r = c.get("/").await;
    assert_eq!(r.location.as_deref(), Some("/login"));
    // The same session is kept (no new cookie) on the next request.
    let r = c.get("/login").await;
    assert!(r.set_cookie.is_empty());
}

#[tokio::test]
async fn every_page_needs_a_signed_in_user() {
    let h = harness(None).await;
    let mut c = Client::new(&h);
    for path in GET_ROUTES {
        let r = c.get(path).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.location.as_deref(), Some("/login"), "{path}");
    }
    // With a valid CSRF token but no user, actions redirect to login too.
    for path in POST_ROUTES.iter().filter(|p| !p.starts_with("/log")) {
        let r = c
            .post(
                path,
                &[("identity", "x"), ("secret", "y"), ("choice", "planner")],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.location.as_deref(), Some("/login"), "{path}");
    }
}

#[tokio::test]
async fn local_login_checks_the_password_and_renews_the_session() {
    let h = harness(None).await;
    let mut c = Client::new(&h);
    let r = c
        .post("/login", &[("user", "alice"), ("password", "wrong")])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("wrong user name or password"));
    let r = c
        .post("/login", &[("user", "mallory"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let before = c.cookie.clone().unwrap();
    let r = c
        .post("/login", &[("user", "alice"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let after = c.cookie.clone().unwrap();
    assert_ne!(before, after, "login must issue a new session id");
    let r = c.get("/clusters").await;
    assert!(
        r.body.contains("signed in as <b id=\"user\">alice</b>"),
        "{}",
        r.body
    );
    // The pre-login session id is dead.
    let mut old = Client::new(&h);
    old.cookie = Some(before);
    assert_eq!(old.get("/clusters").await.status, StatusCode::SEE_OTHER);
    // Logout ends the session.
    let r = c.post("/logout", &[]).await;
    assert_eq!(r.location.as_deref(), Some("/login"));
    assert!(r.set_cookie[0].contains("Max-Age=0"));
    let mut again = Client::new(&h);
    again.cookie = Some(after);
    assert_eq!(again.get("/clusters").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn every_post_without_the_sessions_csrf_token_is_rejected() {
    let h = harness(None).await;
    let mut alice = Client::login(&h, "alice").await;
    let (id, secret) = accepted(&h, "hokkaido");
    let mut other = Client::new(&h);
    let foreign_token = other.csrf().await;
    for path in POST_ROUTES {
        for token in [None, Some("0".repeat(64)), Some(foreign_token.clone())] {
            let mut form = vec![("identity", id.as_str()), ("secret", secret.as_str())];
            if let Some(t) = &token {
                form.push(("csrf", t.as_str()));
            }
            let r = alice.send("POST", path, Some(&form)).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path} with {token:?}");
            assert!(r.body.contains("security token"));
        }
    }
    // Nothing happened: no keys stored, still signed in.
    assert!(!alice.get("/credentials").await.body.contains(&id));
    assert_eq!(alice.get("/clusters").await.status, StatusCode::OK);
}

#[tokio::test]
async fn sso_header_is_trusted_only_from_the_configured_proxy() {
    let proxy: IpAddr = "127.0.0.9".parse().unwrap();
    let h = harness(Some(proxy)).await;
    let logs = capture_logs();

    let mut via_proxy = Client::new(&h);
    via_proxy.peer = "127.0.0.9:40000".parse().unwrap();
    via_proxy.headers = vec![("X-Remote-User".into(), "carol@uni.example".into())];
    let r = via_proxy.get("/clusters").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("carol@uni.example"));
    assert!(r.set_cookie[0].contains("HttpOnly") && r.set_cookie[0].contains("Secure"));
    // REMOTE_USER works too, and a different user gets a different session.
    let mut dave = Client::new(&h);
    dave.peer = via_proxy.peer;
    dave.cookie = via_proxy.cookie.clone();
    dave.headers = vec![("REMOTE_USER".into(), "dave".into())];
    let r = dave.get("/clusters").await;
    assert!(r.body.contains("<b id=\"user\">dave</b>"), "{}", r.body);
    assert_ne!(dave.cookie, via_proxy.cookie);

    // The same header from any other address is ignored.
    let mut spoof = Client::new(&h);
    spoof.headers = vec![("X-Remote-User".into(), "carol@uni.example".into())];
    let r = spoof.get("/clusters").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location.as_deref(), Some("/login"));
    // And carol's cookie replayed from elsewhere is not enough in SSO mode.
    let mut stolen = Client::new(&h);
    stolen.cookie = via_proxy.cookie.clone();
    assert_eq!(stolen.get("/clusters").await.status, StatusCode::SEE_OTHER);
    assert!(logs.text().contains("untrusted address"));

    // Local login is off in SSO mode.
    let mut local = Client::new(&h);
    let page = local.get("/login").await.body;
    assert!(page.contains("single sign-on"));
    let token = csrf_in(&via_proxy.get("/request").await.body).unwrap();
    let r = local
        .send(
            "POST",
            "/login",
            Some(&[("user", "alice"), ("password", PASSWORD), ("csrf", &token)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "another session's token");

    // SSO users can act (CSRF still applies).
    let r = via_proxy
        .post(
            "/credentials/hokkaido",
            &[("identity", "k"), ("secret", "s3cr3t-value")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.body.contains("s3cr3t-value"));
    assert!(logs.text().contains("keys registered"));
    assert!(!logs.text().contains("s3cr3t-value"));
}

#[tokio::test]
async fn keys_are_write_only_tested_and_removable() {
    let h = harness(None).await;
    let logs = capture_logs();
    let mut alice = Client::login(&h, "alice").await;
    alice.register_all(&h).await;
    let page = alice.get("/credentials").await.body;
    for site in ["nii", "tokyo"] {
        let shown = format!("id=\"identity-{site}\">{}<", accepted(&h, site).0);
        assert!(page.contains(&shown), "{shown} in {page}");
    }
    for s in ["hokkaido", "nii", "tokyo"] {
        let r = alice.post(&format!("/credentials/{s}/test"), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains("connection OK"), "{}", r.body);
    }
    // Wrong secret: stored, but the site rejects it.
    let wrong = "definitely-not-the-secret-0123";
    let r = alice
        .post(
            "/credentials/hokkaido",
            &[("identity", "api-hokkaido"), ("secret", wrong)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = alice.post("/credentials/hokkaido/test", &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body.contains("connection failed") && r.body.contains("[unauthenticated]"),
        "{}",
        r.body
    );
    // Unknown site: 404; empty secret: refused.
    assert_eq!(
        alice
            .post("/credentials/mars", &[("identity", "a"), ("secret", "b")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = alice
        .post("/credentials/nii", &[("identity", "a"), ("secret", "")])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Remove.
    let r = alice.post("/credentials/tokyo/delete", &[]).await;
    assert!(r.body.contains("keys for tokyo removed"));
    assert!(r.body.contains("id=\"identity-tokyo\">none<"));
    assert!(h
        .vault
        .get("alice", &SiteId::new("tokyo"))
        .await
        .unwrap()
        .is_none());
    // The secrets were never sent back nor logged.
    let mut secrets = all_secrets(&h);
    secrets.push(wrong.into());
    let log = logs.text();
    assert!(log.contains("keys registered"), "logs are captured");
    let at_rest = std::fs::read(h.vault.path()).unwrap();
    assert!(!at_rest.is_empty());
    for s in &secrets {
        assert!(
            alice.bodies.iter().all(|b| !b.contains(s.as_str())),
            "a response body holds a secret"
        );
        assert!(!log.contains(s.as_str()), "a log line holds a secret");
        let plain = at_rest.windows(s.len()).any(|w| w == s.as_bytes());
        assert!(!plain, "the vault file holds a secret in clear");
    }
}

#[tokio::test]
async fn the_seed_cluster_is_planned_deployed_streamed_repaired_and_destroyed_on_the_simulator() {
    seed_flow(harness(None).await).await;
}

#[tokio::test]
async fn the_seed_cluster_flow_also_runs_on_in_memory_clouds() {
    seed_flow(harness_on(None, Clouds::memory()).await).await;
}

async fn seed_flow(h: Harness) {
    let logs = capture_logs();
    let mut alice = Client::login(&h, "alice").await;
    alice.register_all(&h).await;

    let form = alice.get("/request").await;
    assert!(form.body.contains("value=\"seed-portal\""), "seed defaults");
    // A bad request is explained, not deployed.
    let mut bad = seed_form("demo");
    bad[4] = ("g0_role", "bad role!");
    let r = alice.post("/request", &bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("role"), "{}", r.body);

    let r = alice.post("/request", &seed_form("seed-portal")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains("<td>small</td><td>hokkaido</td><td>3</td>"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("<td>large</td><td>nii</td><td>2</td>"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("Alternatives") && r.body.contains("value=\"alt0\""),
        "{}",
        r.body
    );
    let draft = draft_in(&r.body);
    let r = alice
        .post(
            &format!("/drafts/{draft}/confirm"),
            &[("choice", "planner")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let progress = r.location.unwrap();
    let id = progress
        .trim_start_matches("/clusters/")
        .trim_end_matches("/progress")
        .to_owned();
    // A draft is used once.
    let r = alice
        .post(
            &format!("/drafts/{draft}/confirm"),
            &[("choice", "planner")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let page = alice.get(&progress).await;
    assert!(page
        .body
        .contains(&format!("data-events=\"/clusters/{id}/events\"")));
    assert!(page.body.contains("<script src=\"/static/progress.js\">"));

    let page = wait_phase(&mut alice, &id, "running").await;
    assert!(page.contains("VPN link hokkaido ↔ nii"), "{page}");
    assert_eq!(
        page.matches("<td class=\"state\">running</td>").count(),
        5,
        "{page}"
    );
    assert!(page.contains("<td>10."), "overlay addresses shown: {page}");
    let list = alice.get("/clusters").await.body;
    assert!(
        list.contains("seed-portal") && list.contains("running"),
        "{list}"
    );
    let alive = |site: &str| h.clouds.alive(site);
    assert_eq!((alive("hokkaido"), alive("nii")), (3, 2));
    // Every node booted with the `hosts` profile naming all five nodes.
    for (site, n) in [("hokkaido", 3), ("nii", 2)] {
        let Some(uds) = h.clouds.user_data(site) else {
            continue;
        };
        assert_eq!(uds.len(), n);
        for ud in uds {
            assert!(ud.starts_with("#cloud-config"), "{site}: {ud}");
            assert!(ud.contains("/etc/intercloud/hosts"), "{site}: {ud}");
            assert!(ud.contains("ic0"), "{site}: the WireGuard overlay: {ud}");
        }
    }

    // The event stream replays the log and ends with the final phase.
    let sse = alice.get(&format!("/clusters/{id}/events")).await;
    assert_eq!(sse.status, StatusCode::OK);
    assert!(
        sse.body.contains("data: ") && sse.body.contains("running ("),
        "{}",
        sse.body
    );
    assert!(sse.body.contains("VPN link to "), "{}", sse.body);
    assert!(
        sse.body.contains("deploying 5 nodes on 2 sites"),
        "{}",
        sse.body
    );
    assert!(
        sse.body.trim_end().ends_with("event: end\ndata: running"),
        "{}",
        sse.body
    );

    // Repair after losing a VM brings it back.
    h.clouds.kill_one("hokkaido").await;
    assert_eq!(alive("hokkaido"), 2);
    let r = alice.post(&format!("/clusters/{id}/repair"), &[]).await;
    assert_eq!(r.location.as_deref(), Some(progress.as_str()));
    let _ = wait_phase(&mut alice, &id, "running").await;
    assert_eq!(alive("hokkaido"), 3);
    let sse = alice.get(&format!("/clusters/{id}/events")).await.body;
    assert!(
        sse.contains("repaired") || sse.contains("cluster is repairing"),
        "{sse}"
    );

    // Destroy leaves nothing.
    let r = alice.post(&format!("/clusters/{id}/destroy"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = wait_phase(&mut alice, &id, "destroyed").await;
    assert!(!page.contains("id=\"destroy\""));
    assert_eq!((alive("hokkaido"), alive("nii")), (0, 0));

    let log = logs.text();
    assert!(log.contains("deployment started") && log.contains("destroy finished"));
    for s in all_secrets(&h) {
        assert!(
            alice.bodies.iter().all(|b| !b.contains(s.as_str())),
            "a body holds a secret"
        );
        assert!(!log.contains(s.as_str()), "a log line holds a secret");
    }
}

#[tokio::test]
async fn one_user_can_never_see_or_act_on_anothers_keys_drafts_or_clusters() {
    let h = harness(None).await;
    let mut alice = Client::login(&h, "alice").await;
    alice.register_all(&h).await;
    let id = deploy_seed(&mut alice, "mine").await;
    let _ = wait_phase(&mut alice, &id, "running").await;
    let r = alice.post("/request", &seed_form("pending")).await;
    let alice_draft = draft_in(&r.body);

    let mut bob = Client::login(&h, "bob").await;
    for path in ["", "/progress", "/events"] {
        let r = bob.get(&format!("/clusters/{id}{path}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!r.body.contains("mine"));
    }
    for action in ["repair", "destroy"] {
        let r = bob.post(&format!("/clusters/{id}/{action}"), &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{action}");
    }
    let r = bob
        .post(
            &format!("/drafts/{alice_draft}/confirm"),
            &[("choice", "planner")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!bob.get("/clusters").await.body.contains("mine"));
    let keys = bob.get("/credentials").await.body;
    assert_eq!(
        keys.matches(">none<").count(),
        3,
        "bob sees no keys: {keys}"
    );
    // Bob's test connection uses bob's (absent) keys, not alice's.
    let r = bob.post("/credentials/hokkaido/test", &[]).await;
    assert!(r.body.contains("no keys registered for hokkaido"));
    // Bob cannot deploy on alice's keys.
    let r = bob.post("/request", &seed_form("theirs")).await;
    let r = bob
        .post(
            &format!("/drafts/{}/confirm", draft_in(&r.body)),
            &[("choice", "planner")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body.contains("you have not registered keys for"),
        "{}",
        r.body
    );

    // Alice's cluster and draft are untouched.
    let page = alice.get(&format!("/clusters/{id}")).await.body;
    assert_eq!(phase_in(&page).as_deref(), Some("running"));
    let r = alice
        .post(
            &format!("/drafts/{alice_draft}/confirm"),
            &[("choice", "alt0")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
}

#[tokio::test]
async fn a_deployment_uses_only_its_users_own_keys() {
    let h = harness(None).await;
    let mut alice = Client::login(&h, "alice").await;
    alice.register_all(&h).await;
    let mut bob = Client::login(&h, "bob").await;
    bob.register_all(&h).await;
    // Bob's hokkaido keys are wrong: his request is refused before anything is made;
    // alice's runs on her keys.
    let (api, _) = accepted(&h, "hokkaido");
    bob.post(
        "/credentials/hokkaido",
        &[("identity", &api), ("secret", "wrong-secret-xyz")],
    )
    .await;
    let r = bob.post("/request", &seed_form("bobs")).await;
    let r = bob
        .post(
            &format!("/drafts/{}/confirm", draft_in(&r.body)),
            &[("choice", "planner")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body.contains("hokkaido did not accept your keys"),
        "{}",
        r.body
    );
    let alice_id = deploy_seed(&mut alice, "alices").await;
    let _ = wait_phase(&mut alice, &alice_id, "running").await;
    let alive = |site: &str| h.clouds.alive(site);
    assert_eq!(
        (alive("hokkaido"), alive("nii")),
        (3, 2),
        "only alice's cluster exists"
    );
    assert!(bob.get("/clusters").await.body.contains("No cluster yet"));
}

#[tokio::test]
async fn debug_output_of_the_config_and_backend_holds_no_secret() {
    let h = harness(None).await;
    let config = intercloud_portal::PortalConfig {
        local_users: vec![("alice".into(), secrecy::SecretString::from(PASSWORD))],
        ..intercloud_portal::PortalConfig::default()
    };
    let text = format!("{config:?} {:?} {:?}", h.clouds.backend(), h.vault);
    assert!(text.contains("alice"));
    assert!(!text.contains(PASSWORD));
    for s in all_secrets(&h) {
        assert!(!text.contains(s.as_str()));
    }
}

#[tokio::test]
async fn assets_are_served_and_every_response_carries_the_security_headers() {
    let h = harness(None).await;
    let mut c = Client::new(&h);
    let js = c.get("/static/progress.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.body.contains("new EventSource(root.dataset.events)"));
    let css = c.get("/static/portal.css").await;
    assert!(css.body.contains("#log"));
    let mut alice = Client::login(&h, "alice").await;
    for path in ["/login", "/clusters", "/static/progress.js", "/nowhere"] {
        for client in [&mut c, &mut alice] {
            let r = client.get_full(path).await;
            let csp = r
                .headers
                .get("content-security-policy")
                .expect(path)
                .to_str()
                .unwrap();
            assert!(
                csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
                "{csp}"
            );
            assert_eq!(r.headers.get("x-frame-options").unwrap(), "DENY");
            assert_eq!(r.headers.get("x-content-type-options").unwrap(), "nosniff");
            assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");
        }
    }
    // No page has an inline script or style (the policy would block them).
    for page in alice.bodies.iter().chain(c.bodies.iter()) {
        assert!(!page.contains("<script>") && !page.contains("<style>"));
    }
}

/// The seed form asking for `fabric`.
fn seed_form_with<'a>(name: &'a str, fabric: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut f = seed_form(name);
    f.push(("fabric", fabric));
    f
}

#[tokio::test]
async fn the_vpn_fabric_chosen_on_the_form_is_deployed_and_a_bad_one_is_named() {
    let h = harness(None).await;
    let mut alice = Client::login(&h, "alice").await;
    alice.register_all(&h).await;

    // The form offers the four fabrics, auto first and selected, each explained.
    let form = alice.get("/request").await.body;
    assert!(form.contains(r#"<select name="fabric""#), "{form}");
    for (value, label) in [
        ("auto", "Automatic"),
        ("wireguard", "WireGuard"),
        ("ipsec", "IPsec site-to-site"),
        ("l2tp", "L2TP/IPsec"),
    ] {
        assert!(
            form.contains(&format!(r#"<option value="{value}""#)),
            "{value}: {form}"
        );
        assert!(form.contains(&format!("<li><b>{label}</b>: ")), "{label}");
    }
    assert!(form.contains(r#"<option value="auto" selected>"#), "{form}");

    // An unknown fabric is a 400 naming the field; nothing is planned.
    let r = alice
        .post("/request", &seed_form_with("bad-fabric", "gre"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.body.contains("VPN fabric must be one of") && r.body.contains("gre"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("/drafts/"), "{}", r.body);

    // A wish the placed sites cannot satisfy (L2TP needs a CloudStack site; nii is
    // OpenNebula, tokyo EC2) comes back as the library's explanation, not a 500.
    let mut no_cs = seed_form_with("no-cs", "l2tp");
    no_cs[7] = ("g0_site", "tokyo");
    let r = alice.post("/request", &no_cs).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let draft = draft_in(&r.body);
    let r = alice
        .post(
            &format!("/drafts/{draft}/confirm"),
            &[("choice", "planner")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.body.contains("[vpn] fabric = &quot;l2tp&quot;")
            && r.body.contains("CloudStack")
            && r.body.contains("nii")
            && r.body.contains("tokyo"),
        "{}",
        r.body
    );
    assert_eq!((h.clouds.alive("nii"), h.clouds.alive("tokyo")), (0, 0));

    // L2TP/IPsec between hokkaido (CloudStack's remote-access VPN) and nii: the
    // request carries the choice, nii's gateway node dials hokkaido.
    let r = alice
        .post("/request", &seed_form_with("l2tp-portal", "l2tp"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let draft = draft_in(&r.body);
    let r = alice
        .post(
            &format!("/drafts/{draft}/confirm"),
            &[("choice", "planner")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let id = r
        .location
        .unwrap()
        .trim_start_matches("/clusters/")
        .trim_end_matches("/progress")
        .to_owned();
    let page = wait_phase(&mut alice, &id, "running").await;
    assert!(page.contains("VPN link hokkaido ↔ nii"), "{page}");
    let nii = h
        .clouds
        .user_data("nii")
        .expect("the simulator keeps user data");
    assert_eq!(nii.len(), 2);
    assert!(
        nii.iter().any(|ud| ud.contains("/etc/xl2tpd/xl2tpd.conf")),
        "nii's gateway node dials hokkaido: {nii:?}"
    );
    for ud in h.clouds.user_data("hokkaido").unwrap() {
        assert!(!ud.contains("xl2tpd"), "CloudStack's router is the server");
    }
    let r = alice.post(&format!("/clusters/{id}/destroy"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let _ = wait_phase(&mut alice, &id, "destroyed").await;
    assert_eq!((h.clouds.alive("hokkaido"), h.clouds.alive("nii")), (0, 0));
    for s in all_secrets(&h) {
        assert!(
            alice.bodies.iter().all(|b| !b.contains(s.as_str())),
            "a body holds a secret"
        );
    }
}
