//! `/v1/models`: pagination and lookup.

use serde_json::Value;

use crate::support::*;

async fn page(mock: &keyloop_mock::MockUpstream, query: &str) -> Value {
    let response = get(mock, KEY_A, &format!("/v1/models{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    json_of(response).await
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn models_paginate_forward_and_backward() {
    let mock = start().await;
    let all = page(&mock, "").await;
    assert_eq!(all["has_more"], false);
    let all_ids = ids(&all);
    assert_eq!(all_ids.len(), 15);
    assert!(all_ids.contains(&"claude-sonnet-4-5-20250929".to_owned()));
    let model = &all["data"][0];
    assert_eq!(model["type"], "model");
    assert!(
        model["display_name"]
            .as_str()
            .unwrap()
            .starts_with("Claude ")
    );
    assert!(model["created_at"].as_str().unwrap().ends_with('Z'));

    let mut walked = Vec::new();
    let mut query = "?limit=4".to_owned();
    loop {
        let page = page(&mock, &query).await;
        let page_ids = ids(&page);
        assert_eq!(page["first_id"], page_ids[0].as_str());
        assert_eq!(page["last_id"], page_ids.last().unwrap().as_str());
        walked.extend(page_ids);
        if page["has_more"] == false {
            break;
        }
        query = format!("?limit=4&after_id={}", page["last_id"].as_str().unwrap());
    }
    assert_eq!(walked, all_ids);

    let before = page(&mock, &format!("?limit=2&before_id={}", all_ids[5])).await;
    assert_eq!(ids(&before), all_ids[3..5]);
    assert_eq!(before["has_more"], true);

    let response = get(&mock, KEY_A, "/v1/models?limit=0")
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "invalid_request_error").await;
}

#[tokio::test]
async fn a_model_is_found_by_id_and_unknown_ids_are_404() {
    let mock = start().await;
    let response = get(&mock, KEY_A, "/v1/models/claude-opus-4-5-20251101")
        .send()
        .await
        .unwrap();
    let model = json_of(response).await;
    assert_eq!(model["id"], "claude-opus-4-5-20251101");
    assert_eq!(model["display_name"], "Claude Opus 4.5");
    let response = get(&mock, KEY_A, "/v1/models/claude-nonexistent")
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found_error").await;
}
