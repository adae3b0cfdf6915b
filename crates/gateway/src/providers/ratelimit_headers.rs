//! Reads the provider's rate-limit headers. Reset times and HTTP dates are measured against the
//! upstream's own `Date` header and moved onto our clock, so a skewed clock on either side does
//! not turn "17 s from now" into "already past" or "an hour away".

use std::str::FromStr;

use http::{HeaderMap, HeaderName};

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

fn number(headers: &HeaderMap, name: &HeaderName) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// One dimension's limit, remaining and reset headers. Named once here, so reading an answer
/// neither formats nor parses header names (every attempt's answer is read).
type Dimension = [HeaderName; 3];

const REQUESTS: Dimension = [
    HeaderName::from_static("anthropic-ratelimit-requests-limit"),
    HeaderName::from_static("anthropic-ratelimit-requests-remaining"),
    HeaderName::from_static("anthropic-ratelimit-requests-reset"),
];
const TOKENS: Dimension = [
    HeaderName::from_static("anthropic-ratelimit-tokens-limit"),
    HeaderName::from_static("anthropic-ratelimit-tokens-remaining"),
    HeaderName::from_static("anthropic-ratelimit-tokens-reset"),
];
const INPUT_TOKENS: Dimension = [
    HeaderName::from_static("anthropic-ratelimit-input-tokens-limit"),
    HeaderName::from_static("anthropic-ratelimit-input-tokens-remaining"),
    HeaderName::from_static("anthropic-ratelimit-input-tokens-reset"),
];
const OUTPUT_TOKENS: Dimension = [
    HeaderName::from_static("anthropic-ratelimit-output-tokens-limit"),
    HeaderName::from_static("anthropic-ratelimit-output-tokens-remaining"),
    HeaderName::from_static("anthropic-ratelimit-output-tokens-reset"),
];

fn window(
    headers: &HeaderMap,
    [limit, remaining, reset]: &Dimension,
    skew: i64,
) -> Option<LimitWindow> {
    let limit = number(headers, limit)?;
    let remaining = number(headers, remaining).unwrap_or(limit);
    let reset_ms = headers
        .get(reset)
        .and_then(|v| v.to_str().ok())
        .and_then(rfc3339_ms)
        .map(|t| t + skew);
    Some(LimitWindow {
        limit,
        remaining,
        reset_ms,
    })
}

/// The snapshot of every advertised limit, or None when the answer carried no such headers.
pub fn snapshot(headers: &HeaderMap, now: EpochMs) -> Option<RateLimitSnapshot> {
    if !headers
        .keys()
        .any(|k| k.as_str().starts_with("anthropic-ratelimit-"))
    {
        return None;
    }
    let skew = skew(headers, now);
    Some(RateLimitSnapshot {
        requests: window(headers, &REQUESTS, skew),
        tokens: window(headers, &TOKENS, skew),
        input_tokens: window(headers, &INPUT_TOKENS, skew),
        output_tokens: window(headers, &OUTPUT_TOKENS, skew),
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
    fn no_headers_no_snapshot() {
        assert!(snapshot(&headers(&[("content-type", "x")]), NOON).is_none());
    }
}
