//! The global retry budget, sized like Envoy's: retries in flight may be at most `ratio` of the
//! requests in flight, with a floor so that a quiet gateway can still retry. It bounds retries
//! after provider-wide signals only (overload, 5xx, timeouts, broken connections, when no
//! credential is succeeding): those are the retries that would turn a provider's outage into a
//! storm. Moving away from a credential whose failure is its own (its 429, a rejected
//! credential, billing, a failure while its peers succeed) adds load to nothing that is failing
//! and is not counted.
//!
//! Two counters, no lock: a request holds an [`InFlight`] for its whole life, a request that is
//! retrying holds one [`Retrying`] from its first such retry to its end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct RetryBudget {
    ratio: f64,
    min_retries: u64,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    retries: AtomicU64,
}

/// A request in flight; dropping it ends the request.
pub struct InFlight(Arc<Counts>);

/// A request that retries after a provider-wide failure; dropping it ends the retrying.
pub struct Retrying(Arc<Counts>);

impl RetryBudget {
    pub fn new(ratio: f64, min_retries: u32) -> Self {
        Self {
            ratio: ratio.max(0.0),
            min_retries: u64::from(min_retries),
            counts: Arc::default(),
        }
    }

    /// A request starts.
    pub fn request(&self) -> InFlight {
        self.counts.requests.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(&self.counts))
    }

    /// May one more request retry after a provider-wide failure? The share is of the requests
    /// in flight now, the retrying ones included.
    pub fn try_retry(&self) -> Option<Retrying> {
        let requests = self.counts.requests.load(Ordering::Acquire);
        // Request counts are far below 2^53.
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let share = (requests as f64 * self.ratio) as u64;
        let allowed = share.max(self.min_retries);
        let counts = &self.counts.retries;
        let mut current = counts.load(Ordering::Acquire);
        loop {
            if current >= allowed {
                return None;
            }
            match counts.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(Retrying(Arc::clone(&self.counts))),
                Err(seen) => current = seen,
            }
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.requests.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Retrying {
    fn drop(&mut self) {
        self.0.retries.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_in_flight_are_a_share_of_requests_in_flight() {
        let budget = RetryBudget::new(0.2, 0);
        let requests: Vec<InFlight> = (0..100).map(|_| budget.request()).collect();
        let retrying: Vec<Retrying> = (0..100).filter_map(|_| budget.try_retry()).collect();
        assert_eq!(retrying.len(), 20, "20 % of 100 requests in flight");
        drop(retrying);
        assert!(
            budget.try_retry().is_some(),
            "ended retries give their room back"
        );
        drop(requests);
    }

    #[test]
    fn the_floor_lets_a_quiet_gateway_retry() {
        let budget = RetryBudget::new(0.2, 3);
        let _one = budget.request();
        let retrying: Vec<Retrying> = (0..10).filter_map(|_| budget.try_retry()).collect();
        assert_eq!(retrying.len(), 3);
    }

    #[test]
    fn ended_requests_shrink_the_share() {
        let budget = RetryBudget::new(0.5, 0);
        let mut requests: Vec<InFlight> = (0..10).map(|_| budget.request()).collect();
        requests.truncate(2);
        let retrying: Vec<Retrying> = (0..10).filter_map(|_| budget.try_retry()).collect();
        assert_eq!(retrying.len(), 1, "half of the 2 left");
    }
}
