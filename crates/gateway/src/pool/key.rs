//! One key as the pool holds it: what the operator configured (`KeySpec`), its health
//! machine, its in-flight count and its counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::caps::{Caps, Used};
use super::config::Config;
use super::forecast::Trends;
use super::holds::Holds;
use super::reliability::Reliability;
use super::state::{Health, Machine, Policy};
use super::{HoldView, KeySpec, KeyView, PersistedState, SkipReason};
use crate::types::{EpochMs, KeyId, KeyKind, OutcomeClass, RateLimitSnapshot, Secret};

#[derive(Debug, Default)]
pub(super) struct Stats {
    /// Leases handed out.
    pub requests: u64,
    /// Reported outcomes that were the key's or the provider's trouble (not success, not a
    /// client error).
    pub errors: u64,
    pub last_outcome: Option<OutcomeClass>,
    /// The last outcome counted in `errors`, and when.
    pub last_error: Option<(OutcomeClass, EpochMs)>,
    pub last_ratelimit: Option<RateLimitSnapshot>,
}

#[derive(Debug)]
pub(super) struct Key {
    pub id: KeyId,
    pub name: Arc<str>,
    pub kind: KeyKind,
    pub secret: Arc<Secret<String>>,
    pub priority: u32,
    pub weight: u32,
    pub max_concurrent: Option<u32>,
    /// The operator's group label; when set it overrides the learned organisation.
    pub group: Option<Arc<str>>,
    /// The organisation the provider says the key bills to (`anthropic-organization-id`).
    pub organization: Option<Arc<str>>,
    pub caps: Caps,
    pub used: Used,
    /// When the key's prepaid credits expire: among equally good keys the one expiring first
    /// is used first.
    pub credits_expire_at: Option<EpochMs>,
    /// When the OAuth access token expires, if known.
    pub token_expires_at: Option<EpochMs>,
    /// Models this key is held out for, while it serves others.
    pub holds: Holds,
    pub reliability: Reliability,
    /// Subscription windows' first readings in their current period.
    pub trends: Trends,
    /// Distinguishes this key from an earlier one with the same id (removed, then added
    /// again), so a late report of an old lease does not land on the new key.
    pub incarnation: u64,
    /// Shared with every lease of this key; a lease's `Drop` decrements it without the lock.
    /// Only incremented under the pool lock, after the cap was checked.
    pub in_flight: Arc<AtomicU32>,
    /// Sequence number of the probe ticket in flight for this key, 0 when none. Shared with
    /// the ticket, whose `Drop` clears it (compare-and-swap on its own number).
    pub probe: Arc<AtomicU64>,
    pub machine: Machine,
    pub stats: Stats,
    /// Smooth weighted round-robin's running weight (Priority strategy).
    pub swrr_current: i64,
}

impl Key {
    pub(super) fn new(spec: KeySpec, incarnation: u64, now: EpochMs) -> Self {
        let health = if spec.enabled {
            Health::Active
        } else {
            Health::Disabled(super::state::Disabled::Operator)
        };
        Self {
            id: spec.id,
            name: Arc::from(spec.name),
            kind: spec.kind,
            secret: Arc::new(spec.secret),
            priority: spec.priority,
            weight: spec.weight.max(1),
            max_concurrent: spec.max_concurrent,
            group: spec.group.map(Arc::from),
            organization: None,
            used: Used::new(&spec.caps, now),
            caps: spec.caps,
            credits_expire_at: spec.credits_expire_at,
            token_expires_at: spec.token_expires_at,
            holds: Holds::default(),
            reliability: Reliability::default(),
            trends: Trends::default(),
            incarnation,
            in_flight: Arc::new(AtomicU32::new(0)),
            probe: Arc::new(AtomicU64::new(0)),
            machine: Machine::new(health, now),
            stats: Stats::default(),
            swrr_current: 0,
        }
    }

    /// Takes the operator-edited fields of `spec` (not `enabled`, which goes through the state
    /// machine). Returns whether the secret changed.
    pub(super) fn apply_spec(&mut self, spec: KeySpec) -> bool {
        let secret_changed = self.secret.expose() != spec.secret.expose();
        if secret_changed {
            self.secret = Arc::new(spec.secret);
        }
        if *self.name != *spec.name {
            self.name = Arc::from(spec.name);
        }
        self.kind = spec.kind;
        self.priority = spec.priority;
        self.weight = spec.weight.max(1);
        self.max_concurrent = spec.max_concurrent;
        self.group = spec.group.map(Arc::from);
        self.caps = spec.caps;
        self.credits_expire_at = spec.credits_expire_at;
        self.token_expires_at = spec.token_expires_at;
        secret_changed
    }

    pub(super) fn policy<'a>(&self, config: &'a Config) -> Policy<'a> {
        Policy {
            config,
            max_concurrent: self.max_concurrent,
        }
    }

    pub(super) fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    pub(super) fn probe_in_flight(&self) -> bool {
        self.probe.load(Ordering::Acquire) != 0
    }

    /// The in-flight cap in force: the key's own cap and the slow-start cap, the lower one.
    pub(super) fn cap(&self) -> Option<u32> {
        match (self.max_concurrent, self.machine.ramp) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(super) fn enabled(&self) -> bool {
        !self.machine.is_operator_disabled()
    }

    /// The organisation the key counts as: the operator's group, else the learned one.
    pub(super) fn org(&self) -> Option<&Arc<str>> {
        self.group.as_ref().or(self.organization.as_ref())
    }

    /// Why this key cannot take an attempt on `model` now; None when it can.
    pub(super) fn skip_reason(
        &mut self,
        exclude: &[KeyId],
        model: Option<&str>,
        now: EpochMs,
    ) -> Option<SkipReason> {
        match self.machine.health {
            Health::Disabled(_) => return Some(SkipReason::Disabled),
            Health::CoolingDown { until, .. } => return Some(SkipReason::CoolingDown { until }),
            Health::Probing { .. } => return Some(SkipReason::Probing),
            Health::Active => {}
        }
        if exclude.contains(&self.id) {
            return Some(SkipReason::Excluded);
        }
        if !self.holds.is_empty()
            && let Some(until) = self.holds.until(model, now)
        {
            return Some(SkipReason::ModelHeld { until });
        }
        if let Some(cap) = self.cap()
            && self.in_flight() >= cap
        {
            return Some(SkipReason::Full);
        }
        self.used
            .blocked_until(&self.caps, now)
            .map(|until| SkipReason::Capped { until })
    }

    pub(super) fn persisted(&self) -> PersistedState {
        PersistedState {
            key_id: self.id.clone(),
            state: self.machine.label().to_owned(),
            reason: self.machine.reason.clone(),
            until: self.machine.until(),
            rate_strikes: self.machine.strikes.rate,
            billing_strikes: self.machine.strikes.billing,
            updated_at: self.machine.updated_at,
        }
    }

    pub(super) fn view(&self, now: EpochMs) -> KeyView {
        let (cooldown_until, next_probe_at) = match self.machine.health {
            Health::CoolingDown { until, .. } => (Some(until), None),
            Health::Disabled(super::state::Disabled::InvalidCredential { next_probe_at }) => {
                (None, Some(next_probe_at))
            }
            _ => (None, None),
        };
        KeyView {
            id: self.id.clone(),
            masked: crate::types::mask_secret(self.secret.expose()),
            name: self.name.to_string(),
            kind: self.kind,
            group: self.group.as_deref().map(str::to_owned),
            priority: self.priority,
            weight: self.weight,
            max_concurrent: self.max_concurrent,
            enabled: self.enabled(),
            state: self.machine.label(),
            reason: self.machine.reason.clone(),
            cooldown_until,
            next_probe_at,
            in_flight: self.in_flight(),
            requests: self.stats.requests,
            errors: self.stats.errors,
            last_outcome: self.stats.last_outcome,
            last_error: self.stats.last_error,
            last_ratelimit: self.stats.last_ratelimit,
            ramp_cap: self.machine.ramp,
            last_transition_at: self.machine.last_transition_at,
            organization: self.org().map(|o| o.to_string()),
            organization_learned: self.organization.as_deref().map(str::to_owned),
            holds: self
                .holds
                .live(now)
                .map(|h| HoldView {
                    models: h.models.label(),
                    until: h.until,
                    reason: h.reason.clone(),
                })
                .collect(),
            caps: self.caps,
            used_today: self.used.today(),
            credits_expire_at: self.credits_expire_at,
            success_rate: self.reliability.success,
            spent_at: self
                .stats
                .last_ratelimit
                .and_then(|r| r.subscription)
                .map(|sub| {
                    sub.windows()
                        .filter_map(|(name, w)| {
                            let at = self.trends.spent_at(name, w.utilization?, now)?;
                            Some((name, at))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}
