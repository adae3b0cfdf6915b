//! Reads the `anthropic-ratelimit-unified-*` family that subscription (OAuth) accounts send in
//! place of the per-minute limits: the account's status, the window that binds, each window's
//! status, reset and utilization, and overage. Resets are epoch seconds on the provider's clock;
//! they are moved onto ours with the same `Date` skew as the classic headers and bounded by the
//! longest window (seven days).
//!
//! `ratelimit_headers::snapshot` feeds every header of the family here in its one pass over the
//! answer's headers.

use super::ratelimit_headers::{SUBSCRIPTION_MAX_MS, bounded};
use crate::types::{
    EpochMs, Overage, OverageOff, Subscription, UsageWindow, WindowName, WindowStatus,
};

/// The family's headers as the answer gave them (names after `anthropic-ratelimit-unified-`).
#[derive(Default)]
pub(super) struct Fields<'h> {
    seen: bool,
    status: Option<&'h str>,
    reset: Option<&'h str>,
    claim: Option<&'h str>,
    windows: [WindowFields<'h>; 5],
    overage_status: Option<&'h str>,
    overage_reset: Option<&'h str>,
    overage_in_use: Option<&'h str>,
    overage_disabled: Option<&'h str>,
}

#[derive(Default)]
struct WindowFields<'h> {
    status: Option<&'h str>,
    reset: Option<&'h str>,
    utilization: Option<&'h str>,
    surpassed: Option<&'h str>,
}

impl WindowFields<'_> {
    fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.reset.is_none()
            && self.utilization.is_none()
            && self.surpassed.is_none()
    }
}

impl<'h> Fields<'h> {
    /// One header of the family; `field` is its name after the `unified-` prefix. A repeated
    /// header counts once, as its first value.
    pub(super) fn take(&mut self, field: &str, value: &'h str) {
        self.seen = true;
        let slot = match field {
            "status" => &mut self.status,
            "reset" => &mut self.reset,
            "representative-claim" => &mut self.claim,
            "overage-status" => &mut self.overage_status,
            "overage-reset" => &mut self.overage_reset,
            "overage-in-use" => &mut self.overage_in_use,
            "overage-disabled-reason" => &mut self.overage_disabled,
            _ => {
                let Some((window, part)) = field.split_once('-') else {
                    return;
                };
                let Some(name) = WindowName::from_token(window) else {
                    return;
                };
                let window = &mut self.windows[name.index()];
                match part {
                    "status" => &mut window.status,
                    "reset" => &mut window.reset,
                    "utilization" => &mut window.utilization,
                    "surpassed-threshold" => &mut window.surpassed,
                    _ => return,
                }
            }
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }

    /// The subscription's state on our clock, or None when no header of the family came.
    pub(super) fn finish(&self, skew: i64, now: EpochMs) -> Option<Subscription> {
        if !self.seen {
            return None;
        }
        let reset = |value: Option<&str>| reset_ms(value?, skew, now);
        let mut subscription = Subscription::default();
        subscription.status = self.status.and_then(WindowStatus::parse);
        subscription.reset_ms = reset(self.reset);
        subscription.binding = self.claim.and_then(WindowName::from_claim);
        subscription.overage = self.overage(skew, now);
        for (name, fields) in WindowName::ALL.into_iter().zip(&self.windows) {
            if fields.is_empty() {
                continue;
            }
            subscription.set_window(
                name,
                UsageWindow {
                    status: fields.status.and_then(WindowStatus::parse),
                    reset_ms: reset(fields.reset),
                    utilization: fields.utilization.and_then(fraction),
                    surpassed_threshold: fields.surpassed.and_then(fraction),
                },
            );
        }
        Some(subscription)
    }

    fn overage(&self, skew: i64, now: EpochMs) -> Option<Overage> {
        if self.overage_status.is_none()
            && self.overage_in_use.is_none()
            && self.overage_disabled.is_none()
        {
            return None;
        }
        Some(Overage {
            status: self.overage_status.and_then(WindowStatus::parse),
            reset_ms: self.overage_reset.and_then(|v| reset_ms(v, skew, now)),
            in_use: self.overage_in_use == Some("true"),
            disabled: self.overage_disabled.map(|reason| match reason {
                "out_of_credits" => OverageOff::OutOfCredits,
                "org_level" | "org_level_disabled" => OverageOff::OrgLevel,
                _ => OverageOff::Other,
            }),
        })
    }
}

/// An epoch-seconds reset on the provider's clock → ours, bounded; None for garbage.
fn reset_ms(value: &str, skew: i64, now: EpochMs) -> Option<EpochMs> {
    let secs: i64 = value.parse().ok()?;
    let at = secs.checked_mul(1000)?.saturating_add(skew);
    bounded(at, now, SUBSCRIPTION_MAX_MS)
}

/// A share in [0, 1]; values outside are not a share.
fn fraction(value: &str) -> Option<f64> {
    let share: f64 = value.parse().ok()?;
    (share.is_finite() && (0.0..=1.5).contains(&share)).then(|| share.min(1.0))
}

/// The window a rejection names: the binding window if it was rejected, else the first
/// rejected window that applies to `model` (all of them when the model is unknown).
pub fn rejected_window(
    subscription: &Subscription,
    model: Option<&str>,
) -> Option<(WindowName, UsageWindow)> {
    let applies = |name: WindowName| match (name.family(), model) {
        (Some(family), Some(model)) => family.covers(model),
        _ => true,
    };
    let rejected = |name: WindowName| {
        subscription
            .window(name)
            .filter(|w| w.status == Some(WindowStatus::Rejected) && applies(name))
            .map(|w| (name, *w))
    };
    subscription
        .binding
        .and_then(rejected)
        .or_else(|| WindowName::ALL.into_iter().find_map(rejected))
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;
    use crate::providers::ratelimit_headers::snapshot;

    // 2026-01-01T12:00:00Z
    const NOON: EpochMs = 1_767_268_800_000;
    const NOON_SECS: i64 = NOON / 1000;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert("date", "Thu, 01 Jan 2026 12:00:00 GMT".parse().unwrap());
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn windows_status_and_overage_are_read() {
        let h = headers(&[
            (
                "anthropic-ratelimit-unified-status",
                "allowed_warning".into(),
            ),
            (
                "anthropic-ratelimit-unified-reset",
                format!("{}", NOON_SECS + 3600),
            ),
            (
                "anthropic-ratelimit-unified-representative-claim",
                "five_hour".into(),
            ),
            (
                "anthropic-ratelimit-unified-5h-status",
                "allowed_warning".into(),
            ),
            (
                "anthropic-ratelimit-unified-5h-reset",
                format!("{}", NOON_SECS + 3600),
            ),
            ("anthropic-ratelimit-unified-5h-utilization", "0.82".into()),
            (
                "anthropic-ratelimit-unified-5h-surpassed-threshold",
                "0.75".into(),
            ),
            ("anthropic-ratelimit-unified-7d-status", "allowed".into()),
            ("anthropic-ratelimit-unified-7d-utilization", "0.31".into()),
            (
                "anthropic-ratelimit-unified-7d_opus-status",
                "rejected".into(),
            ),
            (
                "anthropic-ratelimit-unified-7d_opus-reset",
                format!("{}", NOON_SECS + 86_400),
            ),
            (
                "anthropic-ratelimit-unified-overage-status",
                "rejected".into(),
            ),
            (
                "anthropic-ratelimit-unified-overage-disabled-reason",
                "out_of_credits".into(),
            ),
        ]);
        // Our clock runs a minute ahead of the provider's.
        let now = NOON + 60_000;
        let sub = snapshot(&h, now).unwrap().subscription.unwrap();
        assert_eq!(sub.status, Some(WindowStatus::Warning));
        assert_eq!(sub.binding, Some(WindowName::FiveHour));
        assert_eq!(sub.reset_ms, Some(now + 3_600_000));
        let five = sub.window(WindowName::FiveHour).unwrap();
        assert_eq!(five.utilization, Some(0.82));
        assert_eq!(five.surpassed_threshold, Some(0.75));
        assert_eq!(five.reset_ms, Some(now + 3_600_000));
        let opus = sub.window(WindowName::SevenDayOpus).unwrap();
        assert_eq!(opus.status, Some(WindowStatus::Rejected));
        assert_eq!(opus.reset_ms, Some(now + 86_400_000));
        assert!(sub.window(WindowName::SevenDaySonnet).is_none());
        let overage = sub.overage.unwrap();
        assert_eq!(overage.status, Some(WindowStatus::Rejected));
        assert_eq!(overage.disabled, Some(OverageOff::OutOfCredits));
        assert!(!overage.in_use);
    }

    #[test]
    fn a_model_window_binds_only_its_models() {
        let h = headers(&[
            ("anthropic-ratelimit-unified-status", "rejected".into()),
            (
                "anthropic-ratelimit-unified-representative-claim",
                "seven_day_opus".into(),
            ),
            (
                "anthropic-ratelimit-unified-7d_opus-status",
                "rejected".into(),
            ),
            ("anthropic-ratelimit-unified-5h-status", "allowed".into()),
        ]);
        let sub = snapshot(&h, NOON).unwrap().subscription.unwrap();
        let (name, _) = rejected_window(&sub, Some("claude-opus-5-5")).unwrap();
        assert_eq!(name, WindowName::SevenDayOpus);
        assert_eq!(name.family(), Some(crate::types::ModelFamily::Opus));
        assert!(rejected_window(&sub, Some("claude-sonnet-5-5")).is_none());
    }

    #[test]
    fn garbage_resets_and_shares_are_dropped() {
        let h = headers(&[
            (
                "anthropic-ratelimit-unified-5h-reset",
                "99999999999999".into(),
            ),
            ("anthropic-ratelimit-unified-5h-utilization", "7".into()),
            ("anthropic-ratelimit-unified-7d-reset", "soon".into()),
            ("anthropic-ratelimit-unified-7d-utilization", "NaN".into()),
            // Nine days: past the longest window, clamped to it.
            (
                "anthropic-ratelimit-unified-reset",
                format!("{}", NOON_SECS + 9 * 86_400),
            ),
        ]);
        let sub = snapshot(&h, NOON).unwrap().subscription.unwrap();
        let five = sub.window(WindowName::FiveHour).unwrap();
        assert_eq!((five.reset_ms, five.utilization), (None, None));
        let seven = sub.window(WindowName::SevenDay).unwrap();
        assert_eq!((seven.reset_ms, seven.utilization), (None, None));
        assert_eq!(sub.reset_ms, Some(NOON + SUBSCRIPTION_MAX_MS));
    }

    #[test]
    fn classic_answers_have_no_subscription() {
        let h = headers(&[("anthropic-ratelimit-requests-limit", "50".into())]);
        assert!(snapshot(&h, NOON).unwrap().subscription.is_none());
    }
}
