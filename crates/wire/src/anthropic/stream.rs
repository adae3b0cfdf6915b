//! Watching a Messages (or legacy Complete) event stream for what the gateway must know:
//! whether content started (the commit point), how it ended, and the usage to bill.

use std::borrow::Cow;

use serde::Deserialize;

use super::error::{UpstreamError, parse_error_body};
use super::response::UsageFields;
use crate::sse::SseEvent;
use crate::usage::Usage;

/// Stream event names (protocol doc §7). New names may appear at any time; they are `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    MessageStart,
    ContentBlockStart,
    ContentBlockDelta,
    ContentBlockStop,
    MessageDelta,
    MessageStop,
    Ping,
    Error,
    /// The legacy `/v1/complete` event, which carries text and the stop reason together.
    Completion,
    Other,
}

impl EventKind {
    pub fn from_name(name: &[u8]) -> Self {
        match name {
            b"message_start" => Self::MessageStart,
            b"content_block_start" => Self::ContentBlockStart,
            b"content_block_delta" => Self::ContentBlockDelta,
            b"content_block_stop" => Self::ContentBlockStop,
            b"message_delta" => Self::MessageDelta,
            b"message_stop" => Self::MessageStop,
            b"ping" => Self::Ping,
            b"error" => Self::Error,
            b"completion" => Self::Completion,
            _ => Self::Other,
        }
    }

    /// A low-cardinality label (unknown names collapse to `other`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessageStart => "message_start",
            Self::ContentBlockStart => "content_block_start",
            Self::ContentBlockDelta => "content_block_delta",
            Self::ContentBlockStop => "content_block_stop",
            Self::MessageDelta => "message_delta",
            Self::MessageStop => "message_stop",
            Self::Ping => "ping",
            Self::Error => "error",
            Self::Completion => "completion",
            Self::Other => "other",
        }
    }

    /// Whether the event carries model output. The first such event is when a retry on another
    /// key stops being invisible to the client.
    pub fn is_content(self) -> bool {
        matches!(
            self,
            Self::ContentBlockStart | Self::ContentBlockDelta | Self::Completion
        )
    }
}

/// Accumulates what one stream said, event by event, without keeping the events.
#[derive(Clone, Debug, Default)]
pub struct StreamTap {
    first_content_seen: bool,
    saw_message_stop: bool,
    error: Option<UpstreamError>,
    model: Option<String>,
    stop_reason: Option<String>,
    usage: Usage,
}

#[derive(Deserialize)]
struct MessageStart {
    message: StartedMessage,
}

#[derive(Deserialize)]
struct StartedMessage {
    model: Option<String>,
    usage: Option<UsageFields>,
}

#[derive(Deserialize)]
struct MessageDelta<'a> {
    #[serde(borrow)]
    delta: Option<StopDelta<'a>>,
    usage: Option<UsageFields>,
}

#[derive(Deserialize)]
struct StopDelta<'a> {
    #[serde(borrow)]
    stop_reason: Option<Cow<'a, str>>,
}

/// A legacy completion event; its text is skipped without being copied.
#[derive(Deserialize)]
struct Completion<'a> {
    #[serde(borrow)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
}

impl StreamTap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one event. Only `message_start`, `message_delta`, `error` and `completion`
    /// data is parsed; malformed data is ignored, since an observer must not break a stream
    /// the client may still be able to use.
    pub fn observe(&mut self, ev: &SseEvent<'_>) -> EventKind {
        let kind = EventKind::from_name(ev.event);
        if kind.is_content() {
            self.first_content_seen = true;
        }
        match kind {
            EventKind::MessageStart => self.on_message_start(ev.data),
            EventKind::MessageDelta => self.on_message_delta(ev.data),
            EventKind::MessageStop => self.saw_message_stop = true,
            EventKind::Error => self.on_error(ev.data),
            EventKind::Completion => self.on_completion(ev.data),
            _ => {}
        }
        kind
    }

    /// Whether content has started, i.e. the stream is past its commit point.
    pub fn first_content_seen(&self) -> bool {
        self.first_content_seen
    }

    /// Whether the stream ended normally: `message_stop`, or a legacy `completion` event with
    /// a stop reason. False for a stream that was cut or ended in an `error` event.
    pub fn saw_message_stop(&self) -> bool {
        self.saw_message_stop
    }

    /// The first in-stream `error` event, if any.
    pub fn error(&self) -> Option<&UpstreamError> {
        self.error.as_ref()
    }

    /// The model that served the stream, from `message_start`.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    pub fn stop_reason(&self) -> Option<&str> {
        self.stop_reason.as_deref()
    }

    /// Usage so far (protocol doc §7.10). Until a `message_delta` arrives, `output_tokens` is
    /// the provisional count from `message_start`: a cut stream has nothing better to bill.
    pub fn usage(&self) -> &Usage {
        &self.usage
    }

    fn on_message_start(&mut self, data: &[u8]) {
        let Ok(start) = serde_json::from_slice::<MessageStart>(data) else {
            return;
        };
        self.model = start.message.model;
        if let Some(usage) = start.message.usage {
            usage.apply(&mut self.usage);
        }
    }

    /// `message_delta` usage is cumulative, so each one overwrites rather than adds.
    fn on_message_delta(&mut self, data: &[u8]) {
        let Ok(delta) = serde_json::from_slice::<MessageDelta<'_>>(data) else {
            return;
        };
        if let Some(reason) = delta.delta.and_then(|delta| delta.stop_reason) {
            self.stop_reason = Some(reason.into_owned());
        }
        if let Some(usage) = delta.usage {
            usage.apply(&mut self.usage);
        }
    }

    fn on_error(&mut self, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        // An error event whose data we cannot read still ended the stream in failure.
        let error = parse_error_body(data).unwrap_or_else(|| UpstreamError {
            kind: None,
            kind_raw: String::new(),
            message: String::from_utf8_lossy(data).into_owned(),
            error_code: None,
        });
        self.error = Some(error);
    }

    fn on_completion(&mut self, data: &[u8]) {
        let Ok(completion) = serde_json::from_slice::<Completion<'_>>(data) else {
            return;
        };
        if self.model.is_none() {
            self.model = completion.model.map(Cow::into_owned);
        }
        if let Some(reason) = completion.stop_reason {
            self.stop_reason = Some(reason.into_owned());
            self.saw_message_stop = true;
        }
    }
}
