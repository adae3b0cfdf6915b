//! Organizations: the `anthropic-organization-id` every API answer carries, and per-minute
//! buckets shared by the keys of one organization.

use keyloop_mock::{Limits, MockConfig, MockKey};

use crate::support::*;

const ORG: &str = "7f3c2a10-5b1e-4c8d-9a2f-0e6b1d4c3a21";

fn org(response: &reqwest::Response) -> String {
    header(response, "anthropic-organization-id").to_owned()
}

fn rpm(n: u32) -> Limits {
    Limits {
        rpm: Some(n),
        ..Limits::default()
    }
}

async fn send(mock: &keyloop_mock::MockUpstream, key: &str) -> reqwest::Response {
    post(mock, key, "/v1/messages")
        .json(&hello())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_configured_organization_is_sent_verbatim_on_every_answer() {
    let mock = start_with(MockConfig::with_keys([
        MockKey::new("a", KEY_A).with_organization(ORG),
        MockKey::new("b", KEY_B).with_organization(ORG),
        MockKey::new("oauth", OAUTH),
    ]))
    .await;
    assert_eq!(org(&send(&mock, KEY_A).await), ORG);
    assert_eq!(org(&send(&mock, KEY_B).await), ORG);
    let invalid = post(&mock, KEY_A, "/v1/messages")
        .json(&serde_json::json!({"model": "claude-sonnet-4-5"}))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);
    assert_eq!(org(&invalid), ORG, "errors carry it too");
    let models = get(&mock, KEY_A, "/v1/models").send().await.unwrap();
    assert_eq!(org(&models), ORG);

    // Unconfigured: a UUID derived from the key name, the same on every start.
    let derived = org(&oauth_messages(&mock, OAUTH, "claude-sonnet-4-5").await);
    let again = start().await;
    assert_eq!(
        org(&oauth_messages(&again, OAUTH, "claude-sonnet-4-5").await),
        derived
    );
    let groups: Vec<usize> = derived.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12], "{derived}");
    assert_ne!(derived, ORG);
}

#[tokio::test]
async fn keys_of_one_organization_share_their_buckets_when_asked() {
    let keys = || {
        [
            MockKey::new("a", KEY_A)
                .with_organization(ORG)
                .with_limits(rpm(2)),
            // Its own limits are ignored: the organization's are those of its first key.
            MockKey::new("b", KEY_B)
                .with_organization(ORG)
                .with_limits(rpm(50)),
            MockKey::new("c", "sk-ant-api03-key-c").with_limits(rpm(2)),
        ]
    };
    let mock = start_with(MockConfig {
        shared_organization_limits: true,
        ..MockConfig::with_keys(keys())
    })
    .await;
    assert_eq!(send(&mock, KEY_A).await.status(), 200);
    let sibling = send(&mock, KEY_B).await;
    assert_eq!(sibling.status(), 200);
    assert_eq!(header(&sibling, "anthropic-ratelimit-requests-limit"), "2");
    assert_eq!(
        header(&sibling, "anthropic-ratelimit-requests-remaining"),
        "0"
    );
    expect_error(send(&mock, KEY_A).await, 429, "rate_limit_error").await;
    expect_error(send(&mock, KEY_B).await, 429, "rate_limit_error").await;
    // Another organization is not affected.
    assert_eq!(send(&mock, "sk-ant-api03-key-c").await.status(), 200);

    let separate = start_with(MockConfig::with_keys(keys())).await;
    for _ in 0..2 {
        assert_eq!(send(&separate, KEY_A).await.status(), 200);
    }
    assert_eq!(send(&separate, KEY_A).await.status(), 429);
    assert_eq!(send(&separate, KEY_B).await.status(), 200);
}
