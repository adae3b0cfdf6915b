//! Configuration: the TOML file, then `KEYLOOP_SECTION__FIELD` environment overrides, then
//! validation into typed values. Every error names the offending field and why.

mod raw;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::accounting::PriceTable;
use crate::accounting::recorder;
use crate::pool::{self, Caps};
use crate::types::{EpochMs, KeyKind, Secret};
pub use raw::RawConfig;

/// A shorter admin token is too easy to guess.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// The validated configuration. Rooms read their own section.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub data_dir: PathBuf,
    pub master_key_file: Option<PathBuf>,
    /// From `KEYLOOP_MASTER_KEY`; wins over the file.
    pub master_key: Option<Secret<String>>,
    pub require_client_key: bool,
    pub upstream: UpstreamConfig,
    pub pool: pool::Config,
    pub session_header: String,
    pub log: LogConfig,
    pub admin_listen: SocketAddr,
    /// The configured admin token; None: the stored (or a generated) one.
    pub admin_token: Option<Secret<String>>,
    pub ledger: LedgerConfig,
    pub gen_ai_metrics: bool,
    pub prices: PriceTable,
    pub keys: Vec<KeyConfig>,
}

#[derive(Debug, Clone)]
pub struct LedgerConfig {
    pub writer: recorder::Config,
    pub raw_retention: Duration,
    pub minute_retention: Duration,
    pub hour_retention: Duration,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub body_limit: usize,
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub base_url: String,
    pub connect_timeout: Duration,
    pub stream_idle_timeout: Duration,
    /// Zero: streams commit at once. Otherwise how long a stream is held for its first
    /// content event before commit.
    pub first_event_hold: Duration,
    pub max_attempts: u32,
    pub response_limit: usize,
    pub retry_budget_ratio: f64,
    pub retry_budget_min_retries: u32,
    pub probe_model: String,
    pub oauth_token_url: String,
    pub oauth_client_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

/// An upstream credential declared in the config file.
#[derive(Debug, Clone)]
pub struct KeyConfig {
    pub name: String,
    pub secret: Secret<String>,
    pub kind: KeyKind,
    pub priority: u32,
    pub weight: u32,
    pub max_concurrent: Option<u32>,
    pub group: Option<String>,
    pub enabled: bool,
    pub caps: Caps,
    pub credits_expire_at: Option<EpochMs>,
    pub oauth: Option<OAuthGrant>,
}

/// What keeps an OAuth credential's access token fresh.
#[derive(Clone, Debug)]
pub struct OAuthGrant {
    pub refresh_token: Secret<String>,
    /// When the access token expires; None when unknown (it is refreshed on its first 401).
    pub expires_at: Option<EpochMs>,
}

/// A date (`2027-01-31`, midnight UTC) or an RFC 3339 time, as epoch milliseconds.
pub fn moment(value: &str) -> Option<EpochMs> {
    let value = value.trim();
    if let Ok(t) = value.parse::<jiff::Timestamp>() {
        return Some(t.as_millisecond());
    }
    let date: jiff::civil::Date = value.parse().ok()?;
    date.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_millisecond())
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Syntax { origin: String, message: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// Names its own field (`pricing.models."claude-x".input: …`).
    #[error(transparent)]
    Pricing(#[from] crate::accounting::pricing::Error),
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// Where environment values come from; tests pass a map instead of the process environment.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
    fn vars(&self) -> Vec<(String, String)>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn vars(&self) -> Vec<(String, String)> {
        std::env::vars().collect()
    }
}

impl Env for Vec<(String, String)> {
    fn var(&self, name: &str) -> Option<String> {
        self.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn vars(&self) -> Vec<(String, String)> {
        self.clone()
    }
}

/// Environment variables that are not `SECTION__FIELD` shaped but read elsewhere.
const RESERVED_ENV: &[&str] = &["KEYLOOP_MASTER_KEY", "KEYLOOP_REQUIRE_SERVICES"];

impl Config {
    /// Reads the file (if any), applies environment overrides and validates.
    pub fn load(path: Option<&Path>, env: &dyn Env) -> Result<Config, Error> {
        let mut doc = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
                    path: path.to_owned(),
                    source,
                })?;
                text.parse::<toml::Table>().map_err(|e| Error::Syntax {
                    origin: path.display().to_string(),
                    message: e.to_string(),
                })?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut doc, env)?;
        let raw: RawConfig =
            serde_path_to_error::deserialize(toml::Value::Table(doc)).map_err(|e| {
                let field = e.path().to_string();
                invalid(field, e.into_inner().to_string())
            })?;
        Config::from_raw(raw, env)
    }

    pub fn from_raw(raw: RawConfig, env: &dyn Env) -> Result<Config, Error> {
        let server = ServerConfig {
            listen: raw
                .server
                .listen
                .parse()
                .map_err(|e| invalid("server.listen", format!("{e}: {:?}", raw.server.listen)))?,
            body_limit: positive("server.body-limit-bytes", raw.server.body_limit_bytes)? as usize,
            request_timeout: timeout(
                "server.request-timeout-secs",
                raw.server.request_timeout_secs,
                DAY_SECS,
            )?,
            shutdown_grace: Duration::from_secs(at_most(
                "server.shutdown-grace-secs",
                raw.server.shutdown_grace_secs,
                HOUR_SECS,
            )?),
        };
        let base_url = raw.upstream.base_url.trim_end_matches('/').to_owned();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(invalid(
                "upstream.base-url",
                format!("must start with http:// or https://, got {base_url:?}"),
            ));
        }
        let parsed = base_url.parse::<http::Uri>().ok();
        if parsed
            .as_ref()
            .is_none_or(|uri| uri.host().is_none_or(str::is_empty))
        {
            return Err(invalid(
                "upstream.base-url",
                format!("is not a URL with a host: {base_url:?}"),
            ));
        }
        if parsed.is_some_and(|uri| uri.query().is_some()) {
            return Err(invalid(
                "upstream.base-url",
                "must not carry a query (keyloop appends the client's path and query)",
            ));
        }
        if base_url.ends_with("/v1") {
            return Err(invalid(
                "upstream.base-url",
                "give the base URL without /v1 (keyloop appends the client's path)",
            ));
        }
        if !(0.0..=10.0).contains(&raw.upstream.retry_budget_ratio) {
            return Err(invalid(
                "upstream.retry-budget-ratio",
                "must be between 0 and 10",
            ));
        }
        let upstream = UpstreamConfig {
            base_url,
            connect_timeout: timeout(
                "upstream.connect-timeout-secs",
                raw.upstream.connect_timeout_secs,
                HOUR_SECS,
            )?,
            stream_idle_timeout: timeout(
                "upstream.stream-idle-timeout-secs",
                raw.upstream.stream_idle_timeout_secs,
                DAY_SECS,
            )?,
            first_event_hold: Duration::from_millis(at_most(
                "upstream.first-event-hold-ms",
                raw.upstream.first_event_hold_ms,
                HOUR_SECS * 1000,
            )?),
            max_attempts: positive("upstream.max-attempts", raw.upstream.max_attempts.into())?
                as u32,
            response_limit: positive(
                "upstream.response-limit-bytes",
                raw.upstream.response_limit_bytes,
            )? as usize,
            retry_budget_ratio: raw.upstream.retry_budget_ratio,
            retry_budget_min_retries: raw.upstream.retry_budget_min_retries,
            probe_model: raw.upstream.probe_model,
            oauth_token_url: raw.upstream.oauth_token_url,
            oauth_client_id: raw.upstream.oauth_client_id,
        };
        let pool = pool_config(&raw.pool)?;
        let log = LogConfig {
            format: match raw.log.format.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    return Err(invalid(
                        "log.format",
                        format!("expected \"text\" or \"json\", got {other:?}"),
                    ));
                }
            },
            level: raw.log.level,
        };
        let mut keys = Vec::with_capacity(raw.keys.len());
        for (i, key) in raw.keys.into_iter().enumerate() {
            let field = format!("keys[{i}]");
            if key.name.trim().is_empty() {
                return Err(invalid(format!("{field}.name"), "must not be empty"));
            }
            if keys.iter().any(|k: &KeyConfig| k.name == key.name) {
                return Err(invalid(
                    format!("{field}.name"),
                    format!("duplicate key name {:?}", key.name),
                ));
            }
            let secret = resolve_secret(&key.secret, env)
                .map_err(|m| invalid(format!("{field}.secret"), m))?;
            let kind = match key.kind.as_deref() {
                None => KeyKind::detect(&secret),
                Some(s) => KeyKind::parse(s).ok_or_else(|| {
                    invalid(
                        format!("{field}.kind"),
                        format!("expected \"api-key\" or \"oauth\", got {s:?}"),
                    )
                })?,
            };
            if key.weight == 0 {
                return Err(invalid(format!("{field}.weight"), "must be at least 1"));
            }
            if key.max_concurrent == Some(0) {
                return Err(invalid(
                    format!("{field}.max-concurrent"),
                    "must be at least 1 (leave it out for no cap)",
                ));
            }
            if key.rps == Some(0) || key.daily_requests == Some(0) || key.daily_tokens == Some(0) {
                return Err(invalid(
                    format!("{field}.rps / daily-requests / daily-tokens"),
                    "must be at least 1 (leave it out for no cap)",
                ));
            }
            let credits_expire_at = key
                .credits_expire
                .as_deref()
                .map(|v| {
                    moment(v).ok_or_else(|| {
                        invalid(
                            format!("{field}.credits-expire"),
                            format!("expected a date (2027-01-31) or an RFC 3339 time, got {v:?}"),
                        )
                    })
                })
                .transpose()?;
            let oauth = match key.refresh_token.as_deref() {
                None => None,
                Some(reference) => {
                    let refresh_token = resolve_secret(reference, env)
                        .map_err(|m| invalid(format!("{field}.refresh-token"), m))?;
                    let expires_at = key
                        .token_expires
                        .as_deref()
                        .map(|v| {
                            moment(v).ok_or_else(|| {
                                invalid(
                                    format!("{field}.token-expires"),
                                    format!("expected an RFC 3339 time, got {v:?}"),
                                )
                            })
                        })
                        .transpose()?;
                    Some(OAuthGrant {
                        refresh_token: Secret::new(refresh_token),
                        expires_at,
                    })
                }
            };
            keys.push(KeyConfig {
                name: key.name,
                secret: Secret::new(secret),
                kind,
                priority: key.priority,
                weight: key.weight,
                max_concurrent: key.max_concurrent,
                group: key.group,
                enabled: key.enabled,
                caps: Caps {
                    rps: key.rps,
                    daily_requests: key.daily_requests,
                    daily_tokens: key.daily_tokens,
                },
                credits_expire_at,
                oauth,
            });
        }
        let admin_listen = raw
            .admin
            .listen
            .parse()
            .map_err(|e| invalid("admin.listen", format!("{e}: {:?}", raw.admin.listen)))?;
        let admin_token = match raw.admin.token {
            Some(token) if token.len() < MIN_ADMIN_TOKEN_LEN => {
                return Err(invalid(
                    "admin.token",
                    format!("must be at least {MIN_ADMIN_TOKEN_LEN} characters"),
                ));
            }
            token => token.map(Secret::new),
        };
        let days = |field: &str, d: u64| secs(field, d.saturating_mul(86_400));
        let ledger = LedgerConfig {
            writer: recorder::Config {
                queue: positive("ledger.queue", raw.ledger.queue as u64)? as usize,
                max_batch: positive("ledger.max-batch", raw.ledger.max_batch as u64)? as usize,
                max_delay: Duration::from_millis(positive(
                    "ledger.max-delay-ms",
                    raw.ledger.max_delay_ms,
                )?),
            },
            raw_retention: days("ledger.raw-retention-days", raw.ledger.raw_retention_days)?,
            minute_retention: days(
                "ledger.minute-retention-days",
                raw.ledger.minute_retention_days,
            )?,
            hour_retention: days("ledger.hour-retention-days", raw.ledger.hour_retention_days)?,
        };
        let prices = PriceTable::shipped().with_overrides(&raw.pricing)?;
        Ok(Config {
            admin_listen,
            admin_token,
            ledger,
            gen_ai_metrics: raw.metrics.gen_ai,
            prices,
            server,
            data_dir: PathBuf::from(raw.storage.data_dir),
            master_key_file: raw.security.master_key_file.map(PathBuf::from),
            master_key: env.var("KEYLOOP_MASTER_KEY").map(Secret::new),
            require_client_key: raw.security.require_client_key,
            upstream,
            pool,
            session_header: raw.pool.session_header.to_ascii_lowercase(),
            log,
            keys,
        })
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("keyloop.db")
    }
}

fn pool_config(raw: &raw::RawPool) -> Result<pool::Config, Error> {
    let strategy = pool::Strategy::parse(&raw.strategy).ok_or_else(|| {
        invalid(
            "pool.strategy",
            format!(
                "expected \"round-robin\", \"headroom\" or \"priority\", got {:?}",
                raw.strategy
            ),
        )
    })?;
    if !(0.0..0.5).contains(&raw.jitter) {
        return Err(invalid("pool.jitter", "must be in [0, 0.5)"));
    }
    if http::HeaderName::from_bytes(raw.session_header.as_bytes()).is_err() {
        return Err(invalid(
            "pool.session-header",
            format!("not a valid header name: {:?}", raw.session_header),
        ));
    }
    Ok(pool::Config {
        strategy,
        sticky: raw.sticky,
        sticky_ttl_ms: ms(raw.sticky_ttl_secs),
        rate_limit_ladder_ms: ladder("pool.rate-limit-ladder-secs", &raw.rate_limit_ladder_secs)?,
        billing_ladder_ms: ladder("pool.billing-ladder-secs", &raw.billing_ladder_secs)?,
        server_error_strikes: raw.server_error_strikes.max(1),
        server_error_ladder_ms: ladder(
            "pool.server-error-ladder-secs",
            &raw.server_error_ladder_secs,
        )?,
        disabled_probe_every_ms: ms(raw.disabled_probe_every_secs.max(1)),
        jitter: raw.jitter,
        ..pool::Config::default()
    })
}

fn ladder(field: &str, secs: &[u64]) -> Result<Vec<i64>, Error> {
    if secs.is_empty() {
        return Err(invalid(field, "needs at least one rung"));
    }
    if secs.contains(&0) {
        return Err(invalid(field, "rungs must be at least 1 second"));
    }
    Ok(secs.iter().map(|s| ms(*s)).collect())
}

fn ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

fn positive(field: &str, value: u64) -> Result<u64, Error> {
    if value == 0 {
        Err(invalid(field, "must be greater than 0"))
    } else {
        Ok(value)
    }
}

const HOUR_SECS: u64 = 3_600;
const DAY_SECS: u64 = 86_400;

/// At most `max`: larger values are mistakes (and a deadline of `now + u64::MAX` seconds
/// cannot be represented at all).
fn at_most(field: &str, value: u64, max: u64) -> Result<u64, Error> {
    if value > max {
        Err(invalid(
            field,
            format!("must be at most {max}, got {value}"),
        ))
    } else {
        Ok(value)
    }
}

/// A timeout: more than 0 and at most `max` seconds.
fn timeout(field: &str, value: u64, max: u64) -> Result<Duration, Error> {
    secs(field, at_most(field, value, max)?)
}

fn secs(field: &str, value: u64) -> Result<Duration, Error> {
    positive(field, value).map(Duration::from_secs)
}

/// `env:NAME` reads the variable; anything else is the secret itself.
fn resolve_secret(spec: &str, env: &dyn Env) -> Result<String, String> {
    let value = match spec.strip_prefix("env:") {
        Some(var) => env
            .var(var)
            .ok_or_else(|| format!("environment variable {var} is not set"))?,
        None => spec.to_owned(),
    };
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Err("is empty".into());
    }
    Ok(value)
}

/// `KEYLOOP_SERVER__LISTEN=0.0.0.0:8080` sets `server.listen`. Values are read as TOML when they
/// parse as such (numbers, booleans, arrays) and as strings otherwise.
fn apply_env(doc: &mut toml::Table, env: &dyn Env) -> Result<(), Error> {
    let mut vars = env.vars();
    vars.sort();
    for (name, value) in vars {
        let Some(path) = name.strip_prefix("KEYLOOP_") else {
            continue;
        };
        if RESERVED_ENV.contains(&name.as_str()) {
            continue;
        }
        let Some((section, field)) = path.split_once("__") else {
            continue;
        };
        let section = section.to_ascii_lowercase().replace('_', "-");
        let field = field.to_ascii_lowercase().replace('_', "-");
        let table = doc
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(table) = table else {
            return Err(invalid(
                format!("{section} (from {name})"),
                "is not a section",
            ));
        };
        table.insert(field, env_value(&value));
    }
    Ok(())
}

fn env_value(value: &str) -> toml::Value {
    format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()))
}
