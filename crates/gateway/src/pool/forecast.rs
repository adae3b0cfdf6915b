//! When a subscription window will be spent at the current rate: the first utilization seen in
//! the window's current period, and the latest, give the rate; the window is spent when the
//! rate reaches 1.0, if that comes before its reset.

use crate::types::{EpochMs, Subscription, WindowName};

/// How far a window's reported reset may move and still be the same period. Resets arrive in
/// whole seconds and are moved onto our clock by the skew against the upstream's whole-second
/// `Date`, so one period's reset wobbles by up to a second between answers; a new period moves
/// it by the window's length (hours).
const SAME_PERIOD_MS: u64 = 60_000;

/// The first reading of one window in its current period.
#[derive(Clone, Copy, Debug)]
struct First {
    reset_ms: EpochMs,
    utilization: f64,
    at: EpochMs,
}

/// The first readings of every window of one key.
#[derive(Clone, Debug, Default)]
pub(super) struct Trends([Option<First>; 5]);

impl Trends {
    /// Takes an answer's windows; a window whose reset moved starts a new period.
    pub(super) fn observe(&mut self, subscription: &Subscription, now: EpochMs) {
        for (name, window) in subscription.windows() {
            let (Some(utilization), Some(reset_ms)) = (window.utilization, window.reset_ms) else {
                continue;
            };
            let slot = &mut self.0[name.index()];
            if slot.is_none_or(|first| first.reset_ms.abs_diff(reset_ms) > SAME_PERIOD_MS) {
                *slot = Some(First {
                    reset_ms,
                    utilization,
                    at: now,
                });
            }
        }
    }

    /// When `name` will be spent at the rate seen since its period's first reading: None when
    /// it is not filling, or will not be spent before it resets.
    pub(super) fn spent_at(
        &self,
        name: WindowName,
        utilization: f64,
        now: EpochMs,
    ) -> Option<EpochMs> {
        let first = self.0[name.index()]?;
        let elapsed = now.saturating_sub(first.at);
        let used = utilization - first.utilization;
        if elapsed <= 0 || used <= 0.0 {
            return None;
        }
        // Milliseconds within a week: exact in f64.
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let at = now + ((1.0 - utilization).max(0.0) / (used / elapsed as f64)).round() as i64;
        (at < first.reset_ms).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::UsageWindow;

    fn sub(utilization: f64, reset_ms: EpochMs) -> Subscription {
        let mut s = Subscription::default();
        s.set_window(
            WindowName::FiveHour,
            UsageWindow {
                status: None,
                reset_ms: Some(reset_ms),
                utilization: Some(utilization),
                surpassed_threshold: None,
            },
        );
        s
    }

    #[test]
    fn the_rate_since_the_first_reading_says_when_a_window_is_spent() {
        let mut trends = Trends::default();
        let hour = 3_600_000;
        trends.observe(&sub(0.2, 5 * hour), 0);
        trends.observe(&sub(0.4, 5 * hour), hour);
        // 0.2 an hour: the remaining 0.6 takes three more hours, before the reset.
        assert_eq!(
            trends.spent_at(WindowName::FiveHour, 0.4, hour),
            Some(4 * hour)
        );
        // Too slow to run out before the reset.
        assert_eq!(trends.spent_at(WindowName::FiveHour, 0.21, hour), None);
        // A new period starts over.
        trends.observe(&sub(0.0, 10 * hour), 6 * hour);
        assert_eq!(trends.spent_at(WindowName::FiveHour, 0.0, 6 * hour), None);
    }

    #[test]
    fn a_reset_that_wobbles_by_the_clock_skew_is_the_same_period() {
        let mut trends = Trends::default();
        let hour = 3_600_000;
        trends.observe(&sub(0.2, 5 * hour + 630), 0);
        trends.observe(&sub(0.4, 5 * hour + 129), hour);
        assert_eq!(
            trends.spent_at(WindowName::FiveHour, 0.4, hour),
            Some(4 * hour)
        );
    }
}
