//! Per-key rate limits as continuously refilling token buckets (§10), and the
//! `anthropic-ratelimit-*` headers (§3) that report them.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use jiff::Timestamp;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::Limits;
use crate::error::{ApiError, ErrorKind};

/// What unconfigured dimensions report (Tier 4 figures); they are never exhausted.
const UNLIMITED_RPM: u64 = 4_000;
const UNLIMITED_INPUT_TPM: u64 = 2_000_000;
const UNLIMITED_OUTPUT_TPM: u64 = 400_000;

/// The three per-minute dimensions, in the order a refusal names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dimension {
    Requests,
    InputTokens,
    OutputTokens,
}

impl Dimension {
    const ALL: [Dimension; 3] = [
        Dimension::Requests,
        Dimension::InputTokens,
        Dimension::OutputTokens,
    ];

    fn index(self) -> usize {
        self as usize
    }

    fn unit(self) -> &'static str {
        match self {
            Dimension::Requests => "requests",
            Dimension::InputTokens => "input tokens",
            Dimension::OutputTokens => "output tokens",
        }
    }
}

/// What one request takes from the buckets.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cost {
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
}

impl Cost {
    fn of(self, dimension: Dimension) -> f64 {
        match dimension {
            Dimension::Requests => 1.0,
            Dimension::InputTokens => self.input_tokens as f64,
            Dimension::OutputTokens => self.output_tokens as f64,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    capacity: f64,
    level: f64,
    updated: Instant,
}

impl Bucket {
    fn new(capacity: u64, now: Instant) -> Bucket {
        Bucket {
            capacity: capacity as f64,
            level: capacity as f64,
            updated: now,
        }
    }

    /// Capacity refills evenly over a minute.
    fn per_second(&self) -> f64 {
        self.capacity / 60.0
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.level = (self.level + elapsed * self.per_second()).min(self.capacity);
        self.updated = now;
    }

    /// Time until `need` is available; `None` when it never fits.
    fn wait_for(&self, need: f64) -> Option<Duration> {
        if need > self.capacity {
            return None;
        }
        let missing = (need - self.level).max(0.0);
        Some(Duration::from_secs_f64(missing / self.per_second()))
    }

    fn view(&self) -> View {
        View {
            limit: self.capacity as u64,
            remaining: self.level.floor() as u64,
            full_in: Duration::from_secs_f64((self.capacity - self.level) / self.per_second()),
        }
    }
}

/// The buckets of one key; `None` for unconfigured dimensions.
pub(crate) struct Buckets {
    limits: Limits,
    buckets: Mutex<[Option<Bucket>; 3]>,
}

impl Buckets {
    pub(crate) fn new(limits: Limits) -> Buckets {
        let buckets = Buckets {
            limits,
            buckets: Mutex::new([None; 3]),
        };
        buckets.refill_all();
        buckets
    }

    /// Back to full, as at start.
    pub(crate) fn refill_all(&self) {
        let now = Instant::now();
        let capacity = |limit: Option<u64>| limit.map(|limit| Bucket::new(limit, now));
        *self.buckets.lock() = [
            capacity(self.limits.rpm.map(u64::from)),
            capacity(self.limits.input_tpm),
            capacity(self.limits.output_tpm),
        ];
    }

    /// Takes `cost` from every configured bucket, or refuses without taking anything.
    pub(crate) fn admit(&self, cost: Cost) -> Result<Snapshot, Exceeded> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock();
        let mut hit = None;
        let mut wait = Duration::ZERO;
        for dimension in Dimension::ALL {
            let Some(bucket) = buckets[dimension.index()].as_mut() else {
                continue;
            };
            bucket.refill(now);
            let need = cost.of(dimension);
            if bucket.level >= need {
                continue;
            }
            hit.get_or_insert(dimension);
            // A request larger than the whole bucket never fits; ask for a minute.
            wait = wait.max(bucket.wait_for(need).unwrap_or(Duration::from_secs(60)));
        }
        if let Some(dimension) = hit {
            return Err(Exceeded {
                dimension,
                limit: buckets[dimension.index()].map_or(0, |b| b.capacity as u64),
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                snapshot: Snapshot::from_buckets(&buckets),
            });
        }
        for dimension in Dimension::ALL {
            if let Some(bucket) = buckets[dimension.index()].as_mut() {
                bucket.level -= cost.of(dimension);
            }
        }
        Ok(Snapshot::from_buckets(&buckets))
    }

    /// The current state without taking anything.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let now = Instant::now();
        let mut buckets = self.buckets.lock();
        for bucket in buckets.iter_mut().flatten() {
            bucket.refill(now);
        }
        Snapshot::from_buckets(&buckets)
    }
}

/// A refusal: the first dimension that did not fit and when the request would.
#[derive(Clone, Debug)]
pub(crate) struct Exceeded {
    pub(crate) dimension: Dimension,
    pub(crate) limit: u64,
    pub(crate) retry_after_secs: u64,
    pub(crate) snapshot: Snapshot,
}

impl Exceeded {
    /// For a scripted 429: `dimension` exhausted for `retry_after_secs`.
    pub(crate) fn scripted(
        snapshot: Snapshot,
        dimension: Dimension,
        retry_after_secs: u64,
    ) -> Exceeded {
        Exceeded {
            dimension,
            limit: snapshot.views[dimension.index()].limit,
            retry_after_secs,
            snapshot: snapshot.exhausted(dimension, Duration::from_secs(retry_after_secs)),
        }
    }

    /// 429 `rate_limit_error` with `retry-after` and the rate-limit headers.
    pub(crate) fn into_response(self, request_id: &str) -> Response {
        let snapshot = self.snapshot.clone();
        let mut response = self.into_error_response(request_id);
        snapshot.write_headers(response.headers_mut(), Timestamp::now());
        response
    }

    /// 429 `rate_limit_error` with `retry-after` but without the per-minute headers (an
    /// OAuth key reports the unified family instead).
    pub(crate) fn into_error_response(self, request_id: &str) -> Response {
        let mut response =
            ApiError::new(ErrorKind::RateLimitError, self.message()).into_response(request_id);
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(self.retry_after_secs),
        );
        response
    }

    fn message(&self) -> String {
        format!(
            "This request would exceed your organization's rate limit of {} {} per minute. \
             For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see \
             the response headers for current usage. Please reduce the prompt length or the \
             maximum tokens requested, or try again later.",
            thousands(self.limit),
            self.dimension.unit()
        )
    }
}

/// One dimension as the headers report it.
#[derive(Clone, Copy, Debug)]
struct View {
    limit: u64,
    remaining: u64,
    /// Until the bucket is full again.
    full_in: Duration,
}

impl View {
    fn unlimited(limit: u64) -> View {
        View {
            limit,
            remaining: limit,
            full_in: Duration::ZERO,
        }
    }
}

/// The rate-limit state reported on one response.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    views: [View; 3],
}

impl Snapshot {
    /// The state reported for requests without a key: everything unlimited.
    pub(crate) fn unlimited() -> Snapshot {
        Snapshot::from_buckets(&[None; 3])
    }

    fn from_buckets(buckets: &[Option<Bucket>; 3]) -> Snapshot {
        let unlimited = [UNLIMITED_RPM, UNLIMITED_INPUT_TPM, UNLIMITED_OUTPUT_TPM];
        let views = std::array::from_fn(|i| {
            buckets[i].map_or_else(|| View::unlimited(unlimited[i]), |b| b.view())
        });
        Snapshot { views }
    }

    /// `dimension` shows nothing left until `until` from now.
    fn exhausted(mut self, dimension: Dimension, until: Duration) -> Snapshot {
        let view = &mut self.views[dimension.index()];
        view.remaining = 0;
        view.full_in = until;
        self
    }

    /// Writes the requests, tokens, input-tokens and output-tokens triples. Token
    /// `remaining` values are rounded to the nearest thousand; `tokens-*` combines input
    /// and output (no workspace limit applies).
    pub(crate) fn write_headers(&self, headers: &mut HeaderMap, now: Timestamp) {
        let [requests, input, output] = self.views;
        let tokens = View {
            limit: input.limit + output.limit,
            remaining: input.remaining + output.remaining,
            full_in: input.full_in.max(output.full_in),
        };
        let reset = |view: View| reset_at(now, view.full_in);
        let groups = [
            (REQUESTS, requests, requests.remaining),
            (TOKENS, tokens, nearest_thousand(tokens.remaining)),
            (INPUT_TOKENS, input, nearest_thousand(input.remaining)),
            (OUTPUT_TOKENS, output, nearest_thousand(output.remaining)),
        ];
        for ([limit, left, reset_name], view, remaining) in groups {
            headers.insert(limit, HeaderValue::from(view.limit));
            headers.insert(left, HeaderValue::from(remaining));
            if let Ok(value) = HeaderValue::try_from(reset(view)) {
                headers.insert(reset_name, value);
            }
        }
    }
}

/// Whether `headers` already carry the rate-limit set (written by a refusal).
pub(crate) fn has_headers(headers: &HeaderMap) -> bool {
    headers.contains_key(REQUESTS[0])
}

type Names = [&'static str; 3];

const REQUESTS: Names = [
    "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
];
const TOKENS: Names = [
    "anthropic-ratelimit-tokens-limit",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
];
const INPUT_TOKENS: Names = [
    "anthropic-ratelimit-input-tokens-limit",
    "anthropic-ratelimit-input-tokens-remaining",
    "anthropic-ratelimit-input-tokens-reset",
];
const OUTPUT_TOKENS: Names = [
    "anthropic-ratelimit-output-tokens-limit",
    "anthropic-ratelimit-output-tokens-remaining",
    "anthropic-ratelimit-output-tokens-reset",
];

fn nearest_thousand(n: u64) -> u64 {
    (n + 500) / 1000 * 1000
}

/// RFC 3339 in whole seconds, rounded up: `2026-01-01T12:00:17Z`.
fn reset_at(now: Timestamp, full_in: Duration) -> String {
    let nanos = now.as_nanosecond() + full_in.as_nanos() as i128;
    let seconds =
        nanos.div_euclid(1_000_000_000) + i128::from(nanos.rem_euclid(1_000_000_000) != 0);
    i64::try_from(seconds)
        .ok()
        .and_then(|s| Timestamp::from_second(s).ok())
        .unwrap_or(now)
        .to_string()
}

/// `30000` → `30,000`, as refusal messages print limits.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
