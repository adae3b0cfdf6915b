//! Sticky affinity: session → key pins, so one conversation keeps hitting the provider's prompt
//! cache on the same key. Bounded: idle pins expire after a TTL, and past the capacity the
//! oldest tenth is dropped in one sweep (amortised O(1) per pin).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use crate::types::{EpochMs, KeyId};

/// How many sessions one pool remembers.
pub(super) const MAX_SESSIONS: usize = 100_000;

#[derive(Debug)]
struct Pin {
    key: KeyId,
    last_used: EpochMs,
}

#[derive(Debug)]
pub(super) struct Affinity {
    pins: HashMap<u64, Pin>,
    /// Seeded per process: the session strings come from clients.
    hasher: RandomState,
    ttl_ms: i64,
    capacity: usize,
}

impl Affinity {
    pub(super) fn new(ttl_ms: i64, capacity: usize) -> Self {
        Self {
            pins: HashMap::new(),
            hasher: RandomState::new(),
            ttl_ms,
            capacity: capacity.max(1),
        }
    }

    /// The map is keyed by a hash, so no session string is kept.
    pub(super) fn session(&self, session: &str) -> u64 {
        self.hasher.hash_one(session)
    }

    /// The key a live pin points at; an idle-expired pin is forgotten.
    pub(super) fn lookup(&mut self, session: u64, now: EpochMs) -> Option<KeyId> {
        let pin = self.pins.get(&session)?;
        if now.saturating_sub(pin.last_used) > self.ttl_ms {
            self.pins.remove(&session);
            return None;
        }
        Some(pin.key.clone())
    }

    pub(super) fn touch(&mut self, session: u64, now: EpochMs) {
        if let Some(pin) = self.pins.get_mut(&session) {
            pin.last_used = pin.last_used.max(now);
        }
    }

    pub(super) fn pin(&mut self, session: u64, key: KeyId, now: EpochMs) {
        self.pins.insert(
            session,
            Pin {
                key,
                last_used: now,
            },
        );
        if self.pins.len() > self.capacity {
            self.evict(session, now);
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.pins.len()
    }

    /// Drops expired pins; if still over capacity, drops the oldest until 90 % of capacity is
    /// left. `keep` (the pin just made) always survives.
    fn evict(&mut self, keep: u64, now: EpochMs) {
        let ttl = self.ttl_ms;
        self.pins
            .retain(|_, pin| now.saturating_sub(pin.last_used) <= ttl);
        let target = self.capacity - self.capacity / 10;
        if self.pins.len() <= target {
            return;
        }
        let excess = self.pins.len() - target;
        let mut ages: Vec<EpochMs> = self.pins.values().map(|pin| pin.last_used).collect();
        let (_, cutoff, _) = ages.select_nth_unstable(excess - 1);
        let cutoff = *cutoff;
        self.pins
            .retain(|session, pin| pin.last_used > cutoff || *session == keep);
    }
}
