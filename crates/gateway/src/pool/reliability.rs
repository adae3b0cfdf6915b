//! Outlier detection: how likely each key is to succeed, judged by its recent outcomes, and
//! whose fault a failure is. A failure that may be the provider's (overload, 5xx, a timeout,
//! a broken stream) is held against the key only when its peers are succeeding meanwhile;
//! when no key has succeeded lately the provider is failing as a whole and no key is blamed.

use crate::types::EpochMs;

/// Weight of the newest outcome in the success average: about the last ten outcomes count.
const EWMA_WEIGHT: f64 = 0.2;
/// A peer's success this recent shows the provider is serving.
pub(super) const PEER_WINDOW_MS: i64 = 30_000;
/// Outcomes a key needs before its success rate is compared with its peers'.
pub(super) const MIN_SAMPLES: u32 = 10;
/// A key whose success rate is below this share of its peers' mean is an outlier.
pub(super) const SUCCESS_RATE_FLOOR: f64 = 0.5;

/// Whose trouble a failed attempt was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blame {
    /// Nothing failed (a success, or the client's own mistake).
    Nobody,
    /// This credential's own trouble (its 429, a rejected credential, billing, a model it may
    /// not use, or a failure while its peers succeed): moving to another credential adds load
    /// to nothing that is failing.
    Credential,
    /// The provider's as a whole: another attempt is a retry a retry budget must bound.
    Provider,
}

/// One key's recent record.
#[derive(Clone, Copy, Debug)]
pub(super) struct Reliability {
    /// Exponentially weighted success rate, 0.0–1.0; an unknown key starts at 1.0 (trusted
    /// until it fails).
    pub success: f64,
    pub samples: u32,
    pub last_success_at: Option<EpochMs>,
}

impl Default for Reliability {
    fn default() -> Self {
        Self {
            success: 1.0,
            samples: 0,
            last_success_at: None,
        }
    }
}

impl Reliability {
    pub(super) fn record(&mut self, ok: bool, now: EpochMs) {
        let sample = if ok { 1.0 } else { 0.0 };
        self.success += EWMA_WEIGHT * (sample - self.success);
        self.samples = self.samples.saturating_add(1);
        if ok {
            self.last_success_at = Some(now);
        }
    }

    /// Whether this key's success rate is far below `peer_mean`.
    pub(super) fn is_outlier(&self, peer_mean: Option<f64>) -> bool {
        self.samples >= MIN_SAMPLES
            && peer_mean.is_some_and(|mean| self.success < SUCCESS_RATE_FLOOR * mean)
    }
}

/// Whether any peer (not `me`) succeeded within the peer window.
pub(super) fn peers_serving<'a>(
    peers: impl Iterator<Item = (usize, &'a Reliability)>,
    me: usize,
    now: EpochMs,
) -> bool {
    peers
        .filter(|(i, _)| *i != me)
        .filter_map(|(_, r)| r.last_success_at)
        .any(|at| now.saturating_sub(at) <= PEER_WINDOW_MS)
}

/// The mean success rate of the peers (not `me`) with enough outcomes to judge.
pub(super) fn peer_mean<'a>(
    peers: impl Iterator<Item = (usize, &'a Reliability)>,
    me: usize,
) -> Option<f64> {
    let (sum, n) = peers
        .filter(|(i, r)| *i != me && r.samples >= MIN_SAMPLES)
        .fold((0.0, 0u32), |(sum, n), (_, r)| (sum + r.success, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}
