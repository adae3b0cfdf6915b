//! The soak: does keyloop's memory stay flat over a million requests? It sends `requests`
//! non-streaming requests through keyloop as fast as 64 connections go (the max-throughput
//! measure's request and target), in ten slices of `oha -n`, and reads keyloop's resident set
//! before the first slice and after each one.
//!
//! The first slice is the warm-up: connection pools, the ledger's page cache, the metrics
//! series, the live window's latency ring and the allocator's arenas reach their working size
//! there. Growth is counted from the end of that slice to the end of the last one.

use std::time::Duration;

use crate::load::{LoadResult, Oha, Target};
use crate::procs::Proc;

/// Connections, as in the max-throughput measure.
const CONNECTIONS: u32 = 64;
/// RSS is read before the soak and after each tenth of it.
const SLICES: u64 = 10;
/// "Flat" allows this much growth after warm-up, in % of the RSS after warm-up. A leak grows
/// with the requests: over the 900,000 requests after a 1,000,000-request soak's warm-up, one
/// leaked allocation per request (16 bytes at least) adds 14 MB or more, where 5 % of a gateway
/// of about 40 MB is 2 MB, about 2 bytes a request (one small allocation in seven requests).
/// Growth under that is what state with a bound still does after warm-up: SQLite's page cache
/// (up to about 2 MB per pooled connection) filling as the ledger file grows, the allocator's
/// arenas reaching a new high-water mark. A shorter soak allows more bytes per request.
pub const FLAT_GROWTH_PCT: f64 = 5.0;

/// One reading of keyloop's RSS during the soak.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Requests sent before the reading.
    pub requests: u64,
    pub rss_kb: u64,
}

#[derive(Clone, Debug, Default)]
pub struct SoakResult {
    /// Before the first slice, then after each slice.
    pub samples: Vec<Sample>,
    /// One result per slice.
    pub slices: Vec<LoadResult>,
}

impl SoakResult {
    pub fn requests(&self) -> u64 {
        self.slices.iter().map(|s| s.requests).sum()
    }

    /// Over all slices: requests / the time oha spent sending them.
    pub fn requests_per_sec(&self) -> f64 {
        let seconds: f64 = self
            .slices
            .iter()
            .filter(|s| s.requests_per_sec > 0.0)
            .map(|s| s.requests as f64 / s.requests_per_sec)
            .sum();
        self.requests() as f64 / seconds
    }

    /// How long the slices took, by oha's count.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.requests() as f64 / self.requests_per_sec())
    }

    pub fn not_ok(&self) -> u64 {
        self.slices.iter().map(|s| s.not_ok).sum()
    }

    /// RSS after the first slice (the warm-up), kB.
    pub fn warm_kb(&self) -> u64 {
        self.samples.get(1).map_or(0, |s| s.rss_kb)
    }

    /// RSS after the last slice, kB.
    pub fn end_kb(&self) -> u64 {
        self.samples.last().map_or(0, |s| s.rss_kb)
    }

    /// End minus warm-up, kB (negative if it shrank).
    pub fn growth_kb(&self) -> i64 {
        self.end_kb() as i64 - self.warm_kb() as i64
    }

    pub fn growth_pct(&self) -> f64 {
        100.0 * self.growth_kb() as f64 / self.warm_kb().max(1) as f64
    }

    pub fn flat(&self) -> bool {
        self.growth_pct() <= FLAT_GROWTH_PCT
    }
}

/// Sends `requests` to `target` in slices, reading `gateway`'s RSS before and after each.
pub fn run(
    oha: &Oha<'_>,
    target: &Target,
    gateway: &Proc,
    requests: u64,
) -> anyhow::Result<SoakResult> {
    let slices = SLICES.min(requests);
    let mut result = SoakResult {
        samples: vec![Sample {
            requests: 0,
            rss_kb: gateway.rss_kb(),
        }],
        slices: Vec::new(),
    };
    let mut sent = 0;
    for i in 0..slices {
        // The remainder goes to the last slice.
        let n = if i + 1 == slices {
            requests - sent
        } else {
            requests / slices
        };
        let slice = oha.run_requests(target, CONNECTIONS, n)?;
        sent += n;
        let sample = Sample {
            requests: sent,
            rss_kb: gateway.rss_kb(),
        };
        eprintln!(
            "soak {sent}/{requests}: {:.0} req/s, keyloop RSS {:.1} MB",
            slice.requests_per_sec,
            sample.rss_kb as f64 / 1024.0
        );
        result.samples.push(sample);
        result.slices.push(slice);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soak(rss_kb: &[u64]) -> SoakResult {
        SoakResult {
            samples: rss_kb
                .iter()
                .enumerate()
                .map(|(i, &rss_kb)| Sample {
                    requests: i as u64 * 100,
                    rss_kb,
                })
                .collect(),
            slices: vec![
                LoadResult {
                    requests: 100,
                    requests_per_sec: 1000.0,
                    ..LoadResult::default()
                };
                rss_kb.len() - 1
            ],
        }
    }

    #[test]
    fn growth_is_counted_from_the_end_of_the_warm_up() {
        let s = soak(&[10_000, 20_000, 20_500, 21_000]);
        assert_eq!(s.warm_kb(), 20_000);
        assert_eq!(s.end_kb(), 21_000);
        assert_eq!(s.growth_kb(), 1_000);
        assert!((s.growth_pct() - 5.0).abs() < 1e-9);
        assert!(s.flat(), "5 % is still flat");
        assert!(!soak(&[10_000, 20_000, 21_001]).flat());
        assert!(soak(&[10_000, 20_000, 19_000]).flat(), "shrinking is flat");
    }

    #[test]
    fn throughput_is_over_the_time_of_all_slices() {
        let mut s = soak(&[1, 1, 1]);
        s.slices[1].requests_per_sec = 250.0;
        // 100 requests in 0.1 s, then 100 in 0.4 s.
        assert_eq!(s.requests(), 200);
        assert!((s.requests_per_sec() - 400.0).abs() < 1e-9);
        assert_eq!(s.duration(), Duration::from_millis(500));
    }
}
