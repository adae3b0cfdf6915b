//! Every request becomes one usage record with exact tokens and cost, whatever its ending.
//! Costs are worked out by hand from the price list (USD per million tokens × 1,000 = nano-
//! dollars per token) and compared with what the ledger stored.

mod support;

use std::time::Duration;

use bytes::Bytes;
use keyloop::accounting::RequestOutcome;
use keyloop::store::{LogFilter, UsageRow};
use keyloop_mock::Scenario;
use support::{Harness, Options, fixture, key, sse_events};

async fn records(h: &Harness) -> Vec<UsageRow> {
    h.gateway.ledger_settled().await;
    h.gateway
        .ledger
        .usage_log(&LogFilter::default())
        .await
        .unwrap()
}

fn replay(body: Bytes, stream: bool) -> Scenario {
    Scenario::Replay {
        status: 200,
        content_type: if stream {
            "text/event-stream; charset=utf-8".into()
        } else {
            "application/json".into()
        },
        body,
    }
}

/// The body of an `.http` fixture: after the `#` commentary and the header block.
fn http_body(name: &str) -> Bytes {
    let text = String::from_utf8(fixture(name)).unwrap();
    let message: String = text
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let (_, body) = message.split_once("\n\n").unwrap();
    Bytes::from(body.to_owned())
}

#[tokio::test]
async fn usage_and_cost_from_the_fixtures() {
    let h = Harness::start(Options {
        keys: vec![key("alpha")],
        ..Options::default()
    })
    .await;
    // (fixture, stream, served model, input, output, cache read, expected nano-dollars)
    let cases = [
        // Haiku 4.5: 11 × 1000 + 6 × 5000
        (
            "anthropic-stream-text.sse",
            true,
            "claude-haiku-4-5-20251001",
            11,
            6,
            0,
            41_000,
        ),
        // Sonnet 5.5: 412 × 2000 + 79 × 10000
        (
            "anthropic-stream-tool-use.sse",
            true,
            "claude-sonnet-5-5",
            412,
            79,
            0,
            1_614_000,
        ),
        // Opus 4.8: 96 × 5000 + 214 × 25000 (thinking is output)
        (
            "anthropic-stream-thinking.sse",
            true,
            "claude-opus-4-8",
            96,
            214,
            0,
            5_830_000,
        ),
        // Haiku 4.5: 14 × 1000 + 2048 × 100 (cache read) + 38 × 5000
        (
            "anthropic-message-response.http",
            false,
            "claude-haiku-4-5-20251001",
            14,
            38,
            2048,
            408_800,
        ),
    ];
    for (name, stream, ..) in &cases {
        let body = if *stream {
            Bytes::from(fixture(name))
        } else {
            http_body(name)
        };
        h.mock.push_scenario("alpha", replay(body, *stream), 1);
        let response = h.message(*stream).send().await.unwrap();
        assert_eq!(response.status(), 200, "{name}");
        response.bytes().await.unwrap();
    }
    let mut rows = records(&h).await;
    rows.reverse();
    assert_eq!(rows.len(), cases.len());
    for (row, (name, stream, model, input, output, cache_read, cost)) in rows.iter().zip(cases) {
        assert_eq!(row.outcome, RequestOutcome::Success, "{name}");
        assert_eq!(row.streamed, stream, "{name}");
        assert_eq!(row.served_model.as_deref(), Some(model), "{name}");
        assert_eq!(
            row.requested_model.as_deref(),
            Some("claude-sonnet-5-5"),
            "{name}"
        );
        assert_eq!(row.usage.input_tokens, input, "{name}");
        assert_eq!(row.usage.output_tokens, output, "{name}");
        assert_eq!(row.usage.cache_read_tokens, cache_read, "{name}");
        assert_eq!(row.cost_nanos, Some(cost), "{name}");
        assert_eq!(row.key_name.as_deref(), Some("alpha"));
        assert_eq!(row.client_name.as_deref(), Some("tests"));
        assert!(row.ttft_ms.is_some() && row.latency_ms >= row.ttft_ms.unwrap());
    }
    h.shutdown().await;
}

#[tokio::test]
async fn one_hour_cache_writes_are_priced_at_the_one_hour_rate() {
    let h = Harness::start(Options {
        keys: vec![key("alpha")],
        ..Options::default()
    })
    .await;
    let body = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-6",
        "content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","stop_sequence":null,
        "usage":{"input_tokens":10,"cache_creation_input_tokens":3000,"cache_read_input_tokens":0,
        "cache_creation":{"ephemeral_5m_input_tokens":1000,"ephemeral_1h_input_tokens":2000},
        "output_tokens":20}}"#;
    h.mock
        .push_scenario("alpha", replay(Bytes::from(body), false), 1);
    assert_eq!(h.message(false).send().await.unwrap().status(), 200);
    let row = records(&h).await.remove(0);
    assert_eq!(row.usage.cache_write_5m_tokens, 1000);
    assert_eq!(row.usage.cache_write_1h_tokens, 2000);
    // Sonnet 4.6 at $3/M: 10 × 3000 + 1000 × 3750 (5 min) + 2000 × 6000 (1 h) + 20 × 15000
    assert_eq!(
        row.cost_nanos,
        Some(30_000 + 3_750_000 + 12_000_000 + 300_000)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn fast_mode_and_us_only_inference_are_priced_from_request_and_answer() {
    let h = Harness::start(Options {
        keys: vec![key("alpha")],
        ..Options::default()
    })
    .await;
    let body = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-opus-5-5",
        "content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","stop_sequence":null,
        "usage":{"input_tokens":1000,"cache_creation_input_tokens":0,"cache_read_input_tokens":5000,
        "output_tokens":200,"service_tier":"standard","inference_geo":"us"}}"#;
    h.mock
        .push_scenario("alpha", replay(Bytes::from(body), false), 1);
    let r = h
        .post("/v1/messages")
        .json(
            &serde_json::json!({"model": "claude-opus-5-5", "max_tokens": 256,
            "speed": "fast", "inference_geo": "us",
            "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let row = records(&h).await.remove(0);
    assert_eq!(row.speed, keyloop_wire::anthropic::Speed::Fast);
    assert_eq!(
        row.usage.inference_geo,
        keyloop_wire::usage::InferenceGeo::Us
    );
    // Opus 5.5 at $4 in, $0.20 cache read, $20 out per M:
    //   1000 × 4000 + 5000 × 200 + 200 × 20000 = 4,000,000 + 1,000,000 + 4,000,000 = 9,000,000
    // fast mode × 2 (the default) and US-only × 1.1: 9,000,000 × 2.2 = 19,800,000.
    assert_eq!(
        row.cost_nanos,
        Some((1000 * 4000 + 5000 * 200 + 200 * 20000) * 22 / 10)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_model_without_a_price_is_recorded_as_unknown_not_zero() {
    let h = Harness::start(Options {
        keys: vec![key("alpha")],
        ..Options::default()
    })
    .await;
    // Served by the upstream, but without a published price.
    let r = h
        .post("/v1/messages")
        .json(
            &serde_json::json!({"model": "claude-mythos-preview", "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let row = records(&h).await.remove(0);
    assert!(row.usage.output_tokens > 0);
    assert_eq!(row.cost_nanos, None);
    h.shutdown().await;
}

#[tokio::test]
async fn a_stream_cut_after_commit_keeps_its_partial_usage() {
    let h = Harness::start(Options {
        keys: vec![key("alpha")],
        ..Options::default()
    })
    .await;
    // message_start, content_block_start, ping, then 3 deltas, then the connection drops.
    h.mock
        .push_scenario("alpha", Scenario::CutMidStream { after_events: 6 }, 1);
    let body = h.message(true).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("event: error"));
    let row = records(&h).await.remove(0);
    assert_eq!(row.outcome, RequestOutcome::StreamCut);
    assert_eq!(row.status, 200);
    assert!(
        row.usage.input_tokens > 0,
        "input is known from message_start"
    );
    assert_eq!(
        row.usage.output_tokens, 3,
        "one token per delivered delta at least"
    );
    assert!(row.cost_nanos.unwrap() > 0);
    h.shutdown().await;
}

#[tokio::test]
async fn an_error_before_any_content_is_recorded_with_its_attempts() {
    let h = Harness::start(Options {
        keys: vec![key("alpha"), key("beta")],
        ..Options::default()
    })
    .await;
    h.mock
        .push_scenario("alpha", Scenario::ErrorBeforeContent, 1);
    h.mock
        .push_scenario("beta", Scenario::ErrorBeforeContent, 1);
    let r = h.message(true).send().await.unwrap();
    // Committed at once, so the failure arrives as the stream's one error event.
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("event: error"));
    let row = records(&h).await.remove(0);
    assert_eq!(row.outcome, RequestOutcome::UpstreamError);
    assert_eq!(row.status, 200);
    assert_eq!(row.usage.output_tokens, 0);
    assert_eq!(row.cost_nanos, Some(0));
    assert_eq!(row.ttft_ms, None, "no content reached the client");
    assert_eq!(row.key_name.as_deref(), Some("beta"), "the last one tried");
    let tried: Vec<_> = row.attempts.iter().map(|a| a.key_name.as_str()).collect();
    assert_eq!(tried, ["alpha", "beta"]);
    assert!(
        row.attempts
            .iter()
            .all(|a| a.class.as_str() == "overloaded")
    );
    h.shutdown().await;
}

#[tokio::test]
async fn with_a_first_event_hold_an_error_before_content_is_recorded_with_its_status() {
    let h = Harness::start(Options {
        keys: vec![key("alpha"), key("beta")],
        env: vec![("KEYLOOP_UPSTREAM__FIRST_EVENT_HOLD_MS", "10000".into())],
        ..Options::default()
    })
    .await;
    h.mock
        .push_scenario("alpha", Scenario::ErrorBeforeContent, 1);
    h.mock
        .push_scenario("beta", Scenario::ErrorBeforeContent, 1);
    assert_eq!(h.message(true).send().await.unwrap().status(), 529);
    let row = records(&h).await.remove(0);
    assert_eq!(row.outcome, RequestOutcome::UpstreamError);
    assert_eq!(row.status, 529);
    let tried: Vec<_> = row.attempts.iter().map(|a| a.key_name.as_str()).collect();
    assert_eq!(tried, ["alpha", "beta"]);
    h.shutdown().await;
}

/// A stream that says `message_start` (with usage of its own) and `ping`, then fails.
fn overloaded_before_content() -> Scenario {
    let body = concat!(
        "event: message_start\n",
        r#"data: {"type":"message_start","message":{"id":"msg_lost","type":"message","role":"assistant","content":[],"model":"claude-sonnet-5-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":900,"output_tokens":1}}}"#,
        "\n\n",
        "event: ping\n",
        r#"data: {"type": "ping"}"#,
        "\n\n",
        "event: error\n",
        r#"data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        "\n\n",
    );
    replay(Bytes::from_static(body.as_bytes()), true)
}

#[tokio::test]
async fn a_spliced_stream_is_recorded_with_the_replacement_key_and_its_usage() {
    let h = Harness::start(Options {
        keys: vec![key("alpha"), key("beta")],
        ..Options::default()
    })
    .await;
    h.mock
        .push_scenario("alpha", overloaded_before_content(), 1);
    h.mock.push_scenario(
        "beta",
        replay(Bytes::from(fixture("anthropic-stream-text.sse")), true),
        1,
    );
    let response = h.message(true).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    // The client kept the first message_start and got the replacement's content.
    assert_eq!(body.matches("event: message_start").count(), 1, "{body}");
    assert!(body.contains("msg_lost"), "{body}");
    assert!(!body.contains("msg_01TxtStreamExample000001"), "{body}");
    assert!(body.contains(r#""text":" there""#), "{body}");
    assert!(!body.contains("event: error"), "{body}");

    let row = records(&h).await.remove(0);
    assert_eq!(row.outcome, RequestOutcome::Success);
    assert_eq!(row.status, 200);
    assert_eq!(row.key_name.as_deref(), Some("beta"));
    assert_eq!(row.attempts.len(), 1);
    assert_eq!(row.attempts[0].key_name, "alpha");
    assert_eq!(row.attempts[0].class.as_str(), "overloaded");
    // Haiku 4.5, from the replacement's own message_start and message_delta: 11 × 1000 + 6 × 5000.
    assert_eq!(
        row.served_model.as_deref(),
        Some("claude-haiku-4-5-20251001")
    );
    assert_eq!(row.usage.input_tokens, 11);
    assert_eq!(row.usage.output_tokens, 6);
    assert_eq!(row.cost_nanos, Some(41_000));
    assert_eq!(row.stop_reason.as_deref(), Some("end_turn"));
    let ttft = row.ttft_ms.expect("content reached the client");
    assert!(ttft <= row.latency_ms);
    h.shutdown().await;
}

#[tokio::test]
async fn a_replacement_refused_with_a_status_is_a_failed_attempt_like_any_other() {
    let h = Harness::start(Options::default()).await;
    h.mock
        .push_scenario("alpha", Scenario::ErrorBeforeContent, 1);
    h.mock.push_scenario(
        "beta",
        Scenario::RateLimited {
            retry_after_secs: 30,
        },
        1,
    );
    let response = h.message(true).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert_eq!(body.matches("event: message_start").count(), 1, "{body}");
    assert!(!body.contains("event: error"), "{body}");
    let last = sse_events(&body).pop().map(|(name, _)| name);
    assert_eq!(last.as_deref(), Some("message_stop"), "{body}");
    let row = records(&h).await.remove(0);
    assert_eq!(row.outcome, RequestOutcome::Success);
    assert_eq!(row.key_name.as_deref(), Some("gamma"));
    let tried: Vec<_> = row
        .attempts
        .iter()
        .map(|a| (a.key_name.as_str(), a.class.as_str()))
        .collect();
    assert_eq!(tried, [("alpha", "overloaded"), ("beta", "rate_limited")]);
    // The 429 cools its credential down as it would before commit.
    assert_eq!(h.state_of("beta").await, "cooling_down");
    h.shutdown().await;
}

#[tokio::test]
async fn a_failover_is_recorded_with_the_failed_attempt_and_the_serving_key() {
    let h = Harness::start(Options::default()).await;
    h.mock.push_scenario(
        "alpha",
        Scenario::RateLimited {
            retry_after_secs: 30,
        },
        1,
    );
    assert_eq!(h.message(false).send().await.unwrap().status(), 200);
    let row = records(&h).await.remove(0);
    assert_eq!(row.outcome, RequestOutcome::Success);
    assert_eq!(row.key_name.as_deref(), Some("beta"));
    assert_eq!(row.attempts.len(), 1);
    assert_eq!(row.attempts[0].key_name, "alpha");
    assert_eq!(row.attempts[0].class.as_str(), "rate_limited");
    h.shutdown().await;
}

#[tokio::test]
async fn a_client_disconnect_still_yields_a_record_of_what_was_delivered() {
    let h = Harness::start(Options {
        keys: vec![key("alpha")],
        ..Options::default()
    })
    .await;
    let mut response = h
        .message(true)
        .header("x-mock-events", "400")
        .header("x-mock-interval-ms", "10")
        .send()
        .await
        .unwrap();
    // Read until a few deltas have arrived, then leave.
    let mut seen = String::new();
    while seen.matches("event: content_block_delta").count() < 6 {
        let chunk = response.chunk().await.unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(response);
    tokio::time::timeout(
        Duration::from_secs(10),
        h.mock.wait_for_abandoned("alpha", 1),
    )
    .await
    .expect("the upstream request is cancelled");
    let row = records(&h).await.remove(0);
    assert_eq!(row.outcome, RequestOutcome::ClientCancelled);
    assert!(row.usage.input_tokens > 0);
    let delivered = seen.matches("event: content_block_delta").count() as u64;
    assert!(
        row.usage.output_tokens >= delivered && row.usage.output_tokens < 400,
        "output {} should count the {delivered} deltas delivered, not the whole answer",
        row.usage.output_tokens
    );
    h.shutdown().await;
}

#[tokio::test]
async fn every_generated_record_is_written_dropped_or_queued() {
    let h = Harness::start(Options::default()).await;
    let n = 40;
    let requests = (0..n).map(|i| h.message(i % 2 == 0).send());
    for response in futures_util::future::join_all(requests).await {
        response.unwrap().bytes().await.unwrap();
    }
    h.gateway.ledger_settled().await;
    let stats = h.gateway.accountant.ledger_stats();
    assert_eq!(stats.generated, n as u64);
    assert_eq!(
        stats.generated,
        stats.written + stats.dropped + stats.queued
    );
    assert_eq!(stats.dropped, 0);
    assert_eq!(h.gateway.ledger.usage_count().await.unwrap(), n as i64);
    h.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_flushes_the_queue() {
    let h = Harness::start(Options {
        // A long batch delay: without the flush, these records would still be waiting.
        env: vec![("KEYLOOP_LEDGER__MAX_DELAY_MS", "60000".into())],
        ..Options::default()
    })
    .await;
    for _ in 0..5 {
        assert_eq!(h.message(false).send().await.unwrap().status(), 200);
    }
    assert_eq!(
        h.gateway.accountant.ledger_stats().written,
        0,
        "still queued"
    );
    let path = h.dir.path().join("keyloop.db");
    let Harness {
        gateway, mock, dir, ..
    } = h;
    gateway.shutdown().await;
    let stores = keyloop::store::open_sqlite(&path).await.unwrap();
    assert_eq!(stores.ledger.usage_count().await.unwrap(), 5);
    mock.shutdown().await;
    drop(dir);
}
