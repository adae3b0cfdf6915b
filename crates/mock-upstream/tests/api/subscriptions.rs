//! Subscription (OAuth) accounts: the unified rate-limit headers, windows that fill per
//! request and refuse when full, model-scoped windows, overage, and setting a window's
//! utilization from a test.

use std::time::Duration;

use keyloop_mock::{MockConfig, MockKey, MockUpstream, Overage, Scenario, Subscription, Window};
use serde_json::json;

use crate::support::*;

const OPUS: &str = "claude-opus-5-5";
const SONNET: &str = "claude-sonnet-5-5";
const FIVE_HOURS: u64 = 5 * 60 * 60;

async fn start_subscription(subscription: Subscription) -> MockUpstream {
    start_with(MockConfig::with_keys([
        MockKey::new("a", KEY_A),
        MockKey::new("oauth", OAUTH).with_subscription(subscription),
    ]))
    .await
}

fn unified<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    header(response, &format!("anthropic-ratelimit-unified-{name}"))
}

fn epoch_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[tokio::test]
async fn oauth_keys_answer_with_the_unified_family_instead_of_the_classic_one() {
    let mock = start().await;
    let response = oauth_messages(&mock, OAUTH, SONNET).await;
    assert_eq!(response.status(), 200);
    assert_eq!(unified(&response, "status"), "allowed");
    assert_eq!(unified(&response, "representative-claim"), "five_hour");
    assert_eq!(unified(&response, "fallback"), "available");
    for window in ["5h", "7d"] {
        assert_eq!(unified(&response, &format!("{window}-status")), "allowed");
        assert_eq!(unified(&response, &format!("{window}-utilization")), "0.00");
        let reset: i64 = unified(&response, &format!("{window}-reset"))
            .parse()
            .unwrap();
        assert!(
            reset > epoch_now(),
            "{window} resets in the future: {reset}"
        );
    }
    let reset: i64 = unified(&response, "reset").parse().unwrap();
    assert_eq!(reset.to_string(), unified(&response, "5h-reset"));
    assert!((reset - epoch_now()).abs_diff(FIVE_HOURS as i64) <= 5);
    let names: Vec<&str> = response.headers().keys().map(|n| n.as_str()).collect();
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("anthropic-ratelimit-requests")
                || n.starts_with("anthropic-ratelimit-tokens")
                || n.starts_with("anthropic-ratelimit-input-tokens")
                || n.starts_with("anthropic-ratelimit-output-tokens")),
        "no classic headers on an OAuth answer: {names:?}"
    );
    for absent in ["7d_opus", "7d_sonnet", "7d_oi", "overage"] {
        assert!(
            !names
                .iter()
                .any(|n| n.contains(&format!("unified-{absent}-"))),
            "{absent} is not configured: {names:?}"
        );
    }
    assert!(!names.iter().any(|n| n.ends_with("-surpassed-threshold")));

    let models = post_oauth(&mock, OAUTH, "/v1/models").send().await.unwrap();
    // An answer that serves no generation still reports the windows.
    assert_eq!(
        maybe_header(&models, "anthropic-ratelimit-unified-status"),
        Some("allowed")
    );

    let api_key = messages(&mock, &hello()).await;
    assert!(maybe_header(&api_key, "anthropic-ratelimit-unified-status").is_none());
    header(&api_key, "anthropic-ratelimit-requests-limit");
}

#[tokio::test(start_paused = true)]
async fn a_full_window_answers_429_rejected_until_its_reset() {
    let mock = start_subscription(Subscription {
        five_hour: 2,
        seven_day: 100,
        ..Subscription::default()
    })
    .await;
    let first = oauth_messages(&mock, OAUTH, SONNET).await;
    assert_eq!(unified(&first, "5h-utilization"), "0.50");
    assert_eq!(unified(&first, "7d-utilization"), "0.01");
    let second = oauth_messages(&mock, OAUTH, SONNET).await;
    assert_eq!(second.status(), 200);
    assert_eq!(unified(&second, "5h-utilization"), "1.00");
    assert_eq!(unified(&second, "5h-status"), "rejected");
    assert_eq!(unified(&second, "5h-surpassed-threshold"), "0.75");
    assert_eq!(
        unified(&second, "status"),
        "allowed_warning",
        "it was served"
    );

    let refused = oauth_messages(&mock, OAUTH, SONNET).await;
    assert_eq!(unified(&refused, "status"), "rejected");
    assert_eq!(unified(&refused, "representative-claim"), "five_hour");
    assert_eq!(unified(&refused, "reset"), unified(&refused, "5h-reset"));
    assert_eq!(unified(&refused, "7d-status"), "allowed");
    assert_eq!(header(&refused, "retry-after"), FIVE_HOURS.to_string());
    assert_eq!(header(&refused, "x-should-retry"), "true");
    let message = expect_error(refused, 429, "rate_limit_error").await;
    assert_eq!(
        message,
        "This request would exceed your account's rate limit. Please try again later."
    );

    tokio::time::advance(Duration::from_secs(FIVE_HOURS - 10)).await;
    let still = oauth_messages(&mock, OAUTH, SONNET).await;
    assert_eq!(header(&still, "retry-after"), "10");
    tokio::time::advance(Duration::from_secs(10)).await;
    let after = oauth_messages(&mock, OAUTH, SONNET).await;
    assert_eq!(after.status(), 200);
    assert_eq!(unified(&after, "5h-utilization"), "0.50");
    assert_eq!(
        unified(&after, "7d-utilization"),
        "0.03",
        "the week keeps counting"
    );
}

#[tokio::test]
async fn a_model_scoped_window_holds_back_only_its_models() {
    let mock = start_subscription(Subscription {
        seven_day_opus: Some(1),
        seven_day_sonnet: Some(50),
        ..Subscription::default()
    })
    .await;
    assert_eq!(oauth_messages(&mock, OAUTH, OPUS).await.status(), 200);
    let refused = oauth_messages(&mock, OAUTH, OPUS).await;
    assert_eq!(unified(&refused, "representative-claim"), "seven_day_opus");
    assert_eq!(unified(&refused, "7d_opus-status"), "rejected");
    assert_eq!(unified(&refused, "5h-status"), "allowed");
    let retry_after: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!(retry_after > 6 * 24 * 60 * 60, "a week away: {retry_after}");
    expect_error(refused, 429, "rate_limit_error").await;

    let sonnet = oauth_messages(&mock, OAUTH, SONNET).await;
    assert_eq!(sonnet.status(), 200);
    assert_eq!(unified(&sonnet, "status"), "allowed");
    assert_eq!(unified(&sonnet, "7d_opus-status"), "rejected");
    assert_eq!(unified(&sonnet, "7d_sonnet-utilization"), "0.02");
    assert_eq!(unified(&sonnet, "7d_opus-utilization"), "1.00");
    let haiku = oauth_messages(&mock, OAUTH, "claude-haiku-5-5").await;
    assert_eq!(haiku.status(), 200);
    assert_eq!(unified(&haiku, "7d_sonnet-utilization"), "0.02");
}

#[tokio::test]
async fn overage_serves_once_the_included_windows_are_spent_then_runs_out() {
    let mock = start_subscription(Subscription {
        five_hour: 1,
        overage: Some(Overage {
            credit: 1,
            disabled_reason: None,
        }),
        ..Subscription::default()
    })
    .await;
    let included = oauth_messages(&mock, OAUTH, SONNET).await;
    assert_eq!(unified(&included, "overage-status"), "allowed");
    assert_eq!(unified(&included, "overage-in-use"), "false");
    assert!(
        maybe_header(
            &included,
            "anthropic-ratelimit-unified-overage-disabled-reason"
        )
        .is_none()
    );
    let reset: i64 = unified(&included, "overage-reset").parse().unwrap();
    assert!(reset > epoch_now());

    let overage = oauth_messages(&mock, OAUTH, SONNET).await;
    assert_eq!(overage.status(), 200);
    assert_eq!(unified(&overage, "overage-in-use"), "true");
    assert_eq!(unified(&overage, "status"), "allowed");
    assert_eq!(unified(&overage, "5h-status"), "rejected");
    assert_eq!(unified(&overage, "representative-claim"), "five_hour");

    let refused = oauth_messages(&mock, OAUTH, SONNET).await;
    assert_eq!(unified(&refused, "overage-status"), "rejected");
    assert_eq!(
        unified(&refused, "overage-disabled-reason"),
        "out_of_credits"
    );
    assert_eq!(unified(&refused, "overage-in-use"), "false");
    expect_error(refused, 429, "rate_limit_error").await;
}

#[tokio::test]
async fn disabled_overage_is_rejected_with_its_reason() {
    let mock = start_subscription(Subscription {
        five_hour: 1,
        overage: Some(Overage {
            credit: 100,
            disabled_reason: Some("org_level_disabled".to_owned()),
        }),
        ..Subscription::default()
    })
    .await;
    let served = oauth_messages(&mock, OAUTH, SONNET).await;
    assert_eq!(unified(&served, "overage-status"), "rejected");
    assert_eq!(
        unified(&served, "overage-disabled-reason"),
        "org_level_disabled"
    );
    let refused = oauth_messages(&mock, OAUTH, SONNET).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(
        unified(&refused, "overage-disabled-reason"),
        "org_level_disabled"
    );
}

#[tokio::test]
async fn the_overage_included_window_caps_overage_too() {
    let mock = start_subscription(Subscription {
        five_hour: 1,
        seven_day_overage_included: Some(2),
        overage: Some(Overage {
            credit: 100,
            disabled_reason: None,
        }),
        ..Subscription::default()
    })
    .await;
    assert_eq!(oauth_messages(&mock, OAUTH, SONNET).await.status(), 200);
    let overage = oauth_messages(&mock, OAUTH, SONNET).await;
    assert_eq!(unified(&overage, "overage-in-use"), "true");
    assert_eq!(unified(&overage, "7d_oi-utilization"), "1.00");
    let refused = oauth_messages(&mock, OAUTH, SONNET).await;
    assert_eq!(
        unified(&refused, "representative-claim"),
        "seven_day_overage_included"
    );
    assert_eq!(
        unified(&refused, "overage-status"),
        "allowed",
        "credit is left"
    );
    expect_error(refused, 429, "rate_limit_error").await;
}

#[tokio::test]
async fn streams_fill_windows_and_carry_the_headers() {
    let mock = start_subscription(Subscription {
        five_hour: 4,
        ..Subscription::default()
    })
    .await;
    let mut body = hello_stream();
    body["model"] = json!(SONNET);
    let response = post_oauth(&mock, OAUTH, "/v1/messages")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&response, "content-type"),
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(unified(&response, "5h-utilization"), "0.25");
    // count_tokens charges nothing.
    let counted = post_oauth(&mock, OAUTH, "/v1/messages/count_tokens")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(unified(&counted, "5h-utilization"), "0.25");
}

#[tokio::test]
async fn utilization_can_be_set_from_a_test_and_over_http() {
    let mock = start_subscription(Subscription {
        five_hour: 100,
        seven_day_sonnet: Some(100),
        ..Subscription::default()
    })
    .await;
    mock.set_window_utilization("oauth", Window::FiveHour, 0.9);
    let models = post_oauth(&mock, OAUTH, "/v1/models").send().await.unwrap();
    assert_eq!(unified(&models, "status"), "allowed_warning");
    assert_eq!(unified(&models, "5h-status"), "allowed_warning");
    assert_eq!(unified(&models, "5h-utilization"), "0.90");
    assert_eq!(unified(&models, "5h-surpassed-threshold"), "0.75");
    assert_eq!(unified(&models, "representative-claim"), "five_hour");

    let response = client()
        .post(format!("{}/_mock/window", mock.url()))
        .json(&json!({"key": "oauth", "window": "7d_sonnet", "utilization": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let refused = oauth_messages(&mock, OAUTH, SONNET).await;
    assert_eq!(
        unified(&refused, "representative-claim"),
        "seven_day_sonnet"
    );
    expect_error(refused, 429, "rate_limit_error").await;
    assert_eq!(oauth_messages(&mock, OAUTH, OPUS).await.status(), 200);

    let errors = [
        json!({"key": "oauth", "window": "7d_opus", "utilization": 0.5}),
        json!({"key": "a", "window": "5h", "utilization": 0.5}),
        json!({"key": "oauth", "window": "5h", "utilization": 1.5}),
    ];
    for body in errors {
        let response = client()
            .post(format!("{}/_mock/window", mock.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
    }
}

#[tokio::test]
#[should_panic(expected = "has no 7d_opus window configured")]
async fn setting_an_unconfigured_window_panics() {
    let mock = start().await;
    mock.set_window_utilization("oauth", Window::SevenDayOpus, 0.5);
}

#[tokio::test]
async fn a_scripted_429_on_an_oauth_key_reports_the_windows_as_they_are() {
    let mock = start().await;
    mock.push_scenario(
        "oauth",
        Scenario::RateLimited {
            retry_after_secs: 3,
        },
        1,
    );
    let response = oauth_messages(&mock, OAUTH, SONNET).await;
    assert_eq!(header(&response, "retry-after"), "3");
    assert_eq!(unified(&response, "status"), "allowed");
    assert!(maybe_header(&response, "anthropic-ratelimit-requests-remaining").is_none());
    expect_error(response, 429, "rate_limit_error").await;
}

#[tokio::test]
async fn per_minute_limits_of_an_oauth_key_refuse_without_charging_the_windows() {
    let mock = start_with(MockConfig::with_keys([MockKey::new("oauth", OAUTH)
        .with_limits(keyloop_mock::Limits {
            rpm: Some(1),
            ..Default::default()
        })
        .with_subscription(Subscription {
            five_hour: 10,
            ..Subscription::default()
        })]))
    .await;
    assert_eq!(oauth_messages(&mock, OAUTH, SONNET).await.status(), 200);
    let refused = oauth_messages(&mock, OAUTH, SONNET).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(unified(&refused, "5h-utilization"), "0.10");
    assert_eq!(unified(&refused, "status"), "allowed");
    assert!(maybe_header(&refused, "anthropic-ratelimit-requests-limit").is_none());
}
