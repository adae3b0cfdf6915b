//! Legacy `POST /v1/complete` (§11.4): JSON, or SSE `completion` events with a `ping`.

use axum::response::Response;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;
use crate::ids;
use crate::limits::Cost;
use crate::messages::fnv1a;
use crate::models;
use crate::scenario::Consumer;
use crate::server::Call;
use crate::stream::{self, Events, Rendition};

const HUMAN_TURN: &str = "\n\nHuman:";

const WORDS: [&str; 8] = [
    "Hello",
    "from",
    "the",
    "legacy",
    "completions",
    "mock",
    "with",
    "words",
];

#[derive(Deserialize)]
struct Raw {
    model: Option<Value>,
    prompt: Option<Value>,
    max_tokens_to_sample: Option<Value>,
    stream: Option<Value>,
}

struct Completion {
    id: String,
    model: String,
    /// Each piece starts with a space, like the real completions.
    pieces: Vec<String>,
    stop_reason: &'static str,
    cost: Cost,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    completion: &'a str,
    stop_reason: Option<&'static str>,
    stop: Option<&'static str>,
    model: &'a str,
}

impl Completion {
    fn body<'a>(&'a self, completion: &'a str, stop_reason: Option<&'static str>) -> Body<'a> {
        Body {
            kind: "completion",
            id: &self.id,
            completion,
            stop_reason,
            stop: (stop_reason == Some("stop_sequence")).then_some(HUMAN_TURN),
            model: &self.model,
        }
    }
}

impl Rendition for Completion {
    fn model(&self) -> &str {
        &self.model
    }

    fn cost(&self) -> Cost {
        self.cost
    }

    fn to_json(&self) -> Bytes {
        let text = self.pieces.concat();
        Bytes::from(
            serde_json::to_vec(&self.body(&text, Some(self.stop_reason))).unwrap_or_default(),
        )
    }

    /// A ping, one `completion` event per piece, then an empty one carrying the stop reason.
    fn events(&self) -> Events {
        let event = |body: Body<'_>| {
            stream::frame(
                "completion",
                &serde_json::to_string(&body).unwrap_or_default(),
            )
        };
        let mut frames = vec![stream::ping()];
        frames.extend(
            self.pieces
                .iter()
                .map(|piece| event(self.body(piece, None))),
        );
        frames.push(event(self.body("", Some(self.stop_reason))));
        Events {
            frames,
            first_content: 1,
            preamble: vec![stream::ping()],
        }
    }
}

fn parse(body: &[u8], words: usize) -> Result<(Completion, bool), ApiError> {
    let raw: Raw = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::invalid("Request body must be a JSON object")
        } else {
            ApiError::invalid(format!("Request body is not valid JSON: {e}"))
        }
    })?;
    let model = match raw.model {
        None => return Err(ApiError::invalid("model: Field required")),
        Some(Value::String(model)) => model,
        Some(_) => return Err(ApiError::invalid("model: Input should be a valid string")),
    };
    let prompt = match raw.prompt {
        None => return Err(ApiError::invalid("prompt: Field required")),
        Some(Value::String(prompt)) => prompt,
        Some(_) => return Err(ApiError::invalid("prompt: Input should be a valid string")),
    };
    let max_tokens = match raw.max_tokens_to_sample {
        None => return Err(ApiError::invalid("max_tokens_to_sample: Field required")),
        Some(value) => value.as_u64().ok_or_else(|| {
            ApiError::invalid("max_tokens_to_sample: Input should be a valid integer")
        })?,
    };
    let stream = matches!(raw.stream, Some(Value::Bool(true)));
    models::check_served(&model, models::today())?;
    if !prompt.contains(HUMAN_TURN) {
        return Err(ApiError::invalid(
            "prompt must start with \"\\n\\nHuman:\" turn after an optional system prompt",
        ));
    }
    let budget = usize::try_from(max_tokens).unwrap_or(usize::MAX);
    let count = words.min(budget);
    let seed = fnv1a(prompt.as_bytes()) as usize;
    let pieces = (0..count)
        .map(|i| format!(" {}", WORDS[seed.wrapping_add(i * 3) % WORDS.len()]))
        .collect();
    let completion = Completion {
        id: ids::completion(),
        model,
        pieces,
        stop_reason: if words > budget {
            "max_tokens"
        } else {
            "stop_sequence"
        },
        cost: Cost {
            input_tokens: (prompt.len() as u64 / 4).max(1),
            output_tokens: count as u64 + 1,
        },
    };
    Ok((completion, stream))
}

pub(crate) async fn create(call: &Call<'_>) -> Response {
    let scenario = call.key.scenarios.draw(Consumer::Generation);
    if let Some(response) = scenario.as_ref().and_then(|s| call.scenario_response(s)) {
        return response;
    }
    let (completion, stream) = match parse(call.body, call.pacing().words) {
        Ok(parsed) => parsed,
        Err(error) => return call.error(error),
    };
    match call.key.refuse_model(&completion.model) {
        Some(error) => call.error(error),
        None => call.deliver(&completion, stream, scenario.as_ref()).await,
    }
}
