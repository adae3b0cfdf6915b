//! Synthetic usage records in, Prometheus text out, parsed back with an independent parser.

use keyloop_wire::usage::Usage;
use prometheus_parse::{Sample, Scrape, Value};

use super::*;
use crate::accounting::FailedAttempt;

fn record(model: &str) -> UsageRecord {
    UsageRecord::sample(model)
}

fn scrape(metrics: &Metrics) -> Scrape {
    let text = metrics.render();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("valid exposition text")
}

/// The sample with exactly these labels (no more, no fewer).
fn find<'a>(scrape: &'a Scrape, name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    scrape.samples.iter().find(|s| {
        s.metric == name
            && s.labels.len() == labels.len()
            && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
    })
}

fn counter(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    match find(scrape, name, labels).map(|s| &s.value) {
        Some(Value::Counter(v)) => *v,
        other => panic!("{name}{labels:?}: expected a counter, got {other:?}"),
    }
}

fn gauge(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    match find(scrape, name, labels).map(|s| &s.value) {
        Some(Value::Gauge(v)) => *v,
        other => panic!("{name}{labels:?}: expected a gauge, got {other:?}"),
    }
}

/// (upper bound, cumulative count) pairs of a histogram, `+Inf` last.
fn buckets(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Vec<(f64, f64)> {
    match find(scrape, name, labels).map(|s| &s.value) {
        Some(Value::Histogram(b)) => b.iter().map(|h| (h.less_than, h.count)).collect(),
        other => panic!("{name}{labels:?}: expected a histogram, got {other:?}"),
    }
}

fn count_in(buckets: &[(f64, f64)], le: f64) -> f64 {
    buckets
        .iter()
        .find(|(bound, _)| *bound == le)
        .unwrap_or_else(|| panic!("no bucket le={le} in {buckets:?}"))
        .1
}

fn model_labels(scrape: &Scrape) -> Vec<String> {
    let mut models: Vec<String> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == REQUESTS_TOTAL)
        .filter_map(|s| s.labels.get("model").map(str::to_owned))
        .collect();
    models.sort();
    models.dedup();
    models
}

const SONNET: &str = "claude-sonnet-5-5";

#[test]
fn counts_requests_tokens_and_cost_by_model() {
    let metrics = Metrics::new(false);
    metrics.request_finished(&record(SONNET));
    let mut second = record(SONNET);
    second.usage = Usage {
        input_tokens: 5,
        output_tokens: 7,
        cache_read_tokens: 100,
        ..Usage::default()
    };
    second.usage.set_cache_writes(50, 30);
    second.cost_nanos = Some(2_500);
    metrics.request_finished(&second);
    let mut unpriced = record(SONNET);
    unpriced.cost_nanos = None;
    unpriced.route = Route::CountTokens;
    metrics.request_finished(&unpriced);

    let s = scrape(&metrics);
    let m = ("model", SONNET);
    assert_eq!(
        counter(
            &s,
            REQUESTS_TOTAL,
            &[("route", "messages"), m, ("outcome", "success")]
        ),
        2.0
    );
    assert_eq!(
        counter(
            &s,
            REQUESTS_TOTAL,
            &[("route", "count_tokens"), m, ("outcome", "success")]
        ),
        1.0
    );
    assert_eq!(counter(&s, TOKENS_TOTAL, &[("kind", "input"), m]), 25.0);
    assert_eq!(counter(&s, TOKENS_TOTAL, &[("kind", "output"), m]), 47.0);
    assert_eq!(
        counter(&s, TOKENS_TOTAL, &[("kind", "cache_read"), m]),
        100.0
    );
    assert_eq!(
        counter(&s, TOKENS_TOTAL, &[("kind", "cache_write_5m"), m]),
        20.0
    );
    assert_eq!(
        counter(&s, TOKENS_TOTAL, &[("kind", "cache_write_1h"), m]),
        30.0
    );
    assert_eq!(counter(&s, COST_NANODOLLARS_TOTAL, &[m]), 3_500.0);
    assert_eq!(counter(&s, UNPRICED_REQUESTS_TOTAL, &[m]), 1.0);
}

#[test]
fn free_text_models_become_other() {
    let metrics = Metrics::new(false);
    for requested in [
        "gpt-4o",
        "Claude-Sonnet-4",
        "claude-sonnet 4",
        "claude-\"injected\"}",
        "claude-ünïcode",
        &format!("claude-{}", "a".repeat(60)),
        "",
    ] {
        let mut r = record(requested);
        r.served_model = None;
        r.outcome = RequestOutcome::ClientError;
        metrics.request_finished(&r);
    }
    let mut none = record(SONNET);
    none.route = Route::Models;
    none.served_model = None;
    none.requested_model = None;
    metrics.request_finished(&none);

    let s = scrape(&metrics);
    assert_eq!(model_labels(&s), ["none", "other"]);
    assert_eq!(
        counter(
            &s,
            REQUESTS_TOTAL,
            &[
                ("route", "messages"),
                ("model", "other"),
                ("outcome", "client_error")
            ]
        ),
        7.0
    );
}

#[test]
fn model_label_prefers_the_served_model_and_checks_its_shape() {
    assert_eq!(model_label(Some(SONNET), Some("claude-x")), SONNET);
    assert_eq!(
        model_label(None, Some("claude-haiku-4-5")),
        "claude-haiku-4-5"
    );
    assert_eq!(model_label(Some("mystery"), Some(SONNET)), "other");
    assert_eq!(model_label(None, None), "none");
    let longest = format!("claude-{}", "9".repeat(57));
    assert_eq!(longest.len(), 64);
    assert_eq!(model_label(None, Some(&longest)), longest);
    let too_long = format!("{longest}9");
    assert_eq!(model_label(None, Some(&too_long)), "other");
    assert_eq!(
        model_label(None, Some("claude-3.5-sonnet")),
        "claude-3.5-sonnet"
    );
    assert_eq!(model_label(None, Some("claude-opus_4")), "other");
}

#[test]
fn distinct_model_labels_are_capped() {
    let metrics = Metrics::new(false);
    for i in 0..(MAX_MODEL_LABELS + 20) {
        let mut r = record(&format!("claude-made-up-{i}"));
        r.served_model = None;
        metrics.request_finished(&r);
    }
    // A model seen before the cap keeps its own label afterwards.
    metrics.request_finished(&record("claude-made-up-0"));

    let s = scrape(&metrics);
    let models = model_labels(&s);
    assert_eq!(models.len(), MAX_MODEL_LABELS + 1, "{models:?}");
    assert!(models.iter().any(|m| m == "other"));
    let ok = [("route", "messages"), ("outcome", "success")];
    let with = |model| [ok[0], ("model", model), ok[1]];
    assert_eq!(counter(&s, REQUESTS_TOTAL, &with("claude-made-up-0")), 2.0);
    assert_eq!(counter(&s, REQUESTS_TOTAL, &with("other")), 20.0);
}

#[test]
fn durations_are_histograms_with_configured_buckets() {
    let metrics = Metrics::new(false);
    let mut fast = record(SONNET);
    fast.latency_ms = 30;
    fast.ttft_ms = Some(4);
    metrics.request_finished(&fast);
    let mut slow = record(SONNET);
    slow.latency_ms = 2_000;
    slow.ttft_ms = Some(700);
    metrics.request_finished(&slow);
    let mut failed = record(SONNET);
    failed.outcome = RequestOutcome::UpstreamError;
    failed.latency_ms = 500_000;
    failed.ttft_ms = None;
    metrics.request_finished(&failed);

    let text = metrics.render();
    assert!(text.contains("keyloop_request_duration_seconds_bucket{"));
    assert!(text.contains("keyloop_time_to_first_token_seconds_bucket{"));
    assert!(!text.contains(" summary"), "no summaries:\n{text}");
    assert!(!text.contains("quantile="), "no summaries:\n{text}");

    let s = scrape(&metrics);
    let ok = buckets(
        &s,
        REQUEST_DURATION_SECONDS,
        &[("route", "messages"), ("outcome", "success")],
    );
    let bounds: Vec<f64> = ok.iter().map(|b| b.0).collect();
    let mut expected = LATENCY_BUCKETS.to_vec();
    expected.push(f64::INFINITY);
    assert_eq!(bounds, expected);
    assert_eq!(count_in(&ok, 0.025), 0.0);
    assert_eq!(count_in(&ok, 0.05), 1.0);
    assert_eq!(count_in(&ok, 1.0), 1.0);
    assert_eq!(count_in(&ok, 2.5), 2.0);
    assert_eq!(count_in(&ok, f64::INFINITY), 2.0);

    let failed = buckets(
        &s,
        REQUEST_DURATION_SECONDS,
        &[("route", "messages"), ("outcome", "upstream_error")],
    );
    assert_eq!(
        count_in(&failed, 120.0),
        0.0,
        "500 s is past the last bound"
    );
    assert_eq!(count_in(&failed, f64::INFINITY), 1.0);

    let ttft = buckets(&s, TIME_TO_FIRST_TOKEN_SECONDS, &[("route", "messages")]);
    assert_eq!(count_in(&ttft, 0.005), 1.0);
    assert_eq!(count_in(&ttft, 0.5), 1.0);
    assert_eq!(count_in(&ttft, 1.0), 2.0);
    assert_eq!(
        count_in(&ttft, f64::INFINITY),
        2.0,
        "unknown TTFT is not recorded"
    );

    let sum = s
        .samples
        .iter()
        .find(|x| {
            x.metric == "keyloop_request_duration_seconds_sum"
                && x.labels.get("outcome") == Some("success")
        })
        .expect("a _sum series");
    match sum.value {
        Value::Untyped(v) => assert!((v - 2.03).abs() < 1e-9, "{v}"),
        ref other => panic!("{other:?}"),
    }
}

#[test]
fn counts_each_failed_attempt_by_class() {
    let metrics = Metrics::new(false);
    let mut r = record(SONNET);
    let failed = |class| FailedAttempt {
        key_id: "k1".to_owned(),
        key_name: "primary".to_owned(),
        class,
    };
    r.attempts = vec![
        failed(OutcomeClass::RateLimited),
        failed(OutcomeClass::RateLimited),
        failed(OutcomeClass::Timeout),
    ];
    metrics.request_finished(&r);
    metrics.request_finished(&record(SONNET));

    let s = scrape(&metrics);
    assert_eq!(
        counter(&s, ATTEMPT_FAILURES_TOTAL, &[("class", "rate_limited")]),
        2.0
    );
    assert_eq!(
        counter(&s, ATTEMPT_FAILURES_TOTAL, &[("class", "timeout")]),
        1.0
    );
    let classes = s
        .samples
        .iter()
        .filter(|x| x.metric == ATTEMPT_FAILURES_TOTAL)
        .count();
    assert_eq!(classes, 2);
}

#[test]
fn credential_transitions_and_states() {
    let metrics = Metrics::new(false);
    metrics.credential_transition("active", "cooling_down");
    metrics.credential_transition("active", "cooling_down");
    metrics.credential_transition("cooling_down", "active");
    metrics.credential_transition("active", "active");
    metrics.set_credential_states(&[("active", 2), ("cooling_down", 1)]);
    metrics.set_credential_states(&[("active", 3), ("disabled", 1)]);

    let s = scrape(&metrics);
    let t = |from, to| {
        counter(
            &s,
            CREDENTIAL_TRANSITIONS_TOTAL,
            &[("from", from), ("to", to)],
        )
    };
    assert_eq!(t("active", "cooling_down"), 2.0);
    assert_eq!(t("cooling_down", "active"), 1.0);
    assert!(
        find(
            &s,
            CREDENTIAL_TRANSITIONS_TOTAL,
            &[("from", "active"), ("to", "active")]
        )
        .is_none()
    );
    assert_eq!(gauge(&s, CREDENTIALS, &[("state", "active")]), 3.0);
    assert_eq!(gauge(&s, CREDENTIALS, &[("state", "disabled")]), 1.0);
    assert_eq!(
        gauge(&s, CREDENTIALS, &[("state", "cooling_down")]),
        0.0,
        "a state that emptied drops to zero"
    );
}

#[test]
fn in_flight_guard_counts_while_held() {
    let metrics = Metrics::new(false);
    let in_flight = |m: &Metrics| gauge(&scrape(m), IN_FLIGHT_REQUESTS, &[]);
    assert_eq!(in_flight(&metrics), 0.0);
    let a = metrics.in_flight();
    let b = metrics.in_flight();
    assert_eq!(in_flight(&metrics), 2.0);
    drop(a);
    assert_eq!(in_flight(&metrics), 1.0);
    drop(b);
    assert_eq!(in_flight(&metrics), 0.0);
}

#[test]
fn ledger_numbers_are_absolute() {
    let metrics = Metrics::new(false);
    metrics.ledger(4, 10, 1, 15);
    metrics.ledger(2, 12, 1, 15);
    let s = scrape(&metrics);
    assert_eq!(gauge(&s, LEDGER_QUEUE_DEPTH, &[]), 2.0);
    assert_eq!(counter(&s, LEDGER_RECORDS_WRITTEN_TOTAL, &[]), 12.0);
    assert_eq!(counter(&s, LEDGER_RECORDS_DROPPED_TOTAL, &[]), 1.0);
    assert_eq!(counter(&s, LEDGER_RECORDS_GENERATED_TOTAL, &[]), 15.0);
}

#[test]
fn build_info_names_the_version() {
    let s = scrape(&Metrics::new(false));
    assert_eq!(
        gauge(&s, BUILD_INFO, &[("version", env!("CARGO_PKG_VERSION"))]),
        1.0
    );
}

#[test]
fn two_instances_share_nothing() {
    let a = Metrics::new(false);
    let b = Metrics::new(false);
    a.request_finished(&record(SONNET));
    a.request_finished(&record(SONNET));
    b.request_finished(&record(SONNET));
    a.credential_transition("active", "disabled");
    let _held = a.in_flight();

    let key = [
        ("route", "messages"),
        ("model", SONNET),
        ("outcome", "success"),
    ];
    assert_eq!(counter(&scrape(&a), REQUESTS_TOTAL, &key), 2.0);
    let sb = scrape(&b);
    assert_eq!(counter(&sb, REQUESTS_TOTAL, &key), 1.0);
    assert!(
        find(
            &sb,
            CREDENTIAL_TRANSITIONS_TOTAL,
            &[("from", "active"), ("to", "disabled")]
        )
        .is_none()
    );
    assert_eq!(gauge(&sb, IN_FLIGHT_REQUESTS, &[]), 0.0);
    // A clone is the same instance.
    let a2 = a.clone();
    a2.request_finished(&record(SONNET));
    assert_eq!(counter(&scrape(&a), REQUESTS_TOTAL, &key), 3.0);
}

#[test]
fn no_client_or_credential_strings_reach_the_output() {
    const SECRET: &str = "sk-ant-api03-SECRETsecretSECRET";
    let metrics = Metrics::new(true);
    let mut r = record(SONNET);
    r.request_id = format!("req-{SECRET}-id");
    r.client_id = Some(format!("client-{SECRET}"));
    r.client_name = Some("alice-laptop".to_owned());
    r.attributed = Some(format!("attributed {SECRET}"));
    r.key_id = Some("key-id-zebra".to_owned());
    r.key_name = Some("prod-key-walrus".to_owned());
    r.stop_reason = Some("stop-reason-okapi".to_owned());
    r.attempts = vec![FailedAttempt {
        key_id: "key-id-narwhal".to_owned(),
        key_name: "key-name-quokka".to_owned(),
        class: OutcomeClass::InvalidCredential,
    }];
    metrics.request_finished(&r);
    let mut smuggled = record(SECRET);
    smuggled.served_model = None;
    metrics.request_finished(&smuggled);
    let mut smuggled = record(&format!("claude-{}", SECRET.to_lowercase()));
    smuggled.served_model = Some(format!("x-{SECRET}"));
    metrics.request_finished(&smuggled);

    let text = metrics.render();
    for needle in [
        "SECRET", "secret", "sk-ant", "alice", "zebra", "walrus", "okapi", "narwhal", "quokka",
        "req-",
    ] {
        assert!(!text.contains(needle), "{needle:?} leaked into:\n{text}");
    }
    assert!(text.contains("invalid_credential"));
}

#[test]
fn gen_ai_metrics_only_when_switched_on() {
    let mut r = record(SONNET);
    r.streamed = true;
    r.usage.cache_read_tokens = 1_000;

    let off = Metrics::new(false);
    off.request_finished(&r);
    assert!(!off.render().contains("gen_ai"));

    let on = Metrics::new(true);
    on.request_finished(&r);
    let mut failed = record(SONNET);
    failed.outcome = RequestOutcome::StreamCut;
    failed.usage = Usage::default();
    on.request_finished(&failed);
    let mut counting = record(SONNET);
    counting.route = Route::CountTokens;
    on.request_finished(&counting);

    let s = scrape(&on);
    let common = [
        ("gen_ai_operation_name", "chat"),
        ("gen_ai_provider_name", "anthropic"),
        ("gen_ai_response_model", SONNET),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut labels = common.to_vec();
        labels.extend_from_slice(extra);
        labels
    };

    let input = buckets(
        &s,
        "gen_ai_client_token_usage",
        &with(&[("gen_ai_token_type", "input")]),
    );
    let bounds: Vec<f64> = input.iter().map(|b| b.0).collect();
    let mut expected = TOKEN_BUCKETS.to_vec();
    expected.push(f64::INFINITY);
    assert_eq!(bounds, expected);
    // 10 uncached + 1,000 cache reads: one observation of 1,010 tokens.
    assert_eq!(count_in(&input, 256.0), 0.0);
    assert_eq!(count_in(&input, 1024.0), 1.0);
    assert_eq!(
        count_in(&input, f64::INFINITY),
        1.0,
        "zero usage is not observed"
    );
    let output = buckets(
        &s,
        "gen_ai_client_token_usage",
        &with(&[("gen_ai_token_type", "output")]),
    );
    assert_eq!(count_in(&output, 16.0), 0.0);
    assert_eq!(count_in(&output, 64.0), 1.0);

    let ok = buckets(&s, "gen_ai_client_operation_duration", &with(&[]));
    assert_eq!(count_in(&ok, f64::INFINITY), 1.0);
    let cut = buckets(
        &s,
        "gen_ai_client_operation_duration",
        &with(&[("error_type", "stream_cut")]),
    );
    assert_eq!(count_in(&cut, f64::INFINITY), 1.0);
    let ttfc = buckets(
        &s,
        "gen_ai_client_operation_time_to_first_chunk",
        &with(&[]),
    );
    assert_eq!(count_in(&ttfc, 0.01), 1.0, "only the streamed request");
    assert_eq!(count_in(&ttfc, f64::INFINITY), 1.0);

    let operations: Vec<&str> = s
        .samples
        .iter()
        .filter_map(|x| x.labels.get("gen_ai_operation_name"))
        .collect();
    assert!(operations.iter().all(|op| *op == "chat"), "{operations:?}");
}

#[test]
fn every_metric_is_described_and_named_by_convention() {
    let metrics = Metrics::new(true);
    let mut r = record(SONNET);
    r.streamed = true;
    r.cost_nanos = None;
    r.usage.cache_read_tokens = 1;
    r.usage.set_cache_writes(2, 1);
    r.attempts = vec![FailedAttempt {
        key_id: "k".to_owned(),
        key_name: "n".to_owned(),
        class: OutcomeClass::Overloaded,
    }];
    metrics.request_finished(&r);
    metrics.request_finished(&record(SONNET));
    metrics.credential_transition("active", "probing");
    metrics.set_credential_states(&[("active", 1)]);
    metrics.ledger(0, 0, 0, 0);

    let text = metrics.render();
    let types: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split_once(' ').expect("name and type"))
        .collect();
    let names: Vec<&str> = types.iter().map(|(n, _)| *n).collect();
    for expected in [
        REQUESTS_TOTAL,
        TOKENS_TOTAL,
        COST_NANODOLLARS_TOTAL,
        UNPRICED_REQUESTS_TOTAL,
        REQUEST_DURATION_SECONDS,
        TIME_TO_FIRST_TOKEN_SECONDS,
        ATTEMPT_FAILURES_TOTAL,
        CREDENTIAL_TRANSITIONS_TOTAL,
        CREDENTIALS,
        IN_FLIGHT_REQUESTS,
        LEDGER_QUEUE_DEPTH,
        LEDGER_RECORDS_WRITTEN_TOTAL,
        LEDGER_RECORDS_DROPPED_TOTAL,
        LEDGER_RECORDS_GENERATED_TOTAL,
        BUILD_INFO,
        "gen_ai_client_token_usage",
        "gen_ai_client_operation_duration",
        "gen_ai_client_operation_time_to_first_chunk",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert_eq!(names.len(), 18, "{names:?}");
    for (name, kind) in &types {
        assert!(
            name.starts_with("keyloop_") || name.starts_with("gen_ai_"),
            "{name}"
        );
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no help text"
        );
        assert_eq!(
            name.ends_with("_total"),
            *kind == "counter",
            "{name} is a {kind}"
        );
        assert_ne!(*kind, "summary", "{name}");
    }
}

#[tokio::test]
async fn upkeep_keeps_samples_and_stops_on_shutdown() {
    let metrics = Metrics::new(false);
    metrics.request_finished(&record(SONNET));
    metrics.run_upkeep();
    metrics.request_finished(&record(SONNET));
    let shutdown = CancellationToken::new();
    shutdown.cancel();
    metrics
        .clone()
        .upkeep(Duration::from_secs(3600), shutdown)
        .await;

    let s = scrape(&metrics);
    let ok = buckets(
        &s,
        REQUEST_DURATION_SECONDS,
        &[("route", "messages"), ("outcome", "success")],
    );
    assert_eq!(count_in(&ok, f64::INFINITY), 2.0, "upkeep loses no sample");
}
