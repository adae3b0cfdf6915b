//! `/v1/models`: pagination and lookup, over the models served today.

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
    assert!(all_ids.len() > 6, "{all_ids:?}");
    for current in ["claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"] {
        assert!(
            all_ids.contains(&current.to_owned()),
            "{current}: {all_ids:?}"
        );
    }
    // Retired 2026-11-30 (the provider): no longer listed.
    assert!(!all_ids.contains(&"claude-sonnet-4-5-20250929".to_owned()));
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
    let response = get(&mock, KEY_A, "/v1/models/claude-haiku-4-5-20251001")
        .send()
        .await
        .unwrap();
    let model = json_of(response).await;
    assert_eq!(model["id"], "claude-haiku-4-5-20251001");
    assert_eq!(model["display_name"], "Claude Haiku 4.5");
    for missing in [
        "claude-nonexistent",
        "claude-sonnet-4-5",
        "claude-opus-4-1-20250805",
    ] {
        let response = get(&mock, KEY_A, &format!("/v1/models/{missing}"))
            .send()
            .await
            .unwrap();
        let message = expect_error(response, 404, "not_found_error").await;
        assert_eq!(message, format!("model: {missing}"));
    }
}
