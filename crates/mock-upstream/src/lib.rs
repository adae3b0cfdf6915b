//! A faithful simulated Anthropic API: keyloop's test double, the upstream behind
//! `keyloop demo`, and the target of its benchmarks.
//!
//! It speaks the wire protocol of `shared/protocol/anthropic-messages.md` over real HTTP
//! (HTTP/1.1 and h2c): Messages (JSON and SSE), count_tokens, Models, Message Batches
//! (scoped per key), legacy Complete; API-key and OAuth authentication; the full
//! `anthropic-ratelimit-*` header set from per-key token buckets. It serves the models the
//! provider serves on the day (current ones and the older ones not yet retired, by date), and
//! answers any other model 404 `not_found_error` as the API does. Answers are deterministic
//! functions of the request, so tests can assert on usage and content.
//!
//! Tests script it per key: [`MockUpstream::push_scenario`] queues failures and stream
//! shapes (FIFO), [`MockUpstream::set_chaos`] makes a key flaky at a given ratio, and
//! [`MockUpstream::calls`] / [`MockUpstream::wait_for_calls`] observe what arrived. The
//! same controls are served over HTTP under `/_mock/` for the CLI-run mock.
//!
//! Rooms: `server` (listener, the request walk and its `Call` context), `keys` (per-key
//! state), `auth`, `limits`, `scenario`, `messages` (validation and the generated answer),
//! `stream` (SSE playback), `complete`, `batches`, `models`, `page`, `control`, `record`,
//! `error`, `ids`.

mod auth;
mod batches;
mod complete;
mod control;
mod error;
mod ids;
mod keys;
mod limits;
mod messages;
mod models;
mod page;
mod record;
mod scenario;
mod server;
mod stream;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use record::RecordedCall;
pub use scenario::Scenario;

/// One upstream credential the mock accepts.
#[derive(Clone)]
pub struct MockKey {
    /// Name used by the scripting API (`push_scenario`, `call_count`, ...).
    pub name: String,
    /// The credential value. A secret starting with `sk-ant-oat` is an OAuth token: it is
    /// accepted only as `Authorization: Bearer` together with the `oauth-2025-04-20` beta
    /// flag. Anything else is an API key, accepted only as `x-api-key`.
    pub secret: String,
    /// Per-minute limits enforced for this key; `None` dimensions are unlimited.
    pub limits: Limits,
}

impl MockKey {
    /// An API key (or OAuth token, by its prefix) without limits.
    pub fn new(name: impl Into<String>, secret: impl Into<String>) -> MockKey {
        MockKey {
            name: name.into(),
            secret: secret.into(),
            limits: Limits::default(),
        }
    }

    /// The same key with `limits` enforced.
    pub fn with_limits(mut self, limits: Limits) -> MockKey {
        self.limits = limits;
        self
    }
}

impl fmt::Debug for MockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockKey")
            .field("name", &self.name)
            .field("secret", &"*****")
            .field("limits", &self.limits)
            .finish()
    }
}

/// Per-minute limits of one key, enforced as continuously refilling token buckets (§10).
///
/// Token `remaining` headers are rounded to the nearest thousand as the real API does, so
/// tests that read them should use limits in the thousands; `requests-remaining` is exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Requests per minute (RPM).
    pub rpm: Option<u32>,
    /// Input tokens per minute (ITPM).
    pub input_tpm: Option<u64>,
    /// Output tokens per minute (OTPM). The answer is known up front, so its real output
    /// tokens are charged at admission.
    pub output_tpm: Option<u64>,
}

/// How the mock behaves; start from `MockConfig::default()`.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// The credentials accepted.
    pub keys: Vec<MockKey>,
    /// Keep request headers and bodies (the last 100,000 calls). With `false` only the
    /// per-key counts are kept, which is what benchmarks want.
    pub record_calls: bool,
    /// How long a Message Batch stays `in_progress` after creation.
    pub batch_processing: Duration,
    /// Gap between SSE events (overridable per request with `x-mock-interval-ms`).
    pub stream_interval: Duration,
    /// Number of words, i.e. text deltas, in a generated answer (overridable per request
    /// with `x-mock-events`).
    pub stream_events: usize,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            keys: Vec::new(),
            record_calls: true,
            batch_processing: Duration::from_secs(1),
            stream_interval: Duration::ZERO,
            stream_events: 8,
        }
    }
}

impl MockConfig {
    /// The default configuration accepting `keys`.
    pub fn with_keys(keys: impl IntoIterator<Item = MockKey>) -> MockConfig {
        MockConfig {
            keys: keys.into_iter().collect(),
            ..MockConfig::default()
        }
    }
}

/// A running mock. Cheap to clone; the server stops on [`MockUpstream::shutdown`] or when
/// the last clone is dropped.
#[derive(Clone)]
pub struct MockUpstream {
    server: Arc<server::Server>,
}

impl MockUpstream {
    /// Serves on `127.0.0.1` on a free port.
    pub async fn start(config: MockConfig) -> std::io::Result<MockUpstream> {
        MockUpstream::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Serves on `addr`.
    pub async fn bind(addr: SocketAddr, config: MockConfig) -> std::io::Result<MockUpstream> {
        let server = server::Server::bind(addr, config).await?;
        Ok(MockUpstream {
            server: Arc::new(server),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://IP:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Queues `scenario` for the next `times` requests of `key_name` to `/v1/messages`,
    /// `/v1/complete` or `/v1/messages/count_tokens` (FIFO per key). count_tokens consumes
    /// only status-type scenarios; when the head of the queue shapes a stream or delays an
    /// answer, count_tokens leaves it for the next Messages request.
    ///
    /// # Panics
    /// If no configured key is named `key_name` (a typo in a test should fail loudly).
    pub fn push_scenario(&self, key_name: &str, scenario: Scenario, times: u32) {
        self.server
            .state()
            .key_named(key_name)
            .scenarios
            .push(scenario, times);
    }

    /// Makes each request of `key_name` hit `scenario` with probability `ratio` (0 clears).
    /// Queued scenarios take precedence.
    ///
    /// # Panics
    /// If no configured key is named `key_name`.
    pub fn set_chaos(&self, key_name: &str, scenario: Scenario, ratio: f64) {
        self.server
            .state()
            .key_named(key_name)
            .scenarios
            .set_chaos(scenario, ratio);
    }

    /// Drops queued scenarios and chaos of `key_name`.
    ///
    /// # Panics
    /// If no configured key is named `key_name`.
    pub fn clear_scenarios(&self, key_name: &str) {
        self.server.state().key_named(key_name).scenarios.clear();
    }

    /// Recorded calls in arrival order (empty when `record_calls` is off). Requests to the
    /// `/_mock/` control surface are not recorded.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.server.state().recorder.calls()
    }

    /// All requests that carried `key_name`'s credential, whatever their route or outcome.
    pub fn call_count(&self, key_name: &str) -> usize {
        let state = self.server.state();
        state
            .keys
            .by_name(key_name)
            .map_or(0, |key| key.tally.calls())
    }

    /// Resolves once `call_count(key_name) >= n`.
    ///
    /// # Panics
    /// If no configured key is named `key_name` (it would never resolve).
    pub async fn wait_for_calls(&self, key_name: &str, n: usize) {
        let state = self.server.state();
        let key = state.key_named(key_name);
        state.recorder.wait_for(&key.tally, n).await;
    }

    /// Event streams of `key_name` whose client went away before the last event was sent
    /// (the gateway cancelling an upstream request shows up here).
    pub fn abandoned_streams(&self, key_name: &str) -> usize {
        let state = self.server.state();
        state
            .keys
            .by_name(key_name)
            .map_or(0, |key| key.tally.abandoned())
    }

    /// Resolves once `abandoned_streams(key_name) >= n`.
    ///
    /// # Panics
    /// If no configured key is named `key_name`.
    pub async fn wait_for_abandoned(&self, key_name: &str, n: usize) {
        let state = self.server.state();
        let key = state.key_named(key_name);
        key.tally.wait_for_abandoned(n).await;
    }

    /// Forgets recorded calls, counts and per-status statistics.
    pub fn reset_calls(&self) {
        let state = self.server.state();
        state.recorder.reset(state.tallies());
    }

    /// Stops accepting, cuts stalled streams, lets other in-flight responses finish without
    /// their remaining delays, and waits for the server to stop.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
