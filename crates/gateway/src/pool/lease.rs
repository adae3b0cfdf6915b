//! Guards handed out by the pool: a [`Lease`] (a key checked out for one attempt) and a
//! [`ProbeTicket`] (the right to probe one key). Both give their slot back in `Drop`, exactly
//! once, whether or not the holder reported anything — a cancelled request or probe task
//! cannot leak a slot.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::Skip;
use crate::types::{EpochMs, KeyId, KeyKind, Secret};

/// A key checked out for one attempt. Report its outcome with `KeyPool::report` (once; later
/// reports are ignored); dropping it frees the in-flight slot.
#[must_use = "dropping a lease frees its key's in-flight slot at once"]
#[derive(Debug)]
pub struct Lease {
    pub(super) key_id: KeyId,
    pub(super) name: Arc<str>,
    pub(super) kind: KeyKind,
    pub(super) group: Option<Arc<str>>,
    pub(super) secret: Arc<Secret<String>>,
    pub(super) skipped: Vec<Skip>,
    /// The session's pinned key could not serve, so this one does instead.
    pub(super) moved: bool,
    /// The key has a daily token quota: its usage must be counted.
    pub(super) counts_tokens: bool,
    /// When the key's OAuth access token expires, if known.
    pub(super) token_expires_at: Option<EpochMs>,
    /// The organisation the provider last reported for the key.
    pub(super) organization: Option<Arc<str>>,
    pub(super) incarnation: u64,
    /// The key's state-machine epoch when the lease was taken.
    pub(super) epoch: u64,
    pub(super) in_flight: Arc<AtomicU32>,
    pub(super) reported: AtomicBool,
}

impl Lease {
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The key's group label (e.g. the organisation it bills to).
    pub fn group(&self) -> Option<&Arc<str>> {
        self.group.as_ref()
    }

    pub fn secret(&self) -> &Secret<String> {
        &self.secret
    }

    /// The secret as the pool shares it.
    pub fn shared_secret(&self) -> Arc<Secret<String>> {
        Arc::clone(&self.secret)
    }

    /// Keys passed over for this attempt and why (empty, without allocation, when none were).
    pub fn skipped(&self) -> &[Skip] {
        &self.skipped
    }

    /// Whether a sticky session had to move off its pinned key for this attempt.
    pub fn moved(&self) -> bool {
        self.moved
    }

    /// Whether the provider last reported this organisation for the key (so noting it again
    /// would change nothing).
    pub fn in_organization(&self, organization: &str) -> bool {
        self.organization.as_deref() == Some(organization)
    }

    /// When the key's OAuth access token expires, if known.
    pub fn token_expires_at(&self) -> Option<EpochMs> {
        self.token_expires_at
    }

    /// Whether the tokens this attempt uses count against a daily quota
    /// (`KeyPool::record_tokens`).
    pub fn counts_tokens(&self) -> bool {
        self.counts_tokens
    }

    /// True the first time only: the guard behind "report at most once".
    pub(super) fn claim_report(&self) -> bool {
        !self.reported.swap(true, Ordering::AcqRel)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Each lease incremented the counter exactly once, under the pool lock.
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The right to probe one key with the provider's cheapest call. At most one ticket per key is
/// alive; hand it back with `KeyPool::probe_finished`. Dropping it unfinished (the probe task
/// was cancelled) lets `due_probes` issue a new one.
#[derive(Debug)]
pub struct ProbeTicket {
    pub key_id: KeyId,
    pub kind: KeyKind,
    pub secret: Secret<String>,
    pub name: String,
    pub(super) seq: u64,
    pub(super) slot: Arc<AtomicU64>,
}

impl ProbeTicket {
    /// Whether this ticket is the one in flight for the key owning `slot`.
    pub(super) fn is_current(&self, slot: &Arc<AtomicU64>) -> bool {
        Arc::ptr_eq(&self.slot, slot) && self.slot.load(Ordering::Acquire) == self.seq
    }

    /// Frees the key's probe slot if it is still this ticket's.
    pub(super) fn release(&self) {
        let _ = self
            .slot
            .compare_exchange(self.seq, 0, Ordering::AcqRel, Ordering::Acquire);
    }
}

impl Drop for ProbeTicket {
    fn drop(&mut self) {
        self.release();
    }
}
