//! The streaming probe: many concurrent streamed Messages requests, each asking the simulated
//! upstream for `events` text deltas `interval` apart, timing the first byte and the gap
//! between successive events as they arrive. A gateway that buffers shows up as events
//! arriving together (gaps near zero) where the upstream spaced them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::{Barrier, mpsc};

/// What one run of the probe saw, over all streams.
#[derive(Clone, Debug, Default)]
pub struct StreamStats {
    pub failed: usize,
    /// Send → first response byte, ms.
    pub ttfb_ms: Vec<f64>,
    /// Arrival gaps between successive content events, ms.
    pub gaps_ms: Vec<f64>,
    /// Content events that arrived less than 1 ms after the previous one.
    pub bunched: usize,
}

pub struct Probe<'a> {
    pub target: &'a crate::load::Target,
    pub streams: usize,
    pub events: usize,
    pub interval: Duration,
}

const BODY: &str = r#"{"model":"claude-sonnet-5-5","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"Write a short story."}]}"#;

impl Probe<'_> {
    /// Runs every stream at once (they start together, behind a barrier) and collects the
    /// timings. `on_all_open` runs once every stream has its first byte: the moment to sample
    /// the gateway's memory with all streams open.
    pub async fn run(&self, on_all_open: impl FnOnce() + Send + 'static) -> StreamStats {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(self.streams)
            .tcp_nodelay(true)
            .build()
            .expect("the client builds");
        let start = Arc::new(Barrier::new(self.streams));
        // Each stream says once that it has its first byte (or failed), without waiting.
        let (opened, mut opened_rx) = mpsc::channel::<()>(self.streams);
        let mut tasks = Vec::with_capacity(self.streams);
        for _ in 0..self.streams {
            let http = http.clone();
            let url = self.target.url.clone();
            let key = self.target.api_key.clone();
            let (events, interval) = (self.events, self.interval);
            let (start, opened) = (start.clone(), opened.clone());
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                one_stream(&http, &url, key.as_deref(), events, interval, &opened).await
            }));
        }
        drop(opened);
        for _ in 0..self.streams {
            if opened_rx.recv().await.is_none() {
                break;
            }
        }
        on_all_open();
        let mut stats = StreamStats::default();
        for task in tasks {
            match task.await {
                Ok(Some(one)) => {
                    stats.ttfb_ms.push(one.ttfb_ms);
                    stats.bunched += one.gaps_ms.iter().filter(|g| **g < 1.0).count();
                    stats.gaps_ms.extend(one.gaps_ms);
                }
                _ => stats.failed += 1,
            }
        }
        stats
    }
}

struct OneStream {
    ttfb_ms: f64,
    gaps_ms: Vec<f64>,
}

/// One stream. Signals `opened` exactly once, failed or not, so the run never waits on a
/// stream that could not start.
async fn one_stream(
    http: &reqwest::Client,
    url: &str,
    api_key: Option<&str>,
    events: usize,
    interval: Duration,
    opened: &mpsc::Sender<()>,
) -> Option<OneStream> {
    let sent = Instant::now();
    let mut request = http.post(url);
    if let Some(key) = api_key {
        request = request.header("x-api-key", key);
    }
    let response = request
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .header("x-mock-events", events.to_string())
        .header("x-mock-interval-ms", interval.as_millis().to_string())
        .body(BODY)
        .send()
        .await;
    let mut body = match response {
        Ok(r) if r.status().is_success() => r.bytes_stream(),
        _ => {
            let _ = opened.try_send(());
            return None;
        }
    };
    let mut ttfb_ms = None;
    let mut last_delta: Option<Instant> = None;
    let mut gaps_ms = Vec::with_capacity(events);
    let mut pending = Vec::new();
    let mut ok = true;
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else {
            ok = false;
            break;
        };
        let now = Instant::now();
        if ttfb_ms.is_none() {
            ttfb_ms = Some(now.duration_since(sent).as_secs_f64() * 1e3);
            let _ = opened.try_send(());
        }
        pending.extend_from_slice(&chunk);
        // Each complete event in this read arrived now; only text deltas are spaced upstream.
        while let Some(end) = find(&pending, b"\n\n") {
            let frame: Vec<u8> = pending.drain(..end + 2).collect();
            if find(&frame, b"content_block_delta").is_some() {
                if let Some(prev) = last_delta {
                    gaps_ms.push(now.duration_since(prev).as_secs_f64() * 1e3);
                }
                last_delta = Some(now);
            }
        }
    }
    if ttfb_ms.is_none() {
        let _ = opened.try_send(());
    }
    (ok && ttfb_ms.is_some()).then(|| OneStream {
        ttfb_ms: ttfb_ms.unwrap_or_default(),
        gaps_ms,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
