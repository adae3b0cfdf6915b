//! SSE answers: event order and shapes, per-event chunks, pacing overrides.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn text_stream_has_the_real_event_order_and_shapes() {
    let mock = start().await;
    let json_answer = json_of(messages(&mock, &hello()).await).await;
    let response = messages(&mock, &hello_stream()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-type"),
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(header(&response, "cache-control"), "no-cache");
    header(&response, "anthropic-ratelimit-tokens-remaining");
    let events = parse_sse(&response.text().await.unwrap());

    let mut expected = vec!["message_start", "content_block_start", "ping"];
    expected.extend(std::iter::repeat_n("content_block_delta", 8));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names(&events), expected);
    for event in &events {
        assert_eq!(
            event.data["type"],
            event.name.as_str(),
            "type repeats the name"
        );
    }

    let start = &events[0].data["message"];
    assert!(start["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["stop_reason"], Value::Null);
    assert_eq!(start["model"], "claude-sonnet-5-5");
    assert_eq!(start["usage"]["output_tokens"], 1);
    assert_eq!(
        start["usage"]["input_tokens"],
        json_answer["usage"]["input_tokens"]
    );
    assert_eq!(start["usage"]["cache_read_input_tokens"], 0);
    assert_eq!(
        events[1].data["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(events[1].data["index"], 0);

    let text: String = events
        .iter()
        .filter(|e| e.name == "content_block_delta")
        .map(|e| {
            assert_eq!(e.data["delta"]["type"], "text_delta");
            e.data["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, json_answer["content"][0]["text"].as_str().unwrap());

    let delta = &events[events.len() - 2].data;
    assert_eq!(
        delta["delta"],
        json!({"stop_reason": "end_turn", "stop_sequence": null})
    );
    assert_eq!(delta["usage"]["output_tokens"], 9);
}

#[tokio::test]
async fn ping_is_spelled_like_the_api() {
    let mock = start().await;
    let text = messages(&mock, &hello_stream()).await.text().await.unwrap();
    assert!(text.contains("event: ping\ndata: {\"type\": \"ping\"}\n\n"));
}

#[tokio::test]
async fn tool_use_streams_input_as_json_fragments() {
    let mock = start().await;
    let body = json!({
        "model": "claude-sonnet-5-5",
        "max_tokens": 1024,
        "stream": true,
        "tools": [{
            "name": "get_weather",
            "input_schema": {
                "type": "object",
                "properties": {"location": {"type": "string"}, "days": {"type": "number"}},
                "required": ["location", "days"]
            }
        }],
        "messages": [{"role": "user", "content": "Weather?"}],
    });
    let events = parse_sse(&messages(&mock, &body).await.text().await.unwrap());
    let starts: Vec<&Value> = events
        .iter()
        .filter(|e| e.name == "content_block_start")
        .map(|e| &e.data)
        .collect();
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[0]["content_block"]["type"], "text");
    let tool = &starts[1]["content_block"];
    assert_eq!(starts[1]["index"], 1);
    assert_eq!(tool["type"], "tool_use");
    assert_eq!(tool["name"], "get_weather");
    assert_eq!(tool["input"], json!({}));
    assert!(tool["id"].as_str().unwrap().starts_with("toolu_"));

    let fragments: Vec<&str> = events
        .iter()
        .filter(|e| e.name == "content_block_delta" && e.data["index"] == 1)
        .map(|e| {
            assert_eq!(e.data["delta"]["type"], "input_json_delta");
            e.data["delta"]["partial_json"].as_str().unwrap()
        })
        .collect();
    assert!(fragments.len() >= 3, "{fragments:?}");
    assert_eq!(fragments[0], "");
    let input: Value = serde_json::from_str(&fragments.concat()).unwrap();
    assert_eq!(input, json!({"location": "example", "days": 1}));
    let stops = events
        .iter()
        .filter(|e| e.name == "content_block_stop")
        .count();
    assert_eq!(stops, 2);
    let delta = events.iter().find(|e| e.name == "message_delta").unwrap();
    assert_eq!(delta.data["delta"]["stop_reason"], "tool_use");
    assert_eq!(events.last().unwrap().name, "message_stop");
}

#[tokio::test]
async fn each_event_arrives_as_its_own_chunk_when_paced() {
    let mock = start().await;
    let interval = Duration::from_millis(40);
    let started = Instant::now();
    let response = post(&mock, KEY_A, "/v1/messages")
        .header("x-mock-events", "3")
        .header("x-mock-interval-ms", "40")
        .json(&hello_stream())
        .send()
        .await
        .unwrap();
    let (chunks, clean) = read_chunks(response).await;
    assert!(clean);
    let expected = 3 + 3 + 3; // start, block start, ping; 3 deltas; block stop, delta, stop
    assert_eq!(chunks.len(), expected, "one chunk per event");
    for chunk in &chunks {
        assert_eq!(parse_sse(std::str::from_utf8(chunk).unwrap()).len(), 1);
    }
    assert!(started.elapsed() >= interval * (expected as u32 - 1));
}

#[tokio::test]
async fn configured_pacing_applies_to_every_stream() {
    let mock = start_with(keyloop_mock::MockConfig {
        stream_events: 2,
        stream_interval: Duration::from_millis(5),
        ..keyloop_mock::MockConfig::with_keys(keys())
    })
    .await;
    let started = Instant::now();
    let events = parse_sse(&messages(&mock, &hello_stream()).await.text().await.unwrap());
    let deltas = events
        .iter()
        .filter(|e| e.name == "content_block_delta")
        .count();
    assert_eq!(deltas, 2);
    assert!(started.elapsed() >= Duration::from_millis(5 * (events.len() as u64 - 1)));
}

#[tokio::test]
async fn a_client_leaving_mid_stream_is_counted_as_abandoned() {
    let mock = start().await;
    let body = json!({
        "model": "claude-sonnet-5-5",
        "max_tokens": 1024,
        "stream": true,
        "messages": [{"role": "user", "content": "hi"}],
    });
    let finished = messages(&mock, &body).await.text().await.unwrap();
    assert!(finished.contains("message_stop"));
    assert_eq!(
        mock.abandoned_streams("a"),
        0,
        "a stream played out is not abandoned"
    );

    let mut slow = post(&mock, KEY_A, "/v1/messages")
        .header("x-mock-events", "200")
        .header("x-mock-interval-ms", "10")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(!slow.chunk().await.unwrap().unwrap().is_empty());
    drop(slow);
    tokio::time::timeout(Duration::from_secs(10), mock.wait_for_abandoned("a", 1))
        .await
        .expect("the abandoned stream is noticed");
}
