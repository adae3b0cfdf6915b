//! Rate-limit headers from per-key token buckets, and real 429s when a limit is exceeded.

use keyloop_mock::Limits;
use serde_json::json;

use crate::support::*;

fn number(response: &reqwest::Response, name: &str) -> u64 {
    header(response, name).parse().unwrap()
}

#[tokio::test]
async fn headers_report_the_buckets_and_decrease() {
    let mock = start_limited(Limits {
        rpm: Some(50),
        input_tpm: Some(30_000),
        output_tpm: Some(8_000),
    })
    .await;
    let first = messages(&mock, &hello()).await;
    let second = messages(&mock, &hello()).await;
    assert_eq!(number(&first, "anthropic-ratelimit-requests-limit"), 50);
    assert_eq!(number(&first, "anthropic-ratelimit-requests-remaining"), 49);
    assert_eq!(
        number(&second, "anthropic-ratelimit-requests-remaining"),
        48
    );
    assert_eq!(
        number(&first, "anthropic-ratelimit-input-tokens-limit"),
        30_000
    );
    assert_eq!(
        number(&first, "anthropic-ratelimit-output-tokens-limit"),
        8_000
    );
    assert_eq!(number(&first, "anthropic-ratelimit-tokens-limit"), 38_000);
    for name in [
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-output-tokens-remaining",
    ] {
        assert_eq!(
            number(&first, name) % 1000,
            0,
            "{name} is rounded to thousands"
        );
    }
    for name in [
        "anthropic-ratelimit-requests-reset",
        "anthropic-ratelimit-tokens-reset",
        "anthropic-ratelimit-input-tokens-reset",
        "anthropic-ratelimit-output-tokens-reset",
    ] {
        let reset = header(&second, name);
        assert!(
            reset.ends_with('Z') && !reset.contains('.'),
            "{name}: {reset}"
        );
        let reset: jiff::Timestamp = reset.parse().unwrap();
        assert!(reset >= jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1));
    }
}

#[tokio::test]
async fn token_buckets_drain_by_the_answer_usage() {
    let mock = start_limited(Limits {
        input_tpm: Some(10_000),
        output_tpm: Some(10_000),
        ..Limits::default()
    })
    .await;
    let long = "word ".repeat(4_000);
    let body = json!({
        "model": "claude-sonnet-5-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": long}],
    });
    let response = messages(&mock, &body).await;
    assert_eq!(
        number(&response, "anthropic-ratelimit-input-tokens-remaining"),
        5_000
    );
    assert_eq!(
        number(&response, "anthropic-ratelimit-output-tokens-remaining"),
        10_000
    );
    let refused = messages(&mock, &body).await;
    assert!(number(&refused, "retry-after") >= 1);
    let message = expect_error(refused, 429, "rate_limit_error").await;
    assert!(
        message.contains("10,000 input tokens per minute"),
        "{message}"
    );
}

#[tokio::test]
async fn exceeding_rpm_gives_a_429_with_retry_after() {
    let mock = start_limited(Limits {
        rpm: Some(2),
        ..Limits::default()
    })
    .await;
    assert_eq!(messages(&mock, &hello()).await.status(), 200);
    assert_eq!(messages(&mock, &hello()).await.status(), 200);
    let refused = messages(&mock, &hello()).await;
    let retry_after = number(&refused, "retry-after");
    assert!(
        (29..=30).contains(&retry_after),
        "one request refills in 30 s: {retry_after}"
    );
    assert_eq!(header(&refused, "x-should-retry"), "true");
    assert_eq!(
        number(&refused, "anthropic-ratelimit-requests-remaining"),
        0
    );
    let message = expect_error(refused, 429, "rate_limit_error").await;
    assert!(
        message.contains("rate limit of 2 requests per minute"),
        "{message}"
    );
}

#[tokio::test]
async fn unlimited_keys_always_report_full_headroom() {
    let mock = start().await;
    for _ in 0..3 {
        let response = messages(&mock, &hello()).await;
        let limit = number(&response, "anthropic-ratelimit-requests-limit");
        assert_eq!(
            number(&response, "anthropic-ratelimit-requests-remaining"),
            limit
        );
    }
}
