//! The one place an upstream result is classified. Everything downstream (the pool's state
//! machine, failover, the client-facing status, logs) reads the `Outcome`, never HTTP.

use http::{HeaderMap, StatusCode};
use keyloop_wire::anthropic::{self, ErrorType};

use crate::providers::{self, ratelimit_headers};
use crate::types::{EpochMs, Outcome, OutcomeClass};

/// Classifies an answer with a status line. `body` is what was read of it (error bodies are
/// small and always read whole).
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8], now: EpochMs) -> Outcome {
    let ratelimit = ratelimit_headers::snapshot(headers, now);
    let class = match status.as_u16() {
        200..=299 => OutcomeClass::Success,
        429 => {
            let error = anthropic::parse_error_body(body);
            if error.as_ref().is_some_and(anthropic::is_credit_exhausted) {
                OutcomeClass::BillingExhausted
            } else {
                OutcomeClass::RateLimited
            }
        }
        529 => OutcomeClass::Overloaded,
        401 | 403 => OutcomeClass::InvalidCredential,
        402 => OutcomeClass::BillingExhausted,
        400 => {
            let error = anthropic::parse_error_body(body);
            if error.as_ref().is_some_and(anthropic::is_credit_exhausted) {
                OutcomeClass::BillingExhausted
            } else {
                OutcomeClass::ClientError
            }
        }
        504 => OutcomeClass::Timeout,
        408 | 409 | 500..=599 => OutcomeClass::ServerError,
        _ if status.is_client_error() => OutcomeClass::ClientError,
        _ => OutcomeClass::ServerError,
    };
    let retry_at_ms = match class {
        OutcomeClass::RateLimited | OutcomeClass::BillingExhausted => {
            ratelimit_headers::retry_at(headers, now).or_else(|| {
                (class == OutcomeClass::RateLimited)
                    .then(|| {
                        ratelimit
                            .as_ref()
                            .and_then(ratelimit_headers::exhausted_reset)
                    })
                    .flatten()
            })
        }
        _ => None,
    };
    Outcome {
        class,
        retry_at_ms,
        ratelimit,
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
        Some(ErrorType::Authentication | ErrorType::Permission) => OutcomeClass::InvalidCredential,
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
            OutcomeClass::InvalidCredential
        );
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
        let cap = r#"{"type":"error","error":{"type":"rate_limit_error","message":"cap","details":{"error_code":"enforced_spend_limit_reached"}}}"#;
        assert_eq!(class(429, cap), OutcomeClass::BillingExhausted);
    }

    #[test]
    fn retry_after_is_read_for_rate_limits_only() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "17".parse().unwrap());
        let o = classify(StatusCode::TOO_MANY_REQUESTS, &h, b"{}", 1_000);
        assert_eq!(o.retry_at_ms, Some(18_000));
        let o = classify(StatusCode::INTERNAL_SERVER_ERROR, &h, b"{}", 1_000);
        assert_eq!(o.retry_at_ms, None);
    }
}
