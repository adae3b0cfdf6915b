//! Failover before commit, and what each upstream failure does to the credential.

mod support;

use keyloop_mock::Scenario;
use support::{Harness, Options, key};

#[tokio::test]
async fn a_rate_limited_credential_cools_down_and_returns_after_a_probe() {
    let h = Harness::start(Options::default()).await;
    // beta answers its next request with 429 and a 1 s retry-after.
    h.mock.push_scenario(
        "beta",
        Scenario::RateLimited {
            retry_after_secs: 1,
        },
        1,
    );
    let mut errors = 0;
    for _ in 0..6 {
        let r = h.message(false).send().await.unwrap();
        if r.status() != 200 {
            errors += 1;
        }
    }
    assert_eq!(errors, 0, "the client never sees the 429");
    assert_ne!(h.state_of("beta").await, "active");
    let beta_calls_in_cooldown = h.mock.call_count("beta");
    assert_eq!(
        beta_calls_in_cooldown, 1,
        "no traffic to beta while it cools down"
    );

    // The prober's count_tokens call brings it back.
    h.wait_for_state("beta", "active").await;
    let probe = h
        .mock
        .calls()
        .into_iter()
        .filter(|c| c.key_name.as_deref() == Some("beta"))
        .last()
        .unwrap();
    assert_eq!(probe.path, "/v1/messages/count_tokens");

    for _ in 0..6 {
        assert_eq!(h.message(false).send().await.unwrap().status(), 200);
    }
    assert!(
        h.mock.call_count("beta") > beta_calls_in_cooldown + 1,
        "beta serves again"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn invalid_credential_is_disabled_and_billing_is_quarantined() {
    let h = Harness::start(Options::default()).await;
    h.mock.push_scenario("alpha", Scenario::Unauthorized, 1);
    h.mock.push_scenario("beta", Scenario::CreditBalance, 1);
    for _ in 0..3 {
        let r = h.message(false).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let status = h.status().await;
    let find = |name: &str| {
        status["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    let alpha = find("alpha");
    assert_eq!(alpha["state"], "disabled");
    assert!(alpha["reason"].as_str().unwrap().contains("401"), "{alpha}");
    let beta = find("beta");
    assert_eq!(beta["state"], "cooling_down");
    assert!(
        beta["cooldown_remaining_secs"].as_u64().unwrap() >= 3600,
        "billing cools for hours: {beta}"
    );
    assert_eq!(find("gamma")["state"], "active");
    // Status never shows a secret.
    assert!(!status.to_string().contains("test-secret"));
    h.shutdown().await;
}

#[tokio::test]
async fn overloaded_and_server_errors_fail_over_without_disabling() {
    let h = Harness::start(Options::default()).await;
    h.mock.push_scenario("alpha", Scenario::Overloaded, 1);
    h.mock.push_scenario("beta", Scenario::ServerError, 1);
    let r = h.message(false).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // alpha (529) then beta (500) then gamma served it.
    assert_eq!(h.mock.call_count("alpha"), 1);
    assert_eq!(h.mock.call_count("beta"), 1);
    assert_eq!(h.mock.call_count("gamma"), 1);
    for name in ["alpha", "beta", "gamma"] {
        assert_eq!(h.state_of(name).await, "active", "{name}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn a_client_error_passes_through_after_exactly_one_call() {
    let h = Harness::start(Options::default()).await;
    let r = h
        .post("/v1/messages")
        .json(&serde_json::json!({"model": "claude-sonnet-5-5", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens")
    );
    assert_eq!(h.mock.calls().len(), 1, "exactly one upstream call");
    for name in ["alpha", "beta", "gamma"] {
        assert_eq!(h.state_of(name).await, "active");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn when_every_credential_is_cooling_the_client_gets_429_with_retry_after() {
    let h = Harness::start(Options {
        keys: vec![key("alpha"), key("beta")],
        ..Options::default()
    })
    .await;
    h.mock.push_scenario(
        "alpha",
        Scenario::RateLimited {
            retry_after_secs: 30,
        },
        1,
    );
    h.mock.push_scenario(
        "beta",
        Scenario::RateLimited {
            retry_after_secs: 20,
        },
        1,
    );
    let r = h.message(false).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (19..=20).contains(&retry),
        "soonest credential frees in 20 s, got {retry}"
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");

    // Now nothing is even tried: the answer comes from the pool, with zero upstream calls.
    let before = h.mock.calls().len();
    let r = h.message(false).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(h.mock.calls().len(), before);
    h.shutdown().await;
}

#[tokio::test]
async fn sticky_sessions_stay_on_one_credential() {
    let h = Harness::start(Options {
        env: vec![("KEYLOOP_POOL__STICKY", "true".into())],
        ..Options::default()
    })
    .await;
    for _ in 0..6 {
        let r = h
            .message(false)
            .header("x-claude-code-session-id", "conversation-1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let counts: Vec<usize> = ["alpha", "beta", "gamma"]
        .iter()
        .map(|n| h.mock.call_count(n))
        .collect();
    assert_eq!(counts.iter().filter(|c| **c == 6).count(), 1, "{counts:?}");
    h.shutdown().await;
}

#[tokio::test]
async fn after_a_429_another_organisation_is_tried_first() {
    let h = Harness::start(Options {
        groups: vec![("alpha", "org-1"), ("beta", "org-1"), ("gamma", "org-2")],
        ..Options::default()
    })
    .await;
    h.mock.push_scenario(
        "alpha",
        Scenario::RateLimited {
            retry_after_secs: 30,
        },
        1,
    );
    let r = h.message(false).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(h.mock.call_count("alpha"), 1);
    assert_eq!(
        h.mock.call_count("beta"),
        0,
        "beta shares alpha's organisation limits"
    );
    assert_eq!(h.mock.call_count("gamma"), 1);
    h.shutdown().await;
}
