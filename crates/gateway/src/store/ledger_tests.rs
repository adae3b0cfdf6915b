//! The usage ledger against a real SQLite file in a temp dir. Expectations are computed from the
//! generated records by plain loops, never read back from the store.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use keyloop_wire::anthropic::Speed;
use keyloop_wire::usage::{InferenceGeo, Usage};
use sqlx::{QueryBuilder, Sqlite};

use super::sqlite::SqliteStore;
use super::sqlite_ledger::SqliteLedger;
use super::*;
use crate::accounting::record::{FailedAttempt, RequestOutcome, Route, UsageRecord};
use crate::types::OutcomeClass;

/// 2026-11-21 10:00:00 UTC, hour-aligned.
const T0: EpochMs = 1_795_255_200_000;
const MIN: EpochMs = 60_000;
const HOUR: EpochMs = 3_600_000;

async fn open() -> (tempfile::TempDir, Stores) {
    let dir = tempfile::tempdir().unwrap();
    let stores = open_sqlite(&dir.path().join("k.db")).await.unwrap();
    (dir, stores)
}

/// A deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const CLASSES: [OutcomeClass; 11] = OutcomeClass::ALL;

fn bare(request_id: &str, at: EpochMs) -> UsageRecord {
    UsageRecord {
        request_id: request_id.to_owned(),
        at,
        client_id: None,
        client_name: None,
        attributed: None,
        key_id: None,
        key_name: None,
        provider: crate::accounting::Provider::Anthropic,
        route: Route::Messages,
        requested_model: None,
        served_model: None,
        status: 200,
        outcome: RequestOutcome::Success,
        last_class: None,
        attempts: Vec::new(),
        usage: Usage::default(),
        cost_nanos: None,
        latency_ms: 0,
        ttft_ms: None,
        streamed: false,
        stop_reason: None,
        batch: false,
        speed: Speed::Standard,
        session_moved: false,
    }
}

/// `n` varied records spread over `[from, from + span)`, with ids `{prefix}{i:06}`.
fn generate(seed: u64, prefix: &str, n: usize, from: EpochMs, span: EpochMs) -> Vec<UsageRecord> {
    let mut rng = Rng(seed | 1);
    (0..n)
        .map(|i| {
            let at = from + (rng.below(span as u64) as EpochMs);
            let mut r = bare(&format!("{prefix}{i:06}"), at);
            let client = rng.below(5);
            if client < 4 {
                r.client_id = Some(format!("cl_{client}"));
                r.client_name = Some(format!("client {client}"));
            }
            let key = rng.below(4);
            if key < 3 {
                r.key_id = Some(format!("key_{key}"));
                r.key_name = Some(format!("key {key}"));
            }
            let model = rng.below(4);
            r.requested_model = (model < 3).then(|| format!("model-{model}"));
            r.served_model = match rng.below(3) {
                0 => None,
                1 => r.requested_model.clone(),
                _ => Some(format!("model-{}-dated", rng.below(2))),
            };
            r.outcome = RequestOutcome::ALL[rng.below(6) as usize];
            r.route = Route::ALL[rng.below(5) as usize];
            r.status = [200, 400, 429, 502, 529][rng.below(5) as usize];
            r.last_class = rng.chance(70).then(|| CLASSES[rng.below(9) as usize]);
            for a in 0..rng.below(4) {
                r.attempts.push(FailedAttempt {
                    key_id: format!("key_{a}"),
                    key_name: format!("key {a}"),
                    class: CLASSES[rng.below(9) as usize],
                });
            }
            r.usage.input_tokens = rng.below(5000);
            r.usage.output_tokens = rng.below(2000);
            r.usage.cache_read_tokens = rng.below(100_000);
            let one_hour = rng.below(300);
            r.usage
                .set_cache_writes(one_hour + rng.below(3000), one_hour);
            r.cost_nanos = rng.chance(85).then(|| rng.below(50_000_000) as i64);
            r.latency_ms = rng.below(90_000) as i64;
            r.ttft_ms = rng.chance(60).then(|| rng.below(20_000) as i64);
            r.streamed = rng.chance(50);
            r.stop_reason = rng.chance(50).then(|| "end_turn".to_owned());
            r.batch = rng.chance(10);
            r.attributed = rng.chance(30).then(|| format!("agent-{}", rng.below(3)));
            r
        })
        .collect()
}

async fn append_in_batches(ledger: &dyn Ledger, records: &[UsageRecord], batch: usize) {
    for chunk in records.chunks(batch) {
        ledger.append_usage(chunk).await.unwrap();
    }
}

/// Every row of the log, newest first, paging with `limit`.
async fn whole_log(ledger: &dyn Ledger, mut filter: LogFilter) -> Vec<UsageRow> {
    let mut all = Vec::new();
    loop {
        let page = ledger.usage_log(&filter).await.unwrap();
        let Some(last) = page.last() else {
            return all;
        };
        filter.before = Some(last.cursor());
        all.extend(page);
    }
}

/// The log's order for `records` given in the order they were appended: newest first, and the
/// later appended first within a millisecond.
fn newest_first(records: impl IntoIterator<Item = UsageRecord>) -> Vec<UsageRow> {
    let mut rows: Vec<(usize, UsageRow)> = records.into_iter().enumerate().collect();
    rows.sort_by(|(ai, a), (bi, b)| (b.at, bi).cmp(&(a.at, ai)));
    rows.into_iter().map(|(_, row)| row).collect()
}

fn total_query(since: Option<EpochMs>, until: Option<EpochMs>, group_by: GroupBy) -> RollupQuery {
    RollupQuery {
        since,
        until,
        bucket: Bucket::Total,
        group_by,
    }
}

/// What a roll-up over `records` must say, computed field by field from the records.
#[derive(Debug, Default, PartialEq, Eq)]
struct Expected {
    requests: u64,
    by_outcome: [u64; 6],
    failures: [u64; 7],
    input: u64,
    output: u64,
    cache_read: u64,
    cache_write_5m: u64,
    cache_write_1h: u64,
    cost: i64,
    unpriced: u64,
    latency_counts: [u64; HISTOGRAM_BUCKETS],
    latency_sum: i64,
    ttft_counts: [u64; HISTOGRAM_BUCKETS],
    ttft_sum: i64,
}

fn slot(ms: i64) -> usize {
    let bounds = [
        5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
    ];
    let mut i = 0;
    while i < bounds.len() && ms > bounds[i] {
        i += 1;
    }
    i
}

fn expect<'a>(records: impl IntoIterator<Item = &'a UsageRecord>) -> Expected {
    let mut e = Expected::default();
    for r in records {
        e.requests += 1;
        let outcome = match r.outcome {
            RequestOutcome::Success => 0,
            RequestOutcome::ClientError => 1,
            RequestOutcome::UpstreamError => 2,
            RequestOutcome::NoCredential => 3,
            RequestOutcome::ClientCancelled => 4,
            RequestOutcome::StreamCut => 5,
        };
        e.by_outcome[outcome] += 1;
        for a in &r.attempts {
            let class = match a.class {
                OutcomeClass::RateLimited => 0,
                OutcomeClass::Overloaded => 1,
                OutcomeClass::ServerError => 2,
                OutcomeClass::Timeout => 3,
                OutcomeClass::ConnectError => 4,
                OutcomeClass::InvalidCredential => 5,
                OutcomeClass::BillingExhausted => 6,
                OutcomeClass::Success
                | OutcomeClass::ClientError
                | OutcomeClass::ModelDenied
                | OutcomeClass::TokenExpired => {
                    continue;
                }
            };
            e.failures[class] += 1;
        }
        e.input += r.usage.input_tokens;
        e.output += r.usage.output_tokens;
        e.cache_read += r.usage.cache_read_tokens;
        e.cache_write_5m += r.usage.cache_write_5m_tokens;
        e.cache_write_1h += r.usage.cache_write_1h_tokens;
        match r.cost_nanos {
            Some(c) => e.cost += c,
            None => e.unpriced += 1,
        }
        e.latency_counts[slot(r.latency_ms)] += 1;
        e.latency_sum += r.latency_ms;
        if let Some(t) = r.ttft_ms {
            e.ttft_counts[slot(t)] += 1;
            e.ttft_sum += t;
        }
    }
    e
}

fn observed(row: &RollupRow) -> Expected {
    Expected {
        requests: row.requests,
        by_outcome: row.by_outcome,
        failures: row.attempt_failures_by_class,
        input: row.input_tokens,
        output: row.output_tokens,
        cache_read: row.cache_read_tokens,
        cache_write_5m: row.cache_write_5m_tokens,
        cache_write_1h: row.cache_write_1h_tokens,
        cost: row.cost_nanos,
        unpriced: row.unpriced_requests,
        latency_counts: row.latency.counts,
        latency_sum: row.latency.sum_ms,
        ttft_counts: row.ttft.counts,
        ttft_sum: row.ttft.sum_ms,
    }
}

fn model_dim(r: &UsageRecord) -> Option<String> {
    r.served_model.clone().or_else(|| r.requested_model.clone())
}

const GROUP_BYS: [GroupBy; 4] = [
    GroupBy::None,
    GroupBy::Model,
    GroupBy::Credential,
    GroupBy::Client,
];

/// The group a record falls in, and the name it brings along.
fn group_of(r: &UsageRecord, group_by: GroupBy) -> (Option<String>, Option<String>) {
    match group_by {
        GroupBy::None => (None, None),
        GroupBy::Model => (model_dim(r), None),
        GroupBy::Credential => (r.key_id.clone(), r.key_name.clone()),
        GroupBy::Client => (r.client_id.clone(), r.client_name.clone()),
    }
}

/// A roll-up row as compared: bucket start, group, group name, sums.
type Seen = (Option<EpochMs>, Option<String>, Option<String>, Expected);

fn seen(rows: &[RollupRow]) -> Vec<Seen> {
    rows.iter()
        .map(|r| {
            (
                r.bucket_start,
                r.group.clone(),
                r.group_name.clone(),
                observed(r),
            )
        })
        .collect()
}

/// What `rollup(q)` must return after `appended` went in (in that order), computed from the
/// records alone: one row per (bucket, group) in that order, with each id's latest name. A
/// record is in range when its bucket overlaps `[since, until)`: its hour for `Hour`, its minute
/// for `Minute` and for `Total` (exact to the minute).
fn expected_rollup(appended: &[UsageRecord], q: &RollupQuery) -> Vec<Seen> {
    let width = if q.bucket == Bucket::Hour { HOUR } else { MIN };
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut groups: BTreeMap<(Option<EpochMs>, Option<String>), Vec<&UsageRecord>> =
        BTreeMap::new();
    for r in appended {
        let (group, name) = group_of(r, q.group_by);
        if let (Some(id), Some(name)) = (&group, name) {
            names.insert(id.clone(), name);
        }
        let start = r.at - r.at % width;
        let in_range =
            q.since.is_none_or(|s| start >= s - s % width) && q.until.is_none_or(|u| start < u);
        if in_range {
            let bucket = (q.bucket != Bucket::Total).then_some(start);
            groups.entry((bucket, group)).or_default().push(r);
        }
    }
    groups
        .into_iter()
        .map(|((bucket, group), recs)| {
            let name = group.as_ref().and_then(|g| names.get(g).cloned());
            (bucket, group, name, expect(recs))
        })
        .collect()
}

#[tokio::test]
async fn records_round_trip_every_field() {
    let (_dir, stores) = open().await;
    let mut full = bare("req_full", T0 + 5);
    full.client_id = Some("cl_1".into());
    full.client_name = Some("team one".into());
    full.attributed = Some("agent \"x\" ✓".into());
    full.key_id = Some("key_1".into());
    full.key_name = Some("org-a/1".into());
    full.route = Route::Batches;
    full.requested_model = Some("claude-haiku-4-5".into());
    full.served_model = Some("claude-haiku-4-5-20251001".into());
    full.status = 529;
    full.outcome = RequestOutcome::StreamCut;
    full.last_class = Some(OutcomeClass::Overloaded);
    // Every class, in an order that is not the enum's, so order and each label round-trip.
    full.attempts = CLASSES
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &class)| FailedAttempt {
            key_id: format!("key_{i}"),
            key_name: format!("name \"{i}\""),
            class,
        })
        .collect();
    full.usage = Usage {
        input_tokens: 1,
        output_tokens: 2,
        cache_read_tokens: 3,
        cache_write_tokens: 9,
        cache_write_5m_tokens: 4,
        cache_write_1h_tokens: 5,
        inference_geo: InferenceGeo::Us,
    };
    full.cost_nanos = Some(123_456_789_012);
    full.latency_ms = 4321;
    full.ttft_ms = Some(321);
    full.streamed = true;
    full.stop_reason = Some("max_tokens".into());
    full.batch = true;
    full.speed = Speed::Fast;
    full.session_moved = true;

    // Nothing optional set, no attempts, no price, no first token.
    let mut empty = bare("req_empty", T0);
    empty.outcome = RequestOutcome::NoCredential;
    empty.status = 503;
    empty.cost_nanos = None;

    // Each route and outcome at least once.
    let mut labels = Vec::new();
    for (i, route) in Route::ALL.into_iter().enumerate() {
        let mut r = bare(&format!("req_route_{i}"), T0 - 10 - i as EpochMs);
        r.route = route;
        r.outcome = RequestOutcome::ALL[i % RequestOutcome::ALL.len()];
        r.last_class = Some(CLASSES[i]);
        labels.push(r);
    }
    let mut r = bare("req_outcome_last", T0 - 100);
    r.outcome = RequestOutcome::ALL[5];
    labels.push(r);

    let mut all = vec![full.clone(), empty.clone()];
    all.extend(labels);
    stores.ledger.append_usage(&all).await.unwrap();

    let rows = stores
        .ledger
        .usage_log(&LogFilter::default())
        .await
        .unwrap();
    assert_eq!(rows, newest_first(all));
    assert_eq!(rows[0], full.clone());
    assert_eq!(rows[0].provider.as_str(), "anthropic");
    assert_eq!(rows[1].attempts, Vec::new());
    assert_eq!(rows[1].cost_nanos, None);
}

#[tokio::test]
async fn rollup_sums_equal_the_records() {
    let (_dir, stores) = open().await;
    // Three and a half hours starting mid-hour, appended in uneven batches.
    let records = generate(7, "req_", 3000, T0 + 17 * MIN + 3_000, 3 * HOUR + 30 * MIN);
    append_in_batches(stores.ledger.as_ref(), &records, 337).await;
    assert_eq!(stores.ledger.usage_count().await.unwrap(), 3000);

    // Each dimension's rows add up to the records: every record is in exactly one row of each
    // dimension per bucket.
    let want = expect(&records);
    for (bucket, group_by) in [Bucket::Total, Bucket::Hour, Bucket::Minute]
        .into_iter()
        .flat_map(|b| GROUP_BYS.map(|g| (b, g)))
    {
        let rows = stores
            .ledger
            .rollup(&RollupQuery {
                since: None,
                until: None,
                bucket,
                group_by,
            })
            .await
            .unwrap();
        let mut sum = Expected::default();
        for row in &rows {
            let o = observed(row);
            sum.requests += o.requests;
            for i in 0..6 {
                sum.by_outcome[i] += o.by_outcome[i];
            }
            for i in 0..7 {
                sum.failures[i] += o.failures[i];
            }
            sum.input += o.input;
            sum.output += o.output;
            sum.cache_read += o.cache_read;
            sum.cache_write_5m += o.cache_write_5m;
            sum.cache_write_1h += o.cache_write_1h;
            sum.cost += o.cost;
            sum.unpriced += o.unpriced;
            for i in 0..HISTOGRAM_BUCKETS {
                sum.latency_counts[i] += o.latency_counts[i];
                sum.ttft_counts[i] += o.ttft_counts[i];
            }
            sum.latency_sum += o.latency_sum;
            sum.ttft_sum += o.ttft_sum;
        }
        assert_eq!(
            sum, want,
            "{bucket:?} buckets by {group_by:?} add up to the records"
        );
    }
    let total = &stores
        .ledger
        .rollup(&total_query(None, None, GroupBy::None))
        .await
        .unwrap()[0];
    assert_eq!(total.bucket_start, None);
    assert_eq!(total.group, None);
    assert_eq!(
        total.outcome_count(RequestOutcome::StreamCut),
        want.by_outcome[5]
    );
    assert_eq!(
        total.attempt_failures(OutcomeClass::BillingExhausted),
        want.failures[6]
    );
    assert_eq!(total.attempt_failures(OutcomeClass::ClientError), 0);
    assert_eq!(
        total.cache_write_tokens(),
        records
            .iter()
            .map(|r| r.usage.cache_write_tokens)
            .sum::<u64>()
    );
}

#[tokio::test]
async fn minute_and_hour_buckets() {
    let (_dir, stores) = open().await;
    let records = generate(11, "req_", 1500, T0 + 50 * MIN, 2 * HOUR);
    append_in_batches(stores.ledger.as_ref(), &records, 500).await;

    for (bucket, width) in [(Bucket::Minute, MIN), (Bucket::Hour, HOUR)] {
        let mut want: BTreeMap<EpochMs, Vec<&UsageRecord>> = BTreeMap::new();
        for r in &records {
            want.entry(r.at - r.at % width).or_default().push(r);
        }
        let rows = stores
            .ledger
            .rollup(&RollupQuery {
                since: None,
                until: None,
                bucket,
                group_by: GroupBy::None,
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), want.len(), "{bucket:?}: one row per bucket");
        for (row, (start, recs)) in rows.iter().zip(&want) {
            assert_eq!(
                row.bucket_start,
                Some(*start),
                "{bucket:?}: ascending starts"
            );
            assert_eq!(observed(row), expect(recs.iter().copied()));
        }
    }

    // A range that starts and ends inside buckets includes each overlapped bucket whole.
    let since = T0 + 70 * MIN + 20_000;
    let until = T0 + 75 * MIN + 1;
    let rows = stores
        .ledger
        .rollup(&RollupQuery {
            since: Some(since),
            until: Some(until),
            bucket: Bucket::Minute,
            group_by: GroupBy::None,
        })
        .await
        .unwrap();
    let starts: Vec<_> = rows.iter().filter_map(|r| r.bucket_start).collect();
    let want: BTreeSet<EpochMs> = records
        .iter()
        .map(|r| r.at - r.at % MIN)
        .filter(|m| (T0 + 70 * MIN..=T0 + 75 * MIN).contains(m))
        .collect();
    assert_eq!(starts, want.into_iter().collect::<Vec<_>>());

    let rows = stores
        .ledger
        .rollup(&RollupQuery {
            since: Some(T0 + HOUR + 1),
            until: Some(T0 + HOUR + 2),
            bucket: Bucket::Hour,
            group_by: GroupBy::None,
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].bucket_start, Some(T0 + HOUR));
    assert_eq!(
        observed(&rows[0]),
        expect(records.iter().filter(|r| r.at / HOUR == (T0 + HOUR) / HOUR))
    );
}

#[tokio::test]
async fn total_over_an_unaligned_range_is_exact_to_the_minute() {
    let (_dir, stores) = open().await;
    let records = generate(13, "req_", 4000, T0, 6 * HOUR);
    append_in_batches(stores.ledger.as_ref(), &records, 1000).await;

    let cases = [
        // Edges inside hours on both sides, whole hours between.
        (T0 + 17 * MIN + 30_000, T0 + 4 * HOUR + 42 * MIN + 10_000),
        // Inside one hour: minutes only.
        (T0 + HOUR + 5 * MIN, T0 + HOUR + 50 * MIN),
        // Across one hour boundary without a whole hour.
        (T0 + 2 * HOUR - 7 * MIN, T0 + 2 * HOUR + 9 * MIN),
        // Hour-aligned: hours only.
        (T0 + HOUR, T0 + 5 * HOUR),
    ];
    for (since, until) in cases {
        let from = since - since % MIN;
        let inside: Vec<&UsageRecord> = records
            .iter()
            .filter(|r| r.at >= from && r.at < (until + MIN - 1) / MIN * MIN)
            .collect();
        let rows = stores
            .ledger
            .rollup(&total_query(Some(since), Some(until), GroupBy::None))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(observed(&rows[0]), expect(inside), "range {since}..{until}");
        for group_by in GROUP_BYS {
            let query = total_query(Some(since), Some(until), group_by);
            let rows = stores.ledger.rollup(&query).await.unwrap();
            assert_eq!(seen(&rows), expected_rollup(&records, &query), "{query:?}");
        }
    }

    // Open on one side.
    let since = T0 + 3 * HOUR + 1;
    let rows = stores
        .ledger
        .rollup(&total_query(Some(since), None, GroupBy::None))
        .await
        .unwrap();
    let from = since - since % MIN;
    assert_eq!(
        observed(&rows[0]),
        expect(records.iter().filter(|r| r.at >= from))
    );
    let until = T0 + 3 * HOUR + 1;
    let rows = stores
        .ledger
        .rollup(&total_query(None, Some(until), GroupBy::None))
        .await
        .unwrap();
    assert_eq!(
        observed(&rows[0]),
        expect(records.iter().filter(|r| r.at < T0 + 3 * HOUR + MIN))
    );

    // Nothing in range: no rows.
    let rows = stores
        .ledger
        .rollup(&total_query(
            Some(T0 - 5 * HOUR),
            Some(T0 - HOUR),
            GroupBy::None,
        ))
        .await
        .unwrap();
    assert!(rows.is_empty());
}

#[tokio::test]
async fn every_group_by_and_bucket_equals_the_records() {
    let (_dir, stores) = open().await;
    let records = generate(17, "req_", 2500, T0, 3 * HOUR);
    append_in_batches(stores.ledger.as_ref(), &records, 700).await;

    let ranges = [
        (None, None),
        // Edges inside minutes and hours: partial hours and minutes at both ends.
        (
            Some(T0 + 17 * MIN + 30_000),
            Some(T0 + 2 * HOUR + 42 * MIN + 10_000),
        ),
        // Hour-aligned.
        (Some(T0 + HOUR), Some(T0 + 2 * HOUR)),
        // Open on one side.
        (Some(T0 + HOUR + 1), None),
        (None, Some(T0 + 2 * HOUR - 1)),
    ];
    for (since, until) in ranges {
        for bucket in [Bucket::Minute, Bucket::Hour, Bucket::Total] {
            for group_by in GROUP_BYS {
                let query = RollupQuery {
                    since,
                    until,
                    bucket,
                    group_by,
                };
                let rows = stores.ledger.rollup(&query).await.unwrap();
                let want = expected_rollup(&records, &query);
                assert!(want.len() > 1 || group_by == GroupBy::None, "{query:?}");
                assert_eq!(seen(&rows), want, "{query:?}");
            }
        }
    }
}

#[tokio::test]
async fn large_counters_come_back_exact() {
    let (_dir, stores) = open().await;
    // Past 2^53, where a float would round: the counters must come back as integers.
    let mut big = bare("req_big", T0 + 1);
    big.usage.input_tokens = u64::MAX;
    big.cost_nanos = Some(1 << 60);
    let mut small = bare("req_small", T0 + 2);
    small.cost_nanos = Some(3);
    stores.ledger.append_usage(&[big, small]).await.unwrap();
    for bucket in [Bucket::Minute, Bucket::Hour, Bucket::Total] {
        let query = RollupQuery {
            since: None,
            until: None,
            bucket,
            group_by: GroupBy::None,
        };
        let rows = stores.ledger.rollup(&query).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].cost_nanos, (1 << 60) + 3, "{bucket:?}");
        assert_eq!(
            rows[0].input_tokens,
            i64::MAX as u64,
            "{bucket:?}: saturated"
        );
    }
}

#[tokio::test]
async fn the_latest_name_is_shown() {
    let (_dir, stores) = open().await;
    let mut a = bare("req_1", T0);
    a.key_id = Some("key_1".into());
    a.key_name = Some("old".into());
    let mut b = bare("req_2", T0 + 1);
    b.key_id = Some("key_1".into());
    b.key_name = Some("renamed".into());
    stores.ledger.append_usage(&[a]).await.unwrap();
    stores.ledger.append_usage(&[b]).await.unwrap();
    let rows = stores
        .ledger
        .rollup(&total_query(None, None, GroupBy::Credential))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].group.as_deref(), Some("key_1"));
    assert_eq!(rows[0].group_name.as_deref(), Some("renamed"));
}

#[tokio::test]
async fn percentiles_from_known_latencies() {
    let (_dir, stores) = open().await;
    // 60 at 80 ms (the 50..100 bucket), 40 at 2 s (1000..2500); TTFT on half of them, 300 ms.
    let records: Vec<UsageRecord> = (0..100)
        .map(|i| {
            let mut r = bare(&format!("req_{i:03}"), T0 + i);
            r.latency_ms = if i < 60 { 80 } else { 2000 };
            r.ttft_ms = (i % 2 == 0).then_some(300);
            r
        })
        .collect();
    stores.ledger.append_usage(&records).await.unwrap();
    let row = &stores
        .ledger
        .rollup(&total_query(None, None, GroupBy::None))
        .await
        .unwrap()[0];
    // Rank 50 of 60 in 50..100 → 50 + 50 * 50/60; rank 95 is the 35th of 40 in 1000..2500.
    let p50 = row.p50_latency_ms().unwrap();
    assert!((p50 - (50.0 + 50.0 * 50.0 / 60.0)).abs() < 1e-9, "{p50}");
    assert_eq!(row.p95_latency_ms(), Some(1000.0 + 1500.0 * 35.0 / 40.0));
    // All 50 TTFTs in 250..500: rank 25 and 47.5 of 50.
    assert_eq!(row.ttft.count(), 50);
    assert_eq!(row.p50_ttft_ms(), Some(375.0));
    assert_eq!(row.p95_ttft_ms(), Some(250.0 + 250.0 * 0.95));
    assert_eq!(
        row.latency.mean_ms(),
        Some((60.0 * 80.0 + 40.0 * 2000.0) / 100.0)
    );
}

#[test]
fn histogram_edges() {
    assert_eq!(Histogram::default().quantile_ms(0.5), None);
    assert_eq!(Histogram::bucket_of(-5), 0);
    assert_eq!(Histogram::bucket_of(5), 0);
    assert_eq!(Histogram::bucket_of(6), 1);
    assert_eq!(Histogram::bucket_of(50), 3);
    assert_eq!(Histogram::bucket_of(51), 4);
    assert_eq!(Histogram::bucket_of(60_000), 12);
    assert_eq!(Histogram::bucket_of(60_001), 13);
    let mut h = Histogram::default();
    h.counts[13] = 3;
    assert_eq!(
        h.quantile_ms(0.99),
        Some(60_000.0),
        "overflow reports the last bound"
    );
    h.counts[0] = 1;
    assert_eq!(h.quantile_ms(0.0), Some(0.0));
    assert_eq!(h.quantile_ms(0.25), Some(5.0));
}

#[test]
fn statements_take_few_shapes_and_every_item_once() {
    let items: Vec<usize> = (0..1100).collect();
    let chunks: Vec<&[usize]> =
        super::sqlite_ledger::statement_chunks(&items[..1000], 512).collect();
    let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
    assert_eq!(sizes, [512, 256, 128, 64, 32, 8]);
    assert_eq!(chunks.concat(), items[..1000]);
    let sizes: Vec<usize> = super::sqlite_ledger::statement_chunks(&items[..1100], 512)
        .map(<[usize]>::len)
        .collect();
    assert_eq!(sizes, [512, 512, 64, 8, 4]);
    assert_eq!(
        super::sqlite_ledger::statement_chunks::<u8>(&[], 512).count(),
        0
    );
}

#[tokio::test]
async fn keyset_pagination_has_no_duplicates_or_gaps() {
    let (_dir, stores) = open().await;
    // Many records share a millisecond, so the append order must break ties; appended in
    // reverse, so it is not the request ids' order.
    let mut records = generate(19, "req_", 1000, T0, 40);
    records.reverse();
    append_in_batches(stores.ledger.as_ref(), &records, 250).await;
    for limit in [1, 37, 1000] {
        let filter = LogFilter {
            limit,
            ..LogFilter::default()
        };
        let all = whole_log(stores.ledger.as_ref(), filter).await;
        assert_eq!(all, newest_first(records.clone()), "limit {limit}");
    }
    // The page size is capped.
    let many = generate(23, "req_more_", 1500, T0, HOUR);
    append_in_batches(stores.ledger.as_ref(), &many, 1000).await;
    let page = stores
        .ledger
        .usage_log(&LogFilter {
            limit: u32::MAX,
            ..LogFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), LogFilter::MAX_LIMIT as usize);
}

#[tokio::test]
async fn a_cursor_whose_row_is_gone_pages_on_from_the_millisecond_before() {
    let (_dir, stores) = open().await;
    let records = generate(31, "req_", 300, T0, 40);
    append_in_batches(stores.ledger.as_ref(), &records, 100).await;
    let at = records[150].at;
    let filter = LogFilter {
        before: Some((at, "req_purged_long_ago".to_owned())),
        ..LogFilter::default()
    };
    let rest = whole_log(stores.ledger.as_ref(), filter).await;
    assert!(!rest.is_empty());
    assert_eq!(
        rest,
        newest_first(records.iter().filter(|r| r.at < at).cloned())
    );
}

#[tokio::test]
async fn every_log_filter() {
    let (_dir, stores) = open().await;
    let records = generate(29, "req_", 1200, T0, 2 * HOUR);
    append_in_batches(stores.ledger.as_ref(), &records, 400).await;
    // One request whose requested and served models differ, to be found by either name.
    let mut alias = bare("req_alias", T0 + 5);
    alias.requested_model = Some("alias-only".into());
    alias.served_model = Some("served-only".into());
    stores.ledger.append_usage(&[alias.clone()]).await.unwrap();
    let mut records = records;
    records.push(alias);

    type Pred = Box<dyn Fn(&UsageRecord) -> bool>;
    let model = |m: &'static str| -> Pred {
        Box::new(move |r: &UsageRecord| {
            r.served_model.as_deref() == Some(m) || r.requested_model.as_deref() == Some(m)
        })
    };
    let cases: Vec<(LogFilter, Pred)> = vec![
        (
            LogFilter {
                since: Some(T0 + 30 * MIN),
                ..LogFilter::default()
            },
            Box::new(|r| r.at >= T0 + 30 * MIN),
        ),
        (
            LogFilter {
                until: Some(T0 + 30 * MIN),
                ..LogFilter::default()
            },
            Box::new(|r| r.at < T0 + 30 * MIN),
        ),
        (
            LogFilter {
                client_id: Some("cl_2".into()),
                ..LogFilter::default()
            },
            Box::new(|r| r.client_id.as_deref() == Some("cl_2")),
        ),
        (
            LogFilter {
                key_id: Some("key_0".into()),
                ..LogFilter::default()
            },
            Box::new(|r| r.key_id.as_deref() == Some("key_0")),
        ),
        (
            LogFilter {
                model: Some("model-1".into()),
                ..LogFilter::default()
            },
            model("model-1"),
        ),
        (
            LogFilter {
                model: Some("model-1-dated".into()),
                ..LogFilter::default()
            },
            model("model-1-dated"),
        ),
        (
            LogFilter {
                model: Some("alias-only".into()),
                ..LogFilter::default()
            },
            model("alias-only"),
        ),
        (
            LogFilter {
                model: Some("served-only".into()),
                ..LogFilter::default()
            },
            model("served-only"),
        ),
        (
            LogFilter {
                outcome: Some(RequestOutcome::UpstreamError),
                ..LogFilter::default()
            },
            Box::new(|r| r.outcome == RequestOutcome::UpstreamError),
        ),
        (
            LogFilter {
                since: Some(T0 + 10 * MIN),
                until: Some(T0 + 100 * MIN),
                client_id: Some("cl_1".into()),
                key_id: Some("key_2".into()),
                model: Some("model-0".into()),
                outcome: Some(RequestOutcome::Success),
                ..LogFilter::default()
            },
            Box::new(|r| {
                r.at >= T0 + 10 * MIN
                    && r.at < T0 + 100 * MIN
                    && r.client_id.as_deref() == Some("cl_1")
                    && r.key_id.as_deref() == Some("key_2")
                    && (r.served_model.as_deref() == Some("model-0")
                        || r.requested_model.as_deref() == Some("model-0"))
                    && r.outcome == RequestOutcome::Success
            }),
        ),
    ];
    for (filter, pred) in cases {
        let want = newest_first(records.iter().filter(|r| pred(r)).cloned());
        assert!(!want.is_empty(), "{filter:?} matches something");
        let first_page = stores.ledger.usage_log(&filter).await.unwrap();
        assert_eq!(
            first_page,
            want[..want.len().min(LogFilter::DEFAULT_LIMIT as usize)].to_vec()
        );
        let paged = whole_log(
            stores.ledger.as_ref(),
            LogFilter {
                limit: 7,
                ..filter.clone()
            },
        )
        .await;
        assert_eq!(paged, want, "{filter:?}, paged");
    }
}

#[tokio::test]
async fn log_pages_are_index_walks_not_sorts() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("k.db")).await.unwrap();
    let some = |s: &str| Some(s.to_owned());
    let cursor = Some((T0, "req_x".to_owned()));
    let cases = [
        (LogFilter::default(), vec!["usage_records_at"]),
        (
            LogFilter {
                since: Some(T0),
                until: Some(T0 + HOUR),
                before: cursor.clone(),
                ..LogFilter::default()
            },
            vec!["usage_records_at"],
        ),
        (
            LogFilter {
                client_id: some("c"),
                key_id: some("k"),
                outcome: Some(RequestOutcome::Success),
                since: Some(T0),
                ..LogFilter::default()
            },
            vec!["usage_records_client"],
        ),
        (
            LogFilter {
                model: some("m"),
                key_id: some("k"),
                outcome: Some(RequestOutcome::Success),
                before: cursor.clone(),
                ..LogFilter::default()
            },
            vec!["usage_records_served", "usage_records_requested"],
        ),
        (
            LogFilter {
                model: some("m"),
                client_id: some("c"),
                ..LogFilter::default()
            },
            vec!["usage_records_client"],
        ),
        (
            LogFilter {
                key_id: some("k"),
                outcome: Some(RequestOutcome::StreamCut),
                ..LogFilter::default()
            },
            vec!["usage_records_key"],
        ),
        (
            LogFilter {
                outcome: Some(RequestOutcome::StreamCut),
                until: Some(T0),
                ..LogFilter::default()
            },
            vec!["usage_records_outcome"],
        ),
    ];
    for (filter, indexes) in cases {
        let plan: Vec<String> = super::sqlite_ledger::log_query("EXPLAIN QUERY PLAN ", &filter)
            .build()
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| sqlx::Row::get::<String, _>(r, "detail"))
            .collect();
        // The cursor's row is found through the request id's own index (a COVERING INDEX).
        let table_reads = plan.iter().filter(|l| l.contains("usage_records"));
        assert!(
            table_reads
                .clone()
                .all(|l| l.contains("USING INDEX") || l.contains("USING COVERING INDEX")),
            "{filter:?}: {plan:?}"
        );
        let plan = plan.join(" | ");
        for index in indexes {
            assert!(plan.contains(index), "{filter:?}: {plan}");
        }
        assert!(!plan.contains("TEMP B-TREE"), "{filter:?}: {plan}");
    }
}

async fn plan(store: &SqliteStore, mut query: QueryBuilder<'_, Sqlite>) -> Vec<String> {
    query
        .build()
        .fetch_all(&store.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| sqlx::Row::get::<String, _>(r, "detail"))
        .collect()
}

#[tokio::test]
async fn rollup_reads_are_key_ranges_of_one_dimension() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("k.db")).await.unwrap();
    for bucket in [Bucket::Minute, Bucket::Hour, Bucket::Total] {
        for group_by in GROUP_BYS {
            let query = RollupQuery {
                since: Some(T0 + 17 * MIN),
                until: Some(T0 + 5 * HOUR + 3 * MIN),
                bucket,
                group_by,
            };
            let plan = plan(
                &store,
                super::sqlite_ledger::rollup_query("EXPLAIN QUERY PLAN ", &query),
            )
            .await;
            let reads: Vec<_> = plan
                .iter()
                .filter(|l| l.contains("usage_minute") || l.contains("usage_hour"))
                .collect();
            let sources = if bucket == Bucket::Total { 3 } else { 1 };
            assert_eq!(reads.len(), sources, "{query:?}: {plan:?}");
            assert!(
                reads.iter().all(|l| l.starts_with("SEARCH")
                    && l.contains(
                        "USING PRIMARY KEY (dim=? AND bucket_start>? AND bucket_start<?)"
                    )),
                "{query:?}: one key range per source: {plan:?}"
            );
            // A series streams in key order, with no sort. A total sorts each source's rows to
            // group them by value (unless grouped by nothing), and the few result rows.
            let sorts = |of: &str| {
                plan.iter()
                    .any(|l| l.contains(&format!("TEMP B-TREE FOR {of}")))
            };
            let total = bucket == Bucket::Total;
            assert_eq!(
                sorts("GROUP BY"),
                total && group_by != GroupBy::None,
                "{query:?}: {plan:?}"
            );
            assert!(!sorts("ORDER BY") || total, "{query:?}: {plan:?}");
            assert!(!sorts("DISTINCT"), "{query:?}: {plan:?}");
        }
    }
    for table in ["usage_minute", "usage_hour"] {
        let sql = super::sqlite_ledger::rollup_purge(table);
        let plan = plan(
            &store,
            QueryBuilder::new(format!("EXPLAIN QUERY PLAN {sql}")),
        )
        .await;
        let plan = plan.join(" | ");
        assert!(
            plan.contains("USING PRIMARY KEY (dim=? AND bucket_start<?)"),
            "{table}: {plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "{table}: {plan}");
    }
}

#[tokio::test]
async fn purge_deletes_only_older_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("k.db")).await.unwrap();
    // A small chunk, so each table takes many purge transactions.
    let writer = store.ledger_writer().await.unwrap();
    let ledger = SqliteLedger::new(store.pool.clone(), writer).with_purge_chunk(97);
    let stores = Stores {
        store: Arc::new(store),
        ledger: Arc::new(ledger),
    };
    let records = generate(31, "req_", 2000, T0, 5 * HOUR);
    append_in_batches(stores.ledger.as_ref(), &records, 500).await;
    // The roll-up rows: one per bucket, dimension and value.
    let rows_of = |width: EpochMs| -> HashSet<_> {
        records
            .iter()
            .flat_map(|r| GROUP_BYS.map(|g| (r.at - r.at % width, g, group_of(r, g).0)))
            .collect()
    };
    let (minutes, hours) = (rows_of(MIN), rows_of(HOUR));

    let cut = Retention {
        raw_before: T0 + 2 * HOUR + 123,
        minute_before: T0 + 3 * HOUR + 30 * MIN,
        hour_before: T0 + HOUR,
    };
    let purged = stores.ledger.purge(&cut).await.unwrap();
    assert!(purged.raw > 5 * 97 && purged.minute > 5 * 97, "{purged:?}");
    assert_eq!(
        purged,
        Purged {
            raw: records.iter().filter(|r| r.at < cut.raw_before).count() as u64,
            minute: minutes.iter().filter(|m| m.0 < cut.minute_before).count() as u64,
            hour: hours.iter().filter(|h| h.0 < cut.hour_before).count() as u64,
        }
    );
    let kept = whole_log(stores.ledger.as_ref(), LogFilter::default()).await;
    assert_eq!(
        kept,
        newest_first(records.iter().filter(|r| r.at >= cut.raw_before).cloned())
    );
    let minute_rows = stores
        .ledger
        .rollup(&RollupQuery {
            since: None,
            until: None,
            bucket: Bucket::Minute,
            group_by: GroupBy::None,
        })
        .await
        .unwrap();
    assert!(
        minute_rows
            .iter()
            .all(|r| r.bucket_start.unwrap() >= cut.minute_before)
    );
    let hour_rows = stores
        .ledger
        .rollup(&RollupQuery {
            since: None,
            until: None,
            bucket: Bucket::Hour,
            group_by: GroupBy::None,
        })
        .await
        .unwrap();
    assert_eq!(hour_rows.len(), 4);
    assert_eq!(
        hour_rows.iter().map(|r| r.requests).sum::<u64>(),
        records.iter().filter(|r| r.at >= T0 + HOUR).count() as u64
    );

    // Purging again deletes nothing; keeping everything deletes nothing.
    assert_eq!(stores.ledger.purge(&cut).await.unwrap(), Purged::default());
    let keep_all = Retention {
        raw_before: EpochMs::MIN,
        minute_before: EpochMs::MIN,
        hour_before: EpochMs::MIN,
    };
    assert_eq!(
        stores.ledger.purge(&keep_all).await.unwrap(),
        Purged::default()
    );
}

/// Everything a reader can see, to compare before and after a failed append: the log, and every
/// roll-up row (each dimension, both tables) with its name.
async fn snapshot(ledger: &dyn Ledger) -> (i64, Vec<UsageRow>, Vec<Vec<RollupRow>>) {
    let mut rollups = Vec::new();
    for bucket in [Bucket::Minute, Bucket::Hour] {
        for group_by in GROUP_BYS {
            let query = RollupQuery {
                since: None,
                until: None,
                bucket,
                group_by,
            };
            rollups.push(ledger.rollup(&query).await.unwrap());
        }
    }
    (
        ledger.usage_count().await.unwrap(),
        whole_log(ledger, LogFilter::default()).await,
        rollups,
    )
}

#[tokio::test]
async fn a_failed_batch_leaves_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("k.db")).await.unwrap();
    let pool = store.pool.clone();
    let ledger = SqliteLedger::new(pool.clone(), store.ledger_writer().await.unwrap());

    let first = generate(37, "req_a_", 300, T0, HOUR);
    ledger.append_usage(&first).await.unwrap();
    let before = snapshot(&ledger).await;

    // The second batch: 1,200 records (more than one insert statement), with new names, into
    // minutes and hours the first batch already wrote.
    let mut second = generate(41, "req_b_", 1200, T0, 2 * HOUR);
    for r in &mut second {
        r.key_name = r.key_name.as_ref().map(|n| format!("{n} renamed"));
    }
    second[900].served_model = Some("boom".into());

    // Failure while inserting records: the 901st, in the fifteenth insert statement, after the
    // first fourteen (896 records) ran.
    sqlx::query(
        "CREATE TRIGGER fail_record BEFORE INSERT ON usage_records \
         WHEN NEW.served_model = 'boom' BEGIN SELECT RAISE(ABORT, 'injected'); END",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert!(ledger.append_usage(&second).await.is_err());
    assert_eq!(snapshot(&ledger).await, before);
    sqlx::query("DROP TRIGGER fail_record")
        .execute(&pool)
        .await
        .unwrap();

    // Failure in the hour roll-up, after every record and minute row of the batch, and the
    // hour rows of the dimensions before 'model', were written.
    sqlx::query(
        "CREATE TRIGGER fail_hour BEFORE INSERT ON usage_hour \
         WHEN NEW.dim = 'model' AND NEW.value = 'boom' \
         BEGIN SELECT RAISE(ABORT, 'injected'); END",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert!(ledger.append_usage(&second).await.is_err());
    assert_eq!(snapshot(&ledger).await, before);
    sqlx::query("DROP TRIGGER fail_hour")
        .execute(&pool)
        .await
        .unwrap();

    // Nothing of it was kept, so the same batch now goes in whole.
    ledger.append_usage(&second).await.unwrap();
    assert_eq!(ledger.usage_count().await.unwrap(), 1500);
    let both: Vec<UsageRecord> = first.iter().chain(&second).cloned().collect();
    for group_by in GROUP_BYS {
        let query = total_query(None, None, group_by);
        let rows = (&ledger as &dyn Ledger).rollup(&query).await.unwrap();
        assert_eq!(seen(&rows), expected_rollup(&both, &query), "{query:?}");
    }
}

#[tokio::test]
async fn a_stored_request_id_is_appended_once() {
    let (_dir, stores) = open().await;
    let records = generate(43, "req_", 500, T0, HOUR);
    stores.ledger.append_usage(&records).await.unwrap();
    let total = || async {
        stores
            .ledger
            .rollup(&total_query(None, None, GroupBy::None))
            .await
            .unwrap()
    };
    let once = total().await;

    // The writer replays a batch it is unsure about: nothing is counted twice.
    stores.ledger.append_usage(&records).await.unwrap();
    assert_eq!(stores.ledger.usage_count().await.unwrap(), 500);
    assert_eq!(total().await, once);

    // A batch repeating an id (stored, or earlier in the same batch) keeps the first record.
    let mut again = records[0].clone();
    again.cost_nanos = Some(1);
    let mut fresh = bare("req_new", T0 + 1);
    fresh.cost_nanos = Some(10);
    let mut twin = fresh.clone();
    twin.cost_nanos = Some(1000);
    stores
        .ledger
        .append_usage(&[again, fresh.clone(), twin])
        .await
        .unwrap();
    assert_eq!(stores.ledger.usage_count().await.unwrap(), 501);
    let log = whole_log(stores.ledger.as_ref(), LogFilter::default()).await;
    let stored = |id: &str| log.iter().find(|r| r.request_id == id).cloned().unwrap();
    assert_eq!(stored(&records[0].request_id), records[0].clone());
    assert_eq!(stored("req_new"), fresh.clone());
    let after = total().await;
    assert_eq!(after[0].requests, once[0].requests + 1);
    assert_eq!(after[0].cost_nanos, once[0].cost_nanos + 10);

    // An empty batch is a no-op.
    stores.ledger.append_usage(&[]).await.unwrap();
    assert_eq!(stores.ledger.usage_count().await.unwrap(), 501);
}

#[tokio::test]
async fn data_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let records = generate(47, "req_", 800, T0, 3 * HOUR);
    let (log, rollup) = {
        let stores = open_sqlite(&path).await.unwrap();
        append_in_batches(stores.ledger.as_ref(), &records, 300).await;
        (
            whole_log(stores.ledger.as_ref(), LogFilter::default()).await,
            stores
                .ledger
                .rollup(&total_query(None, None, GroupBy::Model))
                .await
                .unwrap(),
        )
    };
    let stores = open_sqlite(&path).await.unwrap();
    assert!(stores.ledger.integrity_ok().await.unwrap());
    assert_eq!(stores.ledger.usage_count().await.unwrap(), 800);
    assert_eq!(
        whole_log(stores.ledger.as_ref(), LogFilter::default()).await,
        log
    );
    assert_eq!(log, newest_first(records));
    assert_eq!(
        stores
            .ledger
            .rollup(&total_query(None, None, GroupBy::Model))
            .await
            .unwrap(),
        rollup
    );
    // The older entry point opens the same file (migrations already applied).
    let store = connect_sqlite(&path).await.unwrap();
    store.ping().await.unwrap();
}
