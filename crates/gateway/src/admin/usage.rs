//! `/admin/api/usage/…`, `/admin/api/overview` and `/admin/api/requests`: what the ledger and
//! the live window know, shaped for the panel's charts and tables.
//!
//! Charts read the roll-ups, never the raw log: a series is one row per bucket and group
//! whatever the traffic. Arrays are aligned on one time axis with zeros for quiet buckets, so
//! a chart library can draw them as they come.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Admin;
use super::error::{ApiError, ApiResult, ErrorBody, QueryParams};
use crate::accounting::{RequestOutcome, UsageRecord};
use crate::store::{
    Bucket, FAILURE_CLASSES, GroupBy, HOUR_MS, LogFilter, MINUTE_MS, RollupQuery, RollupRow,
};
use crate::telemetry::live::LiveStats;
use crate::types::{EpochMs, now_ms};

const DAY_MS: EpochMs = 24 * HOUR_MS;
/// The largest request-log page.
const MAX_PAGE: u32 = 500;
/// Times outside 1970..2100 are not times this API has data for (and keep arithmetic safe).
const LATEST_MS: EpochMs = 4_102_444_800_000;
/// More points than any chart can show; ask for hour buckets instead.
const MAX_POINTS: i64 = 2_000;

fn usd(nanos: i64) -> f64 {
    nanos as f64 / 1e9
}

fn round_ms(v: Option<f64>) -> Option<i64> {
    v.map(|v| v.round() as i64)
}

#[derive(Deserialize, IntoParams)]
pub struct RangeQuery {
    /// Epoch ms, inclusive; default one hour before `until`.
    pub since: Option<EpochMs>,
    /// Epoch ms, exclusive; default now.
    pub until: Option<EpochMs>,
    /// `minute` (default) or `hour`; series only.
    pub bucket: Option<String>,
    /// `none` (default), `model`, `credential` or `client`.
    pub group_by: Option<String>,
}

impl RangeQuery {
    fn range(&self) -> ApiResult<(EpochMs, EpochMs)> {
        let until = self.until.unwrap_or_else(now_ms).clamp(0, LATEST_MS);
        let since = self.since.unwrap_or(until - HOUR_MS).clamp(0, LATEST_MS);
        if since >= until {
            return Err(ApiError::invalid("since must be before until"));
        }
        Ok((since, until))
    }

    fn group_by(&self) -> ApiResult<GroupBy> {
        match self.group_by.as_deref().unwrap_or("none") {
            "none" => Ok(GroupBy::None),
            "model" => Ok(GroupBy::Model),
            "credential" => Ok(GroupBy::Credential),
            "client" => Ok(GroupBy::Client),
            other => Err(ApiError::invalid(format!(
                "group_by must be none, model, credential or client, got {other:?}"
            ))),
        }
    }

    fn bucket(&self) -> ApiResult<(Bucket, EpochMs)> {
        match self.bucket.as_deref().unwrap_or("minute") {
            "minute" => Ok((Bucket::Minute, MINUTE_MS)),
            "hour" => Ok((Bucket::Hour, HOUR_MS)),
            other => Err(ApiError::invalid(format!(
                "bucket must be minute or hour, got {other:?}"
            ))),
        }
    }
}

/// Failures the gateway could not hide from the client (client errors and cancellations are
/// not counted: they were the client's doing).
fn failed(row: &RollupRow) -> u64 {
    row.outcome_count(RequestOutcome::UpstreamError)
        + row.outcome_count(RequestOutcome::NoCredential)
        + row.outcome_count(RequestOutcome::StreamCut)
}

fn label(row: &RollupRow) -> String {
    row.group_name
        .clone()
        .or_else(|| row.group.clone())
        .unwrap_or_else(|| "(none)".to_owned())
}

#[derive(Serialize, ToSchema, Default)]
pub struct Series {
    pub group: Option<String>,
    pub name: String,
    pub requests: Vec<u64>,
    pub success: Vec<u64>,
    /// Upstream errors, no credential, and streams cut after they started.
    pub errors: Vec<u64>,
    pub input_tokens: Vec<u64>,
    pub output_tokens: Vec<u64>,
    pub cache_read_tokens: Vec<u64>,
    pub cache_write_tokens: Vec<u64>,
    pub cost_usd: Vec<f64>,
    pub latency_p50_ms: Vec<Option<i64>>,
    pub latency_p95_ms: Vec<Option<i64>>,
    pub ttft_p50_ms: Vec<Option<i64>>,
    pub ttft_p95_ms: Vec<Option<i64>>,
}

impl Series {
    fn empty(group: Option<String>, name: String, points: usize) -> Self {
        Self {
            group,
            name,
            requests: vec![0; points],
            success: vec![0; points],
            errors: vec![0; points],
            input_tokens: vec![0; points],
            output_tokens: vec![0; points],
            cache_read_tokens: vec![0; points],
            cache_write_tokens: vec![0; points],
            cost_usd: vec![0.0; points],
            latency_p50_ms: vec![None; points],
            latency_p95_ms: vec![None; points],
            ttft_p50_ms: vec![None; points],
            ttft_p95_ms: vec![None; points],
        }
    }

    fn set(&mut self, i: usize, row: &RollupRow) {
        self.requests[i] = row.requests;
        self.success[i] = row.outcome_count(RequestOutcome::Success);
        self.errors[i] = failed(row);
        self.input_tokens[i] = row.input_tokens;
        self.output_tokens[i] = row.output_tokens;
        self.cache_read_tokens[i] = row.cache_read_tokens;
        self.cache_write_tokens[i] = row.cache_write_tokens();
        self.cost_usd[i] = usd(row.cost_nanos);
        self.latency_p50_ms[i] = round_ms(row.p50_latency_ms());
        self.latency_p95_ms[i] = round_ms(row.p95_latency_ms());
        self.ttft_p50_ms[i] = round_ms(row.p50_ttft_ms());
        self.ttft_p95_ms[i] = round_ms(row.p95_ttft_ms());
    }
}

#[derive(Serialize, ToSchema)]
pub struct SeriesAnswer {
    pub bucket_ms: EpochMs,
    /// Bucket starts, epoch ms; every series has one value per entry.
    pub t: Vec<EpochMs>,
    pub series: Vec<Series>,
}

/// Time series over the roll-ups, one series per group.
#[utoipa::path(get, path = "/usage/series", tag = "usage", params(RangeQuery),
    responses((status = 200, body = SeriesAnswer), (status = 400, body = ErrorBody)))]
pub async fn series(
    State(admin): State<Admin>,
    QueryParams(query): QueryParams<RangeQuery>,
) -> ApiResult<Json<SeriesAnswer>> {
    let (since, until) = query.range()?;
    let (bucket, bucket_ms) = query.bucket()?;
    let first = since.div_euclid(bucket_ms) * bucket_ms;
    let points = (until - first + bucket_ms - 1) / bucket_ms;
    if points > MAX_POINTS {
        return Err(ApiError::invalid(format!(
            "{points} buckets is too many (at most {MAX_POINTS}); use bucket=hour or a shorter range"
        )));
    }
    let rows = admin
        .ledger
        .rollup(&RollupQuery {
            since: Some(since),
            until: Some(until),
            bucket,
            group_by: query.group_by()?,
        })
        .await?;
    let points = points as usize;
    let mut groups: BTreeMap<Option<String>, Series> = BTreeMap::new();
    for row in &rows {
        let Some(start) = row.bucket_start else {
            continue;
        };
        let i = (start - first) / bucket_ms;
        if !(0..points as i64).contains(&i) {
            continue;
        }
        groups
            .entry(row.group.clone())
            .or_insert_with(|| Series::empty(row.group.clone(), label(row), points))
            .set(i as usize, row);
    }
    let mut series: Vec<Series> = groups.into_values().collect();
    // The busiest group first: the one a reader looks for.
    series.sort_by_key(|s| std::cmp::Reverse(s.requests.iter().sum::<u64>()));
    Ok(Json(SeriesAnswer {
        bucket_ms,
        t: (0..points as i64).map(|i| first + i * bucket_ms).collect(),
        series,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct GroupTotals {
    pub group: Option<String>,
    pub name: String,
    pub requests: u64,
    #[schema(value_type = Object)]
    pub by_outcome: BTreeMap<&'static str, u64>,
    #[schema(value_type = Object)]
    pub attempt_failures: BTreeMap<&'static str, u64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_5m_tokens: u64,
    pub cache_write_1h_tokens: u64,
    pub cost_usd: f64,
    pub unpriced_requests: u64,
    pub latency_p50_ms: Option<i64>,
    pub latency_p95_ms: Option<i64>,
    pub ttft_p50_ms: Option<i64>,
    pub ttft_p95_ms: Option<i64>,
}

impl From<&RollupRow> for GroupTotals {
    fn from(row: &RollupRow) -> Self {
        Self {
            group: row.group.clone(),
            name: label(row),
            requests: row.requests,
            by_outcome: RequestOutcome::ALL
                .iter()
                .zip(row.by_outcome)
                .map(|(o, n)| (o.as_str(), n))
                .collect(),
            attempt_failures: FAILURE_CLASSES
                .iter()
                .zip(row.attempt_failures_by_class)
                .map(|(c, n)| (c.as_str(), n))
                .collect(),
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
            cache_read_tokens: row.cache_read_tokens,
            cache_write_5m_tokens: row.cache_write_5m_tokens,
            cache_write_1h_tokens: row.cache_write_1h_tokens,
            cost_usd: usd(row.cost_nanos),
            unpriced_requests: row.unpriced_requests,
            latency_p50_ms: round_ms(row.p50_latency_ms()),
            latency_p95_ms: round_ms(row.p95_latency_ms()),
            ttft_p50_ms: round_ms(row.p50_ttft_ms()),
            ttft_p95_ms: round_ms(row.p95_ttft_ms()),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SummaryAnswer {
    pub groups: Vec<GroupTotals>,
}

/// Totals over a range, per group, busiest first.
#[utoipa::path(get, path = "/usage/summary", tag = "usage", params(RangeQuery),
    responses((status = 200, body = SummaryAnswer), (status = 400, body = ErrorBody)))]
pub async fn summary(
    State(admin): State<Admin>,
    QueryParams(query): QueryParams<RangeQuery>,
) -> ApiResult<Json<SummaryAnswer>> {
    let (since, until) = query.range()?;
    let mut rows = admin
        .ledger
        .rollup(&RollupQuery {
            since: Some(since),
            until: Some(until),
            bucket: Bucket::Total,
            group_by: query.group_by()?,
        })
        .await?;
    rows.sort_by_key(|r| std::cmp::Reverse(r.requests));
    Ok(Json(SummaryAnswer {
        groups: rows.iter().map(GroupTotals::from).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Today {
    /// Midnight UTC.
    pub since: EpochMs,
    pub requests: u64,
    pub cost_usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Serialize, ToSchema)]
pub struct CredentialCounts {
    pub active: u32,
    pub cooling_down: u32,
    pub probing: u32,
    pub disabled: u32,
}

#[derive(Serialize, ToSchema)]
pub struct Overview {
    pub live: LiveStats,
    pub today: Today,
    pub credentials: CredentialCounts,
}

impl Admin {
    pub(super) async fn overview(&self) -> ApiResult<Overview> {
        let now = now_ms();
        let since = now - now.rem_euclid(DAY_MS);
        let today = self
            .ledger
            .rollup(&RollupQuery {
                since: Some(since),
                until: Some(now + 1),
                bucket: Bucket::Total,
                group_by: GroupBy::None,
            })
            .await?;
        let today = today.first().cloned().unwrap_or_default();
        let mut credentials = CredentialCounts {
            active: 0,
            cooling_down: 0,
            probing: 0,
            disabled: 0,
        };
        for view in self.pool.snapshot(now) {
            match view.state {
                "active" => credentials.active += 1,
                "cooling_down" => credentials.cooling_down += 1,
                "probing" => credentials.probing += 1,
                _ => credentials.disabled += 1,
            }
        }
        Ok(Overview {
            live: self.accountant.live().stats(now),
            today: Today {
                since,
                requests: today.requests,
                cost_usd: usd(today.cost_nanos),
                input_tokens: today.input_tokens,
                output_tokens: today.output_tokens,
            },
            credentials,
        })
    }
}

/// The live numbers (last minute), today's totals, and credentials by state.
#[utoipa::path(get, path = "/overview", tag = "usage",
    responses((status = 200, body = Overview), (status = 401, body = ErrorBody)))]
pub async fn overview(State(admin): State<Admin>) -> ApiResult<Json<Overview>> {
    admin.overview().await.map(Json)
}

#[derive(Deserialize, IntoParams)]
pub struct LogQuery {
    pub since: Option<EpochMs>,
    pub until: Option<EpochMs>,
    /// Client id.
    pub client: Option<String>,
    /// Credential id.
    pub credential: Option<String>,
    /// Served or requested model.
    pub model: Option<String>,
    /// `success`, `client_error`, `upstream_error`, `no_credential`, `client_cancelled`,
    /// `stream_cut`.
    pub outcome: Option<String>,
    /// Page size, default 100, at most 500.
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub before: Option<String>,
}

#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct AttemptView {
    pub credential_id: String,
    pub credential_name: String,
    pub class: &'static str,
}

/// One request of the log. `credential_*` is the credential that served it (or failed last);
/// `attempts` are the failed tries, in order.
#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct RequestView {
    pub request_id: String,
    pub at: EpochMs,
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    /// The caller's own `X-Client-ID`.
    pub attributed: Option<String>,
    pub credential_id: Option<String>,
    pub credential_name: Option<String>,
    pub route: &'static str,
    pub requested_model: Option<String>,
    pub served_model: Option<String>,
    pub status: u16,
    pub outcome: &'static str,
    pub last_class: Option<&'static str>,
    pub streamed: bool,
    pub batch: bool,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_5m_tokens: u64,
    pub cache_write_1h_tokens: u64,
    /// Null when the model has no price.
    pub cost_usd: Option<f64>,
    pub stop_reason: Option<String>,
    /// A sticky session's turn that its pinned credential could not serve.
    pub session_moved: bool,
    pub attempts: Vec<AttemptView>,
}

impl From<&UsageRecord> for RequestView {
    fn from(r: &UsageRecord) -> Self {
        Self {
            request_id: r.request_id.clone(),
            at: r.at,
            client_id: r.client_id.clone(),
            client_name: r.client_name.clone(),
            attributed: r.attributed.clone(),
            credential_id: r.key_id.clone(),
            credential_name: r.key_name.clone(),
            route: r.route.as_str(),
            requested_model: r.requested_model.clone(),
            served_model: r.served_model.clone(),
            status: r.status,
            outcome: r.outcome.as_str(),
            last_class: r.last_class.map(|c| c.as_str()),
            streamed: r.streamed,
            batch: r.batch,
            latency_ms: r.latency_ms,
            ttft_ms: r.ttft_ms,
            input_tokens: r.usage.input_tokens,
            output_tokens: r.usage.output_tokens,
            cache_read_tokens: r.usage.cache_read_tokens,
            cache_write_5m_tokens: r.usage.cache_write_5m_tokens,
            cache_write_1h_tokens: r.usage.cache_write_1h_tokens,
            cost_usd: r.cost_nanos.map(usd),
            stop_reason: r.stop_reason.clone(),
            session_moved: r.session_moved,
            attempts: r
                .attempts
                .iter()
                .map(|a| AttemptView {
                    credential_id: a.key_id.clone(),
                    credential_name: a.key_name.clone(),
                    class: a.class.as_str(),
                })
                .collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RequestPage {
    pub requests: Vec<RequestView>,
    /// Pass as `before` for the next (older) page; null on the last page.
    pub next: Option<String>,
}

fn parse_cursor(cursor: &str) -> ApiResult<(EpochMs, String)> {
    cursor
        .split_once('_')
        .and_then(|(at, id)| Some((at.parse().ok()?, id.to_owned())))
        .filter(|(_, id)| !id.is_empty())
        .ok_or_else(|| ApiError::invalid(format!("before: not a cursor from this API: {cursor:?}")))
}

/// The request log, newest first, with filters and keyset pagination.
#[utoipa::path(get, path = "/requests", tag = "usage", params(LogQuery),
    responses((status = 200, body = RequestPage), (status = 400, body = ErrorBody)))]
pub async fn requests(
    State(admin): State<Admin>,
    QueryParams(query): QueryParams<LogQuery>,
) -> ApiResult<Json<RequestPage>> {
    let outcome = query
        .outcome
        .as_deref()
        .filter(|o| !o.is_empty())
        .map(|o| {
            RequestOutcome::parse(o)
                .ok_or_else(|| ApiError::invalid(format!("outcome: unknown value {o:?}")))
        })
        .transpose()?;
    let limit = query
        .limit
        .unwrap_or(LogFilter::DEFAULT_LIMIT)
        .clamp(1, MAX_PAGE);
    let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    let filter = LogFilter {
        since: query.since,
        until: query.until,
        client_id: nonempty(&query.client),
        key_id: nonempty(&query.credential),
        model: nonempty(&query.model),
        outcome,
        // One more than asked says whether there is a next page.
        limit: limit + 1,
        before: query.before.as_deref().map(parse_cursor).transpose()?,
    };
    let mut rows = admin.ledger.usage_log(&filter).await?;
    let next = (rows.len() > limit as usize)
        .then(|| &rows[limit as usize - 1])
        .map(|r| format!("{}_{}", r.at, r.request_id));
    rows.truncate(limit as usize);
    Ok(Json(RequestPage {
        requests: rows.iter().map(RequestView::from).collect(),
        next,
    }))
}
