//! Claude subscription (OAuth) usage windows and the `anthropic-ratelimit-unified-*` headers
//! that report them, in place of the per-minute buckets of API keys.
//!
//! A window counts **requests**: every served Messages or Complete request costs one unit,
//! whatever its size, so a test fills a window of capacity 3 with three requests. Windows
//! start when the mock starts (or is reset), last 5 hours or 7 days, and start over at their
//! reset time, measured with Tokio's clock so paused-time tests can jump to it. Resets are
//! reported as epoch seconds on the mock's wall clock at start plus the Tokio time elapsed.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::{ApiError, ErrorKind};

const FIVE_HOURS: Duration = Duration::from_secs(5 * 60 * 60);
const SEVEN_DAYS: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The usage windows of a Claude subscription, configured per OAuth key with
/// [`MockKey::with_subscription`](crate::MockKey::with_subscription).
///
/// Capacities are in requests (one unit per served request). The 5-hour and 7-day windows
/// always exist; the model-scoped and overage-included windows only when set, and only the
/// configured windows are reported in headers.
#[derive(Clone, Debug, PartialEq)]
pub struct Subscription {
    /// The `5h` window (claim `five_hour`): every model.
    pub five_hour: u64,
    /// The `7d` window (claim `seven_day`): every model.
    pub seven_day: u64,
    /// The `7d_opus` window (claim `seven_day_opus`): only models whose id contains `opus`.
    pub seven_day_opus: Option<u64>,
    /// The `7d_sonnet` window (claim `seven_day_sonnet`): only models whose id contains
    /// `sonnet`.
    pub seven_day_sonnet: Option<u64>,
    /// The `7d_oi` window (claim `seven_day_overage_included`): every model, and it also
    /// counts requests served from overage. When it is full, overage cannot help.
    pub seven_day_overage_included: Option<u64>,
    /// Utilization from which a window reports `allowed_warning` and
    /// `-surpassed-threshold` (default 0.75).
    pub warning_threshold: f64,
    /// Paid usage beyond the included windows; `None` sends no overage headers.
    pub overage: Option<Overage>,
}

impl Default for Subscription {
    /// Capacities no demo or benchmark exhausts, no overage.
    fn default() -> Self {
        Subscription {
            five_hour: 1_000_000,
            seven_day: 10_000_000,
            seven_day_opus: None,
            seven_day_sonnet: None,
            seven_day_overage_included: None,
            warning_threshold: 0.75,
            overage: None,
        }
    }
}

/// Overage ("extra usage"): serves requests once an included window that applies to the
/// request is full.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overage {
    /// Requests overage can still serve. At 0 overage is `rejected` with disabled reason
    /// `out_of_credits`. Credit does not replenish while the mock runs (it is monthly).
    pub credit: u64,
    /// Overage switched off, reported as this disabled reason (e.g. `org_level_disabled`):
    /// `rejected` whatever the credit.
    pub disabled_reason: Option<String>,
}

/// One usage window, named in headers by its short form (`5h`, `7d`, `7d_opus`,
/// `7d_sonnet`, `7d_oi`), which is also its spelling in the `/_mock/` control API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Window {
    #[serde(rename = "5h")]
    FiveHour,
    #[serde(rename = "7d")]
    SevenDay,
    #[serde(rename = "7d_opus")]
    SevenDayOpus,
    #[serde(rename = "7d_sonnet")]
    SevenDaySonnet,
    #[serde(rename = "7d_oi")]
    SevenDayOverageIncluded,
}

impl Window {
    /// The header infix: `5h`, `7d`, `7d_opus`, `7d_sonnet`, `7d_oi`.
    pub fn as_str(self) -> &'static str {
        self.names().abbreviation
    }

    /// The `representative-claim` value: `five_hour`, `seven_day`, ….
    pub fn claim(self) -> &'static str {
        self.names().claim
    }

    fn length(self) -> Duration {
        match self {
            Window::FiveHour => FIVE_HOURS,
            _ => SEVEN_DAYS,
        }
    }

    /// Whether requests for `model` count towards (and are held back by) this window.
    fn applies_to(self, model: Option<&str>) -> bool {
        match self {
            Window::SevenDayOpus => model.is_some_and(|m| m.contains("opus")),
            Window::SevenDaySonnet => model.is_some_and(|m| m.contains("sonnet")),
            Window::FiveHour | Window::SevenDay | Window::SevenDayOverageIncluded => true,
        }
    }

    /// Included windows are the plan's; overage serves requests once one of them is full.
    fn is_included(self) -> bool {
        self != Window::SevenDayOverageIncluded
    }

    fn names(self) -> &'static Names {
        match self {
            Window::FiveHour => &FIVE_HOUR,
            Window::SevenDay => &SEVEN_DAY,
            Window::SevenDayOpus => &SEVEN_DAY_OPUS,
            Window::SevenDaySonnet => &SEVEN_DAY_SONNET,
            Window::SevenDayOverageIncluded => &SEVEN_DAY_OI,
        }
    }
}

/// A window's spellings and its four header names.
struct Names {
    abbreviation: &'static str,
    claim: &'static str,
    status: &'static str,
    reset: &'static str,
    utilization: &'static str,
    surpassed: &'static str,
}

macro_rules! names {
    ($abbreviation:literal, $claim:literal) => {
        Names {
            abbreviation: $abbreviation,
            claim: $claim,
            status: concat!("anthropic-ratelimit-unified-", $abbreviation, "-status"),
            reset: concat!("anthropic-ratelimit-unified-", $abbreviation, "-reset"),
            utilization: concat!(
                "anthropic-ratelimit-unified-",
                $abbreviation,
                "-utilization"
            ),
            surpassed: concat!(
                "anthropic-ratelimit-unified-",
                $abbreviation,
                "-surpassed-threshold"
            ),
        }
    };
}

const FIVE_HOUR: Names = names!("5h", "five_hour");
const SEVEN_DAY: Names = names!("7d", "seven_day");
const SEVEN_DAY_OPUS: Names = names!("7d_opus", "seven_day_opus");
const SEVEN_DAY_SONNET: Names = names!("7d_sonnet", "seven_day_sonnet");
const SEVEN_DAY_OI: Names = names!("7d_oi", "seven_day_overage_included");

const STATUS: &str = "anthropic-ratelimit-unified-status";
const RESET: &str = "anthropic-ratelimit-unified-reset";
const CLAIM: &str = "anthropic-ratelimit-unified-representative-claim";
const FALLBACK: &str = "anthropic-ratelimit-unified-fallback";
const OVERAGE_STATUS: &str = "anthropic-ratelimit-unified-overage-status";
const OVERAGE_RESET: &str = "anthropic-ratelimit-unified-overage-reset";
const OVERAGE_IN_USE: &str = "anthropic-ratelimit-unified-overage-in-use";
const OVERAGE_DISABLED: &str = "anthropic-ratelimit-unified-overage-disabled-reason";

const OUT_OF_CREDITS: &str = "out_of_credits";

/// Whether `headers` already carry the unified set (written by a refusal).
pub(crate) fn has_headers(headers: &HeaderMap) -> bool {
    headers.contains_key(STATUS)
}

/// `status` values of the whole answer, of a window and of overage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Status {
    Allowed,
    AllowedWarning,
    Rejected,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Allowed => "allowed",
            Status::AllowedWarning => "allowed_warning",
            Status::Rejected => "rejected",
        }
    }
}

/// Tokio time mapped onto epoch seconds: the wall clock at start plus Tokio time since.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    start: Instant,
    epoch: Timestamp,
}

impl Clock {
    pub(crate) fn start() -> Clock {
        Clock {
            start: Instant::now(),
            epoch: Timestamp::now(),
        }
    }

    /// Epoch seconds of `at`, rounded up.
    fn epoch_secs(&self, at: Instant) -> i64 {
        let since = at.saturating_duration_since(self.start);
        let nanos = self.epoch.as_nanosecond() + since.as_nanos() as i128;
        i64::try_from(nanos.div_euclid(1_000_000_000) + i128::from(nanos % 1_000_000_000 != 0))
            .unwrap_or(i64::MAX)
    }

    /// 00:00 UTC on the first of the month after `at`: when overage credit renews.
    fn next_month_secs(&self, at: Instant) -> i64 {
        let now = Timestamp::from_second(self.epoch_secs(at)).unwrap_or(self.epoch);
        now.to_zoned(TimeZone::UTC)
            .date()
            .first_of_month()
            .checked_add(jiff::Span::new().months(1))
            .ok()
            .and_then(|date| date.to_zoned(TimeZone::UTC).ok())
            .map_or_else(|| now.as_second(), |zoned| zoned.timestamp().as_second())
    }
}

/// One window's fill.
#[derive(Clone, Copy, Debug)]
struct Meter {
    window: Window,
    capacity: u64,
    /// Units used, fractional after `set_utilization`.
    used: f64,
    ends: Instant,
}

impl Meter {
    fn utilization(&self) -> f64 {
        if self.capacity == 0 {
            1.0
        } else {
            (self.used / self.capacity as f64).clamp(0.0, 1.0)
        }
    }

    /// Full at utilization 1: a window with any room left serves one more request (which
    /// may fill it past a fractional fill set by a test; the fill is capped at capacity).
    fn is_full(&self) -> bool {
        self.used >= self.capacity as f64 - 1e-9
    }

    fn charge(&mut self) {
        self.used = (self.used + 1.0).min(self.capacity as f64);
    }

    /// Starts over (as many lengths later as have passed) once `ends` is reached.
    fn roll(&mut self, now: Instant) {
        if now < self.ends {
            return;
        }
        let length = self.window.length();
        let behind = now.saturating_duration_since(self.ends).as_secs_f64();
        let periods = (behind / length.as_secs_f64()).floor() as u32 + 1;
        self.ends += length * periods;
        self.used = 0.0;
    }
}

/// The windows of one OAuth key and the overage credit left.
pub(crate) struct Windows {
    subscription: Subscription,
    clock: Clock,
    state: Mutex<Fill>,
}

struct Fill {
    meters: Vec<Meter>,
    credit: u64,
}

/// How a served request was paid for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Charge {
    Included,
    Overage,
}

/// A window that is not configured for the key.
#[derive(Debug)]
pub(crate) struct NotConfigured;

impl Windows {
    pub(crate) fn new(subscription: Subscription, clock: Clock) -> Windows {
        let fill = Fill::start(&subscription, Instant::now());
        Windows {
            subscription,
            clock,
            state: Mutex::new(fill),
        }
    }

    /// Every window empty and starting now, overage credit as configured.
    pub(crate) fn reset(&self) {
        *self.state.lock() = Fill::start(&self.subscription, Instant::now());
    }

    /// Charges one request for `model`, or refuses it without charging anything.
    pub(crate) fn admit(&self, model: &str) -> Result<(Report, Charge), Rejected> {
        let now = Instant::now();
        let mut fill = self.state.lock();
        fill.roll(now);
        let model = Some(model);
        let full: Vec<Meter> = fill
            .meters
            .iter()
            .filter(|m| m.window.applies_to(model) && m.is_full())
            .copied()
            .collect();
        // The window that holds the request back longest is the one to report.
        let binding = full.iter().max_by_key(|m| m.ends).copied();
        let Some(binding) = binding else {
            for meter in fill.meters.iter_mut() {
                if meter.window.applies_to(model) {
                    meter.charge();
                }
            }
            return Ok((
                self.report(&fill, model, now, Outcome::Served),
                Charge::Included,
            ));
        };
        let rescuable = full.iter().all(|m| m.window.is_included());
        if rescuable && self.overage_available(&fill) {
            fill.credit -= 1;
            for meter in fill.meters.iter_mut() {
                if !meter.window.is_included() {
                    meter.charge();
                }
            }
            let outcome = Outcome::Overage(binding.window);
            return Ok((self.report(&fill, model, now, outcome), Charge::Overage));
        }
        let report = self.report(&fill, model, now, Outcome::Rejected(binding.window));
        let wait = binding.ends.saturating_duration_since(now);
        Err(Rejected {
            report,
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        })
    }

    /// Gives back what [`Windows::admit`] took, for a request refused afterwards (one unit;
    /// after a fractional fill set by a test the charge may have been less).
    pub(crate) fn refund(&self, model: &str, charge: Charge) {
        let mut fill = self.state.lock();
        match charge {
            Charge::Overage => fill.credit += 1,
            Charge::Included => {}
        }
        for meter in fill.meters.iter_mut() {
            let charged = match charge {
                Charge::Included => meter.window.applies_to(Some(model)),
                Charge::Overage => !meter.window.is_included(),
            };
            if charged {
                meter.used = (meter.used - 1.0).max(0.0);
            }
        }
    }

    /// The current state, for answers that charge nothing (`model` `None`: only the
    /// account-wide windows decide the overall status).
    pub(crate) fn snapshot(&self, model: Option<&str>) -> Report {
        let now = Instant::now();
        let mut fill = self.state.lock();
        fill.roll(now);
        self.report(&fill, model, now, Outcome::Snapshot)
    }

    /// Sets `window`'s fill to `fraction` (0–1) of its capacity.
    pub(crate) fn set_utilization(
        &self,
        window: Window,
        fraction: f64,
    ) -> Result<(), NotConfigured> {
        let now = Instant::now();
        let mut fill = self.state.lock();
        fill.roll(now);
        let meter = fill
            .meters
            .iter_mut()
            .find(|m| m.window == window)
            .ok_or(NotConfigured)?;
        meter.used = fraction.clamp(0.0, 1.0) * meter.capacity as f64;
        Ok(())
    }

    fn overage_available(&self, fill: &Fill) -> bool {
        self.subscription
            .overage
            .as_ref()
            .is_some_and(|o| o.disabled_reason.is_none() && fill.credit > 0)
    }

    fn report(&self, fill: &Fill, model: Option<&str>, now: Instant, outcome: Outcome) -> Report {
        let threshold = self.subscription.warning_threshold;
        let windows: Vec<WindowView> = fill
            .meters
            .iter()
            .map(|meter| {
                let utilization = meter.utilization();
                let surpassed = (utilization >= threshold).then_some(threshold);
                WindowView {
                    window: meter.window,
                    status: if meter.is_full() {
                        Status::Rejected
                    } else if surpassed.is_some() {
                        Status::AllowedWarning
                    } else {
                        Status::Allowed
                    },
                    reset: self.clock.epoch_secs(meter.ends),
                    utilization,
                    surpassed,
                }
            })
            .collect();
        let applicable = || windows.iter().filter(|w| w.window.applies_to(model));
        let (status, claim) = match outcome {
            Outcome::Rejected(window) => (Status::Rejected, window),
            Outcome::Overage(window) => (Status::Allowed, window),
            Outcome::Served | Outcome::Snapshot => {
                let mut status = applicable()
                    .map(|w| w.status)
                    .max()
                    .unwrap_or(Status::Allowed);
                // A request that filled a window was still allowed; the window's own status
                // says the next one will not be.
                if outcome == Outcome::Served {
                    status = status.min(Status::AllowedWarning);
                }
                // The most used window speaks for the answer; the first one on a tie.
                let claim = applicable()
                    .fold(None::<&WindowView>, |best, w| match best {
                        Some(b) if b.utilization >= w.utilization => Some(b),
                        _ => Some(w),
                    })
                    .map_or(Window::FiveHour, |w| w.window);
                (status, claim)
            }
        };
        let reset = windows
            .iter()
            .find(|w| w.window == claim)
            .map_or_else(|| self.clock.epoch_secs(now), |w| w.reset);
        let overage = self.subscription.overage.as_ref().map(|config| {
            let disabled_reason = match (&config.disabled_reason, fill.credit) {
                (Some(reason), _) => Some(reason.clone()),
                (None, 0) => Some(OUT_OF_CREDITS.to_owned()),
                (None, _) => None,
            };
            OverageView {
                status: if disabled_reason.is_some() {
                    Status::Rejected
                } else {
                    Status::Allowed
                },
                reset: self.clock.next_month_secs(now),
                in_use: matches!(outcome, Outcome::Overage(_)),
                disabled_reason,
            }
        });
        Report {
            status,
            claim,
            reset,
            windows,
            overage,
        }
    }
}

impl Fill {
    fn start(subscription: &Subscription, now: Instant) -> Fill {
        let configured = [
            (Window::FiveHour, Some(subscription.five_hour)),
            (Window::SevenDay, Some(subscription.seven_day)),
            (Window::SevenDayOpus, subscription.seven_day_opus),
            (Window::SevenDaySonnet, subscription.seven_day_sonnet),
            (
                Window::SevenDayOverageIncluded,
                subscription.seven_day_overage_included,
            ),
        ];
        Fill {
            meters: configured
                .into_iter()
                .filter_map(|(window, capacity)| {
                    Some(Meter {
                        window,
                        capacity: capacity?,
                        used: 0.0,
                        ends: now + window.length(),
                    })
                })
                .collect(),
            credit: subscription.overage.as_ref().map_or(0, |o| o.credit),
        }
    }

    fn roll(&mut self, now: Instant) {
        for meter in &mut self.meters {
            meter.roll(now);
        }
    }
}

/// What a report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// No request: the state as it is.
    Snapshot,
    /// A request served from the included windows.
    Served,
    /// Served from overage because this included window is full.
    Overage(Window),
    /// Refused; this window binds.
    Rejected(Window),
}

#[derive(Clone, Debug)]
struct WindowView {
    window: Window,
    status: Status,
    reset: i64,
    utilization: f64,
    surpassed: Option<f64>,
}

#[derive(Clone, Debug)]
struct OverageView {
    status: Status,
    reset: i64,
    in_use: bool,
    disabled_reason: Option<String>,
}

/// The unified state reported on one answer.
#[derive(Clone, Debug)]
pub(crate) struct Report {
    status: Status,
    claim: Window,
    reset: i64,
    windows: Vec<WindowView>,
    overage: Option<OverageView>,
}

impl Report {
    pub(crate) fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert(STATUS, HeaderValue::from_static(self.status.as_str()));
        headers.insert(RESET, HeaderValue::from(self.reset));
        headers.insert(CLAIM, HeaderValue::from_static(self.claim.claim()));
        headers.insert(FALLBACK, HeaderValue::from_static("available"));
        for view in &self.windows {
            let names = view.window.names();
            headers.insert(names.status, HeaderValue::from_static(view.status.as_str()));
            headers.insert(names.reset, HeaderValue::from(view.reset));
            insert_decimal(headers, names.utilization, view.utilization);
            if let Some(threshold) = view.surpassed {
                insert_decimal(headers, names.surpassed, threshold);
            }
        }
        if let Some(overage) = &self.overage {
            headers.insert(
                OVERAGE_STATUS,
                HeaderValue::from_static(overage.status.as_str()),
            );
            headers.insert(OVERAGE_RESET, HeaderValue::from(overage.reset));
            headers.insert(
                OVERAGE_IN_USE,
                HeaderValue::from_static(if overage.in_use { "true" } else { "false" }),
            );
            if let Some(value) = overage
                .disabled_reason
                .as_deref()
                .and_then(|r| HeaderValue::from_str(r).ok())
            {
                headers.insert(OVERAGE_DISABLED, value);
            }
        }
    }
}

/// Two decimals, as `0.42`.
fn insert_decimal(headers: &mut HeaderMap, name: &'static str, value: f64) {
    if let Ok(value) = HeaderValue::from_str(&decimal(value)) {
        headers.insert(name, value);
    }
}

fn decimal(value: f64) -> String {
    format!("{value:.2}")
}

/// A refusal: the unified state with the binding window and when it resets.
#[derive(Clone, Debug)]
pub(crate) struct Rejected {
    report: Report,
    pub(crate) retry_after_secs: u64,
}

impl Rejected {
    /// 429 `rate_limit_error` with `retry-after` and the unified headers.
    pub(crate) fn into_response(self, request_id: &str) -> Response {
        let mut response =
            ApiError::new(ErrorKind::RateLimitError, MESSAGE).into_response(request_id);
        let headers = response.headers_mut();
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from(self.retry_after_secs),
        );
        self.report.write_headers(headers);
        response
    }
}

const MESSAGE: &str =
    "This request would exceed your account's rate limit. Please try again later.";

#[cfg(test)]
mod tests;
