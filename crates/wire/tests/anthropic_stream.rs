//! The stream tap against the fixtures' stated totals and the §7.10 usage rules.

mod support;

use keyloop_wire::anthropic::{ErrorType, EventKind, StreamTap, UpstreamError};
use keyloop_wire::sse::{SseEvent, SseScanner};
use keyloop_wire::usage::{InferenceGeo, Usage};
use support::{ANTHROPIC_STREAMS, fixture};

/// Scans `chunks` and feeds every event to a tap, returning the tap and the kinds it reported.
fn tap_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> (StreamTap, Vec<EventKind>) {
    let mut scanner = SseScanner::new();
    let mut tap = StreamTap::new();
    let mut kinds = Vec::new();
    for chunk in chunks {
        scanner
            .feed(chunk, |ev| kinds.push(tap.observe(&ev)))
            .expect("fixture lines are short");
    }
    (tap, kinds)
}

fn tap_fixture(name: &str) -> StreamTap {
    tap_chunks([&fixture(name)[..]]).0
}

fn tap_text(text: &str) -> StreamTap {
    tap_chunks([text.as_bytes()]).0
}

/// The tap's observable state, for comparing two taps.
type TapState = (
    bool,
    bool,
    Option<UpstreamError>,
    Option<String>,
    Option<String>,
    Usage,
);

fn state(tap: &StreamTap) -> TapState {
    (
        tap.first_content_seen(),
        tap.saw_message_stop(),
        tap.error().cloned(),
        tap.model().map(str::to_owned),
        tap.stop_reason().map(str::to_owned),
        *tap.usage(),
    )
}

#[test]
fn text_stream_totals_match_the_fixture_header() {
    let tap = tap_fixture("anthropic-stream-text.sse");
    assert_eq!(
        *tap.usage(),
        Usage {
            input_tokens: 11,
            output_tokens: 6,
            ..Usage::default()
        }
    );
    assert_eq!(tap.model(), Some("claude-haiku-4-5-20251001"));
    assert_eq!(tap.stop_reason(), Some("end_turn"));
    assert!(tap.saw_message_stop());
    assert!(tap.first_content_seen());
    assert!(tap.error().is_none());
}

#[test]
fn tool_use_stream_totals_match_the_fixture_header() {
    let tap = tap_fixture("anthropic-stream-tool-use.sse");
    assert_eq!(
        (tap.usage().input_tokens, tap.usage().output_tokens),
        (412, 79)
    );
    assert_eq!(
        tap.usage().cache_write_tokens + tap.usage().cache_read_tokens,
        0
    );
    assert_eq!(tap.model(), Some("claude-sonnet-5-5"));
    assert_eq!(tap.stop_reason(), Some("tool_use"));
    assert!(tap.saw_message_stop());
}

#[test]
fn thinking_stream_totals_match_the_fixture_header() {
    let tap = tap_fixture("anthropic-stream-thinking.sse");
    assert_eq!(
        (tap.usage().input_tokens, tap.usage().output_tokens),
        (96, 214)
    );
    assert_eq!(tap.model(), Some("claude-opus-4-8"));
    // Reported in message_start only; the message_delta usage leaves it as it was.
    assert_eq!(tap.usage().inference_geo, InferenceGeo::Global);
    assert_eq!(tap.stop_reason(), Some("end_turn"));
    assert!(tap.saw_message_stop());
}

#[test]
fn midstream_error_is_recorded_without_a_stop() {
    let tap = tap_fixture("anthropic-stream-error-midstream.sse");
    assert_eq!(tap.usage().input_tokens, 1843);
    let error = tap.error().expect("the stream ends in an error event");
    assert_eq!(error.kind, Some(ErrorType::Overloaded));
    assert_eq!(error.kind_raw, "overloaded_error");
    assert_eq!(error.message, "Overloaded");
    assert!(!tap.saw_message_stop());
    assert!(tap.first_content_seen());
    assert_eq!(tap.stop_reason(), None);
}

#[test]
fn tap_state_is_the_same_at_every_split_point() {
    for name in ANTHROPIC_STREAMS {
        let body = fixture(name);
        let whole = state(&tap_fixture(name));
        for cut in 0..=body.len() {
            let (tap, _) = tap_chunks([&body[..cut], &body[cut..]]);
            assert_eq!(state(&tap), whole, "{name} split at {cut}");
        }
    }
}

#[test]
fn observe_reports_each_event_kind_and_content_starts_at_the_first_block() {
    let body = fixture("anthropic-stream-text.sse");
    let mut scanner = SseScanner::new();
    let mut tap = StreamTap::new();
    let mut seen = Vec::new();
    scanner
        .feed(&body, |ev| {
            let kind = tap.observe(&ev);
            seen.push((kind, tap.first_content_seen()));
        })
        .unwrap();
    use EventKind::*;
    assert_eq!(
        seen,
        [
            (MessageStart, false),
            (ContentBlockStart, true),
            (Ping, true),
            (ContentBlockDelta, true),
            (ContentBlockDelta, true),
            (ContentBlockDelta, true),
            (ContentBlockStop, true),
            (MessageDelta, true),
            (MessageStop, true),
        ]
    );
}

#[test]
fn ping_alone_is_not_content() {
    let tap = tap_text(concat!(
        "event: message_start\n",
        r#"data: {"type":"message_start","message":{"model":"m","usage":{"input_tokens":3,"output_tokens":1}}}"#,
        "\n\nevent: ping\ndata: {}\n\n",
    ));
    assert!(!tap.first_content_seen());
    assert!(!tap.saw_message_stop());
    // A cut stream bills the provisional output count; there is nothing better.
    assert_eq!(
        (tap.usage().input_tokens, tap.usage().output_tokens),
        (3, 1)
    );
}

#[test]
fn message_delta_overwrites_input_side_and_output_is_cumulative() {
    let tap = tap_text(concat!(
        "event: message_start\n",
        r#"data: {"type":"message_start","message":{"model":"m","usage":{"input_tokens":100,"cache_read_input_tokens":50,"cache_creation_input_tokens":300,"cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":200},"output_tokens":3,"inference_geo":"us"}}}"#,
        "\n\nevent: message_delta\n",
        r#"data: {"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":40,"input_tokens":120,"cache_read_input_tokens":null}}"#,
        "\n\nevent: message_delta\n",
        r#"data: {"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":55}}"#,
        "\n\n",
    ));
    assert_eq!(
        *tap.usage(),
        Usage {
            input_tokens: 120,
            output_tokens: 55,
            cache_read_tokens: 50,
            cache_write_tokens: 300,
            cache_write_5m_tokens: 100,
            cache_write_1h_tokens: 200,
            // From message_start: the deltas do not repeat it.
            inference_geo: InferenceGeo::Us,
        }
    );
    assert_eq!(tap.stop_reason(), Some("max_tokens"));
}

#[test]
fn cache_write_total_without_a_split_counts_as_five_minute() {
    let tap = tap_text(concat!(
        "event: message_start\n",
        r#"data: {"type":"message_start","message":{"usage":{"input_tokens":5,"cache_creation_input_tokens":700,"output_tokens":1}}}"#,
        "\n\n",
    ));
    assert_eq!(tap.usage().cache_write_tokens, 700);
    assert_eq!(tap.usage().cache_write_5m_tokens, 700);
    assert_eq!(tap.usage().cache_write_1h_tokens, 0);
}

#[test]
fn malformed_data_is_ignored_and_unreadable_errors_still_count() {
    let tap = tap_text(concat!(
        "event: message_start\n",
        r#"data: {"type":"message_start","message":{"usage":{"input_tokens":9,"output_tokens":1}}}"#,
        "\n\nevent: message_delta\ndata: {not json\n\n",
        "event: error\ndata: upstream fell over\n\n",
    ));
    assert_eq!(
        (tap.usage().input_tokens, tap.usage().output_tokens),
        (9, 1)
    );
    let error = tap.error().expect("an error event was seen");
    assert_eq!(error.kind, None);
    assert_eq!(error.message, "upstream fell over");
}

#[test]
fn legacy_completion_stream_ends_at_a_stop_reason() {
    let mut scanner = SseScanner::new();
    let mut tap = StreamTap::new();
    let first = concat!(
        "event: completion\n",
        r#"data: {"type":"completion","id":"compl_1","completion":" Hello","stop_reason":null,"model":"claude-2.1"}"#,
        "\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n",
    );
    scanner
        .feed(first.as_bytes(), |ev| _ = tap.observe(&ev))
        .unwrap();
    assert!(tap.first_content_seen());
    assert!(!tap.saw_message_stop());
    let last = concat!(
        "event: completion\n",
        r#"data: {"type":"completion","id":"compl_1","completion":"!","stop_reason":"stop_sequence","model":"claude-2.1"}"#,
        "\n\n",
    );
    scanner
        .feed(last.as_bytes(), |ev| _ = tap.observe(&ev))
        .unwrap();
    assert!(tap.saw_message_stop());
    assert_eq!(tap.stop_reason(), Some("stop_sequence"));
    assert_eq!(tap.model(), Some("claude-2.1"));
}

#[test]
fn event_kinds_parse_from_their_names() {
    use EventKind::*;
    let all = [
        MessageStart,
        ContentBlockStart,
        ContentBlockDelta,
        ContentBlockStop,
        MessageDelta,
        MessageStop,
        Ping,
        Error,
        Completion,
    ];
    for kind in all {
        assert_eq!(EventKind::from_name(kind.as_str().as_bytes()), kind);
    }
    assert_eq!(EventKind::from_name(b"message_stop_v2"), Other);
    assert_eq!(EventKind::from_name(b""), Other);
    let content: Vec<EventKind> = all.into_iter().filter(|k| k.is_content()).collect();
    assert_eq!(content, [ContentBlockStart, ContentBlockDelta, Completion]);
}

#[test]
fn unknown_events_are_observed_as_other_and_change_nothing() {
    let mut tap = StreamTap::new();
    let kind = tap.observe(&SseEvent {
        event: b"content_block_future",
        data: br#"{"type":"content_block_future"}"#,
    });
    assert_eq!(kind, EventKind::Other);
    assert!(!tap.first_content_seen());
    assert_eq!(*tap.usage(), Usage::default());
}
