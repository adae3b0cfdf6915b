//! The pool with explicit instants: every ladder, the probe cycle, slow start, each strategy,
//! affinity, restore and the lease guard. Jitter is 0 unless a test is about jitter.

use tokio::sync::broadcast::error::TryRecvError;

use super::affinity::Affinity;
use super::*;
use crate::types::{
    KeyId, KeyKind, LimitWindow, Outcome, OutcomeClass, RateLimitSnapshot, Scope, Secret,
};

const T0: EpochMs = 1_700_000_000_000;
const SEC: i64 = 1_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;

use OutcomeClass::{
    BillingExhausted, ClientError, ConnectError, InvalidCredential, ModelDenied, Overloaded,
    RateLimited, ServerError, Success, Timeout,
};

// === helpers ===

fn cfg() -> Config {
    Config {
        jitter: 0.0,
        ..Config::default()
    }
}

fn spec(id: &str) -> KeySpec {
    KeySpec {
        id: KeyId::new(id),
        name: format!("name-{id}"),
        kind: KeyKind::ApiKey,
        secret: Secret::new(format!("sk-ant-api03-secret-{id}")),
        priority: 0,
        weight: 1,
        max_concurrent: None,
        group: None,
        enabled: true,
        caps: Default::default(),
        credits_expire_at: None,
        token_expires_at: None,
    }
}

fn pool_with(config: Config, specs: Vec<KeySpec>) -> KeyPool {
    KeyPool::new(config, specs, Vec::new(), T0)
}

fn pool(ids: &[&str]) -> KeyPool {
    pool_with(cfg(), ids.iter().map(|id| spec(id)).collect())
}

fn kid(id: &str) -> KeyId {
    KeyId::new(id)
}

fn out(class: OutcomeClass) -> Outcome {
    Outcome::of(class)
}

fn retry_at(at: EpochMs) -> Outcome {
    Outcome {
        retry_at_ms: Some(at),
        ..Outcome::of(RateLimited)
    }
}

/// A lease on exactly `id` (every other key excluded).
fn take(pool: &KeyPool, id: &str, now: EpochMs) -> Lease {
    let others: Vec<KeyId> = pool
        .persisted()
        .into_iter()
        .map(|p| p.key_id)
        .filter(|k| k.as_str() != id)
        .collect();
    let pick = Pick {
        session: None,
        exclude: &others,
        avoid_groups: &[],
        model: None,
    };
    let lease = pool.acquire(&pick, now).expect("key is available");
    assert_eq!(lease.key_id().as_str(), id);
    lease
}

fn hit_with(pool: &KeyPool, id: &str, outcome: Outcome, now: EpochMs) {
    let lease = take(pool, id, now);
    pool.report(&lease, &outcome, now);
}

fn hit(pool: &KeyPool, id: &str, class: OutcomeClass, now: EpochMs) {
    hit_with(pool, id, out(class), now);
}

fn view(pool: &KeyPool, id: &str, now: EpochMs) -> KeyView {
    pool.snapshot(now)
        .into_iter()
        .find(|v| v.id.as_str() == id)
        .expect("key exists")
}

fn probe(pool: &KeyPool, id: &str, outcome: Outcome, now: EpochMs) {
    let ticket = pool
        .due_probes(now)
        .into_iter()
        .find(|t| t.key_id.as_str() == id)
        .expect("a probe is due");
    pool.probe_finished(ticket, &outcome, now);
}

fn any_key(pool: &KeyPool, now: EpochMs) -> String {
    let lease = pool.acquire(&Pick::default(), now).expect("a key");
    lease.key_id().as_str().to_owned()
}

fn session_key(pool: &KeyPool, session: &str, now: EpochMs) -> String {
    let pick = Pick {
        session: Some(session),
        exclude: &[],
        avoid_groups: &[],
        model: None,
    };
    let lease = pool.acquire(&pick, now).expect("a key");
    lease.key_id().as_str().to_owned()
}

fn no_key(pool: &KeyPool, pick: &Pick<'_>, now: EpochMs) -> (Option<EpochMs>, Vec<Skip>) {
    match pool.acquire(pick, now) {
        Ok(lease) => panic!("expected no key, got {}", lease.key_id()),
        Err(Error::NoKeyAvailable {
            retry_at, skipped, ..
        }) => (retry_at, skipped),
    }
}

fn reasons(skipped: &[Skip]) -> Vec<(String, SkipReason)> {
    skipped
        .iter()
        .map(|s| (s.key_id.as_str().to_owned(), s.reason))
        .collect()
}

// === state machine: ladders ===

#[test]
fn rate_limit_ladder_climbs_rung_by_rung_and_caps_at_the_last() {
    let pool = pool(&["a"]);
    let mut now = T0;
    for (strike, rung) in [MIN, 5 * MIN, 25 * MIN, HOUR, HOUR].into_iter().enumerate() {
        hit(&pool, "a", RateLimited, now);
        let v = view(&pool, "a", now);
        assert_eq!(v.state, "cooling_down", "strike {strike}");
        assert_eq!(v.cooldown_until, Some(now + rung), "strike {strike}");
        assert!(
            v.reason
                .as_deref()
                .unwrap()
                .starts_with("rate limited (429), backoff")
        );
        now += rung;
        // The probe's success does not reset strikes: only real traffic does.
        probe(&pool, "a", out(Success), now);
        assert_eq!(view(&pool, "a", now).state, "active");
        now += SEC;
    }
    assert_eq!(pool.persisted()[0].rate_strikes, 5);
}

#[test]
fn provider_retry_after_wins_over_the_ladder_and_still_counts_a_strike() {
    let pool = pool(&["a"]);
    hit_with(&pool, "a", retry_at(T0 + 17 * SEC), T0);
    let v = view(&pool, "a", T0);
    assert_eq!(v.cooldown_until, Some(T0 + 17 * SEC));
    assert_eq!(
        v.reason.as_deref(),
        Some("rate limited (429), retry-after 17s")
    );

    let now = T0 + 17 * SEC;
    probe(&pool, "a", out(Success), now);
    hit(&pool, "a", RateLimited, now);
    assert_eq!(view(&pool, "a", now).cooldown_until, Some(now + 5 * MIN));
}

#[test]
fn real_success_resets_the_ladder() {
    let pool = pool(&["a"]);
    hit(&pool, "a", RateLimited, T0);
    let now = T0 + MIN;
    probe(&pool, "a", out(Success), now);
    hit(&pool, "a", Success, now);
    assert_eq!(pool.persisted()[0].rate_strikes, 0);
    hit(&pool, "a", RateLimited, now);
    assert_eq!(view(&pool, "a", now).cooldown_until, Some(now + MIN));
}

/// A success on the peer key "p", so that failures of others are theirs, not the provider's.
fn peer_serves(pool: &KeyPool, now: EpochMs) {
    hit(pool, "p", Success, now);
}

#[test]
fn an_overload_every_key_reports_is_held_against_none() {
    let pool = pool(&["a", "b"]);
    for _ in 0..10 {
        hit(&pool, "a", Overloaded, T0);
        hit(&pool, "b", ServerError, T0);
    }
    for id in ["a", "b"] {
        let v = view(&pool, id, T0);
        assert_eq!(
            v.state, "active",
            "{id}: nobody succeeds, so it is the provider"
        );
        assert_eq!(v.errors, 10);
    }

    // A 529 between two 429s does not reset the rate ladder.
    hit(&pool, "a", RateLimited, T0);
    let now = T0 + MIN;
    probe(&pool, "a", out(Success), now);
    hit(&pool, "a", Overloaded, now);
    hit(&pool, "a", RateLimited, now);
    assert_eq!(view(&pool, "a", now).cooldown_until, Some(now + 5 * MIN));
}

#[test]
fn blame_says_whose_trouble_a_failure_was() {
    let pool = pool(&["a", "p"]);
    let report = |class, now| {
        let lease = take(&pool, "a", now);
        pool.report(&lease, &out(class), now).blame
    };
    assert_eq!(report(Overloaded, T0), Blame::Provider, "no key is serving");
    peer_serves(&pool, T0);
    assert_eq!(
        report(Overloaded, T0),
        Blame::Credential,
        "its peer is serving"
    );
    assert_eq!(
        report(ServerError, T0 + 31 * SEC),
        Blame::Provider,
        "the peer's success is too old to tell"
    );
    assert_eq!(report(RateLimited, T0 + 31 * SEC), Blame::Credential);
}

#[test]
fn a_key_failing_while_its_peers_serve_is_ejected() {
    let pool = pool(&["a", "p"]);
    peer_serves(&pool, T0);
    hit(&pool, "a", Overloaded, T0);
    hit(&pool, "a", Timeout, T0);
    assert_eq!(view(&pool, "a", T0).state, "active");
    hit(&pool, "a", ConnectError, T0);
    let v = view(&pool, "a", T0);
    assert_eq!(v.state, "cooling_down");
    assert_eq!(v.cooldown_until, Some(T0 + 30 * SEC));
    assert_eq!(
        v.reason.as_deref(),
        Some("3 failing while other credentials succeed")
    );
}
#[test]
fn ejections_grow_on_their_own_ladder_until_a_real_success() {
    let pool = pool(&["a", "p"]);
    peer_serves(&pool, T0);
    for _ in 0..3 {
        hit(&pool, "a", ServerError, T0);
    }
    assert_eq!(view(&pool, "a", T0).cooldown_until, Some(T0 + 30 * SEC));

    let mut now = T0 + 30 * SEC;
    for rung in [MIN, 2 * MIN, 5 * MIN, 5 * MIN] {
        probe(&pool, "a", out(Success), now);
        peer_serves(&pool, now);
        for _ in 0..3 {
            hit(&pool, "a", ServerError, now);
        }
        let v = view(&pool, "a", now);
        assert_eq!(v.state, "cooling_down", "server errors never disable");
        assert_eq!(v.cooldown_until, Some(now + rung));
        now += rung;
    }
}

#[test]
fn a_success_rate_far_below_the_peers_ejects() {
    let pool = pool_with(
        Config {
            server_error_strikes: 100,
            ..cfg()
        },
        vec![spec("a"), spec("p")],
    );
    for _ in 0..10 {
        peer_serves(&pool, T0);
    }
    // Every other answer fails: never a run long enough, but a rate far below the peer's.
    let mut ejected_after = None;
    for n in 1..=20 {
        hit(&pool, "a", ServerError, T0);
        if view(&pool, "a", T0).state == "cooling_down" {
            ejected_after = Some(n);
            break;
        }
        hit(&pool, "a", Success, T0);
    }
    let n = ejected_after.expect("ejected by its success rate");
    assert!(n >= 5, "not before it has enough outcomes to judge: {n}");
    assert!(
        view(&pool, "a", T0)
            .reason
            .unwrap()
            .contains("success rate far below")
    );
}
#[test]
fn success_breaks_a_run_of_server_errors() {
    let pool = pool(&["a", "p"]);
    peer_serves(&pool, T0);
    hit(&pool, "a", ServerError, T0);
    hit(&pool, "a", ServerError, T0);
    hit(&pool, "a", Success, T0);
    hit(&pool, "a", ServerError, T0);
    hit(&pool, "a", ServerError, T0);
    assert_eq!(view(&pool, "a", T0).state, "active");
    hit(&pool, "a", ServerError, T0);
    assert_eq!(view(&pool, "a", T0).state, "cooling_down");
}
#[test]
fn client_errors_do_not_touch_health_or_error_count() {
    let pool = pool_with(
        Config {
            server_error_strikes: 1,
            ..cfg()
        },
        vec![spec("a"), spec("p")],
    );
    for _ in 0..10 {
        hit(&pool, "a", ClientError, T0);
    }
    let v = view(&pool, "a", T0);
    assert_eq!(v.state, "active");
    assert_eq!((v.requests, v.errors), (10, 0));
    assert_eq!(v.last_outcome, Some(ClientError));
    peer_serves(&pool, T0);
    hit(&pool, "a", ServerError, T0);
    let v = view(&pool, "a", T0);
    assert_eq!((v.requests, v.errors, v.state), (11, 1, "cooling_down"));
}

#[test]
fn billing_uses_its_own_ladder_and_strike_count() {
    let pool = pool(&["a"]);
    hit(&pool, "a", BillingExhausted, T0);
    let v = view(&pool, "a", T0);
    assert_eq!(v.cooldown_until, Some(T0 + 5 * HOUR));
    assert!(
        v.reason
            .as_deref()
            .unwrap()
            .starts_with("credit balance exhausted")
    );

    let mut now = T0 + 5 * HOUR;
    probe(&pool, "a", out(Success), now);
    hit(&pool, "a", BillingExhausted, now);
    assert_eq!(view(&pool, "a", now).cooldown_until, Some(now + 10 * HOUR));

    now += 10 * HOUR;
    probe(&pool, "a", out(Success), now);
    hit(&pool, "a", RateLimited, now);
    assert_eq!(view(&pool, "a", now).cooldown_until, Some(now + MIN));
    let saved = &pool.persisted()[0];
    assert_eq!((saved.billing_strikes, saved.rate_strikes), (2, 1));
}

#[test]
fn invalid_credential_disables_and_is_probed_on_schedule() {
    let pool = pool(&["a"]);
    hit(&pool, "a", InvalidCredential, T0);
    let v = view(&pool, "a", T0);
    assert_eq!(v.state, "disabled");
    assert_eq!(v.reason.as_deref(), Some("invalid credential (401/403)"));
    assert_eq!(v.next_probe_at, Some(T0 + 5 * MIN));
    assert!(v.enabled, "not an operator's switch");
    let (_, skipped) = no_key(&pool, &Pick::default(), T0);
    assert_eq!(reasons(&skipped), vec![("a".into(), SkipReason::Disabled)]);

    assert!(pool.due_probes(T0 + 5 * MIN - 1).is_empty());
    let now = T0 + 5 * MIN;
    probe(&pool, "a", out(InvalidCredential), now);
    let v = view(&pool, "a", now);
    assert_eq!(v.state, "disabled");
    assert_eq!(v.next_probe_at, Some(now + 5 * MIN));
    assert!(pool.due_probes(now).is_empty());

    let now = now + 5 * MIN;
    probe(&pool, "a", out(Success), now);
    let v = view(&pool, "a", now);
    assert_eq!(v.state, "active");
    assert_eq!(v.ramp_cap, Some(1));
}

#[test]
fn a_disabled_key_probed_into_a_rate_limit_is_valid_again_but_cools_down() {
    let pool = pool(&["a"]);
    hit(&pool, "a", InvalidCredential, T0);
    let now = T0 + 5 * MIN;
    probe(&pool, "a", out(RateLimited), now);
    let v = view(&pool, "a", now);
    assert_eq!(v.state, "cooling_down");
    assert_eq!(v.cooldown_until, Some(now + MIN));
}

#[test]
fn ended_cooldown_probes_then_returns_in_slow_start() {
    let pool = pool_with(
        Config {
            ramp_cap: 8,
            ..cfg()
        },
        vec![spec("a")],
    );
    hit(&pool, "a", RateLimited, T0);
    let now = T0 + MIN;
    // The cooldown ended, but the key takes no traffic before a probe; it counts as back at
    // its probe.
    let (retry, skipped) = no_key(&pool, &Pick::default(), now);
    assert_eq!(retry, Some(now + PROBE_SOON_MS));
    assert_eq!(reasons(&skipped), vec![("a".into(), SkipReason::Probing)]);
    let v = view(&pool, "a", now);
    assert_eq!(v.state, "probing");
    assert_eq!(
        v.reason.as_deref(),
        Some("rate limited (429), backoff 1m"),
        "why it is out"
    );

    probe(&pool, "a", out(Success), now);
    for cap in [1_u32, 2, 4] {
        assert_eq!(view(&pool, "a", now).ramp_cap, Some(cap));
        let leases: Vec<Lease> = (0..cap).map(|_| take(&pool, "a", now)).collect();
        let (_, skipped) = no_key(&pool, &Pick::default(), now);
        assert_eq!(
            reasons(&skipped),
            vec![("a".into(), SkipReason::Full)],
            "cap {cap}"
        );
        pool.report(&leases[0], &out(Success), now);
    }
    // 4 doubled is 8 = ramp_cap: slow start is over, no cap left.
    assert_eq!(view(&pool, "a", now).ramp_cap, None);
    let leases: Vec<Lease> = (0..50).map(|_| take(&pool, "a", now)).collect();
    assert_eq!(view(&pool, "a", now).in_flight, 50);
    drop(leases);
}

#[test]
fn slow_start_ends_at_the_keys_own_cap() {
    let mut a = spec("a");
    a.max_concurrent = Some(3);
    let pool = pool_with(cfg(), vec![a]);
    hit(&pool, "a", RateLimited, T0);
    let now = T0 + MIN;
    probe(&pool, "a", out(Success), now);
    assert_eq!(view(&pool, "a", now).ramp_cap, Some(1));
    hit(&pool, "a", Success, now);
    assert_eq!(view(&pool, "a", now).ramp_cap, Some(2));
    hit(&pool, "a", Success, now);
    assert_eq!(view(&pool, "a", now).ramp_cap, None);
    let leases: Vec<Lease> = (0..3).map(|_| take(&pool, "a", now)).collect();
    let (_, skipped) = no_key(&pool, &Pick::default(), now);
    assert_eq!(reasons(&skipped), vec![("a".into(), SkipReason::Full)]);
    drop(leases);
}

#[test]
fn a_key_struck_during_slow_start_starts_over_from_one() {
    let pool = pool(&["a"]);
    hit(&pool, "a", InvalidCredential, T0);
    let mut now = T0 + 5 * MIN;
    probe(&pool, "a", out(Success), now);
    hit(&pool, "a", Success, now);
    assert_eq!(view(&pool, "a", now).ramp_cap, Some(2));
    hit(&pool, "a", RateLimited, now);
    assert_eq!(
        view(&pool, "a", now).ramp_cap,
        None,
        "no ramp while cooling down"
    );
    now += MIN;
    probe(&pool, "a", out(Success), now);
    assert_eq!(view(&pool, "a", now).ramp_cap, Some(1));
    hit(&pool, "a", InvalidCredential, now);
    assert_eq!(
        view(&pool, "a", now).ramp_cap,
        None,
        "no ramp while disabled"
    );
}

#[test]
fn inconclusive_probe_retries_within_30s_or_the_current_rung() {
    let pool = pool(&["a"]);
    hit(&pool, "a", RateLimited, T0);
    let now = T0 + MIN;
    probe(&pool, "a", out(Timeout), now);
    let v = view(&pool, "a", now);
    assert_eq!(v.state, "cooling_down");
    assert_eq!(v.cooldown_until, Some(now + 30 * SEC));
    assert_eq!(v.reason.as_deref(), Some("probe failed (timeout)"));
    assert_eq!(
        pool.persisted()[0].rate_strikes,
        1,
        "no strike for an inconclusive probe"
    );

    let pool = pool_with(
        Config {
            server_error_ladder_ms: vec![10 * SEC, 20 * SEC],
            ..cfg()
        },
        vec![spec("b"), spec("p")],
    );
    peer_serves(&pool, T0);
    for _ in 0..3 {
        hit(&pool, "b", ServerError, T0);
    }
    let now = T0 + 10 * SEC;
    probe(&pool, "b", out(ServerError), now);
    assert_eq!(view(&pool, "b", now).cooldown_until, Some(now + 10 * SEC));
}

#[test]
fn rate_limited_probe_takes_the_next_rung_or_the_provider_time() {
    let pool = pool(&["a"]);
    hit(&pool, "a", RateLimited, T0);
    let now = T0 + MIN;
    probe(&pool, "a", out(RateLimited), now);
    let v = view(&pool, "a", now);
    assert_eq!(v.cooldown_until, Some(now + 5 * MIN));
    assert!(v.reason.as_deref().unwrap().contains("rate limited (429)"));

    let now = now + 5 * MIN;
    probe(&pool, "a", retry_at(now + 42 * SEC), now);
    assert_eq!(view(&pool, "a", now).cooldown_until, Some(now + 42 * SEC));
}

#[test]
fn probe_rejecting_the_credential_disables_the_key() {
    let pool = pool(&["a"]);
    hit(&pool, "a", RateLimited, T0);
    let now = T0 + MIN;
    probe(&pool, "a", out(InvalidCredential), now);
    let v = view(&pool, "a", now);
    assert_eq!(v.state, "disabled");
    assert_eq!(v.next_probe_at, Some(now + 5 * MIN));
}

#[test]
fn never_two_probes_in_flight_for_one_key() {
    let pool = pool(&["a", "b"]);
    hit(&pool, "a", RateLimited, T0);
    let now = T0 + MIN;
    let first = pool.due_probes(now);
    assert_eq!(first.len(), 1);
    assert!(pool.due_probes(now).is_empty());
    assert!(pool.due_probes(now + HOUR).is_empty());

    // A ticket dropped unfinished (cancelled probe task) frees the slot.
    drop(first);
    let second = pool.due_probes(now);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].key_id.as_str(), "a");
    assert_eq!(second[0].secret.expose(), "sk-ant-api03-secret-a");

    // The ticket outlives operator switches: still no second probe.
    assert!(pool.set_enabled(&kid("a"), false, now));
    assert!(pool.set_enabled(&kid("a"), true, now));
    hit(&pool, "a", RateLimited, now);
    let later = now + 5 * MIN;
    assert!(pool.due_probes(later).is_empty());
    drop(second);
    assert_eq!(pool.due_probes(later).len(), 1);
}

#[test]
fn a_probe_result_for_a_key_that_is_no_longer_probed_is_ignored() {
    let pool = pool(&["a"]);
    hit(&pool, "a", RateLimited, T0);
    let now = T0 + MIN;
    let ticket = pool.due_probes(now).pop().unwrap();
    // The operator cycles the key and traffic cools it down again while the probe runs.
    pool.set_enabled(&kid("a"), false, now);
    pool.set_enabled(&kid("a"), true, now);
    hit(&pool, "a", RateLimited, now);
    pool.probe_finished(ticket, &out(Success), now);
    let v = view(&pool, "a", now);
    assert_eq!(
        (v.state, v.cooldown_until),
        ("cooling_down", Some(now + 5 * MIN))
    );
    // The slot was freed: the next probe is issued when the cooldown ends.
    assert_eq!(pool.due_probes(now + 5 * MIN).len(), 1);
}

#[test]
fn a_ticket_for_a_removed_and_re_added_key_is_ignored() {
    let pool = pool(&["a"]);
    hit(&pool, "a", RateLimited, T0);
    let now = T0 + MIN;
    let ticket = pool.due_probes(now).pop().unwrap();
    pool.remove_key(&kid("a"));
    pool.upsert_key(spec("a"), now);
    hit(&pool, "a", InvalidCredential, now);
    pool.probe_finished(ticket, &out(Success), now);
    assert_eq!(view(&pool, "a", now).state, "disabled");
}

#[test]
fn operator_disable_is_never_undone_by_probes_or_outcomes() {
    let pool = pool(&["a"]);
    let held = take(&pool, "a", T0);
    hit(&pool, "a", RateLimited, T0);
    let ticket = pool.due_probes(T0 + MIN).pop().unwrap();
    assert!(pool.set_enabled(&kid("a"), false, T0 + MIN));
    pool.probe_finished(ticket, &out(Success), T0 + MIN);
    pool.report(&held, &out(InvalidCredential), T0 + MIN);
    let v = view(&pool, "a", T0 + MIN);
    assert_eq!((v.state, v.enabled), ("disabled", false));
    assert_eq!(v.reason.as_deref(), Some("operator"));
    assert!(pool.due_probes(T0 + 48 * HOUR).is_empty());
    assert_eq!(pool.next_wake(), None);

    assert!(pool.set_enabled(&kid("a"), true, T0 + 2 * MIN));
    let v = view(&pool, "a", T0 + 2 * MIN);
    assert_eq!((v.state, v.enabled, v.ramp_cap), ("active", true, Some(1)));
    assert!(!pool.set_enabled(&kid("nope"), false, T0));
}

#[test]
fn operator_enable_brings_back_a_key_disabled_for_its_credential() {
    let pool = pool(&["a"]);
    hit(&pool, "a", InvalidCredential, T0);
    let mut rx = pool.subscribe();
    assert!(pool.set_enabled(&kid("a"), true, T0 + SEC));
    let v = view(&pool, "a", T0 + SEC);
    assert_eq!((v.state, v.ramp_cap), ("active", Some(1)));
    let t = rx.try_recv().unwrap();
    assert_eq!(
        (t.from, t.to, t.reason.as_str()),
        ("disabled", "active", "operator")
    );
}

#[test]
fn outcomes_of_leases_taken_before_a_state_change_do_not_penalise_again() {
    let pool = pool(&["a"]);
    let old = take(&pool, "a", T0);
    let old_too = take(&pool, "a", T0);
    hit(&pool, "a", RateLimited, T0);
    let now = T0 + MIN;
    probe(&pool, "a", out(Success), now);
    pool.report(&old, &out(RateLimited), now);
    assert_eq!(view(&pool, "a", now).state, "active");
    // A rejected credential is evidence whenever it arrives.
    pool.report(&old_too, &out(InvalidCredential), now);
    assert_eq!(view(&pool, "a", now).state, "disabled");
}

// === transitions ===

#[test]
fn every_change_is_published_once_with_its_reason() {
    let pool = pool(&["a"]);
    let mut rx = pool.subscribe();
    hit_with(&pool, "a", retry_at(T0 + 17 * SEC), T0);
    let t = rx.try_recv().unwrap();
    assert_eq!((t.key_id.as_str(), t.name.as_str()), ("a", "name-a"));
    assert_eq!((t.from, t.to), ("active", "cooling_down"));
    assert_eq!(t.reason, "rate limited (429), retry-after 17s");
    assert_eq!((t.until, t.at), (Some(T0 + 17 * SEC), T0));
    assert_eq!(t.state.state, "cooling_down");
    assert_eq!(t.state.rate_strikes, 1);
    assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Empty);

    let now = T0 + 17 * SEC;
    let ticket = pool.due_probes(now).pop().unwrap();
    let t = rx.try_recv().unwrap();
    assert_eq!(
        (t.from, t.to, t.reason.as_str()),
        ("cooling_down", "probing", "cooldown elapsed")
    );
    pool.probe_finished(ticket, &out(Success), now);
    let t = rx.try_recv().unwrap();
    assert_eq!(
        (t.from, t.to, t.reason.as_str()),
        ("probing", "active", "probe ok")
    );
    assert_eq!(t.state.rate_strikes, 1, "strikes kept until a real success");

    hit(&pool, "a", Success, now);
    let t = rx.try_recv().unwrap();
    assert_eq!(
        (t.from, t.to, t.reason.as_str()),
        ("active", "active", "recovered")
    );
    assert_eq!(t.state.rate_strikes, 0);
    hit(&pool, "a", Success, now);
    assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Empty);

    pool.set_enabled(&kid("a"), false, now);
    pool.set_enabled(&kid("a"), false, now);
    let t = rx.try_recv().unwrap();
    assert_eq!(
        (t.from, t.to, t.reason.as_str()),
        ("active", "disabled", "operator")
    );
    assert_eq!(t.state.reason.as_deref(), Some("operator"));
    assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Empty);
}

// === selection ===

#[test]
fn excluded_keys_are_skipped() {
    let pool = pool(&["a", "b"]);
    let exclude = [kid("a")];
    let pick = Pick {
        session: None,
        exclude: &exclude,
        avoid_groups: &[],
        model: None,
    };
    for _ in 0..4 {
        let lease = pool.acquire(&pick, T0).unwrap();
        assert_eq!(lease.key_id().as_str(), "b");
        assert_eq!(
            reasons(lease.skipped()),
            vec![("a".into(), SkipReason::Excluded)]
        );
    }
    let exclude = [kid("a"), kid("b")];
    let pick = Pick {
        session: None,
        exclude: &exclude,
        avoid_groups: &[],
        model: None,
    };
    let (retry, skipped) = no_key(&pool, &pick, T0);
    assert_eq!(retry, None);
    assert_eq!(
        reasons(&skipped),
        vec![
            ("a".into(), SkipReason::Excluded),
            ("b".into(), SkipReason::Excluded)
        ]
    );
}

#[test]
fn no_key_error_names_the_soonest_cooldown_end() {
    let pool = pool(&["a", "b", "c"]);
    hit(&pool, "a", RateLimited, T0);
    hit_with(&pool, "b", retry_at(T0 + 17 * SEC), T0);
    hit(&pool, "c", InvalidCredential, T0);
    let err = pool.acquire(&Pick::default(), T0).unwrap_err();
    assert_eq!(err.as_str(), "no_key_available");
    let Error::NoKeyAvailable {
        retry_at, skipped, ..
    } = err;
    assert_eq!(retry_at, Some(T0 + 17 * SEC));
    assert_eq!(
        reasons(&skipped),
        vec![
            ("a".into(), SkipReason::CoolingDown { until: T0 + MIN }),
            (
                "b".into(),
                SkipReason::CoolingDown {
                    until: T0 + 17 * SEC
                }
            ),
            ("c".into(), SkipReason::Disabled),
        ]
    );
}

#[test]
fn lease_lists_skipped_keys_and_allocates_nothing_when_none_were() {
    let pool = pool(&["a", "b", "c"]);
    let lease = pool.acquire(&Pick::default(), T0).unwrap();
    assert!(lease.skipped().is_empty());
    drop(lease);
    hit(&pool, "a", InvalidCredential, T0);
    hit(&pool, "b", RateLimited, T0);
    let lease = pool.acquire(&Pick::default(), T0).unwrap();
    assert_eq!(lease.key_id().as_str(), "c");
    assert_eq!(
        reasons(lease.skipped()),
        vec![
            ("a".into(), SkipReason::Disabled),
            ("b".into(), SkipReason::CoolingDown { until: T0 + MIN }),
        ]
    );
    assert_eq!(&*lease.skipped()[0].name, "name-a");
    assert_eq!(lease.name(), "name-c");
    assert_eq!(lease.kind(), KeyKind::ApiKey);
    assert_eq!(lease.secret().expose(), "sk-ant-api03-secret-c");
}

#[test]
fn round_robin_rotates_evenly_and_skips_unavailable_keys() {
    let pool = pool(&["a", "b", "c"]);
    let order: Vec<String> = (0..6).map(|_| any_key(&pool, T0)).collect();
    assert_eq!(order, ["a", "b", "c", "a", "b", "c"]);
    let mut counts = HashMap::new();
    for _ in 0..300 {
        *counts.entry(any_key(&pool, T0)).or_insert(0) += 1;
    }
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        [100, 100, 100]
    );

    // Removing a key keeps the rotation's place.
    let pool = pool_with(cfg(), ["a", "b", "c", "d"].map(spec).to_vec());
    assert_eq!(any_key(&pool, T0), "a");
    assert_eq!(any_key(&pool, T0), "b");
    pool.remove_key(&kid("a"));
    let order: Vec<String> = (0..3).map(|_| any_key(&pool, T0)).collect();
    assert_eq!(order, ["c", "d", "b"]);

    let pool = pool_with(cfg(), vec![spec("a"), spec("b"), spec("c")]);
    hit(&pool, "b", RateLimited, T0);
    let order: Vec<String> = (0..4).map(|_| any_key(&pool, T0)).collect();
    assert!(order.iter().all(|k| k != "b"));
    assert_eq!(order.iter().filter(|k| *k == "a").count(), 2);
}

#[test]
fn priority_prefers_the_best_tier_and_honours_weights_exactly() {
    let mut specs: Vec<KeySpec> = ["a", "b", "c", "d"].iter().map(|id| spec(id)).collect();
    specs[0].weight = 5;
    specs[3].priority = 1;
    let pool = pool_with(
        Config {
            strategy: Strategy::Priority,
            ..cfg()
        },
        specs,
    );
    let cycle: Vec<String> = (0..7).map(|_| any_key(&pool, T0)).collect();
    assert_eq!(cycle, ["a", "a", "b", "a", "c", "a", "a"]);
    let mut counts: HashMap<String, u32> = HashMap::new();
    for _ in 0..70 {
        *counts.entry(any_key(&pool, T0)).or_default() += 1;
    }
    assert_eq!(counts.get("a"), Some(&50));
    assert_eq!(counts.get("b"), Some(&10));
    assert_eq!(counts.get("c"), Some(&10));
    assert_eq!(counts.get("d"), None);

    // The better tier gone, the next one serves.
    for id in ["a", "b", "c"] {
        pool.set_enabled(&kid(id), false, T0);
    }
    assert_eq!(any_key(&pool, T0), "d");
    // An unavailable key of the tier leaves the others sharing it by weight.
    pool.set_enabled(&kid("b"), true, T0);
    pool.set_enabled(&kid("c"), true, T0);
    let pair: Vec<String> = (0..4).map(|_| any_key(&pool, T0)).collect();
    assert_eq!(pair.iter().filter(|k| *k == "b").count(), 2);
    assert_eq!(pair.iter().filter(|k| *k == "c").count(), 2);
}

#[test]
fn headroom_prefers_the_emptier_key() {
    let mut specs = vec![spec("a"), spec("b")];
    for s in &mut specs {
        s.max_concurrent = Some(4);
    }
    let pool = pool_with(
        Config {
            strategy: Strategy::Headroom,
            ..cfg()
        },
        specs,
    );
    let held_a = [take(&pool, "a", T0), take(&pool, "a", T0)];
    for _ in 0..5 {
        assert_eq!(any_key(&pool, T0), "b");
    }
    let held_b = [
        take(&pool, "b", T0),
        take(&pool, "b", T0),
        take(&pool, "b", T0),
    ];
    assert_eq!(any_key(&pool, T0), "a");
    drop((held_a, held_b));
}

#[test]
fn headroom_reads_live_provider_limits_and_ignores_stale_ones() {
    let pool = pool_with(
        Config {
            strategy: Strategy::Headroom,
            ..cfg()
        },
        vec![spec("a"), spec("b")],
    );
    let limits = |remaining: u64, reset_ms: EpochMs| Outcome {
        ratelimit: Some(RateLimitSnapshot {
            tokens: Some(LimitWindow {
                limit: 100,
                remaining,
                reset_ms: Some(reset_ms),
            }),
            taken_ms: T0,
            ..RateLimitSnapshot::default()
        }),
        ..Outcome::of(Success)
    };
    hit_with(&pool, "a", limits(10, T0 + MIN), T0);
    hit_with(&pool, "b", limits(50, T0 + MIN), T0);
    for _ in 0..5 {
        assert_eq!(any_key(&pool, T0), "b");
    }
    assert!(view(&pool, "a", T0).last_ratelimit.is_some());
    // Past the reset both windows are stale: a tie, taken in turn.
    let later = T0 + 2 * MIN;
    let turns: Vec<String> = (0..4).map(|_| any_key(&pool, later)).collect();
    assert_eq!(turns.iter().filter(|k| *k == "a").count(), 2);
}

// === sticky affinity ===

fn sticky(strategy: Strategy) -> Config {
    Config {
        strategy,
        sticky: true,
        ..cfg()
    }
}

#[test]
fn sticky_pin_survives_a_cooldown_and_traffic_returns() {
    let pool = pool_with(
        sticky(Strategy::RoundRobin),
        vec![spec("a"), spec("b"), spec("c")],
    );
    assert_eq!(session_key(&pool, "s1", T0), "a");
    for _ in 0..5 {
        // Other traffic moves the round-robin cursor; the session stays put.
        any_key(&pool, T0);
        assert_eq!(session_key(&pool, "s1", T0), "a");
    }
    hit(&pool, "a", RateLimited, T0);
    let during: Vec<String> = (0..4).map(|_| session_key(&pool, "s1", T0)).collect();
    assert!(during.iter().all(|k| k != "a"));
    // Not re-pinned: the stand-ins rotate.
    assert!(during.contains(&"b".to_owned()) && during.contains(&"c".to_owned()));

    let now = T0 + MIN;
    probe(&pool, "a", out(Success), now);
    assert_eq!(session_key(&pool, "s1", now), "a");
}

#[test]
fn sticky_pin_waits_out_a_full_key() {
    let mut a = spec("a");
    a.max_concurrent = Some(1);
    let pool = pool_with(sticky(Strategy::RoundRobin), vec![a, spec("b")]);
    let pick = Pick {
        session: Some("s1"),
        exclude: &[],
        avoid_groups: &[],
        model: None,
    };
    let held = pool.acquire(&pick, T0).unwrap();
    assert_eq!(held.key_id().as_str(), "a");
    assert_eq!(session_key(&pool, "s1", T0), "b");
    drop(held);
    assert_eq!(session_key(&pool, "s1", T0), "a");
}

#[test]
fn sticky_re_pins_after_the_key_is_disabled() {
    let pool = pool_with(
        sticky(Strategy::RoundRobin),
        vec![spec("a"), spec("b"), spec("c")],
    );
    assert_eq!(session_key(&pool, "s1", T0), "a");
    hit(&pool, "a", InvalidCredential, T0);
    let moved = session_key(&pool, "s1", T0);
    assert_ne!(moved, "a");
    let now = T0 + 5 * MIN;
    probe(&pool, "a", out(Success), now);
    for _ in 0..3 {
        assert_eq!(session_key(&pool, "s1", now), moved);
    }
}

#[test]
fn sticky_re_pins_after_the_key_is_removed() {
    let pool = pool_with(sticky(Strategy::RoundRobin), vec![spec("a"), spec("b")]);
    assert_eq!(session_key(&pool, "s1", T0), "a");
    pool.remove_key(&kid("a"));
    assert_eq!(session_key(&pool, "s1", T0), "b");
    pool.upsert_key(spec("a"), T0);
    for _ in 0..3 {
        assert_eq!(session_key(&pool, "s1", T0), "b");
    }
}

#[test]
fn sticky_pin_expires_after_its_idle_ttl() {
    let pool = pool_with(sticky(Strategy::RoundRobin), vec![spec("a"), spec("b")]);
    assert_eq!(session_key(&pool, "s1", T0), "a");
    // Use refreshes the pin: idle time counts from the last use.
    assert_eq!(session_key(&pool, "s1", T0 + 30 * MIN), "a");
    assert_eq!(session_key(&pool, "s1", T0 + 90 * MIN), "a");
    // Idle for more than an hour: forgotten, chosen afresh (round-robin's turn is b).
    let later = T0 + 90 * MIN + HOUR + 1;
    assert_eq!(session_key(&pool, "s1", later), "b");
    assert_eq!(session_key(&pool, "s1", later), "b");
}

#[test]
fn sessions_are_ignored_unless_sticky_is_on() {
    let pool = pool(&["a", "b"]);
    let keys: Vec<String> = (0..4).map(|_| session_key(&pool, "s1", T0)).collect();
    assert_eq!(keys, ["a", "b", "a", "b"]);
}

#[test]
fn affinity_stays_within_its_capacity_and_keeps_the_newest() {
    let mut affinity = Affinity::new(HOUR, 10);
    let sessions: Vec<u64> = (0..25)
        .map(|i| affinity.session(&format!("session-{i}")))
        .collect();
    for (i, &s) in sessions.iter().enumerate() {
        affinity.pin(s, kid("a"), T0 + i64::try_from(i).unwrap());
        assert!(affinity.len() <= 10);
    }
    assert!(affinity.lookup(sessions[24], T0 + 25).is_some());
    assert!(affinity.lookup(sessions[23], T0 + 25).is_some());
    assert!(affinity.lookup(sessions[0], T0 + 25).is_none());

    // Same instant for everyone: the pin just made still survives the sweep.
    let mut affinity = Affinity::new(HOUR, 4);
    let s: Vec<u64> = (0..5).map(|i| affinity.session(&format!("x{i}"))).collect();
    for &h in &s {
        affinity.pin(h, kid("a"), T0);
    }
    assert!(affinity.lookup(s[4], T0).is_some());
}

// === restore ===

#[test]
fn state_is_restored_exactly_from_what_was_persisted() {
    let specs = || -> Vec<KeySpec> {
        ["a", "b", "c", "d", "e"]
            .iter()
            .map(|id| spec(id))
            .collect()
    };
    let first = pool_with(cfg(), specs());
    hit(&first, "a", RateLimited, T0);
    hit(&first, "b", InvalidCredential, T0);
    first.set_enabled(&kid("c"), false, T0);
    hit(&first, "d", BillingExhausted, T0);
    let saved = first.persisted();

    let now = T0 + 30 * SEC;
    let restored = KeyPool::new(cfg(), specs(), saved.clone(), now);
    assert_eq!(restored.persisted(), saved);
    let states: Vec<&str> = restored.snapshot(now).iter().map(|v| v.state).collect();
    assert_eq!(
        states,
        [
            "cooling_down",
            "disabled",
            "disabled",
            "cooling_down",
            "active"
        ]
    );
    assert_eq!(view(&restored, "a", now).cooldown_until, Some(T0 + MIN));
    assert!(!view(&restored, "c", now).enabled);
    assert_eq!(view(&restored, "b", now).next_probe_at, Some(T0 + 5 * MIN));
    // The strike survived: a's next 429 lands on the second rung.
    probe(&restored, "a", out(Success), T0 + MIN);
    hit(&restored, "a", RateLimited, T0 + MIN);
    assert_eq!(
        view(&restored, "a", T0 + MIN).cooldown_until,
        Some(T0 + 6 * MIN)
    );

    // Restarted after a's cooldown ended: a is probed before it takes traffic.
    let late = T0 + 2 * MIN;
    let restored = KeyPool::new(cfg(), specs(), saved, late);
    assert_eq!(restored.persisted()[0].state, "probing");
    assert_eq!(view(&restored, "a", late).state, "probing");
    assert_eq!(view(&restored, "c", late).state, "disabled");
    let tickets: Vec<String> = restored
        .due_probes(late)
        .iter()
        .map(|t| t.key_id.as_str().to_owned())
        .collect();
    assert_eq!(tickets, ["a"]);
}

#[test]
fn restore_ignores_unknown_keys_and_honours_a_disabled_spec() {
    let mut c = spec("c");
    c.enabled = false;
    let saved = vec![
        PersistedState {
            key_id: kid("ghost"),
            state: "disabled".into(),
            reason: Some("operator".into()),
            until: None,
            rate_strikes: 0,
            billing_strikes: 0,
            updated_at: T0,
        },
        PersistedState {
            key_id: kid("c"),
            state: "active".into(),
            reason: None,
            until: None,
            rate_strikes: 2,
            billing_strikes: 0,
            updated_at: T0,
        },
    ];
    let pool = KeyPool::new(cfg(), vec![spec("a"), c], saved, T0);
    assert_eq!(pool.len(), 2);
    let v = view(&pool, "c", T0);
    assert_eq!((v.state, v.enabled), ("disabled", false));
    assert_eq!(pool.persisted()[1].rate_strikes, 2);
}

// === leases ===

#[test]
fn lease_drop_releases_the_slot_exactly_once() {
    let mut a = spec("a");
    a.max_concurrent = Some(1);
    let pool = pool_with(
        Config {
            server_error_strikes: 2,
            ..cfg()
        },
        vec![a],
    );
    let lease = take(&pool, "a", T0);
    assert_eq!(view(&pool, "a", T0).in_flight, 1);
    let (_, skipped) = no_key(&pool, &Pick::default(), T0);
    assert_eq!(reasons(&skipped), vec![("a".into(), SkipReason::Full)]);

    // Reporting does not free the slot, and a second report is ignored.
    pool.report(&lease, &out(ServerError), T0);
    pool.report(&lease, &out(ServerError), T0);
    let v = view(&pool, "a", T0);
    assert_eq!((v.in_flight, v.errors, v.state), (1, 1, "active"));

    drop(lease);
    assert_eq!(view(&pool, "a", T0).in_flight, 0);
    let again = take(&pool, "a", T0);
    assert_eq!(view(&pool, "a", T0).in_flight, 1);
    drop(again);
    assert_eq!(view(&pool, "a", T0).in_flight, 0);
}

#[test]
fn leases_release_from_other_threads() {
    let pool = pool(&["a"]);
    let leases: Vec<Lease> = (0..8).map(|_| take(&pool, "a", T0)).collect();
    std::thread::scope(|scope| {
        for lease in leases {
            scope.spawn(move || drop(lease));
        }
    });
    assert_eq!(view(&pool, "a", T0).in_flight, 0);
}

#[test]
fn reports_for_a_removed_key_are_ignored() {
    let pool = pool(&["a", "b"]);
    let old = take(&pool, "a", T0);
    pool.remove_key(&kid("a"));
    pool.upsert_key(spec("a"), T0);
    pool.report(&old, &out(InvalidCredential), T0);
    drop(old);
    let v = view(&pool, "a", T0);
    assert_eq!((v.state, v.in_flight, v.requests), ("active", 0, 0));
}

// === keys and views ===

#[test]
fn upsert_updates_in_place_and_remove_forgets() {
    let pool = pool(&["a"]);
    hit(&pool, "a", RateLimited, T0);
    let mut a = spec("a");
    a.name = "renamed".into();
    a.weight = 3;
    a.group = Some("team-x".into());
    pool.upsert_key(a, T0);
    let v = view(&pool, "a", T0);
    assert_eq!(
        (v.name.as_str(), v.weight, v.state),
        ("renamed", 3, "cooling_down")
    );
    assert_eq!(v.group.as_deref(), Some("team-x"));

    pool.upsert_key(spec("b"), T0);
    assert_eq!(pool.len(), 2);
    assert_eq!(any_key(&pool, T0), "b");

    let mut rx = pool.subscribe();
    let mut off = spec("b");
    off.enabled = false;
    pool.upsert_key(off, T0);
    assert_eq!(rx.try_recv().unwrap().reason, "operator");
    assert!(!view(&pool, "b", T0).enabled);

    pool.remove_key(&kid("a"));
    pool.remove_key(&kid("a"));
    assert_eq!(pool.len(), 1);
    pool.remove_key(&kid("b"));
    assert!(pool.is_empty());
    let (retry, skipped) = no_key(&pool, &Pick::default(), T0);
    assert_eq!((retry, skipped.len()), (None, 0));
}

#[test]
fn a_new_secret_for_a_rejected_key_gets_it_probed() {
    let pool = pool(&["a"]);
    hit(&pool, "a", InvalidCredential, T0);
    let mut a = spec("a");
    a.secret = Secret::new("sk-ant-api03-fresh".into());
    pool.upsert_key(a, T0 + SEC);
    assert_eq!(view(&pool, "a", T0 + SEC).state, "probing");
    let ticket = pool.due_probes(T0 + SEC).pop().unwrap();
    assert_eq!(ticket.secret.expose(), "sk-ant-api03-fresh");

    // An operator's switch is not the credential's fault: a new secret leaves it alone.
    let pool = pool_with(cfg(), vec![spec("b")]);
    pool.set_enabled(&kid("b"), false, T0);
    let mut rx = pool.subscribe();
    let mut b = spec("b");
    b.secret = Secret::new("sk-ant-api03-other".into());
    b.enabled = false;
    pool.upsert_key(b, T0 + SEC);
    assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Empty);
    assert_eq!(
        view(&pool, "b", T0 + SEC).reason.as_deref(),
        Some("operator")
    );
}

#[test]
fn next_wake_follows_cooldowns_probes_and_tickets() {
    let pool = pool(&["a", "b"]);
    assert_eq!(pool.next_wake(), None);
    hit(&pool, "a", RateLimited, T0);
    assert_eq!(pool.next_wake(), Some(T0 + MIN));
    hit(&pool, "b", InvalidCredential, T0);
    assert_eq!(pool.next_wake(), Some(T0 + MIN));

    let now = T0 + MIN;
    let tickets = pool.due_probes(now);
    assert_eq!(tickets.len(), 1);
    assert_eq!(
        pool.next_wake(),
        Some(T0 + 5 * MIN),
        "a's probe is in flight"
    );
    drop(tickets);
    assert_eq!(pool.next_wake(), Some(now), "a waits for a probe");
}

#[test]
fn readiness_needs_an_active_key() {
    let pool = pool(&["a", "b"]);
    assert!(pool.has_usable_key(T0));
    hit(&pool, "a", RateLimited, T0);
    assert!(pool.has_usable_key(T0));
    pool.set_enabled(&kid("b"), false, T0);
    assert!(!pool.has_usable_key(T0));
    assert!(
        !pool.has_usable_key(T0 + MIN),
        "an ended cooldown is probed first"
    );
    probe(&pool, "a", out(Success), T0 + MIN);
    assert!(pool.has_usable_key(T0 + MIN));
    assert!(!KeyPool::new(cfg(), Vec::new(), Vec::new(), T0).has_usable_key(T0));
}

#[test]
fn jitter_spreads_ladder_cooldowns_within_bounds() {
    let mut specs: Vec<KeySpec> = (0..40).map(|i| spec(&format!("k{i}"))).collect();
    specs.push(spec("p"));
    let pool = pool_with(Config::default(), specs);
    let mut pauses = Vec::new();
    for i in 0..40 {
        let id = format!("k{i}");
        hit(&pool, &id, RateLimited, T0);
        pauses.push(view(&pool, &id, T0).cooldown_until.unwrap() - T0);
    }
    assert!(
        pauses.iter().all(|p| (54 * SEC..=66 * SEC).contains(p)),
        "{pauses:?}"
    );
    pauses.sort_unstable();
    pauses.dedup();
    assert!(pauses.len() > 1, "jitter should vary");
    // The provider's time is never jittered.
    hit_with(&pool, "p", retry_at(T0 + 17 * SEC), T0);
    assert_eq!(view(&pool, "p", T0).cooldown_until, Some(T0 + 17 * SEC));
}

#[test]
fn strategy_names_round_trip() {
    for s in [Strategy::RoundRobin, Strategy::Headroom, Strategy::Priority] {
        assert_eq!(Strategy::parse(s.as_str()), Some(s));
    }
    assert_eq!(Strategy::parse("random"), None);
    assert_eq!(
        SkipReason::CoolingDown { until: 0 }.as_str(),
        "cooling_down"
    );
}

#[test]
fn handles_are_shareable_across_tasks() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<KeyPool>();
    assert_send_sync::<Lease>();
    assert_send_sync::<ProbeTicket>();
    assert_send_sync::<Transition>();
}

#[test]
fn unusable_config_values_are_made_safe() {
    let pool = pool_with(
        Config {
            rate_limit_ladder_ms: Vec::new(),
            server_error_strikes: 0,
            ..cfg()
        },
        vec![spec("a"), spec("b")],
    );
    // An empty ladder falls back to the default one…
    hit(&pool, "a", Success, T0);
    hit(&pool, "a", RateLimited, T0);
    assert_eq!(view(&pool, "a", T0).cooldown_until, Some(T0 + MIN));
    // …and a threshold of 0 means the first server error already counts (a served just
    // before, so the error is b's own).
    hit(&pool, "b", ServerError, T0);
    assert_eq!(view(&pool, "b", T0).cooldown_until, Some(T0 + 30 * SEC));
}

#[test]
fn after_a_rate_limit_keys_of_other_groups_are_preferred() {
    let mut a = spec("a");
    a.group = Some("org-1".into());
    let mut b = spec("b");
    b.group = Some("org-1".into());
    let mut c = spec("c");
    c.group = Some("org-2".into());
    let pool = KeyPool::new(Config::default(), vec![a, b, c], Vec::new(), T0);
    let first = pool.acquire(&Pick::default(), T0).unwrap();
    assert_eq!(first.name(), "name-a");
    let avoid: Vec<Arc<str>> = vec![first.group().unwrap().clone()];
    let tried = [first.key_id().clone()];
    let next = pool
        .acquire(
            &Pick {
                session: None,
                exclude: &tried,
                avoid_groups: &avoid,
                model: None,
            },
            T0,
        )
        .unwrap();
    assert_eq!(
        next.name(),
        "name-c",
        "b bills to the same organisation as a"
    );

    // With only same-group keys left, one of them is still tried.
    let tried = [first.key_id().clone(), next.key_id().clone()];
    let last = pool
        .acquire(
            &Pick {
                session: None,
                exclude: &tried,
                avoid_groups: &avoid,
                model: None,
            },
            T0,
        )
        .unwrap();
    assert_eq!(last.name(), "name-b");
}

// === operator actions ===

#[test]
fn clearing_a_cooldown_returns_the_key_in_slow_start_with_strikes_forgotten() {
    let pool = pool(&["a", "b"]);
    hit(&pool, "a", RateLimited, T0);
    probe(&pool, "a", out(RateLimited), T0 + 2 * MIN);
    assert_eq!(
        view(&pool, "a", T0 + 2 * MIN).cooldown_until,
        Some(T0 + 7 * MIN)
    );
    assert!(pool.clear_cooldown(&kid("a"), T0 + 3 * MIN));
    let v = view(&pool, "a", T0 + 3 * MIN);
    assert_eq!(v.state, "active");
    assert_eq!(v.ramp_cap, Some(1), "back in slow start");
    // Strikes are forgotten: the next 429 starts the ladder again at its first rung (1 min).
    hit(&pool, "a", RateLimited, T0 + 4 * MIN);
    assert_eq!(
        view(&pool, "a", T0 + 4 * MIN).cooldown_until,
        Some(T0 + 5 * MIN)
    );
    // An active or operator-disabled key is left alone; an unknown one is refused.
    assert!(pool.clear_cooldown(&kid("b"), T0));
    assert_eq!(view(&pool, "b", T0).state, "active");
    pool.set_enabled(&kid("b"), false, T0);
    pool.clear_cooldown(&kid("b"), T0);
    assert_eq!(view(&pool, "b", T0).state, "disabled");
    assert!(!pool.clear_cooldown(&kid("nope"), T0));
}

#[test]
fn probe_now_moves_a_cooling_key_to_probing_and_shares_the_one_probe_slot() {
    let pool = pool(&["a", "b"]);
    hit(&pool, "a", RateLimited, T0);
    let ticket = match pool.probe_now(&kid("a"), T0 + SEC) {
        Ok(ProbeNow::Ticket(t)) => t,
        other => panic!("expected a ticket, got {other:?}"),
    };
    assert_eq!(view(&pool, "a", T0 + SEC).state, "probing");
    // The prober does not probe it a second time, nor does a second click.
    assert!(pool.due_probes(T0 + 2 * SEC).is_empty());
    assert_eq!(
        pool.probe_now(&kid("a"), T0 + 2 * SEC).unwrap_err(),
        ProbeRefused::Busy
    );
    pool.probe_finished(ticket, &out(Success), T0 + 3 * SEC);
    assert_eq!(view(&pool, "a", T0 + 3 * SEC).state, "active");

    // An active key gets a lease whose report counts like any other.
    let Ok(ProbeNow::Lease(lease)) = pool.probe_now(&kid("b"), T0) else {
        panic!("an active key is checked with a lease");
    };
    pool.report(&lease, &out(InvalidCredential), T0);
    assert_eq!(view(&pool, "b", T0).state, "disabled");

    pool.set_enabled(&kid("a"), false, T0 + 4 * SEC);
    assert_eq!(
        pool.probe_now(&kid("a"), T0 + 4 * SEC).unwrap_err(),
        ProbeRefused::OperatorDisabled
    );
    assert_eq!(
        pool.probe_now(&kid("x"), T0).unwrap_err(),
        ProbeRefused::Unknown
    );
}

// === no client can hurt a key; holds, shortage, preference, caps ===

fn pick_model(model: &str) -> Pick<'_> {
    Pick {
        model: Some(model),
        ..Pick::default()
    }
}

#[test]
fn a_403_for_one_model_holds_the_key_out_for_that_model_only() {
    let pool = pool(&["a"]);
    let lease = take(&pool, "a", T0);
    let denied = Outcome {
        scope: Scope::RequestModel,
        ..out(ModelDenied)
    };
    pool.report_for(&lease, &denied, Some("claude-opus-5-5"), T0);
    drop(lease);
    let (retry, skipped) = no_key(&pool, &pick_model("claude-opus-5-5"), T0);
    assert_eq!(retry, Some(T0 + HOUR));
    assert!(matches!(skipped[0].reason, SkipReason::ModelHeld { .. }));
    let lease = pool.acquire(&pick_model("claude-sonnet-5-5"), T0).unwrap();
    assert_eq!(lease.key_id().as_str(), "a", "other models are served");
    assert_eq!(view(&pool, "a", T0).state, "active");
    assert!(
        pool.acquire(&pick_model("claude-opus-5-5"), T0 + HOUR)
            .is_ok()
    );
}

#[test]
fn a_spent_model_window_holds_its_family_until_its_reset() {
    let pool = pool(&["a"]);
    let lease = take(&pool, "a", T0);
    let spent = Outcome {
        scope: Scope::Family(crate::types::ModelFamily::Opus),
        retry_at_ms: Some(T0 + 2 * 24 * HOUR),
        ..out(RateLimited)
    };
    pool.report_for(&lease, &spent, Some("claude-opus-5-5"), T0);
    drop(lease);
    assert!(pool.acquire(&pick_model("claude-opus-4-8"), T0).is_err());
    assert!(pool.acquire(&pick_model("claude-sonnet-5-5"), T0).is_ok());
    let v = view(&pool, "a", T0);
    assert_eq!(
        v.state, "active",
        "the account's other models are not quarantined"
    );
    assert_eq!(v.holds[0].until, T0 + 2 * 24 * HOUR);
}

#[test]
fn an_exhausted_pool_says_what_its_keys_are_out_for_and_when_one_is_back() {
    let pool = pool(&["a", "b"]);
    hit_with(&pool, "a", retry_at(T0 + 30 * SEC), T0);
    hit_with(&pool, "b", retry_at(T0 + 90 * SEC), T0);
    match pool.acquire(&Pick::default(), T0 + SEC) {
        Err(Error::NoKeyAvailable {
            retry_at, shortage, ..
        }) => {
            assert_eq!(retry_at, Some(T0 + 30 * SEC), "the first back");
            assert_eq!(shortage, Shortage::RateLimited);
        }
        Ok(_) => panic!("every key is cooling"),
    }

    let pool = super::tests::pool(&["a", "p"]);
    peer_serves(&pool, T0);
    for _ in 0..3 {
        hit(&pool, "a", ServerError, T0);
    }
    hit(&pool, "p", InvalidCredential, T0);
    match pool.acquire(&Pick::default(), T0) {
        Err(Error::NoKeyAvailable {
            retry_at, shortage, ..
        }) => {
            assert_eq!(retry_at, Some(T0 + 30 * SEC));
            assert_eq!(shortage, Shortage::Failing);
        }
        Ok(_) => panic!("a is ejected and p disabled"),
    }
}

#[test]
fn a_retry_goes_to_the_key_most_likely_to_succeed() {
    let pool = pool(&["a", "b", "c", "d"]);
    // c has been failing; d has only succeeded; b is unknown.
    for _ in 0..2 {
        hit(&pool, "d", Success, T0);
        hit(&pool, "c", RateLimited, T0);
        probe(&pool, "c", out(Success), T0 + 2 * HOUR);
    }
    hit(&pool, "c", Success, T0 + 2 * HOUR);
    hit(&pool, "c", Overloaded, T0 + 2 * HOUR);
    let tried = [kid("a")];
    let lease = pool
        .acquire(
            &Pick {
                exclude: &tried,
                ..Pick::default()
            },
            T0 + 2 * HOUR,
        )
        .unwrap();
    assert_ne!(lease.key_id().as_str(), "c", "not the next in rotation");
}

#[test]
fn every_strategy_respects_the_burst_limit() {
    for strategy in [Strategy::RoundRobin, Strategy::Headroom, Strategy::Priority] {
        let mut a = spec("a");
        a.caps.rps = Some(2);
        a.priority = 0;
        let mut b = spec("b");
        b.priority = 1;
        let pool = pool_with(Config { strategy, ..cfg() }, vec![a, b]);
        let picks: Vec<String> = (0..6).map(|_| any_key(&pool, T0)).collect();
        let on_a = picks.iter().filter(|k| *k == "a").count();
        assert_eq!(on_a, 2, "{strategy:?}: {picks:?}");
    }
}

#[test]
fn credits_that_expire_first_are_used_first() {
    let mut a = spec("a");
    a.credits_expire_at = Some(T0 + 30 * 24 * HOUR);
    let mut b = spec("b");
    b.credits_expire_at = Some(T0 + 2 * 24 * HOUR);
    let c = spec("c");
    let pool = pool_with(cfg(), vec![a, b, c]);
    let picks: Vec<String> = (0..4).map(|_| any_key(&pool, T0)).collect();
    assert!(picks.iter().all(|k| k == "b"), "{picks:?}");
}

#[test]
fn a_429_moves_traffic_to_other_organisations_until_its_reset() {
    let pool = pool(&["a1", "a2", "b1"]);
    for (id, org) in [("a1", "org-a"), ("a2", "org-a"), ("b1", "org-b")] {
        let lease = take(&pool, id, T0);
        pool.note_organization(&lease, org);
        pool.report(&lease, &out(Success), T0);
    }
    hit_with(&pool, "a1", retry_at(T0 + 40 * SEC), T0);
    let picks: Vec<String> = (0..4).map(|_| any_key(&pool, T0 + SEC)).collect();
    assert!(picks.iter().all(|k| k == "b1"), "{picks:?}");
    // Its sibling is still there when the other organisation cannot serve.
    hit(&pool, "b1", InvalidCredential, T0 + SEC);
    assert_eq!(any_key(&pool, T0 + SEC), "a2");
    assert_eq!(view(&pool, "a2", T0).organization.as_deref(), Some("org-a"));
}

#[test]
fn a_session_moves_to_a_sibling_of_its_organisation_first() {
    let pool = pool_with(
        Config {
            sticky: true,
            ..cfg()
        },
        vec![spec("a1"), spec("b1"), spec("a2"), spec("b2")],
    );
    let org = |id: &str| {
        if id.starts_with('a') {
            "org-a"
        } else {
            "org-b"
        }
    };
    for id in ["a1", "b1", "a2", "b2"] {
        let lease = take(&pool, id, T0);
        pool.note_organization(&lease, org(id));
    }
    let pinned = session_key(&pool, "conv", T0);
    hit_with(&pool, &pinned, retry_at(T0 + 10 * SEC), T0);
    let pick = Pick {
        session: Some("conv"),
        ..Pick::default()
    };
    for _ in 0..3 {
        let lease = pool.acquire(&pick, T0 + SEC).unwrap();
        let served = lease.key_id().as_str();
        assert_ne!(served, pinned);
        assert_eq!(
            org(served),
            org(&pinned),
            "the prompt cache is per organisation"
        );
        assert!(lease.moved(), "the record says the turn moved");
    }
}

#[test]
fn transitions_that_outlast_a_minute_are_handed_back_for_saving_first() {
    let pool = pool(&["a", "b"]);
    let lease = take(&pool, "a", T0);
    let reported = pool.report(&lease, &out(InvalidCredential), T0);
    assert_eq!(reported.durable.map(|s| s.state), Some("disabled".into()));
    let lease = take(&pool, "b", T0);
    let reported = pool.report(&lease, &retry_at(T0 + 5 * SEC), T0);
    assert!(
        reported.durable.is_none(),
        "a 5 s cooldown need not wait for the disk"
    );
}
