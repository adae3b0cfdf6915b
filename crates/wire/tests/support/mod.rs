//! Fixture loading and scanning helpers shared by the wire tests.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use keyloop_wire::sse::SseScanner;

/// The Anthropic stream fixtures, each with the event count stated by its content.
pub const ANTHROPIC_STREAMS: [&str; 4] = [
    "anthropic-stream-text.sse",
    "anthropic-stream-tool-use.sse",
    "anthropic-stream-thinking.sse",
    "anthropic-stream-error-midstream.sse",
];

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("reading {path}: {err}"))
}

/// The body of an `.http` fixture: leading `#` commentary, the start line and the headers
/// removed (see tests/fixtures/README.md).
pub fn http_body(name: &str) -> Vec<u8> {
    let raw = fixture(name);
    let text = std::str::from_utf8(&raw).expect("fixtures are UTF-8");
    let message_start = text
        .split_inclusive('\n')
        .take_while(|line| line.starts_with('#'))
        .map(str::len)
        .sum::<usize>();
    let message = &text[message_start..];
    let body_start = message.find("\n\n").expect("a blank line ends the headers") + 2;
    message.as_bytes()[body_start..].to_vec()
}

/// One scanned event, owned so results of different feeds can be compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub data: String,
}

/// Everything a feed reported: the events, and after each chunk the cumulative boundary it
/// returned (`None` when it returned 0).
#[derive(Debug, Default)]
pub struct Scan {
    pub events: Vec<Event>,
    pub boundaries: Vec<Option<usize>>,
    pub at_boundary: Vec<bool>,
}

pub fn scan_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Scan {
    let mut scanner = SseScanner::new();
    let mut scan = Scan::default();
    let mut start = 0;
    for chunk in chunks {
        let offset = scanner
            .feed(chunk, |ev| {
                scan.events.push(Event {
                    name: String::from_utf8(ev.event.to_vec()).unwrap(),
                    data: String::from_utf8(ev.data.to_vec()).unwrap(),
                });
            })
            .expect("fixture lines are short");
        assert!(offset <= chunk.len(), "offset {offset} past chunk end");
        scan.boundaries.push((offset > 0).then_some(start + offset));
        scan.at_boundary.push(scanner.at_boundary());
        start += chunk.len();
    }
    scan
}

pub fn scan_whole(body: &[u8]) -> Scan {
    scan_chunks([body])
}

/// Splits `body` at the given (sorted, in-range) positions.
pub fn split_at<'a>(body: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for &cut in cuts {
        chunks.push(&body[start..cut]);
        start = cut;
    }
    chunks.push(&body[start..]);
    chunks
}

/// A line-ending style and how to rewrite a `\n` fixture into it.
#[derive(Clone, Copy, Debug)]
pub enum Ending {
    Lf,
    CrLf,
    Cr,
}

impl Ending {
    pub const ALL: [Ending; 3] = [Ending::Lf, Ending::CrLf, Ending::Cr];

    pub fn apply(self, lf_text: &[u8]) -> Vec<u8> {
        let ending: &[u8] = match self {
            Ending::Lf => b"\n",
            Ending::CrLf => b"\r\n",
            Ending::Cr => b"\r",
        };
        let mut out = Vec::with_capacity(lf_text.len() * 2);
        for &byte in lf_text {
            if byte == b'\n' {
                out.extend_from_slice(ending);
            } else {
                out.push(byte);
            }
        }
        out
    }

    /// Every position at which a blank line has ended, computed from the text alone. For
    /// `\r\n` the event is complete after the `\r`, and the `\n` extends the boundary.
    pub fn blank_line_ends(self, text: &[u8]) -> Vec<usize> {
        let pair: &[u8] = match self {
            Ending::Lf => b"\n\n",
            Ending::CrLf => b"\r\n\r\n",
            Ending::Cr => b"\r\r",
        };
        let mut ends = Vec::new();
        let mut from = 0;
        while let Some(found) = find(&text[from..], pair) {
            let end = from + found + pair.len();
            if let Ending::CrLf = self {
                ends.push(end - 1);
            }
            ends.push(end);
            from = end;
        }
        ends
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
