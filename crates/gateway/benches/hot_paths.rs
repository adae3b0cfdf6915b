//! Microbenchmarks of the per-request work outside the wire crate: taking and returning a
//! credential (`KeyPool::acquire` / `report` / dropping the lease, alone and with threads
//! contending for the pool's lock), classifying an upstream answer (`relay::outcome::classify`)
//! and settling a finished request (`Accountant::price`, `Metrics::request_finished`,
//! `LiveWindow::add`). Headers and bodies come from the wire fixtures and the mock upstream.
//! Run with `cargo bench -p keyloop --bench hot_paths`; see `bench/README.md`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use divan::{Bencher, black_box};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use keyloop::accounting::record::{FailedAttempt, Provider, RequestOutcome, Route, UsageRecord};
use keyloop::accounting::{Accountant, PriceTable, recorder};
use keyloop::pool::{Config, KeyPool, KeySpec, Pick, Strategy};
use keyloop::providers::ratelimit_headers;
use keyloop::relay::outcome::classify;
use keyloop::store::{Ledger, LogFilter, Purged, Retention, RollupQuery, RollupRow, UsageRow};
use keyloop::telemetry::live::LiveWindow;
use keyloop::telemetry::metrics::Metrics;
use keyloop::types::{EpochMs, KeyId, KeyKind, Outcome, OutcomeClass, Secret};
use keyloop_wire::anthropic::Speed;
use keyloop_wire::usage::Usage;

fn main() {
    divan::main();
}

/// 2026-01-01 12:00:00 UTC, the `date` of the recorded answers: their reset times lie ahead.
const NOW: EpochMs = 1_767_268_800_000;

const RESPONSE_200: &str =
    include_str!("../../wire/tests/fixtures/anthropic-message-response.http");
const RESPONSE_429: &str = include_str!("../../wire/tests/fixtures/anthropic-429-rate-limit.http");

/// The mock upstream's 529 and credit-balance 400 bodies (`crates/mock-upstream/src/error.rs`,
/// `scenario.rs`), the envelope Anthropic sends.
const BODY_529: &str = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CXExampleOverload0001"}"#;
const BODY_400_CREDIT: &str = r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."},"request_id":"req_011CXExampleCredit00001"}"#;

// === recorded answers ===

/// An `.http` response fixture: status, headers, body (commentary lines removed).
fn parse_response(fixture: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    let message: String = fixture
        .split_inclusive('\n')
        .skip_while(|line| line.starts_with('#'))
        .collect();
    let (head, body) = message
        .split_once("\n\n")
        .expect("a blank line ends the headers");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .expect("a status line");
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').expect("name: value");
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).expect("a header name"),
            HeaderValue::from_str(value.trim()).expect("a header value"),
        );
    }
    (status, headers, body.trim_end().as_bytes().to_vec())
}

/// The headers the mock upstream puts on an error answer: the common set of the recorded 200
/// (date, request id, organization, every `anthropic-ratelimit-*`) with JSON content type and
/// `x-should-retry`.
fn error_headers(should_retry: bool) -> HeaderMap {
    let (_, mut headers, _) = parse_response(RESPONSE_200);
    headers.remove("server");
    headers.insert(
        "x-should-retry",
        HeaderValue::from_static(if should_retry { "true" } else { "false" }),
    );
    headers
}

#[derive(Clone, Copy, Debug)]
enum Answer {
    /// The recorded 200 with its rate-limit headers; body not read (a stream's head).
    Ok200,
    /// The recorded 429: `retry-after` and the full rate-limit header set.
    RateLimited429,
    /// The mock's 529 `overloaded_error`.
    Overloaded529,
    /// The mock's 400 with the credit-balance message (classified as billing).
    CreditBalance400,
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Answer::Ok200 => "200 (stream head)",
            Answer::RateLimited429 => "429 rate_limit_error + retry-after",
            Answer::Overloaded529 => "529 overloaded_error",
            Answer::CreditBalance400 => "400 credit balance too low",
        })
    }
}

impl Answer {
    const ALL: [Answer; 4] = [
        Answer::Ok200,
        Answer::RateLimited429,
        Answer::Overloaded529,
        Answer::CreditBalance400,
    ];

    fn recorded(self) -> (StatusCode, HeaderMap, Vec<u8>, OutcomeClass) {
        match self {
            Answer::Ok200 => {
                let (status, headers, _) = parse_response(RESPONSE_200);
                (status, headers, Vec::new(), OutcomeClass::Success)
            }
            Answer::RateLimited429 => {
                let (status, headers, body) = parse_response(RESPONSE_429);
                (status, headers, body, OutcomeClass::RateLimited)
            }
            Answer::Overloaded529 => (
                StatusCode::from_u16(529).expect("a valid status"),
                error_headers(true),
                BODY_529.as_bytes().to_vec(),
                OutcomeClass::Overloaded,
            ),
            Answer::CreditBalance400 => (
                StatusCode::BAD_REQUEST,
                error_headers(false),
                BODY_400_CREDIT.as_bytes().to_vec(),
                OutcomeClass::BillingExhausted,
            ),
        }
    }
}

// === credential pick ===

fn spec(i: usize) -> KeySpec {
    KeySpec {
        id: KeyId::new(format!("key_{i:02}")),
        name: format!("org-{}/key-{i:02}", i % 3),
        kind: KeyKind::ApiKey,
        secret: Secret::new(format!("sk-ant-api03-bench-{i:02}-{}", "x".repeat(80))),
        priority: 0,
        weight: 1,
        max_concurrent: None,
        group: Some(format!("org-{}", i % 3)),
        enabled: true,
        caps: Default::default(),
        credits_expire_at: None,
        token_expires_at: None,
    }
}

fn pool(strategy: Strategy, keys: usize) -> KeyPool {
    let config = Config {
        strategy,
        jitter: 0.0,
        ..Config::default()
    };
    KeyPool::new(config, (0..keys).map(spec).collect(), Vec::new(), NOW)
}

/// What a successful streamed attempt reports: success with the rate-limit snapshot that
/// `classify` read from the recorded 200's headers.
fn success_with_snapshot() -> Outcome {
    let (status, headers, _, _) = Answer::Ok200.recorded();
    let outcome = classify(status, &headers, b"", None, NOW);
    assert!(outcome.ratelimit.is_some(), "the 200 carries rate limits");
    outcome
}

/// One attempt's bookkeeping: take a key, report its outcome, free the slot.
fn attempt(pool: &KeyPool, outcome: &Outcome) {
    let lease = pool
        .acquire(&Pick::default(), NOW)
        .expect("a key is available");
    pool.report(&lease, outcome, NOW);
    drop(black_box(lease));
}

/// Round-robin (the default): `acquire` + `report(Success)` + drop. With `threads` > 1 every
/// thread uses the same pool, so this measures contention on its mutex.
#[divan::bench(args = [3, 30], threads = [1, 2, 4])]
fn pick_round_robin(bencher: Bencher, keys: usize) {
    let pool = pool(Strategy::RoundRobin, keys);
    let outcome = Outcome::of(OutcomeClass::Success);
    bencher.bench(|| attempt(&pool, &outcome));
}

/// Headroom: every key carries the rate-limit snapshot of the recorded 200 (live reset
/// times), so each pick scores every eligible key from its four windows.
#[divan::bench(args = [3, 30], threads = [1, 2, 4])]
fn pick_headroom(bencher: Bencher, keys: usize) {
    let pool = pool(Strategy::Headroom, keys);
    let outcome = success_with_snapshot();
    for _ in 0..keys {
        attempt(&pool, &outcome);
    }
    bencher.bench(|| attempt(&pool, &outcome));
}

/// Round-robin while a third of the keys cool down after a 429 (a rate-limit storm): every
/// `acquire` lists them as skipped.
#[divan::bench(args = [3, 30])]
fn pick_round_robin_third_cooling(bencher: Bencher, keys: usize) {
    let pool = pool(Strategy::RoundRobin, keys);
    let limited = Outcome {
        retry_at_ms: Some(NOW + 3_600_000),
        ..Outcome::of(OutcomeClass::RateLimited)
    };
    for i in 0..keys / 3 {
        let others: Vec<KeyId> = (0..keys)
            .filter(|&j| j != i)
            .map(|j| KeyId::new(format!("key_{j:02}")))
            .collect();
        let pick = Pick {
            exclude: &others,
            ..Pick::default()
        };
        let lease = pool.acquire(&pick, NOW).expect("the key is active");
        pool.report(&lease, &limited, NOW);
    }
    let lease = pool
        .acquire(&Pick::default(), NOW)
        .expect("a key is active");
    assert_eq!(lease.skipped().len(), keys / 3);
    drop(lease);
    let outcome = Outcome::of(OutcomeClass::Success);
    bencher.bench(|| attempt(&pool, &outcome));
}

// === outcome classification ===

/// `relay::outcome::classify` on a recorded answer: status, rate-limit headers (four windows,
/// RFC 3339 resets, the `date` skew), `retry-after`, and the error body where the status
/// needs it.
#[divan::bench(args = Answer::ALL)]
fn classify_answer(bencher: Bencher, answer: Answer) {
    let (status, headers, body, expected) = answer.recorded();
    assert_eq!(classify(status, &headers, &body, None, NOW).class, expected);
    bencher.bench(|| {
        classify(
            black_box(status),
            black_box(&headers),
            black_box(&body),
            None,
            NOW,
        )
    });
}

/// The part of `classify` every answer pays: `providers::ratelimit_headers::snapshot` on the
/// recorded 200's headers (four windows of three headers each, RFC 3339 resets, `date` skew).
#[divan::bench]
fn ratelimit_snapshot(bencher: Bencher) {
    let (_, headers, _, _) = Answer::Ok200.recorded();
    assert!(ratelimit_headers::snapshot(&headers, NOW).is_some());
    bencher.bench(|| ratelimit_headers::snapshot(black_box(&headers), NOW));
}

// === settling a finished request ===

/// A request log entry as the relay drafts it for a streamed Sonnet call from an agent: served
/// under the dated id, with prompt-cache reads and writes.
fn record(failed_over: bool) -> UsageRecord {
    let mut usage = Usage {
        input_tokens: 1_850,
        output_tokens: 640,
        cache_read_tokens: 42_000,
        ..Usage::default()
    };
    usage.set_cache_writes(3_200, 0);
    let attempts = if failed_over {
        vec![FailedAttempt {
            key_id: "key_04".to_owned(),
            key_name: "org-1/key-04".to_owned(),
            class: OutcomeClass::RateLimited,
        }]
    } else {
        Vec::new()
    };
    UsageRecord {
        request_id: "req_kl_00b0070000000000002a".to_owned(),
        at: NOW,
        client_id: Some("cl_0007".to_owned()),
        client_name: Some("agent-0007".to_owned()),
        attributed: Some("worker-3".to_owned()),
        key_id: Some("key_03".to_owned()),
        key_name: Some("org-0/key-03".to_owned()),
        provider: Provider::Anthropic,
        route: Route::Messages,
        requested_model: Some("claude-haiku-4-5".to_owned()),
        served_model: Some("claude-haiku-4-5-20251001".to_owned()),
        status: 200,
        outcome: RequestOutcome::Success,
        last_class: Some(OutcomeClass::Success),
        attempts,
        usage,
        cost_nanos: None,
        latency_ms: 8_420,
        ttft_ms: Some(910),
        streamed: true,
        stop_reason: Some("end_turn".to_owned()),
        batch: false,
        speed: Speed::Standard,
        session_moved: false,
    }
}

#[derive(Clone, Copy, Debug)]
enum Settled {
    Success,
    AfterFailover,
}

impl fmt::Display for Settled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Settled::Success => "success",
            Settled::AfterFailover => "success after one 429",
        })
    }
}

impl Settled {
    const ALL: [Settled; 2] = [Settled::Success, Settled::AfterFailover];

    fn record(self) -> UsageRecord {
        record(matches!(self, Settled::AfterFailover))
    }
}

/// A ledger the benchmark never writes to: `Accountant::price` does not touch the recorder,
/// and the recorder's writer is never run.
struct Unwritten;

#[async_trait]
impl Ledger for Unwritten {
    async fn append_usage(&self, _: &[UsageRecord]) -> keyloop::store::Result<()> {
        unreachable!("the writer is never run")
    }
    async fn usage_log(&self, _: &LogFilter) -> keyloop::store::Result<Vec<UsageRow>> {
        unreachable!("the writer is never run")
    }
    async fn rollup(&self, _: &RollupQuery) -> keyloop::store::Result<Vec<RollupRow>> {
        unreachable!("the writer is never run")
    }
    async fn purge(&self, _: &Retention) -> keyloop::store::Result<Purged> {
        unreachable!("the writer is never run")
    }
    async fn usage_count(&self) -> keyloop::store::Result<i64> {
        unreachable!("the writer is never run")
    }
    async fn integrity_ok(&self) -> keyloop::store::Result<bool> {
        unreachable!("the writer is never run")
    }
}

/// `Accountant::price` with the shipped price table: resolves the dated model id, looks up
/// the client and model multipliers, and sums the five token classes in nano-dollars.
#[divan::bench(args = Settled::ALL)]
fn price(bencher: Bencher, settled: Settled) {
    let (recorder, _writer) = recorder::channel(Arc::new(Unwritten), recorder::Config::default());
    let accountant = Accountant::new(PriceTable::shipped(), recorder, Metrics::new(false));
    let record = settled.record();
    assert!(accountant.price(&record).is_some(), "the model is priced");
    bencher.bench(|| accountant.price(black_box(&record)));
}

/// `Metrics::request_finished`: the request's counters, token counters, cost and latency
/// histograms (series registered on first use, as after warm-up).
#[divan::bench(args = Settled::ALL)]
fn metrics_request_finished(bencher: Bencher, settled: Settled) {
    let metrics = Metrics::new(false);
    let mut record = settled.record();
    record.cost_nanos = Some(12_345_678);
    metrics.request_finished(&record);
    bencher.bench(|| metrics.request_finished(black_box(&record)));
}

/// `LiveWindow::add`, once per settled request: one lock, the second's counters, the latency
/// ring (full at 8,192 samples, as under steady load). With `threads` > 1 the window is shared.
#[divan::bench(args = Settled::ALL, threads = [1, 2, 4])]
fn live_window_add(bencher: Bencher, settled: Settled) {
    let live = LiveWindow::default();
    let record = settled.record();
    for _ in 0..10_000 {
        live.add(&record, NOW);
    }
    bencher.bench(|| live.add(black_box(&record), NOW));
}
