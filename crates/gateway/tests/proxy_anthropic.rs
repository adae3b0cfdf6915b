//! Same-dialect passthrough: what the client sends arrives upstream unchanged (bar the
//! credential), and what the upstream answers reaches the client unchanged.

mod support;

use bytes::Bytes;
use keyloop_mock::Scenario;
use support::{Harness, Options, fixture, key, sse_events};

fn sse_fixture(name: &str) -> Bytes {
    Bytes::from(fixture(name))
}

#[tokio::test]
async fn streams_arrive_byte_for_byte() {
    let h = Harness::start(Options {
        keys: vec![key("alpha")],
        ..Options::default()
    })
    .await;
    for name in [
        "anthropic-stream-text.sse",
        "anthropic-stream-tool-use.sse",
        "anthropic-stream-thinking.sse",
    ] {
        let body = sse_fixture(name);
        h.mock.push_scenario(
            "alpha",
            Scenario::Replay {
                status: 200,
                content_type: "text/event-stream; charset=utf-8".into(),
                body: body.clone(),
            },
            1,
        );
        let response = h.message(true).send().await.unwrap();
        assert_eq!(response.status(), 200, "{name}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let got = response.bytes().await.unwrap();
        assert_eq!(got, body, "{name} was altered on the way through");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn unknown_fields_query_and_beta_headers_reach_upstream_untouched() {
    let h = Harness::start(Options {
        keys: vec![key("alpha")],
        ..Options::default()
    })
    .await;
    // Claude Code's shape: query string, a system message mid-conversation, future fields.
    let body = br#"{"model":"claude-sonnet-5-5","max_tokens":64000,"stream":false,
        "thinking":{"type":"adaptive"},"output_config":{"effort":"high"},
        "context_management":{"edits":[]},"future_field":{"nested":[1,2,3]},
        "metadata":{"user_id":"{\"device_id\":\"d1\",\"session_id\":\"s1\"}"},
        "messages":[{"role":"user","content":"hi"},{"role":"system","content":"be brief"},
                    {"role":"user","content":[{"type":"mid_conv_system","content":[{"type":"text","text":"x"}]}]}]}"#;
    let betas = "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,effort-2025-11-24,context-1m-2025-08-07,fine-grained-tool-streaming-2025-05-14,token-efficient-tools-2025-02-19,fast-mode-2026-02-01,output-300k-2026-03-24,advisor-tool-2026-03-01,agent-memory-2026-07-22,mid-conversation-tool-changes-2026-07-01";
    let response = h
        .post("/v1/messages?beta=true")
        .header("content-type", "application/json")
        .header("anthropic-beta", betas)
        .header("anthropic-dangerous-direct-browser-access", "true")
        .header("x-app", "cli")
        .header("x-claude-code-session-id", "sess-1")
        .header("x-stainless-retry-count", "0")
        .header("x-client-id", "agent-7")
        .body(&body[..])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let calls = h.mock.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.path, "/v1/messages");
    assert_eq!(call.query.as_deref(), Some("beta=true"));
    assert_eq!(&call.body[..], &body[..], "body bytes changed");
    let header = |name: &str| -> Vec<&str> {
        call.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(header("anthropic-beta"), [betas]);
    assert_eq!(header("anthropic-version"), ["2023-06-01"]);
    assert_eq!(header("x-app"), ["cli"]);
    assert_eq!(header("x-claude-code-session-id"), ["sess-1"]);
    assert_eq!(
        header("anthropic-dangerous-direct-browser-access"),
        ["true"]
    );
    // The client's gateway key and attribution header never travel upstream.
    assert_eq!(header("x-api-key"), [key("alpha").secret.as_str()]);
    assert!(header("x-client-id").is_empty());
    assert!(!call.headers.iter().any(|(_, v)| v.contains(&h.client_key)));
    h.shutdown().await;
}

#[tokio::test]
async fn upstream_headers_reach_the_client() {
    let h = Harness::start(Options {
        keys: vec![key("alpha")],
        ..Options::default()
    })
    .await;
    let response = h.message(false).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert!(headers["request-id"].to_str().unwrap().starts_with("req_"));
    for name in [
        "anthropic-ratelimit-requests-limit",
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-tokens-reset",
        "anthropic-ratelimit-input-tokens-remaining",
    ] {
        assert!(headers.contains_key(name), "missing {name}");
    }
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["type"], "message");

    // A rate-limit answer the gateway passes back carries retry-after (single key: no failover).
    h.mock.push_scenario(
        "alpha",
        Scenario::RateLimited {
            retry_after_secs: 7,
        },
        1,
    );
    let response = h.message(false).send().await.unwrap();
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((6..=7).contains(&retry), "retry-after {retry}");
    h.shutdown().await;
}

#[tokio::test]
async fn oauth_credentials_use_bearer_and_the_beta_flag() {
    let h = Harness::start(Options {
        keys: vec![key("oauth-a")],
        ..Options::default()
    })
    .await;
    let response = h
        .message(false)
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let call = &h.mock.calls()[0];
    let auth: Vec<_> = call
        .headers
        .iter()
        .filter(|(k, _)| k == "authorization")
        .collect();
    assert_eq!(auth.len(), 1);
    assert_eq!(auth[0].1, format!("Bearer {}", key("oauth-a").secret));
    let betas: Vec<_> = call
        .headers
        .iter()
        .filter(|(k, _)| k == "anthropic-beta")
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(betas.contains(&"prompt-caching-2024-07-31"));
    assert!(betas.iter().any(|b| b.contains("oauth-2025-04-20")));
    assert!(!call.headers.iter().any(|(k, _)| k == "x-api-key"));
    h.shutdown().await;
}

#[tokio::test]
async fn auxiliary_routes_pass_through() {
    let h = Harness::start(Options::default()).await;
    // Claude Code's probe: no credential, any status is fine, but it must not hang or 5xx.
    let head = h.http.head(&h.base).send().await.unwrap();
    assert!(head.status().is_success());

    let count = h
        .post("/v1/messages/count_tokens")
        .json(&serde_json::json!({"model": "claude-sonnet-5-5", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(count.status(), 200);
    let count: serde_json::Value = count.json().await.unwrap();
    assert!(count["input_tokens"].as_u64().unwrap() > 0);

    let models: serde_json::Value = h
        .get("/v1/models?limit=2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"].as_array().unwrap().len(), 2);
    let first = models["data"][0]["id"].as_str().unwrap().to_owned();
    let one = h.get(&format!("/v1/models/{first}")).send().await.unwrap();
    assert_eq!(one.status(), 200);
    let missing = h.get("/v1/models/not-a-model").send().await.unwrap();
    assert_eq!(missing.status(), 404);

    let legacy = h
        .post("/v1/complete")
        .json(
            &serde_json::json!({"model": "claude-sonnet-5-5", "max_tokens_to_sample": 16,
            "prompt": "\n\nHuman: hi\n\nAssistant:", "stream": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(legacy.status(), 200);
    let text = legacy.text().await.unwrap();
    let events = sse_events(&text);
    assert!(events.iter().any(|(e, _)| e == "completion"), "{text}");
    h.shutdown().await;
}

#[tokio::test]
async fn requests_rotate_across_credentials() {
    let h = Harness::start(Options::default()).await;
    for _ in 0..9 {
        let r = h.message(false).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    for name in ["alpha", "beta", "gamma"] {
        assert_eq!(
            h.mock.call_count(name),
            3,
            "round-robin should spread evenly"
        );
    }
    h.shutdown().await;
}
