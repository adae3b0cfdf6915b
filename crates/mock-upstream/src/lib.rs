//! A faithful simulated Anthropic API: keyloop's test double, the upstream behind
//! `keyloop demo`, and the target of its benchmarks.
//!
//! It speaks Anthropic's wire protocol over real HTTP
//! (HTTP/1.1 and h2c): Messages (JSON and SSE), count_tokens, Models, Message Batches
//! (scoped per key), legacy Complete; API-key and OAuth authentication; the full
//! `anthropic-ratelimit-*` header set from per-key token buckets. It serves the models the
//! provider serves on the day (current ones and the older ones not yet retired, by date), and
//! answers any other model 404 `not_found_error` as the API does. Answers are deterministic
//! functions of the request, so tests can assert on usage and content.
//!
//! Subscription accounts: an OAuth key (secret `sk-ant-oat…`)
//! answers with the `anthropic-ratelimit-unified-*` family instead of the per-minute one,
//! from usage windows that fill by one unit per served request
//! ([`MockKey::with_subscription`], [`Subscription`], [`Window`], optional [`Overage`];
//! [`MockUpstream::set_window_utilization`] puts an account near its limit). A full window
//! answers 429 `rate_limit_error` with `unified-status: rejected`, the binding window as
//! `representative-claim` and `retry-after` until its reset; model-scoped windows
//! (`7d_opus`, `7d_sonnet`) hold back only their models.
//!
//! OAuth token families: [`MockKey::with_refresh_token`] seeds a family that
//! `POST /v1/oauth/token` rotates (a reused refresh token revokes the family; errors in
//! OAuth's `{"error","error_description"}` shape). Access tokens expire
//! ([`MockConfig::access_token_lifetime`], [`MockKey::with_access_token_lifetime`]) and are
//! then refused with 401 `error.details.error_code: "token_expired"`. Tests observe and
//! disturb the endpoint with [`MockUpstream::token_calls`],
//! [`MockUpstream::wait_for_token_calls`], [`MockUpstream::set_token_endpoint_down`] and
//! [`MockUpstream::set_token_endpoint_delay`].
//!
//! Organizations: every API answer carries `anthropic-organization-id`
//! ([`MockKey::with_organization`], else derived from the key name); with
//! [`MockConfig::shared_organization_limits`] the keys of one organization share their
//! per-minute buckets. [`MockKey::deny_models`] makes a credential answer 403
//! `permission_error` for some models and serve the others.
//!
//! Tests script it per key: [`MockUpstream::push_scenario`] queues failures and stream
//! shapes (FIFO), [`MockUpstream::set_alternate`] hits every second request,
//! [`MockUpstream::set_chaos`] makes a key flaky at a given ratio, and
//! [`MockUpstream::calls`] / [`MockUpstream::wait_for_calls`] observe what arrived. The
//! same controls are served over HTTP under `/_mock/` for the CLI-run mock. Time-based
//! behaviour (buckets, windows, token expiry, batches) reads Tokio's clock, so tests run it
//! under paused time.
//!
//! Rooms: `server` (listener, the request walk and its `Call` context), `keys` (per-key
//! state: organization, buckets, windows, denied models), `auth`, `oauth` (token families
//! and the token endpoint), `limits` (per-minute buckets), `subscription` (usage windows
//! and the unified headers), `scenario`, `messages` (validation and the generated answer),
//! `stream` (SSE playback), `complete`, `batches`, `models`, `page`, `control`, `record`,
//! `error` (Anthropic's and OAuth's envelopes), `ids`.

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
mod oauth;
mod page;
mod record;
mod scenario;
mod server;
mod stream;
mod subscription;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use record::RecordedCall;
pub use scenario::Scenario;
pub use subscription::{Overage, Subscription, Window};

/// One upstream credential the mock accepts.
///
/// Build it with [`MockKey::new`] and the `with_*` methods; the fields are public so that
/// callers can read them (and, with `..MockKey::default()`, spell a key out).
#[derive(Clone, Default)]
pub struct MockKey {
    /// Name used by the scripting API (`push_scenario`, `call_count`, ...).
    pub name: String,
    /// The credential value. A secret starting with `sk-ant-oat` is an OAuth token: it is
    /// accepted only as `Authorization: Bearer` together with the `oauth-2025-04-20` beta
    /// flag, and answers carry the unified subscription headers instead of the per-minute
    /// ones. Anything else is an API key, accepted only as `x-api-key`.
    pub secret: String,
    /// Per-minute limits enforced for this key; `None` dimensions are unlimited.
    pub limits: Limits,
    /// Sent verbatim as `anthropic-organization-id` (real ones are UUIDs). `None`: a stable
    /// UUID derived from the key name. With [`MockConfig::shared_organization_limits`],
    /// keys of one organization share their per-minute buckets.
    pub organization: Option<String>,
    /// The subscription windows of an OAuth key; `None` for an OAuth key means
    /// [`Subscription::default`]. Ignored for API keys.
    pub subscription: Option<Subscription>,
    /// Seeds the key's OAuth token family: this refresh token can be exchanged once at
    /// `POST /v1/oauth/token` (see [`MockUpstream::token_calls`]).
    pub refresh_token: Option<String>,
    /// How long this key's access tokens are valid, overriding
    /// [`MockConfig::access_token_lifetime`]. The configured `secret` expires this long
    /// after the mock starts when this is set, or when a `refresh_token` is set (then with
    /// the configured default); otherwise it never expires. `Duration::ZERO` gives an
    /// already-expired token.
    pub access_token_lifetime: Option<Duration>,
    /// Model ids (exact) this credential may not use: Messages, count_tokens and Complete
    /// requests for them get 403 `permission_error`; other models are served.
    pub denied_models: Vec<String>,
}

impl MockKey {
    /// An API key (or OAuth token, by its prefix) without limits.
    pub fn new(name: impl Into<String>, secret: impl Into<String>) -> MockKey {
        MockKey {
            name: name.into(),
            secret: secret.into(),
            ..MockKey::default()
        }
    }

    /// The same key with `limits` enforced.
    pub fn with_limits(mut self, limits: Limits) -> MockKey {
        self.limits = limits;
        self
    }

    /// The same key in organization `id` (sent verbatim as `anthropic-organization-id`).
    pub fn with_organization(mut self, id: impl Into<String>) -> MockKey {
        self.organization = Some(id.into());
        self
    }

    /// The same (OAuth) key with these subscription windows.
    pub fn with_subscription(mut self, subscription: Subscription) -> MockKey {
        self.subscription = Some(subscription);
        self
    }

    /// The same (OAuth) key with a token family seeded by `refresh_token`.
    pub fn with_refresh_token(mut self, refresh_token: impl Into<String>) -> MockKey {
        self.refresh_token = Some(refresh_token.into());
        self
    }

    /// The same (OAuth) key whose access tokens, the configured one included, live
    /// `lifetime`.
    pub fn with_access_token_lifetime(mut self, lifetime: Duration) -> MockKey {
        self.access_token_lifetime = Some(lifetime);
        self
    }

    /// The same key refused (403 `permission_error`) for these model ids.
    pub fn deny_models<M: Into<String>>(mut self, models: impl IntoIterator<Item = M>) -> MockKey {
        self.denied_models
            .extend(models.into_iter().map(Into::into));
        self
    }
}

impl fmt::Debug for MockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockKey")
            .field("name", &self.name)
            .field("secret", &"*****")
            .field("limits", &self.limits)
            .field("organization", &self.organization)
            .field("subscription", &self.subscription)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "*****"),
            )
            .field("access_token_lifetime", &self.access_token_lifetime)
            .field("denied_models", &self.denied_models)
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
    /// Keys of the same organization share their per-minute buckets, as the real API's
    /// limits are per organization: a 429 from one key predicts 429s from its siblings. The
    /// shared buckets have the limits of the organization's first key (in `keys` order);
    /// its siblings' own `limits` are then ignored.
    pub shared_organization_limits: bool,
    /// Lifetime of issued OAuth access tokens (`expires_in`), unless the key sets its own.
    pub access_token_lifetime: Duration,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            keys: Vec::new(),
            record_calls: true,
            batch_processing: Duration::from_secs(1),
            stream_interval: Duration::ZERO,
            stream_events: 8,
            shared_organization_limits: false,
            access_token_lifetime: Duration::from_secs(8 * 60 * 60),
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

    /// Makes every second request of `key_name` (the 2nd, 4th, … counted from now, among
    /// those the queue does not answer) hit `scenario`: deterministic alternation, e.g.
    /// `Scenario::RateLimited` for a key that answers 429 to every other request. Takes
    /// precedence over chaos; [`MockUpstream::clear_scenarios`] ends it.
    ///
    /// # Panics
    /// If no configured key is named `key_name`.
    pub fn set_alternate(&self, key_name: &str, scenario: Scenario) {
        self.server
            .state()
            .key_named(key_name)
            .scenarios
            .set_alternate(Some(scenario));
    }

    /// Drops queued scenarios, the alternate and chaos of `key_name`.
    ///
    /// # Panics
    /// If no configured key is named `key_name`.
    pub fn clear_scenarios(&self, key_name: &str) {
        self.server.state().key_named(key_name).scenarios.clear();
    }

    /// Sets the fill of `key_name`'s subscription `window` to `fraction` (0–1, clamped) of
    /// its capacity, e.g. to put an account near its limit. The window keeps its reset
    /// time; at 1.0 the window refuses requests for the models it covers.
    ///
    /// # Panics
    /// If no configured key is named `key_name`, it is not an OAuth key, or `window` is not
    /// configured for it.
    pub fn set_window_utilization(&self, key_name: &str, window: Window, fraction: f64) {
        let state = self.server.state();
        let key = state.key_named(key_name);
        let windows = key.subscription.as_ref().unwrap_or_else(|| {
            panic!("keyloop-mock: key {key_name:?} is not an OAuth key: it has no windows")
        });
        if windows.set_utilization(window, fraction).is_err() {
            panic!(
                "keyloop-mock: key {key_name:?} has no {} window configured",
                window.as_str()
            );
        }
    }

    /// `POST /v1/oauth/token` calls that presented a refresh token of `key_name`'s family
    /// (used, reused or revoked ones too, and calls answered 503), counted on arrival.
    pub fn token_calls(&self, key_name: &str) -> usize {
        let state = self.server.state();
        state
            .keys
            .by_name(key_name)
            .map_or(0, |key| key.tally.token_calls())
    }

    /// Resolves once `token_calls(key_name) >= n`.
    ///
    /// # Panics
    /// If no configured key is named `key_name`.
    pub async fn wait_for_token_calls(&self, key_name: &str, n: usize) {
        let state = self.server.state();
        state
            .key_named(key_name)
            .tally
            .wait_for_token_calls(n)
            .await;
    }

    /// While `down`, the token endpoint answers 503 `temporarily_unavailable` and changes
    /// nothing.
    pub fn set_token_endpoint_down(&self, down: bool) {
        self.server.state().tokens.set_down(down);
    }

    /// The token endpoint waits `delay` before answering (after counting the call).
    pub fn set_token_endpoint_delay(&self, delay: Duration) {
        self.server.state().tokens.set_delay(delay);
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

    /// Forgets recorded calls, counts (token-endpoint calls included) and per-status
    /// statistics.
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
