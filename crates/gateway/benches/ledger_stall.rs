//! Does a stalled ledger writer slow requests down, or lose records?
//!
//! Runs the real gateway in front of the simulated upstream, drives an open-loop load of
//! `STALL_BENCH_RPS` requests/s (default 500) for 8 s, and 3 s in holds the SQLite write lock
//! from a second connection for 2 s — the writer's `BEGIN IMMEDIATE` waits on it, exactly as it
//! would behind a slow disk or a long checkpoint. Latency is counted from each request's
//! scheduled send time. Prints latency before / during / after the stall and the ledger's
//! counters. A benchmark, not a test: it asserts nothing and prints figures.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use keyloop::app;
use keyloop::config::Config;
use keyloop_mock::{MockConfig, MockKey, MockUpstream};
use parking_lot::Mutex;
use sqlx::ConnectOptions;
use tokio::time::Instant;

const SECRET: &str = "sk-ant-api03-stall-bench-secret-00000000000";
const RUN: Duration = Duration::from_secs(8);
const STALL_AT: Duration = Duration::from_secs(3);
const STALL_FOR: Duration = Duration::from_secs(2);

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[tokio::main]
async fn main() {
    let rps: u64 = std::env::var("STALL_BENCH_RPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let mock = MockUpstream::start(MockConfig {
        keys: vec![MockKey::new("only", SECRET)],
        record_calls: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bench.toml");
    std::fs::write(
        &file,
        format!("[[keys]]\nname = \"only\"\nsecret = {SECRET:?}\n"),
    )
    .unwrap();
    let env: Vec<(String, String)> = vec![
        ("KEYLOOP_SERVER__LISTEN".into(), "127.0.0.1:0".into()),
        ("KEYLOOP_ADMIN__LISTEN".into(), "127.0.0.1:0".into()),
        (
            "KEYLOOP_STORAGE__DATA_DIR".into(),
            dir.path().display().to_string(),
        ),
        ("KEYLOOP_UPSTREAM__BASE_URL".into(), mock.url()),
        ("KEYLOOP_LOG__LEVEL".into(), "error".into()),
    ];
    let config = Config::load(Some(&file), &env).unwrap();
    let database = config.database_path();
    let running = app::start(config).await.unwrap();
    let (_, key) = keyloop::clients::create(running.store.as_ref(), "bench", None)
        .await
        .unwrap();
    let key = key.expose().clone();
    let url = format!("http://{}/v1/messages", running.addr);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .unwrap();
    let body = serde_json::json!({"model": "claude-sonnet-4-6", "max_tokens": 32,
        "messages": [{"role": "user", "content": "x".repeat(900)}]})
    .to_string();

    // Warm up connections and caches.
    for _ in 0..200 {
        let _ = http
            .post(&url)
            .header("x-api-key", &key)
            .header("anthropic-version", "2023-06-01")
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap()
            .bytes()
            .await;
    }
    running.ledger_settled().await;
    let before = running.accountant.ledger_stats();

    let samples: Arc<Mutex<Vec<(Duration, f64, bool)>>> = Arc::new(Mutex::new(Vec::new()));
    let max_queue = Arc::new(Mutex::new(0u64));
    let start = Instant::now();

    // The stall: hold the write lock from another connection.
    let stall = tokio::spawn(async move {
        tokio::time::sleep_until(start + STALL_AT).await;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::from_str("sqlite://")
            .unwrap()
            .filename(&database)
            .connect()
            .await
            .unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut conn)
            .await
            .unwrap();
        tokio::time::sleep(STALL_FOR).await;
        sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
    });
    let watcher = {
        let accountant = running.accountant.clone();
        let max_queue = Arc::clone(&max_queue);
        tokio::spawn(async move {
            while start.elapsed() < RUN + Duration::from_secs(2) {
                let queued = accountant.ledger_stats().queued;
                {
                    let mut max = max_queue.lock();
                    *max = (*max).max(queued);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    let interval = Duration::from_nanos(1_000_000_000 / rps);
    let total = (RUN.as_nanos() / interval.as_nanos()) as u64;
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = start + interval * i as u32;
        tokio::time::sleep_until(scheduled).await;
        let (http, url, key, body, samples) = (
            http.clone(),
            url.clone(),
            key.clone(),
            body.clone(),
            Arc::clone(&samples),
        );
        tasks.push(tokio::spawn(async move {
            let sent = http
                .post(&url)
                .header("x-api-key", &key)
                .header("anthropic-version", "2023-06-01")
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let ok = match sent {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            let latency_ms = scheduled.elapsed().as_secs_f64() * 1000.0;
            samples
                .lock()
                .push((scheduled.duration_since(start), latency_ms, ok));
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    stall.await.unwrap();
    running.ledger_settled().await;
    watcher.abort();
    let after = running.accountant.ledger_stats();

    let samples = samples.lock().clone();
    let phase = |from: Duration, to: Duration| {
        let mut v: Vec<f64> = samples
            .iter()
            .filter(|(at, _, _)| *at >= from && *at < to)
            .map(|(_, ms, _)| *ms)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let errors = samples.iter().filter(|(_, _, ok)| !ok).count();
    println!(
        "ledger stall benchmark: {rps} requests/s open loop for {RUN:?}, write lock held {STALL_FOR:?} from {STALL_AT:?}"
    );
    println!("| phase | requests | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    for (name, from, to) in [
        ("before stall", Duration::ZERO, STALL_AT),
        ("during stall", STALL_AT, STALL_AT + STALL_FOR),
        ("after stall", STALL_AT + STALL_FOR, RUN),
    ] {
        let v = phase(from, to);
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:.2} |",
            v.len(),
            percentile(&v, 0.5),
            percentile(&v, 0.99),
            v.last().copied().unwrap_or(f64::NAN)
        );
    }
    println!();
    println!("client errors: {errors}");
    println!(
        "ledger: generated {} written {} dropped {} queued {} (this run; queue peak {})",
        after.generated - before.generated,
        after.written - before.written,
        after.dropped - before.dropped,
        after.queued,
        *max_queue.lock()
    );
    running.shutdown().await;
    mock.shutdown().await;
}
