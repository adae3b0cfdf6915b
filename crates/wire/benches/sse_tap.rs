//! Microbenchmarks of the streaming path and the request peek: `SseScanner::feed` over a
//! response body cut into network-sized chunks, `StreamTap::observe` on every event, and
//! `peek_request` on a small and a large Messages body. Inputs come from the fixtures in
//! `tests/fixtures`. Run with `cargo bench -p keyloop-wire --bench sse_tap`; see
//! `bench/README.md`.

use std::fmt;
use std::sync::LazyLock;

use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};
use keyloop_wire::anthropic::{EventKind, StreamTap, peek_request};
use keyloop_wire::sse::SseScanner;
use serde_json::{Value, json};

fn main() {
    divan::main();
}

const TEXT_STREAM: &[u8] = include_bytes!("../tests/fixtures/anthropic-stream-text.sse");
const TOOL_USE_STREAM: &[u8] = include_bytes!("../tests/fixtures/anthropic-stream-tool-use.sse");
const THINKING_STREAM: &[u8] = include_bytes!("../tests/fixtures/anthropic-stream-thinking.sse");
const REQUEST: &str = include_str!("../tests/fixtures/anthropic-request-tools.http");

/// Text deltas in the long stream: a reply of roughly 1,000 output tokens.
const LONG_DELTAS: usize = 300;
/// The large request body is grown to at least this many bytes.
const LARGE_BODY: usize = 100 * 1024;

// === inputs ===

/// One response body as the upstream sends it: the fixture without its `:` commentary lines.
struct Stream {
    name: &'static str,
    body: Vec<u8>,
    /// Byte offset just past each event's blank line, in order.
    ends: Vec<usize>,
}

impl Stream {
    fn new(name: &'static str, body: Vec<u8>) -> Stream {
        let mut ends = Vec::new();
        let mut at = 0;
        while let Some(found) = body[at..].windows(2).position(|w| w == b"\n\n") {
            at += found + 2;
            ends.push(at);
        }
        Stream { name, body, ends }
    }

    fn events(&self) -> usize {
        self.ends.len()
    }
}

fn strip_commentary(fixture: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(fixture).expect("fixtures are UTF-8");
    text.split_inclusive('\n')
        .skip_while(|line| line.starts_with(':') || line.trim().is_empty())
        .collect::<String>()
        .into_bytes()
}

/// The text fixture with its three deltas repeated to `LONG_DELTAS`: the event mix of a
/// long answer, where nearly every event is a `content_block_delta`.
fn long_text_stream() -> Vec<u8> {
    let body = strip_commentary(TEXT_STREAM);
    let text = String::from_utf8(body).expect("UTF-8");
    let blocks: Vec<&str> = text.split_inclusive("\n\n").collect();
    let (deltas, rest): (Vec<&str>, Vec<&str>) = blocks
        .iter()
        .partition(|b| b.starts_with("event: content_block_delta"));
    let head: Vec<&str> = rest
        .iter()
        .copied()
        .take_while(|b| !b.starts_with("event: content_block_stop"))
        .collect();
    let tail: Vec<&str> = rest.iter().copied().skip(head.len()).collect();
    let mut out = String::new();
    out.extend(head);
    out.extend(deltas.iter().cycle().take(LONG_DELTAS).copied());
    out.extend(tail);
    out.into_bytes()
}

static STREAMS: LazyLock<Vec<Stream>> = LazyLock::new(|| {
    vec![
        Stream::new("text", strip_commentary(TEXT_STREAM)),
        Stream::new("tool_use", strip_commentary(TOOL_USE_STREAM)),
        Stream::new("thinking", strip_commentary(THINKING_STREAM)),
        Stream::new("long_text", long_text_stream()),
    ]
});

/// How the body arrives from the connection.
#[derive(Clone, Copy, Debug)]
enum Split {
    /// Each event in its own chunk (one HTTP/2 DATA frame per flushed event).
    PerEvent,
    /// Events coalesced 1, 3, 2, 4, 1, 3, … to a chunk, as a busy connection delivers them.
    Coalesced,
    /// As `Coalesced`, but every chunk ends in the middle of the next event's `data:` line, so
    /// each feed carries a partial line over to the next.
    MidLine,
}

impl Split {
    const ALL: [Split; 3] = [Split::PerEvent, Split::Coalesced, Split::MidLine];

    fn label(self) -> &'static str {
        match self {
            Split::PerEvent => "1 event/chunk",
            Split::Coalesced => "1-4 events/chunk",
            Split::MidLine => "1-4 events/chunk, cut mid-line",
        }
    }

    fn chunks(self, stream: &Stream) -> Vec<Vec<u8>> {
        const GROUPS: [usize; 4] = [1, 3, 2, 4];
        let body = &stream.body;
        let mut cuts = Vec::new();
        match self {
            Split::PerEvent => cuts.extend_from_slice(&stream.ends),
            Split::Coalesced | Split::MidLine => {
                let mut event = 0;
                for group in GROUPS.iter().cycle() {
                    event += group;
                    if event >= stream.events() {
                        break;
                    }
                    let end = stream.ends[event - 1];
                    let cut = match self {
                        Split::MidLine => mid_data_line(body, end),
                        _ => end,
                    };
                    cuts.push(cut);
                }
            }
        }
        cuts.retain(|&cut| cut < body.len());
        let mut chunks = Vec::with_capacity(cuts.len() + 1);
        let mut start = 0;
        for cut in cuts {
            chunks.push(body[start..cut].to_vec());
            start = cut;
        }
        chunks.push(body[start..].to_vec());
        chunks
    }
}

/// The middle of the first `data:` line at or after `from`.
fn mid_data_line(body: &[u8], from: usize) -> usize {
    let rest = &body[from..];
    let data = rest
        .windows(5)
        .position(|w| w == b"data:")
        .expect("every event has a data line");
    let len = rest[data..]
        .iter()
        .position(|&b| b == b'\n')
        .expect("lines end in \\n");
    from + data + len / 2
}

/// One stream cut one way.
struct Case {
    stream: &'static str,
    split: Split,
    events: usize,
    chunks: Vec<Vec<u8>>,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} events), {}",
            self.stream,
            self.events,
            self.split.label()
        )
    }
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for stream in STREAMS.iter().filter(|s| s.name != "text") {
        for split in Split::ALL {
            cases.push(Case {
                stream: stream.name,
                split,
                events: stream.events(),
                chunks: split.chunks(stream),
            });
        }
    }
    cases
}

// === SSE scanning and the stream tap ===

/// `SseScanner::feed` alone, a new scanner per response as in the relay.
#[divan::bench(args = cases())]
fn scan(bencher: Bencher, case: &Case) {
    bencher.counter(ItemsCount::new(case.events)).bench(|| {
        let mut scanner = SseScanner::new();
        let mut seen = 0usize;
        for chunk in &case.chunks {
            scanner
                .feed(black_box(chunk), |ev| {
                    seen += black_box(ev).data.len();
                })
                .expect("fixture lines are short");
        }
        seen
    });
}

/// What the relay does per chunk: feed the scanner and hand every event to a `StreamTap`,
/// counting content deltas (`relay::stream::Relaying::push_chunk`).
#[divan::bench(args = cases())]
fn scan_and_tap(bencher: Bencher, case: &Case) {
    bencher.counter(ItemsCount::new(case.events)).bench(|| {
        let mut scanner = SseScanner::new();
        let mut tap = StreamTap::new();
        let mut deltas = 0u32;
        for chunk in &case.chunks {
            scanner
                .feed(black_box(chunk), |ev| {
                    if tap.observe(&ev) == EventKind::ContentBlockDelta {
                        deltas += 1;
                    }
                })
                .expect("fixture lines are short");
        }
        (tap, deltas)
    });
}

/// One event as the scanner hands it over, owned.
struct OwnedEvent {
    event: Vec<u8>,
    data: Vec<u8>,
}

fn events_of(body: &[u8]) -> Vec<OwnedEvent> {
    let mut events = Vec::new();
    SseScanner::new()
        .feed(body, |ev| {
            events.push(OwnedEvent {
                event: ev.event.to_vec(),
                data: ev.data.to_vec(),
            });
        })
        .expect("fixture lines are short");
    events
}

fn stream_names() -> impl Iterator<Item = &'static str> {
    STREAMS.iter().map(|s| s.name)
}

fn stream(name: &str) -> &'static Stream {
    STREAMS
        .iter()
        .find(|s| s.name == name)
        .expect("a known stream")
}

/// `StreamTap::observe` alone over every event of a response, already scanned.
#[divan::bench(args = stream_names())]
fn tap_observe(bencher: Bencher, name: &str) {
    let events = events_of(&stream(name).body);
    bencher.counter(ItemsCount::new(events.len())).bench(|| {
        let mut tap = StreamTap::new();
        for ev in &events {
            black_box(tap.observe(&keyloop_wire::sse::SseEvent {
                event: &ev.event,
                data: &ev.data,
            }));
        }
        tap
    });
}

/// `StreamTap::observe` on one event of each kind that costs something to read, from the
/// thinking fixture (2026 usage shape).
#[divan::bench(args = ["message_start", "content_block_delta", "message_delta", "message_stop"])]
fn tap_observe_one(bencher: Bencher, kind: &str) {
    let events = events_of(&stream("thinking").body);
    let ev = events
        .iter()
        .find(|ev| ev.event == kind.as_bytes())
        .expect("the thinking fixture has one of each");
    bencher
        .counter(BytesCount::new(ev.data.len()))
        .with_inputs(StreamTap::new)
        .bench_local_refs(|tap| {
            tap.observe(&keyloop_wire::sse::SseEvent {
                event: black_box(&ev.event),
                data: black_box(&ev.data),
            })
        });
}

// === request peek ===

/// The body of the `.http` request fixture: commentary, start line and headers removed.
fn fixture_request_body() -> Vec<u8> {
    let message: String = REQUEST
        .split_inclusive('\n')
        .skip_while(|line| line.starts_with('#'))
        .collect();
    let start = message.find("\n\n").expect("a blank line ends the headers") + 2;
    message.as_bytes()[start..].to_vec()
}

/// The fixture request grown into a long agent conversation: tool calls, tool results with
/// multi-line output (escaped newlines and quotes), and assistant text, until the body
/// reaches `LARGE_BODY`. Serialized compactly, as the SDKs send it.
fn large_request_body() -> Vec<u8> {
    let mut request: Value =
        serde_json::from_slice(&fixture_request_body()).expect("the fixture is JSON");
    let cities = [
        "Paris, France",
        "Lyon, France",
        "Berlin, Germany",
        "Oslo, Norway",
    ];
    let mut turn = 0;
    loop {
        let city = cities[turn % cities.len()];
        let messages = request["messages"]
            .as_array_mut()
            .expect("messages is an array");
        messages.push(json!({
            "role": "assistant",
            "content": [
                {"type": "text", "text": format!("I'll check the current weather in {city}.")},
                {"type": "tool_use", "id": format!("toolu_01Example{turn:011}"),
                 "name": "get_weather", "input": {"location": city, "unit": "celsius"}}
            ]
        }));
        let report = (0..12)
            .map(|h| {
                format!(
                    "{h:02}:00  temp=\"{}.{}\u{b0}C\"  rain={}mm  wind={} km/h\tgusts {}",
                    10 + h % 7,
                    h % 10,
                    h % 3,
                    5 + h,
                    12 + 2 * h
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        messages.push(json!({
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": format!("toolu_01Example{turn:011}"),
                 "content": format!("Hourly observations for {city}:\n{report}")},
                {"type": "text", "text": "Thanks. And what about the next city on my list? \
                    Please keep answers short and mention if I need an umbrella."}
            ]
        }));
        turn += 1;
        let body = serde_json::to_vec(&request).expect("serializable");
        if body.len() >= LARGE_BODY {
            return body;
        }
    }
}

struct Body {
    name: &'static str,
    bytes: Vec<u8>,
}

impl fmt::Display for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} B)", self.name, self.bytes.len())
    }
}

fn bodies() -> [Body; 2] {
    [
        Body {
            name: "fixture request",
            bytes: fixture_request_body(),
        },
        Body {
            name: "long conversation",
            bytes: large_request_body(),
        },
    ]
}

/// `peek_request`: UTF-8 check, full JSON validation, and `model` / `stream` / `speed` /
/// `metadata.user_id` read out, once per request at intake.
#[divan::bench(args = bodies())]
fn peek(bencher: Bencher, body: &Body) {
    let peeked = peek_request(&body.bytes).expect("a valid request");
    assert_eq!(peeked.model.as_deref(), Some("claude-sonnet-5-5"));
    assert!(peeked.stream);
    bencher
        .counter(BytesCount::new(body.bytes.len()))
        .bench(|| peek_request(black_box(&body.bytes)).map(|p| p.stream));
}
