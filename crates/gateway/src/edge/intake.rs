//! Taking a request in: authenticate the caller, read the body within its limit, check that it
//! is JSON, and build the `RequestCtx`. Every refusal here happens before any upstream call.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, HeaderValue, header};
use keyloop_wire::anthropic::{ErrorType, Speed, peek_request};
use tokio::time::Instant;

use super::EdgeState;
use super::error::{self, ApiError};
use crate::relay::{self, CallKind, Caller, RequestCtx, ResponseBody, Route};

/// The parts of an inbound request the handlers work with.
pub struct Inbound {
    /// Shared, not copied, with a stream that may resume the request's failover after commit.
    pub ctx: Arc<RequestCtx>,
}

impl Inbound {
    /// `http://host` as the client reached us, for URLs we hand back (batch `results_url`).
    pub fn base_url(&self) -> String {
        let headers = &self.ctx.headers;
        format!(
            "{}://{}",
            header_str(headers, "x-forwarded-proto").unwrap_or("http"),
            header_str(headers, "host").unwrap_or("localhost")
        )
    }
}

/// A refusal, already rendered.
pub type Refusal = Response;

impl EdgeState {
    pub async fn take_in(
        &self,
        request: Request,
        kind: CallKind,
        route: Route,
    ) -> Result<Inbound, Refusal> {
        let request_id = self.ids.next();
        let started = Instant::now();
        let (parts, body) = request.into_parts();
        let refuse = |e: ApiError| e.into_response(&request_id);

        let caller = self.caller(&parts.headers).await.map_err(refuse)?;

        let body = if parts.method == http::Method::POST {
            read_body(&parts.headers, body, self.config.body_limit)
                .await
                .map_err(refuse)?
        } else {
            Bytes::new()
        };
        let (model, stream, user_id, speed) = if !body.is_empty() || kind == CallKind::Generate {
            check_json_content_type(&parts.headers).map_err(refuse)?;
            let peek = peek_request(&body)
                .map_err(|e| refuse(ApiError::new(ErrorType::InvalidRequest, e.to_string())))?;
            (
                peek.model.map(|m| m.into_owned()),
                peek.stream,
                peek.user_id.map(|u| u.into_owned()),
                peek.speed,
            )
        } else {
            (None, false, None, Speed::Standard)
        };
        if kind == CallKind::Generate && model.is_none() {
            return Err(refuse(ApiError::new(
                ErrorType::InvalidRequest,
                "model: Field required",
            )));
        }

        let session = header_str(&parts.headers, &self.config.session_header)
            .map(str::to_owned)
            .or(user_id)
            .or_else(|| caller.attributed.clone());
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
        Ok(Inbound {
            ctx: Arc::new(RequestCtx {
                request_id,
                method: parts.method,
                path_and_query,
                headers: parts.headers,
                body,
                kind,
                route,
                stream,
                model,
                speed,
                session,
                caller,
                arrived: crate::types::now_ms(),
                recorded: true,
                started,
                deadline: started + self.config.request_timeout,
            }),
        })
    }

    async fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let attributed = match header_str(headers, "x-client-id") {
            // Stored with every usage record and kept in the roll-ups: a name, not a payload.
            Some(id) if id.chars().count() > MAX_CLIENT_ID_CHARS => {
                return Err(ApiError::new(
                    ErrorType::InvalidRequest,
                    format!("header `x-client-id` is longer than {MAX_CLIENT_ID_CHARS} characters"),
                ));
            }
            id => id.map(str::to_owned),
        };
        if !self.config.require_client_key {
            return Ok(Caller {
                attributed,
                ..Caller::default()
            });
        }
        let presented = header_str(headers, "x-api-key").or_else(|| {
            header_str(headers, "authorization")
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim)
        });
        match self.clients.authenticate(presented).await {
            Ok(client) => Ok(Caller {
                client_id: Some(client.id),
                client_name: Some(client.name),
                attributed,
            }),
            Err(crate::clients::Error::Unavailable) => Err(ApiError::new(
                ErrorType::Api,
                "internal error while checking the client key",
            )),
            Err(e) => Err(ApiError::new(ErrorType::Authentication, e.to_string())),
        }
    }
}

/// The longest `X-Client-ID` accepted.
const MAX_CLIENT_ID_CHARS: usize = 128;

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = header_str(headers, "content-type").unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else if content_type.is_empty() {
        Err(ApiError::new(
            ErrorType::InvalidRequest,
            "content-type header missing: send the body as application/json",
        ))
    } else {
        Err(ApiError::new(
            ErrorType::InvalidRequest,
            format!("content-type must be application/json, got {content_type:?}"),
        ))
    }
}

async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorType::RequestTooLarge,
            format!("request body is larger than the {limit}-byte limit"),
        )
    };
    let declared = header_str(headers, "content-length").and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let over = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if over {
            too_large()
        } else {
            ApiError::new(ErrorType::InvalidRequest, "could not read the request body")
        }
    })
}

impl EdgeState {
    /// Renders a relay result for the client; a failure is recorded in the ledger with the
    /// status the client is sent.
    pub fn finish(
        &self,
        ctx: &RequestCtx,
        result: Result<relay::Response, relay::Error>,
    ) -> Response {
        let (status, mut headers, body) = match result {
            Ok(response) => {
                let body = match response.body {
                    ResponseBody::Full(bytes) => Body::from(bytes),
                    ResponseBody::Stream(stream) => {
                        // A stream is in flight until its last byte is sent.
                        let flight = self.metrics.in_flight();
                        Body::from_stream(stream.map(move |frame| {
                            let _held = &flight;
                            frame
                        }))
                    }
                };
                (response.status, response.headers, body)
            }
            Err(e) => {
                let mapped = error::from_relay(&e);
                let status = match &mapped {
                    Ok(api_error) => api_error.status,
                    Err(answer) => answer.status,
                };
                self.relay.record_failure(ctx, &e, status.as_u16());
                match mapped {
                    Ok(api_error) => return api_error.into_response(&ctx.request_id),
                    Err(answer) => {
                        let mut headers = answer.headers.clone();
                        error::advise(&mut headers);
                        (answer.status, headers, Body::from(answer.body.clone()))
                    }
                }
            }
        };
        if let Ok(id) = HeaderValue::from_str(&ctx.request_id) {
            headers.insert("x-keyloop-request-id", id);
        }
        if headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
        {
            headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        }
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }
}
