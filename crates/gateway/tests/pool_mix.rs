//! The pool under a real failure mix: every servable request is served, no credential is tried
//! twice for one request, and what a client sends cannot hurt a credential.

mod support;

use std::collections::BTreeMap;

use futures_util::StreamExt;
use keyloop_mock::Scenario;
use serde_json::{Value, json};
use support::{Harness, Options, key};

/// The healthy keys of the mix.
const HEALTHY: [&str; 3] = ["h1", "h2", "h3"];

fn body(n: usize, stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-5-5",
        "max_tokens": 64,
        "stream": stream,
        "messages": [{"role": "user", "content": format!("request {n}: tell me something")}],
    })
}

/// The text of an answer, JSON or SSE.
async fn answer_text(response: reqwest::Response, stream: bool) -> String {
    if !stream {
        let v: Value = response.json().await.unwrap();
        return v["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    }
    let mut text = String::new();
    let mut raw = String::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        raw.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let mut ended = false;
    for line in raw.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let event: Value = serde_json::from_str(data).unwrap();
        match event["type"].as_str() {
            Some("content_block_delta") => {
                text.push_str(event["delta"]["text"].as_str().unwrap_or_default());
            }
            Some("message_stop") => ended = true,
            Some("error") => panic!("the client saw an error event: {data}"),
            _ => {}
        }
    }
    assert!(ended, "the stream ended with message_stop");
    text
}

#[tokio::test]
async fn a_mixed_pool_serves_every_request_from_its_healthy_credentials() {
    let names = [
        "h1",
        "a-429",
        "b-429-half",
        "c-401",
        "d-credit",
        "e-529",
        "f-500",
        "g-error-event",
        "h-cut",
        "h2",
        "h3",
    ];
    let h = Harness::start(Options {
        keys: names.iter().map(|n| key(n)).collect(),
        ..Options::default()
    })
    .await;
    let always = |name: &str, scenario: Scenario| h.mock.set_chaos(name, scenario, 1.0);
    always(
        "a-429",
        Scenario::RateLimited {
            retry_after_secs: 30,
        },
    );
    h.mock.set_alternate(
        "b-429-half",
        Scenario::RateLimited {
            retry_after_secs: 30,
        },
    );
    always("c-401", Scenario::Unauthorized);
    always("d-credit", Scenario::CreditBalance);
    always("e-529", Scenario::Overloaded);
    always("f-500", Scenario::ServerError);
    always("g-error-event", Scenario::ErrorBeforeContent);
    always("h-cut", Scenario::CutMidStream { after_events: 1 });

    // The answer a healthy credential gives each request, straight from the simulated upstream.
    let direct = reqwest::Client::new();
    let healthy_secret = key("h1").secret;
    let mut expected = Vec::new();
    for n in 0..100 {
        let r = direct
            .post(format!("{}/v1/messages", h.mock.url()))
            .header("x-api-key", &healthy_secret)
            .header("anthropic-version", "2023-06-01")
            .json(&body(n, false))
            .send()
            .await
            .unwrap();
        expected.push(answer_text(r, false).await);
    }
    h.mock.reset_calls();

    let send = |n: usize| {
        let stream = n % 2 == 1;
        let request = h.post("/v1/messages").json(&body(n, stream));
        async move {
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), 200, "request {n}: {:?}", r.headers());
            (n, answer_text(r, stream).await)
        }
    };
    let mut answers = Vec::new();
    for n in 0..30 {
        answers.push(send(n).await);
    }
    let rest: Vec<_> = futures_util::stream::iter(30..100)
        .map(send)
        .buffer_unordered(5)
        .collect()
        .await;
    answers.extend(rest);
    assert_eq!(answers.len(), 100);
    for (n, text) in &answers {
        assert_eq!(text, &expected[*n], "request {n}: exact content");
    }

    // Attempts per client request, from what reached the upstream.
    let mut attempts: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for call in h.mock.calls() {
        if call.path != "/v1/messages" {
            continue;
        }
        let v: Value = serde_json::from_slice(&call.body).unwrap();
        let text = v["messages"][0]["content"].as_str().unwrap_or_default();
        let n: usize = text
            .strip_prefix("request ")
            .and_then(|t| t.split(':').next())
            .and_then(|t| t.parse().ok())
            .expect("every upstream call belongs to a client request");
        attempts
            .entry(n)
            .or_default()
            .push(call.key_name.unwrap_or_default());
    }
    let mut per_key: BTreeMap<&str, usize> = BTreeMap::new();
    let mut requests_on: BTreeMap<&str, usize> = BTreeMap::new();
    for (n, keys) in &attempts {
        println!("request {n:3}: {}", keys.join(" → "));
        let mut seen = keys.clone();
        seen.sort();
        seen.dedup();
        assert_eq!(
            seen.len(),
            keys.len(),
            "request {n} tried a credential twice: {keys:?}"
        );
        // The last attempt served it: a healthy key, or b on one of its good turns.
        let last = keys.last().unwrap();
        assert!(
            HEALTHY.contains(&last.as_str()) || last == "b-429-half",
            "request {n} ended on a credential that always fails: {keys:?}"
        );
        for key in keys {
            let name = names.iter().find(|k| *k == key).unwrap();
            *per_key.entry(name).or_default() += 1;
            *requests_on.entry(name).or_default() += 1;
        }
    }
    println!("attempts per credential: {per_key:?}");
    assert_eq!(attempts.len(), 100, "every request reached the upstream");
    let on = |name: &str| per_key.get(name).copied().unwrap_or(0);
    assert!(
        on("a-429") <= 3,
        "a 429 with retry-after 30 cools the key: {per_key:?}"
    );
    // b answers every second request with 429: its 429s are its odd-numbered calls.
    assert!(on("b-429-half").div_ceil(2) <= 3, "b's 429s: {per_key:?}");
    assert!(on("c-401") <= 1, "a 401 disables the key: {per_key:?}");
    assert!(
        on("d-credit") <= 1,
        "the credit-balance 400 quarantines: {per_key:?}"
    );
    let served: usize = HEALTHY.iter().map(|k| on(k)).sum();
    assert!(
        served >= 90,
        "the healthy keys served nearly all: {per_key:?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_prompt_quoting_the_billing_phrase_changes_no_credential() {
    let h = Harness::start(Options::default()).await;
    h.mock
        .push_scenario("alpha", Scenario::CreditBalanceInInput, 1);
    let before = h.status().await;
    // alpha, first in rotation, answers the validation 400 that quotes the prompt.
    let r = h.message(false).send().await.unwrap();
    assert_eq!(r.status(), 400, "the client's own mistake passes through");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("credit balance is too low"),
        "{body}"
    );
    let calls: Vec<_> = h
        .mock
        .calls()
        .into_iter()
        .filter(|c| c.path == "/v1/messages")
        .collect();
    assert_eq!(calls.len(), 1, "one upstream call, no failover");
    let after = h.status().await;
    for (b, a) in before["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .zip(after["credentials"].as_array().unwrap())
    {
        assert_eq!(a["state"], "active", "{a}");
        assert_eq!(b["state"], a["state"]);
    }
    h.shutdown().await;
}

#[tokio::test]
async fn a_403_for_one_model_leaves_the_credential_serving_others() {
    let mut alpha = key("alpha");
    alpha = alpha.deny_models(["claude-opus-5-5"]);
    let h = Harness::start(Options {
        keys: vec![alpha, key("beta")],
        ..Options::default()
    })
    .await;
    let ask = |model: &str| {
        h.post("/v1/messages").json(&json!({
            "model": model,
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "Hi"}],
        }))
    };
    for _ in 0..4 {
        assert_eq!(ask("claude-opus-5-5").send().await.unwrap().status(), 200);
    }
    let opus_on_alpha = h
        .mock
        .calls()
        .iter()
        .filter(|c| c.key_name.as_deref() == Some("alpha") && c.path == "/v1/messages")
        .count();
    assert_eq!(opus_on_alpha, 1, "after its 403 alpha is held out for Opus");
    assert_eq!(h.state_of("alpha").await, "active");
    h.mock.reset_calls();
    for _ in 0..4 {
        assert_eq!(ask("claude-sonnet-5-5").send().await.unwrap().status(), 200);
    }
    assert!(h.mock.call_count("alpha") >= 1, "alpha still serves Sonnet");
    h.shutdown().await;
}

#[tokio::test]
async fn an_exhausted_pool_answers_with_advice_and_calls_nobody() {
    let h = Harness::start(Options::default()).await;
    for name in ["alpha", "beta", "gamma"] {
        h.mock.push_scenario(
            name,
            Scenario::RateLimited {
                retry_after_secs: 40,
            },
            1,
        );
    }
    let r = h.message(false).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((38..=40).contains(&retry), "retry-after {retry}");
    let before = h.mock.calls().len();
    for stream in [false, true] {
        let r = h.message(stream).send().await.unwrap();
        assert_eq!(r.status(), 429, "stream {stream}");
        assert!(r.headers().contains_key("retry-after"));
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["type"], "rate_limit_error");
    }
    assert_eq!(
        h.mock.calls().len(),
        before,
        "no upstream call while every key is out"
    );
    h.shutdown().await;

    let h = Harness::start(Options::default()).await;
    for name in ["alpha", "beta", "gamma"] {
        h.mock.set_chaos(name, Scenario::Overloaded, 1.0);
    }
    let r = h.message(false).send().await.unwrap();
    assert_eq!(r.status(), 529);
    assert!(r.headers().contains_key("retry-after"), "{:?}", r.headers());
    h.shutdown().await;
}

#[tokio::test]
async fn a_subscription_account_shows_its_windows_and_a_spent_window_cools_it_until_its_reset() {
    use keyloop_mock::{Subscription, Window};
    let oauth = key("oauth-max").with_subscription(Subscription {
        five_hour: 1_000,
        seven_day: 10_000,
        seven_day_opus: Some(1_000),
        ..Subscription::default()
    });
    let h = Harness::start(Options {
        keys: vec![oauth, key("beta")],
        ..Options::default()
    })
    .await;
    h.mock
        .set_window_utilization("oauth-max", Window::FiveHour, 0.5);
    while h.mock.call_count("oauth-max") == 0 {
        assert_eq!(h.message(false).send().await.unwrap().status(), 200);
    }
    let status = h.status().await;
    let card = status["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "oauth-max")
        .unwrap()
        .clone();
    let sub = &card["ratelimit"]["subscription"];
    assert_eq!(sub["status"], "allowed", "{card}");
    let five = sub["windows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "five_hour")
        .unwrap();
    assert!(five["utilization"].as_f64().unwrap() >= 0.5, "{five}");
    assert!(card["organization"].as_str().is_some_and(|o| !o.is_empty()));
    // The panel's view (the admin API) carries the same windows.
    let listed = h.admin_get("/credentials").await;
    let admin_card = listed["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "oauth-max")
        .unwrap()
        .clone();
    assert_eq!(admin_card["organization"], card["organization"]);
    let names: Vec<&str> = admin_card["subscription"]["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"five_hour") && names.contains(&"seven_day_opus"),
        "{names:?}"
    );

    // The Opus window spent: the account keeps serving Sonnet, and Opus goes to beta.
    h.mock
        .set_window_utilization("oauth-max", Window::SevenDayOpus, 1.0);
    let ask = |model: &str| {
        h.post("/v1/messages").json(&json!({
            "model": model,
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "Hi"}],
        }))
    };
    for _ in 0..4 {
        assert_eq!(ask("claude-opus-5-5").send().await.unwrap().status(), 200);
    }
    assert_eq!(h.state_of("oauth-max").await, "active", "not quarantined");
    h.mock.reset_calls();
    for _ in 0..4 {
        assert_eq!(ask("claude-opus-5-5").send().await.unwrap().status(), 200);
    }
    assert_eq!(h.mock.call_count("oauth-max"), 0, "held out for Opus");
    for _ in 0..4 {
        assert_eq!(ask("claude-sonnet-5-5").send().await.unwrap().status(), 200);
    }
    assert!(h.mock.call_count("oauth-max") >= 1, "still serving Sonnet");
    h.shutdown().await;
}

#[tokio::test]
async fn a_sticky_turn_that_had_to_move_says_so_in_its_record() {
    let h = Harness::start(Options {
        env: vec![("KEYLOOP_POOL__STICKY", "true".into())],
        ..Options::default()
    })
    .await;
    let turn = || {
        h.message(false)
            .header("x-claude-code-session-id", "conversation-1")
            .send()
    };
    assert_eq!(turn().await.unwrap().status(), 200);
    let pinned = ["alpha", "beta", "gamma"]
        .into_iter()
        .find(|n| h.mock.call_count(n) == 1)
        .unwrap();
    h.mock.push_scenario(
        pinned,
        Scenario::RateLimited {
            retry_after_secs: 30,
        },
        1,
    );
    assert_eq!(turn().await.unwrap().status(), 200, "the 429 fails over");
    assert_eq!(
        turn().await.unwrap().status(),
        200,
        "served while the pin cools"
    );
    h.gateway.ledger_settled().await;
    let log = h.admin_get("/requests?limit=10").await;
    let moved: Vec<bool> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|r| r["session_moved"].as_bool().unwrap())
        .collect();
    // Oldest first: on the pin; failed over off the 429; served elsewhere while it cools.
    assert_eq!(moved, vec![false, true, true], "{log}");
    h.shutdown().await;
}
