//! What arrived: recorded calls (bounded), per-key call counts and per-status tallies, and
//! the signal `wait_for_calls` awaits.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::request::Parts;
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// Recorded calls beyond this many push out the oldest.
const MAX_RECORDED: usize = 100_000;

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct RecordedCall {
    /// The key whose credential the request carried (also when the request was then
    /// rejected, e.g. an OAuth token without the beta flag); `None` when it carried none
    /// the mock knows.
    pub key_name: Option<String>,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// In arrival order; values that are not UTF-8 are converted lossily.
    pub headers: Vec<(String, String)>,
    /// The body bytes exactly as received.
    pub body: Bytes,
}

impl RecordedCall {
    fn new(key_name: Option<&str>, parts: &Parts, body: &Bytes) -> RecordedCall {
        RecordedCall {
            key_name: key_name.map(str::to_owned),
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_owned(), value)
                })
                .collect(),
            body: body.clone(),
        }
    }
}

/// Counts for one key (or for requests without a known credential).
#[derive(Default)]
pub(crate) struct Tally {
    calls: AtomicUsize,
    by_status: Mutex<BTreeMap<u16, u64>>,
    /// Streams whose client went away before the last frame was sent.
    abandoned: AtomicUsize,
    abandoned_changed: Notify,
    /// Token-endpoint calls that presented a refresh token of this key's family.
    token_calls: AtomicUsize,
    token_calls_changed: Notify,
}

impl Tally {
    pub(crate) fn abandoned(&self) -> usize {
        self.abandoned.load(Ordering::Acquire)
    }

    pub(crate) fn count_abandoned(&self) {
        self.abandoned.fetch_add(1, Ordering::AcqRel);
        self.abandoned_changed.notify_waiters();
    }

    /// Resolves once `abandoned() >= n`.
    pub(crate) async fn wait_for_abandoned(&self, n: usize) {
        loop {
            let changed = self.abandoned_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.abandoned() >= n {
                return;
            }
            changed.await;
        }
    }

    pub(crate) fn token_calls(&self) -> usize {
        self.token_calls.load(Ordering::Acquire)
    }

    pub(crate) fn count_token_call(&self) {
        self.token_calls.fetch_add(1, Ordering::AcqRel);
        self.token_calls_changed.notify_waiters();
    }

    /// Resolves once `token_calls() >= n`.
    pub(crate) async fn wait_for_token_calls(&self, n: usize) {
        loop {
            let changed = self.token_calls_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.token_calls() >= n {
                return;
            }
            changed.await;
        }
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::Acquire)
    }

    pub(crate) fn by_status(&self) -> BTreeMap<u16, u64> {
        self.by_status.lock().clone()
    }

    pub(crate) fn count_status(&self, status: u16) {
        *self.by_status.lock().entry(status).or_default() += 1;
    }

    fn reset(&self) {
        self.calls.store(0, Ordering::Release);
        self.abandoned.store(0, Ordering::Release);
        self.token_calls.store(0, Ordering::Release);
        self.by_status.lock().clear();
    }
}

pub(crate) struct Recorder {
    enabled: bool,
    calls: Mutex<VecDeque<RecordedCall>>,
    arrived: Notify,
}

impl Recorder {
    pub(crate) fn new(enabled: bool) -> Recorder {
        Recorder {
            enabled,
            calls: Mutex::new(VecDeque::new()),
            arrived: Notify::new(),
        }
    }

    /// Counts the call on `tally` and, when recording, keeps a copy of it.
    pub(crate) fn record(
        &self,
        tally: &Tally,
        key_name: Option<&str>,
        parts: &Parts,
        body: &Bytes,
    ) {
        if self.enabled {
            let call = RecordedCall::new(key_name, parts, body);
            let mut calls = self.calls.lock();
            if calls.len() == MAX_RECORDED {
                calls.pop_front();
            }
            calls.push_back(call);
        }
        tally.calls.fetch_add(1, Ordering::AcqRel);
        self.arrived.notify_waiters();
    }

    pub(crate) fn calls(&self) -> Vec<RecordedCall> {
        self.calls.lock().iter().cloned().collect()
    }

    pub(crate) async fn wait_for(&self, tally: &Tally, n: usize) {
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            // Register before checking, so a call counted in between still wakes us.
            arrived.as_mut().enable();
            if tally.calls() >= n {
                return;
            }
            arrived.await;
        }
    }

    pub(crate) fn reset<'a>(&self, tallies: impl IntoIterator<Item = &'a Tally>) {
        self.calls.lock().clear();
        for tally in tallies {
            tally.reset();
        }
    }
}
