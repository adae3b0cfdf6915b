//! The failover loop: at most `max_attempts` distinct credentials, within the request's
//! deadline and the global retry budget. Nothing is retried once the client has seen a byte.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::HeaderMap;
use tokio::time::Instant;

use super::ledger;
use super::outcome::{classify, classify_transport};
use super::stream::{self, Carriage, Relaying};
use super::{Answer, AttemptFailure, CallKind, Error, Relay, RequestCtx, Response, ResponseBody};
use crate::accounting::{RequestOutcome, Route};
use crate::pool::{self, Lease, Pick};
use crate::providers::anthropic::{Credential, client_response_headers};
use crate::types::{KeyId, Outcome, OutcomeClass, now_ms};

enum Attempted {
    Served(Response),
    Failed(AttemptFailure, Option<Box<Answer>>),
}

impl Relay {
    /// Serves a request from the pool, failing over between credentials before commit.
    pub async fn forward(&self, ctx: &RequestCtx) -> Result<Response, Error> {
        let inner = &self.inner;
        let mut tried: Vec<KeyId> = Vec::new();
        // Limits are per organisation: after a 429, keys billing to the same one come last.
        let mut avoid_groups: Vec<std::sync::Arc<str>> = Vec::new();
        let mut attempts: Vec<AttemptFailure> = Vec::new();
        let mut last: Option<Box<Answer>> = None;
        let mut pool_retry_at = None;
        inner.budget.deposit(now_ms());
        for n in 0..inner.config.max_attempts {
            if n > 0 {
                if Instant::now() >= ctx.deadline {
                    break;
                }
                if !inner.budget.try_withdraw(now_ms()) {
                    tracing::warn!(request_id = %ctx.request_id, "retry budget exhausted; not failing over");
                    break;
                }
            }
            let pick = Pick {
                session: ctx.session.as_deref(),
                exclude: &tried,
                avoid_groups: &avoid_groups,
            };
            let lease = match inner.pool.acquire(&pick, now_ms()) {
                Ok(lease) => lease,
                Err(pool::Error::NoKeyAvailable { retry_at, skipped }) => {
                    if attempts.is_empty() {
                        tracing::warn!(
                            request_id = %ctx.request_id,
                            skipped = %describe_skips(&skipped),
                            "no credential available"
                        );
                        return Err(Error::NoKeyAvailable {
                            retry_at,
                            skipped,
                            attempts,
                            configured: inner.pool.len(),
                        });
                    }
                    pool_retry_at = retry_at;
                    break;
                }
            };
            tried.push(lease.key_id().clone());
            let group = lease.group().cloned();
            match self.attempt(ctx, lease, n + 1, &attempts).await {
                Attempted::Served(response) => return Ok(response),
                Attempted::Failed(failure, answer) => {
                    if failure.outcome.class == OutcomeClass::RateLimited
                        && let Some(group) = group
                        && !avoid_groups.contains(&group)
                    {
                        avoid_groups.push(group);
                    }
                    tracing::warn!(
                        request_id = %ctx.request_id,
                        key = %failure.key_name,
                        outcome = failure.outcome.class.as_str(),
                        detail = %failure.detail,
                        "attempt failed"
                    );
                    attempts.push(failure);
                    if answer.is_some() {
                        last = answer;
                    }
                }
            }
        }
        let retry_at = soonest(pool_retry_at, &attempts);
        Err(Error::AllAttemptsFailed {
            attempts,
            last,
            retry_at,
        })
    }

    /// Serves a request with one named credential and no failover (batch follow-ups, which
    /// only the credential that created the batch can see).
    pub(super) async fn forward_pinned(
        &self,
        ctx: &RequestCtx,
        key: &KeyId,
    ) -> Result<Response, Error> {
        let lease = self
            .inner
            .pool
            .lease_key(key)
            .ok_or_else(|| Error::BatchKeyGone {
                key: key.to_string(),
            })?;
        match self.attempt(ctx, lease, 1, &[]).await {
            Attempted::Served(response) => Ok(response),
            Attempted::Failed(failure, answer) => Err(Error::AllAttemptsFailed {
                retry_at: failure.outcome.retry_at_ms,
                attempts: vec![failure],
                last: answer,
            }),
        }
    }

    /// One upstream call. `prior` are this request's failed attempts so far (for the record).
    async fn attempt(
        &self,
        ctx: &RequestCtx,
        lease: Lease,
        number: u32,
        prior: &[AttemptFailure],
    ) -> Attempted {
        let inner = &self.inner;
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
                    secret: lease.secret(),
                },
                timeout,
            )
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                let outcome = classify_transport(&e);
                return self.failed(lease, outcome, e.to_string(), None);
            }
        };
        let status = response.status();
        let headers = response.headers().clone();

        if status.is_success() && ctx.kind == CallKind::Generate && is_event_stream(&headers) {
            let head = classify(status, &headers, b"", now_ms());
            let mut relaying = Relaying::new(
                Box::pin(response.bytes_stream()),
                Carriage {
                    lease,
                    pool: inner.pool.clone(),
                    head,
                    request_id: ctx.request_id.clone(),
                    idle: inner.config.stream_idle_timeout,
                    started: ctx.started,
                    record: ledger::draft(ctx, prior),
                    accountant: inner.accountant.clone(),
                },
            );
            return match relaying
                .hold(inner.config.first_event_hold, ctx.deadline)
                .await
            {
                Ok(()) => {
                    let served_by = relaying.lease().map(|l| l.key_id().clone());
                    if let Some(lease) = relaying.lease() {
                        log_served(ctx, lease, number, status.as_u16(), true);
                    }
                    Attempted::Served(Response {
                        status,
                        headers: client_response_headers(&headers),
                        body: ResponseBody::Stream(relaying.into_body()),
                        served_by,
                    })
                }
                Err(failure) => {
                    let key_id = relaying.lease().map(|l| l.key_id().clone());
                    let key_name = relaying
                        .lease()
                        .map(|l| l.name().to_owned())
                        .unwrap_or_default();
                    relaying.abandon(&failure.outcome);
                    Attempted::Failed(
                        AttemptFailure {
                            key_id: key_id.unwrap_or_else(|| KeyId::new("unknown")),
                            key_name,
                            outcome: failure.outcome,
                            detail: failure.detail,
                        },
                        None,
                    )
                }
            };
        }

        if status.is_success() && ctx.kind == CallKind::Download {
            let outcome = classify(status, &headers, b"", now_ms());
            inner.pool.report(&lease, &outcome, now_ms());
            log_served(ctx, &lease, number, status.as_u16(), true);
            let mut record = ledger::draft(ctx, prior);
            ledger::served_by(&mut record, &lease, outcome.class);
            record.status = status.as_u16();
            record.outcome = RequestOutcome::Success;
            record.ttft_ms = Some(record.latency_ms);
            self.settle_for(ctx, record);
            let served_by = Some(lease.key_id().clone());
            return Attempted::Served(Response {
                status,
                headers: client_response_headers(&headers),
                body: ResponseBody::Stream(stream::passthrough(
                    Box::pin(response.bytes_stream()),
                    lease,
                )),
                served_by,
            });
        }

        let body = match read_bounded(response, inner.config.response_limit, ctx.deadline).await {
            Ok(body) => body,
            Err(class) => {
                let detail = format!("reading the {} body failed", status.as_u16());
                return self.failed(lease, Outcome::of(class), detail, None);
            }
        };
        let outcome = classify(status, &headers, &body, now_ms());
        inner.pool.report(&lease, &outcome, now_ms());
        match outcome.class {
            OutcomeClass::Success | OutcomeClass::ClientError => {
                log_served(ctx, &lease, number, status.as_u16(), false);
                self.settle_buffered(ctx, prior, &lease, status.as_u16(), &outcome, &body);
                Attempted::Served(Response {
                    status,
                    headers: client_response_headers(&headers),
                    body: ResponseBody::Full(body),
                    served_by: Some(lease.key_id().clone()),
                })
            }
            _ => {
                let failure = AttemptFailure {
                    key_id: lease.key_id().clone(),
                    key_name: lease.name().to_owned(),
                    outcome,
                    detail: format!("upstream answered {}", status.as_u16()),
                };
                Attempted::Failed(
                    failure,
                    Some(Box::new(Answer {
                        status,
                        headers: client_response_headers(&headers),
                        body,
                    })),
                )
            }
        }
    }

    /// The record of an answer read whole: usage from the Message body when it has one.
    fn settle_buffered(
        &self,
        ctx: &RequestCtx,
        prior: &[AttemptFailure],
        lease: &Lease,
        status: u16,
        outcome: &Outcome,
        body: &[u8],
    ) {
        let mut record = ledger::draft(ctx, prior);
        ledger::served_by(&mut record, lease, outcome.class);
        record.status = status;
        record.ttft_ms = Some(record.latency_ms);
        if outcome.class == OutcomeClass::Success {
            record.outcome = RequestOutcome::Success;
            if ctx.route == Route::Messages
                && let Some(summary) = keyloop_wire::anthropic::summarize_message(body)
            {
                record.usage = summary.usage;
                record.served_model = summary.model;
                record.stop_reason = summary.stop_reason;
            }
        } else {
            record.outcome = RequestOutcome::ClientError;
        }
        self.settle_for(ctx, record);
    }

    fn failed(
        &self,
        lease: Lease,
        outcome: Outcome,
        detail: String,
        answer: Option<Box<Answer>>,
    ) -> Attempted {
        self.inner.pool.report(&lease, &outcome, now_ms());
        Attempted::Failed(
            AttemptFailure {
                key_id: lease.key_id().clone(),
                key_name: lease.name().to_owned(),
                outcome,
                detail,
            },
            answer,
        )
    }
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// Reads a whole (bounded) body before the client sees a status line, so a body cut half-way
/// can still fail over and never reaches the client as a 200.
async fn read_bounded(
    response: reqwest::Response,
    limit: usize,
    deadline: Instant,
) -> Result<Bytes, OutcomeClass> {
    let mut body = BytesMut::new();
    let mut chunks = response.bytes_stream();
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

fn soonest(
    pool_retry_at: Option<crate::types::EpochMs>,
    attempts: &[AttemptFailure],
) -> Option<crate::types::EpochMs> {
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
