//! One finished request, as the ledger keeps it: who, which credential, which model, what
//! happened, every failed attempt, tokens by kind, cost, and timings. Never a secret.

use keyloop_wire::anthropic::Speed;
use keyloop_wire::usage::Usage;

use crate::types::{EpochMs, OutcomeClass};

/// How a request ended, from the client's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestOutcome {
    /// Served (2xx).
    Success,
    /// The upstream refused the client's own request (4xx passed through).
    ClientError,
    /// Every attempt failed; the client got an error.
    UpstreamError,
    /// No credential could take the request.
    NoCredential,
    /// The client went away before the answer was complete.
    ClientCancelled,
    /// The stream failed after commit; the client got an error event.
    StreamCut,
}

impl RequestOutcome {
    pub const ALL: [RequestOutcome; 6] = [
        Self::Success,
        Self::ClientError,
        Self::UpstreamError,
        Self::NoCredential,
        Self::ClientCancelled,
        Self::StreamCut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::ClientError => "client_error",
            Self::UpstreamError => "upstream_error",
            Self::NoCredential => "no_credential",
            Self::ClientCancelled => "client_cancelled",
            Self::StreamCut => "stream_cut",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// Which API the request used (a low-cardinality label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    Messages,
    CountTokens,
    Complete,
    Models,
    Batches,
}

impl Route {
    pub const ALL: [Route; 5] = [
        Self::Messages,
        Self::CountTokens,
        Self::Complete,
        Self::Models,
        Self::Batches,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Messages => "messages",
            Self::CountTokens => "count_tokens",
            Self::Complete => "complete",
            Self::Models => "models",
            Self::Batches => "batches",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Which provider served the request (a low-cardinality label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    Anthropic,
}

impl Provider {
    pub const ALL: [Provider; 1] = [Self::Anthropic];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anthropic => "anthropic",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// An attempt that failed before another credential (or the error) took over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedAttempt {
    pub key_id: String,
    pub key_name: String,
    pub class: OutcomeClass,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRecord {
    pub request_id: String,
    /// When the request arrived.
    pub at: EpochMs,
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    /// The caller's own `X-Client-ID`, if given.
    pub attributed: Option<String>,
    /// The credential that served (or last failed) the request.
    pub key_id: Option<String>,
    pub key_name: Option<String>,
    pub provider: Provider,
    pub route: Route,
    pub requested_model: Option<String>,
    /// The model named in the answer.
    pub served_model: Option<String>,
    /// HTTP status the client received.
    pub status: u16,
    pub outcome: RequestOutcome,
    /// The classified outcome of the last attempt (None when none was made).
    pub last_class: Option<OutcomeClass>,
    pub attempts: Vec<FailedAttempt>,
    pub usage: Usage,
    /// Integer nano-dollars; None when the model has no price (counted, never taken as zero).
    pub cost_nanos: Option<i64>,
    pub latency_ms: i64,
    /// Time to the first content byte sent to the client.
    pub ttft_ms: Option<i64>,
    pub streamed: bool,
    pub stop_reason: Option<String>,
    /// Priced at the Message Batches rate.
    pub batch: bool,
    /// The request's `speed`: fast mode is priced at a multiple of list. (Where the answer
    /// says it ran, `usage.inference_geo`, is in `usage`.)
    pub speed: Speed,
    /// A sticky session's turn served by another credential than its pinned one (the pinned
    /// one was out): its prompt cache was likely missed.
    pub session_moved: bool,
}

impl UsageRecord {
    /// The request-log keyset cursor that pages past this record (`store::LogFilter::before`).
    pub fn cursor(&self) -> (EpochMs, String) {
        (self.at, self.request_id.clone())
    }
}

#[cfg(test)]
impl UsageRecord {
    /// A successful, priced, non-streamed request to `model` on credential `k1`, for tests.
    pub fn sample(model: &str) -> Self {
        Self {
            request_id: "req_kl_0000000001".to_owned(),
            at: 1_700_000_000_000,
            client_id: None,
            client_name: None,
            attributed: None,
            key_id: Some("k1".to_owned()),
            key_name: Some("primary".to_owned()),
            provider: Provider::Anthropic,
            route: Route::Messages,
            requested_model: Some(model.to_owned()),
            served_model: Some(model.to_owned()),
            status: 200,
            outcome: RequestOutcome::Success,
            last_class: Some(OutcomeClass::Success),
            attempts: Vec::new(),
            usage: Usage {
                input_tokens: 10,
                output_tokens: 20,
                ..Usage::default()
            },
            cost_nanos: Some(1_000),
            latency_ms: 30,
            ttft_ms: Some(8),
            streamed: false,
            stop_reason: Some("end_turn".to_owned()),
            batch: false,
            speed: Speed::Standard,
            session_moved: false,
        }
    }
}
