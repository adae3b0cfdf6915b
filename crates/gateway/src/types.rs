//! The small vocabulary every room shares: ids, secrets, time, and the classified outcome of an
//! attempt. Nothing here depends on another module of the crate, so any room may import it.

use std::fmt;
use std::sync::Arc;

/// Epoch milliseconds. Storage and the key state machine speak wall-clock time in this unit so a
/// cooldown survives a restart and tests can pass any instant they like.
pub type EpochMs = i64;

/// The wall clock, read in one place so logic can take time as an argument instead.
pub fn now_ms() -> EpochMs {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// Identifies one upstream credential ("key") for its whole life, independent of its secret.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(Arc<str>);

impl KeyId {
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

/// A value that must never reach a log line, an error message or a serialized document.
/// It deliberately implements neither `Display` nor `Serialize`; `Debug` prints a mask.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The only way to the value: call sites that reveal a secret are easy to grep for.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

/// How an upstream credential authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// Sent as `x-api-key`.
    ApiKey,
    /// Sent as `Authorization: Bearer` with the OAuth beta flag.
    OAuth,
}

impl KeyKind {
    /// Anthropic OAuth access tokens start `sk-ant-oat`; everything else is treated as an API key.
    pub fn detect(secret: &str) -> Self {
        if secret.starts_with("sk-ant-oat") {
            Self::OAuth
        } else {
            Self::ApiKey
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api-key",
            Self::OAuth => "oauth",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "api-key" | "api_key" | "apikey" => Some(Self::ApiKey),
            "oauth" => Some(Self::OAuth),
            _ => None,
        }
    }
}

/// Shows enough of a secret to tell keys apart and nothing that helps use it:
/// the first 10 characters (the vendor prefix) and the last 4.
pub fn mask_secret(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 16 {
        return "*****".to_owned();
    }
    let head: String = chars[..10].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// The classified result of one attempt. Computed once (in `relay::outcome`); the pool, the logs
/// and the client-facing status all read this instead of looking at HTTP again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutcomeClass {
    Success,
    /// 429: this credential is over a limit; cool it down.
    RateLimited,
    /// 529: the provider as a whole is overloaded; not this credential's fault.
    Overloaded,
    /// 5xx other than 529 (and 408/409): transient upstream trouble.
    ServerError,
    /// No answer within the deadline, or a stream went silent.
    Timeout,
    /// The connection could not be made or broke before an answer.
    ConnectError,
    /// 401/403: the credential is revoked, expired or lacks access.
    InvalidCredential,
    /// Credit balance exhausted or a spend cap reached.
    BillingExhausted,
    /// The client's own request was bad (400, 404, 413, …): returned as-is, no penalty.
    ClientError,
}

impl OutcomeClass {
    pub const ALL: [OutcomeClass; 9] = [
        Self::Success,
        Self::RateLimited,
        Self::Overloaded,
        Self::ServerError,
        Self::Timeout,
        Self::ConnectError,
        Self::InvalidCredential,
        Self::BillingExhausted,
        Self::ClientError,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Worth trying another credential before the client sees anything?
    pub fn is_retryable(self) -> bool {
        !matches!(self, Self::Success | Self::ClientError)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::RateLimited => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::ServerError => "server_error",
            Self::Timeout => "timeout",
            Self::ConnectError => "connect_error",
            Self::InvalidCredential => "invalid_credential",
            Self::BillingExhausted => "billing_exhausted",
            Self::ClientError => "client_error",
        }
    }
}

/// One dimension of the provider's advertised rate limit, as read from response headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitWindow {
    pub limit: u64,
    pub remaining: u64,
    /// When the window is full again, already corrected for clock skew against `Date`.
    pub reset_ms: Option<EpochMs>,
}

/// The provider's view of a credential's headroom after an answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimitSnapshot {
    pub requests: Option<LimitWindow>,
    pub tokens: Option<LimitWindow>,
    pub input_tokens: Option<LimitWindow>,
    pub output_tokens: Option<LimitWindow>,
    pub taken_ms: EpochMs,
}

/// Everything the pool needs to know about how an attempt went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub class: OutcomeClass,
    /// When the provider said this credential may be used again (`retry-after` or a reset
    /// header), already in our clock.
    pub retry_at_ms: Option<EpochMs>,
    pub ratelimit: Option<RateLimitSnapshot>,
}

impl Outcome {
    pub fn of(class: OutcomeClass) -> Self {
        Self {
            class,
            retry_at_ms: None,
            ratelimit: None,
        }
    }
}
