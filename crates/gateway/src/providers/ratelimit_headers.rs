//! Reads the provider's rate-limit headers. Reset times and HTTP dates are measured against the
//! upstream's own `Date` header and moved onto our clock, so a skewed clock on either side does
//! not turn "17 s from now" into "already past" or "an hour away".

use std::str::FromStr;

use http::HeaderMap;

use crate::types::{EpochMs, LimitWindow, RateLimitSnapshot};

/// Upstream time → our time: add this offset (ms) to an upstream timestamp.
fn skew(headers: &HeaderMap, now: EpochMs) -> i64 {
    upstream_date(headers).map_or(0, |date| now - date)
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

/// One limit's headers as the answer gave them, before the reset is moved onto our clock.
#[derive(Default)]
struct Fields<'h> {
    limit: Option<u64>,
    remaining: Option<u64>,
    reset: Option<&'h str>,
}

impl Fields<'_> {
    fn window(&self, skew: i64) -> Option<LimitWindow> {
        let limit = self.limit?;
        Some(LimitWindow {
            limit,
            remaining: self.remaining.unwrap_or(limit),
            reset_ms: self.reset.and_then(rfc3339_ms).map(|t| t + skew),
        })
    }
}

const PREFIX: &str = "anthropic-ratelimit-";
/// The limits the provider reports, in the order of [`RateLimitSnapshot`]'s fields.
const LIMITS: [&str; 4] = ["requests", "tokens", "input-tokens", "output-tokens"];

/// The snapshot of every advertised limit, or None when the answer carried no such headers.
/// Every answer is read, so this is one pass over the headers comparing names: looking up the
/// twelve names one by one hashed each of them against the map.
pub fn snapshot(headers: &HeaderMap, now: EpochMs) -> Option<RateLimitSnapshot> {
    let mut limits: [Fields<'_>; 4] = Default::default();
    let mut advertised = false;
    for (name, value) in headers {
        let Some((limit, field)) = name
            .as_str()
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.rsplit_once('-'))
        else {
            continue;
        };
        advertised = true;
        let (Some(slot), Ok(value)) = (
            LIMITS.iter().position(|l| *l == limit),
            value.to_str().map(str::trim),
        ) else {
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
    let [requests, tokens, input_tokens, output_tokens] = limits.map(|f| f.window(skew));
    Some(RateLimitSnapshot {
        requests,
        tokens,
        input_tokens,
        output_tokens,
        taken_ms: now,
    })
}

/// When the provider says to try again: `retry-after-ms`, then `retry-after` (seconds or an
/// HTTP date), both on our clock.
pub fn retry_at(headers: &HeaderMap, now: EpochMs) -> Option<EpochMs> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(now + ms.ceil() as i64);
    }
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(now + (secs * 1000.0).ceil() as i64);
        }
        return None;
    }
    http_date_ms(value).map(|at| at + skew(headers, now))
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
            retry_at(&headers(&[("retry-after", "17")]), now),
            Some(now + 17_000)
        );
        assert_eq!(
            retry_at(&headers(&[("retry-after", "1.5")]), now),
            Some(now + 1_500)
        );
        assert_eq!(
            retry_at(
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
            retry_at(&dated, now + 999_000),
            Some(now + 999_000 + 60_000)
        );
        assert_eq!(retry_at(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_at(&HeaderMap::new(), now), None);
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
}
