//! Message Batches (§11.3), in memory and scoped per key: a batch made with one key does
//! not exist for another, as batches are scoped to the key's Workspace.
//!
//! Processing is simulated lazily: a batch is `in_progress` until `batch_processing` has
//! passed since creation, then `ended`. A cancel answers `canceling`; the next access finds
//! the batch `ended` with every request canceled.

use std::collections::HashSet;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::civil::Date;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::error::ApiError;
use crate::ids;
use crate::messages::{Answer, Endpoint, Prompt, ServiceTier};
use crate::models;
use crate::page::{PageQuery, page};
use crate::server::Call;

const MAX_REQUESTS: usize = 100_000;
const EXPIRY: Duration = Duration::from_secs(24 * 60 * 60);

/// The batches of one key, oldest first.
#[derive(Default)]
pub(crate) struct Batches {
    batches: Mutex<Vec<Batch>>,
}

impl Batches {
    pub(crate) fn clear(&self) {
        self.batches.lock().clear();
    }
}

struct Batch {
    id: String,
    created_at: Timestamp,
    /// When processing completes unless canceled first.
    due: Instant,
    processing: Duration,
    phase: Phase,
    cancel_initiated_at: Option<Timestamp>,
    results: Vec<(String, Outcome)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    InProgress,
    Canceling,
    Ended { at: Timestamp, canceled: bool },
}

enum Outcome {
    Succeeded(Box<RawValue>),
    Errored(ApiError),
}

impl Batch {
    /// Advances the simulated processing to now.
    fn settle(&mut self, now: Instant) {
        match self.phase {
            Phase::InProgress if now >= self.due => {
                let at = self
                    .created_at
                    .checked_add(self.processing)
                    .unwrap_or(self.created_at);
                self.phase = Phase::Ended {
                    at,
                    canceled: false,
                };
            }
            Phase::Canceling => {
                self.phase = Phase::Ended {
                    at: Timestamp::now(),
                    canceled: true,
                };
            }
            _ => {}
        }
    }

    fn is_ended(&self) -> bool {
        matches!(self.phase, Phase::Ended { .. })
    }

    fn view(&self, host: &str) -> View {
        let total = self.results.len() as u64;
        let mut counts = Counts::default();
        let (status, ended_at, results_url) = match self.phase {
            Phase::InProgress | Phase::Canceling => {
                counts.processing = total;
                let status = if self.phase == Phase::InProgress {
                    "in_progress"
                } else {
                    "canceling"
                };
                (status, None, None)
            }
            Phase::Ended { at, canceled } => {
                if canceled {
                    counts.canceled = total;
                } else {
                    for (_, outcome) in &self.results {
                        match outcome {
                            Outcome::Succeeded(_) => counts.succeeded += 1,
                            Outcome::Errored(_) => counts.errored += 1,
                        }
                    }
                }
                let url = format!("http://{host}/v1/messages/batches/{}/results", self.id);
                ("ended", Some(at.to_string()), Some(url))
            }
        };
        View {
            id: self.id.clone(),
            kind: "message_batch",
            processing_status: status,
            request_counts: counts,
            ended_at,
            created_at: self.created_at.to_string(),
            expires_at: self
                .created_at
                .checked_add(EXPIRY)
                .unwrap_or(self.created_at)
                .to_string(),
            archived_at: None,
            cancel_initiated_at: self.cancel_initiated_at.map(|t| t.to_string()),
            results_url,
        }
    }

    fn results_jsonl(&self) -> Vec<u8> {
        let canceled = matches!(self.phase, Phase::Ended { canceled: true, .. });
        let mut out = Vec::new();
        for (custom_id, outcome) in &self.results {
            let result = match outcome {
                _ if canceled => json!({ "type": "canceled" }),
                Outcome::Succeeded(message) => json!({ "type": "succeeded", "message": message }),
                Outcome::Errored(error) => json!({
                    "type": "errored",
                    "error": {
                        "type": "error",
                        "error": { "type": error.kind, "message": error.message },
                        "request_id": null,
                    },
                }),
            };
            let line = json!({ "custom_id": custom_id, "result": result });
            if serde_json::to_writer(&mut out, &line).is_ok() {
                out.push(b'\n');
            }
        }
        out
    }
}

#[derive(Serialize)]
struct View {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    processing_status: &'static str,
    request_counts: Counts,
    ended_at: Option<String>,
    created_at: String,
    expires_at: String,
    archived_at: Option<String>,
    cancel_initiated_at: Option<String>,
    results_url: Option<String>,
}

#[derive(Default, Serialize)]
struct Counts {
    processing: u64,
    succeeded: u64,
    errored: u64,
    canceled: u64,
    expired: u64,
}

#[derive(Deserialize)]
struct CreateBody<'a> {
    #[serde(borrow)]
    requests: Option<Vec<RequestIn<'a>>>,
}

#[derive(Deserialize)]
struct RequestIn<'a> {
    custom_id: Option<Value>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
}

pub(crate) fn create(call: &Call<'_>) -> Response {
    match build(call) {
        Ok(batch) => {
            let view = batch.view(&call.host());
            call.key.batches.batches.lock().push(batch);
            Json(view).into_response()
        }
        Err(error) => call.error(error),
    }
}

/// Validates the batch and answers every request up front; a request whose params are
/// invalid becomes an `errored` result, as the real API validates them asynchronously.
fn build(call: &Call<'_>) -> Result<Batch, ApiError> {
    let body: CreateBody<'_> = serde_json::from_slice(call.body).map_err(|e| {
        if e.is_data() {
            ApiError::invalid(
                "requests: Input should be a valid list of {custom_id, params} objects",
            )
        } else {
            ApiError::invalid(format!("Request body is not valid JSON: {e}"))
        }
    })?;
    let requests = body
        .requests
        .ok_or_else(|| ApiError::invalid("requests: Field required"))?;
    if requests.is_empty() {
        return Err(ApiError::invalid(
            "requests: List should have at least 1 item",
        ));
    }
    if requests.len() > MAX_REQUESTS {
        return Err(ApiError::invalid(format!(
            "requests: List should have at most {MAX_REQUESTS} items"
        )));
    }
    let words = call.state.settings.stream_events;
    let today = models::today();
    let mut seen = HashSet::new();
    let mut results = Vec::with_capacity(requests.len());
    for (i, request) in requests.into_iter().enumerate() {
        let custom_id = match request.custom_id {
            None => {
                return Err(ApiError::invalid(format!(
                    "requests.{i}.custom_id: Field required"
                )));
            }
            Some(Value::String(id)) if valid_custom_id(&id) => id,
            Some(_) => {
                return Err(ApiError::invalid(format!(
                    "requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
                )));
            }
        };
        if !seen.insert(custom_id.clone()) {
            return Err(ApiError::invalid(format!(
                "requests.{i}.custom_id: Duplicate custom_id {custom_id:?} in this batch"
            )));
        }
        let params = request
            .params
            .ok_or_else(|| ApiError::invalid(format!("requests.{i}.params: Field required")))?;
        results.push((custom_id, answer(params, words, today)));
    }
    let processing = call.state.settings.batch_processing;
    Ok(Batch {
        id: ids::batch(),
        created_at: Timestamp::now(),
        due: Instant::now() + processing,
        processing,
        phase: Phase::InProgress,
        cancel_initiated_at: None,
        results,
    })
}

/// A request's result, validated as the API does asynchronously: a retired or unknown model is
/// an `errored` result carrying the same 404 `not_found_error` a direct call gets.
fn answer(params: &RawValue, words: usize, today: Date) -> Outcome {
    let prompt = match Prompt::parse(params.get().as_bytes(), Endpoint::Messages, today) {
        Ok(prompt) if prompt.stream => {
            return Outcome::Errored(ApiError::invalid(
                "stream: Streaming is not supported in Message Batches",
            ));
        }
        Ok(prompt) => prompt,
        Err(error) => return Outcome::Errored(error),
    };
    let answer = Answer::generate(&prompt, words, ServiceTier::Batch);
    match serde_json::value::to_raw_value(&answer.message()) {
        Ok(message) => Outcome::Succeeded(message),
        Err(_) => Outcome::Errored(ApiError::new(
            crate::error::ErrorKind::ApiError,
            "Internal server error",
        )),
    }
}

fn valid_custom_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub(crate) fn list(call: &Call<'_>) -> Response {
    let query = match PageQuery::from_uri(&call.parts.uri) {
        Ok(query) => query,
        Err(error) => return call.error(error),
    };
    let host = call.host();
    let now = Instant::now();
    let views: Vec<View> = {
        let mut batches = call.key.batches.batches.lock();
        batches
            .iter_mut()
            .rev()
            .map(|batch| {
                batch.settle(now);
                batch.view(&host)
            })
            .collect()
    };
    Json(page(views, |v| &v.id, &query)).into_response()
}

/// Runs `f` on the key's batch `id`, settled to now; 404 when the key has no such batch.
fn with_batch<T>(
    call: &Call<'_>,
    id: &str,
    f: impl FnOnce(&mut Vec<Batch>, usize) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let mut batches = call.key.batches.batches.lock();
    let index = batches
        .iter()
        .position(|b| b.id == id)
        .ok_or_else(|| ApiError::not_found(format!("Message Batch {id} not found")))?;
    batches[index].settle(Instant::now());
    f(&mut batches, index)
}

fn respond<T: IntoResponse>(call: &Call<'_>, result: Result<T, ApiError>) -> Response {
    match result {
        Ok(ok) => ok.into_response(),
        Err(error) => call.error(error),
    }
}

pub(crate) fn get(call: &Call<'_>, id: &str) -> Response {
    let host = call.host();
    respond(
        call,
        with_batch(call, id, |b, i| Ok(Json(b[i].view(&host)))),
    )
}

pub(crate) fn cancel(call: &Call<'_>, id: &str) -> Response {
    let host = call.host();
    let result = with_batch(call, id, |batches, i| {
        let batch = &mut batches[i];
        if batch.phase == Phase::InProgress {
            batch.phase = Phase::Canceling;
            batch.cancel_initiated_at = Some(Timestamp::now());
        }
        Ok(Json(batch.view(&host)))
    });
    respond(call, result)
}

pub(crate) fn delete(call: &Call<'_>, id: &str) -> Response {
    let result = with_batch(call, id, |batches, i| {
        if !batches[i].is_ended() {
            return Err(ApiError::invalid(format!(
                "Message Batch {id} is still in progress and cannot be deleted; cancel it first"
            )));
        }
        batches.remove(i);
        Ok(Json(json!({ "id": id, "type": "message_batch_deleted" })))
    });
    respond(call, result)
}

pub(crate) fn results(call: &Call<'_>, id: &str) -> Response {
    let result = with_batch(call, id, |batches, i| {
        let batch = &batches[i];
        if !batch.is_ended() {
            return Err(ApiError::invalid(format!(
                "Message Batch {id} has not ended yet; results are available once processing_status is ended"
            )));
        }
        let mut response = Response::new(Body::from(batch.results_jsonl()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-jsonl"),
        );
        Ok(response)
    });
    respond(call, result)
}
