//! Microbenchmarks of what the ledger writer does to a batch of usage records before SQLite
//! sees it (`SqliteLedger::append_usage`): each record's `attempts` JSON, its roll-up counters,
//! the minute / hour / name maps of a batch, and the multi-row statements with their bound
//! values. SQLite itself is not timed here (the `ledger` bench does that). The batch is one
//! full writer batch of 500 realistic records (200 ms of traffic at 2,500 requests/s).
//! Run with `cargo bench -p keyloop --bench ledger_encode`; see `bench/README.md`.

use std::fmt;

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use keyloop::accounting::record::{FailedAttempt, Provider, RequestOutcome, Route, UsageRecord};
use keyloop::store::bench;
use keyloop::types::{EpochMs, OutcomeClass};
use keyloop_wire::anthropic::Speed;
use keyloop_wire::usage::Usage;

fn main() {
    divan::main();
}

/// The writer's batch: `recorder::Config::default().max_batch`.
const BATCH: usize = 500;
/// 2026-11-22 14:07:12.300 UTC: the batch lies inside one minute, as nearly every batch does
/// (it spans at most `max_delay`, 200 ms).
const START: EpochMs = 1_795_356_432_300;
const KEYS: u64 = 10;
const CLIENTS: u64 = 200;
/// (requested, served): the answer names the dated model id where the model has one.
const MODELS: [(&str, &str); 4] = [
    ("claude-sonnet-5-5", "claude-sonnet-5-5"),
    ("claude-haiku-4-5", "claude-haiku-4-5-20251001"),
    ("claude-opus-5-5", "claude-opus-5-5"),
    ("claude-haiku-5-5", "claude-haiku-5-5"),
];

/// Deterministic draws (splitmix64), so every run times the same batch.
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn failed_attempt(key: u64, class: OutcomeClass) -> FailedAttempt {
    FailedAttempt {
        key_id: format!("key_{key:02}"),
        key_name: format!("org-{}/key-{key:02}", key % 3),
        class,
    }
}

/// One writer batch, 200 ms of agent traffic: 80 % streamed (with a TTFT), prompt-cache reads
/// on 70 % and writes on 30 %, every request priced; 6 % succeeded after one failed attempt
/// (429 or 529); 1 % upstream errors (every attempt failed), 2 % cancelled by the client, 1 %
/// client errors. 10 credentials, 200 clients with skewed traffic (a few busy agents, a long
/// tail), each preferring one of four models; a quarter carry an `X-Client-ID`.
fn batch() -> Vec<UsageRecord> {
    let mut draw = Draws(0x5EED_0000_0000_0001);
    (0..BATCH)
        .map(|i| {
            let u = draw.unit();
            let client = ((u * u) * CLIENTS as f64) as u64;
            let model = if draw.below(100) < 80 {
                client as usize % MODELS.len()
            } else {
                draw.below(MODELS.len() as u64) as usize
            };
            let (requested, served) = MODELS[model];
            let key = draw.below(KEYS);
            let outcome = match draw.below(100) {
                0..96 => RequestOutcome::Success,
                96 => RequestOutcome::UpstreamError,
                97 => RequestOutcome::ClientError,
                _ => RequestOutcome::ClientCancelled,
            };
            let class = |draw: &mut Draws| {
                if draw.below(3) == 0 {
                    OutcomeClass::Overloaded
                } else {
                    OutcomeClass::RateLimited
                }
            };
            let attempts = match outcome {
                RequestOutcome::UpstreamError => vec![
                    failed_attempt((key + 1) % KEYS, class(&mut draw)),
                    failed_attempt(key, class(&mut draw)),
                ],
                RequestOutcome::Success if draw.below(100) < 6 => {
                    vec![failed_attempt((key + 1) % KEYS, class(&mut draw))]
                }
                _ => Vec::new(),
            };
            let streamed = draw.below(100) < 80;
            let output = 50 + draw.below(1_500);
            let mut usage = Usage {
                input_tokens: 200 + draw.below(4_000),
                output_tokens: output,
                cache_read_tokens: if draw.below(100) < 70 {
                    8_000 + draw.below(120_000)
                } else {
                    0
                },
                ..Usage::default()
            };
            if draw.below(100) < 30 {
                let one_hour = if draw.below(5) == 0 {
                    draw.below(2_000)
                } else {
                    0
                };
                usage.set_cache_writes(one_hour + draw.below(6_000), one_hour);
            }
            let served_ok = matches!(
                outcome,
                RequestOutcome::Success | RequestOutcome::ClientCancelled
            );
            UsageRecord {
                request_id: format!("req_kl_00b00700{i:012x}"),
                at: START + (i as EpochMs * 200) / BATCH as EpochMs,
                client_id: Some(format!("cl_{client:04}")),
                client_name: Some(format!("agent-{client:04}")),
                attributed: (draw.below(4) == 0).then(|| format!("worker-{}", draw.below(16))),
                key_id: Some(format!("key_{key:02}")),
                key_name: Some(format!("org-{}/key-{key:02}", key % 3)),
                provider: Provider::Anthropic,
                route: Route::Messages,
                requested_model: Some(requested.to_owned()),
                served_model: served_ok.then(|| served.to_owned()),
                status: match outcome {
                    RequestOutcome::Success => 200,
                    RequestOutcome::UpstreamError => 529,
                    RequestOutcome::ClientError => 400,
                    _ => 499,
                },
                outcome,
                last_class: Some(match outcome {
                    RequestOutcome::UpstreamError => attempts
                        .last()
                        .map_or(OutcomeClass::Overloaded, |a: &FailedAttempt| a.class),
                    RequestOutcome::ClientError => OutcomeClass::ClientError,
                    _ => OutcomeClass::Success,
                }),
                attempts,
                usage,
                cost_nanos: Some(draw.below(90_000_000) as i64),
                latency_ms: 400 + (draw.unit().powi(2) * 40_000.0) as i64 + output as i64 * 12,
                ttft_ms: streamed.then(|| 300 + (draw.unit().powi(2) * 4_000.0) as i64),
                streamed,
                stop_reason: served_ok.then(|| "end_turn".to_owned()),
                batch: false,
                speed: Speed::Standard,
                session_moved: false,
            }
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Attempts {
    None,
    One,
    Two,
}

impl fmt::Display for Attempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Attempts::None => "none (NULL)",
            Attempts::One => "one 429",
            Attempts::Two => "a 429 and a 529",
        })
    }
}

impl Attempts {
    const ALL: [Attempts; 3] = [Attempts::None, Attempts::One, Attempts::Two];

    fn list(self) -> Vec<FailedAttempt> {
        let n = match self {
            Attempts::None => 0,
            Attempts::One => 1,
            Attempts::Two => 2,
        };
        [
            failed_attempt(4, OutcomeClass::RateLimited),
            failed_attempt(7, OutcomeClass::Overloaded),
        ]
        .into_iter()
        .take(n)
        .collect()
    }
}

/// One record's `attempts` column: `[[key_id, key_name, class], …]` as JSON, NULL for none.
#[divan::bench(args = Attempts::ALL)]
fn attempts_json(bencher: Bencher, attempts: Attempts) {
    let attempts = attempts.list();
    bencher.bench(|| bench::attempts_json(black_box(&attempts)));
}

/// `fold` of each record of the batch into a fresh row of the 51 roll-up counters.
#[divan::bench]
fn fold(bencher: Bencher) {
    let batch = batch();
    bencher.counter(ItemsCount::new(BATCH)).bench(|| {
        for r in &batch {
            black_box(bench::fold(black_box(r)));
        }
    });
}

/// The batch's roll-up maps, as `append_usage` builds them: `fold` per record, then
/// `add_counters` into its row of each dimension (`Dim::value_of`) in the minute map; the hour
/// map from the minute rows; the credential and client names.
#[divan::bench]
fn rollups(bencher: Bencher) {
    let batch = batch();
    let (minutes, hours, names) = bench::rollups(&batch).rows();
    assert_eq!(minutes, hours, "the batch lies inside one minute");
    assert!(names > KEYS as usize);
    bencher
        .counter(ItemsCount::new(BATCH))
        .bench(|| bench::rollups(black_box(&batch)).rows());
}

/// The INSERT into `usage_records`: SQL text and 27 bound values per record (its attempts JSON
/// included), built and dropped.
#[divan::bench]
fn insert_statements(bencher: Bencher) {
    let batch = batch();
    bencher
        .counter(ItemsCount::new(BATCH))
        .bench(|| bench::insert_statements(black_box(&batch)));
}

/// The roll-up UPSERTs (minute and hour, 54 bound values per row) and the names UPSERT, from
/// the batch's maps, built and dropped. Counted per record of the batch.
#[divan::bench]
fn rollup_statements(bencher: Bencher) {
    let batch = batch();
    let rollups = bench::rollups(&batch);
    bencher
        .counter(ItemsCount::new(BATCH))
        .bench(|| bench::rollup_statements(black_box(&rollups)));
}

/// All of the above for one batch: what the writer spends on it besides SQLite.
#[divan::bench]
fn encode_batch(bencher: Bencher) {
    let batch = batch();
    bencher.counter(ItemsCount::new(BATCH)).bench(|| {
        let batch = black_box(&batch);
        let inserted = bench::insert_statements(batch);
        let rollups = bench::rollups(batch);
        inserted + bench::rollup_statements(&rollups)
    });
}
