//! What must survive a restart: credential state and batch affinity. And what must refuse to
//! start: a store opened with the wrong master key.

mod support;

use keyloop_mock::Scenario;
use support::{Harness, Options};

#[tokio::test]
async fn credential_state_survives_a_restart() {
    let mut h = Harness::start(Options::default()).await;
    h.mock.push_scenario("alpha", Scenario::Unauthorized, 1);
    h.mock.push_scenario(
        "beta",
        Scenario::RateLimited {
            retry_after_secs: 600,
        },
        1,
    );
    for _ in 0..3 {
        assert_eq!(h.message(false).send().await.unwrap().status(), 200);
    }
    assert_eq!(h.state_of("alpha").await, "disabled");
    assert_eq!(h.state_of("beta").await, "cooling_down");
    let before = h.status().await;

    h.restart().await;
    assert_eq!(h.state_of("alpha").await, "disabled");
    assert_eq!(h.state_of("beta").await, "cooling_down");
    let after = h.status().await;
    let until = |s: &serde_json::Value| {
        s["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "beta")
            .unwrap()["cooldown_until_ms"]
            .clone()
    };
    assert_eq!(until(&before), until(&after), "the same cooldown end");
    // Only gamma serves after the restart.
    h.mock.reset_calls();
    for _ in 0..3 {
        assert_eq!(h.message(false).send().await.unwrap().status(), 200);
    }
    assert_eq!(h.mock.call_count("gamma"), 3);
    h.shutdown().await;
}

#[tokio::test]
async fn batch_affinity_survives_a_restart() {
    let mut h = Harness::start(Options::default()).await;
    let created = h
        .post("/v1/messages/batches")
        .json(&serde_json::json!({"requests": [
            {"custom_id": "one", "params": {"model": "claude-sonnet-5-5", "max_tokens": 16,
                "messages": [{"role": "user", "content": "hi"}]}}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let batch: serde_json::Value = created.json().await.unwrap();
    let id = batch["id"].as_str().unwrap().to_owned();
    let creator = h.mock.calls()[0].key_name.clone().unwrap();

    h.restart().await;
    h.mock.reset_calls();
    // Retrieval must go to the creating credential: any other would get a 404 upstream.
    for _ in 0..3 {
        let r = h
            .get(&format!("/v1/messages/batches/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let keys: Vec<_> = h
        .mock
        .calls()
        .into_iter()
        .map(|c| c.key_name.unwrap())
        .collect();
    assert_eq!(keys, vec![creator.clone(); 3]);
    h.shutdown().await;
}

#[tokio::test]
async fn a_wrong_master_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let env = |key: &str| -> Vec<(String, String)> {
        vec![
            ("KEYLOOP_SERVER__LISTEN".into(), "127.0.0.1:0".into()),
            ("KEYLOOP_ADMIN__LISTEN".into(), "127.0.0.1:0".into()),
            (
                "KEYLOOP_STORAGE__DATA_DIR".into(),
                dir.path().display().to_string(),
            ),
            ("KEYLOOP_MASTER_KEY".into(), key.into()),
        ]
    };
    let toml = "[[keys]]\nname = \"a\"\nsecret = \"sk-ant-api03-something-long-enough\"\n";
    let good = hex::encode([1u8; 32]);
    let running = support::start_gateway(dir.path(), toml, &env(&good)).await;
    running.shutdown().await;

    let file = dir.path().join("keyloop.toml");
    let config = keyloop::config::Config::load(Some(&file), &env(&hex::encode([2u8; 32]))).unwrap();
    let error = keyloop::app::start(config)
        .await
        .err()
        .expect("refuses to start");
    let message = format!("{error:#}");
    assert!(message.contains("master key"), "{message}");
    assert!(!message.contains("something-long-enough"));
}
