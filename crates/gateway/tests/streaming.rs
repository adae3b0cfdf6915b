//! The commit point: a stream is committed at once; failures before its first content event
//! fail over unseen (the replacement is spliced in), failures after it reach the client as one
//! Anthropic error event and a close. With a first-event hold, the old way: nothing is sent
//! until content, so a request whose every credential fails early gets a real error status.

mod support;

use std::time::Duration;

use keyloop_mock::Scenario;
use support::{Harness, Options, key, sse_events};

fn last_event(body: &str) -> (String, String) {
    sse_events(body).pop().expect("at least one event")
}

fn names(body: &str) -> Vec<String> {
    sse_events(body).into_iter().map(|(name, _)| name).collect()
}

fn count(names: &[String], name: &str) -> usize {
    names.iter().filter(|n| *n == name).count()
}

const CONTENT_EVENTS: [&str; 2] = ["content_block_start", "content_block_delta"];

#[tokio::test]
async fn a_cut_after_commit_becomes_an_error_event() {
    let h = Harness::start(Options {
        keys: vec![key("alpha"), key("beta")],
        ..Options::default()
    })
    .await;
    // message_start, content_block_start, ping, two deltas, then the connection drops.
    h.mock
        .push_scenario("alpha", Scenario::CutMidStream { after_events: 5 }, 1);
    let response = h.message(true).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response
        .text()
        .await
        .expect("the body ends cleanly, not with a reset");
    let events = sse_events(&body);
    assert!(
        events.iter().any(|(e, _)| e == "content_block_delta"),
        "{body}"
    );
    assert!(
        !events.iter().any(|(e, _)| e == "message_stop"),
        "no fake message_stop"
    );
    assert!(
        !events.iter().any(|(e, _)| e == "message_delta"),
        "no fake message_delta"
    );
    let (name, data) = last_event(&body);
    assert_eq!(name, "error");
    let error: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "api_error");
    assert!(error["request_id"].as_str().unwrap().starts_with("req_kl_"));
    assert_eq!(body.matches("event: error").count(), 1);
    // After commit nothing is retried.
    assert_eq!(h.mock.call_count("beta"), 0);
    h.shutdown().await;
}

#[tokio::test]
async fn an_upstream_error_event_after_commit_passes_through_once() {
    let h = Harness::start(Options {
        keys: vec![key("alpha")],
        ..Options::default()
    })
    .await;
    h.mock
        .push_scenario("alpha", Scenario::MidStreamError { after_events: 5 }, 1);
    let body = h.message(true).send().await.unwrap().text().await.unwrap();
    let (name, data) = last_event(&body);
    assert_eq!(name, "error");
    assert!(data.contains("overloaded_error"), "{data}");
    assert_eq!(body.matches("event: error").count(), 1, "{body}");
    // An overloaded stream is not the credential's fault.
    assert_eq!(h.state_of("alpha").await, "active");
    h.shutdown().await;
}

#[tokio::test]
async fn failures_before_the_first_content_event_fail_over_unseen() {
    let h = Harness::start(Options::default()).await;
    h.mock
        .push_scenario("alpha", Scenario::ErrorBeforeContent, 1);
    h.mock
        .push_scenario("beta", Scenario::CutMidStream { after_events: 1 }, 1);
    let response = h.message(true).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let events = sse_events(&body);
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert_eq!(
        names.iter().filter(|n| **n == "message_start").count(),
        1,
        "held events sent once"
    );
    assert!(!names.contains(&"error"), "{body}");
    assert_eq!(h.mock.call_count("alpha"), 1);
    assert_eq!(h.mock.call_count("beta"), 1);
    assert_eq!(h.mock.call_count("gamma"), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn a_stalled_stream_after_commit_times_out_with_an_error_event() {
    let h = Harness::start(Options {
        keys: vec![key("alpha")],
        env: vec![("KEYLOOP_UPSTREAM__STREAM_IDLE_TIMEOUT_SECS", "1".into())],
        ..Options::default()
    })
    .await;
    h.mock
        .push_scenario("alpha", Scenario::Stall { after_events: 5 }, 1);
    let response = h.message(true).send().await.unwrap();
    let body = tokio::time::timeout(Duration::from_secs(10), response.text())
        .await
        .expect("the gateway ends a stalled stream")
        .unwrap();
    let (name, data) = last_event(&body);
    assert_eq!(name, "error");
    assert!(data.contains("silent"), "{data}");
    h.shutdown().await;
}

#[tokio::test]
async fn a_stream_is_committed_before_its_first_content_event() {
    let h = Harness::start(Options {
        keys: vec![key("alpha"), key("beta")],
        ..Options::default()
    })
    .await;
    h.mock.push_scenario(
        "alpha",
        Scenario::SlowFirstToken {
            delay: Duration::from_millis(500),
        },
        1,
    );
    let mut response = h.message(true).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().expect("a first chunk");
    let first = String::from_utf8(first.to_vec()).unwrap();
    let first_names = names(&first);
    assert!(first_names.contains(&"message_start".to_owned()), "{first}");
    for content in CONTENT_EVENTS {
        assert!(!first_names.contains(&content.to_owned()), "{first}");
    }
    let mut body = first;
    while let Some(chunk) = response.chunk().await.unwrap() {
        body.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let all = names(&body);
    assert_eq!(count(&all, "message_start"), 1, "{body}");
    assert_eq!(all.last().map(String::as_str), Some("message_stop"));
    assert_eq!(h.mock.call_count("beta"), 0, "slow is not dead");
    h.shutdown().await;
}

#[tokio::test]
async fn a_stream_is_committed_while_its_upstream_is_still_silent() {
    let h = Harness::start(Options {
        keys: vec![key("alpha")],
        env: vec![("KEYLOOP_UPSTREAM__STREAM_IDLE_TIMEOUT_SECS", "1".into())],
        ..Options::default()
    })
    .await;
    // message_start, then nothing until the gateway gives up on the silence.
    h.mock
        .push_scenario("alpha", Scenario::Stall { after_events: 1 }, 1);
    let mut response = h.message(true).send().await.unwrap();
    assert_eq!(response.status(), 200, "committed, not held");
    let first = response.chunk().await.unwrap().expect("a first chunk");
    assert!(
        names(std::str::from_utf8(&first).unwrap()).contains(&"message_start".to_owned()),
        "{first:?}"
    );
    let mut body = String::from_utf8(first.to_vec()).unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = response.chunk().await.unwrap() {
            body.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    });
    rest.await.expect("the gateway ends a silent stream");
    let all = names(&body);
    assert_eq!(all, ["message_start", "error"], "{body}");
    let error: serde_json::Value = serde_json::from_str(&last_event(&body).1).unwrap();
    assert_eq!(error["error"]["type"], "api_error");
    h.shutdown().await;
}

#[tokio::test]
async fn when_every_credential_fails_before_content_the_client_gets_one_error_event() {
    let h = Harness::start(Options {
        env: vec![("KEYLOOP_UPSTREAM__MAX_ATTEMPTS", "2".into())],
        ..Options::default()
    })
    .await;
    h.mock
        .push_scenario("alpha", Scenario::ErrorBeforeContent, 1);
    h.mock
        .push_scenario("beta", Scenario::ErrorBeforeContent, 1);
    let response = h.message(true).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let all = names(&body);
    assert_eq!(count(&all, "message_start"), 1, "{body}");
    assert_eq!(count(&all, "error"), 1, "{body}");
    assert_eq!(all.last().map(String::as_str), Some("error"), "{body}");
    assert_eq!(count(&all, "message_stop"), 0, "no fake message_stop");
    for content in CONTENT_EVENTS {
        assert_eq!(count(&all, content), 0, "{body}");
    }
    let error: serde_json::Value = serde_json::from_str(&last_event(&body).1).unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "overloaded_error");
    assert!(error["request_id"].as_str().unwrap().starts_with("req_kl_"));
    assert_eq!(h.mock.call_count("alpha"), 1);
    assert_eq!(h.mock.call_count("beta"), 1);
    assert_eq!(
        h.mock.call_count("gamma"),
        0,
        "max-attempts holds across the splice"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn with_a_first_event_hold_failures_before_content_get_a_real_error_status() {
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
    let response = h.message(true).send().await.unwrap();
    assert_eq!(response.status(), 529);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "overloaded_error");
    assert_eq!(h.mock.call_count("alpha"), 1);
    assert_eq!(h.mock.call_count("beta"), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn once_the_hold_runs_out_a_failure_before_content_is_spliced() {
    let h = Harness::start(Options {
        keys: vec![key("alpha"), key("beta")],
        env: vec![
            ("KEYLOOP_UPSTREAM__FIRST_EVENT_HOLD_MS", "50".into()),
            ("KEYLOOP_UPSTREAM__STREAM_IDLE_TIMEOUT_SECS", "1".into()),
        ],
        ..Options::default()
    })
    .await;
    // message_start, then silence: the hold runs out and commits, the idle timeout fails it.
    h.mock
        .push_scenario("alpha", Scenario::Stall { after_events: 1 }, 1);
    let response = h.message(true).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = tokio::time::timeout(Duration::from_secs(10), response.text())
        .await
        .expect("the silent stream is replaced")
        .unwrap();
    let all = names(&body);
    assert_eq!(count(&all, "message_start"), 1, "{body}");
    assert!(!all.contains(&"error".to_owned()), "{body}");
    assert_eq!(all.last().map(String::as_str), Some("message_stop"));
    assert_eq!(h.mock.call_count("beta"), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn a_slow_first_token_is_not_taken_for_a_dead_stream() {
    let h = Harness::start(Options {
        keys: vec![key("alpha"), key("beta")],
        ..Options::default()
    })
    .await;
    h.mock.push_scenario(
        "alpha",
        Scenario::SlowFirstToken {
            delay: Duration::from_millis(300),
        },
        1,
    );
    let body = h.message(true).send().await.unwrap().text().await.unwrap();
    assert_eq!(last_event(&body).0, "message_stop");
    assert_eq!(h.mock.call_count("beta"), 0);
    h.shutdown().await;
}

#[tokio::test]
async fn a_client_disconnect_cancels_the_upstream_and_frees_the_credential() {
    let h = Harness::start(Options {
        keys: vec![key("alpha")],
        ..Options::default()
    })
    .await;
    // A long, live stream: 400 events 10 ms apart.
    let mut response = h
        .message(true)
        .header("x-mock-events", "400")
        .header("x-mock-interval-ms", "10")
        .send()
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    assert_eq!(h.status().await["credentials"][0]["in_flight"], 1);
    drop(response);
    // The gateway drops its upstream request: the simulated upstream sees its stream abandoned.
    tokio::time::timeout(
        Duration::from_secs(10),
        h.mock.wait_for_abandoned("alpha", 1),
    )
    .await
    .expect("the upstream request is cancelled");
    assert_eq!(h.status().await["credentials"][0]["in_flight"], 0);
    assert_eq!(
        h.state_of("alpha").await,
        "active",
        "a client leaving is not the key's fault"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_close_after_message_stop_is_a_clean_end() {
    let h = Harness::start(Options::default()).await;
    // The whole stream, then the connection drops instead of ending the chunked body.
    h.mock
        .push_scenario("alpha", Scenario::CutMidStream { after_events: 1000 }, 1);
    let response = h.message(true).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("the body ends cleanly");
    let (name, _) = last_event(&body);
    assert_eq!(name, "message_stop", "{body}");
    assert!(
        !body.contains("event: error"),
        "not reported as a cut: {body}"
    );
    h.gateway.ledger_settled().await;
    let log = h.admin_get("/requests?limit=1").await;
    assert_eq!(log["requests"][0]["outcome"], "success", "{log}");
    h.shutdown().await;
}
