//! Building our error envelope and reading upstream's.

mod support;

use keyloop_wire::anthropic::{
    ErrorType, EventKind, StreamTap, UpstreamError, error_body, error_event, is_credit_exhausted,
    parse_error_body,
};
use keyloop_wire::sse::SseScanner;
use serde_json::{Value, json};
use support::http_body;

/// The protocol doc's §9.2 table.
const TABLE: [(ErrorType, &str, u16); 10] = [
    (ErrorType::InvalidRequest, "invalid_request_error", 400),
    (ErrorType::Authentication, "authentication_error", 401),
    (ErrorType::Billing, "billing_error", 402),
    (ErrorType::Permission, "permission_error", 403),
    (ErrorType::NotFound, "not_found_error", 404),
    (ErrorType::RequestTooLarge, "request_too_large", 413),
    (ErrorType::RateLimit, "rate_limit_error", 429),
    (ErrorType::Api, "api_error", 500),
    (ErrorType::Timeout, "timeout_error", 504),
    (ErrorType::Overloaded, "overloaded_error", 529),
];

const AWKWARD_MESSAGE: &str = "bad \"model\"\n\tC:\\path </script> ünïcødé \u{1F600} \u{0007}";

fn upstream(kind: Option<ErrorType>, message: &str, code: Option<&str>) -> UpstreamError {
    UpstreamError {
        kind,
        kind_raw: kind.map_or("", ErrorType::as_str).to_owned(),
        message: message.to_owned(),
        error_code: code.map(str::to_owned),
    }
}

#[test]
fn error_types_match_the_wire_table() {
    for (kind, wire, status) in TABLE {
        assert_eq!(kind.as_str(), wire);
        assert_eq!(kind.to_string(), wire);
        assert_eq!(kind.status(), status, "{wire}");
        assert_eq!(ErrorType::parse(wire), Some(kind));
    }
    assert_eq!(ErrorType::parse("conflict_error"), None);
    assert_eq!(ErrorType::parse("Overloaded_Error"), None);
}

#[test]
fn error_body_has_the_exact_envelope_shape() {
    let body = error_body(ErrorType::Api, "boom", "req_1");
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        r#"{"type":"error","error":{"type":"api_error","message":"boom"},"request_id":"req_1"}"#
    );
}

#[test]
fn error_body_escapes_and_round_trips_every_type() {
    for (kind, wire, _) in TABLE {
        let body = error_body(kind, AWKWARD_MESSAGE, "req_\"x\"");
        let parsed: Value = serde_json::from_slice(&body).expect("valid JSON");
        assert_eq!(
            parsed,
            json!({
                "type": "error",
                "error": {"type": wire, "message": AWKWARD_MESSAGE},
                "request_id": "req_\"x\"",
            })
        );
        let upstream = parse_error_body(&body).expect("our envelope is readable as upstream's");
        assert_eq!(upstream.kind, Some(kind));
        assert_eq!(upstream.message, AWKWARD_MESSAGE);
    }
}

#[test]
fn error_event_is_one_sse_event_carrying_the_body() {
    let frame = error_event(ErrorType::Overloaded, AWKWARD_MESSAGE, "req_2");
    assert!(frame.starts_with(b"event: error\ndata: {"));
    assert!(frame.ends_with(b"}\n\n"));

    let mut scanner = SseScanner::new();
    let mut tap = StreamTap::new();
    let mut events = Vec::new();
    let boundary = scanner
        .feed(&frame, |ev| {
            events.push((ev.event.to_vec(), ev.data.to_vec()));
            assert_eq!(tap.observe(&ev), EventKind::Error);
        })
        .unwrap();
    assert_eq!(boundary, frame.len());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, b"error");
    assert_eq!(
        events[0].1,
        error_body(ErrorType::Overloaded, AWKWARD_MESSAGE, "req_2")
    );
    assert_eq!(tap.error().unwrap().kind, Some(ErrorType::Overloaded));
}

#[test]
fn parses_the_429_fixture() {
    let error = parse_error_body(&http_body("anthropic-429-rate-limit.http")).unwrap();
    assert_eq!(error.kind, Some(ErrorType::RateLimit));
    assert_eq!(error.kind_raw, "rate_limit_error");
    assert!(
        error
            .message
            .starts_with("This request would exceed your organization's rate limit"),
        "{}",
        error.message
    );
    assert_eq!(error.error_code, None);
    assert!(!is_credit_exhausted(&error));
}

#[test]
fn reads_error_code_and_tolerates_extra_and_unknown_fields() {
    let body = br#"{"type":"error","error":{"type":"rate_limit_error","message":"cap","details":{"error_code":"enforced_spend_limit_reached","extra":1},"new":[1]},"request_id":null,"more":{}}"#;
    let error = parse_error_body(body).unwrap();
    assert_eq!(
        error.error_code.as_deref(),
        Some("enforced_spend_limit_reached")
    );
    assert!(is_credit_exhausted(&error));

    let error = parse_error_body(br#"{"error":{"type":"conflict_error"}}"#).unwrap();
    assert_eq!(error, upstream(None, "", None).with_raw("conflict_error"));
}

#[test]
fn non_envelopes_are_not_errors() {
    let cloudflare = b"<html><head><title>413 Request Entity Too Large</title></head></html>";
    assert_eq!(parse_error_body(cloudflare), None);
    assert_eq!(parse_error_body(b""), None);
    assert_eq!(
        parse_error_body(br#"{"type":"message","id":"msg_1"}"#),
        None
    );
    assert_eq!(parse_error_body(br#"{"error":"just a string"}"#), None);
}

#[test]
fn credit_exhaustion_is_recognised_by_type_code_or_the_exact_message() {
    let exhausted = [
        upstream(
            Some(ErrorType::InvalidRequest),
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
            None,
        ),
        upstream(
            Some(ErrorType::InvalidRequest),
            "You have reached your specified API usage limits. You will regain access on 2026-02-01 at 00:00 UTC.",
            None,
        ),
        upstream(
            Some(ErrorType::RateLimit),
            "cap",
            Some("enforced_spend_limit_reached"),
        ),
        upstream(Some(ErrorType::Billing), "payment failed", None),
    ];
    for error in &exhausted {
        assert!(is_credit_exhausted(error), "{error:?}");
    }
    let not_exhausted = [
        upstream(
            Some(ErrorType::InvalidRequest),
            "max_tokens: field required",
            None,
        ),
        upstream(Some(ErrorType::RateLimit), "slow down", Some("other_code")),
        upstream(Some(ErrorType::Overloaded), "Overloaded", None),
        // Validation messages quote the client's input: the phrase inside one is the client's,
        // not the provider's billing signal.
        upstream(
            Some(ErrorType::InvalidRequest),
            "messages.0.content.0.text: \"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.\" exceeds the allowed length",
            None,
        ),
        upstream(
            Some(ErrorType::InvalidRequest),
            "YOUR CREDIT BALANCE IS TOO LOW",
            None,
        ),
    ];
    for error in &not_exhausted {
        assert!(!is_credit_exhausted(error), "{error:?}");
    }
}

trait WithRaw {
    fn with_raw(self, raw: &str) -> Self;
}

impl WithRaw for UpstreamError {
    fn with_raw(mut self, raw: &str) -> Self {
        self.kind_raw = raw.to_owned();
        self
    }
}
