//! One key's health state machine, pure: outcomes, probe results, operator actions and the
//! passing of time go in (time always as an argument), the new state and a [`Change`] to
//! announce come out. The handle in `mod.rs` does the locking and the announcing.
//!
//! ```text
//! Active ──429──► CoolingDown(rate ladder | retry-after) ──until──► Probing ──ok──► Active (slow start)
//!   │   ──billing──► CoolingDown(billing ladder)                      │ 429 / billing → next rung
//!   │   ──N× 5xx/timeout/connect──► CoolingDown(server ladder)        │ 401/403 → Disabled
//!   │                                                                 └ other → CoolingDown(≤ 30 s)
//!   └──401/403──► Disabled(invalid credential) ──probe ok / operator──► Active (slow start)
//! any ──operator off──► Disabled(operator) ──operator on──► Active (slow start)
//! ```

use super::PersistedState;
use super::config::Config;
use super::cooldown::{self, PROBE_RETRY_MAX_MS};
use super::reliability::Blame;
use crate::types::{EpochMs, Outcome, OutcomeClass, Scope};

pub(super) const ACTIVE: &str = "active";
pub(super) const COOLING_DOWN: &str = "cooling_down";
pub(super) const PROBING: &str = "probing";
pub(super) const DISABLED: &str = "disabled";

const REASON_RATE_LIMITED: &str = "rate limited (429)";
const REASON_BILLING: &str = "credit balance exhausted";
const REASON_SERVER_ERRORS: &str = "failing while other credentials succeed";
/// What earlier versions wrote for the same cause, still found in stores.
const OLD_REASON_SERVER_ERRORS: &str = "consecutive server errors";
const REASON_INVALID: &str = "invalid credential (401/403)";
pub(super) const REASON_OPERATOR: &str = "operator";
const REASON_PROBE_OK: &str = "probe ok";
const REASON_ELAPSED: &str = "cooldown elapsed";
const REASON_RECOVERED: &str = "recovered";
const REASON_SECRET_REPLACED: &str = "secret replaced";
const REASON_CLEARED: &str = "operator cleared the cooldown";
const REASON_PROBE_ASKED: &str = "operator asked for a probe";

/// Why a key is cooling down or being probed; picks the ladder whose rung bounds the pause
/// after an inconclusive probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cause {
    RateLimit,
    Billing,
    ServerErrors,
    /// Restored from a reason text this version does not recognise, or a replaced secret.
    Unknown,
}

impl Cause {
    /// Recovers the cause from a persisted reason written by this module.
    fn from_reason(reason: &str) -> Self {
        if reason.contains(REASON_RATE_LIMITED) {
            Self::RateLimit
        } else if reason.contains(REASON_BILLING) {
            Self::Billing
        } else if reason.contains(REASON_SERVER_ERRORS) || reason.contains(OLD_REASON_SERVER_ERRORS)
        {
            Self::ServerErrors
        } else {
            Self::Unknown
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Health {
    /// Takes traffic (subject to its in-flight cap and slow start).
    Active,
    /// Sits out until `until`; then it is probed before it takes traffic again.
    CoolingDown {
        until: EpochMs,
        cause: Cause,
    },
    /// Its cooldown ended; waits for a probe. Takes no traffic.
    Probing {
        cause: Cause,
        since: EpochMs,
    },
    Disabled(Disabled),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Disabled {
    /// The provider rejected the credential; it is probed again at `next_probe_at`.
    InvalidCredential { next_probe_at: EpochMs },
    /// Switched off by an operator; only an operator switches it on. Never probed.
    Operator,
}

impl Health {
    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Active => ACTIVE,
            Self::CoolingDown { .. } => COOLING_DOWN,
            Self::Probing { .. } => PROBING,
            Self::Disabled(_) => DISABLED,
        }
    }
}

/// Consecutive-failure counts. `rate` and `billing` are persisted; the server-error counts are
/// short-lived and start from zero after a restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Strikes {
    pub rate: u32,
    pub billing: u32,
    /// Server-error cooldowns since the last success (the server ladder's index).
    pub server: u32,
    /// Server errors / timeouts / connect errors in a row since the last success or cooldown.
    pub consecutive: u32,
}

/// What to announce after the machine moved: the state it left and the human reason.
#[derive(Debug)]
pub(super) struct Change {
    pub from: &'static str,
    pub reason: String,
}

/// What the machine needs to know besides its own state.
pub(super) struct Policy<'a> {
    pub config: &'a Config,
    pub max_concurrent: Option<u32>,
}

impl Policy<'_> {
    /// Where slow start ends: the key's own cap or the configured ramp cap, whichever is lower.
    fn ramp_limit(&self) -> u32 {
        self.max_concurrent
            .unwrap_or(u32::MAX)
            .min(self.config.ramp_cap)
    }
}

#[derive(Clone, Debug)]
pub(super) struct Machine {
    pub health: Health,
    /// Why the key is out of rotation (None while active).
    pub reason: Option<String>,
    pub strikes: Strikes,
    /// Slow-start in-flight cap; None once the key runs at full concurrency.
    pub ramp: Option<u32>,
    /// Bumped whenever the state label changes, so that outcomes of leases taken in an earlier
    /// period (before a cooldown, say) cannot penalise the key again.
    pub epoch: u64,
    pub updated_at: EpochMs,
    pub last_transition_at: Option<EpochMs>,
}

impl Machine {
    pub(super) fn new(health: Health, now: EpochMs) -> Self {
        let reason = match health {
            Health::Disabled(Disabled::Operator) => Some(REASON_OPERATOR.to_owned()),
            _ => None,
        };
        Self {
            health,
            reason,
            strikes: Strikes::default(),
            ramp: None,
            epoch: 0,
            updated_at: now,
            last_transition_at: None,
        }
    }

    /// Rebuilds the machine from what the store saved. A cooldown that ended while the gateway
    /// was down becomes Probing; a disabled key stays disabled.
    pub(super) fn restore(saved: &PersistedState, now: EpochMs) -> Self {
        let cause = saved
            .reason
            .as_deref()
            .map_or(Cause::Unknown, Cause::from_reason);
        let health = match saved.state.as_str() {
            ACTIVE => Health::Active,
            COOLING_DOWN => match saved.until {
                Some(until) if until > now => Health::CoolingDown { until, cause },
                _ => Health::Probing { cause, since: now },
            },
            PROBING => Health::Probing { cause, since: now },
            DISABLED if saved.reason.as_deref() == Some(REASON_OPERATOR) => {
                Health::Disabled(Disabled::Operator)
            }
            DISABLED => Health::Disabled(Disabled::InvalidCredential {
                next_probe_at: saved.until.unwrap_or(now),
            }),
            other => {
                tracing::warn!(
                    key = saved.key_id.as_str(),
                    state = other,
                    "unknown persisted key state; treating the key as active"
                );
                Health::Active
            }
        };
        let reason = match health {
            Health::Active => None,
            _ => saved.reason.clone(),
        };
        Self {
            health,
            reason,
            strikes: Strikes {
                rate: saved.rate_strikes,
                billing: saved.billing_strikes,
                ..Strikes::default()
            },
            ramp: None,
            epoch: 0,
            updated_at: saved.updated_at,
            last_transition_at: Some(saved.updated_at),
        }
    }

    pub(super) fn label(&self) -> &'static str {
        self.health.label()
    }

    /// The time attached to the state: a cooldown's end or a disabled key's next probe.
    pub(super) fn until(&self) -> Option<EpochMs> {
        match self.health {
            Health::CoolingDown { until, .. } => Some(until),
            Health::Disabled(Disabled::InvalidCredential { next_probe_at }) => Some(next_probe_at),
            _ => None,
        }
    }

    pub(super) fn is_operator_disabled(&self) -> bool {
        self.health == Health::Disabled(Disabled::Operator)
    }

    /// Feeds the outcome of a traffic attempt. `fresh` is false when the lease was taken before
    /// the key's last state change; such outcomes only count when they reveal a bad credential.
    ///
    /// `blame` says whose fault a provider-wide signal (overload, 5xx, timeout, broken
    /// connection) was: only one held against the credential counts towards its ejection. A
    /// verdict limited to some models (`Scope`) is the pool's holds' business, not the machine's.
    pub(super) fn on_outcome(
        &mut self,
        outcome: &Outcome,
        blame: Blame,
        fresh: bool,
        policy: &Policy<'_>,
        now: EpochMs,
    ) -> Option<Change> {
        if outcome.class == OutcomeClass::InvalidCredential {
            return self.disable_invalid(policy, now);
        }
        if !fresh || self.health != Health::Active {
            return None;
        }
        if outcome.scope != Scope::Credential {
            return None;
        }
        match outcome.class {
            OutcomeClass::Success => self.succeed(policy, now),
            OutcomeClass::RateLimited => {
                Some(self.cool(Cause::RateLimit, outcome.retry_at_ms, "", policy, now))
            }
            OutcomeClass::BillingExhausted => {
                Some(self.cool(Cause::Billing, outcome.retry_at_ms, "", policy, now))
            }
            class if class.is_provider_wide() => match blame {
                Blame::Credential => self.outlier_failure(policy, now),
                // Every credential reports it: the provider's trouble, held against none.
                Blame::Provider | Blame::Nobody => None,
            },
            // The client's own mistake says nothing about this key; a model refusal is held
            // per model by the pool. (401 was handled above.)
            _ => None,
        }
    }

    /// Feeds a probe's result. Only Probing and credential-disabled keys are probed; a result
    /// arriving after an operator (or anything else) moved the key elsewhere is ignored.
    pub(super) fn on_probe(
        &mut self,
        outcome: &Outcome,
        policy: &Policy<'_>,
        now: EpochMs,
    ) -> Option<Change> {
        const PROBE: &str = "probe: ";
        // Some(cause) while Probing; None for a key disabled as an invalid credential.
        let probing = match self.health {
            Health::Probing { cause, .. } => Some(cause),
            Health::Disabled(Disabled::InvalidCredential { .. }) => None,
            _ => return None,
        };
        match (outcome.class, probing) {
            (OutcomeClass::Success, _) => Some(self.activate(REASON_PROBE_OK, policy, now)),
            // For a disabled key too: the provider checks the credential before its limits,
            // so a 429 or a billing refusal means the credential is good again.
            (OutcomeClass::RateLimited, _) => {
                Some(self.cool(Cause::RateLimit, outcome.retry_at_ms, PROBE, policy, now))
            }
            (OutcomeClass::BillingExhausted, _) => {
                Some(self.cool(Cause::Billing, outcome.retry_at_ms, PROBE, policy, now))
            }
            (OutcomeClass::InvalidCredential, Some(_)) => self.disable_invalid(policy, now),
            (other, Some(cause)) => {
                let pause = self
                    .current_rung(cause, policy.config)
                    .min(PROBE_RETRY_MAX_MS);
                let reason = format!("probe failed ({})", other.as_str());
                let until = now + pause;
                Some(self.transition(Health::CoolingDown { until, cause }, reason, now))
            }
            // Still rejected, or inconclusive: stay disabled, ask again later. Not a change
            // of state, so nothing is announced.
            (_, None) => {
                let next_probe_at = now + policy.config.disabled_probe_every_ms;
                self.health = Health::Disabled(Disabled::InvalidCredential { next_probe_at });
                self.updated_at = now;
                None
            }
        }
    }

    /// Moves an ended cooldown to Probing.
    pub(super) fn expire(&mut self, now: EpochMs) -> Option<Change> {
        let Health::CoolingDown { until, cause } = self.health else {
            return None;
        };
        if until > now {
            return None;
        }
        // The state keeps the reason it went out for; the event says why it moved.
        let kept = self.reason.take();
        let change = self.transition(
            Health::Probing { cause, since: now },
            REASON_ELAPSED.to_owned(),
            now,
        );
        self.reason = kept;
        Some(change)
    }

    /// The operator's switch. Switching on brings any disabled key back (in slow start);
    /// switching on a key that is not disabled changes nothing.
    pub(super) fn set_operator(
        &mut self,
        enabled: bool,
        policy: &Policy<'_>,
        now: EpochMs,
    ) -> Option<Change> {
        match (enabled, self.health) {
            (false, Health::Disabled(Disabled::Operator)) => None,
            (false, _) => Some(self.transition(
                Health::Disabled(Disabled::Operator),
                REASON_OPERATOR.to_owned(),
                now,
            )),
            (true, Health::Disabled(_)) => Some(self.activate(REASON_OPERATOR, policy, now)),
            (true, _) => None,
        }
    }

    /// The operator's "clear cooldown": a cooling or probing key returns to Active (in slow
    /// start) with its strikes forgotten, as if the provider had never complained. Other
    /// states are left alone: a disabled key is the switch's business.
    pub(super) fn clear_cooldown(&mut self, policy: &Policy<'_>, now: EpochMs) -> Option<Change> {
        match self.health {
            Health::CoolingDown { .. } | Health::Probing { .. } => {
                self.strikes = Strikes::default();
                Some(self.activate(REASON_CLEARED, policy, now))
            }
            _ => None,
        }
    }

    /// The operator's "probe now" for a cooling key: end the wait and probe at once.
    pub(super) fn probe_asked(&mut self, now: EpochMs) -> Option<Change> {
        let Health::CoolingDown { cause, .. } = self.health else {
            return None;
        };
        let kept = self.reason.take();
        let change = self.transition(
            Health::Probing { cause, since: now },
            REASON_PROBE_ASKED.to_owned(),
            now,
        );
        self.reason = kept;
        Some(change)
    }

    /// A new secret for a key whose old one was rejected deserves a probe now.
    pub(super) fn on_secret_replaced(&mut self, now: EpochMs) -> Option<Change> {
        match self.health {
            Health::Disabled(Disabled::InvalidCredential { .. }) => Some(self.transition(
                Health::Probing {
                    cause: Cause::Unknown,
                    since: now,
                },
                REASON_SECRET_REPLACED.to_owned(),
                now,
            )),
            _ => None,
        }
    }

    // === transitions ===

    fn succeed(&mut self, policy: &Policy<'_>, now: EpochMs) -> Option<Change> {
        let had_persisted_strikes = self.strikes.rate > 0 || self.strikes.billing > 0;
        self.strikes = Strikes::default();
        if let Some(cap) = self.ramp {
            let doubled = cap.saturating_mul(2);
            self.ramp = (doubled < policy.ramp_limit()).then_some(doubled);
        }
        if !had_persisted_strikes {
            return None;
        }
        // Not a change of state, but the persisted strike counts changed; announce it so the
        // store keeps an exact copy. The epoch stays: leases of this period are still fresh.
        self.updated_at = now;
        self.last_transition_at = Some(now);
        Some(Change {
            from: ACTIVE,
            reason: REASON_RECOVERED.to_owned(),
        })
    }

    /// Cools the key down on the rate-limit or the billing ladder (each with its own strikes);
    /// the provider's `retry_at` wins over the ladder.
    fn cool(
        &mut self,
        cause: Cause,
        retry_at: Option<EpochMs>,
        prefix: &str,
        policy: &Policy<'_>,
        now: EpochMs,
    ) -> Change {
        let (ladder, strikes, label) = if cause == Cause::Billing {
            (
                &policy.config.billing_ladder_ms,
                &mut self.strikes.billing,
                REASON_BILLING,
            )
        } else {
            (
                &policy.config.rate_limit_ladder_ms,
                &mut self.strikes.rate,
                REASON_RATE_LIMITED,
            )
        };
        let (until, detail) = pause(retry_at, ladder, *strikes, policy.config.jitter, now);
        *strikes = strikes.saturating_add(1);
        let reason = format!("{prefix}{label}, {detail}");
        self.transition(Health::CoolingDown { until, cause }, reason, now)
    }

    /// A failure held against the key while its peers succeed (outlier detection): this many
    /// in a row eject it for the server ladder's next rung, which grows with each ejection until
    /// a real success resets it.
    fn outlier_failure(&mut self, policy: &Policy<'_>, now: EpochMs) -> Option<Change> {
        let threshold = policy.config.server_error_strikes;
        self.strikes.consecutive = self.strikes.consecutive.saturating_add(1);
        if self.strikes.consecutive < threshold {
            return None;
        }
        let config = policy.config;
        let pause = cooldown::jittered(
            cooldown::next_rung(&config.server_error_ladder_ms, self.strikes.server),
            config.jitter,
        );
        let count = self.strikes.consecutive;
        self.strikes.server = self.strikes.server.saturating_add(1);
        self.strikes.consecutive = 0;
        let to = Health::CoolingDown {
            until: now + pause,
            cause: Cause::ServerErrors,
        };
        Some(self.transition(to, format!("{count} {REASON_SERVER_ERRORS}"), now))
    }

    /// Ejects the key at once: its success rate is far below its peers'.
    pub(super) fn eject(&mut self, policy: &Policy<'_>, now: EpochMs) -> Option<Change> {
        if self.health != Health::Active {
            return None;
        }
        let config = policy.config;
        let pause = cooldown::jittered(
            cooldown::next_rung(&config.server_error_ladder_ms, self.strikes.server),
            config.jitter,
        );
        self.strikes.server = self.strikes.server.saturating_add(1);
        self.strikes.consecutive = 0;
        let to = Health::CoolingDown {
            until: now + pause,
            cause: Cause::ServerErrors,
        };
        let reason = format!("{REASON_SERVER_ERRORS}: success rate far below its peers'");
        Some(self.transition(to, reason, now))
    }

    fn disable_invalid(&mut self, policy: &Policy<'_>, now: EpochMs) -> Option<Change> {
        if matches!(self.health, Health::Disabled(_)) {
            // Already out; an operator's switch in particular is never overridden.
            return None;
        }
        let next_probe_at = now + policy.config.disabled_probe_every_ms;
        let to = Health::Disabled(Disabled::InvalidCredential { next_probe_at });
        Some(self.transition(to, REASON_INVALID.to_owned(), now))
    }

    /// Back to Active in slow start. Strikes stay until a real success.
    fn activate(&mut self, reason: &str, policy: &Policy<'_>, now: EpochMs) -> Change {
        self.ramp = (policy.ramp_limit() > 1).then_some(1);
        self.transition(Health::Active, reason.to_owned(), now)
    }

    fn current_rung(&self, cause: Cause, config: &Config) -> i64 {
        match cause {
            Cause::RateLimit => {
                cooldown::current_rung(&config.rate_limit_ladder_ms, self.strikes.rate)
            }
            Cause::Billing => {
                cooldown::current_rung(&config.billing_ladder_ms, self.strikes.billing)
            }
            Cause::ServerErrors => {
                cooldown::current_rung(&config.server_error_ladder_ms, self.strikes.server)
            }
            Cause::Unknown => PROBE_RETRY_MAX_MS,
        }
    }

    fn transition(&mut self, to: Health, reason: String, now: EpochMs) -> Change {
        let from = self.health.label();
        self.health = to;
        self.reason = match to {
            Health::Active => None,
            _ => Some(reason.clone()),
        };
        if to != Health::Active {
            // Slow start restarts from 1 when the key comes back.
            self.ramp = None;
        }
        if from != to.label() {
            self.epoch = self.epoch.wrapping_add(1);
        }
        self.updated_at = now;
        self.last_transition_at = Some(now);
        Change { from, reason }
    }
}

/// The provider's word wins over the ladder (and gets no jitter).
fn pause(
    retry_at: Option<EpochMs>,
    ladder: &[i64],
    strikes: u32,
    jitter: f64,
    now: EpochMs,
) -> (EpochMs, String) {
    match retry_at {
        Some(at) => {
            let until = at.max(now);
            (
                until,
                format!("retry-after {}", cooldown::human(until - now)),
            )
        }
        None => {
            let pause = cooldown::jittered(cooldown::next_rung(ladder, strikes), jitter);
            (now + pause, format!("backoff {}", cooldown::human(pause)))
        }
    }
}
