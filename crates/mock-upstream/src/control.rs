//! The HTTP control surface under `/_mock/`, for the CLI-run mock and manual testing. It
//! mirrors the Rust scripting API; its own requests are neither authenticated nor recorded.
//!
//! - `POST /_mock/scenario` `{"key":"a","scenario":{"type":"rate_limited","retry_after_secs":5},"times":3}`
//! - `POST /_mock/chaos` `{"key":"a","scenario":{"type":"overloaded"},"ratio":0.5}` (0 clears)
//! - `POST /_mock/alternate` `{"key":"a","scenario":{"type":"rate_limited","retry_after_secs":1}}`
//!   (every second request; `"scenario":null` clears)
//! - `POST /_mock/window` `{"key":"oauth","window":"5h","utilization":0.9}` (windows `5h`,
//!   `7d`, `7d_opus`, `7d_sonnet`, `7d_oi`)
//! - `POST /_mock/token_endpoint` `{"down":true,"delay_ms":500}` (either field optional)
//! - `GET /_mock/calls`: recorded calls, bodies as lossy UTF-8
//! - `GET /_mock/stats`: per key, calls, answers by status and token-endpoint calls
//! - `POST /_mock/reset`: calls, counts, scenarios, chaos, limits, windows, tokens and
//!   batches back to start

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

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
use crate::subscription::Window;

type Shared = Extract<Arc<State>>;

pub(crate) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/_mock/scenario", post(push_scenario))
        .route("/_mock/chaos", post(set_chaos))
        .route("/_mock/alternate", post(set_alternate))
        .route("/_mock/window", post(set_window))
        .route("/_mock/token_endpoint", post(set_token_endpoint))
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

#[derive(Deserialize)]
struct SetAlternate {
    key: String,
    scenario: Option<Scenario>,
}

#[derive(Deserialize)]
struct SetWindow {
    key: String,
    window: Window,
    utilization: f64,
}

#[derive(Deserialize)]
struct SetTokenEndpoint {
    down: Option<bool>,
    delay_ms: Option<u64>,
}

fn unknown_key(name: &str) -> Response {
    let body = json!({ "error": format!("no key named {name:?} is configured") });
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
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

async fn set_alternate(Extract(state): Shared, Json(body): Json<SetAlternate>) -> Response {
    with_key(&state, &body.key, |key| {
        key.scenarios.set_alternate(body.scenario);
    })
}

async fn set_window(Extract(state): Shared, Json(body): Json<SetWindow>) -> Response {
    if !(0.0..=1.0).contains(&body.utilization) {
        return bad_request("utilization must be between 0 and 1".to_owned());
    }
    let Some(key) = state.keys.by_name(&body.key) else {
        return unknown_key(&body.key);
    };
    let Some(windows) = &key.subscription else {
        return bad_request(format!("key {:?} is not an OAuth key", body.key));
    };
    match windows.set_utilization(body.window, body.utilization) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => bad_request(format!(
            "key {:?} has no {} window configured",
            body.key,
            body.window.as_str()
        )),
    }
}

async fn set_token_endpoint(
    Extract(state): Shared,
    Json(body): Json<SetTokenEndpoint>,
) -> StatusCode {
    if let Some(down) = body.down {
        state.tokens.set_down(down);
    }
    if let Some(delay) = body.delay_ms {
        state.tokens.set_delay(Duration::from_millis(delay));
    }
    StatusCode::NO_CONTENT
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
    token_calls: usize,
}

impl TallyView {
    fn of(tally: &Tally) -> TallyView {
        TallyView {
            calls: tally.calls(),
            by_status: tally.by_status(),
            token_calls: tally.token_calls(),
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
