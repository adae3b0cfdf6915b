use std::time::{Duration, Instant};
use keyloop_mock::*;

#[tokio::test(flavor = "multi_thread")]
async fn bench() {
    for record in [true, false] {
    let mock = MockUpstream::start(MockConfig { record_calls: record, ..MockConfig::with_keys([MockKey::new("a", "k")]) }).await.unwrap();
    let client = reqwest::Client::new();
    let body = serde_json::json!({"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"hi there"}]});
    for stream in [false, true] {
        let mut body = body.clone(); body["stream"] = serde_json::json!(stream);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let client = client.clone(); let url = format!("{}/v1/messages", mock.url()); let body = body.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while start.elapsed() < Duration::from_secs(3) {
                    let r = client.post(&url).header("x-api-key","k").header("anthropic-version","2023-06-01").json(&body).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    r.bytes().await.unwrap(); n += 1;
                }
                n
            }));
        }
        let mut total = 0; for t in tasks { total += t.await.unwrap(); }
        println!("record={record} stream={stream}: {:.0} req/s", total as f64 / start.elapsed().as_secs_f64());
    }
    }
}
