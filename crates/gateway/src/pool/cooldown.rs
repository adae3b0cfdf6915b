//! Backoff ladders: how long a key sits out after its n-th strike, with jitter so that keys
//! struck together do not all come back in the same millisecond.

use rand::Rng;

/// Longest pause after a probe that failed for a reason other than a rate limit, a billing cap
/// or a rejected credential (a 5xx, a timeout): such a failure says little about the key, so it
/// is asked again soon.
pub(super) const PROBE_RETRY_MAX_MS: i64 = 30_000;

/// The pause for the strike that is about to be counted: `ladder[min(strikes, len - 1)]`, where
/// `strikes` is the number of strikes counted before this one. The ladder is never empty
/// (`Config::normalized` guarantees it).
pub(super) fn next_rung(ladder: &[i64], strikes: u32) -> i64 {
    rung_at(ladder, strikes)
}

/// The rung the last strike landed on (the first rung when nothing has been counted).
pub(super) fn current_rung(ladder: &[i64], strikes: u32) -> i64 {
    rung_at(ladder, strikes.saturating_sub(1))
}

fn rung_at(ladder: &[i64], index: u32) -> i64 {
    let last = ladder.len().saturating_sub(1);
    let index = usize::try_from(index).unwrap_or(usize::MAX).min(last);
    ladder.get(index).copied().unwrap_or(0)
}

/// Spreads `ms` uniformly over `ms × (1 ± fraction)`. A fraction of 0 returns `ms` unchanged
/// and draws no random number.
pub(super) fn jittered(ms: i64, fraction: f64) -> i64 {
    if fraction <= 0.0 || ms <= 0 {
        return ms;
    }
    let factor = 1.0 + rand::rng().random_range(-fraction..=fraction);
    // A ladder rung is at most days long, far inside f64's exact integer range.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let spread = (ms as f64 * factor).round() as i64;
    spread.max(0)
}

/// A duration for a human: "17s", "5m", "2h", "1h30m".
pub(super) fn human(ms: i64) -> String {
    let secs = (ms.max(0) + 999) / 1000;
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 && s % 60 == 0 => format!("{}m", s / 60),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}
