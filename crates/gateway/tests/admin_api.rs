//! The admin API over real HTTP on the admin listener, against a real gateway and the simulated
//! upstream: sign-in and lock-out, credential actions through the pool, import/export, clients,
//! usage queries, the live event stream, the audit log and the OpenAPI document.

mod support;

use futures_util::StreamExt;
use keyloop_mock::Scenario;
use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN_TOKEN, Harness, Options, key};

fn admin_url(h: &Harness, path: &str) -> String {
    format!("http://{}/admin/api{path}", h.gateway.admin_addr)
}

async fn credential_id(h: &Harness, name: &str) -> String {
    let list = h.admin_get("/credentials").await;
    list["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no credential {name}: {list}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn post_json(h: &Harness, path: &str, body: Value) -> (u16, Value) {
    let response = h
        .admin(Method::POST, path)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn message_as(h: &Harness, client_key: &str) -> reqwest::Response {
    h.http
        .post(format!("{}/v1/messages", h.base))
        .header("x-api-key", client_key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-sonnet-5-5", "max_tokens": 8,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
}

async fn audit_actions(h: &Harness) -> Vec<Value> {
    h.admin_get("/audit?limit=500").await["entries"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn requests_without_the_token_are_refused_and_repeated_failures_lock_out() {
    let h = Harness::start(Options::default()).await;
    let http = reqwest::Client::new();
    let unauthenticated = http
        .get(admin_url(&h, "/credentials"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let body: Value = unauthenticated.json().await.unwrap();
    assert_eq!(body["error"]["type"], "unauthorized");

    // Sign-in with the wrong token: four plain refusals, then the fifth locks the address out.
    for attempt in 1..=5 {
        let r = http
            .post(admin_url(&h, "/session"))
            .json(&json!({"token": "not-the-token"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "attempt {attempt}");
    }
    let locked = http
        .get(admin_url(&h, "/credentials"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        locked.status(),
        429,
        "even the right token waits out the lock"
    );
    let retry_after: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=1).contains(&retry_after),
        "first lock is 1 s, got {retry_after}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_panel_session_is_a_cookie_that_sign_out_ends() {
    let h = Harness::start(Options::default()).await;
    let http = reqwest::Client::new();
    let signed_in = http
        .post(admin_url(&h, "/session"))
        .json(&json!({"token": ADMIN_TOKEN}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 204);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();

    let me: Value = http
        .get(admin_url(&h, "/session"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        me["actor"].as_str().unwrap().starts_with("session "),
        "{me}"
    );
    assert!(me["expires_at"].as_i64().unwrap() > keyloop::types::now_ms());

    // A change with the cookie must come from the panel's own origin: any other local page
    // is the same "site" to the browser, so SameSite alone would let it through.
    let gamma = credential_id(&h, "gamma").await;
    let path = admin_url(&h, &format!("/credentials/{gamma}/disable"));
    let foreign = http
        .post(&path)
        .header("cookie", &pair)
        .header("origin", "http://127.0.0.1:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    assert_eq!(h.state_of("gamma").await, "active");
    let own = http
        .post(&path)
        .header("cookie", &pair)
        .header("origin", format!("http://{}", h.gateway.admin_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);

    let out = http
        .delete(admin_url(&h, "/session"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let after = http
        .get(admin_url(&h, "/credentials"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
    h.shutdown().await;
}

#[tokio::test]
async fn credentials_are_listed_masked_and_disabling_takes_one_out_of_rotation() {
    let h = Harness::start(Options::default()).await;
    let raw = h
        .admin(Method::GET, "/credentials")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for k in [key("alpha"), key("beta"), key("gamma")] {
        assert!(!raw.contains(&k.secret), "a secret leaked into the listing");
    }
    let alpha = credential_id(&h, "alpha").await;
    let (status, view) = post_json(&h, &format!("/credentials/{alpha}/disable"), json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(view["state"], "disabled");
    assert_eq!(view["reason"], "operator");

    h.mock.reset_calls();
    for _ in 0..6 {
        assert_eq!(h.message(false).send().await.unwrap().status(), 200);
    }
    assert_eq!(
        h.mock.call_count("alpha"),
        0,
        "a disabled credential got traffic"
    );
    assert_eq!(h.mock.call_count("beta") + h.mock.call_count("gamma"), 6);

    let (_, view) = post_json(&h, &format!("/credentials/{alpha}/enable"), json!({})).await;
    assert_eq!(view["state"], "active");
    for _ in 0..6 {
        h.message(false).send().await.unwrap();
    }
    assert!(
        h.mock.call_count("alpha") > 0,
        "an enabled credential got no traffic"
    );

    // Transitions are persisted by a background task after the pool changes; the history is
    // read until both have landed (or the deadline says they never will).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let history = loop {
        let history = h
            .admin_get(&format!("/credentials/{alpha}/transitions"))
            .await;
        if history["transitions"].as_array().unwrap().len() >= 2 {
            break history;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the disable and enable were never persisted: {history}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let transitions = history["transitions"].as_array().unwrap();
    assert_eq!(transitions[0]["to"], "active", "newest first: {history}");
    assert_eq!(transitions[1]["to"], "disabled");
    assert_eq!(transitions[1]["reason"], "operator");

    let actions: Vec<String> = audit_actions(&h)
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        actions.contains(&"credential.disable".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"credential.enable".to_owned()),
        "{actions:?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn clear_cooldown_and_probe_now_go_through_the_state_machine() {
    let h = Harness::start(Options::default()).await;
    let alpha = credential_id(&h, "alpha").await;
    // A 429 with a long retry-after sends alpha into a cooldown the test would never wait out.
    h.mock.push_scenario(
        "alpha",
        Scenario::RateLimited {
            retry_after_secs: 600,
        },
        1,
    );
    for _ in 0..3 {
        assert_eq!(h.message(false).send().await.unwrap().status(), 200);
    }
    h.wait_for_state("alpha", "cooling_down").await;
    let view = h.admin_get("/credentials").await["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "alpha")
        .unwrap()
        .clone();
    assert!(view["cooldown_until"].as_i64().unwrap() > keyloop::types::now_ms() + 500_000);
    assert_eq!(view["last_error"]["class"], "rate_limited");

    let (status, cleared) = post_json(
        &h,
        &format!("/credentials/{alpha}/clear-cooldown"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{cleared}");
    assert_eq!(cleared["state"], "active");
    // Clearing an active credential is refused, not silently accepted.
    let (status, _) = post_json(
        &h,
        &format!("/credentials/{alpha}/clear-cooldown"),
        json!({}),
    )
    .await;
    assert_eq!(status, 409);

    // Probe now on a cooling credential: the probe succeeds and brings it back.
    h.mock.push_scenario(
        "alpha",
        Scenario::RateLimited {
            retry_after_secs: 600,
        },
        1,
    );
    h.mock.reset_calls();
    while h.mock.call_count("alpha") == 0 {
        h.message(false).send().await.unwrap();
    }
    h.wait_for_state("alpha", "cooling_down").await;
    let (status, probed) = post_json(&h, &format!("/credentials/{alpha}/probe"), json!({})).await;
    assert_eq!(status, 200, "{probed}");
    assert_eq!(probed["outcome"], "success");
    assert_eq!(probed["credential"]["state"], "active");

    // Probe now on an active credential whose secret the provider rejects: disabled.
    h.mock.push_scenario("alpha", Scenario::Unauthorized, 1);
    let (_, probed) = post_json(&h, &format!("/credentials/{alpha}/probe"), json!({})).await;
    assert_eq!(probed["outcome"], "invalid_credential");
    assert_eq!(probed["credential"]["state"], "disabled");
    h.shutdown().await;
}

#[tokio::test]
async fn credentials_are_added_edited_and_removed_but_config_ones_stay_in_the_file() {
    let h = Harness::start(Options::default()).await;
    let secret = "sk-ant-api03-added-through-the-api-0000000000";
    let (status, added) = post_json(
        &h,
        "/credentials",
        json!({"name": "extra", "secret": secret, "priority": 2, "group": "org-b"}),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["source"], "admin");
    assert_eq!(added["kind"], "api-key");
    assert_eq!(added["group"], "org-b");
    assert!(!added.to_string().contains(secret));
    let id = added["id"].as_str().unwrap().to_owned();

    let (status, dup) = post_json(
        &h,
        "/credentials",
        json!({"name": "extra", "secret": "sk-x-1"}),
    )
    .await;
    assert_eq!(status, 409, "{dup}");
    let (status, bad) = post_json(&h, "/credentials", json!({"name": "", "secret": "x"})).await;
    assert_eq!(status, 400, "{bad}");
    // Columns swapped: a name that looks like a secret is refused, not published.
    let (status, bad) = post_json(
        &h,
        "/credentials",
        json!({"name": "sk-ant-api03-swapped-000000000000", "secret": "extra-two"}),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
    assert!(!bad.to_string().contains("swapped"), "{bad}");

    let edited: Value = h
        .admin(Method::PATCH, &format!("/credentials/{id}"))
        .json(&json!({"name": "extra-renamed", "weight": 3, "max_concurrent": 4, "group": null}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(edited["name"], "extra-renamed");
    assert_eq!(edited["weight"], 3);
    assert_eq!(edited["max_concurrent"], 4);
    assert_eq!(edited["group"], Value::Null);

    let alpha = credential_id(&h, "alpha").await;
    let refused = h
        .admin(Method::PATCH, &format!("/credentials/{alpha}"))
        .json(&json!({"name": "other"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    let removed = h
        .admin(Method::DELETE, &format!("/credentials/{alpha}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        removed.status(),
        409,
        "config-declared credentials are removed in the file"
    );

    let gone = h
        .admin(Method::DELETE, &format!("/credentials/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    let names: Vec<String> = h.admin_get("/credentials").await["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["alpha", "beta", "gamma"]);
    h.shutdown().await;
}

#[tokio::test]
async fn csv_import_reports_each_row_then_applies_the_valid_ones_and_export_hides_secrets() {
    let h = Harness::start(Options::default()).await;
    let good = "sk-ant-api03-imported-one-000000000000000";
    let oauth = "sk-ant-oat01-imported-two-000000000000000";
    let csv = format!(
        "name,secret,priority\nimp-one,{good},1\nimp-two,{oauth},0\nalpha,sk-ant-api03-whatever-00000000000000,0\nimp-bad,,x\n"
    );
    let dry: Value = h
        .admin(Method::POST, "/credentials/import?dry_run=true")
        .header("content-type", "text/csv")
        .body(csv.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dry["applied"], false);
    assert_eq!(
        dry["counts"],
        json!({"valid": 2, "duplicate": 1, "malformed": 1}),
        "{dry}"
    );
    let rows = dry["rows"].as_array().unwrap();
    assert_eq!(rows[1]["kind"], "oauth");
    assert_eq!(rows[2]["status"], "duplicate");
    assert_eq!(rows[3]["status"], "malformed");
    assert!(!dry.to_string().contains(good) && !dry.to_string().contains(oauth));
    assert_eq!(
        h.admin_get("/credentials").await["credentials"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let applied: Value = h
        .admin(Method::POST, "/credentials/import?dry_run=false")
        .body(csv)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(applied["applied"], true);
    let list = h.admin_get("/credentials").await;
    let imported: Vec<&Value> = list["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["source"] == "import")
        .collect();
    assert_eq!(imported.len(), 2, "{list}");

    let plain = h
        .admin(Method::GET, "/credentials/export")
        .send()
        .await
        .unwrap();
    assert!(
        plain.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let plain = plain.text().await.unwrap();
    assert!(
        plain.contains("imp-one") && !plain.contains(good),
        "{plain}"
    );
    let full = h
        .admin(Method::GET, "/credentials/export?secrets=true")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(full.contains(good));

    let audit = audit_actions(&h).await;
    let text = Value::Array(audit.clone()).to_string();
    assert!(
        !text.contains(good) && !text.contains(oauth),
        "a secret reached the audit log"
    );
    let export = audit
        .iter()
        .find(|e| e["action"] == "credential.export" && e["detail"]["with_secrets"] == true);
    assert!(export.is_some(), "{text}");
    h.shutdown().await;
}

#[tokio::test]
async fn clients_are_created_once_renamed_noted_and_revoked() {
    let h = Harness::start(Options::default()).await;
    let (status, created) = post_json(
        &h,
        "/clients",
        json!({"name": "team-a", "notes": "billing: ops"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["client"]["id"].as_str().unwrap().to_owned();
    assert!(
        created["client"]["key_hint"]
            .as_str()
            .unwrap()
            .starts_with("klk_")
    );

    let works = message_as(&h, &key).await;
    assert_eq!(works.status(), 200, "a new client's key works at once");

    let list = h.admin_get("/clients").await.to_string();
    assert!(!list.contains(&key), "the key is shown only at creation");

    let renamed: Value = h
        .admin(Method::PATCH, &format!("/clients/{id}"))
        .json(&json!({"name": "team-alpha", "notes": null}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(renamed["name"], "team-alpha");
    assert_eq!(renamed["notes"], Value::Null);

    let (status, revoked) = post_json(&h, &format!("/clients/{id}/revoke"), json!({})).await;
    assert_eq!(status, 200);
    assert!(revoked["revoked_at"].is_i64());
    let refused = message_as(&h, &key).await;
    assert_eq!(refused.status(), 401, "a revoked key is refused at once");
    h.shutdown().await;
}

#[tokio::test]
async fn usage_series_summary_and_the_request_log_agree_with_the_traffic() {
    let h = Harness::start(Options::default()).await;
    // One request fails over off a 500 on alpha, so its attempts show in the log.
    h.mock.push_scenario("alpha", Scenario::ServerError, 1);
    let n = 7;
    for i in 0..n {
        let r = h.message(i % 2 == 0).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    h.gateway.ledger_settled().await;

    let series = h.admin_get("/usage/series?group_by=credential").await;
    let total: u64 = series["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["requests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .sum::<u64>()
        })
        .sum();
    assert_eq!(total, n);
    let points = series["t"].as_array().unwrap().len();
    for s in series["series"].as_array().unwrap() {
        assert_eq!(
            s["requests"].as_array().unwrap().len(),
            points,
            "arrays are aligned"
        );
    }

    let summary = h.admin_get("/usage/summary?group_by=model").await;
    assert_eq!(summary["groups"][0]["group"], "claude-sonnet-5-5");
    assert_eq!(summary["groups"][0]["requests"], n);
    assert_eq!(summary["groups"][0]["attempt_failures"]["server_error"], 1);

    // Page through the log two at a time: every request once, newest first.
    let mut seen = Vec::new();
    let mut path = "/requests?limit=2".to_owned();
    loop {
        let page = h.admin_get(&path).await;
        for r in page["requests"].as_array().unwrap() {
            seen.push(r.clone());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/requests?limit=2&before={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), n as usize);
    let exact = h.admin_get(&format!("/requests?limit={n}")).await;
    assert_eq!(exact["requests"].as_array().unwrap().len(), n as usize);
    assert_eq!(
        exact["next"],
        Value::Null,
        "a full last page has no next page"
    );
    let ats: Vec<i64> = seen.iter().map(|r| r["at"].as_i64().unwrap()).collect();
    assert!(
        ats.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {ats:?}"
    );
    let failed_over: Vec<&Value> = seen
        .iter()
        .filter(|r| !r["attempts"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(failed_over.len(), 1);
    assert_eq!(failed_over[0]["attempts"][0]["credential_name"], "alpha");
    assert_eq!(failed_over[0]["attempts"][0]["class"], "server_error");
    assert_ne!(failed_over[0]["credential_name"], "alpha");

    let beta = credential_id(&h, "beta").await;
    let only_beta = h.admin_get(&format!("/requests?credential={beta}")).await;
    assert!(
        only_beta["requests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["credential_name"] == "beta")
    );
    let none = h.admin_get("/requests?outcome=stream_cut").await;
    assert!(none["requests"].as_array().unwrap().is_empty());

    let bad = h
        .admin(Method::GET, "/requests?outcome=bogus")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("bogus"));

    let overview = h.admin_get("/overview").await;
    assert_eq!(overview["today"]["requests"], n);
    assert_eq!(overview["credentials"]["active"], 3);
    h.shutdown().await;
}

/// Reads SSE frames until one of `event` arrives whose data satisfies `wanted`.
async fn next_event(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buffer: &mut String,
    event: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let name = frame.lines().find_map(|l| l.strip_prefix("event: "));
            let data = frame.lines().find_map(|l| l.strip_prefix("data: "));
            if let (Some(name), Some(data)) = (name, data)
                && name == event
            {
                let value: Value = serde_json::from_str(data).unwrap();
                if wanted(&value) {
                    return value;
                }
            }
        }
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("no {event} event arrived"))
            .expect("the stream stays open")
            .unwrap();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test]
async fn the_event_stream_carries_requests_credential_changes_and_the_overview() {
    let h = Harness::start(Options::default()).await;
    let response = h.admin(Method::GET, "/events").send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();

    let sent = h.message(false).send().await.unwrap();
    let request_id = sent.headers()["x-keyloop-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let event = next_event(&mut stream, &mut buffer, "request", |v| {
        v["request_id"] == request_id.as_str()
    })
    .await;
    assert_eq!(event["outcome"], "success");

    let gamma = credential_id(&h, "gamma").await;
    post_json(&h, &format!("/credentials/{gamma}/disable"), json!({})).await;
    let change = next_event(&mut stream, &mut buffer, "credential", |v| {
        v["credential"]["name"] == "gamma"
    })
    .await;
    assert_eq!(change["to"], "disabled");
    assert_eq!(change["credential"]["state"], "disabled");

    let overview = next_event(&mut stream, &mut buffer, "overview", |_| true).await;
    assert!(overview["live"]["requests"].as_u64().unwrap() >= 1);
    assert_eq!(overview["credentials"]["disabled"], 1);
    h.shutdown().await;
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_bad_input_gets_clear_errors() {
    let h = Harness::start(Options::default()).await;
    let spec: Value = reqwest::get(admin_url(&h, "/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().unwrap();
    for path in [
        "/session",
        "/credentials",
        "/credentials/{id}",
        "/credentials/{id}/enable",
        "/credentials/{id}/disable",
        "/credentials/{id}/clear-cooldown",
        "/credentials/{id}/probe",
        "/credentials/{id}/transitions",
        "/credentials/import",
        "/credentials/export",
        "/clients",
        "/clients/{id}",
        "/clients/{id}/revoke",
        "/usage/series",
        "/usage/summary",
        "/overview",
        "/requests",
        "/events",
        "/audit",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    assert!(spec["components"]["securitySchemes"]["admin_token"].is_object());

    let malformed = h
        .admin(Method::POST, "/credentials")
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let unknown_field = h
        .admin(Method::POST, "/clients")
        .json(&json!({"name": "x", "colour": "red"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_field.status(), 422);
    assert!(unknown_field.text().await.unwrap().contains("colour"));
    let missing = h.admin(Method::GET, "/nothing-here").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["type"], "not_found");
    let no_such = h
        .admin(Method::POST, "/credentials/key_missing/disable")
        .send()
        .await
        .unwrap();
    assert_eq!(no_such.status(), 404);
    h.shutdown().await;
}
