//! The config file exactly as written: serde shapes with their defaults, nothing validated yet.
//! `Config::from_raw` turns this into typed, checked values.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RawConfig {
    pub server: RawServer,
    pub storage: RawStorage,
    pub security: RawSecurity,
    pub upstream: RawUpstream,
    pub pool: RawPool,
    pub log: RawLog,
    pub admin: RawAdmin,
    pub ledger: RawLedger,
    pub metrics: RawMetrics,
    /// Price corrections, extra models, aliases and multipliers over the shipped table.
    pub pricing: crate::accounting::pricing::PricingConfig,
    /// Upstream credentials declared in the file; synced into the store at start-up.
    pub keys: Vec<RawKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RawServer {
    /// Address the client-facing API listens on.
    pub listen: String,
    /// Largest request body accepted, in bytes (Anthropic's own limit is 32 MB).
    pub body_limit_bytes: u64,
    /// How long a whole non-streaming request may take, in seconds.
    pub request_timeout_secs: u64,
    /// How long shutdown waits for in-flight requests, in seconds.
    pub shutdown_grace_secs: u64,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            body_limit_bytes: 32 * 1024 * 1024,
            request_timeout_secs: 600,
            shutdown_grace_secs: 30,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RawStorage {
    /// Directory for the SQLite database and the generated master key.
    pub data_dir: String,
}

impl Default for RawStorage {
    fn default() -> Self {
        Self {
            data_dir: "./data".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RawSecurity {
    /// File holding the 32-byte master key (base64 or hex). `KEYLOOP_MASTER_KEY` wins over it;
    /// with neither, a key is generated into the data directory on first start.
    pub master_key_file: Option<String>,
    /// Refuse requests that carry no gateway-issued client key.
    pub require_client_key: bool,
}

impl Default for RawSecurity {
    fn default() -> Self {
        Self {
            master_key_file: None,
            require_client_key: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RawUpstream {
    /// Base URL of the Anthropic API (without `/v1`).
    pub base_url: String,
    /// Seconds allowed to open a connection to the upstream.
    pub connect_timeout_secs: u64,
    /// Seconds a stream may stay silent (pings count as life) before it is taken for dead.
    pub stream_idle_timeout_secs: u64,
    /// Milliseconds a stream's status line, `message_start` and `ping` are held back waiting
    /// for its first content event. 0 (the default) commits at once: a failure before content
    /// still fails over unseen, by splicing in another credential's stream, and when every
    /// credential fails the client gets a 200 ending in one `event: error`. Above 0 such a
    /// request gets a real HTTP error status instead, at the cost of delaying every stream's
    /// first byte by the model's time to first token (at most this long; after that the
    /// stream is committed and spliced as with 0).
    pub first_event_hold_ms: u64,
    /// Most attempts for one request that follow provider-wide failures (overload, 5xx,
    /// timeouts, broken streams, while no credential is succeeding). Moving away from a
    /// credential's own failure (its 429, a rejected credential, billing, a failure while its
    /// peers succeed) is not counted: each credential is tried at most once per request.
    pub max_attempts: u32,
    /// Largest non-streaming upstream body read, in bytes.
    pub response_limit_bytes: u64,
    /// Requests retrying after provider-wide failures may be at most this share of the
    /// requests in flight (Envoy's retry budget).
    pub retry_budget_ratio: f64,
    /// Requests that may always be retrying at once, whatever the ratio says.
    #[serde(alias = "retry-budget-floor-per-sec")]
    pub retry_budget_min_retries: u32,
    /// Model named in the `count_tokens` call that probes a cooling or disabled credential.
    pub probe_model: String,
    /// Where OAuth credentials' refresh tokens are traded for new access tokens.
    pub oauth_token_url: String,
    /// The OAuth client the refresh tokens were issued to.
    pub oauth_client_id: String,
}

impl Default for RawUpstream {
    fn default() -> Self {
        Self {
            base_url: "https://api.anthropic.com".into(),
            connect_timeout_secs: 10,
            stream_idle_timeout_secs: 90,
            first_event_hold_ms: 0,
            max_attempts: 3,
            response_limit_bytes: 64 * 1024 * 1024,
            retry_budget_ratio: 0.2,
            retry_budget_min_retries: 3,
            probe_model: "claude-haiku-5-5".into(),
            oauth_token_url: "https://console.anthropic.com/v1/oauth/token".into(),
            // Claude Code's public client, to which subscription logins issue their tokens.
            oauth_client_id: "9d1c250a-e61b-44d9-88ed-5944d1962f5e".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RawPool {
    /// `round-robin`, `headroom` or `priority`.
    pub strategy: String,
    /// Keep a conversation on one credential so the provider's prompt cache keeps hitting.
    pub sticky: bool,
    /// Header whose value names a conversation; `metadata.user_id` and `x-client-id` are the
    /// fall-backs, in that order.
    pub session_header: String,
    /// Seconds an idle sticky pin is remembered.
    pub sticky_ttl_secs: u64,
    /// Cooldown per consecutive 429, in seconds; the last rung repeats.
    pub rate_limit_ladder_secs: Vec<u64>,
    /// Cooldown per consecutive billing failure, in seconds.
    pub billing_ladder_secs: Vec<u64>,
    /// Consecutive 5xx/timeouts before a short cooldown.
    pub server_error_strikes: u32,
    /// Cooldown per run of server errors, in seconds.
    pub server_error_ladder_secs: Vec<u64>,
    /// Seconds between probes of a credential disabled by a 401/403.
    pub disabled_probe_every_secs: u64,
    /// Random spread applied to ladder cooldowns (0.1 = ±10 %).
    pub jitter: f64,
}

impl Default for RawPool {
    fn default() -> Self {
        Self {
            strategy: "round-robin".into(),
            sticky: false,
            session_header: "x-claude-code-session-id".into(),
            sticky_ttl_secs: 3600,
            rate_limit_ladder_secs: vec![60, 300, 1500, 3600],
            billing_ladder_secs: vec![5 * 3600, 10 * 3600, 20 * 3600, 24 * 3600],
            server_error_strikes: 3,
            server_error_ladder_secs: vec![30, 60, 120, 300],
            disabled_probe_every_secs: 300,
            jitter: 0.1,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RawLog {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter such as `info` or `keyloop=debug`; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawKey {
    /// Unique name shown in logs and the status page.
    pub name: String,
    /// `env:VARIABLE` (recommended) or the secret itself.
    pub secret: String,
    /// `api-key` or `oauth`; detected from the secret's form when absent.
    pub kind: Option<String>,
    /// Lower tiers are tried first by the `priority` strategy.
    #[serde(default)]
    pub priority: u32,
    /// Share within a priority tier.
    #[serde(default = "one")]
    pub weight: u32,
    /// Most requests in flight on this credential at once.
    pub max_concurrent: Option<u32>,
    /// Free label, e.g. the organisation the credential bills to. When set it overrides the
    /// organisation the provider reports.
    pub group: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Requests per second this credential may take (burst limit).
    pub rps: Option<u32>,
    /// Requests per UTC day.
    pub daily_requests: Option<u64>,
    /// Tokens (input, cache and output) per UTC day.
    pub daily_tokens: Option<u64>,
    /// When the credential's prepaid credits expire (`2027-01-31` or an RFC 3339 time): among
    /// equally good credentials the one expiring first is used first.
    pub credits_expire: Option<String>,
    /// An OAuth credential's refresh token (`env:VARIABLE` recommended): the access token (the
    /// secret) is then refreshed before it expires and on a `token_expired` answer.
    pub refresh_token: Option<String>,
    /// When the OAuth access token expires (RFC 3339); unknown: refreshed on its first 401.
    pub token_expires: Option<String>,
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RawAdmin {
    /// Address of the operator surface (`/metrics`, the admin API and the panel). Loopback
    /// by default: it is not meant for clients.
    pub listen: String,
    /// The admin token. When unset, one is generated on first start, printed once and kept
    /// only as a digest. Better set through `KEYLOOP_ADMIN__TOKEN` than written in a file.
    pub token: Option<String>,
}

impl Default for RawAdmin {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8081".into(),
            token: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RawLedger {
    /// Usage records waiting for the writer; beyond this they are dropped (and counted)
    /// rather than ever slowing a request.
    pub queue: usize,
    /// Most records committed in one transaction.
    pub max_batch: usize,
    /// Longest a record waits for its batch to fill, in milliseconds.
    pub max_delay_ms: u64,
    /// Days raw usage records (the request log) are kept.
    pub raw_retention_days: u64,
    /// Days per-minute roll-ups are kept.
    pub minute_retention_days: u64,
    /// Days per-hour roll-ups are kept.
    pub hour_retention_days: u64,
}

impl Default for RawLedger {
    fn default() -> Self {
        Self {
            queue: 16_384,
            max_batch: 500,
            max_delay_ms: 200,
            raw_retention_days: 30,
            minute_retention_days: 14,
            hour_retention_days: 400,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RawMetrics {
    /// Also export the OpenTelemetry `gen_ai.*` metrics (semantic conventions still in
    /// development upstream, hence off by default).
    pub gen_ai: bool,
}
