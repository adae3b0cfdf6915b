//! The usage ledger in the embedded SQLite file, on the store's pool (WAL, `synchronous=FULL`).
//!
//! The roll-ups are kept per dimension ([`Dim`]): a record adds to one row per dimension per
//! bucket, so a bucket holds 1 + models + credentials + clients rows however they combine, and a
//! query grouped by one dimension reads only its rows. A batch is aggregated in memory first, so
//! each (dim, bucket, value) row is written once per batch, by one multi-row UPSERT per table
//! that adds to the stored counters. Statements are multi-row too (a few per batch, not one per
//! record): with sqlx every statement is a round trip to the connection's worker thread.

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use async_trait::async_trait;
use keyloop_wire::anthropic::Speed;
use keyloop_wire::usage::{InferenceGeo, Usage};
use sqlx::sqlite::{SqliteArguments, SqlitePool, SqliteRow};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::ledger::{
    Bucket, FAILURE_CLASSES, GroupBy, HISTOGRAM_BUCKETS, HOUR_MS, Histogram, Ledger, LogFilter,
    MINUTE_MS, Purged, Retention, RollupQuery, RollupRow, UsageRow,
};
use super::{Error, Result};
use crate::accounting::record::{FailedAttempt, Provider, RequestOutcome, Route, UsageRecord};
use crate::types::{EpochMs, OutcomeClass};

pub struct SqliteLedger {
    /// Reads: the request log, roll-ups, counts.
    pool: SqlitePool,
    /// Appends and purges, on a connection of their own so that its large batch statements
    /// are compiled and kept once (see `SqliteStore::ledger_writer`).
    writer: SqlitePool,
    /// Rows per purge transaction: small enough that the writer waits milliseconds, not seconds.
    purge_chunk: u64,
}

impl SqliteLedger {
    /// Uses pools on a database whose migrations have run (the store's).
    pub fn new(pool: SqlitePool, writer: SqlitePool) -> Self {
        Self {
            pool,
            writer,
            purge_chunk: 20_000,
        }
    }

    /// Tests use a small chunk to go through the purge loop many times.
    #[cfg(test)]
    pub(super) fn with_purge_chunk(mut self, rows: u64) -> Self {
        self.purge_chunk = rows;
        self
    }
}

// ---- roll-up counters -------------------------------------------------------------------------

/// The counter columns of `usage_minute` / `usage_hour`, in the order of [`Counters`].
const COUNTERS: [&str; N_COUNTERS] = [
    "requests",
    "outcome_success",
    "outcome_client_error",
    "outcome_upstream_error",
    "outcome_no_credential",
    "outcome_client_cancelled",
    "outcome_stream_cut",
    "failed_rate_limited",
    "failed_overloaded",
    "failed_server_error",
    "failed_timeout",
    "failed_connect_error",
    "failed_invalid_credential",
    "failed_billing_exhausted",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "cost_nanos",
    "unpriced_requests",
    "latency_le_5",
    "latency_le_10",
    "latency_le_25",
    "latency_le_50",
    "latency_le_100",
    "latency_le_250",
    "latency_le_500",
    "latency_le_1000",
    "latency_le_2500",
    "latency_le_5000",
    "latency_le_10000",
    "latency_le_30000",
    "latency_le_60000",
    "latency_le_inf",
    "latency_sum_ms",
    "ttft_le_5",
    "ttft_le_10",
    "ttft_le_25",
    "ttft_le_50",
    "ttft_le_100",
    "ttft_le_250",
    "ttft_le_500",
    "ttft_le_1000",
    "ttft_le_2500",
    "ttft_le_5000",
    "ttft_le_10000",
    "ttft_le_30000",
    "ttft_le_60000",
    "ttft_le_inf",
    "ttft_sum_ms",
];

const C_REQUESTS: usize = 0;
const C_OUTCOME: usize = C_REQUESTS + 1;
const C_FAILED: usize = C_OUTCOME + RequestOutcome::ALL.len();
const C_INPUT: usize = C_FAILED + FAILURE_CLASSES.len();
const C_OUTPUT: usize = C_INPUT + 1;
const C_CACHE_READ: usize = C_INPUT + 2;
const C_CACHE_WRITE_5M: usize = C_INPUT + 3;
const C_CACHE_WRITE_1H: usize = C_INPUT + 4;
const C_COST: usize = C_INPUT + 5;
const C_UNPRICED: usize = C_COST + 1;
const C_LATENCY: usize = C_UNPRICED + 1;
const C_LATENCY_SUM: usize = C_LATENCY + HISTOGRAM_BUCKETS;
const C_TTFT: usize = C_LATENCY_SUM + 1;
const C_TTFT_SUM: usize = C_TTFT + HISTOGRAM_BUCKETS;
const N_COUNTERS: usize = C_TTFT_SUM + 1;

type Counters = [i64; N_COUNTERS];

/// The dimension a roll-up row belongs to: the `dim` column of `usage_minute` / `usage_hour`
/// (and, for credentials and clients, of `usage_names`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Dim {
    /// Every request, in one row per bucket (value '').
    All,
    /// Served model, else requested model.
    Model,
    /// `key_id`.
    Key,
    /// `client_id`.
    Client,
}

impl Dim {
    const ALL: [Dim; 4] = [Dim::All, Dim::Model, Dim::Key, Dim::Client];

    fn of(group_by: GroupBy) -> Self {
        match group_by {
            GroupBy::None => Self::All,
            GroupBy::Model => Self::Model,
            GroupBy::Credential => Self::Key,
            GroupBy::Client => Self::Client,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Model => "model",
            Self::Key => "key",
            Self::Client => "client",
        }
    }

    /// The row of this dimension a record adds to; '' is "none".
    fn value_of(self, r: &UsageRecord) -> &str {
        match self {
            Self::All => "",
            Self::Model => model_of(r),
            Self::Key => r.key_id.as_deref().unwrap_or(""),
            Self::Client => r.client_id.as_deref().unwrap_or(""),
        }
    }

    /// Whether `usage_names` holds names for this dimension's values.
    fn has_names(self) -> bool {
        matches!(self, Self::Key | Self::Client)
    }
}

/// A roll-up row's key, in the table's key order: (dim, bucket_start, value).
type RowKey<'a> = (Dim, EpochMs, &'a str);

/// SQL integers are signed; a token count past `i64::MAX` cannot happen, and is stored saturated.
fn tokens(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn floor_to(t: EpochMs, width: EpochMs) -> EpochMs {
    t - t.rem_euclid(width)
}

fn ceil_to(t: EpochMs, width: EpochMs) -> EpochMs {
    let floor = floor_to(t, width);
    if floor == t { t } else { floor + width }
}

fn model_of(r: &UsageRecord) -> &str {
    r.served_model
        .as_deref()
        .or(r.requested_model.as_deref())
        .unwrap_or("")
}

fn fold(into: &mut Counters, r: &UsageRecord) {
    let mut add = |i: usize, v: i64| into[i] = into[i].saturating_add(v);
    add(C_REQUESTS, 1);
    if let Some(i) = RequestOutcome::ALL.iter().position(|&o| o == r.outcome) {
        add(C_OUTCOME + i, 1);
    }
    for attempt in &r.attempts {
        if let Some(i) = FAILURE_CLASSES.iter().position(|&c| c == attempt.class) {
            add(C_FAILED + i, 1);
        }
    }
    add(C_INPUT, tokens(r.usage.input_tokens));
    add(C_OUTPUT, tokens(r.usage.output_tokens));
    add(C_CACHE_READ, tokens(r.usage.cache_read_tokens));
    add(C_CACHE_WRITE_5M, tokens(r.usage.cache_write_5m_tokens));
    add(C_CACHE_WRITE_1H, tokens(r.usage.cache_write_1h_tokens));
    match r.cost_nanos {
        Some(nanos) => add(C_COST, nanos),
        None => add(C_UNPRICED, 1),
    }
    add(C_LATENCY + Histogram::bucket_of(r.latency_ms), 1);
    add(C_LATENCY_SUM, r.latency_ms);
    if let Some(ttft) = r.ttft_ms {
        add(C_TTFT + Histogram::bucket_of(ttft), 1);
        add(C_TTFT_SUM, ttft);
    }
}

fn add_counters(into: &mut Counters, from: &Counters) {
    for (a, b) in into.iter_mut().zip(from) {
        *a = a.saturating_add(*b);
    }
}

// ---- the raw record ---------------------------------------------------------------------------

const RECORD_COLUMNS: &str = "request_id, at, client_id, client_name, attributed, key_id, \
     key_name, provider, route, requested_model, served_model, status, outcome, last_class, \
     attempts, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, \
     cache_write_5m_tokens, cache_write_1h_tokens, cost_nanos, latency_ms, ttft_ms, streamed, \
     stop_reason, batch, speed, inference_geo, session_moved";
const RECORD_COLUMN_COUNT: usize = 30;

/// Most rows per multi-row statement. SQLite compiles a multi-row INSERT to a program that
/// grows with its rows (about 2 KB a record row) and keeps it prepared: at 512 rows the writer
/// connection held megabytes of programs; at 64 it holds a few hundred kilobytes, and the
/// ledger bench appends as fast (18.2k–18.8k records/s at 512, 17.6k–19.1k at 64).
const RECORD_CHUNK: usize = 64;
const ROLLUP_CHUNK: usize = 64;

/// Splits `items` into chunks of `max`, then of falling powers of two: the SQL text depends on
/// the row count, so this keeps to seven statement shapes, which stay prepared in the
/// connection's statement cache instead of being parsed again for every batch.
pub(super) fn statement_chunks<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = if rest.len() >= max {
            max
        } else {
            1 << rest.len().ilog2()
        };
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

/// A multi-row statement with its bound values.
type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

/// The SQL texts of one multi-row statement, one per chunk size that [`statement_chunks`]
/// yields, each built on first use. The text of a 64-row INSERT is 5 KB of placeholders:
/// writing it for every batch cost more per record than binding the record's values.
struct StatementTexts([OnceLock<String>; CHUNK_SIZES]);

/// `statement_chunks` yields powers of two up to the largest chunk, 64 = 2^6.
const CHUNK_SIZES: usize = 7;

impl StatementTexts {
    const fn new() -> Self {
        Self([const { OnceLock::new() }; CHUNK_SIZES])
    }

    /// The text for `rows` rows (a power of two), `build` making it the first time.
    fn get(&self, rows: usize, build: impl FnOnce(usize) -> String) -> &str {
        debug_assert!(rows.is_power_of_two());
        self.0[rows.ilog2() as usize].get_or_init(|| build(rows))
    }
}

/// `head VALUES (?, …), (?, …)… tail`: `rows` tuples of `columns` placeholders.
fn values_sql(head: &str, columns: usize, rows: usize, tail: &str) -> String {
    let tuple = format!("({})", vec!["?"; columns].join(", "));
    format!("{head} VALUES {}{tail}", vec![tuple; rows].join(", "))
}

/// `[[key_id, key_name, class], …]`, or NULL for none (most requests).
fn attempts_json(attempts: &[FailedAttempt]) -> Option<String> {
    if attempts.is_empty() {
        return None;
    }
    let tuples: Vec<(&str, &str, &str)> = attempts
        .iter()
        .map(|a| (a.key_id.as_str(), a.key_name.as_str(), a.class.as_str()))
        .collect();
    Some(serde_json::to_string(&tuples).expect("string tuples serialize"))
}

fn decode_error(what: impl Into<String>) -> Error {
    Error::Database(sqlx::Error::Decode(what.into().into()))
}

fn parse_attempts(json: Option<String>) -> Result<Vec<FailedAttempt>> {
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    let tuples: Vec<(String, String, String)> = serde_json::from_str(&json)
        .map_err(|e| decode_error(format!("usage_records.attempts: {e}")))?;
    tuples
        .into_iter()
        .map(|(key_id, key_name, class)| {
            let class = OutcomeClass::parse(&class)
                .ok_or_else(|| decode_error(format!("unknown attempt class {class:?}")))?;
            Ok(FailedAttempt {
                key_id,
                key_name,
                class,
            })
        })
        .collect()
}

fn usage_row(row: &SqliteRow) -> Result<UsageRow> {
    let route: String = row.get("route");
    let outcome: String = row.get("outcome");
    let last_class: Option<String> = row.get("last_class");
    let status: i64 = row.get("status");
    let speed: Option<String> = row.get("speed");
    let inference_geo: Option<String> = row.get("inference_geo");
    let get_tokens = |name: &str| count(row.get(name));
    Ok(UsageRow {
        request_id: row.get("request_id"),
        at: row.get("at"),
        client_id: row.get("client_id"),
        client_name: row.get("client_name"),
        attributed: row.get("attributed"),
        key_id: row.get("key_id"),
        key_name: row.get("key_name"),
        provider: {
            let provider: String = row.get("provider");
            Provider::parse(&provider)
                .ok_or_else(|| decode_error(format!("provider {provider:?}")))?
        },
        route: Route::parse(&route).ok_or_else(|| decode_error(format!("route {route:?}")))?,
        requested_model: row.get("requested_model"),
        served_model: row.get("served_model"),
        status: u16::try_from(status).map_err(|_| decode_error(format!("status {status}")))?,
        outcome: RequestOutcome::parse(&outcome)
            .ok_or_else(|| decode_error(format!("outcome {outcome:?}")))?,
        last_class: match last_class {
            None => None,
            Some(c) => Some(
                OutcomeClass::parse(&c).ok_or_else(|| decode_error(format!("last_class {c:?}")))?,
            ),
        },
        attempts: parse_attempts(row.get("attempts"))?,
        usage: Usage {
            input_tokens: get_tokens("input_tokens"),
            output_tokens: get_tokens("output_tokens"),
            cache_read_tokens: get_tokens("cache_read_tokens"),
            cache_write_tokens: get_tokens("cache_write_tokens"),
            cache_write_5m_tokens: get_tokens("cache_write_5m_tokens"),
            cache_write_1h_tokens: get_tokens("cache_write_1h_tokens"),
            inference_geo: inference_geo
                .as_deref()
                .map_or(InferenceGeo::Unreported, InferenceGeo::from_wire),
        },
        cost_nanos: row.get("cost_nanos"),
        latency_ms: row.get("latency_ms"),
        ttft_ms: row.get("ttft_ms"),
        streamed: row.get("streamed"),
        stop_reason: row.get("stop_reason"),
        batch: row.get("batch"),
        speed: speed.as_deref().map_or(Speed::Standard, Speed::from_wire),
        session_moved: row
            .get::<Option<i64>, _>("session_moved")
            .is_some_and(|v| v != 0),
    })
}

/// Inserts the records that are not stored yet. Returns `None` when all of them were new (the
/// usual case), else the request ids actually inserted.
///
/// The statements return nothing: sqlx hands each returned row to the caller's task as a message
/// of its own, and a `RETURNING` of every id switched between the writer and the connection's
/// thread twice per record (a quarter of the SQLite threads' CPU at 2,000 requests/s).
/// A new row's id is above every id stored before, so the rare batch with duplicates finds what
/// it inserted by id.
async fn insert_records(
    conn: &mut SqliteConnection,
    records: &[UsageRecord],
) -> Result<Option<HashSet<String>>> {
    let (before,): (i64,) = sqlx::query_as("SELECT coalesce(max(id), 0) FROM usage_records")
        .fetch_one(&mut *conn)
        .await?;
    let mut inserted = 0;
    for chunk in statement_chunks(records, RECORD_CHUNK) {
        inserted += insert_statement(chunk)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    if inserted == records.len() as u64 {
        return Ok(None);
    }
    let ids: Vec<(String,)> = sqlx::query_as("SELECT request_id FROM usage_records WHERE id > ?")
        .bind(before)
        .fetch_all(&mut *conn)
        .await?;
    Ok(Some(ids.into_iter().map(|(id,)| id).collect()))
}

/// The multi-row INSERT of `chunk`: 27 bound values per record.
fn insert_statement(chunk: &[UsageRecord]) -> SqliteQuery<'_> {
    static TEXTS: StatementTexts = StatementTexts::new();
    let sql = TEXTS.get(chunk.len(), |rows| {
        values_sql(
            &format!("INSERT INTO usage_records ({RECORD_COLUMNS})"),
            RECORD_COLUMN_COUNT,
            rows,
            " ON CONFLICT (request_id) DO NOTHING",
        )
    });
    let mut query = sqlx::query(sql);
    for r in chunk {
        query = query
            .bind(r.request_id.as_str())
            .bind(r.at)
            .bind(r.client_id.as_deref())
            .bind(r.client_name.as_deref())
            .bind(r.attributed.as_deref())
            .bind(r.key_id.as_deref())
            .bind(r.key_name.as_deref())
            .bind(r.provider.as_str())
            .bind(r.route.as_str())
            .bind(r.requested_model.as_deref())
            .bind(r.served_model.as_deref())
            .bind(i64::from(r.status))
            .bind(r.outcome.as_str())
            .bind(r.last_class.map(|c| c.as_str()))
            .bind(attempts_json(&r.attempts))
            .bind(tokens(r.usage.input_tokens))
            .bind(tokens(r.usage.output_tokens))
            .bind(tokens(r.usage.cache_read_tokens))
            .bind(tokens(r.usage.cache_write_tokens))
            .bind(tokens(r.usage.cache_write_5m_tokens))
            .bind(tokens(r.usage.cache_write_1h_tokens))
            .bind(r.cost_nanos)
            .bind(r.latency_ms)
            .bind(r.ttft_ms)
            .bind(r.streamed)
            .bind(r.stop_reason.as_deref())
            .bind(r.batch)
            .bind(match r.speed {
                Speed::Standard => None,
                fast => Some(fast.as_str()),
            })
            .bind(r.usage.inference_geo.wire_value())
            .bind(r.session_moved.then_some(1_i64));
    }
    query
}

/// A batch's roll-up rows, aggregated in memory: the minute rows, the hour rows folded from
/// them, and the latest name of each credential and client id.
struct Rollups<'a> {
    minutes: BTreeMap<RowKey<'a>, Counters>,
    hours: BTreeMap<RowKey<'a>, Counters>,
    names: BTreeMap<(Dim, &'a str), &'a str>,
}

impl<'a> Rollups<'a> {
    fn of(records: impl IntoIterator<Item = &'a UsageRecord>) -> Self {
        let mut minutes: BTreeMap<RowKey<'a>, Counters> = BTreeMap::new();
        let mut names: BTreeMap<(Dim, &str), &str> = BTreeMap::new();
        for r in records {
            let mut one = [0; N_COUNTERS];
            fold(&mut one, r);
            let minute = floor_to(r.at, MINUTE_MS);
            for dim in Dim::ALL {
                let row = minutes
                    .entry((dim, minute, dim.value_of(r)))
                    .or_insert([0; N_COUNTERS]);
                add_counters(row, &one);
            }
            if let (Some(id), Some(name)) = (&r.key_id, &r.key_name) {
                names.insert((Dim::Key, id), name);
            }
            if let (Some(id), Some(name)) = (&r.client_id, &r.client_name) {
                names.insert((Dim::Client, id), name);
            }
        }
        let mut hours: BTreeMap<RowKey<'a>, Counters> = BTreeMap::new();
        for (&(dim, minute, value), counters) in &minutes {
            let hour = (dim, floor_to(minute, HOUR_MS), value);
            add_counters(hours.entry(hour).or_insert([0; N_COUNTERS]), counters);
        }
        Self {
            minutes,
            hours,
            names,
        }
    }
}

/// A roll-up table and the texts of its multi-row UPSERTs.
struct RollupTable {
    name: &'static str,
    texts: StatementTexts,
}

static MINUTE_TABLE: RollupTable = RollupTable {
    name: "usage_minute",
    texts: StatementTexts::new(),
};
static HOUR_TABLE: RollupTable = RollupTable {
    name: "usage_hour",
    texts: StatementTexts::new(),
};

async fn upsert_rollup(
    conn: &mut SqliteConnection,
    table: &'static RollupTable,
    rows: &BTreeMap<RowKey<'_>, Counters>,
) -> Result<()> {
    let rows: Vec<_> = rows.iter().collect();
    for chunk in statement_chunks(&rows, ROLLUP_CHUNK) {
        rollup_statement(table, chunk).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The multi-row UPSERT of `chunk` into `table`: 3 + 51 bound values per row, each adding its
/// counters to the stored row (`c = c + excluded.c`).
fn rollup_statement<'a>(
    table: &'static RollupTable,
    chunk: &[(&RowKey<'a>, &Counters)],
) -> SqliteQuery<'a> {
    let sql = table.texts.get(chunk.len(), |rows| {
        let update = COUNTERS
            .iter()
            .map(|c| format!("{c} = {c} + excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        values_sql(
            &format!(
                "INSERT INTO {} (dim, bucket_start, value, {})",
                table.name,
                COUNTERS.join(", ")
            ),
            3 + N_COUNTERS,
            rows,
            &format!(" ON CONFLICT (dim, bucket_start, value) DO UPDATE SET {update}"),
        )
    });
    let mut query = sqlx::query(sql);
    for ((dim, bucket, value), counters) in chunk {
        query = query.bind(dim.as_str()).bind(*bucket).bind(*value);
        for &c in counters.iter() {
            query = query.bind(c);
        }
    }
    query
}

async fn upsert_names(
    conn: &mut SqliteConnection,
    names: &BTreeMap<(Dim, &str), &str>,
) -> Result<()> {
    let names: Vec<_> = names.iter().collect();
    for chunk in statement_chunks(&names, ROLLUP_CHUNK) {
        names_statement(chunk).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The multi-row UPSERT of `chunk` into `usage_names`; a name is rewritten only if it changed.
fn names_statement<'a>(chunk: &[(&(Dim, &'a str), &&'a str)]) -> SqliteQuery<'a> {
    static TEXTS: StatementTexts = StatementTexts::new();
    let sql = TEXTS.get(chunk.len(), |rows| {
        values_sql(
            "INSERT INTO usage_names (dim, id, name)",
            3,
            rows,
            " ON CONFLICT (dim, id) DO UPDATE SET name = excluded.name \
             WHERE name <> excluded.name",
        )
    });
    let mut query = sqlx::query(sql);
    for ((dim, id), name) in chunk {
        query = query.bind(dim.as_str()).bind(*id).bind(**name);
    }
    query
}

// ---- reads ------------------------------------------------------------------------------------

/// The index a log query walks. Each index is ordered `(column, at)` and, as every SQLite index,
/// ends in the rowid, so whichever is chosen yields rows in page order `(at, id)` and LIMIT stops
/// the walk early; the choice only decides how many rows are read and dropped by the other
/// filters. Without statistics SQLite may pick the outcome index (six values) over the client
/// index, so the query names its choice: the other equality filters are written
/// `+column = ?`, which keeps them out of index selection.
/// Order of preference, most selective first in a typical deployment: client, model, key,
/// outcome, then time alone.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Driver {
    Client,
    Model,
    Key,
    Outcome,
    Time,
}

impl Driver {
    fn of(f: &LogFilter) -> Self {
        if f.client_id.is_some() {
            Self::Client
        } else if f.model.is_some() {
            Self::Model
        } else if f.key_id.is_some() {
            Self::Key
        } else if f.outcome.is_some() {
            Self::Outcome
        } else {
            Self::Time
        }
    }

    /// `column` when `owner` (the driver whose index leads with it) is this driver, else
    /// `+column`.
    fn column(self, column: &'static str, owner: Driver) -> String {
        if self == owner {
            column.to_owned()
        } else {
            format!("+{column}")
        }
    }
}

/// The request-log query for `filter`, after `prefix` (`EXPLAIN QUERY PLAN ` in a test).
pub(super) fn log_query<'a>(prefix: &str, filter: &'a LogFilter) -> QueryBuilder<'a, Sqlite> {
    let driver = Driver::of(filter);
    let limit = i64::from(filter.limit.min(LogFilter::MAX_LIMIT));
    let mut qb: QueryBuilder<'a, Sqlite> = QueryBuilder::new(prefix);
    match &filter.model {
        // Two ordered index walks merged (a compound SELECT with ORDER BY runs as a merge of
        // co-routines), so LIMIT stops both early; an OR would collect and sort every match.
        // UNION ALL, with the second walk skipping what the first returns: a UNION would
        // order by every column to find duplicates.
        Some(model) => {
            qb.push(format!(
                "SELECT id, {RECORD_COLUMNS} FROM usage_records WHERE {} = ",
                driver.column("served_model", Driver::Model)
            ))
            .push_bind(model.as_str());
            push_log_conditions(&mut qb, filter, driver);
            qb.push(format!(
                " UNION ALL SELECT id, {RECORD_COLUMNS} FROM usage_records WHERE {} = ",
                driver.column("requested_model", Driver::Model)
            ))
            .push_bind(model.as_str())
            .push(" AND served_model IS NOT ")
            .push_bind(model.as_str());
            push_log_conditions(&mut qb, filter, driver);
        }
        None => {
            qb.push(format!(
                "SELECT id, {RECORD_COLUMNS} FROM usage_records WHERE 1 = 1"
            ));
            push_log_conditions(&mut qb, filter, driver);
        }
    }
    qb.push(" ORDER BY at DESC, id DESC LIMIT ")
        .push_bind(limit);
    qb
}

/// Appends the log filters other than `model` (each as `AND …`).
fn push_log_conditions<'a>(qb: &mut QueryBuilder<'a, Sqlite>, f: &'a LogFilter, driver: Driver) {
    if let Some(since) = f.since {
        qb.push(" AND at >= ").push_bind(since);
    }
    if let Some(until) = f.until {
        qb.push(" AND at < ").push_bind(until);
    }
    if let Some(client) = &f.client_id {
        qb.push(format!(
            " AND {} = ",
            driver.column("client_id", Driver::Client)
        ))
        .push_bind(client.as_str());
    }
    if let Some(key) = &f.key_id {
        qb.push(format!(" AND {} = ", driver.column("key_id", Driver::Key)))
            .push_bind(key.as_str());
    }
    if let Some(outcome) = f.outcome {
        qb.push(format!(
            " AND {} = ",
            driver.column("outcome", Driver::Outcome)
        ))
        .push_bind(outcome.as_str());
    }
    // The cursor names a row by its request id; pages go by id. A cursor whose row is gone
    // (purged) pages on from the millisecond before it.
    if let Some((at, request_id)) = &f.before {
        qb.push(" AND (at, id) < (")
            .push_bind(*at)
            .push(", coalesce((SELECT id FROM usage_records WHERE request_id = ")
            .push_bind(request_id.as_str())
            .push("), 0))");
    }
}

/// A range of bucket starts in one roll-up table: `(table, from, until)`, `from` inclusive,
/// `until` exclusive, None open.
type Source = (&'static str, Option<EpochMs>, Option<EpochMs>);

/// Where the rows of a minute or hour series come from: every bucket overlapping the range.
fn series_source(table: &'static str, width: EpochMs, q: &RollupQuery) -> Source {
    (table, q.since.map(|s| floor_to(s, width)), q.until)
}

/// Where the rows of a total come from: whole hours from the hour table, the partial hours at
/// the edges from the minute table.
fn total_sources(q: &RollupQuery) -> Vec<Source> {
    let minute_from = q.since.map(|s| floor_to(s, MINUTE_MS));
    let whole_from = q.since.map(|s| ceil_to(s, HOUR_MS));
    let whole_until = q.until.map(|u| floor_to(u, HOUR_MS));
    if let (Some(from), Some(until)) = (whole_from, whole_until)
        && from >= until
    {
        return vec![("usage_minute", minute_from, q.until)];
    }
    let mut sources = vec![("usage_hour", whole_from, whole_until)];
    if let (Some(from), Some(whole_from)) = (minute_from, whole_from)
        && from < whole_from
    {
        sources.push(("usage_minute", Some(from), Some(whole_from)));
    }
    if let (Some(whole_until), Some(until)) = (whole_until, q.until)
        && whole_until < until
    {
        sources.push(("usage_minute", Some(whole_until), Some(until)));
    }
    sources
}

/// The roll-up query for `q`, after `prefix` (`EXPLAIN QUERY PLAN ` in a test). Result columns:
/// bucket start, group, the [`COUNTERS`] as one JSON array, group name.
///
/// Every source is read as one range of the table's key `(dim, bucket_start, value)`: the rows
/// of the queried dimension in the time range, and no others. A minute or hour series is those
/// rows as stored (one row per dim, bucket and value, so there is nothing to add up), already in
/// result order: it streams, with no sort. A total sums each source grouped by value (a sort of
/// that dimension's rows in the range, at most a few hundred an hour), then adds up those
/// partial rows. No GROUP BY term that is not needed: a constant term still costs a sort.
///
/// The counters leave SQLite as one JSON array per row, not 45 columns: sqlx copies each value
/// out of SQLite on its own (an allocation or two, ~150 ns), so a 45-column row costs ~8 µs to
/// fetch and decode, the same row as one JSON text ~3 µs including parsing. That is what a series
/// of thousands of rows (a day of minutes by credential, a week of hours by client) spends its
/// time on; SQLite reads the rows themselves in a fraction of it (bench/results/*-ledger.md).
pub(super) fn rollup_query<'a>(prefix: &str, q: &RollupQuery) -> QueryBuilder<'a, Sqlite> {
    let dim = Dim::of(q.group_by);
    let (name, join) = if dim.has_names() {
        // Names are joined last: one lookup per result row.
        (
            "n.name",
            format!(
                " LEFT JOIN usage_names n ON n.dim = '{}' AND n.id = r.g",
                dim.as_str()
            ),
        )
    } else {
        ("NULL", String::new())
    };
    let mut qb: QueryBuilder<'a, Sqlite> = QueryBuilder::new(format!(
        "{prefix}SELECT r.b, r.g, json_array({}), {name} FROM (",
        COUNTERS.map(|c| format!("r.{c}")).join(", ")
    ));
    match q.bucket {
        Bucket::Minute => push_series(&mut qb, dim, series_source("usage_minute", MINUTE_MS, q)),
        Bucket::Hour => push_series(&mut qb, dim, series_source("usage_hour", HOUR_MS, q)),
        Bucket::Total => push_total(&mut qb, dim, total_sources(q)),
    }
    qb.push(format!(") r{join} ORDER BY r.b, r.g"));
    qb
}

fn push_series(qb: &mut QueryBuilder<'_, Sqlite>, dim: Dim, (table, from, until): Source) {
    qb.push(format!(
        "SELECT bucket_start AS b, value AS g, {} FROM {table}",
        COUNTERS.join(", ")
    ));
    push_range(qb, dim, from, until);
}

fn push_total(qb: &mut QueryBuilder<'_, Sqlite>, dim: Dim, sources: Vec<Source>) {
    let sums = |alias: &str| {
        COUNTERS
            .iter()
            .map(|c| format!("SUM({alias}{c}) AS {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let grouped = dim != Dim::All;
    // With no GROUP BY, an aggregate over no rows is still one row (of NULLs): drop it.
    let group_clause = |key: &str| {
        if grouped {
            format!(" GROUP BY {key}")
        } else {
            " HAVING COUNT(*) > 0".to_owned()
        }
    };
    let combine = sources.len() > 1;
    if combine {
        qb.push(format!("SELECT NULL AS b, s.g AS g, {} FROM (", sums("s.")));
    }
    for (i, (table, from, until)) in sources.into_iter().enumerate() {
        if i > 0 {
            qb.push(" UNION ALL ");
        }
        qb.push(format!(
            "SELECT NULL AS b, {} AS g, {} FROM {table}",
            if grouped { "value" } else { "NULL" },
            sums("")
        ));
        push_range(qb, dim, from, until);
        qb.push(group_clause("value"));
    }
    if combine {
        qb.push(format!(") s{}", group_clause("s.g")));
    }
}

/// `WHERE dim = … AND bucket_start` in `[from, until)`: one range of the key.
fn push_range(
    qb: &mut QueryBuilder<'_, Sqlite>,
    dim: Dim,
    from: Option<EpochMs>,
    until: Option<EpochMs>,
) {
    qb.push(" WHERE dim = ").push_bind(dim.as_str());
    if let Some(from) = from {
        qb.push(" AND bucket_start >= ").push_bind(from);
    }
    if let Some(until) = until {
        qb.push(" AND bucket_start < ").push_bind(until);
    }
}

fn rollup_row(row: &SqliteRow) -> Result<RollupRow> {
    let json: String = row.get(2);
    let counters: Vec<i64> =
        serde_json::from_str(&json).map_err(|e| decode_error(format!("roll-up counters: {e}")))?;
    let counters = Counters::try_from(counters).map_err(|got| {
        decode_error(format!(
            "roll-up counters: {} values, not {N_COUNTERS}",
            got.len()
        ))
    })?;
    let c = |i: usize| counters[i];
    let histogram = |start: usize, sum: usize| Histogram {
        counts: std::array::from_fn(|i| count(c(start + i))),
        sum_ms: c(sum),
    };
    let group: Option<String> = row.get(1);
    Ok(RollupRow {
        bucket_start: row.get(0),
        group: group.filter(|g| !g.is_empty()),
        group_name: row.get(3),
        requests: count(c(C_REQUESTS)),
        by_outcome: std::array::from_fn(|i| count(c(C_OUTCOME + i))),
        attempt_failures_by_class: std::array::from_fn(|i| count(c(C_FAILED + i))),
        input_tokens: count(c(C_INPUT)),
        output_tokens: count(c(C_OUTPUT)),
        cache_read_tokens: count(c(C_CACHE_READ)),
        cache_write_5m_tokens: count(c(C_CACHE_WRITE_5M)),
        cache_write_1h_tokens: count(c(C_CACHE_WRITE_1H)),
        cost_nanos: c(C_COST),
        unpriced_requests: count(c(C_UNPRICED)),
        latency: histogram(C_LATENCY, C_LATENCY_SUM),
        ttft: histogram(C_TTFT, C_TTFT_SUM),
    })
}

/// The chunked purge of one dimension of a roll-up table (`$1` the cut-off, `$2` the chunk,
/// `$3` the dim): the oldest rows first, a walk of the key `(dim, bucket_start, …)`.
pub(super) fn rollup_purge(table: &str) -> String {
    format!(
        "DELETE FROM {table} WHERE (dim, bucket_start, value) IN \
         (SELECT dim, bucket_start, value FROM {table} \
          WHERE dim = $3 AND bucket_start < $1 ORDER BY bucket_start LIMIT $2)"
    )
}

/// Runs a `DELETE … LIMIT $2` (`$1` the cut-off, `$3` the dim if given) in its own short
/// transaction until it deletes fewer rows than the limit.
async fn delete_chunked(
    pool: &SqlitePool,
    sql: &str,
    before: EpochMs,
    dim: Option<Dim>,
    chunk: u64,
) -> Result<u64> {
    let mut total = 0;
    loop {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut query = sqlx::query(sql)
            .bind(before)
            .bind(i64::try_from(chunk).unwrap_or(i64::MAX));
        if let Some(dim) = dim {
            query = query.bind(dim.as_str());
        }
        let deleted = query.execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        total += deleted;
        if deleted < chunk {
            return Ok(total);
        }
    }
}

#[async_trait]
impl Ledger for SqliteLedger {
    async fn append_usage(&self, records: &[UsageRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let rollups = match insert_records(&mut tx, records).await? {
            None => Rollups::of(records),
            // The first record with a given id is the one the insert kept.
            Some(mut fresh) => Rollups::of(records.iter().filter(|r| fresh.remove(&r.request_id))),
        };
        upsert_rollup(&mut tx, &MINUTE_TABLE, &rollups.minutes).await?;
        upsert_rollup(&mut tx, &HOUR_TABLE, &rollups.hours).await?;
        upsert_names(&mut tx, &rollups.names).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn usage_log(&self, filter: &LogFilter) -> Result<Vec<UsageRow>> {
        let rows = log_query("", filter).build().fetch_all(&self.pool).await?;
        rows.iter().map(usage_row).collect()
    }

    async fn rollup(&self, query: &RollupQuery) -> Result<Vec<RollupRow>> {
        let rows = rollup_query("", query)
            .build()
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rollup_row).collect()
    }

    async fn purge(&self, cut: &Retention) -> Result<Purged> {
        let raw = delete_chunked(
            &self.writer,
            "DELETE FROM usage_records WHERE id IN \
             (SELECT id FROM usage_records WHERE at < $1 ORDER BY at LIMIT $2)",
            cut.raw_before,
            None,
            self.purge_chunk,
        )
        .await?;
        let (mut minute, mut hour) = (0, 0);
        // One dimension at a time, so each chunk is a walk of the key in time order.
        for dim in Dim::ALL {
            minute += delete_chunked(
                &self.writer,
                &rollup_purge("usage_minute"),
                cut.minute_before,
                Some(dim),
                self.purge_chunk,
            )
            .await?;
            hour += delete_chunked(
                &self.writer,
                &rollup_purge("usage_hour"),
                cut.hour_before,
                Some(dim),
                self.purge_chunk,
            )
            .await?;
        }
        Ok(Purged { raw, minute, hour })
    }

    async fn usage_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM usage_records")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn integrity_ok(&self) -> Result<bool> {
        let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.len() == 1 && rows[0] == "ok")
    }
}

/// What `append_usage` does to a batch in memory, for `benches/ledger_encode.rs` (through
/// `store::bench`): the same functions the writer calls, with SQLite left out. Not an API.
pub mod bench {
    use super::{
        FailedAttempt, RECORD_CHUNK, ROLLUP_CHUNK, UsageRecord, names_statement, rollup_statement,
        statement_chunks,
    };
    use sqlx::Execute;

    /// One record's `attempts` column.
    pub fn attempts_json(attempts: &[FailedAttempt]) -> Option<String> {
        super::attempts_json(attempts)
    }

    /// One record's roll-up counters (`fold` into a zeroed row).
    pub fn fold(record: &UsageRecord) -> [i64; super::N_COUNTERS] {
        let mut counters = [0; super::N_COUNTERS];
        super::fold(&mut counters, record);
        counters
    }

    /// A batch's roll-up rows, as `append_usage` builds them (every record taken as newly
    /// stored).
    pub struct Rollups<'a>(super::Rollups<'a>);

    impl Rollups<'_> {
        /// Minute rows, hour rows, names.
        pub fn rows(&self) -> (usize, usize, usize) {
            (self.0.minutes.len(), self.0.hours.len(), self.0.names.len())
        }
    }

    pub fn rollups(records: &[UsageRecord]) -> Rollups<'_> {
        Rollups(super::Rollups::of(records))
    }

    /// Builds (and drops) the batch's INSERT statements with their bound values; returns the
    /// length of their SQL text.
    pub fn insert_statements(records: &[UsageRecord]) -> usize {
        statement_chunks(records, RECORD_CHUNK)
            .map(|chunk| super::insert_statement(chunk).sql().len())
            .sum()
    }

    /// Builds (and drops) the roll-up and name UPSERT statements of `rollups` with their bound
    /// values; returns the length of their SQL text.
    pub fn rollup_statements(rollups: &Rollups<'_>) -> usize {
        let mut sql = 0;
        for (table, rows) in [
            (&super::MINUTE_TABLE, &rollups.0.minutes),
            (&super::HOUR_TABLE, &rollups.0.hours),
        ] {
            let rows: Vec<_> = rows.iter().collect();
            for chunk in statement_chunks(&rows, ROLLUP_CHUNK) {
                sql += rollup_statement(table, chunk).sql().len();
            }
        }
        let names: Vec<_> = rollups.0.names.iter().collect();
        for chunk in statement_chunks(&names, ROLLUP_CHUNK) {
            sql += names_statement(chunk).sql().len();
        }
        sql
    }
}

const _: () = assert!(COUNTERS.len() == N_COUNTERS);
const _: () = assert!(RECORD_CHUNK * RECORD_COLUMN_COUNT < 32_766);
const _: () = assert!(ROLLUP_CHUNK * (N_COUNTERS + 3) < 32_766);
const _: () = assert!(RECORD_CHUNK.is_power_of_two() && RECORD_CHUNK < 1 << CHUNK_SIZES);
const _: () = assert!(ROLLUP_CHUNK.is_power_of_two() && ROLLUP_CHUNK < 1 << CHUNK_SIZES);
