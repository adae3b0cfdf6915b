//! Message Batches through the gateway: every follow-up call lands on the creating credential,
//! a batch is visible only to the client that made it, and `results_url` points at the gateway.

mod support;

use support::{Harness, Options};

async fn create(h: &Harness, key: &str) -> serde_json::Value {
    let r = h
        .http
        .post(format!("{}/v1/messages/batches", h.base))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&serde_json::json!({"requests": [
            {"custom_id": "a", "params": {"model": "claude-sonnet-5-5", "max_tokens": 16,
                "messages": [{"role": "user", "content": "hi"}]}},
            {"custom_id": "b", "params": {"model": "claude-sonnet-5-5", "max_tokens": 16,
                "messages": [{"role": "user", "content": "there"}]}}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn batch_lifecycle_stays_on_its_credential() {
    let h = Harness::start(Options::default()).await;
    let batch = create(&h, &h.client_key).await;
    let id = batch["id"].as_str().unwrap().to_owned();
    let creator = h.mock.calls()[0].key_name.clone().unwrap();

    // The simulated upstream finishes batches at once in these tests.
    let r = h
        .get(&format!("/v1/messages/batches/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ended: serde_json::Value = r.json().await.unwrap();
    assert_eq!(ended["processing_status"], "ended", "{ended}");
    let results_url = ended["results_url"]
        .as_str()
        .expect("results_url once ended");
    assert_eq!(
        results_url,
        format!("{}/v1/messages/batches/{id}/results", h.base)
    );

    let results = h
        .http
        .get(results_url)
        .header("x-api-key", &h.client_key)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    assert_eq!(results.status(), 200);
    let text = results.text().await.unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("\"custom_id\":\"a\""));

    let list: serde_json::Value = h
        .get("/v1/messages/batches")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(list["has_more"], false);

    let deleted = h
        .http
        .delete(format!("{}/v1/messages/batches/{id}", h.base))
        .header("x-api-key", &h.client_key)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let gone = h
        .get(&format!("/v1/messages/batches/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);

    let keys: Vec<_> = h
        .mock
        .calls()
        .into_iter()
        .filter(|c| c.path.starts_with("/v1/messages/batches"))
        .map(|c| c.key_name.unwrap())
        .collect();
    assert!(
        keys.iter().all(|k| *k == creator),
        "{keys:?} should all be {creator}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn another_client_cannot_see_the_batch() {
    let h = Harness::start(Options::default()).await;
    let batch = create(&h, &h.client_key).await;
    let id = batch["id"].as_str().unwrap();
    let (_, other) = keyloop::clients::create(h.gateway.store.as_ref(), "other", None)
        .await
        .unwrap();
    let calls_before = h.mock.calls().len();
    let r = h
        .http
        .get(format!("{}/v1/messages/batches/{id}", h.base))
        .header("x-api-key", other.expose())
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "not_found_error");
    let list: serde_json::Value = h
        .http
        .get(format!("{}/v1/messages/batches", h.base))
        .header("x-api-key", other.expose())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    assert_eq!(h.mock.calls().len(), calls_before, "nothing asked upstream");
    h.shutdown().await;
}
