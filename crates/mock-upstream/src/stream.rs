//! Playing an answer out over HTTP: SSE framing, one chunk per event, pacing, and the
//! stream-shaping scenarios (slow first token, cut, stall, in-stream errors). Also the
//! non-streaming counterparts of those shapes.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use tokio::sync::watch;

use crate::error::ApiError;
use crate::keys::KeyState;
use crate::limits::Cost;
use crate::scenario::Scenario;

pub(crate) const EVENT_STREAM: &str = "text/event-stream; charset=utf-8";

/// The server's stop signal as seen by responses in flight.
#[derive(Clone)]
pub(crate) struct Stop(watch::Receiver<bool>);

impl Stop {
    pub(crate) fn new(receiver: watch::Receiver<bool>) -> Stop {
        Stop(receiver)
    }

    /// Resolves once the server is stopping.
    pub(crate) async fn wait(&mut self) {
        // A dropped sender means the server is gone: stopping too.
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }

    /// Sleeps `delay`, or less if the server starts stopping meanwhile.
    pub(crate) async fn pause(&mut self, delay: Duration) {
        if delay.is_zero() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = self.wait() => {}
        }
    }
}

/// One SSE event on the wire: `event: NAME\ndata: JSON\n\n`.
pub(crate) fn frame(name: &str, data: &str) -> Bytes {
    let mut out = String::with_capacity(name.len() + data.len() + 16);
    out.push_str("event: ");
    out.push_str(name);
    out.push_str("\ndata: ");
    out.push_str(data);
    out.push_str("\n\n");
    Bytes::from(out)
}

/// The keep-alive event, spelled as the real API spells it.
pub(crate) fn ping() -> Bytes {
    frame("ping", r#"{"type": "ping"}"#)
}

/// A generated answer, ready to be played either way.
pub(crate) trait Rendition {
    /// The model answering: which subscription windows apply.
    fn model(&self) -> &str;
    /// What it takes from the key's rate limits.
    fn cost(&self) -> Cost;
    /// The non-streaming body.
    fn to_json(&self) -> Bytes;
    /// The event stream.
    fn events(&self) -> Events;
}

/// A complete event sequence for one answer.
pub(crate) struct Events {
    /// Every event of the normal stream, in order.
    pub(crate) frames: Vec<Bytes>,
    /// Index in `frames` of the first content delta (where a slow first token waits).
    pub(crate) first_content: usize,
    /// What precedes any content when the stream fails before it (message_start, ping).
    pub(crate) preamble: Vec<Bytes>,
}

/// How a generated answer is played out, from the scenario drawn for the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    Whole,
    SlowFirstToken(Duration),
    Cut(usize),
    Stall(usize),
    ErrorBeforeContent,
    MidStreamError(usize),
}

impl Shape {
    /// Status-type scenarios never reach playback; they count as `Whole` here.
    pub(crate) fn of(scenario: Option<&Scenario>) -> Shape {
        match scenario {
            Some(Scenario::SlowFirstToken { delay }) => Shape::SlowFirstToken(*delay),
            Some(Scenario::CutMidStream { after_events }) => Shape::Cut(*after_events),
            Some(Scenario::Stall { after_events }) => Shape::Stall(*after_events),
            Some(Scenario::ErrorBeforeContent) => Shape::ErrorBeforeContent,
            Some(Scenario::MidStreamError { after_events }) => Shape::MidStreamError(*after_events),
            _ => Shape::Whole,
        }
    }
}

/// What happens after the last frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// The body ends normally.
    Close,
    /// The connection is dropped: no chunked terminator, no error event.
    Cut,
    /// Silence until the client leaves or the server stops.
    Stall,
}

/// Frames to send and how to send them.
struct Playback {
    frames: std::vec::IntoIter<Bytes>,
    sent: usize,
    interval: Duration,
    /// Before the frame with this index, wait this long.
    delay: Option<(usize, Duration)>,
    end: End,
    stop: Stop,
    /// Counts the stream as abandoned if it is dropped before playing out.
    watch: Option<Arc<KeyState>>,
}

impl Drop for Playback {
    fn drop(&mut self) {
        if let Some(key) = self.watch.take() {
            key.tally.count_abandoned();
        }
    }
}

impl Playback {
    fn into_body(self) -> Body {
        Body::from_stream(futures_util::stream::unfold(self, Playback::next))
    }

    async fn next(mut self) -> Option<(io::Result<Bytes>, Playback)> {
        if let Some(frame) = self.frames.next() {
            if self.sent > 0 {
                self.stop.pause(self.interval).await;
            }
            if let Some((at, delay)) = self.delay
                && at == self.sent
            {
                self.stop.pause(delay).await;
            }
            self.sent += 1;
            return Some((Ok(frame), self));
        }
        // Played out as scripted: whatever happens next is not the client leaving.
        self.watch = None;
        match std::mem::replace(&mut self.end, End::Close) {
            End::Close => None,
            End::Cut => {
                // Let the server flush what was sent before the connection goes.
                tokio::task::yield_now().await;
                Some((Err(io::Error::other("mock: connection cut")), self))
            }
            End::Stall => {
                self.stop.wait().await;
                Some((Err(io::Error::other("mock: stalled stream stopped")), self))
            }
        }
    }
}

/// A 200 event stream playing `events` in `shape`, `interval` apart.
pub(crate) fn sse(
    events: Events,
    shape: Shape,
    interval: Duration,
    stop: Stop,
    key: &Arc<KeyState>,
) -> Response {
    let overloaded = || frame("error", &ApiError::overloaded().to_event_json());
    let first_n = |n: usize| events.frames.iter().take(n).cloned().collect::<Vec<_>>();
    let (frames, delay, end) = match shape {
        Shape::Whole => (events.frames, None, End::Close),
        Shape::SlowFirstToken(delay) => {
            let at = events.first_content;
            (events.frames, Some((at, delay)), End::Close)
        }
        Shape::Cut(n) => (first_n(n), None, End::Cut),
        Shape::Stall(n) => (first_n(n), None, End::Stall),
        Shape::ErrorBeforeContent => {
            let mut frames = events.preamble;
            frames.push(overloaded());
            (frames, None, End::Close)
        }
        Shape::MidStreamError(n) => {
            let mut frames = first_n(n);
            frames.push(overloaded());
            (frames, None, End::Close)
        }
    };
    let playback = Playback {
        frames: frames.into_iter(),
        sent: 0,
        interval,
        delay,
        end,
        stop,
        watch: Some(Arc::clone(key)),
    };
    respond(StatusCode::OK, EVENT_STREAM, playback.into_body())
}

/// A complete JSON answer in `shape`: delayed whole, cut or stalled halfway, or replaced
/// by the 529 a failed stream would have been.
pub(crate) async fn json(body: Bytes, shape: Shape, mut stop: Stop, request_id: &str) -> Response {
    let partial = |end: End, stop: Stop| {
        let half = body.slice(..body.len() / 2);
        let playback = Playback {
            frames: vec![half].into_iter(),
            sent: 0,
            interval: Duration::ZERO,
            delay: None,
            end,
            stop,
            watch: None,
        };
        respond(StatusCode::OK, "application/json", playback.into_body())
    };
    match shape {
        Shape::Whole => respond(StatusCode::OK, "application/json", Body::from(body)),
        Shape::SlowFirstToken(delay) => {
            stop.pause(delay).await;
            respond(StatusCode::OK, "application/json", Body::from(body))
        }
        Shape::Cut(_) => partial(End::Cut, stop),
        Shape::Stall(_) => partial(End::Stall, stop),
        Shape::ErrorBeforeContent | Shape::MidStreamError(_) => {
            ApiError::overloaded().into_response(request_id)
        }
    }
}

/// A recorded response replayed byte for byte; event streams go out one event per chunk.
pub(crate) fn replay(
    status: u16,
    content_type: &str,
    body: &Bytes,
    interval: Duration,
    stop: Stop,
) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = if content_type.starts_with("text/event-stream") {
        let playback = Playback {
            frames: split_events(body).into_iter(),
            sent: 0,
            interval,
            delay: None,
            end: End::Close,
            stop,
            watch: None,
        };
        playback.into_body()
    } else {
        Body::from(body.clone())
    };
    respond(status, content_type, body)
}

/// Splits after each blank line (`\n\n`); the pieces concatenate to the input exactly.
fn split_events(body: &Bytes) -> Vec<Bytes> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let bytes = body.as_ref();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'\n' && bytes[i + 1] == b'\n' {
            pieces.push(body.slice(start..i + 2));
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    if start < bytes.len() {
        pieces.push(body.slice(start..));
    }
    pieces
}

fn respond(status: StatusCode, content_type: &str, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if content_type.starts_with("text/event-stream") {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_events_keeps_every_byte() {
        let body = Bytes::from_static(b": c\n\nevent: a\ndata: 1\n\nevent: b\ndata: 2\n\ntrailing");
        let pieces = split_events(&body);
        assert_eq!(pieces.len(), 4);
        assert_eq!(pieces.concat(), body.to_vec());
        assert_eq!(&pieces[1][..], b"event: a\ndata: 1\n\n");
    }
}
