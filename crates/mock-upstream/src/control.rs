//! The HTTP control surface under `/_mock/`, for the CLI-run mock and manual testing. It
//! mirrors the Rust scripting API; its own requests are neither authenticated nor recorded.
//!
//! - `POST /_mock/scenario` `{"key":"a","scenario":{"type":"rate_limited","retry_after_secs":5},"times":3}`
//! - `POST /_mock/chaos` `{"key":"a","scenario":{"type":"overloaded"},"ratio":0.5}` (0 clears)
//! - `GET /_mock/calls`: recorded calls, bodies as lossy UTF-8
//! - `GET /_mock/stats`: per key, calls and answers by status
//! - `POST /_mock/reset`: calls, counts, scenarios, chaos, limits and batches back to start

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State as Extract;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::keys::KeyState;
use crate::record::Tally;
use crate::scenario::Scenario;
use crate::server::State;

type Shared = Extract<Arc<State>>;

pub(crate) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/_mock/scenario", post(push_scenario))
        .route("/_mock/chaos", post(set_chaos))
        .route("/_mock/calls", get(calls))
        .route("/_mock/stats", get(stats))
        .route("/_mock/reset", post(reset))
}

#[derive(Deserialize)]
struct PushScenario {
    key: String,
    scenario: Scenario,
    #[serde(default = "one")]
    times: u32,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
struct SetChaos {
    key: String,
    scenario: Scenario,
    ratio: f64,
}

fn unknown_key(name: &str) -> Response {
    let body = json!({ "error": format!("no key named {name:?} is configured") });
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

fn with_key(state: &State, name: &str, f: impl FnOnce(&KeyState)) -> Response {
    match state.keys.by_name(name) {
        Some(key) => {
            f(key);
            StatusCode::NO_CONTENT.into_response()
        }
        None => unknown_key(name),
    }
}

async fn push_scenario(Extract(state): Shared, Json(body): Json<PushScenario>) -> Response {
    with_key(&state, &body.key, |key| {
        key.scenarios.push(body.scenario, body.times);
    })
}

async fn set_chaos(Extract(state): Shared, Json(body): Json<SetChaos>) -> Response {
    if !(0.0..=1.0).contains(&body.ratio) {
        let body = json!({ "error": "ratio must be between 0 and 1" });
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    with_key(&state, &body.key, |key| {
        key.scenarios.set_chaos(body.scenario, body.ratio);
    })
}

#[derive(Serialize)]
struct CallView {
    key_name: Option<String>,
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: String,
}

async fn calls(Extract(state): Shared) -> Json<Vec<CallView>> {
    let calls = state.recorder.calls();
    Json(
        calls
            .into_iter()
            .map(|call| CallView {
                body: String::from_utf8_lossy(&call.body).into_owned(),
                key_name: call.key_name,
                method: call.method,
                path: call.path,
                query: call.query,
                headers: call.headers,
            })
            .collect(),
    )
}

#[derive(Serialize)]
struct TallyView {
    calls: usize,
    by_status: BTreeMap<u16, u64>,
}

impl TallyView {
    fn of(tally: &Tally) -> TallyView {
        TallyView {
            calls: tally.calls(),
            by_status: tally.by_status(),
        }
    }
}

#[derive(Serialize)]
struct Stats {
    keys: BTreeMap<String, TallyView>,
    unauthenticated: TallyView,
}

async fn stats(Extract(state): Shared) -> Json<Stats> {
    Json(Stats {
        keys: state
            .keys
            .iter()
            .map(|key| (key.name.clone(), TallyView::of(&key.tally)))
            .collect(),
        unauthenticated: TallyView::of(&state.anonymous),
    })
}

async fn reset(Extract(state): Shared) -> StatusCode {
    state.reset();
    StatusCode::NO_CONTENT
}
