//! Selection strategies: which eligible key takes the next attempt. Eligibility (health,
//! in-flight cap, exclusion) is decided before; these functions only choose among the keys
//! marked eligible, and never allocate.

use std::cmp::Reverse;

use super::Strategy;
use super::key::Key;
use crate::types::{EpochMs, LimitWindow};

/// Chooses an eligible key by `strategy`. `eligible[i]` tells whether `keys[i]` may be chosen;
/// `cursor` is the round-robin position shared by RoundRobin and Headroom's tie-break.
pub(super) fn choose(
    strategy: Strategy,
    keys: &mut [Key],
    eligible: &[bool],
    cursor: &mut usize,
    model: Option<&str>,
    now: EpochMs,
) -> Option<usize> {
    match strategy {
        Strategy::RoundRobin => round_robin(eligible, cursor),
        Strategy::Headroom => headroom(keys, eligible, cursor, model, now),
        Strategy::Priority => priority(keys, eligible),
    }
}

/// The first eligible key at or after the cursor; the cursor moves past it.
fn round_robin(eligible: &[bool], cursor: &mut usize) -> Option<usize> {
    let n = eligible.len();
    let found = (0..n)
        .map(|offset| (*cursor + offset) % n)
        .find(|&i| eligible[i])?;
    *cursor = (found + 1) % n;
    Some(found)
}

/// Headroom, then the better (lower) priority, then the credits that expire first.
type Rank = (f64, Reverse<u32>, Reverse<EpochMs>);

/// The eligible key with the highest headroom score; ties go to the better (lower) priority,
/// then to the prepaid credits that expire first, then to the first in round-robin order from
/// the cursor, which then moves past the winner so ties rotate.
fn headroom(
    keys: &[Key],
    eligible: &[bool],
    cursor: &mut usize,
    model: Option<&str>,
    now: EpochMs,
) -> Option<usize> {
    let n = keys.len().min(eligible.len());
    let rank = |key: &Key, score: f64| -> Rank {
        (
            score,
            Reverse(key.priority),
            Reverse(key.credits_expire_at.unwrap_or(EpochMs::MAX)),
        )
    };
    let mut best: Option<(usize, Rank)> = None;
    for offset in 0..n {
        let i = (*cursor + offset) % n;
        if !eligible[i] {
            continue;
        }
        let candidate = rank(&keys[i], headroom_score(&keys[i], model, now));
        if best
            .is_none_or(|(_, top)| candidate.partial_cmp(&top) == Some(std::cmp::Ordering::Greater))
        {
            best = Some((i, candidate));
        }
    }
    let (found, _) = best?;
    *cursor = (found + 1) % n;
    Some(found)
}

/// How much room a key has left, 0.0 (none) to 1.0 (all): the lowest of its free in-flight
/// share (when capped) and, from the provider's last rate-limit snapshot, the remaining share
/// of every window whose reset is still ahead — for a subscription, the unused share of each
/// window that applies to `model`. A window without a reset time cannot be told apart from a
/// stale one and is left out.
pub(super) fn headroom_score(key: &Key, model: Option<&str>, now: EpochMs) -> f64 {
    let mut score: f64 = 1.0;
    if let Some(cap) = key.cap().filter(|&cap| cap > 0) {
        score = score.min(1.0 - f64::from(key.in_flight()) / f64::from(cap));
    }
    if let Some(snapshot) = &key.stats.last_ratelimit {
        let windows = [
            snapshot.requests,
            snapshot.tokens,
            snapshot.input_tokens,
            snapshot.output_tokens,
        ];
        for window in windows.iter().flatten() {
            if let Some(share) = remaining_share(window, now) {
                score = score.min(share);
            }
        }
        if let Some(subscription) = &snapshot.subscription {
            for (name, window) in subscription.windows() {
                let applies = match (name.family(), model) {
                    (Some(family), Some(model)) => family.covers(model),
                    (Some(_), None) => false,
                    (None, _) => true,
                };
                let live = window.reset_ms.is_some_and(|reset| reset > now);
                if let (true, true, Some(used)) = (applies, live, window.utilization) {
                    score = score.min(1.0 - used);
                }
            }
        }
    }
    score.max(0.0)
}

fn remaining_share(window: &LimitWindow, now: EpochMs) -> Option<f64> {
    let live = window.reset_ms.is_some_and(|reset| reset > now);
    if !live || window.limit == 0 {
        return None;
    }
    // Limits are far below 2^53; the share is a ratio, precision loss is irrelevant.
    #[allow(clippy::cast_precision_loss)]
    let share = window.remaining.min(window.limit) as f64 / window.limit as f64;
    Some(share)
}

/// The lowest `priority` value among eligible keys is the tier; inside it, smooth weighted
/// round-robin (nginx): every eligible key of the tier gains its weight, the largest running
/// weight wins (first on ties) and pays back the tier's total. Deterministic, and over one
/// cycle of Σweights picks each key exactly `weight` times, interleaved.
fn priority(keys: &mut [Key], eligible: &[bool]) -> Option<usize> {
    let tier = keys
        .iter()
        .zip(eligible)
        .filter(|(_, ok)| **ok)
        .map(|(key, _)| key.priority)
        .min()?;
    let mut total: i64 = 0;
    let mut best: Option<(usize, i64)> = None;
    for (i, key) in keys.iter_mut().enumerate() {
        if !eligible[i] || key.priority != tier {
            continue;
        }
        let weight = i64::from(key.weight.max(1));
        key.swrr_current += weight;
        total += weight;
        if best.is_none_or(|(_, top)| key.swrr_current > top) {
            best = Some((i, key.swrr_current));
        }
    }
    let (found, _) = best?;
    keys[found].swrr_current -= total;
    Some(found)
}
