//! Usage ledger benchmark: fills a temp SQLite file through `Ledger::append_usage` (batches of
//! 1,000, as the ledger writer does), then times the dashboard's roll-up reads and request-log
//! pages. Run with `cargo bench -p keyloop --bench ledger`; `LEDGER_BENCH_RECORDS` sets the
//! number of records (default 5,000,000); `LEDGER_BENCH_DB=/path/ledger.db` writes the file there
//! and keeps it (for `sqlite3` and `EXPLAIN QUERY PLAN`). See `bench/README.md`.

use std::time::{Duration, Instant};

use keyloop::accounting::record::{FailedAttempt, RequestOutcome, Route, UsageRecord};
use keyloop::store::{Bucket, GroupBy, LogFilter, RollupQuery, UsageRow, open_sqlite};
use keyloop::types::{EpochMs, OutcomeClass};
use keyloop_wire::anthropic::Speed;
use keyloop_wire::usage::Usage;

const DEFAULT_RECORDS: u64 = 5_000_000;
const BATCH: u64 = 1_000;
const RUNS: usize = 5;
const MINUTE: EpochMs = 60_000;
const HOUR: EpochMs = 60 * MINUTE;
const DAY: EpochMs = 24 * HOUR;
const SPAN: EpochMs = 7 * DAY;
/// 2026-11-14 00:23:17 UTC: the data (and so "now") is deliberately not hour-aligned, as a
/// dashboard's "last 24 h" never is.
const START: EpochMs = 1_795_091_397_000;
const NOW: EpochMs = START + SPAN;

const MODELS: usize = 20;
const KEYS: usize = 10;
const CLIENTS: usize = 200;

fn main() {
    let records: u64 = std::env::var("LEDGER_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(DEFAULT_RECORDS);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(run(records));
}

async fn run(records: u64) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = match std::env::var_os("LEDGER_BENCH_DB") {
        Some(path) => std::path::PathBuf::from(path),
        None => dir.path().join("ledger.db"),
    };
    assert!(
        !path.exists(),
        "{} exists; the bench needs a new file",
        path.display()
    );
    let stores = open_sqlite(&path).await.expect("open the ledger");
    let ledger = stores.ledger.as_ref();

    println!(
        "# ledger bench: {records} records over 7 days, {MODELS} models, {KEYS} credentials, \
         {CLIENTS} clients, batches of {BATCH}"
    );
    let mut traffic = Generator::new(records);
    let started = Instant::now();
    let mut batch_times = Vec::with_capacity((records / BATCH + 1) as usize);
    let mut done = 0;
    let mut reported = Instant::now();
    while done < records {
        let n = BATCH.min(records - done);
        let batch: Vec<UsageRecord> = (0..n).map(|_| traffic.next()).collect();
        let t = Instant::now();
        ledger.append_usage(&batch).await.expect("append a batch");
        batch_times.push(t.elapsed());
        done += n;
        if reported.elapsed() > Duration::from_secs(30) {
            reported = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "  {done}/{records} in {secs:.0} s ({:.0} records/s)",
                done as f64 / secs
            );
        }
    }
    let elapsed = started.elapsed();
    batch_times.sort();
    let size = file_size(&path);
    println!();
    println!("## Insert");
    println!();
    println!(
        "| records | time | records/s | batch p50 | batch p99 | batch max | file (db + wal) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {records} | {:.1} s | {:.0} | {} | {} | {} | {:.2} GB |",
        elapsed.as_secs_f64(),
        records as f64 / elapsed.as_secs_f64(),
        ms(pct(&batch_times, 0.50)),
        ms(pct(&batch_times, 0.99)),
        ms(*batch_times.last().unwrap_or(&Duration::ZERO)),
        size as f64 / 1e9,
    );

    println!();
    println!("## Roll-up reads (median of {RUNS}; \"now\" = end of data, not hour-aligned)");
    println!();
    println!("| range | bucket | group by | rows | median | min | max |");
    println!("|---|---|---|---:|---:|---:|---:|");
    let plans: [(&str, EpochMs, &[Bucket]); 3] = [
        ("1 h", HOUR, &[Bucket::Minute, Bucket::Hour, Bucket::Total]),
        ("24 h", DAY, &[Bucket::Minute, Bucket::Hour, Bucket::Total]),
        ("7 d", SPAN, &[Bucket::Hour, Bucket::Total]),
    ];
    for (label, range, buckets) in plans {
        for &bucket in buckets {
            for group_by in [
                GroupBy::None,
                GroupBy::Model,
                GroupBy::Credential,
                GroupBy::Client,
            ] {
                let query = RollupQuery {
                    since: Some(NOW - range),
                    until: Some(NOW),
                    bucket,
                    group_by,
                };
                let (rows, times) =
                    timed(|| async { ledger.rollup(&query).await.expect("rollup").len() }).await;
                print_timing(
                    &format!("{label} | {bucket:?} | {group_by:?}"),
                    rows,
                    &times,
                );
            }
        }
    }

    println!();
    println!("## Request-log pages (50 rows, newest first; median of {RUNS})");
    println!();
    println!("| filter | rows | median | min | max |");
    println!("|---|---:|---:|---:|---:|");
    let client = "cl_0007".to_owned();
    let rare_client = "cl_0190".to_owned();
    let model = "claude-model-03".to_owned();
    let page = |f: LogFilter| LogFilter { limit: 50, ..f };
    let first_client_page = ledger
        .usage_log(&page(LogFilter {
            client_id: Some(client.clone()),
            ..LogFilter::default()
        }))
        .await
        .expect("log");
    let cursor = first_client_page.last().map(UsageRow::cursor);
    let deep_cursor = ledger
        .usage_log(&LogFilter {
            limit: 1,
            until: Some(NOW - 5 * DAY),
            ..LogFilter::default()
        })
        .await
        .expect("log")
        .first()
        .map(UsageRow::cursor);
    let cases: Vec<(&str, LogFilter)> = vec![
        ("none (newest page)", page(LogFilter::default())),
        (
            "page 2 via cursor, client",
            page(LogFilter {
                client_id: Some(client.clone()),
                before: cursor,
                ..LogFilter::default()
            }),
        ),
        (
            "cursor 5 days back, no filter",
            page(LogFilter {
                before: deep_cursor,
                ..LogFilter::default()
            }),
        ),
        (
            "client, last 24 h",
            page(LogFilter {
                client_id: Some(client.clone()),
                since: Some(NOW - DAY),
                ..LogFilter::default()
            }),
        ),
        (
            "rare client, last 24 h",
            page(LogFilter {
                client_id: Some(rare_client.clone()),
                since: Some(NOW - DAY),
                ..LogFilter::default()
            }),
        ),
        (
            "model (served or requested)",
            page(LogFilter {
                model: Some(model.clone()),
                ..LogFilter::default()
            }),
        ),
        (
            "credential + model, last 24 h",
            page(LogFilter {
                key_id: Some("key_03".into()),
                model: Some(model.clone()),
                since: Some(NOW - DAY),
                ..LogFilter::default()
            }),
        ),
        (
            "outcome = stream_cut",
            page(LogFilter {
                outcome: Some(RequestOutcome::StreamCut),
                ..LogFilter::default()
            }),
        ),
        (
            "client + outcome = upstream_error, 7 d",
            page(LogFilter {
                client_id: Some(client.clone()),
                outcome: Some(RequestOutcome::UpstreamError),
                since: Some(NOW - SPAN),
                ..LogFilter::default()
            }),
        ),
        (
            "rare client + credential + model, 7 d",
            page(LogFilter {
                client_id: Some(rare_client.clone()),
                key_id: Some("key_05".into()),
                model: Some(model.clone()),
                since: Some(NOW - SPAN),
                ..LogFilter::default()
            }),
        ),
    ];
    for (label, filter) in &cases {
        let (rows, times) =
            timed(|| async { ledger.usage_log(filter).await.expect("log").len() }).await;
        print_timing(label, rows, &times);
    }

    let (count, times) = timed(|| async { ledger.usage_count().await.expect("count") }).await;
    println!();
    println!(
        "usage_count() = {count}: median {} ms",
        ms(pct(&sorted(times), 0.5))
    );
}

async fn timed<T, F, Fut>(f: F) -> (T, Vec<Duration>)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut times = Vec::with_capacity(RUNS);
    let mut out = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        out = Some(f().await);
        times.push(t.elapsed());
    }
    (out.expect("at least one run"), times)
}

fn print_timing(label: &str, rows: impl std::fmt::Display, times: &[Duration]) {
    let times = sorted(times.to_vec());
    println!(
        "| {label} | {rows} | {} ms | {} ms | {} ms |",
        ms(pct(&times, 0.5)),
        ms(times[0]),
        ms(times[times.len() - 1])
    );
}

fn sorted(mut times: Vec<Duration>) -> Vec<Duration> {
    times.sort();
    times
}

fn pct(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.0}")
    }
}

fn file_size(path: &std::path::Path) -> u64 {
    let wal = path.with_extension("db-wal");
    [path.to_path_buf(), wal]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Deterministic, roughly realistic traffic: clients are skewed (a few busy agents, a long
/// tail), each prefers one model, credentials are picked round-robin-ish, ~93 % succeed.
struct Generator {
    rng: u64,
    total: u64,
    i: u64,
    boot: u64,
}

const FAILING: [OutcomeClass; 7] = keyloop::store::FAILURE_CLASSES;

impl Generator {
    fn new(total: u64) -> Self {
        Self {
            rng: 0x9E37_79B9_7F4A_7C15,
            total,
            i: 0,
            boot: 0,
        }
    }

    fn rand(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.rand() % n
    }

    fn unit(&mut self) -> f64 {
        (self.rand() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn next(&mut self) -> UsageRecord {
        let i = self.i;
        self.i += 1;
        // In time order with a little jitter, as batches arrive; a restart (new id prefix) a day.
        let at = START
            + (i as i128 * SPAN as i128 / self.total as i128) as EpochMs
            + self.below(2_000) as EpochMs;
        self.boot = ((at - START) / DAY) as u64;
        let request_id = format!("req_kl_{:010x}{i:010x}", 0xb007_0000_u64 + self.boot);

        // Skewed clients: the square of a uniform draw favours low numbers.
        let u = self.unit();
        let client = ((u * u) * CLIENTS as f64) as usize;
        let preferred = (client * 7 + 3) % MODELS;
        let model = if self.below(100) < 75 {
            preferred
        } else {
            self.below(MODELS as u64) as usize
        };
        let key = self.below(KEYS as u64) as usize;

        let roll = self.below(1000);
        let outcome = match roll {
            0..930 => RequestOutcome::Success,
            930..950 => RequestOutcome::ClientError,
            950..970 => RequestOutcome::UpstreamError,
            970..975 => RequestOutcome::NoCredential,
            975..995 => RequestOutcome::ClientCancelled,
            _ => RequestOutcome::StreamCut,
        };
        let mut attempts = Vec::new();
        let failed_before = if self.below(100) < 6 {
            1 + self.below(2)
        } else {
            0
        };
        for _ in 0..failed_before + u64::from(outcome == RequestOutcome::UpstreamError) {
            let k = self.below(KEYS as u64);
            attempts.push(FailedAttempt {
                key_id: format!("key_{k:02}"),
                key_name: format!("org-{}/key-{k:02}", k % 3),
                class: FAILING[self.below(FAILING.len() as u64) as usize],
            });
        }
        let no_key = outcome == RequestOutcome::NoCredential;
        let streamed = self.below(100) < 70;
        let output = self.below(2_000);
        let latency = 200 + (self.unit().powi(3) * 60_000.0) as i64 + output as i64 * 10;
        let mut usage = Usage {
            input_tokens: self.below(8_000),
            output_tokens: output,
            cache_read_tokens: if self.below(2) == 0 {
                self.below(150_000)
            } else {
                0
            },
            ..Usage::default()
        };
        let one_hour = if self.below(10) == 0 {
            self.below(2_000)
        } else {
            0
        };
        usage.set_cache_writes(one_hour + self.below(4_000), one_hour);
        let requested = format!("claude-model-{model:02}");
        let served = if self.below(10) == 0 {
            format!("claude-model-{model:02}-20250514")
        } else {
            requested.clone()
        };
        UsageRecord {
            request_id,
            at,
            client_id: Some(format!("cl_{client:04}")),
            client_name: Some(format!("agent-{client:04}")),
            attributed: (self.below(4) == 0).then(|| format!("worker-{}", self.below(16))),
            key_id: (!no_key).then(|| format!("key_{key:02}")),
            key_name: (!no_key).then(|| format!("org-{}/key-{key:02}", key % 3)),
            provider: keyloop::accounting::Provider::Anthropic,
            route: if self.below(50) == 0 {
                Route::CountTokens
            } else {
                Route::Messages
            },
            requested_model: Some(requested),
            served_model: (outcome == RequestOutcome::Success).then_some(served),
            status: match outcome {
                RequestOutcome::Success | RequestOutcome::StreamCut => 200,
                RequestOutcome::ClientError => 400,
                RequestOutcome::UpstreamError => 529,
                RequestOutcome::NoCredential => 503,
                RequestOutcome::ClientCancelled => 499,
            },
            outcome,
            last_class: attempts
                .last()
                .map(|a| a.class)
                .or(Some(OutcomeClass::Success)),
            attempts,
            usage,
            cost_nanos: (self.below(100) < 97).then(|| self.below(80_000_000) as i64),
            latency_ms: latency,
            ttft_ms: streamed.then(|| 150 + (self.unit().powi(2) * 8_000.0) as i64),
            streamed,
            stop_reason: Some("end_turn".to_owned()),
            batch: false,
            speed: Speed::Standard,
            session_moved: false,
        }
    }
}
