//! One request's context: everything the relay needs to serve it, built once by the edge and
//! read by every phase.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method};
use tokio::time::Instant;

pub use crate::accounting::Route;
use crate::types::EpochMs;

/// Who is calling, as resolved by the edge's authentication.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The gateway client the key belongs to (None when client keys are not required).
    pub client_id: Option<Arc<str>>,
    pub client_name: Option<Arc<str>>,
    /// The `X-Client-ID` the caller gave for attribution.
    pub attributed: Option<String>,
}

/// Which kind of upstream call this is; decides how the answer is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// Messages or legacy completions: may stream, goes through the commit point.
    Generate,
    /// Small JSON answers (count_tokens, models, batch metadata).
    Query,
    /// Potentially large downloads (batch results): streamed through untouched.
    Download,
}

/// Built once by the edge and shared behind an `Arc`: a stream that fails before its first
/// content event resumes the request's failover loop from its body, long after the handler
/// has returned.
pub struct RequestCtx {
    pub request_id: Arc<str>,
    pub method: Method,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub kind: CallKind,
    /// Which API, for the ledger and metrics.
    pub route: Route,
    pub stream: bool,
    pub model: Option<String>,
    /// The body's `speed`, which prices fast mode.
    pub speed: keyloop_wire::anthropic::Speed,
    /// Conversation key for sticky selection.
    pub session: Option<String>,
    pub caller: Caller,
    /// Wall-clock arrival, for the ledger.
    pub arrived: EpochMs,
    /// Whether this call gets a usage record of its own (false for the calls a batch listing
    /// makes on the client's behalf: the listing itself is the request).
    pub recorded: bool,
    pub started: Instant,
    pub deadline: Instant,
}
