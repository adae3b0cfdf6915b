//! The `/_mock/` HTTP control surface.

use serde_json::{Value, json};

use crate::support::*;

fn control(mock: &keyloop_mock::MockUpstream, path: &str) -> String {
    format!("{}/_mock/{path}", mock.url())
}

#[tokio::test]
async fn scenarios_and_chaos_can_be_scripted_over_http() {
    let mock = start().await;
    let response = client()
        .post(control(&mock, "scenario"))
        .json(&json!({"key": "a", "scenario": {"type": "rate_limited", "retry_after_secs": 5}, "times": 2}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    for _ in 0..2 {
        let response = messages(&mock, &hello()).await;
        assert_eq!(header(&response, "retry-after"), "5");
        assert_eq!(response.status(), 429);
    }
    assert_eq!(messages(&mock, &hello()).await.status(), 200);

    let stream_shape = json!({"key": "a", "scenario": {"type": "slow_first_token", "delay_ms": 1}});
    let response = client()
        .post(control(&mock, "scenario"))
        .json(&stream_shape)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    assert_eq!(messages(&mock, &hello_stream()).await.status(), 200);

    let chaos = json!({"key": "a", "scenario": {"type": "overloaded"}, "ratio": 1.0});
    client()
        .post(control(&mock, "chaos"))
        .json(&chaos)
        .send()
        .await
        .unwrap();
    assert_eq!(messages(&mock, &hello()).await.status(), 529);
    let clear = json!({"key": "a", "scenario": {"type": "overloaded"}, "ratio": 0.0});
    client()
        .post(control(&mock, "chaos"))
        .json(&clear)
        .send()
        .await
        .unwrap();
    assert_eq!(messages(&mock, &hello()).await.status(), 200);

    let unknown = json!({"key": "nobody", "scenario": {"type": "overloaded"}});
    let response = client()
        .post(control(&mock, "scenario"))
        .json(&unknown)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn calls_stats_and_reset_over_http() {
    let mock = start().await;
    mock.push_scenario("a", keyloop_mock::Scenario::Overloaded, 1);
    messages(&mock, &hello()).await;
    messages(&mock, &hello()).await;
    client().head(mock.url()).send().await.unwrap();

    let calls: Value = client()
        .get(control(&mock, "calls"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let calls = calls.as_array().unwrap();
    assert_eq!(calls.len(), 3, "control requests are not recorded");
    assert_eq!(calls[0]["key_name"], "a");
    assert_eq!(calls[0]["path"], "/v1/messages");
    let body: Value = serde_json::from_str(calls[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, hello());

    let stats: Value = client()
        .get(control(&mock, "stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats["keys"]["a"],
        json!({"calls": 2, "by_status": {"200": 1, "529": 1}, "token_calls": 0})
    );
    assert_eq!(stats["keys"]["b"]["calls"], 0);
    assert_eq!(stats["unauthenticated"]["calls"], 1);

    let response = client().post(control(&mock, "reset")).send().await.unwrap();
    assert!(response.status().is_success());
    assert_eq!(mock.call_count("a"), 0);
    assert!(mock.calls().is_empty());
}

#[tokio::test]
async fn alternate_and_the_token_endpoint_are_controlled_over_http() {
    let mock = start().await;
    let alternate = json!({"key": "a", "scenario": {"type": "overloaded"}});
    let response = client()
        .post(control(&mock, "alternate"))
        .json(&alternate)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(messages(&mock, &hello()).await.status(), 200);
    assert_eq!(messages(&mock, &hello()).await.status(), 529);
    client()
        .post(control(&mock, "alternate"))
        .json(&json!({"key": "a", "scenario": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(messages(&mock, &hello()).await.status(), 200);
    assert_eq!(messages(&mock, &hello()).await.status(), 200);

    let scenario = json!({"key": "a", "scenario": {"type": "permission_denied"}});
    client()
        .post(control(&mock, "scenario"))
        .json(&scenario)
        .send()
        .await
        .unwrap();
    assert_eq!(messages(&mock, &hello()).await.status(), 403);

    let response = client()
        .post(control(&mock, "token_endpoint"))
        .json(&json!({"down": true, "delay_ms": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let refresh = client()
        .post(format!("{}/v1/oauth/token", mock.url()))
        .json(&json!({"grant_type": "refresh_token", "refresh_token": "x", "client_id": "y"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), 503);
}
