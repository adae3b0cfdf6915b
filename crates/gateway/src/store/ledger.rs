//! The usage ledger: the durable request log and its per-minute and per-hour roll-ups.
//!
//! The ledger writer appends batches of [`UsageRecord`]s; the admin API and the CLI read the log
//! (newest first, keyset-paged) and the roll-ups (time series and group-by). Like the rest of
//! `store`, it keeps what it is given: pricing, attribution and retention policy are decided by
//! the callers.
//!
//! Contract shared by every backend:
//! - `request_id` is unique. Appending a record whose `request_id` is already stored (in an
//!   earlier batch or earlier in the same batch) is a no-op for that record: it is neither stored
//!   again nor folded into the roll-ups. A writer that does not know whether a batch committed
//!   may append it again.
//! - A batch is one transaction: on error nothing of it is visible, not a record, not a roll-up
//!   increment.
//! - Token counts above `i64::MAX` are stored as `i64::MAX` (SQL integers are signed).
//! - Roll-up dimensions: model = served model, else requested model, else none; credential =
//!   `key_id`; client = `client_id`. Failed attempts are counted from `UsageRecord::attempts`
//!   (the classes that can fail, [`FAILURE_CLASSES`]); `last_class` is not counted again.
//! - Roll-ups are kept per dimension, not per combination: a record adds to one row per bucket
//!   for each of all, model, credential and client. So a group-by reads one row per bucket and
//!   group whatever the traffic mix, and there is no group-by over two dimensions at once (model
//!   × client): that is a question for the request log.

use async_trait::async_trait;

use super::Result;
use crate::accounting::record::{RequestOutcome, UsageRecord};
use crate::types::{EpochMs, OutcomeClass};

pub const MINUTE_MS: EpochMs = 60_000;
pub const HOUR_MS: EpochMs = 3_600_000;

/// Upper bounds (inclusive, ms) of the latency and TTFT histogram buckets; one more bucket holds
/// everything above the last bound.
pub const LATENCY_BOUNDS_MS: [i64; 13] = [
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
];

/// Number of histogram buckets: one per bound plus the overflow bucket.
pub const HISTOGRAM_BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// The attempt outcomes counted in [`RollupRow::attempt_failures_by_class`], in that order.
pub const FAILURE_CLASSES: [OutcomeClass; 7] = [
    OutcomeClass::RateLimited,
    OutcomeClass::Overloaded,
    OutcomeClass::ServerError,
    OutcomeClass::Timeout,
    OutcomeClass::ConnectError,
    OutcomeClass::InvalidCredential,
    OutcomeClass::BillingExhausted,
];

#[async_trait]
pub trait Ledger: Send + Sync + 'static {
    /// Inserts the records and folds them into the per-minute and per-hour roll-ups, in ONE
    /// transaction (BEGIN IMMEDIATE). Returns only after COMMIT, so a returned batch survives
    /// kill -9. Records whose `request_id` is already stored are skipped (see the module docs).
    async fn append_usage(&self, records: &[UsageRecord]) -> Result<()>;
    /// The request log, newest first (`at` descending, then the later appended first), with
    /// filters and keyset pagination.
    async fn usage_log(&self, filter: &LogFilter) -> Result<Vec<UsageRow>>;
    /// Time series / group-by over the roll-ups (see [`RollupQuery`] for which table answers).
    async fn rollup(&self, query: &RollupQuery) -> Result<Vec<RollupRow>>;
    /// Retention: deletes raw records and roll-up rows older than the given times. Deletes in
    /// short transactions so the writer is never blocked for long.
    async fn purge(&self, cut: &Retention) -> Result<Purged>;
    async fn usage_count(&self) -> Result<i64>;
    /// `PRAGMA integrity_check` == "ok".
    async fn integrity_ok(&self) -> Result<bool>;
}

/// Which part of the request log to read. Every filter is optional; `model` matches either the
/// served or the requested model. Times: `since` inclusive, `until` exclusive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFilter {
    pub since: Option<EpochMs>,
    pub until: Option<EpochMs>,
    pub client_id: Option<String>,
    pub key_id: Option<String>,
    pub model: Option<String>,
    pub outcome: Option<RequestOutcome>,
    /// Page size; at most [`LogFilter::MAX_LIMIT`] rows are returned whatever is asked.
    pub limit: u32,
    /// Keyset cursor `(at, request_id)`: only rows after this one in the log's order (newest
    /// `at` first, the later appended first within a millisecond), i.e. the
    /// [`UsageRow::cursor`] of the last row of the previous page.
    pub before: Option<(EpochMs, String)>,
}

impl LogFilter {
    pub const MAX_LIMIT: u32 = 1000;
    pub const DEFAULT_LIMIT: u32 = 100;
}

impl Default for LogFilter {
    fn default() -> Self {
        Self {
            since: None,
            until: None,
            client_id: None,
            key_id: None,
            model: None,
            outcome: None,
            limit: Self::DEFAULT_LIMIT,
            before: None,
        }
    }
}

/// One stored request: the record exactly as it was appended.
pub type UsageRow = UsageRecord;

/// The width of a roll-up bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bucket {
    Minute,
    Hour,
    /// One bucket for the whole range.
    Total,
}

/// The dimension rows are split by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupBy {
    None,
    /// Served model, else requested model.
    Model,
    /// `key_id`.
    Credential,
    /// `client_id`.
    Client,
}

/// A roll-up read. `since` inclusive, `until` exclusive; None leaves that side open.
///
/// Source and edges:
/// - `Minute`: the minute table; every minute overlapping the range is included whole.
/// - `Hour`: the hour table; every hour overlapping the range is included whole.
/// - `Total`: exact to the minute. Whole hours inside the range come from the hour table, the
///   partial hours at its edges from the minute table (every minute overlapping the range,
///   whole). So once minute rows are purged, the edges of an old range that is not hour-aligned
///   are missing: align such ranges to hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RollupQuery {
    pub since: Option<EpochMs>,
    pub until: Option<EpochMs>,
    pub bucket: Bucket,
    pub group_by: GroupBy,
}

/// Counts of values per histogram bucket ([`LATENCY_BOUNDS_MS`], then the overflow bucket),
/// and their sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    pub counts: [u64; HISTOGRAM_BUCKETS],
    pub sum_ms: i64,
}

impl Histogram {
    /// The bucket a value falls in: the first whose bound is >= the value.
    pub fn bucket_of(value_ms: i64) -> usize {
        LATENCY_BOUNDS_MS
            .iter()
            .position(|&bound| value_ms <= bound)
            .unwrap_or(LATENCY_BOUNDS_MS.len())
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn mean_ms(&self) -> Option<f64> {
        let n = self.count();
        (n > 0).then(|| self.sum_ms as f64 / n as f64)
    }

    /// The `q` quantile (0..=1), interpolated linearly inside its bucket (the first bucket starts
    /// at 0). A quantile in the overflow bucket is reported as the last bound, as Prometheus does.
    /// None when the histogram is empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        for (i, &n) in self.counts.iter().enumerate() {
            if n > 0 && (below + n) as f64 >= rank {
                let lower = if i == 0 { 0 } else { LATENCY_BOUNDS_MS[i - 1] } as f64;
                let Some(&upper) = LATENCY_BOUNDS_MS.get(i) else {
                    return Some(lower);
                };
                let into = ((rank - below as f64) / n as f64).max(0.0);
                return Some(lower + (upper as f64 - lower) * into);
            }
            below += n;
        }
        Some(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1] as f64)
    }
}

/// One bucket of one group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RollupRow {
    /// None for `Bucket::Total`.
    pub bucket_start: Option<EpochMs>,
    /// Model id, key id or client id; None for `GroupBy::None` and for the rows of requests
    /// that had no model, credential or client.
    pub group: Option<String>,
    /// The latest name seen for the key or client id; None for models.
    pub group_name: Option<String>,
    pub requests: u64,
    /// Requests per outcome, in [`RequestOutcome::ALL`] order.
    pub by_outcome: [u64; 6],
    /// Failed attempts per class, in [`FAILURE_CLASSES`] order.
    pub attempt_failures_by_class: [u64; 7],
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_5m_tokens: u64,
    pub cache_write_1h_tokens: u64,
    /// The priced part: the sum of the records' known costs, nano-dollars.
    pub cost_nanos: i64,
    /// Requests without a price (their cost is unknown, not zero).
    pub unpriced_requests: u64,
    pub latency: Histogram,
    /// Only requests that had a first token.
    pub ttft: Histogram,
}

impl RollupRow {
    pub fn outcome_count(&self, outcome: RequestOutcome) -> u64 {
        RequestOutcome::ALL
            .iter()
            .position(|&o| o == outcome)
            .map_or(0, |i| self.by_outcome[i])
    }

    pub fn attempt_failures(&self, class: OutcomeClass) -> u64 {
        FAILURE_CLASSES
            .iter()
            .position(|&c| c == class)
            .map_or(0, |i| self.attempt_failures_by_class[i])
    }

    pub fn cache_write_tokens(&self) -> u64 {
        self.cache_write_5m_tokens + self.cache_write_1h_tokens
    }

    pub fn p50_latency_ms(&self) -> Option<f64> {
        self.latency.quantile_ms(0.50)
    }

    pub fn p95_latency_ms(&self) -> Option<f64> {
        self.latency.quantile_ms(0.95)
    }

    pub fn p50_ttft_ms(&self) -> Option<f64> {
        self.ttft.quantile_ms(0.50)
    }

    pub fn p95_ttft_ms(&self) -> Option<f64> {
        self.ttft.quantile_ms(0.95)
    }
}

/// Retention cut-offs: rows strictly older than each time are deleted (`EpochMs::MIN` keeps all).
/// Raw records by `at`, roll-up rows by `bucket_start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub raw_before: EpochMs,
    pub minute_before: EpochMs,
    pub hour_before: EpochMs,
}

/// How many rows a purge deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub raw: u64,
    pub minute: u64,
    pub hour: u64,
}
