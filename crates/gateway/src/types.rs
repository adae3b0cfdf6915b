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

/// Credential prefixes that say what kind of secret it is, longest first. They are public
/// (every key of a kind starts with them), so a mask may show them.
const KIND_PREFIXES: [&str; 8] = [
    "sk-ant-admin01-",
    "sk-ant-api03-",
    "sk-ant-oat01-",
    "sk-ant-ort01-",
    "sk-proj-",
    "sk-ant-",
    "AIza",
    "sk-",
];

/// Shows enough of a secret to tell keys apart and nothing that helps use it: at most its kind
/// prefix and its last 4 characters. Short secrets show nothing.
pub fn mask_secret(secret: &str) -> String {
    let chars = secret.chars().count();
    if chars <= 16 {
        return "*****".to_owned();
    }
    let prefix = KIND_PREFIXES
        .iter()
        .find(|p| secret.starts_with(*p))
        .copied()
        .unwrap_or("");
    let tail: String = secret.chars().skip(chars - 4).collect();
    format!("{prefix}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::mask_secret;

    #[test]
    fn masks_show_the_kind_prefix_and_four_characters_at_most() {
        assert_eq!(
            mask_secret("sk-ant-api03-abcdefghijklmnopqrstuvwxyz-0123"),
            "sk-ant-api03-…0123"
        );
        assert_eq!(
            mask_secret("sk-ant-oat01-abcdefghijklmnop-G7h8"),
            "sk-ant-oat01-…G7h8"
        );
        assert_eq!(mask_secret("AIzaSyA-abcdefghijklmnopqrstuv"), "AIza…stuv");
        assert_eq!(mask_secret("0123456789abcdef0123456789"), "…6789");
        assert_eq!(mask_secret("sk-short-key"), "*****");
    }
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
    /// 403 `permission_error`: this credential may not use what the request asked for (a
    /// model, a beta). Held out for that model only; other credentials may serve it.
    ModelDenied,
    /// The client's own request was bad (400, 404, 413, …): returned as-is, no penalty.
    ClientError,
    /// 401 `token_expired`: an OAuth access token ran out. Refreshed, never disabled.
    TokenExpired,
}

impl OutcomeClass {
    pub const ALL: [OutcomeClass; 11] = [
        Self::Success,
        Self::RateLimited,
        Self::Overloaded,
        Self::ServerError,
        Self::Timeout,
        Self::ConnectError,
        Self::InvalidCredential,
        Self::BillingExhausted,
        Self::ModelDenied,
        Self::ClientError,
        Self::TokenExpired,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Worth trying another credential before the client sees anything?
    pub fn is_retryable(self) -> bool {
        !matches!(self, Self::Success | Self::ClientError)
    }

    /// A signal that may be the provider's as a whole (overload, 5xx, timeouts, broken
    /// connections), as opposed to one only this credential gets (its own 429, a rejected
    /// credential, billing, a model it may not use). Retries after these are what a retry
    /// budget must bound; moving away from a credential's own failure adds load to nothing
    /// that is failing.
    pub fn is_provider_wide(self) -> bool {
        matches!(
            self,
            Self::Overloaded | Self::ServerError | Self::Timeout | Self::ConnectError
        )
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
            Self::ModelDenied => "model_denied",
            Self::ClientError => "client_error",
            Self::TokenExpired => "token_expired",
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
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RateLimitSnapshot {
    pub requests: Option<LimitWindow>,
    pub tokens: Option<LimitWindow>,
    pub input_tokens: Option<LimitWindow>,
    pub output_tokens: Option<LimitWindow>,
    /// A subscription (OAuth) account's windows, from the `anthropic-ratelimit-unified-*`
    /// family, which such accounts send instead of the per-minute limits above.
    pub subscription: Option<Subscription>,
    pub taken_ms: EpochMs,
}

/// Whether a subscription window (or the account as a whole) lets requests through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowStatus {
    Allowed,
    /// Allowed, but past a warning threshold.
    Warning,
    Rejected,
}

impl WindowStatus {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allowed" => Some(Self::Allowed),
            "allowed_warning" => Some(Self::Warning),
            "rejected" => Some(Self::Rejected),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Warning => "allowed_warning",
            Self::Rejected => "rejected",
        }
    }
}

/// A family of models that a subscription window may be limited to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelFamily {
    Opus,
    Sonnet,
}

impl ModelFamily {
    /// Whether `model` (an Anthropic model id) belongs to the family.
    pub fn covers(self, model: &str) -> bool {
        match self {
            Self::Opus => model.contains("opus"),
            Self::Sonnet => model.contains("sonnet"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opus => "opus",
            Self::Sonnet => "sonnet",
        }
    }
}

/// The usage windows of a subscription account, in the provider's header tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WindowName {
    FiveHour,
    SevenDay,
    SevenDayOpus,
    SevenDaySonnet,
    /// The seven-day window of included usage when overage is on.
    SevenDayOverageIncluded,
}

impl WindowName {
    pub const ALL: [WindowName; 5] = [
        Self::FiveHour,
        Self::SevenDay,
        Self::SevenDayOpus,
        Self::SevenDaySonnet,
        Self::SevenDayOverageIncluded,
    ];

    /// The token in header names: `anthropic-ratelimit-unified-{token}-utilization`.
    pub fn token(self) -> &'static str {
        match self {
            Self::FiveHour => "5h",
            Self::SevenDay => "7d",
            Self::SevenDayOpus => "7d_opus",
            Self::SevenDaySonnet => "7d_sonnet",
            Self::SevenDayOverageIncluded => "7d_oi",
        }
    }

    /// The name in `representative-claim`.
    pub fn claim(self) -> &'static str {
        match self {
            Self::FiveHour => "five_hour",
            Self::SevenDay => "seven_day",
            Self::SevenDayOpus => "seven_day_opus",
            Self::SevenDaySonnet => "seven_day_sonnet",
            Self::SevenDayOverageIncluded => "seven_day_overage_included",
        }
    }

    pub fn from_token(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.token() == s)
    }

    pub fn from_claim(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.claim() == s)
    }

    /// The models the window limits; None for an account-wide window.
    pub fn family(self) -> Option<ModelFamily> {
        match self {
            Self::SevenDayOpus => Some(ModelFamily::Opus),
            Self::SevenDaySonnet => Some(ModelFamily::Sonnet),
            _ => None,
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// One subscription window as the last answer reported it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UsageWindow {
    pub status: Option<WindowStatus>,
    /// When the window resets, on our clock.
    pub reset_ms: Option<EpochMs>,
    /// Share used, 0.0–1.0.
    pub utilization: Option<f64>,
    /// The warning threshold passed, if any.
    pub surpassed_threshold: Option<f64>,
}

/// Why an account's overage is off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverageOff {
    OutOfCredits,
    OrgLevel,
    Other,
}

/// Overage (usage billed beyond the included windows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overage {
    pub status: Option<WindowStatus>,
    pub reset_ms: Option<EpochMs>,
    pub in_use: bool,
    pub disabled: Option<OverageOff>,
}

/// A subscription account's limits after an answer.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Subscription {
    /// The account as a whole.
    pub status: Option<WindowStatus>,
    pub reset_ms: Option<EpochMs>,
    /// The window that binds (`representative-claim`).
    pub binding: Option<WindowName>,
    windows: [Option<UsageWindow>; 5],
    pub overage: Option<Overage>,
}

impl Subscription {
    pub fn window(&self, name: WindowName) -> Option<&UsageWindow> {
        self.windows[name.index()].as_ref()
    }

    pub fn set_window(&mut self, name: WindowName, window: UsageWindow) {
        self.windows[name.index()] = Some(window);
    }

    /// Every reported window, in [`WindowName::ALL`] order.
    pub fn windows(&self) -> impl Iterator<Item = (WindowName, &UsageWindow)> {
        WindowName::ALL
            .into_iter()
            .filter_map(|name| self.window(name).map(|w| (name, w)))
    }
}

/// Which requests an outcome's verdict on the credential covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Everything the credential serves.
    #[default]
    Credential,
    /// Only the model the request named (a 403 for that model).
    RequestModel,
    /// Only a family of models (a subscription window limited to them).
    Family(ModelFamily),
}

/// Everything the pool needs to know about how an attempt went.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    pub class: OutcomeClass,
    /// When the provider said this credential may be used again (`retry-after` or a reset
    /// header), already in our clock and bounded (see `providers::ratelimit_headers`).
    pub retry_at_ms: Option<EpochMs>,
    pub ratelimit: Option<RateLimitSnapshot>,
    /// What the verdict covers.
    pub scope: Scope,
}

impl Outcome {
    pub fn of(class: OutcomeClass) -> Self {
        Self {
            class,
            retry_at_ms: None,
            ratelimit: None,
            scope: Scope::Credential,
        }
    }
}
