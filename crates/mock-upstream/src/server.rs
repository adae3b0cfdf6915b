//! The listener and the walk of one request: read the body, identify the key, record the
//! call, route, check auth and version, answer, add the headers every answer carries. The
//! OAuth token endpoint takes the same walk but needs no credential.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State as Extract};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::serve::ListenerExt;
use bytes::Bytes;
use jiff::Timestamp;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{self, Identity};
use crate::error::{ApiError, ErrorKind};
use crate::keys::{ANONYMOUS_ORGANIZATION, Headroom, KeyState, Keys};
use crate::limits::{self, Snapshot};
use crate::oauth::{self, Tokens};
use crate::record::{Recorder, Tally};
use crate::scenario::{self, Scenario};
use crate::stream::{self, Rendition, Shape, Stop};
use crate::subscription::{self, Clock};
use crate::{MockConfig, batches, complete, control, ids, messages, models};

/// Largest body read (the Message Batches limit, §1).
const MAX_BODY: usize = 256 * 1024 * 1024;
/// Upper bound for `x-mock-events`, so a typo cannot exhaust memory.
const MAX_WORDS: usize = 100_000;

/// The settings requests read.
pub(crate) struct Settings {
    pub(crate) batch_processing: Duration,
    pub(crate) stream_interval: Duration,
    pub(crate) stream_events: usize,
}

/// Everything requests share.
pub(crate) struct State {
    pub(crate) keys: Keys,
    /// OAuth access and refresh tokens, and the token endpoint's switches.
    pub(crate) tokens: Tokens,
    pub(crate) recorder: Recorder,
    /// Calls that carried no known credential.
    pub(crate) anonymous: Tally,
    pub(crate) settings: Settings,
    pub(crate) stop: Stop,
}

impl State {
    /// # Panics
    /// If no key is named `name`: the scripting API fails loudly on a typo.
    pub(crate) fn key_named(&self, name: &str) -> &Arc<KeyState> {
        self.keys
            .by_name(name)
            .unwrap_or_else(|| panic!("keyloop-mock: no key named {name:?} is configured"))
    }

    pub(crate) fn tallies(&self) -> impl Iterator<Item = &Tally> {
        self.keys
            .iter()
            .map(|key| &key.tally)
            .chain(std::iter::once(&self.anonymous))
    }

    /// Calls, counts, scenarios, chaos, limits, subscription windows, tokens and batches
    /// back to their start state.
    pub(crate) fn reset(&self) {
        self.recorder.reset(self.tallies());
        for key in self.keys.iter() {
            key.scenarios.clear();
            key.limits.refill_all();
            if let Some(windows) = &key.subscription {
                windows.reset();
            }
            key.batches.clear();
        }
        self.tokens.reset();
    }
}

/// The running server: its address, shared state, stop signal and task.
pub(crate) struct Server {
    addr: SocketAddr,
    state: Arc<State>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Server {
    pub(crate) async fn bind(addr: SocketAddr, config: MockConfig) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let listener = listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "keyloop-mock: could not set TCP_NODELAY");
            }
        });
        let (stop, stopping) = watch::channel(false);
        let keys = Keys::new(&config, Clock::start());
        let state = Arc::new(State {
            tokens: Tokens::new(&config, &keys),
            keys,
            recorder: Recorder::new(config.record_calls),
            anonymous: Tally::default(),
            settings: Settings {
                batch_processing: config.batch_processing,
                stream_interval: config.stream_interval,
                stream_events: config.stream_events,
            },
            stop: Stop::new(stopping.clone()),
        });
        let app: Router = control::router()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let mut signal = Stop::new(stopping);
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { signal.wait().await })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "keyloop-mock: server stopped with an error");
            }
        });
        Ok(Server {
            addr,
            state,
            stop,
            task: Mutex::new(Some(task)),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn state(&self) -> &State {
        &self.state
    }

    pub(crate) async fn shutdown(&self) {
        self.stop.send_replace(true);
        let task = self.task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// What a request asks for, parsed from method and path.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    /// `HEAD /` and `GET /`: what clients probe before their first call.
    Root,
    /// `POST /v1/oauth/token`: unauthenticated.
    OAuthToken,
    Api(Api<'a>),
    Unknown,
}

/// The authenticated endpoints under `/v1/`.
#[derive(Debug, PartialEq, Eq)]
enum Api<'a> {
    Messages,
    CountTokens,
    Complete,
    Models,
    Model(&'a str),
    BatchCreate,
    BatchList,
    BatchGet(&'a str),
    BatchCancel(&'a str),
    BatchDelete(&'a str),
    BatchResults(&'a str),
}

impl<'a> Route<'a> {
    fn parse(method: &Method, path: &'a str) -> Route<'a> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let api = match (method.as_str(), segments.as_slice()) {
            ("GET" | "HEAD", [""]) => return Route::Root,
            ("POST", ["v1", "oauth", "token"]) => return Route::OAuthToken,
            ("POST", ["v1", "messages"]) => Api::Messages,
            ("POST", ["v1", "messages", "count_tokens"]) => Api::CountTokens,
            ("POST", ["v1", "complete"]) => Api::Complete,
            ("GET", ["v1", "models"]) => Api::Models,
            ("GET", ["v1", "models", id]) => Api::Model(id),
            ("POST", ["v1", "messages", "batches"]) => Api::BatchCreate,
            ("GET", ["v1", "messages", "batches"]) => Api::BatchList,
            ("GET", ["v1", "messages", "batches", id]) => Api::BatchGet(id),
            ("DELETE", ["v1", "messages", "batches", id]) => Api::BatchDelete(id),
            ("POST", ["v1", "messages", "batches", id, "cancel"]) => Api::BatchCancel(id),
            ("GET", ["v1", "messages", "batches", id, "results"]) => Api::BatchResults(id),
            _ => return Route::Unknown,
        };
        Route::Api(api)
    }
}

/// One authenticated API request: the context every handler takes.
pub(crate) struct Call<'a> {
    pub(crate) state: &'a State,
    pub(crate) key: &'a Arc<KeyState>,
    pub(crate) parts: &'a Parts,
    pub(crate) body: &'a Bytes,
    pub(crate) request_id: &'a str,
}

/// Per-request overrides of the stream settings.
pub(crate) struct Pacing {
    /// Words, i.e. text deltas, in the answer (`x-mock-events`).
    pub(crate) words: usize,
    /// Gap between events (`x-mock-interval-ms`).
    pub(crate) interval: Duration,
}

impl Call<'_> {
    pub(crate) fn error(&self, error: ApiError) -> Response {
        error.into_response(self.request_id)
    }

    pub(crate) fn stop(&self) -> Stop {
        self.state.stop.clone()
    }

    pub(crate) fn pacing(&self) -> Pacing {
        let header = |name: &str| {
            self.parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let settings = &self.state.settings;
        Pacing {
            words: header("x-mock-events")
                .map_or(settings.stream_events, |n| {
                    usize::try_from(n).unwrap_or(MAX_WORDS)
                })
                .min(MAX_WORDS),
            interval: header("x-mock-interval-ms")
                .map_or(settings.stream_interval, Duration::from_millis),
        }
    }

    /// The authority clients used to reach us, for absolute URLs (`results_url`).
    pub(crate) fn host(&self) -> String {
        self.parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| self.parts.uri.authority().map(|a| a.to_string()))
            .unwrap_or_else(|| "localhost".to_owned())
    }

    /// The complete answer of a status-type scenario.
    pub(crate) fn scenario_response(&self, scenario: &Scenario) -> Option<Response> {
        scenario::respond(scenario, self)
    }

    /// Charges the key's limits (and an OAuth key's subscription windows), then plays
    /// `answer` as JSON or SSE in the shape the scenario asks for.
    pub(crate) async fn deliver(
        &self,
        answer: &impl Rendition,
        stream: bool,
        scenario: Option<&Scenario>,
    ) -> Response {
        let headroom = match self.key.admit(answer.model(), answer.cost()) {
            Ok(headroom) => headroom,
            Err(refusal) => return refusal.into_response(self.request_id),
        };
        let shape = Shape::of(scenario);
        let mut response = if stream {
            stream::sse(
                answer.events(),
                shape,
                self.pacing().interval,
                self.stop(),
                self.key,
            )
        } else {
            stream::json(answer.to_json(), shape, self.stop(), self.request_id).await
        };
        headroom.write_headers(response.headers_mut(), Timestamp::now());
        response
    }
}

/// Every request outside `/_mock/` comes through here.
async fn handle(Extract(state): Extract<Arc<State>>, request: Request) -> Response {
    let request_id = ids::request();
    let (parts, body) = request.into_parts();
    let identity = auth::identify(&state.keys, &state.tokens, &parts.headers);
    let key_name = identity.key.as_ref().map(|key| key.name.as_str());
    let tally = identity
        .key
        .as_ref()
        .map_or(&state.anonymous, |key| &key.tally);
    let (body, too_large) = match to_bytes(body, MAX_BODY).await {
        Ok(body) => (body, false),
        Err(_) => (Bytes::new(), true),
    };
    state.recorder.record(tally, key_name, &parts, &body);
    let route = Route::parse(&parts.method, parts.uri.path());
    let api = route != Route::OAuthToken;
    let mut response = if too_large {
        ApiError::new(
            ErrorKind::RequestTooLarge,
            "Request exceeds the maximum allowed size",
        )
        .into_response(&request_id)
    } else {
        respond(route, &state, &identity, &parts, &body, &request_id).await
    };
    stamp(response.headers_mut(), &request_id);
    if api {
        decorate(response.headers_mut(), identity.key.as_deref());
    }
    tally.count_status(response.status().as_u16());
    response
}

async fn respond(
    route: Route<'_>,
    state: &State,
    identity: &Identity,
    parts: &Parts,
    body: &Bytes,
    request_id: &str,
) -> Response {
    let api = match route {
        Route::Root => return plain(StatusCode::OK, "ok"),
        Route::OAuthToken => return oauth::token(state, parts, body).await,
        Route::Unknown => return ApiError::not_found("Not Found").into_response(request_id),
        Route::Api(api) => api,
    };
    let key = match (&identity.verdict, &identity.key) {
        (Ok(()), Some(key)) => key,
        (Err(denied), _) => return denied.into_error().into_response(request_id),
        (Ok(()), None) => return auth::Denied::Missing.into_error().into_response(request_id),
    };
    if let Err(error) = auth::check_version(&parts.headers) {
        return error.into_response(request_id);
    }
    let call = Call {
        state,
        key,
        parts,
        body,
        request_id,
    };
    match api {
        Api::Messages => messages::create(&call).await,
        Api::CountTokens => messages::count_tokens(&call).await,
        Api::Complete => complete::create(&call).await,
        Api::Models => models::list(&call),
        Api::Model(id) => models::get(&call, id),
        Api::BatchCreate => batches::create(&call),
        Api::BatchList => batches::list(&call),
        Api::BatchGet(id) => batches::get(&call, id),
        Api::BatchCancel(id) => batches::cancel(&call, id),
        Api::BatchDelete(id) => batches::delete(&call, id),
        Api::BatchResults(id) => batches::results(&call, id),
    }
}

/// The headers every answer carries (§3): `request-id` and `date`.
fn stamp(headers: &mut HeaderMap, request_id: &str) {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("request-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(SystemTime::now())) {
        headers.insert(header::DATE, value);
    }
}

/// The headers every API answer carries (§3): the organization and, unless a refusal wrote
/// them already, the rate-limit family of the key (per-minute for API keys, unified for
/// OAuth keys).
fn decorate(headers: &mut HeaderMap, key: Option<&KeyState>) {
    let organization = key.map_or(ANONYMOUS_ORGANIZATION, |key| &key.organization_id);
    if let Ok(value) = HeaderValue::from_str(organization) {
        headers.insert("anthropic-organization-id", value);
    }
    if !limits::has_headers(headers) && !subscription::has_headers(headers) {
        let headroom = key.map_or_else(
            || Headroom::Classic(Snapshot::unlimited()),
            KeyState::headroom,
        );
        headroom.write_headers(headers, Timestamp::now());
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let post = Method::POST;
        assert_eq!(
            Route::parse(&post, "/v1/messages"),
            Route::Api(Api::Messages)
        );
        assert_eq!(
            Route::parse(&post, "/v1/messages/count_tokens"),
            Route::Api(Api::CountTokens)
        );
        assert_eq!(
            Route::parse(&post, "/v1/messages/batches/msgbatch_1/cancel"),
            Route::Api(Api::BatchCancel("msgbatch_1"))
        );
        assert_eq!(Route::parse(&Method::HEAD, "/"), Route::Root);
        assert_eq!(Route::parse(&post, "/v1/oauth/token"), Route::OAuthToken);
        assert_eq!(Route::parse(&Method::GET, "/v1/messages"), Route::Unknown);
        assert_eq!(Route::parse(&post, "/v2/messages"), Route::Unknown);
    }
}
