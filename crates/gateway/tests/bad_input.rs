//! Bad input is refused with an Anthropic-shaped error that names the problem, and nothing is
//! sent upstream.

mod support;

use support::{Harness, Options};

async fn assert_refused(
    h: &Harness,
    response: reqwest::Response,
    status: u16,
    kind: &str,
    mentions: &str,
) {
    assert_eq!(response.status().as_u16(), status);
    let request_id = response.headers()["request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.to_lowercase().contains(&mentions.to_lowercase()),
        "{message:?} should mention {mentions:?}"
    );
    assert_eq!(body["request_id"], request_id);
    assert!(h.mock.calls().is_empty(), "no upstream call for bad input");
}

#[tokio::test]
async fn malformed_json() {
    let h = Harness::start(Options::default()).await;
    let r = h
        .post("/v1/messages")
        .header("content-type", "application/json")
        .body(r#"{"model": "claude-sonnet-5-5", "max_tokens": 10, "messages": [}"#)
        .send()
        .await
        .unwrap();
    assert_refused(&h, r, 400, "invalid_request_error", "not valid JSON").await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_body_that_is_not_an_object_or_lacks_a_model() {
    let h = Harness::start(Options::default()).await;
    let r = h
        .post("/v1/messages")
        .header("content-type", "application/json")
        .body("[1,2]")
        .send()
        .await
        .unwrap();
    assert_refused(&h, r, 400, "invalid_request_error", "object").await;
    let r = h
        .post("/v1/messages")
        .json(&serde_json::json!({"max_tokens": 5, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_refused(&h, r, 400, "invalid_request_error", "model").await;
    h.shutdown().await;
}

#[tokio::test]
async fn wrong_content_type() {
    let h = Harness::start(Options::default()).await;
    let r = h
        .post("/v1/messages")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("model=claude")
        .send()
        .await
        .unwrap();
    assert_refused(&h, r, 400, "invalid_request_error", "application/json").await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_body_over_the_limit() {
    let h = Harness::start(Options {
        env: vec![("KEYLOOP_SERVER__BODY_LIMIT_BYTES", "1024".into())],
        ..Options::default()
    })
    .await;
    let big = format!(
        r#"{{"model":"claude-sonnet-5-5","max_tokens":5,"messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(4096)
    );
    let r = h
        .post("/v1/messages")
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_refused(&h, r, 413, "request_too_large", "limit").await;
    // Without a content-length the limit still holds (chunked upload).
    let stream = futures_util::stream::iter(
        big.into_bytes()
            .chunks(512)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let r = h
        .post("/v1/messages")
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_refused(&h, r, 413, "request_too_large", "limit").await;
    h.shutdown().await;
}

#[tokio::test]
async fn unknown_route() {
    let h = Harness::start(Options::default()).await;
    let r = h
        .post("/v1/nonsense")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_refused(&h, r, 404, "not_found_error", "/v1/nonsense").await;
    h.shutdown().await;
}

#[tokio::test]
async fn missing_and_wrong_client_keys() {
    let h = Harness::start(Options::default()).await;
    let body = serde_json::json!({"model": "claude-sonnet-5-5", "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}]});
    let url = format!("{}/v1/messages", h.base);

    let r = h.http.post(&url).json(&body).send().await.unwrap();
    assert_refused(&h, r, 401, "authentication_error", "x-api-key").await;

    let r = h
        .http
        .post(&url)
        .header("x-api-key", "klk_not-a-real-key")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_refused(&h, r, 401, "authentication_error", "invalid").await;

    // Bearer form works for a good key…
    let ok = h
        .http
        .post(&url)
        .bearer_auth(&h.client_key)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    h.mock.reset_calls();

    // A client created after start-up (e.g. by the CLI) works on its first request.
    let (_, fresh) = keyloop::clients::create(h.gateway.store.as_ref(), "other", None)
        .await
        .unwrap();
    let r = h
        .http
        .post(&url)
        .header("x-api-key", fresh.expose())
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    h.shutdown().await;
}

/// Malformed bodies, each refused with a 400 in Anthropic's shape and no upstream call.
#[tokio::test]
async fn a_corpus_of_malformed_bodies_is_refused_before_any_upstream_call() {
    let h = Harness::start(Options::default()).await;
    let deep = format!(
        r#"{{"model":"claude-sonnet-5-5","max_tokens":5,"messages":{}1{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let long_model = format!(
        r#"{{"model":"{}","max_tokens":5,"messages":[]}}"#,
        "m".repeat(4 * 1024 * 1024)
    );
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "bad UTF-8",
            b"{\"model\":\"claude-sonnet-5-5\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}".to_vec(),
            "application/json",
            "utf-8",
        ),
        (
            "lone surrogate",
            br#"{"model":"claude-sonnet-5-5","max_tokens":5,"messages":[{"role":"user","content":"\ud800"}]}"#.to_vec(),
            "application/json",
            "escape",
        ),
        ("10,000-deep nesting", deep.into_bytes(), "application/json", "nest"),
        (
            "1e400",
            br#"{"model":"claude-sonnet-5-5","max_tokens":1e400,"messages":[]}"#.to_vec(),
            "application/json",
            "number",
        ),
        (
            "duplicate model",
            br#"{"model":"claude-sonnet-5-5","model":"claude-opus-5-5","max_tokens":5,"messages":[]}"#.to_vec(),
            "application/json",
            "model",
        ),
        ("a model of megabytes", long_model.into_bytes(), "application/json", "model"),
        (
            "a model with control characters",
            br#"{"model":"claude\u0000sonnet","max_tokens":5,"messages":[]}"#.to_vec(),
            "application/json",
            "model",
        ),
        (
            "wrong content type",
            br#"{"model":"claude-sonnet-5-5","max_tokens":5,"messages":[]}"#.to_vec(),
            "text/plain",
            "content-type",
        ),
    ];
    for (what, body, content_type, mentions) in cases {
        let r = h
            .post("/v1/messages")
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        println!("{what}: {status} {}", &text[..text.len().min(200)]);
        assert_eq!(status, 400, "{what}: {text}");
        assert_eq!(parsed["error"]["type"], "invalid_request_error", "{what}");
        let message = parsed["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        assert!(
            message.contains(mentions),
            "{what}: {message:?} should mention {mentions:?}"
        );
        assert!(
            message.len() < 400,
            "{what}: the message does not echo the input"
        );
    }
    assert!(h.mock.calls().is_empty(), "no upstream call for bad input");
    h.shutdown().await;
}

#[tokio::test]
async fn an_attribution_header_of_a_kilobyte_is_refused() {
    let h = Harness::start(Options::default()).await;
    let r = h
        .message(false)
        .header("x-client-id", "b".repeat(1024))
        .send()
        .await
        .unwrap();
    assert_refused(&h, r, 400, "invalid_request_error", "x-client-id").await;
    let r = h
        .message(false)
        .header("x-client-id", "nightly-bot")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a name is fine");
    h.shutdown().await;
}
