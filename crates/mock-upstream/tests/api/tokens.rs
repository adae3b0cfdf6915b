//! OAuth token families: `POST /v1/oauth/token`, rotation, reuse revoking the family,
//! expiring access tokens, and a token endpoint that is down or slow.

use std::time::Duration;

use keyloop_mock::{MockConfig, MockKey, MockUpstream, Subscription};
use serde_json::{Value, json};

use crate::support::*;

const SEED: &str = "sk-ant-ort01-seed-refresh-token";
const CLIENT: &str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";
const SONNET: &str = "claude-sonnet-5-5";

fn family_key() -> MockKey {
    MockKey::new("oauth", OAUTH).with_refresh_token(SEED)
}

async fn start_family(key: MockKey) -> MockUpstream {
    start_with(MockConfig::with_keys([MockKey::new("a", KEY_A), key])).await
}

fn token_url(mock: &MockUpstream) -> String {
    format!("{}/v1/oauth/token", mock.url())
}

async fn refresh(mock: &MockUpstream, refresh_token: &str) -> reqwest::Response {
    client()
        .post(token_url(mock))
        .json(&json!({
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": CLIENT,
        }))
        .send()
        .await
        .unwrap()
}

/// Asserts OAuth's error shape (not Anthropic's) and returns `error`.
async fn oauth_error(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status);
    let body = json_of(response).await;
    let object = body.as_object().expect("object");
    assert_eq!(
        object.len(),
        2,
        "exactly error and error_description: {body}"
    );
    assert!(body["error_description"].is_string(), "{body}");
    body["error"].as_str().unwrap().to_owned()
}

async fn issued(response: reqwest::Response) -> (String, String) {
    assert_eq!(response.status(), 200);
    let body: Value = json_of(response).await;
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_refresh_answers_new_tokens_that_act_as_the_key() {
    let mock = start_family(family_key().with_subscription(Subscription {
        five_hour: 3,
        ..Subscription::default()
    }))
    .await;
    assert_eq!(oauth_messages(&mock, OAUTH, SONNET).await.status(), 200);

    let response = refresh(&mock, SEED).await;
    assert_eq!(header(&response, "content-type"), "application/json");
    assert!(maybe_header(&response, "anthropic-organization-id").is_none());
    header(&response, "request-id");
    let body = json_of(response).await;
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "access_token",
            "refresh_token",
            "expires_in",
            "token_type",
            "scope"
        ]
    );
    assert_eq!(body["expires_in"], 28_800);
    assert_eq!(body["token_type"], "Bearer");
    let access = body["access_token"].as_str().unwrap();
    let rotated = body["refresh_token"].as_str().unwrap();
    assert!(
        access.starts_with("sk-ant-oat01-") && access.len() > 100,
        "{access}"
    );
    assert!(
        rotated.starts_with("sk-ant-ort01-") && rotated != SEED,
        "{rotated}"
    );
    assert_eq!(mock.token_calls("oauth"), 1);

    // The new token is the same key: counted, scripted and limited as `oauth`.
    let served = oauth_messages(&mock, access, SONNET).await;
    assert_eq!(served.status(), 200);
    assert_eq!(
        header(&served, "anthropic-ratelimit-unified-5h-utilization"),
        "0.67"
    );
    assert_eq!(mock.call_count("oauth"), 2);
    mock.push_scenario("oauth", keyloop_mock::Scenario::Overloaded, 1);
    assert_eq!(oauth_messages(&mock, access, SONNET).await.status(), 529);
    assert_eq!(
        mock.calls().last().unwrap().key_name.as_deref(),
        Some("oauth")
    );
    // The token it replaced stays valid until it expires.
    assert_eq!(oauth_messages(&mock, OAUTH, SONNET).await.status(), 200);
    // Still an OAuth token: without the beta flag it is refused.
    let no_beta = client()
        .post(format!("{}/v1/messages", mock.url()))
        .bearer_auth(access)
        .header("anthropic-version", VERSION)
        .json(&hello())
        .send()
        .await
        .unwrap();
    expect_error(no_beta, 401, "authentication_error").await;
}

#[tokio::test]
async fn reusing_a_refresh_token_revokes_the_whole_family() {
    let mock = start_family(family_key()).await;
    let (first_access, second_refresh) = issued(refresh(&mock, SEED).await).await;
    let (second_access, third_refresh) = issued(refresh(&mock, &second_refresh).await).await;
    assert_eq!(
        oauth_messages(&mock, &second_access, SONNET).await.status(),
        200
    );

    // The seed again: a replay. Everything from this grant is revoked.
    assert_eq!(
        oauth_error(refresh(&mock, SEED).await, 400).await,
        "invalid_grant"
    );
    for token in [OAUTH, first_access.as_str(), second_access.as_str()] {
        let response = oauth_messages(&mock, token, SONNET).await;
        assert_eq!(response.status(), 401);
        let body = json_of(response).await;
        assert_eq!(body["error"]["type"], "authentication_error");
        assert!(
            body["error"].get("details").is_none(),
            "no token_expired: {body}"
        );
        assert_eq!(
            body["error"]["message"],
            "OAuth token has been revoked. Please obtain a new token."
        );
    }
    assert_eq!(
        oauth_error(refresh(&mock, &third_refresh).await, 400).await,
        "invalid_grant",
        "the newest refresh token is revoked too"
    );
    assert_eq!(mock.token_calls("oauth"), 4);
    assert_eq!(mock.call_count("oauth"), 4);

    // Reset brings the seeded family back.
    client()
        .post(format!("{}/_mock/reset", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(mock.token_calls("oauth"), 0);
    assert_eq!(oauth_messages(&mock, OAUTH, SONNET).await.status(), 200);
    issued(refresh(&mock, SEED).await).await;
}

#[tokio::test]
async fn the_endpoint_reads_form_bodies_and_refuses_bad_grants() {
    let mock = start_family(family_key()).await;
    let form = client()
        .post(token_url(&mock))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=refresh_token&refresh_token={SEED}&client_id={CLIENT}"
        ))
        .send()
        .await
        .unwrap();
    issued(form).await;

    assert_eq!(
        oauth_error(refresh(&mock, "sk-ant-ort01-unknown").await, 400).await,
        "invalid_grant"
    );
    let cases = [
        (
            json!({"refresh_token": SEED, "client_id": CLIENT}),
            "invalid_request",
        ),
        (
            json!({"grant_type": "refresh_token", "client_id": CLIENT}),
            "invalid_request",
        ),
        (
            json!({"grant_type": "refresh_token", "refresh_token": SEED}),
            "invalid_request",
        ),
        (
            json!({"grant_type": "authorization_code", "code": "x", "client_id": CLIENT}),
            "unsupported_grant_type",
        ),
    ];
    for (body, error) in cases {
        let response = client()
            .post(token_url(&mock))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(oauth_error(response, 400).await, error, "{body}");
    }
    let garbage = client()
        .post(token_url(&mock))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(garbage, 400).await, "invalid_request");
    // Calls naming one of its refresh tokens count for the key, valid or not.
    assert_eq!(mock.token_calls("oauth"), 3);
    assert_eq!(mock.call_count("oauth"), 0);
}

#[tokio::test(start_paused = true)]
async fn access_tokens_expire_and_a_refresh_gives_a_working_one() {
    let lifetime = Duration::from_secs(2);
    let mock = start_family(family_key().with_access_token_lifetime(lifetime)).await;
    assert_eq!(oauth_messages(&mock, OAUTH, SONNET).await.status(), 200);
    tokio::time::advance(Duration::from_secs(2)).await;

    let expired = oauth_messages(&mock, OAUTH, SONNET).await;
    assert_eq!(expired.status(), 401);
    let request_id = header(&expired, "request-id").to_owned();
    assert_eq!(
        json_of(expired).await,
        json!({
            "type": "error",
            "error": {
                "type": "authentication_error",
                "message": "OAuth token has expired. Please obtain a new token or refresh your existing token.",
                "details": {"error_code": "token_expired"},
            },
            "request_id": request_id,
        })
    );
    assert_eq!(
        mock.call_count("oauth"),
        2,
        "a refused token still counts for its key"
    );

    let response = refresh(&mock, SEED).await;
    let body = json_of(response).await;
    assert_eq!(body["expires_in"], 2);
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(oauth_messages(&mock, access, SONNET).await.status(), 200);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(oauth_messages(&mock, access, SONNET).await.status(), 401);
}

#[tokio::test]
async fn a_zero_lifetime_gives_an_already_expired_token() {
    let mock = start_with(MockConfig {
        access_token_lifetime: Duration::from_secs(60),
        ..MockConfig::with_keys([
            MockKey::new("oauth", OAUTH).with_access_token_lifetime(Duration::ZERO),
            MockKey::new("plain", "sk-ant-oat01-never-expires").with_refresh_token(SEED),
        ])
    })
    .await;
    let response = oauth_messages(&mock, OAUTH, SONNET).await;
    assert_eq!(response.status(), 401);
    let body = json_of(response).await;
    assert_eq!(body["error"]["details"]["error_code"], "token_expired");
    // The configured lifetime applies to keys with a family that set none.
    let body = json_of(refresh(&mock, SEED).await).await;
    assert_eq!(body["expires_in"], 60);
}

#[tokio::test]
async fn a_down_endpoint_answers_503_and_rotates_nothing() {
    let mock = start_family(family_key()).await;
    mock.set_token_endpoint_down(true);
    let down = refresh(&mock, SEED).await;
    assert_eq!(oauth_error(down, 503).await, "temporarily_unavailable");
    assert_eq!(mock.token_calls("oauth"), 1);
    // Nothing changed: the seed still works once the endpoint is back, and API calls never
    // stopped working.
    assert_eq!(oauth_messages(&mock, OAUTH, SONNET).await.status(), 200);
    client()
        .post(format!("{}/_mock/token_endpoint", mock.url()))
        .json(&json!({"down": false}))
        .send()
        .await
        .unwrap();
    issued(refresh(&mock, SEED).await).await;
    assert_eq!(mock.token_calls("oauth"), 2);
}

#[tokio::test(start_paused = true)]
async fn a_slow_endpoint_counts_the_call_on_arrival_and_answers_after_the_delay() {
    let mock = start_family(family_key()).await;
    let delay = Duration::from_secs(30);
    mock.set_token_endpoint_delay(delay);
    let started = tokio::time::Instant::now();
    let pending = tokio::spawn({
        let mock = mock.clone();
        async move { refresh(&mock, SEED).await }
    });
    mock.wait_for_token_calls("oauth", 1).await;
    let response = pending.await.unwrap();
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
    issued(response).await;

    // Concurrent refreshes with one refresh token: the first rotates, the rest are replays
    // that revoke the family (why a gateway must refresh once per family).
    let mock = start_family(family_key()).await;
    mock.set_token_endpoint_delay(Duration::from_secs(1));
    let attempts: Vec<_> = (0..3)
        .map(|_| {
            let mock = mock.clone();
            tokio::spawn(async move { refresh(&mock, SEED).await.status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400, 400]);
    assert_eq!(mock.token_calls("oauth"), 3);
    assert_eq!(oauth_messages(&mock, OAUTH, SONNET).await.status(), 401);
}

#[tokio::test]
async fn stats_show_token_calls_per_key() {
    let mock = start_family(family_key()).await;
    refresh(&mock, SEED).await;
    let stats: Value = client()
        .get(format!("{}/_mock/stats", mock.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["keys"]["oauth"]["token_calls"], 1);
    assert_eq!(stats["keys"]["oauth"]["calls"], 0);
    assert_eq!(stats["unauthenticated"]["calls"], 1);
}
