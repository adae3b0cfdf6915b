//! Streaming through the commit point. A streaming 200 is committed at once: the client gets the
//! status line, and upstream bytes as they arrive, `message_start` and `ping` included.
//!
//! Until the stream's first content event, bytes go out one whole event at a time, so that a
//! failure there (an `event: error`, a cut, an early end, silence) is withheld from the client:
//! the credential is reported and the request's own failover loop (same tried credentials, same
//! budget and deadline) finds a replacement. The replacement is spliced in: its `message_start`
//! and `ping` are dropped — the client has had them — and it is forwarded from its first content
//! event on. When every credential fails before content, the client gets one Anthropic
//! `event: error` frame and the end of the body.
//!
//! After content, upstream chunks pass through untouched; the scanner only watches them. A
//! failure then becomes one `event: error` frame and the end of the body — never a made-up
//! `message_stop`, never a silent truncation.
//!
//! With a first-event hold (`upstream.first-event-hold-ms`), the first stream is read up to its
//! first content event before commit, so that a request whose every credential fails early
//! still gets a real error status; once the hold runs out the stream is committed as above.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use keyloop_wire::anthropic::{self, ErrorType, EventKind, StreamTap};
use keyloop_wire::sse::{SseError, SseScanner};
use tokio::time::{Instant, Sleep};

use super::attempt::{Answered, Failover, Opened};
use super::outcome::classify_stream_error;
use super::{Relay, RequestCtx, ledger};
use crate::accounting::RequestOutcome;
use crate::pool::Lease;
use crate::types::{Outcome, OutcomeClass, now_ms};

pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;
pub type UpstreamStream = Pin<Box<dyn Stream<Item = Result<Bytes, hyper::Error>> + Send>>;

/// One upstream event stream and what has been seen of it.
pub(super) struct Leg {
    upstream: UpstreamStream,
    watch: Watch,
    lease: Lease,
    /// The classification of the response head (carries the rate-limit snapshot).
    head: Outcome,
    /// A replacement for a stream lost after commit: its `message_start` and `ping` are not
    /// the client's to see.
    spliced: bool,
}

impl Leg {
    pub(super) fn new(opened: Opened, spliced: bool) -> Self {
        Self {
            upstream: opened.upstream,
            watch: Watch::default(),
            lease: opened.lease,
            head: opened.head,
            spliced,
        }
    }
}

/// What is seen of one stream's events as its chunks go by.
#[derive(Default)]
struct Watch {
    scanner: SseScanner,
    tap: StreamTap,
    /// Content deltas relayed: a floor for the output of a stream that never reached its
    /// final `message_delta` (each delta carries at least one token).
    content_deltas: u64,
}

/// Frames for the client, and the unfinished event behind them.
#[derive(Default)]
struct Out {
    /// Frames ready to go out, in order.
    ready: VecDeque<Bytes>,
    /// An unfinished event's bytes, held so that it goes out whole, or our own error frame can
    /// follow a clean boundary.
    pending: BytesMut,
}

/// How a chunk before the first content event went.
#[derive(Debug, PartialEq, Eq)]
enum Before {
    /// No content yet; whatever may be forwarded is queued.
    Waiting,
    /// Content started; it and everything after it in the chunk are queued.
    Content,
    /// An `event: error` came: it is not queued, and the stream is lost.
    Error,
    Unreadable(SseError),
}

/// What one read of the upstream gave.
enum Read {
    Chunk(Bytes),
    Broke,
    Ended,
    Silent,
}

impl Read {
    /// The leg's next chunk, or `Silent` if `timer`, set to `deadline`, fires first. The timer
    /// is the relaying's one timer, moved: a fresh timeout per read entered the runtime's timer
    /// wheel and left it again, under the driver's lock, for every event relayed, while pushing
    /// a registered timer later is one atomic update (about 1 % of the instructions per
    /// relayed event).
    async fn next(leg: &mut Leg, timer: &mut Pin<Box<Sleep>>, deadline: Instant) -> Self {
        timer.as_mut().reset(deadline);
        tokio::select! {
            biased;
            read = leg.upstream.next() => match read {
                Some(Ok(chunk)) => Self::Chunk(chunk),
                Some(Err(_)) => Self::Broke,
                None => Self::Ended,
            },
            () = timer.as_mut() => Self::Silent,
        }
    }
}

/// One request's answer on its way to the client, from one upstream stream or, after
/// failures before content, several spliced together.
pub struct Relaying {
    relay: Relay,
    ctx: Arc<RequestCtx>,
    /// The request's failover loop, resumed when the current stream fails before content.
    failover: Failover,
    /// The stream being relayed; none between a failure and its replacement, or once finished.
    leg: Option<Leg>,
    out: Out,
    committed: bool,
    finished: bool,
    /// When the first content event went to the client.
    ttft_ms: Option<i64>,
    /// The deadline of the read in progress (see [`Read::next`]).
    timer: Pin<Box<Sleep>>,
}

impl Relaying {
    pub(super) fn new(relay: Relay, ctx: Arc<RequestCtx>, failover: Failover, leg: Leg) -> Self {
        Self {
            relay,
            ctx,
            failover,
            leg: Some(leg),
            out: Out::default(),
            committed: false,
            finished: false,
            ttft_ms: None,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }

    /// Reads until the first content event, the end of the message, or `hold_for`, before
    /// commit. False when the stream failed first: the failure is in the failover state.
    pub(super) async fn hold(&mut self, hold_for: Duration) -> bool {
        let hold_until = (Instant::now() + hold_for).min(self.ctx.deadline);
        let idle = self.relay.inner.config.stream_idle_timeout;
        loop {
            let Some(leg) = self.leg.as_mut() else {
                return self.finished;
            };
            if leg.watch.tap.first_content_seen() || leg.watch.tap.saw_message_stop() {
                return true;
            }
            let wake = hold_until.min(Instant::now() + idle);
            let read = Read::next(leg, &mut self.timer, wake).await;
            if matches!(read, Read::Silent) && Instant::now() >= hold_until {
                return true;
            }
            self.take(read);
        }
    }

    /// The loop's state back from a stream that failed while held, for the next attempt.
    pub(super) fn into_failover(mut self) -> Failover {
        self.finished = true;
        std::mem::take(&mut self.failover)
    }

    pub(super) fn lease(&self) -> Option<&Lease> {
        self.leg.as_ref().map(|leg| &leg.lease)
    }

    /// Commits: from here on the client reads the body.
    pub(super) fn into_body(mut self) -> ByteStream {
        self.committed = true;
        self.failover.commit();
        Box::pin(futures_util::stream::unfold(
            self,
            |mut relaying| async move {
                relaying
                    .next_frame()
                    .await
                    .map(|frame| (Ok(frame), relaying))
            },
        ))
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.out.ready.pop_front() {
                // Frames go out in order, so once content has been queued, the frame that
                // empties the queue has taken it to the client.
                if self.ttft_ms.is_none()
                    && self.out.ready.is_empty()
                    && self
                        .leg
                        .as_ref()
                        .is_some_and(|leg| leg.watch.tap.first_content_seen())
                {
                    self.ttft_ms = Some(ledger::elapsed_ms(&self.ctx));
                }
                return Some(frame);
            }
            if self.finished {
                return None;
            }
            let idle = self.relay.inner.config.stream_idle_timeout;
            let Some(leg) = self.leg.as_mut() else {
                self.resume().await;
                continue;
            };
            let read = Read::next(leg, &mut self.timer, Instant::now() + idle).await;
            self.take(read);
        }
    }

    fn take(&mut self, read: Read) {
        let Some(leg) = self.leg.as_mut() else {
            return;
        };
        if !leg.watch.tap.first_content_seen() {
            match read {
                Read::Chunk(chunk) => {
                    match leg.watch.before_content(chunk, leg.spliced, &mut self.out) {
                        Before::Waiting | Before::Content => {}
                        Before::Error => {
                            let (outcome, detail) = match leg.watch.tap.error() {
                                Some(error) => (
                                    classify_stream_error(error.kind),
                                    format!("stream error before content: {}", error.kind_raw),
                                ),
                                None => (
                                    Outcome::of(OutcomeClass::ServerError),
                                    "stream error before content".to_owned(),
                                ),
                            };
                            self.lose(outcome, detail);
                        }
                        Before::Unreadable(e) => self.lose(
                            Outcome::of(OutcomeClass::ServerError),
                            format!("unreadable stream: {e}"),
                        ),
                    }
                }
                Read::Broke => self.lose(
                    Outcome::of(OutcomeClass::ConnectError),
                    "stream broke before any content".into(),
                ),
                Read::Ended => self.end_before_content(),
                Read::Silent => self.lose(
                    Outcome::of(OutcomeClass::Timeout),
                    "upstream went silent before the first content event".into(),
                ),
            }
            return;
        }
        match read {
            Read::Chunk(chunk) => {
                if let Err(e) = leg.watch.after_content(chunk, &mut self.out) {
                    self.fail(
                        OutcomeClass::ServerError,
                        &format!("unreadable upstream stream: {e}"),
                    );
                }
            }
            // A connection closed after `message_stop` has delivered the whole message: the
            // upstream's goodbye, not a cut.
            Read::Broke if leg.watch.tap.saw_message_stop() => self.end_after_content(),
            Read::Broke => self.fail(
                OutcomeClass::ConnectError,
                "the upstream connection broke mid-stream",
            ),
            Read::Ended => self.end_after_content(),
            Read::Silent => {
                let secs = self.relay.inner.config.stream_idle_timeout.as_secs();
                self.fail(
                    OutcomeClass::Timeout,
                    &format!("the upstream stream went silent for {secs}s"),
                );
            }
        }
    }

    /// The upstream ended before any content: an empty answer if it said `message_stop`,
    /// otherwise a failure the client must not see.
    fn end_before_content(&mut self) {
        let Some(leg) = self.leg.as_ref() else {
            return;
        };
        if leg.watch.tap.saw_message_stop() {
            let head = leg.head;
            self.out.flush();
            return self.finish(head, RequestOutcome::Success);
        }
        let outcome = match leg.watch.tap.error() {
            Some(error) => classify_stream_error(error.kind),
            None => Outcome::of(OutcomeClass::ServerError),
        };
        self.lose(outcome, "stream ended before any content".into());
    }

    fn end_after_content(&mut self) {
        let Some(leg) = self.leg.as_ref() else {
            return;
        };
        if leg.watch.tap.saw_message_stop() {
            let head = leg.head;
            self.out.flush();
            self.finish(head, RequestOutcome::Success);
        } else if let Some(error) = leg.watch.tap.error() {
            // The upstream already told the client in its own words; pass nothing more.
            let outcome = classify_stream_error(error.kind);
            self.out.flush();
            self.finish(outcome, RequestOutcome::StreamCut);
        } else {
            self.fail(
                OutcomeClass::ServerError,
                "the upstream closed the stream before message_stop",
            );
        }
    }

    /// The stream failed before its first content event: nothing of the failure reaches the
    /// client. The credential is reported and the failure joins the request's attempts; the
    /// failover loop resumes when the client next asks for bytes.
    fn lose(&mut self, outcome: Outcome, detail: String) {
        self.out.pending.clear();
        let Some(leg) = self.leg.take() else {
            return;
        };
        let group = leg.lease.group().cloned();
        // Dropping the leg's upstream cancels what is left of its request.
        let failure =
            self.relay
                .fail_attempt(&self.ctx, &mut self.failover, leg.lease, outcome, detail);
        self.failover.failed(&self.ctx, failure, None, group);
    }

    /// Finds a replacement for a stream lost before content, with the request's failover loop.
    async fn resume(&mut self) {
        let answered = self.relay.next_answer(&self.ctx, &mut self.failover).await;
        self.relay.save_durable(&mut self.failover).await;
        match answered {
            Ok(Answered::Stream(opened)) => {
                tracing::info!(
                    request_id = %self.ctx.request_id,
                    key = opened.lease.name(),
                    attempt = self.failover.made(),
                    "splicing in a replacement stream"
                );
                self.leg = Some(Leg::new(opened, self.committed));
            }
            // Once committed, the loop takes any other answer for a failed attempt.
            Ok(Answered::Download { .. } | Answered::Whole { .. }) | Err(_) => self.give_up(),
        }
    }

    /// Every credential failed before content: one error event, then the end of the body.
    fn give_up(&mut self) {
        let last = self.failover.attempts().last().map(|a| a.outcome.class);
        let message = "every credential tried failed before the first content event";
        self.send_error_event(last.unwrap_or(OutcomeClass::ServerError), message);
        tracing::warn!(
            request_id = %self.ctx.request_id,
            attempts = self.failover.attempts().len(),
            "{message}; sent an error event to the client"
        );
        self.finished = true;
        self.settle(RequestOutcome::UpstreamError, OutcomeClass::ServerError);
    }

    fn fail(&mut self, class: OutcomeClass, message: &str) {
        self.out.pending.clear();
        self.send_error_event(class, message);
        tracing::warn!(
            request_id = %self.ctx.request_id,
            key = self.lease().map(Lease::name).unwrap_or_default(),
            outcome = class.as_str(),
            "{message}; sent an error event to the client"
        );
        self.finish(Outcome::of(class), RequestOutcome::StreamCut);
    }

    /// Queues our own Anthropic `event: error` frame, typed after the failure's class.
    fn send_error_event(&mut self, class: OutcomeClass, message: &str) {
        let kind = match class {
            OutcomeClass::Overloaded => ErrorType::Overloaded,
            OutcomeClass::RateLimited => ErrorType::RateLimit,
            _ => ErrorType::Api,
        };
        let frame = anthropic::error_event(kind, message, &self.ctx.request_id);
        self.out.ready.push_back(Bytes::from(frame));
    }

    fn finish(&mut self, outcome: Outcome, ended: RequestOutcome) {
        self.finished = true;
        self.settle(ended, outcome.class);
        if let Some(leg) = self.leg.take() {
            // The stream is ending and nothing is left to await: a long transition is saved by
            // the background persister.
            let model = self.ctx.model.as_deref();
            self.relay
                .inner
                .pool
                .report_for(&leg.lease, &outcome, model, now_ms());
            tracing::info!(
                request_id = %self.ctx.request_id,
                key = leg.lease.name(),
                outcome = outcome.class.as_str(),
                input_tokens = leg.watch.tap.usage().input_tokens,
                output_tokens = leg.watch.tap.usage().output_tokens,
                total_ms = self.ctx.started.elapsed().as_millis() as u64,
                "stream finished"
            );
        }
    }

    /// Completes the usage record and hands it to accounting: served by the stream being
    /// relayed, with its tap's usage (a spliced stream's `message_start` counts, though the
    /// client never saw it), and every failed attempt before it.
    fn settle(&mut self, ended: RequestOutcome, class: OutcomeClass) {
        let mut record = ledger::draft(&self.ctx, self.failover.attempts());
        record.status = 200;
        record.outcome = ended;
        record.ttft_ms = self.ttft_ms;
        match self.leg.as_ref() {
            Some(leg) => {
                ledger::served_by(&mut record, &leg.lease, class);
                record.usage = *leg.watch.tap.usage();
                if !leg.watch.tap.saw_message_stop() {
                    // No final message_delta: the provisional count is all the upstream said.
                    record.usage.output_tokens =
                        record.usage.output_tokens.max(leg.watch.content_deltas);
                }
                self.relay.count_tokens(&leg.lease, &record.usage);
                record.served_model = leg.watch.tap.model().map(str::to_owned);
                record.stop_reason = leg.watch.tap.stop_reason().map(str::to_owned);
            }
            None => {
                // Nothing served: the record names the last credential that failed.
                if let Some(last) = self.failover.attempts().last() {
                    record.key_id = Some(last.key_id.to_string());
                    record.key_name = Some(last.key_name.clone());
                }
            }
        }
        self.relay.settle_for(&self.ctx, record);
    }
}

impl Watch {
    /// Before the first content event: each complete event is queued, dropped (a spliced
    /// stream's `message_start` and `ping`) or, if it is an error, withheld. From the first
    /// content event on, the rest of the chunk is queued as it came.
    fn before_content(&mut self, chunk: Bytes, spliced: bool, out: &mut Out) -> Before {
        let Self {
            scanner,
            tap,
            content_deltas,
        } = self;
        // Bytes before `from` are queued or dropped; the current event starts at `start`.
        let mut from = 0;
        let mut start = 0;
        let mut seen = Before::Waiting;
        let scanned = scanner.feed_with_ends(&chunk, |event, end| {
            let kind = tap.observe(&event);
            if kind == EventKind::ContentBlockDelta {
                *content_deltas += 1;
            }
            if seen != Before::Waiting {
                return;
            }
            if kind.is_content() {
                seen = Before::Content;
                return;
            }
            match kind {
                EventKind::Error => {
                    out.queue(&chunk, from, start);
                    out.pending.clear();
                    seen = Before::Error;
                    return;
                }
                EventKind::MessageStart | EventKind::Ping if spliced => {
                    out.queue(&chunk, from, start);
                    out.pending.clear();
                    from = end;
                }
                _ => {}
            }
            start = end;
        });
        let boundary = match scanned {
            Ok(boundary) => boundary,
            Err(e) => return Before::Unreadable(e),
        };
        // Up to the last whole event (once content started, the last boundary) is queued; the
        // rest waits for its end.
        let until = match seen {
            Before::Waiting => start,
            Before::Content => boundary,
            Before::Error | Before::Unreadable(_) => return seen,
        };
        out.queue(&chunk, from, until);
        out.pending.extend_from_slice(&chunk[until..]);
        seen
    }

    /// After the first content event: the chunk is queued as it came, up to its last event
    /// boundary (in the steady state the whole chunk, without a copy).
    fn after_content(&mut self, chunk: Bytes, out: &mut Out) -> Result<(), SseError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let tap = &mut self.tap;
        let deltas = &mut self.content_deltas;
        let boundary = self.scanner.feed(&chunk, |event| {
            if tap.observe(&event) == EventKind::ContentBlockDelta {
                *deltas += 1;
            }
        })?;
        if out.pending.is_empty() {
            if boundary == chunk.len() {
                out.ready.push_back(chunk);
            } else {
                if boundary > 0 {
                    out.ready.push_back(chunk.slice(..boundary));
                }
                out.pending.extend_from_slice(&chunk[boundary..]);
            }
        } else if boundary == 0 {
            out.pending.extend_from_slice(&chunk);
        } else {
            out.pending.extend_from_slice(&chunk[..boundary]);
            out.ready.push_back(out.pending.split().freeze());
            out.pending.extend_from_slice(&chunk[boundary..]);
        }
        Ok(())
    }
}

impl Out {
    /// Queues `pending` (the start of an event begun in an earlier chunk) followed by
    /// `chunk[from..until]` as one frame; nothing when the range is empty, since `pending`
    /// then belongs to the event at `from`.
    fn queue(&mut self, chunk: &Bytes, from: usize, until: usize) {
        if until <= from {
            return;
        }
        if self.pending.is_empty() {
            self.ready.push_back(chunk.slice(from..until));
        } else {
            self.pending.extend_from_slice(&chunk[from..until]);
            self.ready.push_back(self.pending.split().freeze());
        }
    }

    /// Queues what is left of an ended stream.
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.ready.push_back(self.pending.split().freeze());
        }
    }
}

impl Drop for Relaying {
    fn drop(&mut self) {
        if self.committed && !self.finished {
            self.settle(RequestOutcome::ClientCancelled, OutcomeClass::Success);
            // The client went away: dropping `upstream` cancels the upstream request and the
            // lease frees its slot. Not the credential's fault, so nothing is reported.
            tracing::info!(
                request_id = %self.ctx.request_id,
                key = self.lease().map(Lease::name).unwrap_or_default(),
                output_tokens = self.leg.as_ref().map_or(0, |leg| leg.watch.tap.usage().output_tokens),
                "client disconnected mid-stream; upstream request cancelled"
            );
        }
    }
}

/// A download streamed through untouched; the lease is held until the body is done.
pub fn passthrough(upstream: UpstreamStream, lease: Lease) -> ByteStream {
    Box::pin(upstream.map(move |chunk| {
        let _held = &lease;
        chunk.map_err(std::io::Error::other)
    }))
}

#[cfg(test)]
mod tests;
