//! The framing of a stream's chunks for the client, before and after its first content event,
//! at every split point the network could choose.

use super::*;

const FIXTURES: [(&str, &[u8]); 4] = [
    (
        "text",
        include_bytes!("../../../../wire/tests/fixtures/anthropic-stream-text.sse"),
    ),
    (
        "tool-use",
        include_bytes!("../../../../wire/tests/fixtures/anthropic-stream-tool-use.sse"),
    ),
    (
        "thinking",
        include_bytes!("../../../../wire/tests/fixtures/anthropic-stream-thinking.sse"),
    ),
    (
        "error-midstream",
        include_bytes!("../../../../wire/tests/fixtures/anthropic-stream-error-midstream.sse"),
    ),
];

/// message_start and ping, then an overloaded error before any content.
const ERROR_BEFORE_CONTENT: &[u8] = b"event: message_start\n\
data: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n\
event: ping\n\
data: {\"type\": \"ping\"}\n\n\
event: error\n\
data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";

/// The chunks through a fresh stream as the relay takes them: before content, then after.
/// Returns what was queued for the client (with what an ended stream flushes), how each chunk
/// before content went, and the watch.
fn relay(chunks: &[&[u8]], spliced: bool) -> (Vec<u8>, Vec<Before>, Watch) {
    let mut watch = Watch::default();
    let mut out = Out::default();
    let mut seen = Vec::new();
    for chunk in chunks {
        let chunk = Bytes::copy_from_slice(chunk);
        if watch.tap.first_content_seen() {
            watch.after_content(chunk, &mut out).unwrap();
            continue;
        }
        let before = watch.before_content(chunk, spliced, &mut out);
        let lost = before != Before::Waiting && before != Before::Content;
        seen.push(before);
        if lost {
            break;
        }
    }
    out.flush();
    assert!(
        out.ready.iter().all(|frame| !frame.is_empty()),
        "no empty frame"
    );
    (
        out.ready
            .iter()
            .flat_map(|frame| frame.iter().copied())
            .collect(),
        seen,
        watch,
    )
}

fn split(text: &[u8], cut: usize) -> [&[u8]; 2] {
    [&text[..cut], &text[cut..]]
}

fn with_endings(lf_text: &[u8]) -> [(&'static str, Vec<u8>); 3] {
    let replace = |ending: &[u8]| {
        let mut out = Vec::with_capacity(lf_text.len() * 2);
        for &byte in lf_text {
            if byte == b'\n' {
                out.extend_from_slice(ending);
            } else {
                out.push(byte);
            }
        }
        out
    };
    [
        ("lf", lf_text.to_vec()),
        ("crlf", replace(b"\r\n")),
        ("cr", replace(b"\r")),
    ]
}

/// `(name, data)` of every event in `text`, as a client would read them.
fn events(text: &[u8]) -> Vec<(String, String)> {
    let mut scanner = SseScanner::new();
    let mut events = Vec::new();
    scanner
        .feed(text, |event| {
            events.push((
                String::from_utf8_lossy(event.event).into_owned(),
                String::from_utf8_lossy(event.data).into_owned(),
            ));
        })
        .unwrap();
    events
}

fn first_content_at(text: &[u8]) -> usize {
    let needle = b"event: content_block_start";
    text.windows(needle.len())
        .position(|w| w == needle)
        .expect("a content block")
}

#[test]
fn a_first_stream_reaches_the_client_byte_for_byte_at_every_split() {
    for (name, lf_text) in FIXTURES {
        for (ending, text) in with_endings(lf_text) {
            for cut in 0..=text.len() {
                let (sent, seen, _) = relay(&split(&text, cut), false);
                assert_eq!(sent, text, "{name} {ending} cut at {cut}");
                assert!(
                    seen.last() == Some(&Before::Content),
                    "{name} {ending} cut at {cut}: {seen:?}"
                );
            }
            let bytes: Vec<&[u8]> = text.chunks(1).collect();
            assert_eq!(relay(&bytes, false).0, text, "{name} {ending} byte by byte");
        }
    }
}

#[test]
fn a_spliced_stream_starts_at_its_first_content_event_at_every_split() {
    for (name, lf_text) in FIXTURES {
        let from_content = &lf_text[first_content_at(lf_text)..];
        for cut in 0..=lf_text.len() {
            let (sent, _, watch) = relay(&split(lf_text, cut), true);
            assert_eq!(sent, from_content, "{name} cut at {cut}");
            assert!(
                watch.tap.model().is_some(),
                "{name}: the dropped message_start was still read"
            );
        }
        let bytes: Vec<&[u8]> = lf_text.chunks(1).collect();
        assert_eq!(relay(&bytes, true).0, from_content, "{name} byte by byte");
        // Other line endings may leave a stray line ending of a dropped event in front;
        // what a client reads is the same.
        let expected = events(from_content);
        for (ending, text) in with_endings(lf_text) {
            for cut in 0..=text.len() {
                let (sent, _, _) = relay(&split(&text, cut), true);
                assert_eq!(events(&sent), expected, "{name} {ending} cut at {cut}");
            }
        }
    }
}

#[test]
fn an_error_before_content_is_withheld_at_every_split() {
    let needle = b"event: error";
    let error_at = ERROR_BEFORE_CONTENT
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    let preamble = &ERROR_BEFORE_CONTENT[..error_at];
    for (ending, text) in with_endings(ERROR_BEFORE_CONTENT) {
        let expected = events(preamble);
        for cut in 0..=text.len() {
            for spliced in [false, true] {
                let (sent, seen, watch) = relay(&split(&text, cut), spliced);
                assert_eq!(seen.last(), Some(&Before::Error), "{ending} cut at {cut}");
                let names = events(&sent);
                assert!(
                    names.iter().all(|(name, _)| name != "error"),
                    "{ending} cut at {cut}: the error reached the client"
                );
                if spliced {
                    assert!(names.is_empty(), "{ending} cut at {cut}: {names:?}");
                } else {
                    assert_eq!(names, expected, "{ending} cut at {cut}");
                }
                assert_eq!(watch.tap.usage().input_tokens, 9);
            }
        }
    }
    // With `\n` endings the first stream's preamble goes out exactly as it came.
    for cut in 0..=ERROR_BEFORE_CONTENT.len() {
        let (sent, _, _) = relay(&split(ERROR_BEFORE_CONTENT, cut), false);
        assert_eq!(sent, preamble, "cut at {cut}");
    }
}

#[test]
fn after_content_a_whole_chunk_goes_out_as_it_came() {
    let (_, text) = &FIXTURES[0];
    let at = first_content_at(text);
    let mut watch = Watch::default();
    let mut out = Out::default();
    let head = Bytes::copy_from_slice(&text[..at]);
    assert_eq!(watch.before_content(head, false, &mut out), Before::Waiting);
    out.ready.clear();
    let tail = Bytes::copy_from_slice(&text[at..]);
    assert_eq!(
        watch.before_content(tail.clone(), false, &mut out),
        Before::Content
    );
    let frame = out.ready.pop_front().unwrap();
    assert_eq!(frame, tail);
    assert_eq!(
        frame.as_ptr(),
        tail.as_ptr(),
        "a slice of the chunk, not a copy"
    );
    let more = Bytes::from_static(b"event: ping\ndata: {\"type\": \"ping\"}\n\n");
    watch.after_content(more.clone(), &mut out).unwrap();
    assert_eq!(out.ready.pop_front().unwrap().as_ptr(), more.as_ptr());
}
