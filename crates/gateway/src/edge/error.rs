//! The one place a failure becomes an HTTP answer, in the Anthropic dialect:
//! `{"type":"error","error":{"type","message"},"request_id"}` with the matching status.
//! Messages are curated: credential names may appear, key material and internal errors never.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode};
use keyloop_wire::anthropic::{ErrorType, error_body};

use crate::pool::{Shortage, SkipReason};
use crate::relay;
use crate::types::{OutcomeClass, now_ms};

/// When nothing says how long to wait (every credential disabled), suggest this.
const DEFAULT_RETRY_AFTER_SECS: u64 = 60;
/// After provider-wide failures with nothing cooling, suggest this: long enough not to join a
/// retry storm, short enough for a blip.
const FAILING_RETRY_AFTER_SECS: u64 = 10;

/// Adds advice to the provider's own last answer, passed through after provider-wide failures:
/// the body stays the provider's words (clients read them), but without `retry-after` SDKs
/// would back off blind.
pub fn advise(headers: &mut http::HeaderMap) {
    if !headers.contains_key(http::header::RETRY_AFTER) {
        headers.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from(FAILING_RETRY_AFTER_SECS),
        );
    }
}

/// The pool has nothing to offer: 429 when its credentials are out for their limits (the
/// client waits until the first is expected back), 529 when they are failing, 503 when all are
/// disabled. Every one with `retry-after`, so SDKs wait as long as they should instead of
/// backing off blind.
fn exhausted(shortage: Shortage, wait: u64, counts: &str) -> ApiError {
    match shortage {
        Shortage::RateLimited => ApiError::new(
            ErrorType::RateLimit,
            format!(
                "every upstream credential is rate limited ({counts}); the first is expected back in {wait}s"
            ),
        )
        .retry_after(wait),
        Shortage::Failing => ApiError::new(
            ErrorType::Overloaded,
            format!(
                "every upstream credential is failing or being re-checked ({counts}); retry in {wait}s"
            ),
        )
        .retry_after(wait.clamp(1, DEFAULT_RETRY_AFTER_SECS)),
        Shortage::Disabled => ApiError::new(
            ErrorType::Api,
            format!("no upstream credential can serve this request ({counts})"),
        )
        .with_status(StatusCode::SERVICE_UNAVAILABLE)
        .retry_after(DEFAULT_RETRY_AFTER_SECS),
    }
}

pub struct ApiError {
    pub status: StatusCode,
    pub kind: ErrorType,
    pub message: String,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::BAD_REQUEST),
            kind,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    pub fn into_response(self, request_id: &str) -> Response {
        let mut response =
            Response::new(Body::from(error_body(self.kind, &self.message, request_id)));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(id) = HeaderValue::from_str(request_id) {
            headers.insert("request-id", id);
        }
        if let Some(secs) = self.retry_after_secs {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
            headers.insert("x-should-retry", HeaderValue::from_static("true"));
        }
        response
    }
}

fn secs_until(at: Option<i64>) -> u64 {
    at.map_or(DEFAULT_RETRY_AFTER_SECS, |at| {
        ((at - now_ms()).max(0) as u64).div_ceil(1000)
    })
}

/// A relay failure in the client's terms. `Err` carries the upstream's own last answer, which
/// is passed through as it was when the failure was the provider's (5xx, 529).
pub fn from_relay(error: &relay::Error) -> Result<ApiError, &relay::Answer> {
    use relay::Error as E;
    Ok(match error {
        E::NoKeyAvailable { configured: 0, .. } => ApiError::new(
            ErrorType::Api,
            "no upstream credentials are configured: add one with `keyloop keys add` or in the config file",
        )
        .with_status(StatusCode::SERVICE_UNAVAILABLE),
        E::NoKeyAvailable {
            retry_at,
            skipped,
            shortage,
            ..
        } => {
            let wait = secs_until(*retry_at);
            let (mut cooling, mut disabled, mut limited) = (0, 0, 0);
            for skip in skipped {
                match skip.reason {
                    SkipReason::Disabled => disabled += 1,
                    SkipReason::Full | SkipReason::Capped { .. } | SkipReason::ModelHeld { .. } => {
                        limited += 1;
                    }
                    _ => cooling += 1,
                }
            }
            let counts = format!(
                "{cooling} cooling down, {limited} at a limit or held for this model, {disabled} disabled"
            );
            exhausted(*shortage, wait, &counts)
        }
        E::AllAttemptsFailed {
            attempts,
            last,
            retry_at,
            shortage,
        } => {
            let n = attempts.len();
            let last_class = attempts.last().map(|a| a.outcome.class);
            let wait = secs_until(*retry_at);
            if let Some(shortage) = shortage {
                // Every credential was tried or is known to be out: the pool's own advice.
                let shortage = match last_class {
                    Some(class) if class.is_provider_wide() => Shortage::Failing,
                    _ => *shortage,
                };
                return Ok(exhausted(shortage, wait, &format!("{n} tried")));
            }
            match (last_class, last) {
                (Some(class), Some(answer)) if class.is_provider_wide() => return Err(answer.as_ref()),
                (Some(OutcomeClass::Overloaded), None) => ApiError::new(
                    ErrorType::Overloaded,
                    format!("the upstream is overloaded ({n} attempts)"),
                )
                .retry_after(FAILING_RETRY_AFTER_SECS),
                (Some(OutcomeClass::Timeout), None) => ApiError::new(
                    ErrorType::Timeout,
                    format!("the upstream did not answer in time ({n} attempts)"),
                )
                .retry_after(FAILING_RETRY_AFTER_SECS),
                (Some(OutcomeClass::ConnectError), _) => ApiError::new(
                    ErrorType::Api,
                    format!("could not reach the upstream ({n} attempts)"),
                )
                .with_status(StatusCode::BAD_GATEWAY)
                .retry_after(FAILING_RETRY_AFTER_SECS),
                (Some(OutcomeClass::ServerError), None) => ApiError::new(
                    ErrorType::Api,
                    format!("the upstream failed before sending any content ({n} attempts)"),
                )
                .with_status(StatusCode::BAD_GATEWAY)
                .retry_after(FAILING_RETRY_AFTER_SECS),
                _ => ApiError::new(
                    ErrorType::RateLimit,
                    format!(
                        "all {n} upstream credentials tried are rate limited or unavailable; retry in {wait}s"
                    ),
                )
                .retry_after(wait),
            }
        }
        E::BatchNotFound { id } => ApiError::new(
            ErrorType::NotFound,
            format!("no batch {id:?} was created through this gateway by this client"),
        ),
        E::BatchKeyGone { .. } => ApiError::new(
            ErrorType::NotFound,
            "the credential that created this batch is no longer configured",
        ),
        E::Store(e) => {
            tracing::error!(error = %e, "store failure while serving a request");
            ApiError::new(ErrorType::Api, "internal error")
        }
    })
}
