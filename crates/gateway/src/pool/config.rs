//! `pool::Config`: how one pool chooses keys and how long a struck key sits out.

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

/// How `acquire` chooses among eligible keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// A rotating cursor over all keys; the first eligible key wins.
    RoundRobin,
    /// The key with the most room left: in-flight against its cap, and the provider's last
    /// advertised remaining requests and tokens.
    Headroom,
    /// The best (lowest) priority tier with an eligible key; smooth weighted round-robin inside.
    Priority,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "round-robin" | "round_robin" | "roundrobin" => Some(Self::RoundRobin),
            "headroom" => Some(Self::Headroom),
            "priority" => Some(Self::Priority),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoundRobin => "round-robin",
            Self::Headroom => "headroom",
            Self::Priority => "priority",
        }
    }
}

/// Selection and backoff settings of one pool. Durations are milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// How a key is chosen among the eligible ones.
    pub strategy: Strategy,
    /// Keep a conversation (`Pick::session`) on the same key while that key can serve it, so
    /// the provider's prompt cache keeps hitting.
    pub sticky: bool,
    /// A session pin unused for this long is forgotten.
    pub sticky_ttl_ms: i64,
    /// Cooldown after the 1st, 2nd, … consecutive 429 without a `retry-after`; the last rung
    /// repeats.
    pub rate_limit_ladder_ms: Vec<i64>,
    /// Cooldown after the 1st, 2nd, … consecutive billing/credit refusal; the last rung repeats.
    pub billing_ladder_ms: Vec<i64>,
    /// This many server errors, timeouts or connect errors in a row cool a key down briefly.
    pub server_error_strikes: u32,
    /// Cooldown after the 1st, 2nd, … run of server errors; the last rung repeats.
    pub server_error_ladder_ms: Vec<i64>,
    /// How often a key disabled for an invalid credential is probed.
    pub disabled_probe_every_ms: i64,
    /// Ladder cooldowns are spread by ± this fraction (0.1 = ±10 %). A provider's
    /// `retry-after` is never jittered.
    pub jitter: f64,
    /// Slow start (in-flight cap 1, 2, 4, … after a key returns) ends when the cap reaches this
    /// or the key's own `max_concurrent`. 0 or 1 switches slow start off.
    pub ramp_cap: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            strategy: Strategy::RoundRobin,
            sticky: false,
            sticky_ttl_ms: HOUR_MS,
            rate_limit_ladder_ms: vec![MINUTE_MS, 5 * MINUTE_MS, 25 * MINUTE_MS, HOUR_MS],
            billing_ladder_ms: vec![5 * HOUR_MS, 10 * HOUR_MS, 20 * HOUR_MS, 24 * HOUR_MS],
            server_error_strikes: 3,
            server_error_ladder_ms: vec![30_000, MINUTE_MS, 2 * MINUTE_MS, 5 * MINUTE_MS],
            disabled_probe_every_ms: 5 * MINUTE_MS,
            jitter: 0.1,
            ramp_cap: 64,
        }
    }
}

impl Config {
    /// Makes every value usable without further checks: an empty ladder takes the default
    /// one, negative durations become 0, the strike threshold is at least 1 and jitter lies in
    /// [0, 0.9]. (`config` validates the file and reports mistakes; this only keeps the pool
    /// total.)
    pub(super) fn normalized(mut self) -> Self {
        let defaults = Self::default();
        self.rate_limit_ladder_ms =
            ladder(self.rate_limit_ladder_ms, defaults.rate_limit_ladder_ms);
        self.billing_ladder_ms = ladder(self.billing_ladder_ms, defaults.billing_ladder_ms);
        self.server_error_ladder_ms =
            ladder(self.server_error_ladder_ms, defaults.server_error_ladder_ms);
        self.server_error_strikes = self.server_error_strikes.max(1);
        self.sticky_ttl_ms = self.sticky_ttl_ms.max(0);
        self.disabled_probe_every_ms = self.disabled_probe_every_ms.max(0);
        self.jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 0.9)
        } else {
            0.0
        };
        self
    }
}

/// A ladder with every rung usable: empty takes `fallback`, negative rungs become 0.
fn ladder(mut rungs: Vec<i64>, fallback: Vec<i64>) -> Vec<i64> {
    if rungs.is_empty() {
        return fallback;
    }
    for rung in &mut rungs {
        *rung = (*rung).max(0);
    }
    rungs
}
