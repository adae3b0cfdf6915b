//! The model ids of §12 and the Dec 2026 list, which of them are served on a given day, and
//! `GET /v1/models` and `GET /v1/models/{id}` (§11.2) over the served ones.
//!
//! A model the provider has retired answers 404 `not_found_error` like an id it never had, so
//! the mock serves exactly the catalogue below as of the day, never "any `claude-*`": tests and
//! the demo then find out when they still name a retired model.

use axum::Json;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::civil::{Date, date};
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::error::ApiError;
use crate::page::{PageQuery, page};
use crate::server::Call;

/// One model id: when it appeared and, once announced, the day it stops being served.
struct Model {
    id: &'static str,
    created: Date,
    /// The first day the id answers 404.
    retired: Option<Date>,
}

const fn current(id: &'static str, created: Date) -> Model {
    Model {
        id,
        created,
        retired: None,
    }
}

const fn retiring(id: &'static str, created: Date, retired: Date) -> Model {
    Model {
        id,
        created,
        retired: Some(retired),
    }
}

/// Claude Sonnet 4.5: retirement announced for 2026-11-30 (the Dec 2026 list; not confirmed
/// after the date, taken as done).
const SONNET_4_5_RETIRED: Date = date(2026, 11, 30);
/// Claude Opus 4.5: deprecated 2026-11-23, retirement tentatively 2027-01-22
/// (the Dec 2026 list, secondary source).
const OPUS_4_5_RETIRED: Date = date(2027, 1, 22);
/// Claude Opus 4.1: "retired on the first-party API by 2026-08" (the 2026 list); the day was
/// not captured, so the first of the month.
const OPUS_4_1_RETIRED: Date = date(2026, 8, 1);
/// Claude Opus 4 and Sonnet 4 (the 2026 list).
const CLAUDE_4_RETIRED: Date = date(2026, 6, 15);
/// Claude Sonnet 3.7 and Haiku 3.5: end of life (the 2026 list).
const CLAUDE_3_X_RETIRED: Date = date(2026, 2, 19);

/// Every id the provider has served, newest first: the Dec 2026 list's current models, then
/// the SDK's `Model` enum (2026-08-08) in its order, then the retired ids (aliases and dated
/// snapshots alike) that the Dec 2026 list says answer 404.
const CATALOGUE: [Model; 34] = [
    current("claude-fable-5-2", date(2026, 11, 9)),
    current("claude-haiku-5-5", date(2026, 10, 7)),
    current("claude-sonnet-5-5", date(2026, 9, 28)),
    // "~2026-09 (date unverified)"
    current("claude-opus-5-5", date(2026, 9, 15)),
    current("claude-fable-5-1", date(2026, 9, 1)),
    current("claude-sonnet-5", date(2026, 7, 15)),
    current("claude-fable-5", date(2026, 7, 15)),
    current("claude-mythos-5", date(2026, 7, 1)),
    current("claude-opus-5", date(2026, 6, 20)),
    current("claude-opus-4-8", date(2026, 5, 14)),
    current("claude-opus-4-7", date(2026, 3, 18)),
    current("claude-mythos-preview", date(2026, 2, 10)),
    current("claude-opus-4-6", date(2026, 2, 5)),
    current("claude-sonnet-4-6", date(2026, 2, 17)),
    current("claude-haiku-4-5", date(2025, 10, 1)),
    current("claude-haiku-4-5-20251001", date(2025, 10, 1)),
    retiring("claude-opus-4-5", date(2025, 11, 1), OPUS_4_5_RETIRED),
    retiring(
        "claude-opus-4-5-20251101",
        date(2025, 11, 1),
        OPUS_4_5_RETIRED,
    ),
    retiring("claude-sonnet-4-5", date(2025, 9, 29), SONNET_4_5_RETIRED),
    retiring(
        "claude-sonnet-4-5-20250929",
        date(2025, 9, 29),
        SONNET_4_5_RETIRED,
    ),
    retiring("claude-opus-4-1", date(2025, 8, 5), OPUS_4_1_RETIRED),
    retiring(
        "claude-opus-4-1-20250805",
        date(2025, 8, 5),
        OPUS_4_1_RETIRED,
    ),
    retiring("claude-opus-4-0", date(2025, 5, 14), CLAUDE_4_RETIRED),
    retiring("claude-opus-4", date(2025, 5, 14), CLAUDE_4_RETIRED),
    retiring(
        "claude-opus-4-20250514",
        date(2025, 5, 14),
        CLAUDE_4_RETIRED,
    ),
    retiring("claude-sonnet-4-0", date(2025, 5, 14), CLAUDE_4_RETIRED),
    retiring("claude-sonnet-4", date(2025, 5, 14), CLAUDE_4_RETIRED),
    retiring(
        "claude-sonnet-4-20250514",
        date(2025, 5, 14),
        CLAUDE_4_RETIRED,
    ),
    retiring(
        "claude-3-7-sonnet-latest",
        date(2025, 2, 19),
        CLAUDE_3_X_RETIRED,
    ),
    retiring("claude-3-7-sonnet", date(2025, 2, 19), CLAUDE_3_X_RETIRED),
    retiring(
        "claude-3-7-sonnet-20250219",
        date(2025, 2, 19),
        CLAUDE_3_X_RETIRED,
    ),
    retiring(
        "claude-3-5-haiku-latest",
        date(2024, 10, 22),
        CLAUDE_3_X_RETIRED,
    ),
    retiring("claude-3-5-haiku", date(2024, 10, 22), CLAUDE_3_X_RETIRED),
    retiring(
        "claude-3-5-haiku-20241022",
        date(2024, 10, 22),
        CLAUDE_3_X_RETIRED,
    ),
];

impl Model {
    /// Out by `day` and not yet retired.
    fn served_on(&self, day: Date) -> bool {
        self.created <= day && self.retired.is_none_or(|retired| day < retired)
    }
}

/// Whether a model id can be called on `day`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Availability {
    Served,
    /// The provider served it once and has retired it by `day`.
    Retired,
    /// Not an id the provider has served (or not yet released on `day`).
    Unknown,
}

pub(crate) fn availability(id: &str, day: Date) -> Availability {
    match CATALOGUE.iter().find(|model| model.id == id) {
        Some(model) if model.served_on(day) => Availability::Served,
        Some(model) if model.created <= day => Availability::Retired,
        _ => Availability::Unknown,
    }
}

/// `Ok` when `model` is served on `day`; else the API's answer to a model it does not serve,
/// retired or never known: 404 `not_found_error` naming the id.
pub(crate) fn check_served(model: &str, day: Date) -> Result<(), ApiError> {
    match availability(model, day) {
        Availability::Served => Ok(()),
        Availability::Retired | Availability::Unknown => {
            Err(ApiError::not_found(format!("model: {model}")))
        }
    }
}

/// Today in UTC, the day the provider's retirements are dated in.
pub(crate) fn today() -> Date {
    Timestamp::now().to_zoned(TimeZone::UTC).date()
}

/// The ids served on `day`, in catalogue order.
fn served(day: Date) -> impl Iterator<Item = &'static Model> {
    CATALOGUE.iter().filter(move |model| model.served_on(day))
}

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
    fn new(model: &Model) -> ModelInfo {
        let yes = || Supported { supported: true };
        ModelInfo {
            kind: "model",
            id: model.id,
            display_name: display_name(model.id),
            created_at: format!("{}T00:00:00Z", model.created),
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
    let models: Vec<ModelInfo> = served(today()).map(ModelInfo::new).collect();
    Json(page(models, |m| m.id, &query)).into_response()
}

pub(crate) fn get(call: &Call<'_>, id: &str) -> Response {
    match served(today()).find(|model| model.id == id) {
        Some(model) => Json(ModelInfo::new(model)).into_response(),
        None => call.error(ApiError::not_found(format!("model: {id}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The day this rule was written against (the Dec 2026 list).
    const WRITTEN: Date = date(2026, 12, 4);

    #[test]
    fn current_models_are_served() {
        for id in [
            "claude-fable-5-2",
            "claude-fable-5-1",
            "claude-opus-5-5",
            "claude-sonnet-5-5",
            "claude-haiku-5-5",
            "claude-haiku-4-5",
            "claude-opus-4-8",
            "claude-sonnet-4-6",
        ] {
            assert_eq!(availability(id, WRITTEN), Availability::Served, "{id}");
        }
    }

    #[test]
    fn retired_models_are_retired_with_and_without_their_date_suffix() {
        for id in [
            "claude-opus-4-1",
            "claude-opus-4-1-20250805",
            "claude-opus-4",
            "claude-opus-4-20250514",
            "claude-sonnet-4",
            "claude-sonnet-4-20250514",
            "claude-3-5-haiku",
            "claude-3-5-haiku-latest",
            "claude-3-5-haiku-20241022",
            "claude-3-7-sonnet",
            "claude-3-7-sonnet-20250219",
            "claude-sonnet-4-5",
            "claude-sonnet-4-5-20250929",
        ] {
            assert_eq!(availability(id, WRITTEN), Availability::Retired, "{id}");
            let refused = check_served(id, WRITTEN).unwrap_err();
            assert_eq!(refused.kind, crate::error::ErrorKind::NotFoundError);
            assert_eq!(refused.message, format!("model: {id}"));
        }
    }

    #[test]
    fn retirement_is_decided_by_the_date() {
        let sonnet = "claude-sonnet-4-5-20250929";
        assert_eq!(
            availability(sonnet, date(2026, 11, 29)),
            Availability::Served
        );
        assert_eq!(
            availability(sonnet, date(2026, 11, 30)),
            Availability::Retired
        );
        // Deprecated, still served until its (tentative) retirement day.
        let opus = "claude-opus-4-5-20251101";
        assert_eq!(availability(opus, WRITTEN), Availability::Served);
        assert_eq!(availability(opus, date(2027, 1, 21)), Availability::Served);
        assert_eq!(availability(opus, date(2027, 1, 22)), Availability::Retired);
        // Before its release a model is unknown, not retired.
        let fable = "claude-fable-5-2";
        assert_eq!(
            availability(fable, date(2026, 11, 8)),
            Availability::Unknown
        );
        assert_eq!(availability(fable, date(2026, 11, 9)), Availability::Served);
    }

    #[test]
    fn ids_never_served_are_unknown() {
        for id in [
            "claude-unreleased-9",
            "claude-opus-4-8-20990101",
            "gpt-4o",
            "",
        ] {
            assert_eq!(availability(id, WRITTEN), Availability::Unknown, "{id}");
        }
    }

    #[test]
    fn the_listing_on_a_day_is_what_is_served_that_day() {
        let listed: Vec<&str> = served(WRITTEN).map(|m| m.id).collect();
        assert_eq!(listed.len(), 18);
        assert_eq!(
            listed[..5],
            [
                "claude-fable-5-2",
                "claude-haiku-5-5",
                "claude-sonnet-5-5",
                "claude-opus-5-5",
                "claude-fable-5-1",
            ]
        );
        assert!(!listed.contains(&"claude-sonnet-4-5"));
        assert!(listed.contains(&"claude-opus-4-5-20251101"));
        let ids: std::collections::HashSet<_> = CATALOGUE.iter().map(|m| m.id).collect();
        assert_eq!(ids.len(), CATALOGUE.len(), "an id is listed twice");
    }

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
