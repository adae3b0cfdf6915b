//! Scripted scenarios: status answers, stream shapes, FIFO consumption, chaos, replay.

use std::time::{Duration, Instant};

use bytes::Bytes;
use keyloop_mock::Scenario;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn rate_limited_answers_429_with_retry_headers_once() {
    let mock = start().await;
    mock.push_scenario(
        "a",
        Scenario::RateLimited {
            retry_after_secs: 7,
        },
        1,
    );
    let response = messages(&mock, &hello()).await;
    assert_eq!(header(&response, "retry-after"), "7");
    assert_eq!(header(&response, "x-should-retry"), "true");
    assert_eq!(
        header(&response, "anthropic-ratelimit-requests-remaining"),
        "0"
    );
    let reset = header(&response, "anthropic-ratelimit-requests-reset").to_owned();
    let reset: jiff::Timestamp = reset.parse().unwrap();
    let ahead = reset.duration_since(jiff::Timestamp::now());
    assert!(ahead.as_secs() >= 5 && ahead.as_secs() <= 8, "{ahead:?}");
    header(&response, "anthropic-ratelimit-input-tokens-remaining");
    expect_error(response, 429, "rate_limit_error").await;
    assert_eq!(messages(&mock, &hello()).await.status(), 200);
}

#[tokio::test]
async fn status_scenarios_answer_with_the_api_errors() {
    let mock = start().await;
    let cases = [
        (Scenario::Overloaded, 529, "overloaded_error", "true"),
        (Scenario::ServerError, 500, "api_error", "true"),
        (Scenario::Unauthorized, 401, "authentication_error", "false"),
        (
            Scenario::CreditBalance,
            400,
            "invalid_request_error",
            "false",
        ),
    ];
    for (scenario, status, kind, retry) in cases {
        mock.push_scenario("a", scenario, 1);
        let response = messages(&mock, &hello_stream()).await;
        assert_eq!(header(&response, "x-should-retry"), retry);
        assert_eq!(header(&response, "content-type"), "application/json");
        let message = expect_error(response, status, kind).await;
        match status {
            401 => assert_eq!(message, "invalid x-api-key"),
            400 => assert_eq!(
                message,
                "Your credit balance is too low to access the Anthropic API. Please go to \
                 Plans & Billing to upgrade or purchase credits."
            ),
            529 => assert_eq!(message, "Overloaded"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn queue_is_fifo_per_key_and_counts_times() {
    let mock = start().await;
    mock.push_scenario("a", Scenario::Overloaded, 2);
    mock.push_scenario("a", Scenario::ServerError, 1);
    assert_eq!(
        post(&mock, KEY_B, "/v1/messages")
            .json(&hello())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let statuses = [
        messages(&mock, &hello()).await.status(),
        messages(&mock, &hello()).await.status(),
        messages(&mock, &hello()).await.status(),
        messages(&mock, &hello()).await.status(),
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [529, 529, 500, 200]);
}

#[tokio::test]
async fn clear_scenarios_empties_the_queue() {
    let mock = start().await;
    mock.push_scenario("a", Scenario::Overloaded, 5);
    mock.clear_scenarios("a");
    assert_eq!(messages(&mock, &hello()).await.status(), 200);
}

#[tokio::test]
async fn count_tokens_consumes_status_scenarios_only() {
    let mock = start().await;
    let count = || {
        post(&mock, KEY_A, "/v1/messages/count_tokens")
            .json(&json!({"model": "claude-sonnet-5-5", "messages": [{"role": "user", "content": "x"}]}))
            .send()
    };
    mock.push_scenario("a", Scenario::Overloaded, 1);
    assert_eq!(count().await.unwrap().status(), 529);
    mock.push_scenario("a", Scenario::MidStreamError { after_events: 3 }, 1);
    assert_eq!(
        count().await.unwrap().status(),
        200,
        "stream shapes are left queued"
    );
    let events = parse_sse(&messages(&mock, &hello_stream()).await.text().await.unwrap());
    assert_eq!(events.last().unwrap().name, "error");
}

#[tokio::test]
async fn slow_first_token_waits_after_message_start_and_ping() {
    let mock = start().await;
    let delay = Duration::from_millis(300);
    mock.push_scenario("a", Scenario::SlowFirstToken { delay }, 1);
    let mut response = messages(&mock, &hello_stream()).await;
    let mut received = String::new();
    let mut preamble_at = None;
    while let Some(chunk) = response.chunk().await.unwrap() {
        received.push_str(std::str::from_utf8(&chunk).unwrap());
        let events = parse_sse(&received);
        if preamble_at.is_none() && names(&events).contains(&"ping") {
            assert!(!names(&events).contains(&"content_block_delta"));
            preamble_at = Some(Instant::now());
        }
        if names(&events).contains(&"content_block_delta") {
            break;
        }
    }
    let waited = preamble_at.expect("ping before the first delta").elapsed();
    assert!(waited >= delay - Duration::from_millis(20), "{waited:?}");

    mock.push_scenario("a", Scenario::SlowFirstToken { delay }, 1);
    let started = Instant::now();
    assert_eq!(messages(&mock, &hello()).await.status(), 200);
    assert!(started.elapsed() >= delay);
}

#[tokio::test]
async fn cut_mid_stream_drops_the_connection_after_n_events() {
    let mock = start().await;
    mock.push_scenario("a", Scenario::CutMidStream { after_events: 5 }, 1);
    let (chunks, clean) = read_chunks(messages(&mock, &hello_stream()).await).await;
    assert!(!clean, "the body must end in an error, not a clean end");
    let events = parse_sse(&text_of(&chunks));
    assert_eq!(events.len(), 5);
    assert!(!names(&events).contains(&"error"));

    mock.push_scenario("a", Scenario::CutMidStream { after_events: 5 }, 1);
    let (chunks, clean) = read_chunks(messages(&mock, &hello()).await).await;
    assert!(!clean);
    assert!(serde_json::from_slice::<serde_json::Value>(&chunks.concat()).is_err());
}

#[tokio::test]
async fn stall_holds_the_stream_open_until_shutdown() {
    let mock = start().await;
    mock.push_scenario("a", Scenario::Stall { after_events: 4 }, 1);
    let mut response = messages(&mock, &hello_stream()).await;
    let mut received = String::new();
    while parse_sse(&received).len() < 4 {
        let chunk = response
            .chunk()
            .await
            .unwrap()
            .expect("events before the stall");
        received.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(parse_sse(&received).len(), 4);
    let silent = tokio::time::timeout(Duration::from_millis(200), response.chunk()).await;
    assert!(silent.is_err(), "nothing more arrives while stalled");
    let reader = tokio::spawn(async move { response.chunk().await });
    mock.shutdown().await;
    assert!(
        reader.await.unwrap().is_err(),
        "the stalled stream is cut at shutdown"
    );
}

#[tokio::test]
async fn error_before_content_sends_message_start_ping_then_error() {
    let mock = start().await;
    mock.push_scenario("a", Scenario::ErrorBeforeContent, 1);
    let (chunks, clean) = read_chunks(messages(&mock, &hello_stream()).await).await;
    assert!(clean);
    let events = parse_sse(&text_of(&chunks));
    assert_eq!(names(&events), ["message_start", "ping", "error"]);
    assert_eq!(
        events[2].data,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );

    mock.push_scenario("a", Scenario::ErrorBeforeContent, 1);
    expect_error(messages(&mock, &hello()).await, 529, "overloaded_error").await;
}

#[tokio::test]
async fn mid_stream_error_ends_after_content_without_message_stop() {
    let mock = start().await;
    mock.push_scenario("a", Scenario::MidStreamError { after_events: 5 }, 1);
    let (chunks, clean) = read_chunks(messages(&mock, &hello_stream()).await).await;
    assert!(clean);
    let events = parse_sse(&text_of(&chunks));
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "error"
        ]
    );
    assert_eq!(events[5].data["error"]["type"], "overloaded_error");
}

#[tokio::test]
async fn replay_answers_fixture_bytes_exactly() {
    let mock = start().await;
    let sse = Bytes::from_static(include_bytes!("../fixtures/anthropic-stream-text.sse"));
    mock.push_scenario(
        "a",
        Scenario::Replay {
            status: 200,
            content_type: "text/event-stream".into(),
            body: sse.clone(),
        },
        1,
    );
    let response = messages(&mock, &hello_stream()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    header(&response, "request-id");
    assert_eq!(response.bytes().await.unwrap(), sse);

    let http = include_str!("../fixtures/anthropic-message-response.http");
    let body = Bytes::from(http.split_once("\n\n").unwrap().1.to_owned());
    mock.push_scenario(
        "a",
        Scenario::Replay {
            status: 200,
            content_type: "application/json".into(),
            body: body.clone(),
        },
        1,
    );
    assert_eq!(messages(&mock, &hello()).await.bytes().await.unwrap(), body);
}

#[tokio::test]
async fn chaos_hits_at_the_ratio_and_zero_clears_it() {
    let mock = start().await;
    mock.set_chaos("a", Scenario::Overloaded, 1.0);
    for _ in 0..3 {
        assert_eq!(messages(&mock, &hello()).await.status(), 529);
    }
    mock.push_scenario("a", Scenario::ServerError, 1);
    assert_eq!(
        messages(&mock, &hello()).await.status(),
        500,
        "the queue comes first"
    );
    mock.set_chaos("a", Scenario::Overloaded, 0.0);
    assert_eq!(messages(&mock, &hello()).await.status(), 200);

    mock.set_chaos("a", Scenario::Overloaded, 0.5);
    let mut hits = 0;
    for _ in 0..200 {
        if messages(&mock, &hello()).await.status() == 529 {
            hits += 1;
        }
    }
    assert!((40..=160).contains(&hits), "{hits} of 200");
}

#[tokio::test]
async fn failover_status_scenarios_have_the_api_shapes() {
    let mock = start().await;
    let mut opus = hello();
    opus["model"] = json!("claude-opus-5-5");

    mock.push_scenario("a", Scenario::PermissionDenied, 1);
    let response = messages(&mock, &opus).await;
    assert_eq!(header(&response, "x-should-retry"), "false");
    let message = expect_error(response, 403, "permission_error").await;
    assert_eq!(
        message,
        "Your credential does not have access to model claude-opus-5-5"
    );

    mock.push_scenario("a", Scenario::BillingError, 1);
    let response = messages(&mock, &hello()).await;
    assert_eq!(header(&response, "x-should-retry"), "false");
    expect_error(response, 402, "billing_error").await;

    mock.push_scenario("a", Scenario::CreditBalanceInInput, 1);
    let message = expect_error(
        messages(&mock, &hello()).await,
        400,
        "invalid_request_error",
    )
    .await;
    assert!(message.contains("credit balance is too low"), "{message}");
    assert!(
        message.starts_with("messages.0.content"),
        "a validation error: {message}"
    );
    assert!(
        !message.contains("Plans & Billing"),
        "not the billing message: {message}"
    );

    assert_eq!(
        messages(&mock, &opus).await.status(),
        200,
        "scenarios were one-shot"
    );
}

#[tokio::test]
async fn a_key_refuses_denied_models_and_serves_the_others() {
    let mock = start_with(keyloop_mock::MockConfig::with_keys([
        keyloop_mock::MockKey::new("a", KEY_A).deny_models(["claude-opus-5-5"]),
    ]))
    .await;
    let mut opus = hello();
    opus["model"] = json!("claude-opus-5-5");
    let message = expect_error(messages(&mock, &opus).await, 403, "permission_error").await;
    assert_eq!(
        message,
        "Your credential does not have access to model claude-opus-5-5"
    );
    let counted = post(&mock, KEY_A, "/v1/messages/count_tokens")
        .json(&opus)
        .send()
        .await
        .unwrap();
    expect_error(counted, 403, "permission_error").await;
    let complete = post(&mock, KEY_A, "/v1/complete")
        .json(&json!({
            "model": "claude-opus-5-5",
            "prompt": "\n\nHuman: hi\n\nAssistant:",
            "max_tokens_to_sample": 10,
        }))
        .send()
        .await
        .unwrap();
    expect_error(complete, 403, "permission_error").await;
    let mut sonnet = hello();
    sonnet["model"] = json!("claude-sonnet-5-5");
    assert_eq!(messages(&mock, &sonnet).await.status(), 200);
    // A refused model takes nothing from the limits.
    let response = messages(&mock, &opus).await;
    assert_eq!(
        header(&response, "anthropic-ratelimit-requests-remaining"),
        "4000"
    );
}

#[tokio::test]
async fn alternate_hits_every_second_request_deterministically() {
    let mock = start().await;
    mock.set_alternate(
        "a",
        Scenario::RateLimited {
            retry_after_secs: 2,
        },
    );
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(messages(&mock, &hello()).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 429, 200, 429, 200, 429]);
    // The queue comes first and does not advance the alternation.
    mock.push_scenario("a", Scenario::Overloaded, 1);
    assert_eq!(messages(&mock, &hello()).await.status(), 529);
    assert_eq!(messages(&mock, &hello()).await.status(), 200);
    let refused = messages(&mock, &hello()).await;
    assert_eq!(header(&refused, "retry-after"), "2");
    assert_eq!(refused.status(), 429);
    // Other keys are not affected; clearing ends it.
    let b = post(&mock, KEY_B, "/v1/messages").json(&hello());
    assert_eq!(b.send().await.unwrap().status(), 200);
    mock.clear_scenarios("a");
    for _ in 0..3 {
        assert_eq!(messages(&mock, &hello()).await.status(), 200);
    }
}

#[tokio::test]
async fn a_cut_before_content_ends_after_message_start() {
    let mock = start().await;
    mock.push_scenario("a", Scenario::CutMidStream { after_events: 1 }, 1);
    let response = messages(&mock, &hello_stream()).await;
    assert_eq!(response.status(), 200);
    let (chunks, clean) = read_chunks(response).await;
    assert!(!clean);
    let events = parse_sse(&text_of(&chunks));
    assert_eq!(names(&events), ["message_start"]);
}
