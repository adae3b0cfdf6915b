//! `/v1/messages` JSON answers, validation, count_tokens, legacy complete, misc routes.

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn json_answer_has_the_real_shape_and_headers() {
    let mock = start().await;
    let response = messages(&mock, &hello()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "application/json");
    assert!(header(&response, "request-id").starts_with("req_"));
    assert!(httpdate_ok(header(&response, "date")));
    assert_eq!(header(&response, "anthropic-organization-id").len(), 36);
    for dimension in ["requests", "tokens", "input-tokens", "output-tokens"] {
        for part in ["limit", "remaining", "reset"] {
            header(
                &response,
                &format!("anthropic-ratelimit-{dimension}-{part}"),
            );
        }
    }
    let body = json_of(response).await;
    assert!(body["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "claude-sonnet-5-5");
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["stop_sequence"], Value::Null);
    let content = body["content"].as_array().unwrap();
    assert_eq!(content.len(), 1);
    assert_eq!(content[0]["type"], "text");
    let words = content[0]["text"].as_str().unwrap().split(' ').count();
    assert_eq!(words, 8, "default stream_events words");
    let usage = &body["usage"];
    assert_eq!(usage["output_tokens"], 9);
    assert_eq!(usage["cache_creation_input_tokens"], 0);
    assert_eq!(usage["cache_read_input_tokens"], 0);
    assert_eq!(usage["service_tier"], "standard");
    let messages_bytes = r#"[{"role":"user","content":"Hello there"}]"#.len() as u64;
    assert_eq!(usage["input_tokens"], messages_bytes / 4);
}

fn httpdate_ok(date: &str) -> bool {
    date.ends_with(" GMT") && date.len() == 29
}

#[tokio::test]
async fn answers_are_deterministic_and_request_ids_unique() {
    let mock = start().await;
    let first = messages(&mock, &hello()).await;
    let second = messages(&mock, &hello()).await;
    assert_ne!(header(&first, "request-id"), header(&second, "request-id"));
    let (first, second) = (json_of(first).await, json_of(second).await);
    assert_eq!(first["content"], second["content"]);
    assert_eq!(first["usage"], second["usage"]);
    assert_ne!(first["id"], second["id"]);
}

fn with_tools(messages: Value) -> Value {
    json!({
        "model": "claude-sonnet-5-5",
        "max_tokens": 1024,
        "system": "Use tools.",
        "tools": [{
            "name": "get_weather",
            "description": "Current weather",
            "input_schema": {
                "type": "object",
                "properties": {
                    "location": {"type": "string"},
                    "days": {"type": "integer"},
                    "metric": {"type": "boolean"},
                    "extra": {"type": "object"},
                    "unit": {"type": "string"}
                },
                "required": ["location", "days", "metric", "extra"]
            }
        }, {"name": "other", "input_schema": {"type": "object"}}],
        "messages": messages,
    })
}

#[tokio::test]
async fn offered_tools_are_only_called_when_the_user_asks_for_one() {
    let mock = start().await;
    let body = with_tools(json!([{"role": "user", "content": "say hi"}]));
    let answer = json_of(messages(&mock, &body).await).await;
    assert_eq!(answer["stop_reason"], "end_turn");
    assert!(
        answer["content"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["type"] == "text")
    );

    let mut forced = with_tools(json!([{"role": "user", "content": "say hi"}]));
    forced["tool_choice"] = json!({"type": "any"});
    let answer = json_of(messages(&mock, &forced).await).await;
    assert_eq!(answer["stop_reason"], "tool_use");
}

#[tokio::test]
async fn tools_give_a_text_block_then_a_tool_use() {
    let mock = start().await;
    let body = with_tools(json!([{"role": "user", "content": "Weather in Paris?"}]));
    let answer = json_of(messages(&mock, &body).await).await;
    assert_eq!(answer["stop_reason"], "tool_use");
    let content = answer["content"].as_array().unwrap();
    assert_eq!(content.len(), 2);
    assert_eq!(content[0]["type"], "text");
    let tool = &content[1];
    assert_eq!(tool["type"], "tool_use");
    assert!(tool["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(tool["name"], "get_weather");
    assert_eq!(
        tool["input"],
        json!({"location": "example", "days": 1, "metric": true, "extra": null})
    );
}

#[tokio::test]
async fn a_tool_result_is_mentioned_in_the_answer() {
    let mock = start().await;
    let body = with_tools(json!([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}}
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny, 21 degrees"}
        ]},
    ]));
    let answer = json_of(messages(&mock, &body).await).await;
    assert_eq!(answer["stop_reason"], "end_turn");
    let content = answer["content"].as_array().unwrap();
    assert_eq!(content.len(), 1);
    assert!(
        content[0]["text"]
            .as_str()
            .unwrap()
            .contains("Sunny, 21 degrees")
    );
}

#[tokio::test]
async fn tool_choice_none_answers_with_text_only() {
    let mock = start().await;
    let mut body = with_tools(json!([{"role": "user", "content": "Hi"}]));
    body["tool_choice"] = json!({"type": "none"});
    let answer = json_of(messages(&mock, &body).await).await;
    assert_eq!(answer["stop_reason"], "end_turn");
    assert_eq!(answer["content"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_low_max_tokens_cuts_the_answer() {
    let mock = start().await;
    let mut body = hello();
    body["max_tokens"] = json!(4);
    let answer = json_of(messages(&mock, &body).await).await;
    assert_eq!(answer["stop_reason"], "max_tokens");
    assert_eq!(answer["usage"]["output_tokens"], 4);
    assert_eq!(
        answer["content"][0]["text"]
            .as_str()
            .unwrap()
            .split(' ')
            .count(),
        3
    );
}

#[tokio::test]
async fn x_mock_events_sets_the_number_of_words() {
    let mock = start().await;
    let response = post(&mock, KEY_A, "/v1/messages")
        .header("x-mock-events", "3")
        .json(&hello())
        .send()
        .await
        .unwrap();
    let answer = json_of(response).await;
    assert_eq!(
        answer["content"][0]["text"]
            .as_str()
            .unwrap()
            .split(' ')
            .count(),
        3
    );
    assert_eq!(answer["usage"]["output_tokens"], 4);
}

#[tokio::test]
async fn invalid_bodies_are_refused_like_the_api_does() {
    let mock = start().await;
    let send = |body: &'static str| {
        post(&mock, KEY_A, "/v1/messages")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let message = expect_error(
        send("{not json").await.unwrap(),
        400,
        "invalid_request_error",
    )
    .await;
    assert!(message.contains("JSON"), "{message}");
    let message = expect_error(send("[1, 2]").await.unwrap(), 400, "invalid_request_error").await;
    assert!(message.contains("object"), "{message}");
    let message = expect_error(
        send(r#"{"model":"claude-sonnet-5-5","messages":[{"role":"user","content":"x"}]}"#)
            .await
            .unwrap(),
        400,
        "invalid_request_error",
    )
    .await;
    assert_eq!(message, "max_tokens: Field required");
    let message = expect_error(
        send(r#"{"model":"claude-sonnet-5-5","max_tokens":5}"#)
            .await
            .unwrap(),
        400,
        "invalid_request_error",
    )
    .await;
    assert_eq!(message, "messages: Field required");
    let message = expect_error(
        send(r#"{"messages":[],"max_tokens":5}"#).await.unwrap(),
        400,
        "invalid_request_error",
    )
    .await;
    assert_eq!(message, "model: Field required");
    let message = expect_error(
        send(r#"{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#)
            .await
            .unwrap(),
        404,
        "not_found_error",
    )
    .await;
    assert_eq!(message, "model: gpt-4o");
}

/// The ids the provider lists as retired, with and without their dated suffix, and
/// Sonnet 4.5 (retired 2026-11-30, before today).
const RETIRED: [&str; 11] = [
    "claude-opus-4-1",
    "claude-opus-4-1-20250805",
    "claude-opus-4",
    "claude-opus-4-20250514",
    "claude-sonnet-4",
    "claude-sonnet-4-20250514",
    "claude-3-5-haiku-20241022",
    "claude-3-7-sonnet",
    "claude-3-7-sonnet-20250219",
    "claude-sonnet-4-5",
    "claude-sonnet-4-5-20250929",
];

#[tokio::test]
async fn retired_models_are_not_found_on_messages_count_tokens_and_complete() {
    let mock = start().await;
    for model in RETIRED {
        let mut body = hello();
        body["model"] = json!(model);
        let message = expect_error(messages(&mock, &body).await, 404, "not_found_error").await;
        assert_eq!(message, format!("model: {model}"));

        body.as_object_mut().unwrap().remove("max_tokens");
        let response = post(&mock, KEY_A, "/v1/messages/count_tokens")
            .json(&body)
            .send()
            .await
            .unwrap();
        let message = expect_error(response, 404, "not_found_error").await;
        assert_eq!(message, format!("model: {model}"));

        let legacy = json!({"model": model, "prompt": "\n\nHuman: Hi\n\nAssistant:",
            "max_tokens_to_sample": 5});
        let response = post(&mock, KEY_A, "/v1/complete")
            .json(&legacy)
            .send()
            .await
            .unwrap();
        let message = expect_error(response, 404, "not_found_error").await;
        assert_eq!(message, format!("model: {model}"));
    }
    // Not every `claude-*` is a model either.
    let mut body = hello();
    body["model"] = json!("claude-unreleased-9");
    expect_error(messages(&mock, &body).await, 404, "not_found_error").await;
    // The current models are served.
    for model in ["claude-opus-5-5", "claude-haiku-5-5", "claude-fable-5-2"] {
        body["model"] = json!(model);
        let answer = json_of(messages(&mock, &body).await).await;
        assert_eq!(answer["model"], model);
    }
}

#[tokio::test]
async fn unknown_top_level_fields_are_accepted() {
    let mock = start().await;
    let mut body = hello();
    body["x_custom_field"] = json!({"anything": [1, 2, 3]});
    body["context_management"] = json!({"edits": []});
    let response = messages(&mock, &body).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn count_tokens_matches_message_usage() {
    let mock = start().await;
    let mut body = hello();
    body["system"] = json!("You are terse.");
    let usage = json_of(messages(&mock, &body).await).await["usage"].clone();
    body.as_object_mut().unwrap().remove("max_tokens");
    let response = post(&mock, KEY_A, "/v1/messages/count_tokens")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    header(&response, "anthropic-ratelimit-requests-remaining");
    let counted = json_of(response).await;
    assert_eq!(counted, json!({"input_tokens": usage["input_tokens"]}));
}

#[tokio::test]
async fn legacy_complete_answers_json_and_sse() {
    let mock = start().await;
    let body = json!({
        "model": "claude-haiku-4-5",
        "prompt": "\n\nHuman: Hello\n\nAssistant:",
        "max_tokens_to_sample": 100,
    });
    let answer = json_of(
        post(&mock, KEY_A, "/v1/complete")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer["type"], "completion");
    assert!(answer["id"].as_str().unwrap().starts_with("compl_"));
    assert_eq!(answer["stop_reason"], "stop_sequence");
    assert_eq!(answer["model"], "claude-haiku-4-5");
    let text = answer["completion"].as_str().unwrap().to_owned();
    assert!(text.starts_with(' '));

    let mut streaming = body.clone();
    streaming["stream"] = json!(true);
    let response = post(&mock, KEY_A, "/v1/complete")
        .json(&streaming)
        .send()
        .await
        .unwrap();
    assert!(header(&response, "content-type").starts_with("text/event-stream"));
    let events = parse_sse(&response.text().await.unwrap());
    assert_eq!(events[0].name, "ping");
    let completions: Vec<_> = events.iter().filter(|e| e.name == "completion").collect();
    assert_eq!(completions.len(), 9);
    let streamed: String = completions
        .iter()
        .map(|e| e.data["completion"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, text);
    assert_eq!(
        completions.last().unwrap().data["stop_reason"],
        "stop_sequence"
    );
    assert_eq!(completions[0].data["stop_reason"], Value::Null);

    let bad = json!({"model": "claude-haiku-4-5", "prompt": "Hello", "max_tokens_to_sample": 5});
    let response = post(&mock, KEY_A, "/v1/complete")
        .json(&bad)
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "invalid_request_error").await;
}

#[tokio::test]
async fn root_probe_unknown_routes_and_query_strings() {
    let mock = start().await;
    let head = client().head(mock.url()).send().await.unwrap();
    assert_eq!(head.status(), 200);
    header(&head, "request-id");
    let response = post(&mock, KEY_A, "/v1/nothing-here")
        .json(&hello())
        .send()
        .await
        .unwrap();
    let message = expect_error(response, 404, "not_found_error").await;
    assert_eq!(message, "Not Found");
    let response = post(&mock, KEY_A, "/v1/messages?beta=true")
        .json(&hello())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn h2c_with_prior_knowledge_works() {
    let mock = start().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client
        .post(format!("{}/v1/messages", mock.url()))
        .header("x-api-key", KEY_A)
        .header("anthropic-version", VERSION)
        .json(&hello_stream())
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let events = parse_sse(&response.text().await.unwrap());
    assert_eq!(events.last().unwrap().name, "message_stop");
}
