//! Reads the provider's rate-limit headers. Reset times and HTTP dates are measured against the
//! upstream's own `Date` header and moved onto our clock, so a skewed clock on either side does
//! not turn "17 s from now" into "already past" or "an hour away".

use std::str::FromStr;

use http::HeaderMap;

use super::subscription_headers;
use crate::types::{EpochMs, LimitWindow, RateLimitSnapshot};

/// Upstream time → our time: add this offset (ms) to an upstream timestamp.
fn skew(headers: &HeaderMap, now: EpochMs) -> i64 {
    upstream_date(headers).map_or(0, |date| now.saturating_sub(date))
}

fn upstream_date(headers: &HeaderMap) -> Option<EpochMs> {
    let value = headers.get(http::header::DATE)?.to_str().ok()?;
    http_date_ms(value)
}

fn http_date_ms(value: &str) -> Option<EpochMs> {
    let time = httpdate::parse_http_date(value).ok()?;
    let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
}

fn rfc3339_ms(value: &str) -> Option<EpochMs> {
    jiff::Timestamp::from_str(value.trim())
        .ok()
        .map(|t| t.as_millisecond())
}

/// Longest wait a classic (per-minute) limit can legitimately ask for.
pub const CLASSIC_MAX_MS: i64 = 3_600_000;
/// Longest wait a subscription window can legitimately ask for: its longest window.
pub const SUBSCRIPTION_MAX_MS: i64 = 7 * 24 * 3_600_000;
/// Beyond this a time from upstream is garbage (`99999999`, `1e300`, the year 9999), not a
/// long wait: the caller falls back to its own backoff ladder.
const ABSURD_MS: i64 = 30 * 24 * 3_600_000;

/// `at` (our clock) as a wait the pool may honour: None when it is absurd, otherwise at most
/// `max_ms` from now and never in the past.
pub fn bounded(at: EpochMs, now: EpochMs, max_ms: i64) -> Option<EpochMs> {
    let wait = at.saturating_sub(now);
    (wait <= ABSURD_MS).then(|| now.saturating_add(wait.clamp(0, max_ms)))
}

/// Seconds (possibly fractional) as milliseconds, or None when not a finite, non-negative
/// number within the absurd bound.
fn seconds_ms(secs: f64) -> Option<i64> {
    let ms = secs * 1000.0;
    // Finite and below 30 days, so the cast neither saturates nor loses anything that matters.
    #[allow(clippy::cast_possible_truncation)]
    (ms.is_finite() && ms >= 0.0 && ms <= ABSURD_MS as f64).then(|| ms.ceil() as i64)
}

/// One limit's headers as the answer gave them, before the reset is moved onto our clock.
#[derive(Default)]
struct Fields<'h> {
    limit: Option<u64>,
    remaining: Option<u64>,
    reset: Option<&'h str>,
}

impl Fields<'_> {
    fn window(&self, skew: i64, now: EpochMs) -> Option<LimitWindow> {
        let limit = self.limit?;
        Some(LimitWindow {
            limit,
            remaining: self.remaining.unwrap_or(limit),
            reset_ms: self
                .reset
                .and_then(rfc3339_ms)
                .and_then(|t| bounded(t.saturating_add(skew), now, CLASSIC_MAX_MS)),
        })
    }
}

const PREFIX: &str = "anthropic-ratelimit-";
const UNIFIED: &str = "unified-";
/// The limits the provider reports, in the order of [`RateLimitSnapshot`]'s fields.
const LIMITS: [&str; 4] = ["requests", "tokens", "input-tokens", "output-tokens"];

/// The snapshot of every advertised limit, or None when the answer carried no such headers.
/// Every answer is read, so this is one pass over the headers comparing names: looking up the
/// twelve names one by one hashed each of them against the map. Subscription accounts' unified
/// family is read in the same pass.
pub fn snapshot(headers: &HeaderMap, now: EpochMs) -> Option<RateLimitSnapshot> {
    let mut limits: [Fields<'_>; 4] = Default::default();
    let mut unified = subscription_headers::Fields::default();
    let mut advertised = false;
    for (name, value) in headers {
        let Some(rest) = name.as_str().strip_prefix(PREFIX) else {
            continue;
        };
        advertised = true;
        let Ok(value) = value.to_str().map(str::trim) else {
            continue;
        };
        if let Some(field) = rest.strip_prefix(UNIFIED) {
            unified.take(field, value);
            continue;
        }
        let Some((limit, field)) = rest.rsplit_once('-') else {
            continue;
        };
        let Some(slot) = LIMITS.iter().position(|l| *l == limit) else {
            continue;
        };
        let fields = &mut limits[slot];
        // A repeated header counts once, as its first value.
        match field {
            "limit" if fields.limit.is_none() => fields.limit = value.parse().ok(),
            "remaining" if fields.remaining.is_none() => fields.remaining = value.parse().ok(),
            "reset" if fields.reset.is_none() => fields.reset = Some(value),
            _ => {}
        }
    }
    if !advertised {
        return None;
    }
    let skew = skew(headers, now);
    let [requests, tokens, input_tokens, output_tokens] = limits.map(|f| f.window(skew, now));
    Some(RateLimitSnapshot {
        requests,
        tokens,
        input_tokens,
        output_tokens,
        subscription: unified.finish(skew, now),
        taken_ms: now,
    })
}

/// When the provider says to try again: `retry-after-ms`, then `retry-after` (seconds or an
/// HTTP date), both on our clock and bounded by `max_ms` (see [`bounded`]).
pub fn retry_at(headers: &HeaderMap, now: EpochMs, max_ms: i64) -> Option<EpochMs> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|ms| seconds_ms(ms / 1000.0))
    {
        return bounded(now.saturating_add(ms), now, max_ms);
    }
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<f64>() {
        let ms = seconds_ms(secs)?;
        return bounded(now.saturating_add(ms), now, max_ms);
    }
    let at = http_date_ms(value)?.saturating_add(skew(headers, now));
    bounded(at, now, max_ms)
}

/// For a 429 that names no retry time: the latest reset among the exhausted windows.
pub fn exhausted_reset(snapshot: &RateLimitSnapshot) -> Option<EpochMs> {
    [
        snapshot.requests,
        snapshot.tokens,
        snapshot.input_tokens,
        snapshot.output_tokens,
    ]
    .into_iter()
    .flatten()
    .filter(|w| w.remaining == 0)
    .filter_map(|w| w.reset_ms)
    .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    fn classic_retry_at(h: &HeaderMap, now: EpochMs) -> Option<EpochMs> {
        retry_at(h, now, CLASSIC_MAX_MS)
    }

    // 2026-01-01T12:00:00Z
    const NOON: EpochMs = 1_767_268_800_000;

    #[test]
    fn resets_are_moved_onto_our_clock() {
        let h = headers(&[
            ("date", "Thu, 01 Jan 2026 12:00:00 GMT"),
            ("anthropic-ratelimit-input-tokens-limit", "30000"),
            ("anthropic-ratelimit-input-tokens-remaining", "0"),
            (
                "anthropic-ratelimit-input-tokens-reset",
                "2026-01-01T12:00:17Z",
            ),
            ("anthropic-ratelimit-requests-limit", "50"),
            ("anthropic-ratelimit-requests-remaining", "47"),
            ("anthropic-ratelimit-requests-reset", "2026-01-01T12:00:02Z"),
        ]);
        // Our clock runs 5 minutes ahead of the provider's.
        let now = NOON + 300_000;
        let snap = snapshot(&h, now).unwrap();
        let input = snap.input_tokens.unwrap();
        assert_eq!(input.limit, 30_000);
        assert_eq!(input.remaining, 0);
        assert_eq!(input.reset_ms, Some(now + 17_000));
        assert_eq!(snap.requests.unwrap().remaining, 47);
        assert_eq!(exhausted_reset(&snap), Some(now + 17_000));
        assert!(snap.output_tokens.is_none());
    }

    #[test]
    fn retry_after_forms() {
        let now = NOON;
        assert_eq!(
            classic_retry_at(&headers(&[("retry-after", "17")]), now),
            Some(now + 17_000)
        );
        assert_eq!(
            classic_retry_at(&headers(&[("retry-after", "1.5")]), now),
            Some(now + 1_500)
        );
        assert_eq!(
            classic_retry_at(
                &headers(&[("retry-after", "2"), ("retry-after-ms", "250")]),
                now
            ),
            Some(now + 250)
        );
        let dated = headers(&[
            ("date", "Thu, 01 Jan 2026 12:00:00 GMT"),
            ("retry-after", "Thu, 01 Jan 2026 12:01:00 GMT"),
        ]);
        assert_eq!(
            classic_retry_at(&dated, now + 999_000),
            Some(now + 999_000 + 60_000)
        );
        assert_eq!(
            classic_retry_at(&headers(&[("retry-after", "soon")]), now),
            None
        );
        assert_eq!(classic_retry_at(&HeaderMap::new(), now), None);
    }

    #[test]
    fn each_limit_is_read_from_its_own_headers() {
        let mut h = headers(&[
            ("anthropic-ratelimit-tokens-limit", "800000"),
            ("anthropic-ratelimit-output-tokens-limit", "16000"),
            ("anthropic-ratelimit-output-tokens-remaining", " 15000 "),
            ("anthropic-ratelimit-unified-status", "allowed"),
        ]);
        h.append(
            "anthropic-ratelimit-output-tokens-limit",
            "99".parse().unwrap(),
        );
        let snap = snapshot(&h, NOON).unwrap();
        let output = snap.output_tokens.unwrap();
        assert_eq!((output.limit, output.remaining), (16_000, 15_000));
        // No remaining header: the whole limit is taken as left.
        let tokens = snap.tokens.unwrap();
        assert_eq!((tokens.limit, tokens.remaining), (800_000, 800_000));
        assert!(snap.requests.is_none() && snap.input_tokens.is_none());
        // Only a limit the gateway does not read: still an answer that advertises limits.
        let other = headers(&[("anthropic-ratelimit-unified-status", "allowed")]);
        assert_eq!(snapshot(&other, NOON).map(|s| s.taken_ms), Some(NOON));
    }

    #[test]
    fn no_headers_no_snapshot() {
        assert!(snapshot(&headers(&[("content-type", "x")]), NOON).is_none());
    }

    #[test]
    fn long_waits_are_clamped_to_the_longest_legitimate_window() {
        let now = NOON;
        let two_hours = headers(&[("retry-after", "7200")]);
        assert_eq!(
            classic_retry_at(&two_hours, now),
            Some(now + CLASSIC_MAX_MS)
        );
        // A subscription window may legitimately ask for days.
        let three_days = headers(&[("retry-after", "259200")]);
        assert_eq!(
            retry_at(&three_days, now, SUBSCRIPTION_MAX_MS),
            Some(now + 259_200_000)
        );
        let ten_days = headers(&[("retry-after-ms", "864000000")]);
        assert_eq!(
            retry_at(&ten_days, now, SUBSCRIPTION_MAX_MS),
            Some(now + SUBSCRIPTION_MAX_MS)
        );
        let past = headers(&[
            ("date", "Thu, 01 Jan 2026 12:00:00 GMT"),
            ("retry-after", "Thu, 01 Jan 2026 11:00:00 GMT"),
        ]);
        assert_eq!(classic_retry_at(&past, now), Some(now), "never in the past");
    }

    #[test]
    fn absurd_waits_fall_back_to_the_ladder() {
        let now = NOON;
        for absurd in [
            "99999999",
            "1e300",
            "inf",
            "NaN",
            "-5",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            let h = headers(&[("retry-after", absurd)]);
            assert_eq!(classic_retry_at(&h, now), None, "retry-after: {absurd}");
            assert_eq!(retry_at(&h, now, SUBSCRIPTION_MAX_MS), None, "{absurd}");
        }
        for absurd in ["1e300", "99999999999999", "-1"] {
            let h = headers(&[("retry-after-ms", absurd)]);
            assert_eq!(classic_retry_at(&h, now), None, "retry-after-ms: {absurd}");
        }
        // Our clock at its far end: nothing overflows.
        let h = headers(&[("retry-after", "17")]);
        assert_eq!(classic_retry_at(&h, i64::MAX - 5), Some(i64::MAX));
    }

    #[test]
    fn reset_headers_are_bounded_too() {
        let h = headers(&[
            ("anthropic-ratelimit-requests-limit", "50"),
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "9999-12-31T23:59:59Z"),
            ("anthropic-ratelimit-tokens-limit", "50"),
            ("anthropic-ratelimit-tokens-remaining", "0"),
            ("anthropic-ratelimit-tokens-reset", "2026-01-01T15:00:00Z"),
        ]);
        let snap = snapshot(&h, NOON).unwrap();
        assert_eq!(snap.requests.unwrap().reset_ms, None, "garbage: no reset");
        assert_eq!(
            snap.tokens.unwrap().reset_ms,
            Some(NOON + CLASSIC_MAX_MS),
            "three hours on a per-minute limit is clamped to one"
        );
    }
}
