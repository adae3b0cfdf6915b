//! Per-key caps the operator sets from what they know of an account: a requests-per-second
//! burst limit and a daily quota (requests or tokens per UTC day). Every strategy respects them;
//! a key at a cap is skipped until it has room again.

use crate::types::EpochMs;

const SECOND_MS: i64 = 1_000;
const DAY_MS: i64 = 86_400_000;

/// The operator's caps of one key; `None` is no cap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    /// Requests per second, with a burst of the same size.
    pub rps: Option<u32>,
    /// Requests per UTC day.
    pub daily_requests: Option<u64>,
    /// Tokens (input, cache and output) per UTC day.
    pub daily_tokens: Option<u64>,
}

/// What a key has used of its caps.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Used {
    /// The burst bucket: tokens left and when it was last refilled.
    bucket: f64,
    refilled_at: EpochMs,
    /// The UTC day (days since the epoch) the counters below belong to.
    day: i64,
    requests: u64,
    tokens: u64,
}

impl Used {
    pub(super) fn new(caps: &Caps, now: EpochMs) -> Self {
        Self {
            bucket: caps.rps.map_or(0.0, f64::from),
            refilled_at: now,
            day: now.div_euclid(DAY_MS),
            requests: 0,
            tokens: 0,
        }
    }

    fn roll(&mut self, caps: &Caps, now: EpochMs) {
        let day = now.div_euclid(DAY_MS);
        if day != self.day {
            self.day = day;
            self.requests = 0;
            self.tokens = 0;
        }
        if let Some(rps) = caps.rps {
            let rate = f64::from(rps);
            // Milliseconds far below 2^53.
            #[allow(clippy::cast_precision_loss)]
            let elapsed = now.saturating_sub(self.refilled_at).max(0) as f64 / SECOND_MS as f64;
            self.bucket = (self.bucket + elapsed * rate).min(rate);
        }
        self.refilled_at = now;
    }

    /// When the key has room for one more request under its caps: None when it has room now.
    pub(super) fn blocked_until(&mut self, caps: &Caps, now: EpochMs) -> Option<EpochMs> {
        self.roll(caps, now);
        let next_day = (self.day + 1) * DAY_MS;
        let day_spent = caps.daily_requests.is_some_and(|cap| self.requests >= cap)
            || caps.daily_tokens.is_some_and(|cap| self.tokens >= cap);
        if day_spent {
            return Some(next_day);
        }
        match caps.rps {
            Some(rps) if self.bucket < 1.0 => {
                let missing = 1.0 - self.bucket;
                // A fraction of a second.
                #[allow(clippy::cast_possible_truncation)]
                let wait = (missing / f64::from(rps.max(1)) * SECOND_MS as f64).ceil() as i64;
                Some(now + wait.max(1))
            }
            _ => None,
        }
    }

    /// Counts a request handed out (after `blocked_until` said there was room).
    pub(super) fn take(&mut self, caps: &Caps) {
        if caps.rps.is_some() {
            self.bucket -= 1.0;
        }
        self.requests = self.requests.saturating_add(1);
    }

    /// Counts tokens a finished request used.
    pub(super) fn add_tokens(&mut self, caps: &Caps, tokens: u64, now: EpochMs) {
        self.roll(caps, now);
        self.tokens = self.tokens.saturating_add(tokens);
    }

    pub(super) fn today(&self) -> (u64, u64) {
        (self.requests, self.tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burst_limit_refills_per_second() {
        let caps = Caps {
            rps: Some(2),
            ..Caps::default()
        };
        let mut used = Used::new(&caps, 0);
        for _ in 0..2 {
            assert_eq!(used.blocked_until(&caps, 0), None);
            used.take(&caps);
        }
        assert_eq!(
            used.blocked_until(&caps, 0),
            Some(500),
            "half a second for one more"
        );
        assert_eq!(used.blocked_until(&caps, 500), None);
    }

    #[test]
    fn a_daily_quota_ends_at_utc_midnight() {
        let caps = Caps {
            daily_requests: Some(1),
            daily_tokens: Some(1_000),
            ..Caps::default()
        };
        let noon = 20_000 * DAY_MS + DAY_MS / 2;
        let mut used = Used::new(&caps, noon);
        assert_eq!(used.blocked_until(&caps, noon), None);
        used.take(&caps);
        assert_eq!(used.blocked_until(&caps, noon), Some(20_001 * DAY_MS));
        assert_eq!(
            used.blocked_until(&caps, 20_001 * DAY_MS),
            None,
            "a new day"
        );
        used.add_tokens(&caps, 1_000, 20_001 * DAY_MS + 1);
        assert_eq!(
            used.blocked_until(&caps, 20_001 * DAY_MS + 2),
            Some(20_002 * DAY_MS),
            "tokens spent"
        );
    }
}
