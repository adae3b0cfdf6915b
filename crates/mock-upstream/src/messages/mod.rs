//! `POST /v1/messages` (JSON and SSE) and `POST /v1/messages/count_tokens`.

mod answer;
mod request;

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub(crate) use answer::{Answer, ServiceTier};
pub(crate) use request::{Endpoint, Prompt, fnv1a};

use crate::models;
use crate::scenario::Consumer;
use crate::server::Call;

pub(crate) async fn create(call: &Call<'_>) -> Response {
    let scenario = call.key.scenarios.draw(Consumer::Generation);
    if let Some(response) = scenario.as_ref().and_then(|s| call.scenario_response(s)) {
        return response;
    }
    let prompt = match Prompt::parse(call.body, Endpoint::Messages, models::today()) {
        Ok(prompt) => prompt,
        Err(error) => return call.error(error),
    };
    if let Some(error) = call.key.refuse_model(&prompt.model) {
        return call.error(error);
    }
    let answer = Answer::generate(&prompt, call.pacing().words, ServiceTier::Standard);
    call.deliver(&answer, prompt.stream, scenario.as_ref())
        .await
}

pub(crate) async fn count_tokens(call: &Call<'_>) -> Response {
    let scenario = call.key.scenarios.draw(Consumer::CountTokens);
    if let Some(response) = scenario.as_ref().and_then(|s| call.scenario_response(s)) {
        return response;
    }
    let prompt = match Prompt::parse(call.body, Endpoint::CountTokens, models::today()) {
        Ok(prompt) => prompt,
        Err(error) => return call.error(error),
    };
    match call.key.refuse_model(&prompt.model) {
        Some(error) => call.error(error),
        None => Json(json!({ "input_tokens": prompt.input_tokens })).into_response(),
    }
}
