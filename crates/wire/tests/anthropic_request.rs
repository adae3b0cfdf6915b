//! Peeking at request bodies: the fixture, and the malformed bodies clients really send.

mod support;

use std::borrow::Cow;

use keyloop_wire::anthropic::{PeekError, RequestPeek, Speed, peek_request};
use support::http_body;

fn peek(body: &str) -> Result<RequestPeek<'_>, PeekError> {
    peek_request(body.as_bytes())
}

fn syntax_at(body: &str) -> (usize, usize) {
    match peek(body) {
        Err(PeekError::Syntax { line, column, .. }) => (line, column),
        other => panic!("expected a syntax error for {body:?}, got {other:?}"),
    }
}

#[test]
fn reads_the_fixture_request_without_copying() {
    let body = http_body("anthropic-request-tools.http");
    let peeked = peek_request(&body).unwrap();
    assert_eq!(peeked.model.as_deref(), Some("claude-sonnet-5-5"));
    assert!(peeked.stream);
    assert_eq!(
        peeked.user_id.as_deref(),
        Some("3f9c2a71-8d4e-4b57-9a0e-2c6b1f0d7e55")
    );
    assert!(matches!(peeked.model, Some(Cow::Borrowed(_))));
    assert!(matches!(peeked.user_id, Some(Cow::Borrowed(_))));
}

#[test]
fn missing_and_null_fields_take_their_defaults() {
    let expected = RequestPeek {
        model: Some(Cow::Borrowed("m")),
        stream: false,
        user_id: None,
        speed: Speed::Standard,
    };
    for body in [
        r#"{"model":"m","messages":[]}"#,
        r#"{"model":"m","stream":null}"#,
        r#"{"model":"m","stream":false,"metadata":null}"#,
        r#"{"model":"m","metadata":{"user_id":null}}"#,
        r#"{"model":"m","metadata":{}}"#,
        r#"{"model":"m","speed":null}"#,
        r#"{"model":"m","speed":"standard"}"#,
    ] {
        assert_eq!(peek(body), Ok(expected.clone()), "{body}");
    }
    assert_eq!(peek("{}"), Ok(RequestPeek::default()));
    assert_eq!(peek(r#"{"model":null}"#).unwrap().model, None);
}

#[test]
fn fast_mode_is_read_from_speed() {
    let fast = peek(r#"{"model":"claude-opus-5-5","speed":"fast","max_tokens":1}"#).unwrap();
    assert_eq!(fast.speed, Speed::Fast);
    assert_eq!(peek(r#"{"speed":"f\u0061st"}"#).unwrap().speed, Speed::Fast);
    // A value the API does not know is refused upstream (400), so it is never billed as fast.
    assert_eq!(peek(r#"{"speed":"turbo"}"#).unwrap().speed, Speed::Standard);
    // Only the top-level field counts.
    let nested = r#"{"metadata":{"speed":"fast"},"messages":[{"speed":"fast"}]}"#;
    assert_eq!(peek(nested).unwrap().speed, Speed::Standard);
}

#[test]
fn escaped_strings_are_unescaped() {
    let peeked = peek(r#"{"model":"claude-\u0073onnet","metadata":{"user_id":"a\"b"}}"#).unwrap();
    assert_eq!(peeked.model.as_deref(), Some("claude-sonnet"));
    assert_eq!(peeked.user_id.as_deref(), Some("a\"b"));
    assert_eq!(
        peek(r#"{"mod\u0065l":"m"}"#).unwrap().model.as_deref(),
        Some("m")
    );
}

#[test]
fn only_top_level_and_metadata_fields_count() {
    let body = r#"{"messages":[{"model":"evil","stream":true,"metadata":{"user_id":"x"}}],
        "user_id":"top","metadata":{"model":"meta","user_id":"u","extra":{"user_id":"deep"}},
        "model":"good","system":{"stream":"nested"}}"#;
    let peeked = peek(body).unwrap();
    assert_eq!(peeked.model.as_deref(), Some("good"));
    assert!(!peeked.stream);
    assert_eq!(peeked.user_id.as_deref(), Some("u"));
}

#[test]
fn skips_values_of_every_json_type() {
    let body = r#"{"a":{"b":[1,-2.5e3,true,false,null,"s\"\\\u00e9",{},[]]},"n":18446744073709551616,"model":"m","stream":true}"#;
    let peeked = peek(body).unwrap();
    assert_eq!((peeked.model.as_deref(), peeked.stream), (Some("m"), true));
}

#[test]
fn truncated_body_is_a_syntax_error_a_client_can_act_on() {
    let err = peek(r#"{"model":"claude""#).unwrap_err();
    assert_eq!(
        err,
        PeekError::Syntax {
            line: 1,
            column: 17,
            message: "EOF while parsing an object".to_owned(),
        }
    );
    assert_eq!(
        err.to_string(),
        "request body is not valid JSON: EOF while parsing an object at line 1 column 17"
    );
}

#[test]
fn syntax_errors_report_where_they_are() {
    assert_eq!(
        syntax_at("{\n  \"model\": \"m\",\n  \"stream\": yes\n}"),
        (3, 13)
    );
    assert_eq!(syntax_at(""), (1, 0));
    assert_eq!(syntax_at("[1,"), (1, 3));
    assert_eq!(syntax_at(r#"{"model":"m",}"#), (1, 14));
    let trailing = peek(r#"{"model":"m"} {}"#).unwrap_err();
    assert!(
        trailing.to_string().contains("trailing characters"),
        "{trailing}"
    );
}

#[test]
fn syntax_errors_win_over_type_errors_later_in_the_body() {
    let body = r#"{"model":5,"messages":[}"#;
    assert!(matches!(peek(body), Err(PeekError::Syntax { .. })));
    let body = r#"[1,2"#;
    assert!(matches!(peek(body), Err(PeekError::Syntax { .. })));
}

#[test]
fn invalid_utf8_is_a_syntax_error_even_inside_skipped_strings() {
    let mut body = b"{\"model\":\"m\",\n\"system\":\"ab".to_vec();
    body.extend_from_slice(&[0xff, 0xfe]);
    body.extend_from_slice(b"\"}");
    let err = peek_request(&body).unwrap_err();
    assert_eq!(
        err,
        PeekError::Syntax {
            line: 2,
            column: 13,
            message: "invalid UTF-8".to_owned(),
        }
    );
}

#[test]
fn non_objects_are_rejected_after_full_validation() {
    for body in [
        "[]",
        "[1,{\"model\":\"m\"}]",
        "\"model\"",
        "42",
        "-1.5",
        "true",
        "null",
    ] {
        assert_eq!(peek(body), Err(PeekError::NotAnObject), "{body}");
    }
    assert_eq!(
        PeekError::NotAnObject.to_string(),
        "request body must be a JSON object"
    );
}

#[test]
fn wrong_field_types_name_the_field() {
    let cases = [
        (r#"{"model":5}"#, "model", "a string"),
        (r#"{"model":["m"]}"#, "model", "a string"),
        (r#"{"model":true}"#, "model", "a string"),
        (r#"{"stream":"true"}"#, "stream", "a boolean"),
        (r#"{"stream":1}"#, "stream", "a boolean"),
        (r#"{"metadata":[]}"#, "metadata", "an object"),
        (r#"{"metadata":"u"}"#, "metadata", "an object"),
        (
            r#"{"metadata":{"user_id":7}}"#,
            "metadata.user_id",
            "a string or null",
        ),
        (
            r#"{"metadata":{"user_id":{"id":"u"}}}"#,
            "metadata.user_id",
            "a string or null",
        ),
        (r#"{"speed":true}"#, "speed", "a string"),
        (r#"{"speed":{"mode":"fast"}}"#, "speed", "a string"),
    ];
    for (body, field, expected) in cases {
        assert_eq!(
            peek(body),
            Err(PeekError::WrongType { field, expected }),
            "{body}"
        );
    }
    assert_eq!(
        peek(r#"{"stream":"yes"}"#).unwrap_err().to_string(),
        "request field `stream` must be a boolean"
    );
}

#[test]
fn duplicated_routing_fields_are_rejected() {
    let cases = [
        (r#"{"model":"cheap","model":"expensive"}"#, "model"),
        (r#"{"stream":false,"x":1,"stream":true}"#, "stream"),
        (
            r#"{"metadata":null,"metadata":{"user_id":"u"}}"#,
            "metadata",
        ),
        (
            r#"{"metadata":{"user_id":"a","user_id":"b"}}"#,
            "metadata.user_id",
        ),
        (r#"{"speed":"standard","speed":"fast"}"#, "speed"),
    ];
    for (body, field) in cases {
        assert_eq!(
            peek(body),
            Err(PeekError::DuplicateField { field }),
            "{body}"
        );
    }
    assert_eq!(
        PeekError::DuplicateField { field: "model" }.to_string(),
        "request field `model` appears more than once"
    );
    // Unknown fields may repeat: upstream decides about those.
    assert!(peek(r#"{"temperature":1,"temperature":0,"model":"m"}"#).is_ok());
}

#[test]
fn model_ids_are_bounded_in_length_and_charset() {
    let body = |model: &str| {
        serde_json::json!({"model": model, "max_tokens": 1, "messages": []}).to_string()
    };
    for ok in [
        "claude-sonnet-5-5",
        "anthropic.claude-opus-5-5-v1:0",
        "claude-opus-5-5@20260915",
        "models/gemini-2.5-pro",
    ] {
        assert!(peek_request(body(ok).as_bytes()).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "claude sonnet",
        "claude\u{0}x",
        "clåude",
        &"m".repeat(257),
    ] {
        let err = peek_request(body(bad).as_bytes()).unwrap_err();
        assert!(matches!(err, PeekError::BadModel { .. }), "{bad:?}: {err}");
        assert!(err.to_string().starts_with("request field `model`"));
    }
}

#[test]
fn skipped_values_are_held_to_the_nesting_limit_and_number_range() {
    let nested = |depth: usize| {
        format!(
            r#"{{"model":"claude-sonnet-5-5","messages":{}1{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    assert!(peek_request(nested(100).as_bytes()).is_ok());
    let err = peek_request(nested(10_000).as_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("nested deeper than 128 levels"),
        "{err}"
    );
    let err = peek_request(br#"{"model":"claude-sonnet-5-5","max_tokens":1e400}"#).unwrap_err();
    assert!(err.to_string().contains("number out of range"), "{err}");
    let err = peek_request(br#"{"model":"m","messages":[{"content":"\udc00"}]}"#).unwrap_err();
    assert!(matches!(err, PeekError::Syntax { .. }), "{err}");
}
