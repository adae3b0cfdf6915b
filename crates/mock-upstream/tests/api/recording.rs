//! What the mock records: calls with exact headers and bodies, counts, waiting for calls.

use keyloop_mock::MockConfig;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn recorded_calls_keep_headers_and_body_bytes_exactly() {
    let mock = start().await;
    let body = "{\"model\":\"claude-sonnet-5-5\",  \"max_tokens\":5,\n\"messages\":[{\"role\":\"user\",\"content\":\"h\u{e9}\"}], \"zz_unknown\": 1}";
    let response = post(&mock, KEY_A, "/v1/messages?beta=true")
        .header("content-type", "application/json")
        .header("anthropic-beta", "a-flag")
        .header("anthropic-beta", "b-flag")
        .header("x-custom", "Value With Spaces")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    client().head(mock.url()).send().await.unwrap();

    let calls = mock.calls();
    assert_eq!(calls.len(), 2);
    let call = &calls[0];
    assert_eq!(call.key_name.as_deref(), Some("a"));
    assert_eq!(call.method, "POST");
    assert_eq!(call.path, "/v1/messages");
    assert_eq!(call.query.as_deref(), Some("beta=true"));
    assert_eq!(&call.body[..], body.as_bytes());
    let values = |name: &str| -> Vec<&str> {
        call.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(values("x-api-key"), [KEY_A]);
    assert_eq!(values("anthropic-beta"), ["a-flag", "b-flag"]);
    assert_eq!(values("x-custom"), ["Value With Spaces"]);
    assert_eq!(calls[1].method, "HEAD");
    assert_eq!(calls[1].key_name, None);
}

#[tokio::test]
async fn call_count_covers_every_endpoint_of_the_key() {
    let mock = start().await;
    messages(&mock, &hello()).await;
    post(&mock, KEY_A, "/v1/messages/count_tokens")
        .json(
            &json!({"model": "claude-sonnet-5-5", "messages": [{"role": "user", "content": "x"}]}),
        )
        .send()
        .await
        .unwrap();
    get(&mock, KEY_A, "/v1/models").send().await.unwrap();
    post(&mock, KEY_A, "/v1/messages")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(mock.call_count("a"), 4);
    assert_eq!(mock.call_count("b"), 0);
    mock.reset_calls();
    assert_eq!(mock.call_count("a"), 0);
    assert!(mock.calls().is_empty());
}

#[tokio::test]
async fn wait_for_calls_resolves_when_the_calls_arrive() {
    let mock = start().await;
    mock.wait_for_calls("a", 0).await;
    let sender = mock.clone();
    let requests = tokio::spawn(async move {
        for _ in 0..3 {
            messages(&sender, &hello()).await;
        }
    });
    mock.wait_for_calls("a", 3).await;
    assert!(mock.call_count("a") >= 3);
    requests.await.unwrap();
}

#[tokio::test]
async fn without_recording_only_counts_are_kept() {
    let mock = start_with(MockConfig {
        record_calls: false,
        ..MockConfig::with_keys(keys())
    })
    .await;
    messages(&mock, &hello()).await;
    messages(&mock, &hello()).await;
    assert!(mock.calls().is_empty());
    assert_eq!(mock.call_count("a"), 2);
}
