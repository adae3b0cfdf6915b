use std::time::Duration;

use super::*;

fn cost(input: u64, output: u64) -> Cost {
    Cost {
        input_tokens: input,
        output_tokens: output,
    }
}

#[tokio::test(start_paused = true)]
async fn requests_refill_continuously() {
    let buckets = Buckets::new(Limits {
        rpm: Some(60),
        ..Limits::default()
    });
    for _ in 0..60 {
        buckets.admit(cost(1, 1)).unwrap();
    }
    let refused = buckets.admit(cost(1, 1)).unwrap_err();
    assert_eq!(refused.dimension, Dimension::Requests);
    assert_eq!(refused.retry_after_secs, 1);
    tokio::time::advance(Duration::from_secs(1)).await;
    buckets.admit(cost(1, 1)).unwrap();
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_the_longest_wait() {
    let buckets = Buckets::new(Limits {
        rpm: Some(600),
        input_tpm: Some(6_000),
        output_tpm: Some(600),
    });
    buckets.admit(cost(6_000, 300)).unwrap();
    let refused = buckets.admit(cost(3_000, 10)).unwrap_err();
    assert_eq!(refused.dimension, Dimension::InputTokens);
    // 3,000 tokens at 100 per second.
    assert_eq!(refused.retry_after_secs, 30);
    assert_eq!(refused.limit, 6_000);
}

#[tokio::test(start_paused = true)]
async fn oversized_requests_wait_a_minute() {
    let buckets = Buckets::new(Limits {
        output_tpm: Some(100),
        ..Limits::default()
    });
    let refused = buckets.admit(cost(1, 101)).unwrap_err();
    assert_eq!(refused.dimension, Dimension::OutputTokens);
    assert_eq!(refused.retry_after_secs, 60);
}

#[test]
fn header_values() {
    assert_eq!(nearest_thousand(1_499), 1_000);
    assert_eq!(nearest_thousand(1_500), 2_000);
    assert_eq!(thousands(30_000), "30,000");
    assert_eq!(thousands(2_000_000), "2,000,000");
    assert_eq!(thousands(50), "50");
    let now = Timestamp::from_second(1_767_268_800).unwrap();
    assert_eq!(
        reset_at(now, Duration::from_millis(1_200)),
        "2026-01-01T12:00:02Z"
    );
    assert_eq!(reset_at(now, Duration::ZERO), "2026-01-01T12:00:00Z");
}

#[test]
fn unlimited_snapshot_writes_the_full_set() {
    let mut headers = HeaderMap::new();
    Snapshot::unlimited().write_headers(&mut headers, Timestamp::UNIX_EPOCH);
    assert_eq!(headers.len(), 12);
    assert_eq!(headers["anthropic-ratelimit-tokens-limit"], "2400000");
    assert_eq!(headers["anthropic-ratelimit-requests-remaining"], "4000");
}
