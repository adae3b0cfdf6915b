//! Anthropic's error envelope (§9), and OAuth's for the token endpoint: the one place errors
//! become HTTP responses.

use std::borrow::Cow;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

/// `error.type` values the mock produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ErrorKind {
    InvalidRequestError,
    AuthenticationError,
    BillingError,
    PermissionError,
    NotFoundError,
    RequestTooLarge,
    RateLimitError,
    ApiError,
    OverloadedError,
}

impl ErrorKind {
    pub(crate) fn status(self) -> StatusCode {
        match self {
            ErrorKind::InvalidRequestError => StatusCode::BAD_REQUEST,
            ErrorKind::AuthenticationError => StatusCode::UNAUTHORIZED,
            ErrorKind::BillingError => StatusCode::PAYMENT_REQUIRED,
            ErrorKind::PermissionError => StatusCode::FORBIDDEN,
            ErrorKind::NotFoundError => StatusCode::NOT_FOUND,
            ErrorKind::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::RateLimitError => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::ApiError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::OverloadedError => status_529(),
        }
    }
}

/// Anthropic's non-standard 529.
fn status_529() -> StatusCode {
    StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

/// An error answer: kind, the human message and, for some, a machine-readable code sent as
/// `error.details.error_code`.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub(crate) kind: ErrorKind,
    pub(crate) message: Cow<'static, str>,
    pub(crate) code: Option<&'static str>,
}

impl ApiError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
            code: None,
        }
    }

    /// The same error with `error.details.error_code` set.
    pub(crate) fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    pub(crate) fn invalid(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(ErrorKind::InvalidRequestError, message)
    }

    pub(crate) fn not_found(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(ErrorKind::NotFoundError, message)
    }

    pub(crate) fn overloaded() -> ApiError {
        ApiError::new(ErrorKind::OverloadedError, "Overloaded")
    }

    /// The JSON error envelope with `x-should-retry` set as the real API does: true for
    /// 429 and 5xx, false otherwise. Common headers are added by the server.
    pub(crate) fn into_response(self, request_id: &str) -> Response {
        let status = self.kind.status();
        let body = serde_json::to_vec(&Envelope {
            kind: "error",
            error: self.detail(),
            request_id,
        })
        .unwrap_or_default();
        let retry = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            "x-should-retry",
            HeaderValue::from_static(if retry { "true" } else { "false" }),
        );
        response
    }

    /// The in-stream form (§7.8): the body of an `event: error`, without `request_id` like
    /// the recorded streams.
    pub(crate) fn to_event_json(&self) -> String {
        serde_json::to_string(&StreamError {
            kind: "error",
            error: self.detail(),
        })
        .unwrap_or_default()
    }

    fn detail(&self) -> Detail<'_> {
        Detail {
            kind: self.kind,
            message: &self.message,
            details: self.code.map(|error_code| Details { error_code }),
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: Detail<'a>,
    request_id: &'a str,
}

#[derive(Serialize)]
struct StreamError<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    #[serde(rename = "type")]
    kind: ErrorKind,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
}

#[derive(Serialize)]
struct Details {
    error_code: &'static str,
}

/// `error` values of the token endpoint (RFC 6749 §5.2, plus `temporarily_unavailable`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OAuthErrorKind {
    InvalidRequest,
    InvalidGrant,
    UnsupportedGrantType,
    TemporarilyUnavailable,
}

/// An error of the token endpoint, in OAuth's shape rather than Anthropic's:
/// `{"error":"invalid_grant","error_description":"…"}`.
#[derive(Clone, Debug)]
pub(crate) struct OAuthError {
    pub(crate) kind: OAuthErrorKind,
    pub(crate) description: &'static str,
}

impl OAuthError {
    pub(crate) fn new(kind: OAuthErrorKind, description: &'static str) -> OAuthError {
        OAuthError { kind, description }
    }

    /// 400, or 503 for `temporarily_unavailable`.
    pub(crate) fn into_response(self) -> Response {
        let status = match self.kind {
            OAuthErrorKind::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = serde_json::to_vec(&OAuthEnvelope {
            error: self.kind,
            error_description: self.description,
        })
        .unwrap_or_default();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

#[derive(Serialize)]
struct OAuthEnvelope {
    error: OAuthErrorKind,
    error_description: &'static str,
}
