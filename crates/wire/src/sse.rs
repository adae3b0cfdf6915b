//! Incremental, observation-only scanner for `text/event-stream` bodies.
//!
//! On the passthrough path upstream bytes go to the client untouched; this scanner only watches
//! them. It reports each completed event and, per chunk, where the last event ended, because
//! that is the only place the caller may forward up to, or splice in a frame of its own (an
//! error event, say), without cutting an upstream event in half.
//!
//! Grammar: the WHATWG event-stream format. Lines end in `\n`, `\r\n` or a lone `\r`; `:` starts
//! a comment; `field: value` loses one leading space; `data` lines join with `\n`; a blank line
//! ends the block. `id` and `retry` do not matter to an observer and are skipped. A leading
//! byte-order mark is not stripped (JSON APIs do not send one).

use std::fmt;

use memchr::{memchr, memchr2};

/// One dispatched event, borrowed from the scanner's buffers until the callback returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` name, empty when the block had none.
    pub event: &'a [u8],
    /// The `data:` lines joined by `\n`.
    pub data: &'a [u8],
}

/// Why the scanner gave up. The stream should be abandoned: the scanner's state is unspecified
/// after an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SseError {
    /// A line, or one event's joined data, grew past the limit. Both are bounded so that a
    /// broken upstream cannot make the observer buffer without end.
    LineTooLong { limit: usize },
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LineTooLong { limit } => {
                write!(f, "SSE line or event data longer than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for SseError {}

/// Far above any real event, low enough to bound memory per stream.
const DEFAULT_MAX_LINE: usize = 1 << 20;

/// Watches an event stream chunk by chunk. Besides the bounded buffers it holds only a few
/// flags, and it reuses its buffers, so the steady state allocates nothing.
#[derive(Debug)]
pub struct SseScanner {
    max_line: usize,
    /// The start of a line whose end has not arrived yet.
    carry: Vec<u8>,
    /// The previous chunk ended in a `\r` line ending, so a `\n` opening the next chunk is
    /// part of that ending rather than a blank line.
    after_cr: bool,
    /// That `\r` ended a blank line, so its `\n` also belongs to the event boundary.
    after_blank_cr: bool,
    block: Block,
}

/// The block (lines since the last blank line) being assembled.
#[derive(Debug, Default)]
struct Block {
    name: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    /// An `event` or `data` field was seen, so the closing blank line dispatches.
    dispatch: bool,
    /// Any line (comments included) was seen, so the stream is mid-block.
    open: bool,
}

impl Default for SseScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl SseScanner {
    /// A scanner that allows lines (and event data) up to 1 MiB.
    pub fn new() -> Self {
        Self::with_max_line(DEFAULT_MAX_LINE)
    }

    pub fn with_max_line(max: usize) -> Self {
        Self {
            max_line: max,
            carry: Vec::new(),
            after_cr: false,
            after_blank_cr: false,
            block: Block::default(),
        }
    }

    /// Feeds one chunk; calls `on_event` for each event completed in it (in order).
    ///
    /// Returns the offset just past the last blank line (event terminator) inside this chunk,
    /// or 0 if none ended in it. The result depends only on the bytes fed so far, not on how
    /// they were split: a `\r\n` blank line split between chunks reports a boundary after the
    /// `\r` (the event is complete there) and again after the `\n`.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        mut on_event: impl FnMut(SseEvent<'_>),
    ) -> Result<usize, SseError> {
        self.feed_with_ends(chunk, |event, _| on_event(event))
    }

    /// Like [`feed`](Self::feed), and also tells `on_event` the offset in this chunk just past
    /// the blank line that ended the event, so a caller can forward, drop or withhold events
    /// one by one. An event completed by a `\r` at the very end of the chunk ends at
    /// `chunk.len()`; the `\n` that may open the next chunk then belongs to no event.
    pub fn feed_with_ends(
        &mut self,
        chunk: &[u8],
        mut on_event: impl FnMut(SseEvent<'_>, usize),
    ) -> Result<usize, SseError> {
        let mut boundary = 0;
        let mut pos = 0;
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            if chunk[0] == b'\n' {
                pos = 1;
                if self.after_blank_cr {
                    boundary = 1;
                }
            }
        }
        while let Some(found) = memchr2(b'\n', b'\r', &chunk[pos..]) {
            let end = pos + found;
            let mut next = end + 1;
            let mut cr_at_chunk_end = false;
            if chunk[end] == b'\r' {
                match chunk.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => cr_at_chunk_end = true,
                }
            }
            let blank = self.complete_line(&chunk[pos..end], &mut |event| on_event(event, next))?;
            if blank {
                boundary = next;
            }
            if cr_at_chunk_end {
                self.after_cr = true;
                self.after_blank_cr = blank;
            }
            pos = next;
        }
        let rest = &chunk[pos..];
        if !rest.is_empty() {
            self.check_len(self.carry.len() + rest.len())?;
            self.carry.extend_from_slice(rest);
        }
        Ok(boundary)
    }

    /// True when no partial line or partial event is pending.
    pub fn at_boundary(&self) -> bool {
        self.carry.is_empty() && !self.block.open
    }

    /// Applies a line whose end is in this chunk; `tail` is its part inside the chunk.
    /// Returns whether it was blank.
    fn complete_line(
        &mut self,
        tail: &[u8],
        on_event: &mut impl FnMut(SseEvent<'_>),
    ) -> Result<bool, SseError> {
        let limit = self.max_line;
        if self.carry.is_empty() {
            self.check_len(tail.len())?;
            return self.block.line(tail, limit, on_event);
        }
        self.check_len(self.carry.len() + tail.len())?;
        self.carry.extend_from_slice(tail);
        let blank = self.block.line(&self.carry, limit, on_event);
        self.carry.clear();
        blank
    }

    fn check_len(&self, len: usize) -> Result<(), SseError> {
        if len > self.max_line {
            return Err(SseError::LineTooLong {
                limit: self.max_line,
            });
        }
        Ok(())
    }
}

impl Block {
    /// Applies one complete line (terminator removed); returns whether it was blank.
    fn line(
        &mut self,
        line: &[u8],
        limit: usize,
        on_event: &mut impl FnMut(SseEvent<'_>),
    ) -> Result<bool, SseError> {
        if line.is_empty() {
            if self.dispatch {
                on_event(SseEvent {
                    event: &self.name,
                    data: &self.data,
                });
            }
            self.reset();
            return Ok(true);
        }
        self.open = true;
        if line[0] == b':' {
            return Ok(false);
        }
        let (field, value) = match memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"event" => {
                self.name.clear();
                self.name.extend_from_slice(value);
                self.dispatch = true;
            }
            b"data" => {
                let separator = usize::from(self.has_data);
                if self.data.len() + separator + value.len() > limit {
                    return Err(SseError::LineTooLong { limit });
                }
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
                self.dispatch = true;
            }
            _ => {}
        }
        Ok(false)
    }

    /// Empties the block but keeps the buffers' capacity for the next one.
    fn reset(&mut self) {
        self.name.clear();
        self.data.clear();
        self.has_data = false;
        self.dispatch = false;
        self.open = false;
    }
}
