//! Summarising non-streaming Messages responses for accounting.

mod support;

use keyloop_wire::anthropic::{MessageSummary, summarize_message};
use keyloop_wire::usage::{InferenceGeo, Usage};
use support::http_body;

#[test]
fn summarizes_the_fixture_response() {
    let summary = summarize_message(&http_body("anthropic-message-response.http")).unwrap();
    assert_eq!(
        summary,
        MessageSummary {
            model: Some("claude-haiku-4-5-20251001".to_owned()),
            stop_reason: Some("end_turn".to_owned()),
            usage: Usage {
                input_tokens: 14,
                output_tokens: 38,
                cache_read_tokens: 2048,
                ..Usage::default()
            },
        }
    );
}

#[test]
fn splits_cache_writes_by_ttl() {
    let body = br#"{"type":"message","model":"m","stop_reason":"max_tokens","usage":{"input_tokens":1,"output_tokens":2,"cache_creation_input_tokens":900,"cache_creation":{"ephemeral_5m_input_tokens":400,"ephemeral_1h_input_tokens":500}}}"#;
    let usage = summarize_message(body).unwrap().usage;
    assert_eq!(
        (
            usage.cache_write_tokens,
            usage.cache_write_5m_tokens,
            usage.cache_write_1h_tokens
        ),
        (900, 400, 500)
    );
}

#[test]
fn older_responses_without_a_split_count_as_five_minute() {
    let body =
        br#"{"usage":{"input_tokens":1,"output_tokens":2,"cache_creation_input_tokens":64}}"#;
    let usage = summarize_message(body).unwrap().usage;
    assert_eq!(
        (
            usage.cache_write_tokens,
            usage.cache_write_5m_tokens,
            usage.cache_write_1h_tokens
        ),
        (64, 64, 0)
    );
}

#[test]
fn the_total_wins_over_an_inconsistent_split() {
    let body = br#"{"usage":{"cache_creation_input_tokens":100,"cache_creation":{"ephemeral_5m_input_tokens":10,"ephemeral_1h_input_tokens":300}}}"#;
    let usage = summarize_message(body).unwrap().usage;
    assert_eq!(
        (
            usage.cache_write_tokens,
            usage.cache_write_5m_tokens,
            usage.cache_write_1h_tokens
        ),
        (100, 0, 100)
    );
}

#[test]
fn inference_geo_is_read_from_usage() {
    let geo = |value: &str| {
        let body = format!(r#"{{"usage":{{"input_tokens":1,"inference_geo":{value}}}}}"#);
        summarize_message(body.as_bytes())
            .unwrap()
            .usage
            .inference_geo
    };
    assert_eq!(geo(r#""us""#), InferenceGeo::Us);
    assert_eq!(geo(r#""global""#), InferenceGeo::Global);
    assert_eq!(geo(r#""eu""#), InferenceGeo::Other);
    assert_eq!(geo("null"), InferenceGeo::Unreported);
    // A value of the wrong type does not cost the usage: the tokens are still read.
    let body = br#"{"usage":{"input_tokens":7,"inference_geo":{"region":"us"}}}"#;
    let usage = summarize_message(body).unwrap().usage;
    assert_eq!(
        (usage.input_tokens, usage.inference_geo),
        (7, InferenceGeo::Unreported)
    );
    let body = br#"{"usage":{"input_tokens":1}}"#;
    assert_eq!(
        summarize_message(body).unwrap().usage.inference_geo,
        InferenceGeo::Unreported
    );
}

#[test]
fn bodies_without_usage_are_not_messages() {
    let error = br#"{"type":"error","error":{"type":"api_error","message":"x"}}"#;
    assert_eq!(summarize_message(error), None);
    assert_eq!(summarize_message(b"not json"), None);
    assert_eq!(
        summarize_message(br#"{"usage":{"input_tokens":"many"}}"#),
        None
    );
}
