//! Credentials: API keys, OAuth tokens with their beta flag, the version header.

use crate::support::*;

#[tokio::test]
async fn missing_or_unknown_credentials_are_401() {
    let mock = start().await;
    let url = format!("{}/v1/messages", mock.url());
    let response = client()
        .post(&url)
        .header("anthropic-version", VERSION)
        .json(&hello())
        .send()
        .await
        .unwrap();
    let message = expect_error(response, 401, "authentication_error").await;
    assert_eq!(message, "x-api-key header is required");
    let response = post(&mock, "sk-ant-api03-nope", "/v1/messages")
        .json(&hello())
        .send()
        .await
        .unwrap();
    let message = expect_error(response, 401, "authentication_error").await;
    assert_eq!(message, "invalid x-api-key");
}

#[tokio::test]
async fn missing_version_is_400() {
    let mock = start().await;
    let response = client()
        .post(format!("{}/v1/messages", mock.url()))
        .header("x-api-key", KEY_A)
        .json(&hello())
        .send()
        .await
        .unwrap();
    let message = expect_error(response, 400, "invalid_request_error").await;
    assert!(message.contains("anthropic-version"), "{message}");
}

fn bearer(mock: &keyloop_mock::MockUpstream, token: &str) -> reqwest::RequestBuilder {
    client()
        .post(format!("{}/v1/messages", mock.url()))
        .bearer_auth(token)
        .header("anthropic-version", VERSION)
        .json(&hello())
}

#[tokio::test]
async fn oauth_needs_bearer_and_the_beta_flag() {
    let mock = start().await;
    let response = bearer(&mock, OAUTH).send().await.unwrap();
    let message = expect_error(response, 401, "authentication_error").await;
    assert_eq!(message, "OAuth authentication is currently not supported.");
    assert_eq!(
        mock.call_count("oauth"),
        1,
        "the refused call still counts for its key"
    );

    let listed = bearer(&mock, OAUTH)
        .header(
            "anthropic-beta",
            "prompt-caching-2024-07-31, oauth-2025-04-20",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let repeated = bearer(&mock, OAUTH)
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .header("anthropic-beta", "oauth-2025-04-20")
        .send()
        .await
        .unwrap();
    assert_eq!(repeated.status(), 200);

    let as_api_key = post(&mock, OAUTH, "/v1/messages")
        .header("anthropic-beta", "oauth-2025-04-20")
        .json(&hello())
        .send()
        .await
        .unwrap();
    expect_error(as_api_key, 401, "authentication_error").await;
    let api_key_as_bearer = bearer(&mock, KEY_A)
        .header("anthropic-beta", "oauth-2025-04-20")
        .send()
        .await
        .unwrap();
    expect_error(api_key_as_bearer, 401, "authentication_error").await;
}

#[tokio::test]
async fn organization_id_is_stable_per_key() {
    let mock = start().await;
    let org =
        |response: &reqwest::Response| header(response, "anthropic-organization-id").to_owned();
    let a1 = org(&messages(&mock, &hello()).await);
    let a2 = org(&messages(&mock, &hello()).await);
    let b = org(&post(&mock, KEY_B, "/v1/messages")
        .json(&hello())
        .send()
        .await
        .unwrap());
    assert_eq!(a1, a2);
    assert_ne!(a1, b);
}
