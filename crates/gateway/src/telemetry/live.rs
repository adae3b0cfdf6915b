//! The panel's live numbers: request rate, success rate, tokens per second, latency and time to
//! first token quantiles, and failures by class over the last minute.
//!
//! Fed by the accountant as each request is settled: one short lock, a few additions and a
//! push onto a bounded ring, so the request path pays no copy of the record. The window keeps
//! per-second counters and the latencies of the last minute (at most `MAX_SAMPLES`, the
//! newest), so quantiles are exact for everything it holds.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;
use utoipa::ToSchema;

use crate::accounting::{RequestOutcome, UsageRecord};
use crate::store::FAILURE_CLASSES;
use crate::types::EpochMs;

pub const WINDOW_S: usize = 60;
const MAX_SAMPLES: usize = 8192;

#[derive(Clone, Copy, Default)]
struct Slot {
    second: i64,
    requests: u64,
    success: u64,
    tokens: u64,
    failures: [u64; FAILURE_CLASSES.len()],
}

#[derive(Clone, Copy)]
struct Sample {
    at: EpochMs,
    latency_ms: i64,
    ttft_ms: Option<i64>,
}

struct Window {
    slots: [Slot; WINDOW_S],
    samples: VecDeque<Sample>,
}

/// The last minute of traffic. Cheap to clone.
#[derive(Clone)]
pub struct LiveWindow {
    inner: Arc<Mutex<Window>>,
}

/// The live numbers over the last `window_s` seconds.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq)]
pub struct LiveStats {
    pub window_s: u32,
    pub requests: u64,
    pub requests_per_s: f64,
    /// Successful requests over all finished ones; null when there were none.
    pub success_rate: Option<f64>,
    /// Input, output and cache tokens together.
    pub tokens_per_s: f64,
    pub latency_p50_ms: Option<i64>,
    pub latency_p95_ms: Option<i64>,
    pub ttft_p50_ms: Option<i64>,
    pub ttft_p95_ms: Option<i64>,
    /// Failed attempts by class (`rate_limited`, `overloaded`, …), including those a failover
    /// hid from the client.
    pub errors_by_class: BTreeMap<&'static str, u64>,
}

impl Default for LiveWindow {
    fn default() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Window {
                slots: [Slot::default(); WINDOW_S],
                samples: VecDeque::new(),
            })),
        }
    }
}

impl LiveWindow {
    pub fn add(&self, record: &UsageRecord, now: EpochMs) {
        let second = now.div_euclid(1000);
        let usage = &record.usage;
        let tokens = usage.input_tokens
            + usage.output_tokens
            + usage.cache_read_tokens
            + usage.cache_write_tokens;
        let mut w = self.inner.lock();
        let slot = &mut w.slots[second.rem_euclid(WINDOW_S as i64) as usize];
        if slot.second != second {
            *slot = Slot {
                second,
                ..Slot::default()
            };
        }
        slot.requests += 1;
        slot.success += u64::from(record.outcome == RequestOutcome::Success);
        slot.tokens += tokens;
        for attempt in &record.attempts {
            if let Some(i) = FAILURE_CLASSES.iter().position(|c| *c == attempt.class) {
                slot.failures[i] += 1;
            }
        }
        if w.samples.len() == MAX_SAMPLES {
            w.samples.pop_front();
        }
        w.samples.push_back(Sample {
            at: now,
            latency_ms: record.latency_ms,
            ttft_ms: record.ttft_ms,
        });
    }

    pub fn stats(&self, now: EpochMs) -> LiveStats {
        let first_second = now.div_euclid(1000) - WINDOW_S as i64 + 1;
        let since = first_second * 1000;
        let (mut requests, mut success, mut tokens) = (0, 0, 0);
        let mut failures = [0u64; FAILURE_CLASSES.len()];
        let (mut latencies, mut ttfts) = (Vec::new(), Vec::new());
        {
            let mut w = self.inner.lock();
            for slot in w.slots.iter().filter(|s| s.second >= first_second) {
                requests += slot.requests;
                success += slot.success;
                tokens += slot.tokens;
                for (total, n) in failures.iter_mut().zip(slot.failures) {
                    *total += n;
                }
            }
            while w.samples.front().is_some_and(|s| s.at < since) {
                w.samples.pop_front();
            }
            for s in &w.samples {
                latencies.push(s.latency_ms);
                ttfts.extend(s.ttft_ms);
            }
        }
        let per_s = |n: u64| n as f64 / WINDOW_S as f64;
        LiveStats {
            window_s: WINDOW_S as u32,
            requests,
            requests_per_s: per_s(requests),
            success_rate: (requests > 0).then(|| success as f64 / requests as f64),
            tokens_per_s: per_s(tokens),
            latency_p50_ms: quantile(&mut latencies, 0.50),
            latency_p95_ms: quantile(&mut latencies, 0.95),
            ttft_p50_ms: quantile(&mut ttfts, 0.50),
            ttft_p95_ms: quantile(&mut ttfts, 0.95),
            errors_by_class: FAILURE_CLASSES
                .iter()
                .zip(failures)
                .filter(|(_, n)| *n > 0)
                .map(|(class, n)| (class.as_str(), n))
                .collect(),
        }
    }
}

/// The nearest-rank quantile.
fn quantile(values: &mut [i64], q: f64) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    let (_, value, _) = values.select_nth_unstable(rank - 1);
    Some(*value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::FailedAttempt;
    use crate::types::OutcomeClass;

    fn record(outcome: RequestOutcome, latency_ms: i64, tokens: u64) -> UsageRecord {
        let mut r = UsageRecord::sample("claude-sonnet-5-5");
        r.usage.output_tokens = 0;
        r.outcome = outcome;
        r.latency_ms = latency_ms;
        r.ttft_ms = Some(latency_ms / 2);
        r.usage.input_tokens = tokens;
        r
    }

    #[test]
    fn counts_the_last_minute_only() {
        let live = LiveWindow::default();
        let t0 = 1_000_000_000;
        live.add(&record(RequestOutcome::Success, 100, 10), t0);
        for i in 0..9 {
            live.add(
                &record(RequestOutcome::Success, 10 * (i + 1), 5),
                t0 + 30_000,
            );
        }
        let mut failed = record(RequestOutcome::UpstreamError, 500, 0);
        failed.attempts = vec![
            FailedAttempt {
                key_id: "k".into(),
                key_name: "k".into(),
                class: OutcomeClass::RateLimited,
            };
            2
        ];
        live.add(&failed, t0 + 30_000);

        let at_30s = live.stats(t0 + 30_500);
        assert_eq!(at_30s.requests, 11);
        assert_eq!(at_30s.success_rate, Some(10.0 / 11.0));
        assert_eq!(at_30s.errors_by_class.get("rate_limited"), Some(&2));

        // A minute after t0 its request has left the window.
        let later = live.stats(t0 + 60_000);
        assert_eq!(later.requests, 10);
        assert_eq!(later.tokens_per_s, 45.0 / 60.0);
        // Latencies 10..=90 and 500: the median is 50, the 95th the slowest.
        assert_eq!(later.latency_p50_ms, Some(50));
        assert_eq!(later.latency_p95_ms, Some(500));
        assert_eq!(later.ttft_p50_ms, Some(25));

        let empty = live.stats(t0 + 200_000);
        assert_eq!(empty.requests, 0);
        assert_eq!(empty.success_rate, None);
        assert_eq!(empty.latency_p50_ms, None);
    }
}
