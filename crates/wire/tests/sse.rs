//! The SSE scanner against the Anthropic fixtures (every split point, every line-ending style)
//! and against the grammar's corner cases.

mod support;

use keyloop_wire::sse::{SseError, SseScanner};
use proptest::prelude::*;
use support::{ANTHROPIC_STREAMS, Ending, Event, fixture, scan_chunks, scan_whole, split_at};

fn event(name: &str, data: &str) -> Event {
    Event {
        name: name.to_owned(),
        data: data.to_owned(),
    }
}

/// The boundary a scanner must report for a chunk spanning `start..end`: the last blank-line
/// end inside it, as an absolute position.
fn expected_boundary(ends: &[usize], start: usize, end: usize) -> Option<usize> {
    ends.iter()
        .copied()
        .filter(|&p| p > start && p <= end)
        .max()
}

/// Checks one feed of `text` split at `cuts` against the whole-body events and the
/// independently computed blank-line ends.
fn check_split(text: &[u8], ending: Ending, whole: &[Event], cuts: &[usize]) {
    let ends = ending.blank_line_ends(text);
    let chunks = split_at(text, cuts);
    let scan = scan_chunks(chunks.iter().copied());
    assert_eq!(scan.events, whole, "{ending:?} split at {cuts:?}");
    let mut start = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        let end = start + chunk.len();
        assert_eq!(
            scan.boundaries[i],
            expected_boundary(&ends, start, end),
            "{ending:?} chunk {i} ({start}..{end}) of split {cuts:?}"
        );
        assert_eq!(
            scan.at_boundary[i],
            end == 0 || ends.contains(&end),
            "{ending:?} at_boundary after {end} of split {cuts:?}"
        );
        start = end;
    }
}

#[test]
fn text_fixture_yields_its_events_in_order() {
    let scan = scan_whole(&fixture("anthropic-stream-text.sse"));
    let names: Vec<&str> = scan.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(scan.events[2].data, r#"{"type": "ping"}"#);
}

/// Anthropic repeats the event name as the data's `type`, which checks names and data
/// belong together; the header comments must not become events.
#[test]
fn every_fixture_event_is_whole_json_naming_itself() {
    for name in ANTHROPIC_STREAMS {
        let body = fixture(name);
        let scan = scan_whole(&body);
        let event_lines = body
            .split(|&b| b == b'\n')
            .filter(|l| l.starts_with(b"event:"));
        assert_eq!(scan.events.len(), event_lines.count(), "{name}");
        for ev in &scan.events {
            let data: serde_json::Value = serde_json::from_str(&ev.data)
                .unwrap_or_else(|err| panic!("{name}: {err} in {:?}", ev.data));
            assert_eq!(data["type"], ev.name.as_str(), "{name}");
        }
    }
}

#[test]
fn whole_feed_reports_the_last_blank_line() {
    for name in ANTHROPIC_STREAMS {
        let body = fixture(name);
        let scan = scan_whole(&body);
        assert_eq!(scan.boundaries, [Some(body.len())], "{name}");
        assert_eq!(scan.at_boundary, [true], "{name}");
    }
}

#[test]
fn every_split_point_in_every_line_ending_matches_the_whole_feed() {
    for name in ANTHROPIC_STREAMS {
        let lf_whole = scan_whole(&fixture(name)).events;
        for ending in Ending::ALL {
            let text = ending.apply(&fixture(name));
            let whole = scan_whole(&text).events;
            assert_eq!(whole, lf_whole, "{name} {ending:?} changes the events");
            for cut in 0..=text.len() {
                check_split(&text, ending, &whole, &[cut]);
            }
        }
    }
}

#[test]
fn byte_at_a_time_reports_every_blank_line() {
    for name in ANTHROPIC_STREAMS {
        for ending in Ending::ALL {
            let text = ending.apply(&fixture(name));
            let scan = scan_chunks(text.chunks(1));
            let reported: Vec<usize> = scan.boundaries.iter().flatten().copied().collect();
            assert_eq!(reported, ending.blank_line_ends(&text), "{name} {ending:?}");
            assert_eq!(scan.events, scan_whole(&text).events, "{name} {ending:?}");
        }
    }
}

proptest! {
    #[test]
    fn random_splits_match_the_whole_feed(
        fixture_index in 0..ANTHROPIC_STREAMS.len(),
        ending_index in 0..Ending::ALL.len(),
        raw_cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
    ) {
        let ending = Ending::ALL[ending_index];
        let text = ending.apply(&fixture(ANTHROPIC_STREAMS[fixture_index]));
        let mut cuts: Vec<usize> = raw_cuts.iter().map(|i| i.index(text.len() + 1)).collect();
        cuts.sort_unstable();
        let whole = scan_whole(&text).events;
        check_split(&text, ending, &whole, &cuts);
    }
}

/// The end of every event `feed_with_ends` reports for `text` split at `cuts`, as absolute
/// positions.
fn event_ends(text: &[u8], cuts: &[usize]) -> Vec<usize> {
    let mut scanner = SseScanner::new();
    let mut ends = Vec::new();
    let mut start = 0;
    for chunk in split_at(text, cuts) {
        scanner
            .feed_with_ends(chunk, |_, end| {
                assert!(end <= chunk.len(), "end {end} past the chunk");
                ends.push(start + end);
            })
            .expect("fixture lines are short");
        start += chunk.len();
    }
    ends
}

#[test]
fn event_ends_cut_every_fixture_into_whole_events_at_every_split() {
    for name in ANTHROPIC_STREAMS {
        for ending in Ending::ALL {
            let text = ending.apply(&fixture(name));
            let whole = scan_whole(&text).events;
            let blank_line_ends = ending.blank_line_ends(&text);
            for cut in 0..=text.len() {
                let ends = event_ends(&text, &[cut]);
                assert_eq!(ends.len(), whole.len(), "{name} {ending:?} cut at {cut}");
                for (i, end) in ends.iter().enumerate() {
                    assert!(
                        blank_line_ends.contains(end),
                        "{name} {ending:?} cut at {cut}: event {i} ends at {end}, not a blank line"
                    );
                    // Everything up to the end is exactly the events so far, nothing of the next.
                    assert_eq!(
                        scan_whole(&text[..*end]).events,
                        whole[..=i],
                        "{name} {ending:?} cut at {cut}: event {i}"
                    );
                }
            }
        }
    }
}

#[test]
fn event_ends_skip_comment_blocks_and_follow_a_split_crlf() {
    let text = b": keep-alive\n\nevent: a\ndata: 1\n\nevent: b\r\ndata: 2\r\n\r\n";
    let first = text.len() - "event: b\r\ndata: 2\r\n\r\n".len();
    assert_eq!(event_ends(text, &[]), [first, text.len()]);
    // Cut between the blank line's `\r` and its `\n`: the event is whole after the `\r`.
    assert_eq!(event_ends(text, &[text.len() - 1]), [first, text.len() - 1]);
}

#[test]
fn cr_then_lf_across_chunks_is_one_line_ending() {
    let scan = scan_chunks([&b"data: a\r"[..], b"\ndata: b\r", b"\n\r", b"\n"]);
    assert_eq!(scan.events, [event("", "a\nb")]);
    // The event is complete at the blank line's `\r`; its `\n` then extends the boundary.
    assert_eq!(scan.boundaries, [None, None, Some(19), Some(20)]);
}

#[test]
fn lone_cr_followed_by_text_in_the_next_chunk_ends_the_line() {
    let scan = scan_chunks([&b"data: a\r"[..], b"data: b\r", b"\r"]);
    assert_eq!(scan.events, [event("", "a\nb")]);
}

#[test]
fn comments_are_ignored_but_comment_blocks_are_boundaries() {
    let text = b": keep-alive\n\n: another\nevent: ping\n: inside\ndata: {}\n\n";
    let scan = scan_whole(text);
    assert_eq!(scan.events, [event("ping", "{}")]);
    assert_eq!(scan.boundaries, [Some(text.len())]);

    let scan = scan_whole(b": only a comment\n\n");
    assert!(scan.events.is_empty());
    assert_eq!(scan.boundaries, [Some(18)]);
}

#[test]
fn multi_line_data_joins_with_newlines() {
    let scan = scan_whole(b"event: e\ndata: one\ndata:two\ndata\ndata:  four\n\n");
    assert_eq!(scan.events, [event("e", "one\ntwo\n\n four")]);
}

#[test]
fn dispatches_for_data_or_an_event_name_only() {
    let scan = scan_whole(b"data\n\nevent: bare\n\nid: 7\nretry: 10\n\nunknown: x\n\n");
    assert_eq!(scan.events, [event("", ""), event("bare", "")]);
}

#[test]
fn last_event_name_in_a_block_wins_and_does_not_leak() {
    let scan = scan_whole(b"event: a\nevent: b\ndata: 1\n\ndata: 2\n\n");
    assert_eq!(scan.events, [event("b", "1"), event("", "2")]);
}

#[test]
fn only_one_leading_space_is_stripped() {
    let scan = scan_whole(b"data:   x \n\n");
    assert_eq!(scan.events, [event("", "  x ")]);
}

#[test]
fn unterminated_event_is_pending_not_dispatched() {
    let mut scanner = SseScanner::new();
    let mut seen = 0;
    let offset = scanner.feed(b"event: x\ndata: 1\n", |_| seen += 1).unwrap();
    assert_eq!((offset, seen), (0, 0));
    assert!(!scanner.at_boundary());
    let offset = scanner.feed(b"\nevent: y", |_| seen += 1).unwrap();
    assert_eq!((offset, seen), (1, 1));
    assert!(!scanner.at_boundary(), "a partial line is pending");
}

#[test]
fn empty_chunks_change_nothing() {
    let scan = scan_chunks([&b"data: a\r"[..], b"", b"\n", b"", b"\n"]);
    assert_eq!(scan.events, [event("", "a")]);
    assert_eq!(scan.boundaries, [None, None, None, None, Some(10)]);
}

#[test]
fn a_line_at_the_limit_is_accepted() {
    let mut scanner = SseScanner::with_max_line(16);
    let line = b"data: 0123456789";
    assert_eq!(line.len(), 16);
    let mut data = Vec::new();
    scanner.feed(&line[..7], |_| {}).unwrap();
    let offset = scanner
        .feed(&[&line[7..], &b"\n\n"[..]].concat(), |ev| {
            data = ev.data.to_vec()
        })
        .unwrap();
    assert_eq!(offset, 11);
    assert_eq!(data, b"0123456789");
}

#[test]
fn an_overlong_line_fails_before_its_end_arrives() {
    let mut scanner = SseScanner::with_max_line(16);
    scanner.feed(b"data: 0123456789", |_| {}).unwrap();
    let err = scanner.feed(b"A", |_| {}).unwrap_err();
    assert_eq!(err, SseError::LineTooLong { limit: 16 });
    assert_eq!(
        err.to_string(),
        "SSE line or event data longer than 16 bytes"
    );
}

#[test]
fn an_overlong_line_inside_one_chunk_fails() {
    let mut scanner = SseScanner::with_max_line(8);
    let result = scanner.feed(b"data: 0123456789\n\n", |_| panic!("must not dispatch"));
    assert_eq!(result, Err(SseError::LineTooLong { limit: 8 }));
}

#[test]
fn event_data_is_bounded_like_a_line() {
    let mut scanner = SseScanner::with_max_line(10);
    let result = scanner.feed(b"data: 12345\ndata: 12345\n\n", |_| {
        panic!("must not dispatch")
    });
    assert_eq!(result, Err(SseError::LineTooLong { limit: 10 }));
}
