//! Message Batches: lifecycle, results, cancel and delete, scoping per key.

use std::time::Duration;

use keyloop_mock::{MockConfig, MockUpstream};
use serde_json::{Value, json};

use crate::support::*;

async fn start_batches(processing: Duration) -> MockUpstream {
    start_with(MockConfig {
        batch_processing: processing,
        ..MockConfig::with_keys(keys())
    })
    .await
}

fn batch_body() -> Value {
    json!({"requests": [
        {"custom_id": "first", "params": hello()},
        {"custom_id": "second-2", "params": {
            "model": "claude-haiku-4-5", "max_tokens": 64,
            "messages": [{"role": "user", "content": "Bye"}]
        }},
        {"custom_id": "broken_3", "params": {"model": "claude-haiku-4-5", "messages": []}},
    ]})
}

async fn create(mock: &MockUpstream, key: &str) -> Value {
    let response = post(mock, key, "/v1/messages/batches")
        .json(&batch_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    json_of(response).await
}

async fn fetch(mock: &MockUpstream, key: &str, path: &str) -> reqwest::Response {
    get(mock, key, path).send().await.unwrap()
}

#[tokio::test]
async fn a_batch_ends_after_processing_with_results() {
    let mock = start_batches(Duration::ZERO).await;
    let created = create(&mock, KEY_A).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("msgbatch_"));
    assert_eq!(created["type"], "message_batch");
    assert_eq!(created["processing_status"], "in_progress");
    assert_eq!(created["request_counts"]["processing"], 3);
    assert_eq!(created["results_url"], Value::Null);
    assert_eq!(created["ended_at"], Value::Null);

    let batch = json_of(fetch(&mock, KEY_A, &format!("/v1/messages/batches/{id}")).await).await;
    assert_eq!(batch["processing_status"], "ended");
    assert_eq!(
        batch["request_counts"],
        json!({"processing": 0, "succeeded": 2, "errored": 1, "canceled": 0, "expired": 0})
    );
    let results_url = batch["results_url"].as_str().unwrap();
    assert_eq!(
        results_url,
        format!("{}/v1/messages/batches/{id}/results", mock.url())
    );
    let created_at: jiff::Timestamp = batch["created_at"].as_str().unwrap().parse().unwrap();
    let expires_at: jiff::Timestamp = batch["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires_at.duration_since(created_at).as_secs(), 24 * 3600);

    let response = client()
        .get(results_url)
        .header("x-api-key", KEY_A)
        .header("anthropic-version", VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["custom_id"], "first");
    assert_eq!(lines[0]["result"]["type"], "succeeded");
    let message = &lines[0]["result"]["message"];
    assert_eq!(message["type"], "message");
    assert_eq!(message["usage"]["service_tier"], "batch");
    assert_eq!(lines[1]["result"]["message"]["model"], "claude-haiku-4-5");
    assert_eq!(lines[2]["result"]["type"], "errored");
    assert_eq!(
        lines[2]["result"]["error"]["error"]["type"],
        "invalid_request_error"
    );
}

#[tokio::test]
async fn a_retired_model_in_a_batch_is_an_errored_result_not_found() {
    // Params are validated asynchronously (§11.3), so the batch is created and the request
    // comes back errored with the error a direct call gets.
    let mock = start_batches(Duration::ZERO).await;
    let body = json!({"requests": [
        {"custom_id": "old", "params": {"model": "claude-3-7-sonnet-20250219", "max_tokens": 8,
            "messages": [{"role": "user", "content": "Hi"}]}},
        {"custom_id": "current", "params": hello()},
    ]});
    let response = post(&mock, KEY_A, "/v1/messages/batches")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = json_of(response).await["id"].as_str().unwrap().to_owned();
    let response = fetch(&mock, KEY_A, &format!("/v1/messages/batches/{id}/results")).await;
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["custom_id"], "old");
    assert_eq!(
        lines[0]["result"],
        json!({"type": "errored", "error": {"type": "error", "error": {
            "type": "not_found_error", "message": "model: claude-3-7-sonnet-20250219"},
            "request_id": null}})
    );
    assert_eq!(lines[1]["result"]["type"], "succeeded");
}

#[tokio::test]
async fn batches_are_scoped_to_their_key() {
    let mock = start_batches(Duration::ZERO).await;
    let id = create(&mock, KEY_A).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = format!("/v1/messages/batches/{id}");
    expect_error(fetch(&mock, KEY_B, &base).await, 404, "not_found_error").await;
    let results = fetch(&mock, KEY_B, &format!("{base}/results")).await;
    expect_error(results, 404, "not_found_error").await;
    let cancel = post(&mock, KEY_B, &format!("{base}/cancel"))
        .send()
        .await
        .unwrap();
    expect_error(cancel, 404, "not_found_error").await;
    let delete = client()
        .delete(format!("{}{base}", mock.url()))
        .header("x-api-key", KEY_B)
        .header("anthropic-version", VERSION)
        .send()
        .await
        .unwrap();
    expect_error(delete, 404, "not_found_error").await;
    let listed = json_of(fetch(&mock, KEY_B, "/v1/messages/batches").await).await;
    assert_eq!(listed["data"], json!([]));
    assert_eq!(listed["first_id"], Value::Null);
    assert_eq!(fetch(&mock, KEY_A, &base).await.status(), 200);
}

#[tokio::test]
async fn cancel_then_delete_an_in_progress_batch() {
    let mock = start_batches(Duration::from_secs(3600)).await;
    let id = create(&mock, KEY_A).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = format!("/v1/messages/batches/{id}");
    let delete = || {
        client()
            .delete(format!("{}{base}", mock.url()))
            .header("x-api-key", KEY_A)
            .header("anthropic-version", VERSION)
            .send()
    };

    let batch = json_of(fetch(&mock, KEY_A, &base).await).await;
    assert_eq!(batch["processing_status"], "in_progress");
    expect_error(delete().await.unwrap(), 400, "invalid_request_error").await;
    let results = fetch(&mock, KEY_A, &format!("{base}/results")).await;
    expect_error(results, 400, "invalid_request_error").await;

    let canceling = post(&mock, KEY_A, &format!("{base}/cancel"))
        .send()
        .await
        .unwrap();
    let canceling = json_of(canceling).await;
    assert_eq!(canceling["processing_status"], "canceling");
    assert!(canceling["cancel_initiated_at"].is_string());

    let ended = json_of(fetch(&mock, KEY_A, &base).await).await;
    assert_eq!(ended["processing_status"], "ended");
    assert_eq!(ended["request_counts"]["canceled"], 3);
    assert_eq!(ended["request_counts"]["processing"], 0);
    let text = fetch(&mock, KEY_A, &format!("{base}/results"))
        .await
        .text()
        .await
        .unwrap();
    assert!(text.lines().all(|l| {
        serde_json::from_str::<Value>(l).unwrap()["result"] == json!({"type": "canceled"})
    }));

    let deleted = json_of(delete().await.unwrap()).await;
    assert_eq!(deleted, json!({"id": id, "type": "message_batch_deleted"}));
    expect_error(fetch(&mock, KEY_A, &base).await, 404, "not_found_error").await;
}

#[tokio::test]
async fn batches_list_newest_first_with_pagination() {
    let mock = start_batches(Duration::ZERO).await;
    let first = create(&mock, KEY_A).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = create(&mock, KEY_A).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = json_of(fetch(&mock, KEY_A, "/v1/messages/batches?limit=1").await).await;
    assert_eq!(page["data"][0]["id"], second.as_str());
    assert_eq!(page["data"][0]["processing_status"], "ended");
    assert_eq!(page["has_more"], true);
    let next = format!("/v1/messages/batches?limit=1&after_id={second}");
    let page = json_of(fetch(&mock, KEY_A, &next).await).await;
    assert_eq!(page["data"][0]["id"], first.as_str());
    assert_eq!(page["has_more"], false);
}

#[tokio::test]
async fn invalid_batches_are_refused() {
    let mock = start().await;
    let bad = [
        json!({}),
        json!({"requests": []}),
        json!({"requests": [{"custom_id": "has space", "params": hello()}]}),
        json!({"requests": [{"custom_id": "x", "params": hello()}, {"custom_id": "x", "params": hello()}]}),
        json!({"requests": [{"custom_id": "x"}]}),
    ];
    for body in bad {
        let response = post(&mock, KEY_A, "/v1/messages/batches")
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(response, 400, "invalid_request_error").await;
    }
}
