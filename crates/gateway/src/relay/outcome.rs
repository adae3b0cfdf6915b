//! The one place an upstream result is classified. Everything downstream (the pool's state
//! machine, failover, the client-facing status, logs) reads the `Outcome`, never HTTP.

use http::{HeaderMap, StatusCode};
use keyloop_wire::anthropic::{self, ErrorType};

use crate::providers::ratelimit_headers::{CLASSIC_MAX_MS, SUBSCRIPTION_MAX_MS};
use crate::providers::{self, ratelimit_headers, subscription_headers};
use crate::types::{EpochMs, Outcome, OutcomeClass, Scope};

/// `error.details.error_code` of a 401 for an OAuth access token that ran out.
const TOKEN_EXPIRED: &str = "token_expired";

/// Classifies an answer with a status line. `body` is what was read of it (error bodies are
/// small and always read whole); `model` is the model the request named, which decides which
/// of a subscription's windows applies.
///
/// Only signals about the credential penalise it: billing only on the provider's billing
/// signals (see `anthropic::is_credit_exhausted`), a 403 `permission_error` only for the model
/// asked for, a subscription window only for the models it covers.
pub fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    model: Option<&str>,
    now: EpochMs,
) -> Outcome {
    let ratelimit = ratelimit_headers::snapshot(headers, now);
    let subscription = ratelimit.as_ref().and_then(|r| r.subscription.as_ref());
    let error = || anthropic::parse_error_body(body);
    let billing = || error().as_ref().is_some_and(anthropic::is_credit_exhausted);
    let mut scope = Scope::Credential;
    let class = match status.as_u16() {
        200..=299 => OutcomeClass::Success,
        429 if billing() => OutcomeClass::BillingExhausted,
        429 => OutcomeClass::RateLimited,
        529 => OutcomeClass::Overloaded,
        401 if error().and_then(|e| e.error_code).as_deref() == Some(TOKEN_EXPIRED) => {
            OutcomeClass::TokenExpired
        }
        401 => OutcomeClass::InvalidCredential,
        403 => match error().and_then(|e| e.kind) {
            // The credential works, but not for what this request asked.
            Some(ErrorType::Permission) => {
                scope = Scope::RequestModel;
                OutcomeClass::ModelDenied
            }
            _ => OutcomeClass::InvalidCredential,
        },
        402 => OutcomeClass::BillingExhausted,
        400 if billing() => OutcomeClass::BillingExhausted,
        504 => OutcomeClass::Timeout,
        408 | 409 | 500..=599 => OutcomeClass::ServerError,
        _ if status.is_client_error() => OutcomeClass::ClientError,
        _ => OutcomeClass::ServerError,
    };
    let retry_at_ms = match class {
        OutcomeClass::RateLimited => match subscription {
            Some(sub) => {
                let rejected = subscription_headers::rejected_window(sub, model);
                if let Some(family) = rejected.and_then(|(name, _)| name.family()) {
                    scope = Scope::Family(family);
                }
                rejected
                    .and_then(|(_, window)| window.reset_ms)
                    .or(sub.reset_ms)
                    .or_else(|| ratelimit_headers::retry_at(headers, now, SUBSCRIPTION_MAX_MS))
            }
            None => ratelimit_headers::retry_at(headers, now, CLASSIC_MAX_MS).or_else(|| {
                ratelimit
                    .as_ref()
                    .and_then(ratelimit_headers::exhausted_reset)
            }),
        },
        OutcomeClass::BillingExhausted => {
            ratelimit_headers::retry_at(headers, now, SUBSCRIPTION_MAX_MS)
        }
        _ => None,
    };
    Outcome {
        class,
        retry_at_ms,
        ratelimit,
        scope,
    }
}

/// A call that got no answer at all.
pub fn classify_transport(error: &providers::Error) -> Outcome {
    Outcome::of(match error {
        providers::Error::Timeout => OutcomeClass::Timeout,
        providers::Error::Connect | providers::Error::Transport => OutcomeClass::ConnectError,
    })
}

/// An `event: error` inside a stream, before or after commit.
pub fn classify_stream_error(kind: Option<ErrorType>) -> Outcome {
    Outcome::of(match kind {
        Some(ErrorType::Overloaded) => OutcomeClass::Overloaded,
        Some(ErrorType::RateLimit) => OutcomeClass::RateLimited,
        Some(ErrorType::Authentication) => OutcomeClass::InvalidCredential,
        Some(ErrorType::Permission) => OutcomeClass::ModelDenied,
        Some(ErrorType::Billing) => OutcomeClass::BillingExhausted,
        Some(ErrorType::Timeout) => OutcomeClass::Timeout,
        _ => OutcomeClass::ServerError,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(status: u16, body: &str) -> OutcomeClass {
        classify(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
            Some("claude-sonnet-5-5"),
            0,
        )
        .class
    }

    fn err(kind: &str, message: &str) -> String {
        format!(r#"{{"type":"error","error":{{"type":"{kind}","message":"{message}"}}}}"#)
    }

    #[test]
    fn statuses_map_to_classes() {
        assert_eq!(class(200, "{}"), OutcomeClass::Success);
        assert_eq!(
            class(429, &err("rate_limit_error", "slow down")),
            OutcomeClass::RateLimited
        );
        assert_eq!(
            class(529, &err("overloaded_error", "Overloaded")),
            OutcomeClass::Overloaded
        );
        assert_eq!(
            class(500, &err("api_error", "x")),
            OutcomeClass::ServerError
        );
        assert_eq!(
            class(502, "<html>bad gateway</html>"),
            OutcomeClass::ServerError
        );
        assert_eq!(class(504, ""), OutcomeClass::Timeout);
        assert_eq!(
            class(401, &err("authentication_error", "invalid x-api-key")),
            OutcomeClass::InvalidCredential
        );
        assert_eq!(
            class(403, &err("permission_error", "no")),
            OutcomeClass::ModelDenied
        );
        assert_eq!(
            class(403, &err("authentication_error", "OAuth token revoked")),
            OutcomeClass::InvalidCredential
        );
        let expired = r#"{"type":"error","error":{"type":"authentication_error","message":"OAuth token has expired.","details":{"error_code":"token_expired"}}}"#;
        assert_eq!(class(401, expired), OutcomeClass::TokenExpired);
        assert_eq!(
            class(402, &err("billing_error", "pay")),
            OutcomeClass::BillingExhausted
        );
        assert_eq!(
            class(
                400,
                &err("invalid_request_error", "messages: Field required")
            ),
            OutcomeClass::ClientError
        );
        assert_eq!(
            class(404, &err("not_found_error", "model: x")),
            OutcomeClass::ClientError
        );
        assert_eq!(class(413, "request too large"), OutcomeClass::ClientError);
    }

    #[test]
    fn billing_hidden_in_400_and_429() {
        let credit = err(
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
        );
        assert_eq!(class(400, &credit), OutcomeClass::BillingExhausted);
        let quoted = err(
            "invalid_request_error",
            "messages.0.content: text 'my credit balance is too low to access the Anthropic API' is not valid",
        );
        assert_eq!(class(400, &quoted), OutcomeClass::ClientError);
        let cap = r#"{"type":"error","error":{"type":"rate_limit_error","message":"cap","details":{"error_code":"enforced_spend_limit_reached"}}}"#;
        assert_eq!(class(429, cap), OutcomeClass::BillingExhausted);
    }

    #[test]
    fn retry_after_is_read_for_rate_limits_only() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "17".parse().unwrap());
        let o = classify(StatusCode::TOO_MANY_REQUESTS, &h, b"{}", None, 1_000);
        assert_eq!(o.retry_at_ms, Some(18_000));
        let o = classify(StatusCode::INTERNAL_SERVER_ERROR, &h, b"{}", None, 1_000);
        assert_eq!(o.retry_at_ms, None);
    }

    fn unified(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_spent_subscription_window_cools_until_its_reset() {
        let now = 1_767_268_800_000;
        let reset = now / 1000 + 4 * 3600;
        let h = unified(&[
            ("anthropic-ratelimit-unified-status", "rejected".into()),
            (
                "anthropic-ratelimit-unified-representative-claim",
                "five_hour".into(),
            ),
            ("anthropic-ratelimit-unified-5h-status", "rejected".into()),
            ("anthropic-ratelimit-unified-5h-reset", reset.to_string()),
            ("retry-after", "60".into()),
        ]);
        let o = classify(
            StatusCode::TOO_MANY_REQUESTS,
            &h,
            b"{}",
            Some("claude-sonnet-5-5"),
            now,
        );
        assert_eq!(o.class, OutcomeClass::RateLimited);
        assert_eq!(
            o.retry_at_ms,
            Some(reset * 1000),
            "the window's reset, not the minute"
        );
        assert_eq!(o.scope, Scope::Credential);
    }

    #[test]
    fn a_model_window_holds_out_its_models_only() {
        let now = 1_767_268_800_000;
        let reset = now / 1000 + 2 * 86_400;
        let h = unified(&[
            ("anthropic-ratelimit-unified-status", "rejected".into()),
            (
                "anthropic-ratelimit-unified-representative-claim",
                "seven_day_opus".into(),
            ),
            (
                "anthropic-ratelimit-unified-7d_opus-status",
                "rejected".into(),
            ),
            (
                "anthropic-ratelimit-unified-7d_opus-reset",
                reset.to_string(),
            ),
            ("anthropic-ratelimit-unified-5h-status", "allowed".into()),
        ]);
        let o = classify(
            StatusCode::TOO_MANY_REQUESTS,
            &h,
            b"{}",
            Some("claude-opus-5-5"),
            now,
        );
        assert_eq!(o.class, OutcomeClass::RateLimited);
        assert_eq!(o.scope, Scope::Family(crate::types::ModelFamily::Opus));
        assert_eq!(o.retry_at_ms, Some(reset * 1000));
    }

    #[test]
    fn an_overage_rejection_is_not_a_billing_quarantine() {
        let now = 1_767_268_800_000;
        let reset = now / 1000 + 3600;
        let h = unified(&[
            ("anthropic-ratelimit-unified-status", "rejected".into()),
            (
                "anthropic-ratelimit-unified-representative-claim",
                "five_hour".into(),
            ),
            ("anthropic-ratelimit-unified-5h-status", "rejected".into()),
            ("anthropic-ratelimit-unified-5h-reset", reset.to_string()),
            (
                "anthropic-ratelimit-unified-overage-status",
                "rejected".into(),
            ),
            (
                "anthropic-ratelimit-unified-overage-disabled-reason",
                "out_of_credits".into(),
            ),
        ]);
        let body = err(
            "rate_limit_error",
            "This request would exceed your account's rate limit.",
        );
        let o = classify(
            StatusCode::TOO_MANY_REQUESTS,
            &h,
            body.as_bytes(),
            None,
            now,
        );
        assert_eq!(o.class, OutcomeClass::RateLimited);
        assert_eq!(o.retry_at_ms, Some(reset * 1000));
    }
}
