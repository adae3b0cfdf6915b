//! Usage and cost: turning each finished request into a priced usage record and handing it to
//! a bounded background writer. Imports no framework or driver; the request path never waits
//! on the store.

pub mod pricing;
pub mod record;
pub mod recorder;

use std::sync::Arc;

use tokio::sync::broadcast;

pub use pricing::{CostContext, PriceTable};
pub use record::{FailedAttempt, Provider, RequestOutcome, Route, UsageRecord};
pub use recorder::{LedgerStats, Recorder};

use crate::telemetry::live::LiveWindow;
use crate::telemetry::metrics::Metrics;
use crate::types::now_ms;

/// Records buffered for a slow live watcher (the panel's event stream); one that lags skips.
const LIVE_BUFFER: usize = 4096;

/// Prices a finished request, counts it, and queues it for the ledger.
#[derive(Clone)]
pub struct Accountant {
    prices: Arc<PriceTable>,
    recorder: Recorder,
    metrics: Metrics,
    /// The last minute's numbers for the panel.
    live: LiveWindow,
    /// Settled records for watchers (the panel's event stream); copied only while one watches.
    watchers: broadcast::Sender<Arc<UsageRecord>>,
}

impl Accountant {
    pub fn new(prices: PriceTable, recorder: Recorder, metrics: Metrics) -> Self {
        Self {
            prices: Arc::new(prices),
            recorder,
            metrics,
            live: LiveWindow::default(),
            watchers: broadcast::channel(LIVE_BUFFER).0,
        }
    }

    /// Never waits: pricing is arithmetic, metrics are atomics, the ledger queue is bounded.
    /// The record is copied for live watchers only while there are some.
    pub fn settle(&self, mut record: UsageRecord) {
        record.cost_nanos = self.price(&record);
        self.metrics.request_finished(&record);
        self.live.add(&record, now_ms());
        if self.watchers.receiver_count() > 0 {
            // No watcher left since the check is not an error.
            let _ = self.watchers.send(Arc::new(record.clone()));
        }
        self.recorder.record(record);
    }

    /// Every record settled from now on, as it is settled (before it reaches the ledger).
    pub fn watch(&self) -> broadcast::Receiver<Arc<UsageRecord>> {
        self.watchers.subscribe()
    }

    pub fn live(&self) -> &LiveWindow {
        &self.live
    }

    /// The record's cost, by the model the upstream says served it (that is what it billed),
    /// with the surcharges the request asked for (fast mode) and the answer reports (US-only
    /// inference). A request that used no tokens costs nothing even when its model has no
    /// price.
    pub fn price(&self, record: &UsageRecord) -> Option<i64> {
        let usage = &record.usage;
        if usage.input_tokens == 0
            && usage.output_tokens == 0
            && usage.cache_read_tokens == 0
            && usage.cache_write_tokens == 0
        {
            return Some(0);
        }
        let model = record
            .served_model
            .as_deref()
            .or(record.requested_model.as_deref())?;
        let ctx = self.prices.context_for(
            record.client_name.as_deref(),
            model,
            record.batch,
            usage.inference_geo,
            record.speed,
        );
        self.prices.cost(Some(model), usage, &ctx)
    }

    pub fn ledger_stats(&self) -> LedgerStats {
        self.recorder.stats()
    }

    pub fn ledger_counters(&self) -> Arc<recorder::Counters> {
        self.recorder.counters()
    }
}
