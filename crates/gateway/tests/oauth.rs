//! OAuth credentials: access tokens refreshed before they expire, one refresh per credential
//! however many requests need it, the rotated refresh token kept, and a token endpoint that is
//! down disabling nothing.

mod support;

use futures_util::StreamExt;
use keyloop_mock::MockKey;
use serde_json::Value;
use support::{Harness, Options, key};

const SEED: &str = "sk-ant-ort01-seed-refresh-token-0000000000";

/// An OAuth credential the gateway believes expired a minute ago, with a refresh token.
fn expiring(name: &'static str) -> (MockKey, Vec<(&'static str, String)>) {
    let mock = key(name).with_refresh_token(SEED);
    let lines = vec![
        (name, format!("refresh-token = {SEED:?}")),
        (name, "token-expires = \"2020-01-01T00:00:00Z\"".to_owned()),
    ];
    (mock, lines)
}

async fn card(h: &Harness, name: &str) -> Value {
    h.admin_get("/credentials").await["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn two_hundred_requests_on_an_expired_token_make_one_refresh() {
    let (oauth, lines) = expiring("oauth-max");
    let mut h = Harness::start(Options {
        keys: vec![oauth],
        key_lines: lines,
        ..Options::default()
    })
    .await;
    let before = card(&h, "oauth-max").await["masked"].clone();
    let statuses: Vec<u16> = futures_util::stream::iter(0..200)
        .map(|_| async { h.message(false).send().await.unwrap().status().as_u16() })
        .buffer_unordered(200)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        h.mock.token_calls("oauth-max"),
        1,
        "one refresh for all of them"
    );
    let after = card(&h, "oauth-max").await;
    assert_ne!(after["masked"], before, "the new access token is in use");
    assert_eq!(after["refreshable"], true);
    assert!(after["token_expires_at"].as_i64().unwrap() > keyloop::types::now_ms());

    // After a restart the stored (rotated) tokens are used, not the file's spent refresh token:
    // no new refresh, and the family is still valid.
    h.restart().await;
    assert_eq!(h.message(false).send().await.unwrap().status(), 200);
    assert_eq!(h.mock.token_calls("oauth-max"), 1);
    assert_eq!(card(&h, "oauth-max").await["masked"], after["masked"]);
    h.shutdown().await;
}

#[tokio::test]
async fn a_token_endpoint_that_is_down_disables_nothing() {
    let (oauth, lines) = expiring("oauth-max");
    let h = Harness::start(Options {
        keys: vec![oauth, key("beta")],
        key_lines: lines,
        ..Options::default()
    })
    .await;
    h.mock.set_token_endpoint_down(true);
    for _ in 0..20 {
        assert_eq!(h.message(false).send().await.unwrap().status(), 200);
    }
    let calls = h.mock.token_calls("oauth-max");
    assert!(
        (1..=2).contains(&calls),
        "refresh retries with backoff, not per request: {calls}"
    );
    assert_eq!(h.state_of("oauth-max").await, "active", "nothing disabled");
    assert_eq!(
        h.mock.call_count("oauth-max"),
        0,
        "an expired token is not sent"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_token_expired_answer_refreshes_and_the_same_credential_serves() {
    let name = "oauth-max";
    let h = Harness::start(Options {
        keys: vec![key(name).with_refresh_token(SEED)],
        // The expiry is not known: only the provider's answer tells.
        key_lines: vec![(name, format!("refresh-token = {SEED:?}"))],
        ..Options::default()
    })
    .await;
    let expired = r#"{"type":"error","error":{"type":"authentication_error","message":"OAuth token has expired. Please obtain a new token or refresh your existing token.","details":{"error_code":"token_expired"}},"request_id":"req_1"}"#;
    h.mock.push_scenario(
        name,
        keyloop_mock::Scenario::Replay {
            status: 401,
            content_type: "application/json".into(),
            body: expired.into(),
        },
        1,
    );
    let r = h.message(false).send().await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "refreshed and served by the same credential"
    );
    assert_eq!(h.mock.token_calls(name), 1);
    assert_eq!(h.mock.call_count(name), 2, "the 401, then the served call");
    assert_eq!(
        h.state_of(name).await,
        "active",
        "never disabled for an expired token"
    );
    h.shutdown().await;
}
