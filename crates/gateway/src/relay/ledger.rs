//! Turning a request's life into its usage record. A record is drafted from the context when
//! the answer is known (or the stream ends) and handed to accounting, which prices it, counts
//! it in metrics and queues it for the ledger — without the request ever waiting.

use keyloop_wire::usage::Usage;

use super::{AttemptFailure, Relay, RequestCtx};
use crate::accounting::{FailedAttempt, RequestOutcome, UsageRecord};
use crate::pool::Lease;
use crate::types::OutcomeClass;

/// A record with everything known from the request; the caller fills in how it ended.
pub(super) fn draft(ctx: &RequestCtx, attempts: &[AttemptFailure]) -> UsageRecord {
    UsageRecord {
        request_id: ctx.request_id.to_string(),
        at: ctx.arrived,
        client_id: ctx.caller.client_id.as_deref().map(str::to_owned),
        client_name: ctx.caller.client_name.as_deref().map(str::to_owned),
        attributed: ctx.caller.attributed.clone(),
        key_id: None,
        key_name: None,
        provider: crate::accounting::Provider::Anthropic,
        route: ctx.route,
        requested_model: ctx.model.clone(),
        served_model: None,
        status: 0,
        outcome: RequestOutcome::UpstreamError,
        last_class: attempts.last().map(|a| a.outcome.class),
        attempts: attempts.iter().map(failed_attempt).collect(),
        usage: Usage::default(),
        cost_nanos: None,
        latency_ms: elapsed_ms(ctx),
        ttft_ms: None,
        streamed: ctx.stream,
        stop_reason: None,
        batch: false,
        speed: ctx.speed,
        session_moved: false,
    }
}

fn failed_attempt(failure: &AttemptFailure) -> FailedAttempt {
    FailedAttempt {
        key_id: failure.key_id.to_string(),
        key_name: failure.key_name.clone(),
        class: failure.outcome.class,
    }
}

pub(super) fn served_by(record: &mut UsageRecord, lease: &Lease, class: OutcomeClass) {
    record.key_id = Some(lease.key_id().to_string());
    record.key_name = Some(lease.name().to_owned());
    record.last_class = Some(class);
    record.session_moved = lease.moved();
}

pub(super) fn elapsed_ms(ctx: &RequestCtx) -> i64 {
    i64::try_from(ctx.started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

impl Relay {
    pub(super) fn settle(&self, record: UsageRecord) {
        self.inner.accountant.settle(record);
    }

    /// Settles the record of a call made for this request, unless the request records itself.
    pub(super) fn settle_for(&self, ctx: &RequestCtx, record: UsageRecord) {
        if ctx.recorded {
            self.settle(record);
        }
    }

    /// Records a request that failed as a whole; `status` is what the client was sent.
    pub fn record_failure(&self, ctx: &RequestCtx, error: &super::Error, status: u16) {
        use super::Error as E;
        let (attempts, outcome): (&[AttemptFailure], _) = match error {
            E::NoKeyAvailable { attempts, .. } => (attempts, RequestOutcome::NoCredential),
            E::AllAttemptsFailed { attempts, .. } => (attempts, RequestOutcome::UpstreamError),
            E::BatchNotFound { .. } | E::BatchKeyGone { .. } => (&[], RequestOutcome::ClientError),
            E::Store(_) => (&[], RequestOutcome::UpstreamError),
        };
        let mut record = draft(ctx, attempts);
        if let Some(last) = attempts.last() {
            record.key_id = Some(last.key_id.to_string());
            record.key_name = Some(last.key_name.clone());
        }
        record.status = status;
        record.outcome = outcome;
        self.settle(record);
    }
}
