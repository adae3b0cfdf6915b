//! The pool: the keys of one provider pool, each with its health state machine, in-flight
//! count and counters; the selection strategies; sticky affinity; cooldown ladders; probe
//! scheduling; and the read views behind `/status` and the panel.
//!
//! Pure domain logic: no HTTP, no store, no clock. Every method that depends on time takes
//! `now: EpochMs`, so tests drive the state machine with explicit instants.
//!
//! - `mod.rs` — the [`KeyPool`] handle and the types its callers see.
//! - `config.rs` — [`Config`] and [`Strategy`].
//! - `state.rs` — one key's state machine (Active, CoolingDown, Probing, Disabled).
//! - `cooldown.rs` — ladders and jitter.
//! - `select.rs` — round-robin, headroom, priority/weight.
//! - `affinity.rs` — session → key pins.
//! - `key.rs` — one key's record; `lease.rs` — the [`Lease`] and [`ProbeTicket`] guards.
//!
//! Callers: the relay (`acquire`, `report`), the prober task (`due_probes`, `probe_finished`,
//! `next_wake`, `subscribe`), the app and admin (`upsert_key`, `remove_key`, `set_enabled`,
//! `snapshot`, `persisted`, `has_usable_key`). Every state change is logged, and published
//! as a [`Transition`] carrying the key's full [`PersistedState`] for the store and the panel.

mod affinity;
mod caps;
mod config;
mod cooldown;
mod forecast;
mod holds;
mod key;
mod lease;
mod reliability;
mod select;
mod state;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio::sync::broadcast;

pub use self::caps::Caps;
pub use self::config::{Config, Strategy};
pub use self::lease::{Lease, ProbeTicket};
pub use self::reliability::Blame;

use self::affinity::{Affinity, MAX_SESSIONS};
use self::holds::{MODEL_DENIED_MS, Models};
use self::key::Key;
use self::state::{Cause, Change, Disabled, Health, Machine};
use crate::types::{
    EpochMs, KeyId, KeyKind, Outcome, OutcomeClass, RateLimitSnapshot, Scope, Secret, WindowStatus,
};

/// Transitions buffered for slow subscribers; one that lags re-syncs with `persisted()`.
const TRANSITION_BUFFER: usize = 1024;
/// A probing key counts as back this soon: the prober checks it at once.
const PROBE_SOON_MS: i64 = 1_000;
/// A transition that keeps a key out longer than this must be on disk before the request
/// that caused it is answered: a crash right after must not bring the key back.
const DURABLE_AFTER_MS: i64 = 60_000;
/// On a retry, keys whose success rate is within this of the best count as equally likely.
const RELIABILITY_SLACK: f64 = 0.05;

/// One key as configured by the operator.
#[derive(Clone, Debug)]
pub struct KeySpec {
    pub id: KeyId,
    pub name: String,
    pub kind: KeyKind,
    pub secret: Secret<String>,
    /// Lower is preferred (Priority strategy).
    pub priority: u32,
    /// Share within a priority tier; at least 1.
    pub weight: u32,
    /// Most attempts in flight at once on this key; None for no cap.
    pub max_concurrent: Option<u32>,
    pub group: Option<String>,
    /// False: switched off by the operator.
    pub enabled: bool,
    /// Burst limit and daily quota.
    pub caps: Caps,
    /// When the key's prepaid credits expire.
    pub credits_expire_at: Option<EpochMs>,
    /// When an OAuth key's access token (the secret) expires, if known.
    pub token_expires_at: Option<EpochMs>,
}

/// What the relay asks for.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pick<'a> {
    /// The conversation, for sticky affinity.
    pub session: Option<&'a str>,
    /// Keys already tried for this request.
    pub exclude: &'a [KeyId],
    /// Groups to stay away from if any other key can serve: a provider's rate limits are per
    /// organisation, so after a 429 the keys billing to the same one are likely limited too.
    pub avoid_groups: &'a [Arc<str>],
    /// The model the request names: keys held out for it are skipped.
    pub model: Option<&'a str>,
}

/// A key passed over by `acquire`, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    pub key_id: KeyId,
    pub name: Arc<str>,
    pub reason: SkipReason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    CoolingDown {
        until: EpochMs,
    },
    Probing,
    Disabled,
    /// At its in-flight cap (its own, or the slow-start cap).
    Full,
    /// Already tried in this request.
    Excluded,
    /// Held out for the request's model (a 403 for it, a spent model window).
    ModelHeld {
        until: EpochMs,
    },
    /// At its burst limit or daily quota.
    Capped {
        until: EpochMs,
    },
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CoolingDown { .. } => "cooling_down",
            Self::Probing => "probing",
            Self::Disabled => "disabled",
            Self::Full => "full",
            Self::Excluded => "excluded",
            Self::ModelHeld { .. } => "model_held",
            Self::Capped { .. } => "capped",
        }
    }
}

/// Why no key could serve: what the soonest key to return is out for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shortage {
    /// Limits: a 429 or billing cooldown, a model hold, a cap, a full key.
    RateLimited,
    /// Failures: keys ejected or being probed after errors.
    Failing,
    /// Nothing comes back by itself: every key is disabled (or was tried).
    Disabled,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Every key is cooling down, probing, disabled, full or excluded. `retry_at` is the
    /// soonest end of a cooldown (None when no key is cooling down); `skipped` says why each
    /// key was passed over.
    #[error("no key available ({} skipped)", skipped.len())]
    NoKeyAvailable {
        retry_at: Option<EpochMs>,
        skipped: Vec<Skip>,
        shortage: Shortage,
    },
}

impl Error {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NoKeyAvailable { .. } => "no_key_available",
        }
    }
}

/// How to check a key now, as the operator asked (`KeyPool::probe_now`).
#[derive(Debug)]
pub enum ProbeNow {
    /// The key is out of rotation: call the provider with this ticket and feed the answer to
    /// `probe_finished`.
    Ticket(ProbeTicket),
    /// The key is active: make a real call with this lease and `report` it, so a failure counts
    /// like any other.
    Lease(Lease),
}

/// Why `probe_now` would not check a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProbeRefused {
    #[error("no such credential")]
    Unknown,
    #[error("the credential is disabled by an operator; enable it first")]
    OperatorDisabled,
    #[error("a probe of this credential is already running")]
    Busy,
}

/// A key for `/status` and the panel. Holds no secret; masking one is the caller's job.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyView {
    pub id: KeyId,
    /// The secret's masked form (vendor prefix and last four characters).
    pub masked: String,
    pub name: String,
    pub kind: KeyKind,
    pub group: Option<String>,
    pub priority: u32,
    pub weight: u32,
    pub max_concurrent: Option<u32>,
    pub enabled: bool,
    /// "active" | "cooling_down" | "probing" | "disabled".
    pub state: &'static str,
    /// Why the key is out of rotation (None while active).
    pub reason: Option<String>,
    pub cooldown_until: Option<EpochMs>,
    /// When a key disabled for an invalid credential is probed next.
    pub next_probe_at: Option<EpochMs>,
    pub in_flight: u32,
    pub requests: u64,
    pub errors: u64,
    pub last_outcome: Option<OutcomeClass>,
    /// The last failure that was the key's or the provider's trouble, and when.
    pub last_error: Option<(OutcomeClass, EpochMs)>,
    pub last_ratelimit: Option<RateLimitSnapshot>,
    /// Slow-start in-flight cap while the key ramps up after returning.
    pub ramp_cap: Option<u32>,
    pub last_transition_at: Option<EpochMs>,
    /// The organisation the key counts as (the operator's group, else the learned one).
    pub organization: Option<String>,
    /// The organisation the provider reported.
    pub organization_learned: Option<String>,
    /// Models the key is held out for now.
    pub holds: Vec<HoldView>,
    pub caps: Caps,
    /// Requests and tokens counted today (UTC) against the daily quota.
    pub used_today: (u64, u64),
    pub credits_expire_at: Option<EpochMs>,
    /// Recent success rate, 0.0–1.0.
    pub success_rate: f64,
    /// For each subscription window filling up: when it will be spent at the current rate
    /// (only those that will be spent before their reset).
    pub spent_at: Vec<(crate::types::WindowName, EpochMs)>,
}

/// A per-model hold, for `/status` and the panel.
#[derive(Clone, Debug, PartialEq)]
pub struct HoldView {
    pub models: String,
    pub until: EpochMs,
    pub reason: String,
}

/// What `report` found.
#[derive(Debug)]
pub struct Reported {
    /// Whose trouble the outcome was; a retry after `Blame::Provider` is what a retry budget
    /// bounds.
    pub blame: Blame,
    /// The key's new state when it must be saved before the request is answered (disabled,
    /// or out for longer than a minute).
    pub durable: Option<PersistedState>,
}

/// A key's health as the store keeps it: enough to restore it exactly after a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistedState {
    pub key_id: KeyId,
    /// "active" | "cooling_down" | "probing" | "disabled".
    pub state: String,
    /// Why the key is out ("operator" marks an operator's switch).
    pub reason: Option<String>,
    /// Cooling down: the cooldown's end. Disabled for a bad credential: the next probe.
    pub until: Option<EpochMs>,
    pub rate_strikes: u32,
    pub billing_strikes: u32,
    pub updated_at: EpochMs,
}

/// One change of a key's state, as published to subscribers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub key_id: KeyId,
    pub name: String,
    pub from: &'static str,
    pub to: &'static str,
    pub reason: String,
    pub until: Option<EpochMs>,
    pub at: EpochMs,
    pub state: PersistedState,
}

/// The pool of one provider's keys. Cheap to clone: a handle around shared state.
#[derive(Clone)]
pub struct KeyPool {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    /// Every read and write of the pool's state. Held only for short synchronous sections and
    /// never across an `.await`; lease and probe-ticket drops do not take it.
    state: Mutex<PoolState>,
    events: broadcast::Sender<Transition>,
}

struct PoolState {
    keys: Vec<Key>,
    index: HashMap<KeyId, usize>,
    /// Round-robin position (RoundRobin, and Headroom's tie-break).
    cursor: usize,
    affinity: Affinity,
    /// Organisations that answered 429 lately, until their reset: their keys come last.
    org_limited: Vec<(Arc<str>, EpochMs)>,
    /// Lower bound of the earliest cooldown end: `acquire` scans for ended cooldowns only once
    /// this has passed.
    next_expiry: Option<EpochMs>,
    next_incarnation: u64,
    next_probe_seq: u64,
    /// Reused per `acquire` for the eligibility marks, so selection does not allocate.
    eligible: Vec<bool>,
    /// Reused per `acquire`: the eligible keys that are also preferred.
    preferred: Vec<bool>,
}

impl std::fmt::Debug for KeyPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPool")
            .field("keys", &self.len())
            .field("strategy", &self.inner.config.strategy)
            .finish_non_exhaustive()
    }
}

impl KeyPool {
    /// Builds the pool from the configured keys and, where the store has one, each key's saved
    /// state. Saved states of unknown keys are ignored; a saved cooldown that has ended becomes
    /// Probing; a key whose spec or saved state says operator-disabled stays disabled.
    pub fn new(
        config: Config,
        keys: Vec<KeySpec>,
        persisted: Vec<PersistedState>,
        now: EpochMs,
    ) -> Self {
        let config = config.normalized();
        let mut state = PoolState {
            keys: Vec::with_capacity(keys.len()),
            index: HashMap::with_capacity(keys.len()),
            cursor: 0,
            affinity: Affinity::new(config.sticky_ttl_ms, MAX_SESSIONS),
            org_limited: Vec::new(),
            next_expiry: None,
            next_incarnation: 1,
            next_probe_seq: 1,
            eligible: Vec::with_capacity(keys.len()),
            preferred: Vec::with_capacity(keys.len()),
        };
        for spec in keys {
            match state.index.get(&spec.id) {
                // A later duplicate replaces the earlier spec.
                Some(&i) => {
                    state.keys[i].apply_spec(spec);
                }
                None => state.insert(spec, now),
            }
        }
        for saved in persisted {
            let Some(&i) = state.index.get(&saved.key_id) else {
                continue;
            };
            let key = &mut state.keys[i];
            let operator_off = key.machine.is_operator_disabled();
            key.machine = Machine::restore(&saved, now);
            if operator_off {
                key.machine.health = Health::Disabled(Disabled::Operator);
                key.machine.reason = Some(state::REASON_OPERATOR.to_owned());
            }
        }
        state.recompute_expiry();
        let (events, _) = broadcast::channel(TRANSITION_BUFFER);
        Self {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(state),
                events,
            }),
        }
    }

    /// Checks out a key for one attempt. Eligible: active, below its in-flight cap (own and
    /// slow-start), not excluded. With `sticky` and a session, the session's pinned key is
    /// used while eligible; while it is only temporarily out (cooling, probing, full,
    /// excluded) another key serves without moving the pin; a disabled or removed pinned key
    /// is re-pinned to the new choice.
    ///
    /// `Skip`s list every ineligible key of the pool.
    pub fn acquire(&self, pick: &Pick<'_>, now: EpochMs) -> Result<Lease, Error> {
        let inner = &*self.inner;
        let mut guard = inner.state.lock();
        let st = &mut *guard;
        st.expire_due(&inner.events, now);
        st.org_limited.retain(|(_, until)| *until > now);

        let mut eligible = std::mem::take(&mut st.eligible);
        eligible.clear();
        let mut skipped = Vec::new();
        for key in &mut st.keys {
            let reason = key.skip_reason(pick.exclude, pick.model, now);
            eligible.push(reason.is_none());
            if let Some(reason) = reason {
                skipped.push(Skip {
                    key_id: key.id.clone(),
                    name: Arc::clone(&key.name),
                    reason,
                });
            }
        }

        let session = pick
            .session
            .filter(|_| inner.config.sticky)
            .map(|s| st.affinity.session(s));
        let pinned = session.map(|h| st.pinned(h, &eligible, now));
        let mut preferred = std::mem::take(&mut st.preferred);
        preferred.clear();
        preferred.extend_from_slice(&eligible);
        st.prefer(&mut preferred, pick, pinned, inner.config.strategy);
        let chosen = match pinned {
            Some(Pinned::Use(i)) => Some(i),
            _ => select::choose(
                inner.config.strategy,
                &mut st.keys,
                &preferred,
                &mut st.cursor,
                pick.model,
                now,
            ),
        };
        st.eligible = eligible;
        st.preferred = preferred;

        let Some(i) = chosen else {
            let (retry_at, shortage) = st.shortage(&skipped, now);
            return Err(Error::NoKeyAvailable {
                retry_at,
                skipped,
                shortage,
            });
        };
        if let (Some(h), Some(Pinned::Repin)) = (session, pinned) {
            st.affinity.pin(h, st.keys[i].id.clone(), now);
        }

        let key = &mut st.keys[i];
        key.in_flight.fetch_add(1, Ordering::AcqRel);
        key.stats.requests += 1;
        key.used.take(&key.caps);
        Ok(Lease {
            key_id: key.id.clone(),
            name: Arc::clone(&key.name),
            kind: key.kind,
            group: key.org().cloned(),
            secret: Arc::clone(&key.secret),
            skipped,
            moved: matches!(pinned, Some(Pinned::Keep(_))),
            counts_tokens: key.caps.daily_tokens.is_some(),
            token_expires_at: key.token_expires_at,
            organization: key.organization.clone(),
            incarnation: key.incarnation,
            epoch: key.machine.epoch,
            in_flight: Arc::clone(&key.in_flight),
            reported: AtomicBool::new(false),
        })
    }

    /// A lease on one named key whatever its health, for calls only that key can make (a
    /// batch lives in the workspace of the key that created it). None if the key is unknown.
    /// Its outcome is reported like any other, so a 401 still disables the key.
    pub fn lease_key(&self, id: &KeyId) -> Option<Lease> {
        let mut guard = self.inner.state.lock();
        let key = guard.keys.iter_mut().find(|k| &k.id == id)?;
        key.in_flight.fetch_add(1, Ordering::AcqRel);
        key.stats.requests += 1;
        Some(Lease {
            key_id: key.id.clone(),
            name: Arc::clone(&key.name),
            kind: key.kind,
            group: key.org().cloned(),
            secret: Arc::clone(&key.secret),
            skipped: Vec::new(),
            moved: false,
            counts_tokens: key.caps.daily_tokens.is_some(),
            token_expires_at: key.token_expires_at,
            organization: key.organization.clone(),
            incarnation: key.incarnation,
            epoch: key.machine.epoch,
            in_flight: Arc::clone(&key.in_flight),
            reported: AtomicBool::new(false),
        })
    }

    /// Feeds a lease's outcome to its key's state machine and counters, without a model (see
    /// [`KeyPool::report_for`]).
    pub fn report(&self, lease: &Lease, outcome: &Outcome, now: EpochMs) -> Reported {
        self.report_for(lease, outcome, None, now)
    }

    /// Feeds a lease's outcome on a request for `model` to its key's state machine and
    /// counters, and says whose trouble it was. Once per lease; later calls, and reports for a
    /// key removed since, are ignored (and blame nobody). Does not free the in-flight slot
    /// (dropping the lease does).
    ///
    /// Provider-wide signals (overload, 5xx, timeouts, broken connections) are held against
    /// the key only while some other key succeeds (outlier detection): then a run of them, or
    /// a success rate far below its peers', ejects it for a growing interval. An outcome scoped
    /// to some models holds the key out for those models only.
    pub fn report_for(
        &self,
        lease: &Lease,
        outcome: &Outcome,
        model: Option<&str>,
        now: EpochMs,
    ) -> Reported {
        let nothing = Reported {
            blame: Blame::Nobody,
            durable: None,
        };
        if !lease.claim_report() {
            return nothing;
        }
        let inner = &*self.inner;
        let mut guard = inner.state.lock();
        let st = &mut *guard;
        let Some(i) = st.find(&lease.key_id, lease.incarnation) else {
            return nothing;
        };
        let blame = st.blame(i, outcome.class, now);
        let key = &mut st.keys[i];
        key.stats.last_outcome = Some(outcome.class);
        if !matches!(
            outcome.class,
            OutcomeClass::Success | OutcomeClass::ClientError
        ) {
            key.stats.errors += 1;
            key.stats.last_error = Some((outcome.class, now));
        }
        if let Some(snapshot) = outcome.ratelimit {
            key.stats.last_ratelimit = Some(snapshot);
            if let Some(subscription) = &snapshot.subscription {
                key.trends.observe(subscription, now);
            }
            hold_spent_windows(key, &snapshot, now);
        }
        hold_scoped(key, outcome, model, now);
        if outcome.class == OutcomeClass::Success {
            st.clear_org_limit(i);
        } else if outcome.class == OutcomeClass::RateLimited
            && outcome.scope == Scope::Credential
            && let Some(org) = key.org().cloned()
        {
            let until = outcome
                .retry_at_ms
                .unwrap_or(now + inner.config.rate_limit_ladder_ms[0]);
            st.org_limited.retain(|(o, _)| *o != org);
            st.org_limited.push((org, until));
        }
        let key = &mut st.keys[i];
        let fresh = lease.epoch == key.machine.epoch;
        let policy = key.policy(&inner.config);
        let mut change = key.machine.on_outcome(outcome, blame, fresh, &policy, now);
        if change.is_none()
            && blame == Blame::Credential
            && outcome.class.is_provider_wide()
            && fresh
        {
            let peer_mean =
                reliability::peer_mean(st.keys.iter().map(|k| &k.reliability).enumerate(), i);
            let key = &mut st.keys[i];
            if key.reliability.is_outlier(peer_mean) {
                change = key.machine.eject(&key.policy(&inner.config), now);
            }
        }
        let key = &st.keys[i];
        let long = match key.machine.health {
            Health::Disabled(_) => true,
            Health::CoolingDown { until, .. } => until - now > DURABLE_AFTER_MS,
            _ => false,
        };
        let durable = (change.is_some() && long).then(|| key.persisted());
        st.announce(i, change, &inner.events, now);
        Reported { blame, durable }
    }

    /// Notes the organisation the provider says a key bills to (`anthropic-organization-id`).
    /// Keys of one organisation share its rate limits and prompt cache.
    pub fn note_organization(&self, lease: &Lease, organization: &str) {
        let mut guard = self.inner.state.lock();
        let Some(i) = guard.find(&lease.key_id, lease.incarnation) else {
            return;
        };
        let key = &mut guard.keys[i];
        if key.organization.as_deref() != Some(organization) {
            key.organization = Some(Arc::from(organization));
        }
    }

    /// A key's secret as it is now (after a refresh, newer than an older lease's).
    pub fn secret(&self, key_id: &KeyId) -> Option<Arc<Secret<String>>> {
        let guard = self.inner.state.lock();
        let &i = guard.index.get(key_id)?;
        Some(Arc::clone(&guard.keys[i].secret))
    }

    /// Counts the tokens a finished request used against its key's daily token quota.
    pub fn record_tokens(&self, key_id: &KeyId, tokens: u64, now: EpochMs) {
        let mut guard = self.inner.state.lock();
        let Some(&i) = guard.index.get(key_id) else {
            return;
        };
        let key = &mut guard.keys[i];
        if key.caps.daily_tokens.is_some() {
            key.used.add_tokens(&key.caps, tokens, now);
        }
    }

    /// The keys as they are now, in configuration order.
    pub fn snapshot(&self, now: EpochMs) -> Vec<KeyView> {
        let inner = &*self.inner;
        let mut guard = inner.state.lock();
        guard.expire_due(&inner.events, now);
        guard.keys.iter().map(|key| key.view(now)).collect()
    }

    /// Moves ended cooldowns to Probing and hands out a ticket for every key to probe now:
    /// Probing keys and keys disabled for an invalid credential whose probe time has come —
    /// each only if no ticket of it is still alive.
    pub fn due_probes(&self, now: EpochMs) -> Vec<ProbeTicket> {
        let inner = &*self.inner;
        let mut guard = inner.state.lock();
        let st = &mut *guard;
        st.expire_due(&inner.events, now);
        let mut tickets = Vec::new();
        for key in &st.keys {
            let due = match key.machine.health {
                Health::Probing { .. } => true,
                Health::Disabled(Disabled::InvalidCredential { next_probe_at }) => {
                    next_probe_at <= now
                }
                _ => false,
            };
            if !due || key.probe_in_flight() {
                continue;
            }
            tickets.push(issue_ticket(&mut st.next_probe_seq, key));
        }
        tickets
    }

    /// Feeds a probe's result: success → Active in slow start; 429 / billing → the next rung
    /// (or the provider's retry time); 401/403 → Disabled; anything else → cooling down for
    /// at most 30 s (a disabled key stays disabled with a later probe time). Results for
    /// operator-disabled or removed keys, and of stale tickets, are ignored.
    pub fn probe_finished(&self, ticket: ProbeTicket, outcome: &Outcome, now: EpochMs) {
        let inner = &*self.inner;
        let mut guard = inner.state.lock();
        let st = &mut *guard;
        let Some(i) = st.index.get(&ticket.key_id).copied() else {
            return;
        };
        let key = &mut st.keys[i];
        if !ticket.is_current(&key.probe) {
            return;
        }
        ticket.release();
        if let Some(snapshot) = outcome.ratelimit {
            key.stats.last_ratelimit = Some(snapshot);
        }
        let change = key
            .machine
            .on_probe(outcome, &key.policy(&inner.config), now);
        if outcome.class == OutcomeClass::Success {
            st.clear_org_limit(i);
        }
        st.announce(i, change, &inner.events, now);
    }

    /// The earliest time `due_probes` could return something new: a cooldown's end, a disabled
    /// key's probe time, or (already past) the time a key without a probe started Probing.
    /// None when nothing is scheduled. The prober also wakes on every `Transition`.
    pub fn next_wake(&self) -> Option<EpochMs> {
        let guard = self.inner.state.lock();
        guard
            .keys
            .iter()
            .filter_map(|key| match key.machine.health {
                Health::CoolingDown { until, .. } => Some(until),
                Health::Probing { since, .. } if !key.probe_in_flight() => Some(since),
                Health::Disabled(Disabled::InvalidCredential { next_probe_at })
                    if !key.probe_in_flight() =>
                {
                    Some(next_probe_at)
                }
                _ => None,
            })
            .min()
    }

    /// Every state change from now on. A receiver that lags should re-sync with `persisted()`.
    pub fn subscribe(&self) -> broadcast::Receiver<Transition> {
        self.inner.events.subscribe()
    }

    /// Adds a key, or updates an existing one in place (its health, counters and leases
    /// survive). A changed `enabled` acts as the operator's switch; a new secret for a key
    /// disabled as invalid sends it to Probing.
    pub fn upsert_key(&self, spec: KeySpec, now: EpochMs) {
        let inner = &*self.inner;
        let mut guard = inner.state.lock();
        let st = &mut *guard;
        let Some(i) = st.index.get(&spec.id).copied() else {
            st.insert(spec, now);
            return;
        };
        let enabled = spec.enabled;
        let key = &mut st.keys[i];
        if key.apply_spec(spec) {
            let change = key.machine.on_secret_replaced(now);
            st.announce(i, change, &inner.events, now);
        }
        let key = &mut st.keys[i];
        let change = key
            .machine
            .set_operator(enabled, &key.policy(&inner.config), now);
        st.announce(i, change, &inner.events, now);
    }

    /// Removes a key. Its leases stay valid until dropped; their reports are ignored. Sessions
    /// pinned to it are re-pinned on their next request.
    pub fn remove_key(&self, id: &KeyId) {
        let mut guard = self.inner.state.lock();
        let st = &mut *guard;
        let Some(i) = st.index.remove(id) else {
            return;
        };
        st.keys.remove(i);
        for (pos, key) in st.keys.iter().enumerate().skip(i) {
            st.index.insert(key.id.clone(), pos);
        }
        if st.cursor > i {
            st.cursor -= 1;
        }
    }

    /// The operator's switch. Off: Disabled("operator"), never undone by a probe. On: any
    /// disabled key returns to Active in slow start. Returns false for an unknown key.
    pub fn set_enabled(&self, id: &KeyId, enabled: bool, now: EpochMs) -> bool {
        let inner = &*self.inner;
        let mut guard = inner.state.lock();
        let st = &mut *guard;
        let Some(i) = st.index.get(id).copied() else {
            return false;
        };
        let key = &mut st.keys[i];
        let change = key
            .machine
            .set_operator(enabled, &key.policy(&inner.config), now);
        st.announce(i, change, &inner.events, now);
        true
    }

    /// The operator's "clear cooldown" (see `Machine::clear_cooldown`). Returns false for an
    /// unknown key; a key that was not cooling down or probing is left as it is.
    pub fn clear_cooldown(&self, id: &KeyId, now: EpochMs) -> bool {
        let inner = &*self.inner;
        let mut guard = inner.state.lock();
        let st = &mut *guard;
        let Some(i) = st.index.get(id).copied() else {
            return false;
        };
        let key = &mut st.keys[i];
        let change = key.machine.clear_cooldown(&key.policy(&inner.config), now);
        st.clear_org_limit(i);
        st.announce(i, change, &inner.events, now);
        true
    }

    /// The operator's "probe now". A cooling key moves to Probing at once; a probing key or
    /// one disabled as invalid gets a ticket (one probe per key at a time, shared with the
    /// prober); an active key gets a lease for a real check. Operator-disabled keys are not
    /// probed.
    pub fn probe_now(&self, id: &KeyId, now: EpochMs) -> Result<ProbeNow, ProbeRefused> {
        let inner = &*self.inner;
        let mut guard = inner.state.lock();
        let st = &mut *guard;
        let i = st.index.get(id).copied().ok_or(ProbeRefused::Unknown)?;
        match st.keys[i].machine.health {
            Health::Disabled(Disabled::Operator) => return Err(ProbeRefused::OperatorDisabled),
            Health::Active => {
                drop(guard);
                return self
                    .lease_key(id)
                    .map(ProbeNow::Lease)
                    .ok_or(ProbeRefused::Unknown);
            }
            _ => {}
        }
        if st.keys[i].probe_in_flight() {
            return Err(ProbeRefused::Busy);
        }
        let change = st.keys[i].machine.probe_asked(now);
        st.announce(i, change, &inner.events, now);
        Ok(ProbeNow::Ticket(issue_ticket(
            &mut st.next_probe_seq,
            &st.keys[i],
        )))
    }

    /// Every key's state, for a full re-sync of the store.
    pub fn persisted(&self) -> Vec<PersistedState> {
        let guard = self.inner.state.lock();
        guard.keys.iter().map(Key::persisted).collect()
    }

    pub fn len(&self) -> usize {
        self.inner.state.lock().keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether any key can take traffic (for `/ready`): some key is active (one at its
    /// in-flight cap counts). A cooldown that has ended does not make a key usable — it is
    /// probed first — so the answer does not depend on `now`.
    pub fn has_usable_key(&self, _now: EpochMs) -> bool {
        let guard = self.inner.state.lock();
        guard
            .keys
            .iter()
            .any(|key| key.machine.health == Health::Active)
    }
}

/// Marks a probe of `key` as running and hands out its ticket.
fn issue_ticket(next_seq: &mut u64, key: &Key) -> ProbeTicket {
    let seq = *next_seq;
    *next_seq += 1;
    key.probe.store(seq, Ordering::Release);
    ProbeTicket {
        key_id: key.id.clone(),
        kind: key.kind,
        secret: Secret::clone(&key.secret),
        name: key.name.to_string(),
        seq,
        slot: Arc::clone(&key.probe),
    }
}

/// Holds a key out for the models an outcome's verdict covers: a 403 for the request's model,
/// a 429 from a subscription window limited to a family of models.
fn hold_scoped(key: &mut Key, outcome: &Outcome, model: Option<&str>, now: EpochMs) {
    let models = match (outcome.scope, model) {
        (Scope::Credential, _) | (Scope::RequestModel, None) => return,
        (Scope::RequestModel, Some(model)) => Models::Exact(model.into()),
        (Scope::Family(family), _) => Models::Family(family),
    };
    let (until, reason) = match outcome.class {
        OutcomeClass::ModelDenied => (
            now + MODEL_DENIED_MS,
            "the provider refused this credential for the model (403)".to_owned(),
        ),
        OutcomeClass::RateLimited => (
            outcome
                .retry_at_ms
                .unwrap_or(now + MODEL_DENIED_MS)
                .max(now),
            "subscription window for these models spent (429)".to_owned(),
        ),
        _ => return,
    };
    key.holds.prune(now);
    key.holds.hold(models, until, reason);
}

/// A subscription's model-limited window reported as rejected, on any answer, holds the key out
/// for that window's models until its reset: asking would only get a 429.
fn hold_spent_windows(key: &mut Key, snapshot: &RateLimitSnapshot, now: EpochMs) {
    let Some(subscription) = &snapshot.subscription else {
        return;
    };
    for (name, window) in subscription.windows() {
        let (Some(family), Some(WindowStatus::Rejected), Some(until)) =
            (name.family(), window.status, window.reset_ms)
        else {
            continue;
        };
        let models = Models::Family(family);
        if until > now && !key.holds.holds(&models, now) {
            key.holds.prune(now);
            key.holds.hold(
                models,
                until,
                format!("subscription window {} spent", name.claim()),
            );
        }
    }
}

/// Keeps only the marks for which `keep` holds, unless none would be left.
fn narrow(mask: &mut [bool], keep: impl Fn(usize) -> bool) {
    if (0..mask.len()).any(|i| mask[i] && keep(i)) {
        for (i, mark) in mask.iter_mut().enumerate() {
            *mark = *mark && keep(i);
        }
    }
}

/// What a session's pin means for this attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pinned {
    /// The pinned key is eligible: use it.
    Use(usize),
    /// The pinned key (at this index) is temporarily out: choose another, from its
    /// organisation first (the prompt cache is per organisation), and keep the pin.
    Keep(usize),
    /// No pin, an expired one, or one to a disabled or removed key: pin the choice.
    Repin,
}

impl PoolState {
    fn insert(&mut self, spec: KeySpec, now: EpochMs) {
        let incarnation = self.next_incarnation;
        self.next_incarnation += 1;
        self.index.insert(spec.id.clone(), self.keys.len());
        self.keys.push(Key::new(spec, incarnation, now));
    }

    fn find(&self, id: &KeyId, incarnation: u64) -> Option<usize> {
        let i = *self.index.get(id)?;
        (self.keys[i].incarnation == incarnation).then_some(i)
    }

    fn pinned(&mut self, session: u64, eligible: &[bool], now: EpochMs) -> Pinned {
        let Some(id) = self.affinity.lookup(session, now) else {
            return Pinned::Repin;
        };
        let Some(&i) = self.index.get(&id) else {
            return Pinned::Repin;
        };
        if matches!(self.keys[i].machine.health, Health::Disabled(_)) {
            return Pinned::Repin;
        }
        self.affinity.touch(session, now);
        if eligible[i] {
            Pinned::Use(i)
        } else {
            Pinned::Keep(i)
        }
    }

    /// Narrows the eligible keys to the preferred ones, each step only if it leaves a key: on a
    /// session's move, its organisation's keys; outside the groups the request avoids and the
    /// organisations limited lately; on a retry, the keys most likely to succeed
    /// (recent outcomes, not rotation order); then, for the rotating strategies, the keys whose
    /// prepaid credits expire first.
    fn prefer(
        &self,
        mask: &mut [bool],
        pick: &Pick<'_>,
        pinned: Option<Pinned>,
        strategy: Strategy,
    ) {
        let keys = &self.keys;
        // A session stays with its organisation even when that organisation was limited: its
        // prompt cache is there.
        if let Some(Pinned::Keep(p)) = pinned
            && let Some(org) = keys[p].org()
        {
            narrow(mask, |i| keys[i].org() == Some(org));
        }
        if !pick.avoid_groups.is_empty() || !self.org_limited.is_empty() {
            narrow(mask, |i| {
                keys[i].org().is_none_or(|org| {
                    !pick.avoid_groups.contains(org)
                        && !self.org_limited.iter().any(|(o, _)| o == org)
                })
            });
        }
        if !pick.exclude.is_empty() {
            let best = (0..mask.len())
                .filter(|&i| mask[i])
                .map(|i| keys[i].reliability.success)
                .fold(0.0, f64::max);
            narrow(mask, |i| {
                keys[i].reliability.success >= best - RELIABILITY_SLACK
            });
        }
        if strategy != Strategy::Headroom {
            let first = (0..mask.len())
                .filter(|&i| mask[i])
                .filter_map(|i| keys[i].credits_expire_at)
                .min();
            if let Some(first) = first {
                narrow(mask, |i| keys[i].credits_expire_at == Some(first));
            }
        }
    }

    /// When the soonest skipped key is back, and what the keys are out for. A probing key
    /// counts as back at its probe.
    fn shortage(&self, skipped: &[Skip], now: EpochMs) -> (Option<EpochMs>, Shortage) {
        let mut soonest: Option<(EpochMs, Shortage)> = None;
        for skip in skipped {
            let Some(&i) = self.index.get(&skip.key_id) else {
                continue;
            };
            let cause = match self.keys[i].machine.health {
                Health::CoolingDown { cause, .. } | Health::Probing { cause, .. } => cause,
                _ => Cause::RateLimit,
            };
            let shortage = match cause {
                Cause::RateLimit | Cause::Billing => Shortage::RateLimited,
                Cause::ServerErrors | Cause::Unknown => Shortage::Failing,
            };
            let back = match skip.reason {
                SkipReason::CoolingDown { until }
                | SkipReason::ModelHeld { until }
                | SkipReason::Capped { until } => until,
                SkipReason::Probing => now + PROBE_SOON_MS,
                SkipReason::Full => now + PROBE_SOON_MS,
                SkipReason::Disabled | SkipReason::Excluded => continue,
            };
            if soonest.is_none_or(|(at, _)| back < at) {
                soonest = Some((back, shortage));
            }
        }
        match soonest {
            Some((at, shortage)) => (Some(at), shortage),
            None => (None, Shortage::Disabled),
        }
    }

    /// A success of key `i` (or an operator's word) shows its organisation has room again.
    fn clear_org_limit(&mut self, i: usize) {
        if self.org_limited.is_empty() {
            return;
        }
        if let Some(org) = self.keys[i].org() {
            self.org_limited.retain(|(o, _)| o != org);
        }
    }

    /// Whose trouble an outcome of key `i` is, and the key's record updated with it.
    fn blame(&mut self, i: usize, class: OutcomeClass, now: EpochMs) -> Blame {
        let blame = match class {
            OutcomeClass::Success | OutcomeClass::ClientError => Blame::Nobody,
            class if class.is_provider_wide() => {
                let peers = self.keys.iter().map(|k| &k.reliability).enumerate();
                if reliability::peers_serving(peers, i, now) {
                    Blame::Credential
                } else {
                    Blame::Provider
                }
            }
            _ => Blame::Credential,
        };
        if blame != Blame::Provider && class != OutcomeClass::ClientError {
            self.keys[i]
                .reliability
                .record(class == OutcomeClass::Success, now);
        }
        blame
    }

    /// Moves every ended cooldown to Probing, if one may have ended.
    fn expire_due(&mut self, events: &broadcast::Sender<Transition>, now: EpochMs) {
        if self.next_expiry.is_none_or(|at| at > now) {
            return;
        }
        for i in 0..self.keys.len() {
            let change = self.keys[i].machine.expire(now);
            self.announce(i, change, events, now);
        }
        self.recompute_expiry();
    }

    fn recompute_expiry(&mut self) {
        self.next_expiry = self
            .keys
            .iter()
            .filter_map(|key| match key.machine.health {
                Health::CoolingDown { until, .. } => Some(until),
                _ => None,
            })
            .min();
    }

    /// Logs and publishes a change of key `i`. Done under the lock so subscribers see changes
    /// in the order they happened.
    fn announce(
        &mut self,
        i: usize,
        change: Option<Change>,
        events: &broadcast::Sender<Transition>,
        now: EpochMs,
    ) {
        let Some(change) = change else {
            return;
        };
        let key = &self.keys[i];
        let to = key.machine.label();
        let until = key.machine.until();
        if let Health::CoolingDown { until, .. } = key.machine.health {
            self.next_expiry = Some(self.next_expiry.map_or(until, |at| at.min(until)));
        }
        tracing::info!(
            key = &*key.name,
            from = change.from,
            to,
            reason = %change.reason,
            until,
            "key state changed"
        );
        // No subscriber is not an error: the transition was logged.
        let _ = events.send(Transition {
            key_id: key.id.clone(),
            name: key.name.to_string(),
            from: change.from,
            to,
            reason: change.reason,
            until,
            at: now,
            state: key.persisted(),
        });
    }
}
