//! `GET /v1/models` and `GET /v1/models/{id}` (§11.2) over the model ids of §12.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::ApiError;
use crate::page::{PageQuery, page};
use crate::server::Call;

/// The SDK's `Model` enum (2026-08-08) in its order, with a creation date each.
const MODELS: [(&str, &str); 15] = [
    ("claude-sonnet-5", "2026-07-15"),
    ("claude-fable-5", "2026-07-15"),
    ("claude-mythos-5", "2026-07-01"),
    ("claude-opus-5", "2026-06-20"),
    ("claude-opus-4-8", "2026-05-14"),
    ("claude-opus-4-7", "2026-03-18"),
    ("claude-mythos-preview", "2026-02-10"),
    ("claude-opus-4-6", "2026-02-05"),
    ("claude-sonnet-4-6", "2026-02-17"),
    ("claude-haiku-4-5", "2025-10-01"),
    ("claude-haiku-4-5-20251001", "2025-10-01"),
    ("claude-opus-4-5", "2025-11-01"),
    ("claude-opus-4-5-20251101", "2025-11-01"),
    ("claude-sonnet-4-5", "2025-09-29"),
    ("claude-sonnet-4-5-20250929", "2025-09-29"),
];

#[derive(Serialize)]
struct ModelInfo {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'static str,
    display_name: String,
    created_at: String,
    max_input_tokens: u64,
    max_tokens: u64,
    capabilities: Capabilities,
}

#[derive(Serialize)]
struct Capabilities {
    batch: Supported,
    citations: Supported,
    code_execution: Supported,
    image_input: Supported,
    pdf_input: Supported,
    structured_outputs: Supported,
    thinking: Thinking,
}

#[derive(Serialize)]
struct Supported {
    supported: bool,
}

#[derive(Serialize)]
struct Thinking {
    supported: bool,
    types: [&'static str; 2],
}

impl ModelInfo {
    fn new((id, created): (&'static str, &'static str)) -> ModelInfo {
        let yes = || Supported { supported: true };
        ModelInfo {
            kind: "model",
            id,
            display_name: display_name(id),
            created_at: format!("{created}T00:00:00Z"),
            max_input_tokens: 200_000,
            max_tokens: 64_000,
            capabilities: Capabilities {
                batch: yes(),
                citations: yes(),
                code_execution: yes(),
                image_input: yes(),
                pdf_input: yes(),
                structured_outputs: yes(),
                thinking: Thinking {
                    supported: true,
                    types: ["enabled", "adaptive"],
                },
            },
        }
    }
}

/// `claude-opus-4-5-20251101` → `Claude Opus 4.5`.
fn display_name(id: &str) -> String {
    let mut words = vec!["Claude".to_owned()];
    let mut version = Vec::new();
    for part in id.trim_start_matches("claude-").split('-') {
        if part.bytes().all(|b| b.is_ascii_digit()) {
            if part.len() < 8 {
                version.push(part);
            }
        } else {
            let mut chars = part.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            words.push(first.into_iter().chain(chars).collect());
        }
    }
    if !version.is_empty() {
        words.push(version.join("."));
    }
    words.join(" ")
}

pub(crate) fn list(call: &Call<'_>) -> Response {
    let query = match PageQuery::from_uri(&call.parts.uri) {
        Ok(query) => query,
        Err(error) => return call.error(error),
    };
    let models: Vec<ModelInfo> = MODELS.into_iter().map(ModelInfo::new).collect();
    Json(page(models, |m| m.id, &query)).into_response()
}

pub(crate) fn get(call: &Call<'_>, id: &str) -> Response {
    match MODELS.into_iter().find(|(known, _)| *known == id) {
        Some(model) => Json(ModelInfo::new(model)).into_response(),
        None => call.error(ApiError::not_found(format!("model: {id}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::display_name;

    #[test]
    fn display_names() {
        assert_eq!(display_name("claude-opus-4-5-20251101"), "Claude Opus 4.5");
        assert_eq!(display_name("claude-sonnet-5"), "Claude Sonnet 5");
        assert_eq!(
            display_name("claude-mythos-preview"),
            "Claude Mythos Preview"
        );
    }
}
