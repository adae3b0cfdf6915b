//! The admin router's `GET /metrics`: Prometheus text with the right content type, the scrape
//! hook run before each render, and nothing else served; then the same through a running
//! gateway's admin listener.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use keyloop::accounting::{RequestOutcome, Route, UsageRecord};
use keyloop::admin;
use keyloop::telemetry::metrics::Metrics;
use keyloop_wire::anthropic::Speed;
use keyloop_wire::usage::Usage;
use prometheus_parse::{Scrape, Value};
use support::{Harness, Options, key};
use tower::ServiceExt;

fn record() -> UsageRecord {
    UsageRecord {
        request_id: "req_kl_test".to_owned(),
        at: 0,
        client_id: Some("client-1".to_owned()),
        client_name: Some("ci".to_owned()),
        attributed: Some("team-blue".to_owned()),
        key_id: Some("k1".to_owned()),
        key_name: Some("primary".to_owned()),
        provider: keyloop::accounting::Provider::Anthropic,
        route: Route::Messages,
        requested_model: Some("claude-haiku-4-5".to_owned()),
        served_model: Some("claude-haiku-4-5-20251001".to_owned()),
        status: 200,
        outcome: RequestOutcome::Success,
        last_class: None,
        attempts: Vec::new(),
        usage: Usage {
            input_tokens: 12,
            output_tokens: 34,
            ..Usage::default()
        },
        cost_nanos: Some(42_000),
        latency_ms: 150,
        ttft_ms: Some(40),
        streamed: true,
        stop_reason: Some("end_turn".to_owned()),
        batch: false,
        speed: Speed::Standard,
        session_moved: false,
    }
}

fn no_hook() -> admin::ScrapeHook {
    Arc::new(|| {})
}

async fn get(router: axum::Router, method: Method, path: &str) -> (StatusCode, String, String) {
    let response = router
        .oneshot(
            Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<Value> {
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == name
                && s.labels.len() == labels.len()
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
        .map(|s| s.value.clone())
}

#[tokio::test]
async fn serves_prometheus_text() {
    let metrics = Metrics::new(false);
    metrics.request_finished(&record());
    metrics.request_finished(&record());

    let (status, content_type, body) = get(
        admin::metrics_router(metrics, no_hook()),
        Method::GET,
        "/metrics",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );

    let scrape = parse(&body);
    assert_eq!(
        value(
            &scrape,
            "keyloop_requests_total",
            &[
                ("route", "messages"),
                ("model", "claude-haiku-4-5-20251001"),
                ("outcome", "success"),
            ],
        ),
        Some(Value::Counter(2.0))
    );
    assert_eq!(
        value(
            &scrape,
            "keyloop_cost_nanodollars_total",
            &[("model", "claude-haiku-4-5-20251001")]
        ),
        Some(Value::Counter(84_000.0))
    );
    match value(
        &scrape,
        "keyloop_request_duration_seconds",
        &[("route", "messages"), ("outcome", "success")],
    ) {
        Some(Value::Histogram(buckets)) => {
            let le_250ms = buckets.iter().find(|b| b.less_than == 0.25).unwrap();
            assert_eq!(le_250ms.count, 2.0);
        }
        other => panic!("expected a histogram, got {other:?}"),
    }
    assert_eq!(
        value(
            &scrape,
            "keyloop_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(Value::Gauge(1.0))
    );
    for client_text in [
        "client-1",
        "team-blue",
        "primary",
        "req_kl_test",
        "end_turn",
    ] {
        assert!(!body.contains(client_text), "{client_text} leaked");
    }
}

#[tokio::test]
async fn runs_the_scrape_hook_before_each_render() {
    let metrics = Metrics::new(false);
    let calls = Arc::new(AtomicUsize::new(0));
    let hook: admin::ScrapeHook = {
        let metrics = metrics.clone();
        let calls = calls.clone();
        Arc::new(move || {
            let n = calls.fetch_add(1, Ordering::SeqCst) as u64 + 1;
            metrics.set_credential_states(&[("active", n), ("disabled", 0)]);
            metrics.ledger(0, n * 10, 0, n * 10);
        })
    };
    let router = admin::metrics_router(metrics, hook);

    let (_, _, first) = get(router.clone(), Method::GET, "/metrics").await;
    let (_, _, second) = get(router, Method::GET, "/metrics").await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let first = parse(&first);
    let second = parse(&second);
    assert_eq!(
        value(&first, "keyloop_credentials", &[("state", "active")]),
        Some(Value::Gauge(1.0))
    );
    assert_eq!(
        value(&second, "keyloop_credentials", &[("state", "active")]),
        Some(Value::Gauge(2.0))
    );
    assert_eq!(
        value(&second, "keyloop_credentials", &[("state", "disabled")]),
        Some(Value::Gauge(0.0))
    );
    assert_eq!(
        value(&second, "keyloop_ledger_records_written_total", &[]),
        Some(Value::Counter(20.0))
    );
}

#[tokio::test]
async fn serves_nothing_else() {
    let router = admin::metrics_router(Metrics::new(false), no_hook());
    let (status, _, _) = get(router.clone(), Method::POST, "/metrics").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    for path in ["/", "/metrics/", "/admin/api/keys", "/v1/messages"] {
        let (status, _, _) = get(router.clone(), Method::GET, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn two_routers_report_their_own_gateway() {
    let busy = Metrics::new(true);
    let idle = Metrics::new(true);
    busy.request_finished(&record());
    let _in_flight = busy.in_flight();

    let (_, _, busy_text) = get(
        admin::metrics_router(busy, no_hook()),
        Method::GET,
        "/metrics",
    )
    .await;
    let (_, _, idle_text) = get(
        admin::metrics_router(idle, no_hook()),
        Method::GET,
        "/metrics",
    )
    .await;
    assert!(busy_text.contains("keyloop_requests_total{"));
    assert!(busy_text.contains("gen_ai_client_token_usage_bucket{"));
    assert!(!idle_text.contains("keyloop_requests_total{"));
    assert!(!idle_text.contains("gen_ai_client"));
    assert_eq!(
        value(&parse(&idle_text), "keyloop_in_flight_requests", &[]),
        Some(Value::Gauge(0.0))
    );
    assert_eq!(
        value(&parse(&busy_text), "keyloop_in_flight_requests", &[]),
        Some(Value::Gauge(1.0))
    );
}

#[tokio::test]
async fn a_running_gateway_serves_its_metrics_on_the_admin_listener() {
    let h = Harness::start(Options {
        keys: vec![key("alpha"), key("beta")],
        ..Options::default()
    })
    .await;
    let response = h
        .message(false)
        .header("x-client-id", "sk-ant-api03-attributed-by-the-client")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap();

    let scraped = h
        .http
        .get(format!("http://{}/metrics", h.gateway.admin_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(
        scraped.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let body = scraped.text().await.unwrap();
    let scrape = parse(&body);
    assert_eq!(
        value(&scrape, "keyloop_credentials", &[("state", "active")]),
        Some(Value::Gauge(2.0)),
        "{body}"
    );
    assert_eq!(
        value(&scrape, "keyloop_in_flight_requests", &[]),
        Some(Value::Gauge(0.0)),
        "{body}"
    );
    let served: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "keyloop_requests_total")
        .filter(|s| s.labels.get("outcome") == Some("success"))
        .map(|s| match s.value {
            Value::Counter(v) => v,
            _ => 0.0,
        })
        .sum();
    assert_eq!(served, 1.0, "{body}");
    for secret in ["sk-ant", "alpha", "beta", "attributed", &h.client_key] {
        assert!(!body.contains(secret), "{secret} leaked into /metrics");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn a_stream_spliced_after_a_failure_before_content_counts_its_failed_attempt() {
    let h = Harness::start(Options {
        keys: vec![key("alpha"), key("beta")],
        ..Options::default()
    })
    .await;
    h.mock
        .push_scenario("alpha", keyloop_mock::Scenario::ErrorBeforeContent, 1);
    let response = h.message(true).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(!body.contains("event: error"), "{body}");

    let body = h
        .http
        .get(format!("http://{}/metrics", h.gateway.admin_addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = parse(&body);
    assert_eq!(
        value(
            &scrape,
            "keyloop_attempt_failures_total",
            &[("class", "overloaded")]
        ),
        Some(Value::Counter(1.0)),
        "{body}"
    );
    let outcomes: Vec<(&str, f64)> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "keyloop_requests_total")
        .filter_map(|s| match s.value {
            Value::Counter(v) => Some((s.labels.get("outcome").unwrap_or("-"), v)),
            _ => None,
        })
        .collect();
    assert_eq!(outcomes, [("success", 1.0)], "{body}");
    h.shutdown().await;
}
