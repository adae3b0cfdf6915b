//! kill -9 under load: every usage record the ledger had reported as committed is still there
//! after a restart, and the database passes its integrity check.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use keyloop_mock::{MockConfig, MockKey, MockUpstream};

const SECRET: &str = "sk-ant-api03-durability-test-secret-0000000";

fn keyloop(dir: &std::path::Path, master: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyloop"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KEYLOOP_STORAGE__DATA_DIR", dir)
        .env("KEYLOOP_MASTER_KEY", master)
        .env("KEYLOOP_SERVER__LISTEN", "127.0.0.1:0")
        .env("KEYLOOP_ADMIN__LISTEN", "127.0.0.1:0")
        .env("KEYLOOP_LOG__FORMAT", "json")
        .env("KEYLOOP_LOG__LEVEL", "warn,keyloop::app=info");
    command
}

/// The value of an unlabelled sample in Prometheus text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn committed_records_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let master = hex::encode([5u8; 32]);
    let mock = MockUpstream::start(MockConfig {
        keys: vec![MockKey::new("only", SECRET)],
        record_calls: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let config = dir.path().join("keyloop.toml");
    std::fs::write(
        &config,
        format!("[[keys]]\nname = \"only\"\nsecret = {SECRET:?}\n"),
    )
    .unwrap();

    let created = keyloop(dir.path(), &master)
        .args(["clients", "create", "load"])
        .output()
        .unwrap();
    assert!(created.status.success());
    let stdout = String::from_utf8(created.stdout).unwrap();
    let client_key = stdout
        .lines()
        .find_map(|l| l.strip_prefix("key (shown once, store it now): "))
        .unwrap()
        .to_owned();

    let mut child = keyloop(dir.path(), &master)
        .arg("--config")
        .arg(&config)
        .env("KEYLOOP_UPSTREAM__BASE_URL", mock.url())
        // Small batches so many commits happen during the run.
        .env("KEYLOOP_LEDGER__MAX_BATCH", "20")
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (addr, admin) = loop {
        let line = lines.next().expect("the server logs").unwrap();
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if entry["message"] == "keyloop is listening" {
            break (
                entry["addr"].as_str().unwrap().to_owned(),
                entry["admin_addr"].as_str().unwrap().to_owned(),
            );
        }
    };
    std::thread::spawn(move || for _ in lines {});

    // 16 clients send requests back to back until told to stop (bounded by count too).
    let http = reqwest::Client::new();
    let stop = tokio_util::sync::CancellationToken::new();
    let mut load = Vec::new();
    for _ in 0..16 {
        let (http, stop, addr, key) =
            (http.clone(), stop.clone(), addr.clone(), client_key.clone());
        load.push(tokio::spawn(async move {
            for _ in 0..5_000 {
                if stop.is_cancelled() {
                    break;
                }
                let sent = http
                    .post(format!("http://{addr}/v1/messages"))
                    .header("x-api-key", &key)
                    .header("anthropic-version", "2023-06-01")
                    .json(
                        &serde_json::json!({"model": "claude-sonnet-4-6", "max_tokens": 16,
                        "messages": [{"role": "user", "content": "hi"}]}),
                    )
                    .send()
                    .await;
                match sent {
                    Ok(r) => {
                        let _ = r.bytes().await;
                    }
                    Err(_) => break,
                }
            }
        }));
    }

    // Once a good number of records are committed, read the count and kill at once.
    let written = loop {
        let metrics = http
            .get(format!("http://{admin}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let written = sample(&metrics, "keyloop_ledger_records_written_total").unwrap_or(0.0);
        if written >= 300.0 {
            break written as i64;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let killed = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    stop.cancel();
    for task in load {
        let _ = task.await;
    }

    let stores = keyloop::store::open_sqlite(&dir.path().join("keyloop.db"))
        .await
        .expect("the store reopens after kill -9");
    assert!(
        stores.ledger.integrity_ok().await.unwrap(),
        "integrity check"
    );
    let stored = stores.ledger.usage_count().await.unwrap();
    assert!(
        stored >= written,
        "{written} records were reported committed but only {stored} survived"
    );
    mock.shutdown().await;
}
