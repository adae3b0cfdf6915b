//! The Anthropic error envelope: building our own, reading upstream's.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The `error.type` values we emit and recognise (protocol doc §9.2).
///
/// Upstream may add types without notice; those parse to `None` and keep their raw string in
/// [`UpstreamError::kind_raw`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorType {
    InvalidRequest,
    Authentication,
    Billing,
    Permission,
    NotFound,
    RequestTooLarge,
    RateLimit,
    Api,
    Timeout,
    Overloaded,
}

impl ErrorType {
    const ALL: [Self; 10] = [
        Self::InvalidRequest,
        Self::Authentication,
        Self::Billing,
        Self::Permission,
        Self::NotFound,
        Self::RequestTooLarge,
        Self::RateLimit,
        Self::Api,
        Self::Timeout,
        Self::Overloaded,
    ];

    /// The wire string, which doubles as a low-cardinality metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request_error",
            Self::Authentication => "authentication_error",
            Self::Billing => "billing_error",
            Self::Permission => "permission_error",
            Self::NotFound => "not_found_error",
            Self::RequestTooLarge => "request_too_large",
            Self::RateLimit => "rate_limit_error",
            Self::Api => "api_error",
            Self::Timeout => "timeout_error",
            Self::Overloaded => "overloaded_error",
        }
    }

    /// The HTTP status Anthropic pairs with this type.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidRequest => 400,
            Self::Authentication => 401,
            Self::Billing => 402,
            Self::Permission => 403,
            Self::NotFound => 404,
            Self::RequestTooLarge => 413,
            Self::RateLimit => 429,
            Self::Api => 500,
            Self::Timeout => 504,
            Self::Overloaded => 529,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s)
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    envelope_type: &'static str,
    error: Detail<'a>,
    request_id: &'a str,
}

#[derive(Serialize)]
struct Detail<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'a str,
}

/// An error response body in Anthropic's envelope, as clients' SDKs expect to parse it.
pub fn error_body(kind: ErrorType, message: &str, request_id: &str) -> Vec<u8> {
    let envelope = Envelope {
        envelope_type: "error",
        error: Detail {
            kind: kind.as_str(),
            message,
        },
        request_id,
    };
    serde_json::to_vec(&envelope).expect("a struct of strings always serializes")
}

/// The same envelope as an in-stream `error` event, for failures after the 200 was sent.
/// serde_json escapes newlines, so the JSON fits on one `data:` line.
pub fn error_event(kind: ErrorType, message: &str, request_id: &str) -> Vec<u8> {
    let body = error_body(kind, message, request_id);
    let mut event = Vec::with_capacity(body.len() + 22);
    event.extend_from_slice(b"event: error\ndata: ");
    event.extend_from_slice(&body);
    event.extend_from_slice(b"\n\n");
    event
}

/// What an upstream error body said, for classifying the attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamError {
    /// `None` for types this crate does not know (e.g. `conflict_error`).
    pub kind: Option<ErrorType>,
    pub kind_raw: String,
    pub message: String,
    /// `error.details.error_code`, e.g. `enforced_spend_limit_reached` on a spend-cap 429.
    pub error_code: Option<String>,
}

#[derive(Deserialize)]
struct UpstreamEnvelope {
    error: UpstreamDetail,
}

#[derive(Deserialize)]
struct UpstreamDetail {
    #[serde(rename = "type")]
    kind: String,
    message: Option<String>,
    details: Option<UpstreamDetails>,
}

#[derive(Deserialize)]
struct UpstreamDetails {
    error_code: Option<String>,
}

/// Reads an upstream error envelope. `None` when the body is not one, such as the HTML page
/// Cloudflare returns for an oversized request.
pub fn parse_error_body(body: &[u8]) -> Option<UpstreamError> {
    let envelope: UpstreamEnvelope = serde_json::from_slice(body).ok()?;
    let detail = envelope.error;
    Some(UpstreamError {
        kind: ErrorType::parse(&detail.kind),
        kind_raw: detail.kind,
        message: detail.message.unwrap_or_default(),
        error_code: detail.details.and_then(|details| details.error_code),
    })
}

/// The provider's own credit-balance message, as it sends it (protocol doc §9.3).
pub const CREDIT_BALANCE_MESSAGE: &str = "Your credit balance is too low to access the Anthropic API. \
     Please go to Plans & Billing to upgrade or purchase credits.";
/// How the provider's spend-limit message begins; the date it names follows.
const USAGE_LIMIT_PREFIX: &str = "You have reached your specified API usage limits.";
/// `error.details.error_code` values that say the account cannot pay.
const BILLING_CODES: [&str; 1] = ["enforced_spend_limit_reached"];

/// Whether the provider said the key's account has run out of money or hit a spend cap. It
/// reports this under several statuses (400, 402, 429), and it must not be retried on the same
/// key. Only the provider's own signals count: the `billing_error` type, a billing error code,
/// or its exact messages. Validation messages quote the client's input, so a substring
/// match would let any client quarantine every credential by writing the phrase in a prompt.
pub fn is_credit_exhausted(err: &UpstreamError) -> bool {
    let message = err.message.trim();
    err.kind == Some(ErrorType::Billing)
        || err
            .error_code
            .as_deref()
            .is_some_and(|code| BILLING_CODES.contains(&code))
        || message == CREDIT_BALANCE_MESSAGE
        || message.starts_with(USAGE_LIMIT_PREFIX)
}
