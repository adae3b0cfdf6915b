//! One request's life: choose a credential, call upstream, classify the outcome, fail over
//! before commit (and, for a stream, until its first content event), stream after it. Knows `http` types but no server framework and no backend.

mod attempt;
mod batches;
pub mod ctx;
mod ledger;
pub mod outcome;
pub mod probe;
pub mod refresh;
mod retry_budget;
pub mod stream;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

pub use batches::{BatchListing, BatchOp};
pub use ctx::{CallKind, Caller, RequestCtx, Route};
use retry_budget::RetryBudget;
pub use stream::ByteStream;

use crate::accounting::Accountant;
use crate::config::UpstreamConfig;
use crate::pool::{self, KeyPool};
use crate::providers::Anthropic;
use crate::store::{self, Store};
use crate::types::{EpochMs, KeyId, Outcome, OutcomeClass};

#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

struct Inner {
    pool: KeyPool,
    accountant: Accountant,
    upstream: Anthropic,
    config: UpstreamConfig,
    budget: RetryBudget,
    store: Arc<dyn Store>,
    /// Keeps OAuth access tokens fresh; None where nothing may refresh (tests of the relay
    /// alone).
    refresher: Option<refresh::Refresher>,
}

pub enum ResponseBody {
    Full(Bytes),
    Stream(ByteStream),
}

/// What goes back to the client.
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: ResponseBody,
    pub served_by: Option<KeyId>,
}

/// An upstream answer read whole, kept so that when every attempt fails the client can get the
/// provider's own last words.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// One failed attempt, kept for the error the client sees and for the logs.
#[derive(Debug, Clone)]
pub struct AttemptFailure {
    pub key_id: KeyId,
    pub key_name: String,
    pub outcome: Outcome,
    /// Whose trouble it was, as the pool judged it.
    pub blame: pool::Blame,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No credential could even be tried (all cooling, disabled, full or none configured).
    #[error("no upstream credential is available")]
    NoKeyAvailable {
        retry_at: Option<EpochMs>,
        skipped: Vec<pool::Skip>,
        shortage: pool::Shortage,
        attempts: Vec<AttemptFailure>,
        configured: usize,
    },
    /// Every attempt failed with something worth retrying.
    #[error("all {} attempts failed", attempts.len())]
    AllAttemptsFailed {
        attempts: Vec<AttemptFailure>,
        /// The last upstream answer with a body (5xx/529), passed through as the provider said it.
        #[source]
        last: Option<Box<Answer>>,
        retry_at: Option<EpochMs>,
        /// Set when the loop ended because the pool had no credential left to try: what the
        /// credentials are out for.
        shortage: Option<pool::Shortage>,
    },
    #[error("no batch {id:?} was created through this gateway for this client")]
    BatchNotFound { id: String },
    #[error("the batch's credential {key:?} is no longer configured")]
    BatchKeyGone { key: String },
    #[error(transparent)]
    Store(#[from] store::Error),
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "upstream answered {}", self.status)
    }
}

impl std::error::Error for Answer {}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .finish()
    }
}

impl Error {
    /// The outcome classes of all attempts (for the client-facing status and logs).
    pub fn classes(&self) -> Vec<OutcomeClass> {
        match self {
            Self::NoKeyAvailable { attempts, .. } | Self::AllAttemptsFailed { attempts, .. } => {
                attempts.iter().map(|a| a.outcome.class).collect()
            }
            _ => Vec::new(),
        }
    }
}

impl Relay {
    pub fn new(
        pool: KeyPool,
        accountant: Accountant,
        upstream: Anthropic,
        config: UpstreamConfig,
        store: Arc<dyn Store>,
        refresher: Option<refresh::Refresher>,
    ) -> Self {
        let budget = RetryBudget::new(config.retry_budget_ratio, config.retry_budget_min_retries);
        Self {
            inner: Arc::new(Inner {
                pool,
                accountant,
                upstream,
                config,
                budget,
                store,
                refresher,
            }),
        }
    }

    pub fn pool(&self) -> &KeyPool {
        &self.inner.pool
    }
}
