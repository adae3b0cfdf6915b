//! The ledger's front door: a bounded queue the request path hands records to without ever
//! waiting, and one writer that commits them in batches (what arrived within `max_delay` of the
//! first record, `max_batch` at a time). A full queue drops the record — counted and logged — so
//! that `generated = written + dropped + queued` always holds and is visible.
//!
//! The writer runs on a thread of its own. Encoding a batch of 500 records is a few milliseconds
//! of CPU that no `.await` interrupts: on a request worker it held up every request arriving
//! meanwhile, while on its own thread the kernel's scheduler shares the core between the two.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::UsageRecord;
use crate::store::Ledger;

#[derive(Debug, Clone)]
pub struct Config {
    /// Records waiting for the writer; beyond this they are dropped, never waited for.
    /// Must hold `max_delay` of peak traffic: the writer does not look at the queue in between.
    pub queue: usize,
    pub max_batch: usize,
    pub max_delay: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            // 500 requests/s for 2 s of writer stall is 1,000 records, and 200 ms at 50,000
            // requests/s is 10,000: room for well over both.
            queue: 16_384,
            max_batch: 500,
            max_delay: Duration::from_millis(200),
        }
    }
}

/// The ledger's counters.
#[derive(Debug, Default)]
pub struct Counters {
    generated: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    queued: AtomicU64,
    /// Woken whenever the writer has committed (or dropped) a batch.
    progressed: Notify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerStats {
    pub generated: u64,
    pub written: u64,
    pub dropped: u64,
    pub queued: u64,
}

impl Counters {
    /// Resolves once every record generated so far is written or dropped (used by shutdown
    /// reporting and tests; nothing on the request path waits for it).
    pub async fn settled(&self) {
        loop {
            let progressed = self.progressed.notified();
            tokio::pin!(progressed);
            progressed.as_mut().enable();
            if self.queued.load(Ordering::Acquire) == 0 {
                return;
            }
            progressed.await;
        }
    }

    pub fn stats(&self) -> LedgerStats {
        // Read `generated` last: a record counted in the others was generated before.
        let written = self.written.load(Ordering::Acquire);
        let dropped = self.dropped.load(Ordering::Acquire);
        let queued = self.queued.load(Ordering::Acquire);
        let generated = self.generated.load(Ordering::Acquire);
        LedgerStats {
            generated,
            written,
            dropped,
            queued,
        }
    }
}

/// Hands records to the writer. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<UsageRecord>,
    counters: Arc<Counters>,
}

impl Recorder {
    /// Never waits: a full queue drops the record.
    pub fn record(&self, record: UsageRecord) {
        self.counters.generated.fetch_add(1, Ordering::AcqRel);
        self.counters.queued.fetch_add(1, Ordering::AcqRel);
        match self.queue.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(record) | TrySendError::Closed(record)) => {
                self.counters.queued.fetch_sub(1, Ordering::AcqRel);
                let dropped = self.counters.dropped.fetch_add(1, Ordering::AcqRel) + 1;
                self.counters.progressed.notify_waiters();
                // One line per power of two, so a flood does not become a log flood.
                if dropped.is_power_of_two() {
                    tracing::error!(
                        request_id = %record.request_id,
                        dropped_total = dropped,
                        "usage ledger queue full: record dropped"
                    );
                }
            }
        }
    }

    pub fn stats(&self) -> LedgerStats {
        self.counters.stats()
    }

    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }
}

/// The writer's end.
pub struct Writer {
    inbox: mpsc::Receiver<UsageRecord>,
    counters: Arc<Counters>,
    ledger: Arc<dyn Ledger>,
    config: Config,
}

pub fn channel(ledger: Arc<dyn Ledger>, config: Config) -> (Recorder, Writer) {
    let (queue, inbox) = mpsc::channel(config.queue.max(1));
    let counters = Arc::new(Counters::default());
    (
        Recorder {
            queue,
            counters: Arc::clone(&counters),
        },
        Writer {
            inbox,
            counters,
            ledger,
            config,
        },
    )
}

/// How often a failed batch is retried before its records are counted as dropped.
const WRITE_TRIES: u32 = 5;

impl Writer {
    /// Starts the writer on a thread of its own (with a single-threaded runtime for the
    /// store's futures). It runs until `shutdown`, then commits everything still queued; the
    /// returned receiver resolves when it has finished.
    pub fn start(self, shutdown: CancellationToken) -> std::io::Result<oneshot::Receiver<()>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("keyloop-ledger")
            .build()?;
        let (finished, done) = oneshot::channel();
        std::thread::Builder::new()
            .name("keyloop-ledger".into())
            .spawn(move || {
                runtime.block_on(async move {
                    self.run(shutdown).await;
                    // The store's connection goes back to its pool in a task spawned here.
                    tokio::task::yield_now().await;
                });
                let _ = finished.send(());
            })?;
        Ok(done)
    }

    /// Runs until `shutdown`, then commits everything still queued and returns.
    ///
    /// After a batch's first record it sleeps out `max_delay` and then takes what has queued:
    /// records arriving meanwhile wake nobody, so the request path never pays for a wake-up.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut batch = Vec::with_capacity(self.config.max_batch);
        loop {
            let first = tokio::select! {
                biased;
                first = self.inbox.recv() => first,
                () = shutdown.cancelled() => None,
            };
            let Some(first) = first else { break };
            batch.push(first);
            tokio::select! {
                biased;
                // Shutdown does not wait for the window to end.
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(self.config.max_delay) => {}
            }
            while let Ok(record) = self.inbox.try_recv() {
                batch.push(record);
                if batch.len() >= self.config.max_batch {
                    self.commit(&mut batch).await;
                }
            }
            self.commit(&mut batch).await;
        }
        // Shutdown: refuse new records, then flush what is queued.
        self.inbox.close();
        while let Some(record) = self.inbox.recv().await {
            batch.push(record);
            if batch.len() >= self.config.max_batch {
                self.commit(&mut batch).await;
            }
        }
        self.commit(&mut batch).await;
    }

    async fn commit(&self, batch: &mut Vec<UsageRecord>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        let mut wait = Duration::from_millis(50);
        for attempt in 1..=WRITE_TRIES {
            match self.ledger.append_usage(batch).await {
                Ok(()) => {
                    self.counters.written.fetch_add(n, Ordering::AcqRel);
                    self.counters.queued.fetch_sub(n, Ordering::AcqRel);
                    self.counters.progressed.notify_waiters();
                    batch.clear();
                    return;
                }
                Err(e) if attempt < WRITE_TRIES => {
                    tracing::warn!(error = %e, attempt, records = n, "ledger write failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => {
                    tracing::error!(error = %e, records = n, "ledger write failed; records dropped");
                }
            }
        }
        self.counters.dropped.fetch_add(n, Ordering::AcqRel);
        self.counters.queued.fetch_sub(n, Ordering::AcqRel);
        self.counters.progressed.notify_waiters();
        batch.clear();
    }
}
