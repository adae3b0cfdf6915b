//! The failover loop: each credential at most once, within the request's deadline. Moving away
//! from a credential whose failure is its own is free; a retry after a provider-wide failure
//! counts against `max_attempts` and needs room in the global retry budget. Its state lives in
//! one `Failover`, shared by the attempts made before the client sees a status line and by the
//! ones that resume a stream which failed before its first content event (see `stream`): one
//! loop, whichever side of the commit point it runs on.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::Instant;

use super::ledger;
use super::outcome::{classify, classify_transport};
use super::refresh;
use super::retry_budget::{InFlight, Retrying};
use super::stream::{self, Leg, Relaying, UpstreamStream};
use super::{Answer, AttemptFailure, CallKind, Error, Relay, RequestCtx, Response, ResponseBody};
use crate::accounting::{RequestOutcome, Route};
use crate::pool::{self, Blame, Lease, PersistedState, Pick, Shortage};
use crate::providers::anthropic::{Credential, client_response_headers};
use crate::types::{EpochMs, KeyId, KeyKind, Outcome, OutcomeClass, Secret, now_ms};

/// Where one request's failover loop stands: what was tried, what failed, what is left.
#[derive(Default)]
pub(super) struct Failover {
    /// Credentials already tried: none is tried twice.
    tried: Vec<KeyId>,
    /// Limits are per organisation: after a 429, keys billing to the same one come last.
    avoid_groups: Vec<Arc<str>>,
    /// Every failed attempt, in order.
    attempts: Vec<AttemptFailure>,
    /// The last upstream answer with a body (5xx/529), passed through when all attempts fail.
    last: Option<Box<Answer>>,
    /// When the pool said a credential would be free again, if it ran out of them.
    pool_retry_at: Option<EpochMs>,
    /// What the pool's credentials were out for, if it ran out of them.
    pool_shortage: Option<Shortage>,
    /// Attempts started so far.
    made: u32,
    /// Failed attempts the pool blamed on the provider as a whole.
    provider_failures: u32,
    /// This request, counted in the retry budget's share while held (never read).
    _in_flight: Option<InFlight>,
    /// Held from the first retry after a provider-wide failure to the end of the request.
    retrying: Option<Retrying>,
    /// A credential's token was refreshed for this request (once per request at most).
    refreshed: bool,
    /// Key states to save before the client is answered (a failure inside a stream reports
    /// where nothing can be awaited).
    durable: Vec<PersistedState>,
    /// One named credential and no failover (batch follow-ups).
    pinned: Option<KeyId>,
    /// The client has its status line: only another event stream can carry the answer on.
    committed: bool,
}

/// Why the loop ended without an answer.
pub(super) enum Stop {
    /// Attempts, the deadline, the retry budget or the untried credentials ran out.
    Exhausted,
    /// Not even one credential could be tried.
    NoKey {
        retry_at: Option<EpochMs>,
        skipped: Vec<pool::Skip>,
        shortage: Shortage,
    },
    /// The pinned credential is no longer configured.
    KeyGone,
}

/// An upstream answer the client may have.
pub(super) enum Answered {
    /// A 2xx event stream for a generation: it goes through the commit point.
    Stream(Opened),
    /// A 2xx download (batch results), streamed through untouched.
    Download {
        lease: Lease,
        status: StatusCode,
        headers: HeaderMap,
        upstream: UpstreamStream,
    },
    /// An answer read whole: a success, or the client's own mistake.
    Whole {
        lease: Lease,
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        outcome: Outcome,
    },
}

/// A 2xx event stream as it arrived: the head read, the body not yet.
pub(super) struct Opened {
    pub lease: Lease,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub upstream: UpstreamStream,
    /// The classification of the response head (carries the rate-limit snapshot).
    pub head: Outcome,
}

enum Called {
    Answered(Answered),
    Failed(AttemptFailure, Option<Box<Answer>>),
}

impl Failover {
    fn pinned(key: KeyId) -> Self {
        Self {
            pinned: Some(key),
            ..Self::default()
        }
    }

    /// This request's failed attempts so far.
    pub(super) fn attempts(&self) -> &[AttemptFailure] {
        &self.attempts
    }

    /// Attempts started so far (the last one's number).
    pub(super) fn made(&self) -> u32 {
        self.made
    }

    /// From here on the client has a 200 event stream.
    pub(super) fn commit(&mut self) {
        self.committed = true;
    }

    /// Keeps a key state to save before the client is answered.
    pub(super) fn save_later(&mut self, state: Option<PersistedState>) {
        self.durable.extend(state);
    }

    /// Records a failed attempt made with a credential of `group`.
    pub(super) fn failed(
        &mut self,
        ctx: &RequestCtx,
        failure: AttemptFailure,
        answer: Option<Box<Answer>>,
        group: Option<Arc<str>>,
    ) {
        if failure.outcome.class == OutcomeClass::RateLimited
            && let Some(group) = group
            && !self.avoid_groups.contains(&group)
        {
            self.avoid_groups.push(group);
        }
        if failure.blame == Blame::Provider {
            self.provider_failures += 1;
        }
        tracing::warn!(
            request_id = %ctx.request_id,
            key = %failure.key_name,
            outcome = failure.outcome.class.as_str(),
            blame = ?failure.blame,
            detail = %failure.detail,
            committed = self.committed,
            "attempt failed"
        );
        self.attempts.push(failure);
        if answer.is_some() {
            self.last = answer;
        }
    }

    fn into_error(self, stop: Stop, configured: usize) -> Error {
        match stop {
            Stop::NoKey {
                retry_at,
                skipped,
                shortage,
            } => Error::NoKeyAvailable {
                retry_at,
                skipped,
                shortage,
                attempts: self.attempts,
                configured,
            },
            Stop::KeyGone => Error::BatchKeyGone {
                key: self.pinned.map(|key| key.to_string()).unwrap_or_default(),
            },
            Stop::Exhausted => Error::AllAttemptsFailed {
                retry_at: soonest(self.pool_retry_at, &self.attempts),
                attempts: self.attempts,
                last: self.last,
                shortage: self.pool_shortage,
            },
        }
    }
}

impl Relay {
    /// Serves a request from the pool, failing over between credentials: before commit, and
    /// for a stream also after it, as long as no content has reached the client.
    pub async fn forward(&self, ctx: &Arc<RequestCtx>) -> Result<Response, Error> {
        let failover = Failover {
            _in_flight: Some(self.inner.budget.request()),
            ..Failover::default()
        };
        self.serve(ctx, failover).await
    }

    /// Serves a request with one named credential and no failover (batch follow-ups, which
    /// only the credential that created the batch can see).
    pub(super) async fn forward_pinned(
        &self,
        ctx: &Arc<RequestCtx>,
        key: &KeyId,
    ) -> Result<Response, Error> {
        self.serve(ctx, Failover::pinned(key.clone())).await
    }

    async fn serve(
        &self,
        ctx: &Arc<RequestCtx>,
        mut failover: Failover,
    ) -> Result<Response, Error> {
        loop {
            let answered = self.next_answer(ctx, &mut failover).await;
            self.save_durable(&mut failover).await;
            let answered = match answered {
                Ok(answered) => answered,
                Err(stop) => return Err(failover.into_error(stop, self.inner.pool.len())),
            };
            match answered {
                Answered::Stream(opened) => match self.commit(ctx, opened, failover).await {
                    Ok(response) => return Ok(response),
                    Err(held_back) => failover = held_back,
                },
                Answered::Download {
                    lease,
                    status,
                    headers,
                    upstream,
                } => {
                    log_served(ctx, &lease, failover.made, status.as_u16(), true);
                    let mut record = ledger::draft(ctx, &failover.attempts);
                    ledger::served_by(&mut record, &lease, OutcomeClass::Success);
                    record.status = status.as_u16();
                    record.outcome = RequestOutcome::Success;
                    record.ttft_ms = Some(record.latency_ms);
                    self.settle_for(ctx, record);
                    let served_by = Some(lease.key_id().clone());
                    return Ok(Response {
                        status,
                        headers: client_response_headers(headers),
                        body: ResponseBody::Stream(stream::passthrough(upstream, lease)),
                        served_by,
                    });
                }
                Answered::Whole {
                    lease,
                    status,
                    headers,
                    body,
                    outcome,
                } => {
                    log_served(ctx, &lease, failover.made, status.as_u16(), false);
                    self.settle_buffered(ctx, &failover.attempts, &lease, status, &outcome, &body);
                    return Ok(Response {
                        status,
                        headers: client_response_headers(headers),
                        body: ResponseBody::Full(body),
                        served_by: Some(lease.key_id().clone()),
                    });
                }
            }
        }
    }

    /// Commits a stream: at once, or with a first-event hold once content has started (or the
    /// hold ran out). A held stream that fails before that hands the loop's state back.
    async fn commit(
        &self,
        ctx: &Arc<RequestCtx>,
        mut opened: Opened,
        failover: Failover,
    ) -> Result<Response, Failover> {
        let status = opened.status;
        let headers = client_response_headers(std::mem::take(&mut opened.headers));
        let attempt = failover.made;
        let mut relaying = Relaying::new(
            self.clone(),
            Arc::clone(ctx),
            failover,
            Leg::new(opened, false),
        );
        let hold = self.inner.config.first_event_hold;
        if !hold.is_zero() && !relaying.hold(hold).await {
            return Err(relaying.into_failover());
        }
        let served_by = relaying.lease().map(|lease| lease.key_id().clone());
        if let Some(lease) = relaying.lease() {
            log_served(ctx, lease, attempt, status.as_u16(), true);
        }
        Ok(Response {
            status,
            headers,
            body: ResponseBody::Stream(relaying.into_body()),
            served_by,
        })
    }

    /// Tries credentials until one gives an answer the client may have, or the loop ends.
    /// Once the client has its status line, an answer that is not an event stream counts as a
    /// failed attempt: it cannot continue the stream the client is reading.
    pub(super) async fn next_answer(
        &self,
        ctx: &RequestCtx,
        failover: &mut Failover,
    ) -> Result<Answered, Stop> {
        loop {
            let lease = self.next_lease(ctx, failover)?;
            let group = lease.group().cloned();
            match self.call(ctx, failover, lease).await {
                Called::Answered(Answered::Stream(opened)) => {
                    return Ok(Answered::Stream(opened));
                }
                Called::Answered(Answered::Whole {
                    lease,
                    status,
                    outcome,
                    ..
                }) if failover.committed => {
                    let class = match outcome.class {
                        OutcomeClass::Success => OutcomeClass::ServerError,
                        class => class,
                    };
                    let failure = AttemptFailure {
                        key_id: lease.key_id().clone(),
                        key_name: lease.name().to_owned(),
                        outcome: Outcome { class, ..outcome },
                        blame: Blame::Credential,
                        detail: format!(
                            "upstream answered {} without an event stream",
                            status.as_u16()
                        ),
                    };
                    failover.failed(ctx, failure, None, group);
                }
                Called::Answered(answered) => return Ok(answered),
                Called::Failed(failure, answer) => failover.failed(ctx, failure, answer, group),
            }
        }
    }

    /// The credential for the next attempt, if the request may have one.
    fn next_lease(&self, ctx: &RequestCtx, failover: &mut Failover) -> Result<Lease, Stop> {
        let inner = &self.inner;
        if failover.pinned.is_some() && failover.made >= 1 {
            return Err(Stop::Exhausted);
        }
        if failover.made > 0 {
            if Instant::now() >= ctx.deadline {
                return Err(Stop::Exhausted);
            }
            let after_provider = failover
                .attempts
                .last()
                .is_some_and(|a| a.blame == Blame::Provider);
            if after_provider {
                if failover.provider_failures >= inner.config.max_attempts {
                    return Err(Stop::Exhausted);
                }
                if failover.retrying.is_none() {
                    failover.retrying = inner.budget.try_retry();
                    if failover.retrying.is_none() {
                        tracing::warn!(
                            request_id = %ctx.request_id,
                            "retry budget exhausted after a provider-wide failure; not retrying"
                        );
                        return Err(Stop::Exhausted);
                    }
                }
            }
        }
        let lease = match &failover.pinned {
            Some(key) => inner.pool.lease_key(key).ok_or(Stop::KeyGone)?,
            None => {
                let pick = Pick {
                    session: ctx.session.as_deref(),
                    exclude: &failover.tried,
                    avoid_groups: &failover.avoid_groups,
                    model: ctx.model.as_deref(),
                };
                match inner.pool.acquire(&pick, now_ms()) {
                    Ok(lease) => lease,
                    Err(pool::Error::NoKeyAvailable {
                        retry_at,
                        skipped,
                        shortage,
                    }) => {
                        if failover.attempts.is_empty() {
                            tracing::warn!(
                                request_id = %ctx.request_id,
                                skipped = %describe_skips(&skipped),
                                "no credential available"
                            );
                            return Err(Stop::NoKey {
                                retry_at,
                                skipped,
                                shortage,
                            });
                        }
                        failover.pool_retry_at = retry_at;
                        failover.pool_shortage = Some(shortage);
                        return Err(Stop::Exhausted);
                    }
                }
            }
        };
        failover.made += 1;
        failover.tried.push(lease.key_id().clone());
        Ok(lease)
    }

    /// One upstream call, classified. Failures are reported to the pool here; answers are
    /// reported here too, except streams, whose outcome is known only at their end.
    async fn call(&self, ctx: &RequestCtx, failover: &mut Failover, lease: Lease) -> Called {
        let inner = &self.inner;
        // Only an OAuth credential near its token's expiry gets a secret of its own here.
        let refreshed = match self.before_expiry(&lease).await {
            Ok(refreshed) => refreshed,
            Err(detail) => {
                let outcome = Outcome::of(OutcomeClass::TokenExpired);
                let failure = self.fail_attempt(ctx, failover, lease, outcome, detail);
                return Called::Failed(failure, None);
            }
        };
        let secret = refreshed.as_deref().unwrap_or(lease.secret());
        let timeout = ctx.deadline.saturating_duration_since(Instant::now());
        let sent = inner
            .upstream
            .send(
                ctx.method.clone(),
                &ctx.path_and_query,
                &ctx.headers,
                ctx.body.clone(),
                Credential {
                    kind: lease.kind(),
                    secret,
                },
                timeout,
            )
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                let outcome = classify_transport(&e);
                let failure = self.fail_attempt(ctx, failover, lease, outcome, e.to_string());
                return Called::Failed(failure, None);
            }
        };
        let (parts, body) = response.into_parts();
        let (status, headers) = (parts.status, parts.headers);
        if let Some(org) = headers
            .get(ORGANIZATION_HEADER)
            .and_then(|v| v.to_str().ok())
            && !lease.in_organization(org)
        {
            inner.pool.note_organization(&lease, org);
        }
        let model = ctx.model.as_deref();

        if status.is_success() && ctx.kind == CallKind::Generate && is_event_stream(&headers) {
            let head = classify(status, &headers, b"", model, now_ms());
            return Called::Answered(Answered::Stream(Opened {
                lease,
                status,
                headers,
                upstream: Box::pin(body.into_data_stream()),
                head,
            }));
        }

        if status.is_success() && ctx.kind == CallKind::Download {
            let outcome = classify(status, &headers, b"", model, now_ms());
            inner.pool.report_for(&lease, &outcome, model, now_ms());
            return Called::Answered(Answered::Download {
                lease,
                status,
                headers,
                upstream: Box::pin(body.into_data_stream()),
            });
        }

        let body = match read_bounded(body, inner.config.response_limit, ctx.deadline).await {
            Ok(body) => body,
            Err(class) => {
                let detail = format!("reading the {} body failed", status.as_u16());
                let failure = self.fail_attempt(ctx, failover, lease, Outcome::of(class), detail);
                return Called::Failed(failure, None);
            }
        };
        let outcome = classify(status, &headers, &body, model, now_ms());
        let reported = inner.pool.report_for(&lease, &outcome, model, now_ms());
        failover.save_later(reported.durable);
        if outcome.class == OutcomeClass::TokenExpired {
            self.after_expiry(failover, &lease).await;
        }
        match outcome.class {
            OutcomeClass::Success | OutcomeClass::ClientError => {
                Called::Answered(Answered::Whole {
                    lease,
                    status,
                    headers,
                    body,
                    outcome,
                })
            }
            _ => {
                let failure = AttemptFailure {
                    key_id: lease.key_id().clone(),
                    key_name: lease.name().to_owned(),
                    outcome,
                    blame: reported.blame,
                    detail: format!("upstream answered {}", status.as_u16()),
                };
                let answer = Answer {
                    status,
                    headers: client_response_headers(headers),
                    body,
                };
                Called::Failed(failure, Some(Box::new(answer)))
            }
        }
    }

    /// Refreshes an OAuth credential whose access token expires within
    /// [`refresh::REFRESH_AHEAD_MS`], and returns its new secret. Err (with why) when the token
    /// has already expired and could not be refreshed: the attempt fails without a call.
    async fn before_expiry(&self, lease: &Lease) -> Result<Option<Arc<Secret<String>>>, String> {
        let (Some(refresher), Some(expires_at)) = (&self.inner.refresher, lease.token_expires_at())
        else {
            return Ok(None);
        };
        let now = now_ms();
        if lease.kind() != KeyKind::OAuth || expires_at - now > refresh::REFRESH_AHEAD_MS {
            return Ok(None);
        }
        match refresher.refresh(lease.key_id(), lease.secret()).await {
            Ok(secret) => Ok(Some(secret)),
            // Still valid for a little while: use it.
            Err(_) if expires_at > now_ms() => Ok(None),
            Err(e) => Err(format!(
                "the access token expired and was not refreshed: {e}"
            )),
        }
    }

    /// The provider said the access token expired: refresh it, and let this request try the
    /// same credential once more with the new token.
    async fn after_expiry(&self, failover: &mut Failover, lease: &Lease) {
        let Some(refresher) = &self.inner.refresher else {
            return;
        };
        if failover.refreshed {
            return;
        }
        if refresher
            .refresh(lease.key_id(), lease.secret())
            .await
            .is_ok()
        {
            failover.refreshed = true;
            failover.tried.retain(|k| k != lease.key_id());
        }
    }

    /// Reports a failed attempt to the pool (which releases the credential) and describes it.
    pub(super) fn fail_attempt(
        &self,
        ctx: &RequestCtx,
        failover: &mut Failover,
        lease: Lease,
        outcome: Outcome,
        detail: String,
    ) -> AttemptFailure {
        let reported = self
            .inner
            .pool
            .report_for(&lease, &outcome, ctx.model.as_deref(), now_ms());
        failover.save_later(reported.durable);
        AttemptFailure {
            key_id: lease.key_id().clone(),
            key_name: lease.name().to_owned(),
            outcome,
            blame: reported.blame,
            detail,
        }
    }

    /// Saves the key states that must be on disk before the client is answered (a credential
    /// disabled, a long cooldown): a crash right after must not bring the key back. The
    /// background persister saves them too; this only moves the write ahead of the answer.
    pub(super) async fn save_durable(&self, failover: &mut Failover) {
        for state in failover.durable.drain(..) {
            let row = crate::keyring::state_row(&state);
            if let Err(e) = self.inner.store.save_key_state(&row).await {
                tracing::error!(error = %e, key = %state.key_id, "could not save a credential's state");
            }
        }
    }

    /// Counts a served request's tokens against its key's daily token quota.
    pub(super) fn count_tokens(&self, lease: &Lease, usage: &keyloop_wire::usage::Usage) {
        if lease.counts_tokens() {
            let tokens = usage.input_tokens
                + usage.output_tokens
                + usage.cache_read_tokens
                + usage.cache_write_tokens;
            self.inner
                .pool
                .record_tokens(lease.key_id(), tokens, now_ms());
        }
    }

    /// The record of an answer read whole: usage from the Message body when it has one.
    fn settle_buffered(
        &self,
        ctx: &RequestCtx,
        prior: &[AttemptFailure],
        lease: &Lease,
        status: StatusCode,
        outcome: &Outcome,
        body: &[u8],
    ) {
        let mut record = ledger::draft(ctx, prior);
        ledger::served_by(&mut record, lease, outcome.class);
        record.status = status.as_u16();
        record.ttft_ms = Some(record.latency_ms);
        if outcome.class == OutcomeClass::Success {
            record.outcome = RequestOutcome::Success;
            if ctx.route == Route::Messages
                && let Some(summary) = keyloop_wire::anthropic::summarize_message(body)
            {
                record.usage = summary.usage;
                self.count_tokens(lease, &record.usage);
                record.served_model = summary.model;
                record.stop_reason = summary.stop_reason;
            }
        } else {
            record.outcome = RequestOutcome::ClientError;
        }
        self.settle_for(ctx, record);
    }
}

/// The organisation the serving credential bills to, on every authenticated answer.
const ORGANIZATION_HEADER: &str = "anthropic-organization-id";

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// Reads a whole (bounded) body before the client sees a status line, so a body cut half-way
/// can still fail over and never reaches the client as a 200.
async fn read_bounded(
    upstream: Incoming,
    limit: usize,
    deadline: Instant,
) -> Result<Bytes, OutcomeClass> {
    let mut body = BytesMut::new();
    let mut chunks = upstream.into_data_stream();
    loop {
        match tokio::time::timeout_at(deadline, chunks.next()).await {
            Err(_) => return Err(OutcomeClass::Timeout),
            Ok(None) => return Ok(body.freeze()),
            Ok(Some(Err(_))) => return Err(OutcomeClass::ConnectError),
            Ok(Some(Ok(chunk))) => {
                if body.len() + chunk.len() > limit {
                    return Err(OutcomeClass::ServerError);
                }
                body.extend_from_slice(&chunk);
            }
        }
    }
}

fn soonest(pool_retry_at: Option<EpochMs>, attempts: &[AttemptFailure]) -> Option<EpochMs> {
    attempts
        .iter()
        .filter_map(|a| a.outcome.retry_at_ms)
        .chain(pool_retry_at)
        .min()
}

fn describe_skips(skipped: &[pool::Skip]) -> String {
    skipped
        .iter()
        .map(|s| format!("{}:{}", s.name, s.reason.as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

fn log_served(ctx: &RequestCtx, lease: &Lease, attempt: u32, status: u16, streamed: bool) {
    let skipped = lease.skipped();
    tracing::info!(
        request_id = %ctx.request_id,
        client = ctx.caller.client_name.as_deref().unwrap_or("-"),
        client_id_header = ctx.caller.attributed.as_deref().unwrap_or("-"),
        model = ctx.model.as_deref().unwrap_or("-"),
        key = lease.name(),
        attempt,
        status,
        streamed,
        skipped = %if skipped.is_empty() { String::new() } else { describe_skips(skipped) },
        ttfb_ms = ctx.started.elapsed().as_millis() as u64,
        "served"
    );
}
