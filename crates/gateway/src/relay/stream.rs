//! Streaming through the commit point. Before commit, `message_start` and `ping` are held until
//! the first content event (or the hold cap), so a stream that dies early can still fail over
//! unseen. After commit, upstream bytes go out as they arrive; the scanner only watches them.
//! A failure after commit becomes one Anthropic `event: error` frame and the end of the body —
//! never a made-up `message_stop`, never a silent truncation.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use keyloop_wire::anthropic::{self, ErrorType, EventKind, StreamTap};
use keyloop_wire::sse::SseScanner;
use tokio::time::Instant;

use super::ledger;
use super::outcome::classify_stream_error;
use crate::accounting::{Accountant, RequestOutcome, UsageRecord};
use crate::pool::{KeyPool, Lease};
use crate::types::{Outcome, OutcomeClass, now_ms};

pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;
pub type UpstreamStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Why a stream could not be committed; the caller reports it and fails over.
pub struct HoldFailure {
    pub outcome: Outcome,
    pub detail: String,
}

/// One upstream stream on its way to the client.
pub struct Relaying {
    upstream: UpstreamStream,
    scanner: SseScanner,
    tap: StreamTap,
    /// Complete events ready to go out, in order.
    ready: VecDeque<Bytes>,
    /// An unfinished event's bytes, held so our own error frame can follow a clean boundary.
    pending: BytesMut,
    lease: Option<Lease>,
    pool: KeyPool,
    /// The classification of the response head (carries the rate-limit snapshot).
    head: Outcome,
    request_id: Arc<str>,
    idle: Duration,
    started: Instant,
    committed: bool,
    finished: bool,
    /// The usage record drafted for this request, settled when the stream ends.
    record: Option<UsageRecord>,
    accountant: Accountant,
    /// Content deltas relayed: a floor for the output of a stream that never reached its
    /// final `message_delta` (each delta carries at least one token).
    content_deltas: u64,
}

/// What a stream is carried with besides its bytes.
pub struct Carriage {
    pub lease: Lease,
    pub pool: KeyPool,
    pub head: Outcome,
    pub request_id: Arc<str>,
    pub idle: Duration,
    pub started: Instant,
    pub record: UsageRecord,
    pub accountant: Accountant,
}

impl Relaying {
    pub fn new(upstream: UpstreamStream, carriage: Carriage) -> Self {
        Self {
            upstream,
            scanner: SseScanner::new(),
            tap: StreamTap::default(),
            ready: VecDeque::new(),
            pending: BytesMut::new(),
            lease: Some(carriage.lease),
            pool: carriage.pool,
            head: carriage.head,
            request_id: carriage.request_id,
            idle: carriage.idle,
            started: carriage.started,
            committed: false,
            finished: false,
            record: Some(carriage.record),
            accountant: carriage.accountant,
            content_deltas: 0,
        }
    }

    /// Reads until the first content event, the end of the message, or the hold cap.
    pub async fn hold(&mut self, hold_for: Duration, deadline: Instant) -> Result<(), HoldFailure> {
        let hold_until = (Instant::now() + hold_for).min(deadline);
        loop {
            if self.tap.first_content_seen() || self.tap.saw_message_stop() {
                return Ok(());
            }
            if let Some(error) = self.tap.error() {
                return Err(HoldFailure {
                    outcome: classify_stream_error(error.kind),
                    detail: format!("stream error before content: {}", error.kind_raw),
                });
            }
            let idle_until = Instant::now() + self.idle;
            let wake = hold_until.min(idle_until);
            match tokio::time::timeout_at(wake, self.upstream.next()).await {
                Err(_) if Instant::now() >= hold_until => return Ok(()),
                Err(_) => {
                    return Err(HoldFailure {
                        outcome: Outcome::of(OutcomeClass::Timeout),
                        detail: "upstream went silent before the first content event".into(),
                    });
                }
                Ok(None) => {
                    return Err(HoldFailure {
                        outcome: Outcome::of(OutcomeClass::ServerError),
                        detail: "stream ended before any content".into(),
                    });
                }
                Ok(Some(Err(_))) => {
                    return Err(HoldFailure {
                        outcome: Outcome::of(OutcomeClass::ConnectError),
                        detail: "stream broke before any content".into(),
                    });
                }
                Ok(Some(Ok(chunk))) => {
                    if let Err(e) = self.push_chunk(chunk) {
                        return Err(HoldFailure {
                            outcome: Outcome::of(OutcomeClass::ServerError),
                            detail: format!("unreadable stream: {e}"),
                        });
                    }
                }
            }
        }
    }

    /// Reports a failed hold and releases the credential.
    pub fn abandon(mut self, outcome: &Outcome) {
        self.finished = true;
        if let Some(lease) = self.lease.take() {
            self.pool.report(&lease, outcome, now_ms());
        }
    }

    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// Commits: from here on every byte goes to the client.
    pub fn into_body(mut self) -> ByteStream {
        self.committed = true;
        if let Some(record) = self.record.as_mut() {
            record.ttft_ms = Some(self.started.elapsed().as_millis() as i64);
        }
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

    fn push_chunk(&mut self, chunk: Bytes) -> Result<(), keyloop_wire::sse::SseError> {
        let tap = &mut self.tap;
        let deltas = &mut self.content_deltas;
        let boundary = self.scanner.feed(&chunk, |event| {
            if tap.observe(&event) == EventKind::ContentBlockDelta {
                *deltas += 1;
            }
        })?;
        if self.pending.is_empty() {
            if boundary == chunk.len() {
                self.ready.push_back(chunk);
            } else {
                if boundary > 0 {
                    self.ready.push_back(chunk.slice(..boundary));
                }
                self.pending.extend_from_slice(&chunk[boundary..]);
            }
        } else if boundary == 0 {
            self.pending.extend_from_slice(&chunk);
        } else {
            self.pending.extend_from_slice(&chunk[..boundary]);
            self.ready.push_back(self.pending.split().freeze());
            self.pending.extend_from_slice(&chunk[boundary..]);
        }
        Ok(())
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return Some(frame);
            }
            if self.finished {
                return None;
            }
            match tokio::time::timeout(self.idle, self.upstream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    if let Err(e) = self.push_chunk(chunk) {
                        self.fail(
                            OutcomeClass::ServerError,
                            &format!("unreadable upstream stream: {e}"),
                        );
                    }
                }
                Ok(Some(Err(_))) => {
                    self.fail(
                        OutcomeClass::ConnectError,
                        "the upstream connection broke mid-stream",
                    );
                }
                Ok(None) => self.finish_at_end(),
                Err(_) => {
                    let secs = self.idle.as_secs();
                    self.fail(
                        OutcomeClass::Timeout,
                        &format!("the upstream stream went silent for {secs}s"),
                    );
                }
            }
        }
    }

    fn finish_at_end(&mut self) {
        if self.tap.saw_message_stop() {
            if !self.pending.is_empty() {
                self.ready.push_back(self.pending.split().freeze());
            }
            self.finish(self.head, RequestOutcome::Success);
        } else if let Some(error) = self.tap.error() {
            // The upstream already told the client in its own words; pass nothing more.
            let outcome = classify_stream_error(error.kind);
            if !self.pending.is_empty() {
                self.ready.push_back(self.pending.split().freeze());
            }
            self.finish(outcome, RequestOutcome::StreamCut);
        } else {
            self.fail(
                OutcomeClass::ServerError,
                "the upstream closed the stream before message_stop",
            );
        }
    }

    fn fail(&mut self, class: OutcomeClass, message: &str) {
        self.pending.clear();
        let kind = if class == OutcomeClass::Overloaded {
            ErrorType::Overloaded
        } else {
            ErrorType::Api
        };
        let frame = anthropic::error_event(kind, message, &self.request_id);
        self.ready.push_back(Bytes::from(frame));
        tracing::warn!(
            request_id = %self.request_id,
            key = self.lease.as_ref().map(|l| l.name()).unwrap_or_default(),
            outcome = class.as_str(),
            "{message}; sent an error event to the client"
        );
        self.finish(Outcome::of(class), RequestOutcome::StreamCut);
    }

    fn finish(&mut self, outcome: Outcome, ended: RequestOutcome) {
        self.finished = true;
        self.settle(ended, outcome.class);
        if let Some(lease) = self.lease.take() {
            self.pool.report(&lease, &outcome, now_ms());
            tracing::info!(
                request_id = %self.request_id,
                key = lease.name(),
                outcome = outcome.class.as_str(),
                input_tokens = self.tap.usage().input_tokens,
                output_tokens = self.tap.usage().output_tokens,
                total_ms = self.started.elapsed().as_millis() as u64,
                "stream finished"
            );
        }
    }
}

impl Relaying {
    /// Completes the usage record from what the tap saw and hands it to accounting.
    fn settle(&mut self, ended: RequestOutcome, class: OutcomeClass) {
        let Some(mut record) = self.record.take() else {
            return;
        };
        if let Some(lease) = self.lease.as_ref() {
            ledger::served_by(&mut record, lease, class);
        }
        record.status = 200;
        record.outcome = ended;
        record.usage = *self.tap.usage();
        if !self.tap.saw_message_stop() {
            // No final message_delta: the provisional count is all the upstream said.
            record.usage.output_tokens = record.usage.output_tokens.max(self.content_deltas);
        }
        record.served_model = self.tap.model().map(str::to_owned);
        record.stop_reason = self.tap.stop_reason().map(str::to_owned);
        record.latency_ms = self.started.elapsed().as_millis() as i64;
        self.accountant.settle(record);
    }
}

impl Drop for Relaying {
    fn drop(&mut self) {
        if self.committed && !self.finished {
            self.settle(RequestOutcome::ClientCancelled, OutcomeClass::Success);
            // The client went away: dropping `upstream` cancels the upstream request and the
            // lease frees its slot. Not the credential's fault, so nothing is reported.
            tracing::info!(
                request_id = %self.request_id,
                key = self.lease.as_ref().map(|l| l.name()).unwrap_or_default(),
                output_tokens = self.tap.usage().output_tokens,
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
