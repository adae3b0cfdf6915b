//! Starting mocks on port 0, sending requests with reqwest, reading SSE bodies.

use keyloop_mock::{Limits, MockConfig, MockKey, MockUpstream};
use reqwest::{RequestBuilder, Response};
use serde_json::{Value, json};

pub const KEY_A: &str = "sk-ant-api03-key-a";
pub const KEY_B: &str = "sk-ant-api03-key-b";
pub const OAUTH: &str = "sk-ant-oat01-oauth-token";
pub const VERSION: &str = "2023-06-01";

/// Keys `a`, `b` (API keys) and `oauth` (an OAuth token), no limits.
pub fn keys() -> Vec<MockKey> {
    vec![
        MockKey::new("a", KEY_A),
        MockKey::new("b", KEY_B),
        MockKey::new("oauth", OAUTH),
    ]
}

pub async fn start() -> MockUpstream {
    start_with(MockConfig::with_keys(keys())).await
}

pub async fn start_with(config: MockConfig) -> MockUpstream {
    MockUpstream::start(config).await.expect("mock starts")
}

/// Key `a` limited as given.
pub async fn start_limited(limits: Limits) -> MockUpstream {
    start_with(MockConfig::with_keys([
        MockKey::new("a", KEY_A).with_limits(limits)
    ]))
    .await
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// A POST to `path` authenticated with `key` as `x-api-key`.
pub fn post(mock: &MockUpstream, key: &str, path: &str) -> RequestBuilder {
    client()
        .post(format!("{}{path}", mock.url()))
        .header("x-api-key", key)
        .header("anthropic-version", VERSION)
}

pub fn get(mock: &MockUpstream, key: &str, path: &str) -> RequestBuilder {
    client()
        .get(format!("{}{path}", mock.url()))
        .header("x-api-key", key)
        .header("anthropic-version", VERSION)
}

pub fn hello() -> Value {
    json!({
        "model": "claude-sonnet-5-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Hello there"}],
    })
}

pub fn hello_stream() -> Value {
    let mut body = hello();
    body["stream"] = json!(true);
    body
}

pub async fn messages(mock: &MockUpstream, body: &Value) -> Response {
    post(mock, KEY_A, "/v1/messages")
        .json(body)
        .send()
        .await
        .expect("request sent")
}

pub async fn json_of(response: Response) -> Value {
    response.json().await.expect("JSON body")
}

pub fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("header {name} missing"))
        .to_str()
        .expect("ASCII header")
}

/// Asserts the Anthropic error envelope and returns `error.message`.
pub async fn expect_error(response: Response, status: u16, kind: &str) -> String {
    assert_eq!(response.status().as_u16(), status);
    let request_id = header(&response, "request-id").to_owned();
    let body = json_of(response).await;
    let object = body.as_object().expect("error body is an object");
    assert_eq!(object.len(), 3, "exactly type, error, request_id: {body}");
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert_eq!(body["request_id"], request_id.as_str());
    body["error"]["message"]
        .as_str()
        .expect("message")
        .to_owned()
}

/// One SSE event: its name and parsed data.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub data: Value,
}

/// Parses a complete `text/event-stream` body (comment lines ignored).
pub fn parse_sse(text: &str) -> Vec<Event> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = Some(value.to_owned());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(value).expect("event data is JSON"));
                }
            }
            Some(Event {
                name: name?,
                data: data?,
            })
        })
        .collect()
}

pub fn names(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.name.as_str()).collect()
}

/// Reads body chunks until the end or an error; returns the chunks and whether the body
/// ended cleanly.
pub async fn read_chunks(mut response: Response) -> (Vec<bytes::Bytes>, bool) {
    let mut chunks = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => chunks.push(chunk),
            Ok(None) => return (chunks, true),
            Err(_) => return (chunks, false),
        }
    }
}

pub fn text_of(chunks: &[bytes::Bytes]) -> String {
    String::from_utf8(chunks.concat()).expect("UTF-8 body")
}

/// A POST to `path` with `token` as an OAuth bearer token and the OAuth beta flag.
pub fn post_oauth(mock: &MockUpstream, token: &str, path: &str) -> RequestBuilder {
    client()
        .post(format!("{}{path}", mock.url()))
        .bearer_auth(token)
        .header("anthropic-beta", "oauth-2025-04-20")
        .header("anthropic-version", VERSION)
}

/// `POST /v1/messages` for `model` with `token` as an OAuth bearer token.
pub async fn oauth_messages(mock: &MockUpstream, token: &str, model: &str) -> Response {
    let mut body = hello();
    body["model"] = json!(model);
    post_oauth(mock, token, "/v1/messages")
        .json(&body)
        .send()
        .await
        .expect("request sent")
}

/// The value of `name`, if the answer carries it.
pub fn maybe_header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("ASCII header"))
}
