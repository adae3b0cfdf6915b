//! The global retry budget: retries may add at most `ratio` to upstream attempts, with a floor of
//! a few per second, so an upstream outage is not multiplied into a storm by our failover.
//! A token bucket: each first attempt deposits `ratio` tokens, the floor refills continuously,
//! each retry withdraws one.

use parking_lot::Mutex;

use crate::types::EpochMs;

pub struct RetryBudget {
    ratio: f64,
    floor_per_sec: f64,
    cap: f64,
    // Held only for a few arithmetic operations, never across an await.
    bucket: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    refilled_at: EpochMs,
}

impl RetryBudget {
    pub fn new(ratio: f64, floor_per_sec: u32, now: EpochMs) -> Self {
        let floor_per_sec = f64::from(floor_per_sec);
        let cap = (floor_per_sec * 10.0).max(100.0);
        Self {
            ratio,
            floor_per_sec,
            cap,
            bucket: Mutex::new(Bucket {
                tokens: floor_per_sec,
                refilled_at: now,
            }),
        }
    }

    /// A request's first attempt.
    pub fn deposit(&self, now: EpochMs) {
        let mut bucket = self.bucket.lock();
        self.refill(&mut bucket, now);
        bucket.tokens = (bucket.tokens + self.ratio).min(self.cap);
    }

    /// May this request try another credential?
    pub fn try_withdraw(&self, now: EpochMs) -> bool {
        let mut bucket = self.bucket.lock();
        self.refill(&mut bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn refill(&self, bucket: &mut Bucket, now: EpochMs) {
        let elapsed = (now - bucket.refilled_at).max(0) as f64 / 1000.0;
        bucket.tokens = (bucket.tokens + elapsed * self.floor_per_sec).min(self.cap);
        bucket.refilled_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_bounded_by_ratio_plus_floor() {
        let budget = RetryBudget::new(0.2, 0, 0);
        let mut granted = 0;
        for _ in 0..100 {
            budget.deposit(0);
            if budget.try_withdraw(0) {
                granted += 1;
            }
        }
        assert_eq!(granted, 20, "20 % of 100 first attempts");
    }

    #[test]
    fn floor_refills_over_time() {
        let budget = RetryBudget::new(0.0, 5, 0);
        let first_second = (0..20).filter(|_| budget.try_withdraw(0)).count();
        assert_eq!(first_second, 5);
        assert!(!budget.try_withdraw(100));
        let later = (0..20).filter(|_| budget.try_withdraw(1_000)).count();
        assert_eq!(later, 5);
    }
}
