//! Every metric keyloop exports: names, label sets, descriptions, histogram buckets, and the
//! Prometheus recorder they live in.
//!
//! Each [`Metrics`] owns its own recorder; nothing is installed globally, so several gateways in
//! one process (tests) never share a counter. The gateway calls the methods here; it never names
//! a metric itself.
//!
//! Naming: one prefix `keyloop_`, snake_case, base units in the name (`_seconds`), counters end
//! in `_total`. Label values come from closed sets (`Route`, `RequestOutcome`, `OutcomeClass`,
//! credential states, token kinds) or from [`model_label`], which only passes model ids that
//! look like Anthropic's and caps how many distinct ones appear. No label carries a client id,
//! a credential name, an `X-Client-ID` or any other string a client chose freely.
//!
//! With `gen_ai` on, the OpenTelemetry GenAI client metrics are recorded as well
//! (`gen_ai.client.token.usage`, `gen_ai.client.operation.duration`,
//! `gen_ai.client.operation.time_to_first_chunk`); Prometheus text turns their dots into
//! underscores.
//!
//! Hot path: handles for each label set are registered once and cached (`OnceLock` tables per
//! route, outcome and model), so recording a finished request is a read lock, a map lookup
//! without allocation, and atomic adds. No lock is held across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::metrics::{
    Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, SharedString, Unit,
};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use parking_lot::{Mutex, RwLock};
use tokio_util::sync::CancellationToken;

use crate::accounting::{RequestOutcome, Route, UsageRecord};
use crate::types::OutcomeClass;

pub const REQUESTS_TOTAL: &str = "keyloop_requests_total";
pub const TOKENS_TOTAL: &str = "keyloop_tokens_total";
pub const COST_NANODOLLARS_TOTAL: &str = "keyloop_cost_nanodollars_total";
pub const UNPRICED_REQUESTS_TOTAL: &str = "keyloop_unpriced_requests_total";
pub const REQUEST_DURATION_SECONDS: &str = "keyloop_request_duration_seconds";
pub const TIME_TO_FIRST_TOKEN_SECONDS: &str = "keyloop_time_to_first_token_seconds";
pub const ATTEMPT_FAILURES_TOTAL: &str = "keyloop_attempt_failures_total";
pub const CREDENTIAL_TRANSITIONS_TOTAL: &str = "keyloop_credential_transitions_total";
pub const CREDENTIALS: &str = "keyloop_credentials";
pub const IN_FLIGHT_REQUESTS: &str = "keyloop_in_flight_requests";
pub const LEDGER_QUEUE_DEPTH: &str = "keyloop_ledger_queue_depth";
pub const LEDGER_RECORDS_WRITTEN_TOTAL: &str = "keyloop_ledger_records_written_total";
pub const LEDGER_RECORDS_DROPPED_TOTAL: &str = "keyloop_ledger_records_dropped_total";
pub const LEDGER_RECORDS_GENERATED_TOTAL: &str = "keyloop_ledger_records_generated_total";
pub const BUILD_INFO: &str = "keyloop_build_info";

/// OpenTelemetry GenAI semantic-convention names (recorded only when switched on).
pub const GEN_AI_TOKEN_USAGE: &str = "gen_ai.client.token.usage";
pub const GEN_AI_OPERATION_DURATION: &str = "gen_ai.client.operation.duration";
pub const GEN_AI_TIME_TO_FIRST_CHUNK: &str = "gen_ai.client.operation.time_to_first_chunk";

/// The `gen_ai.provider.name` value: keyloop relays to Anthropic only.
pub const GEN_AI_PROVIDER: &str = "anthropic";

/// Upper bounds (seconds) for latency histograms: 5 ms up to two minutes, the longest streams.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
];

/// Upper bounds for the token histogram, as the GenAI conventions advise: 1, 4, 16, … ×4.
pub const TOKEN_BUCKETS: &[f64] = &[
    1.0,
    4.0,
    16.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
];

/// The model label for requests that named no model at all (e.g. `GET /v1/models`).
pub const MODEL_NONE: &str = "none";
/// The model label for anything that is not a plausible Anthropic model id, and for new ids
/// once [`MAX_MODEL_LABELS`] distinct ones have been seen.
pub const MODEL_OTHER: &str = "other";
/// How many distinct model labels one `Metrics` hands out. A client can name any well-formed
/// `claude-…` id; the cap keeps it from growing the series count without bound.
pub const MAX_MODEL_LABELS: usize = 64;
const MAX_MODEL_LEN: usize = 64;

/// Token kinds, in the order of the per-model token counter table.
const TOKEN_KINDS: [&str; 5] = [
    "input",
    "output",
    "cache_read",
    "cache_write_5m",
    "cache_write_1h",
];

const ROUTES: usize = Route::ALL.len();
const OUTCOMES: usize = RequestOutcome::ALL.len();
const CLASSES: usize = 11;

/// What the recorder is told about the call site; the Prometheus recorder ignores it.
const METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

/// The model label for a request: the served model, else the requested one, passed only if it
/// looks like an Anthropic model id (`claude-`, at most 64 of `[a-z0-9.-]`). Everything else is
/// [`MODEL_OTHER`]; no model at all is [`MODEL_NONE`].
pub fn model_label<'a>(served: Option<&'a str>, requested: Option<&'a str>) -> &'a str {
    match served.or(requested) {
        None => MODEL_NONE,
        Some(model) if is_known_model(model) => model,
        Some(_) => MODEL_OTHER,
    }
}

fn is_known_model(model: &str) -> bool {
    model.len() <= MAX_MODEL_LEN
        && model.starts_with("claude-")
        && model
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

/// The gateway's metrics. Cheap to clone: a handle around one recorder. Created once by `app`.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("gen_ai", &self.inner.gen_ai)
            .finish_non_exhaustive()
    }
}

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    gen_ai: bool,
    /// `keyloop_request_duration_seconds{route,outcome}`.
    duration: [[OnceLock<Histogram>; OUTCOMES]; ROUTES],
    /// `keyloop_time_to_first_token_seconds{route}`.
    ttft: [OnceLock<Histogram>; ROUTES],
    /// `keyloop_attempt_failures_total{class}`.
    attempt_failures: [OnceLock<Counter>; CLASSES],
    /// Per model label. Read-locked on the hot path; write-locked only for a new model.
    models: RwLock<HashMap<Box<str>, Arc<ModelSeries>>>,
    /// The `keyloop_credentials{state}` gauges set so far, so a state that empties drops to 0.
    credential_states: Mutex<Vec<(&'static str, Gauge)>>,
    in_flight: Gauge,
    ledger_queue_depth: Gauge,
    ledger_written: Counter,
    ledger_dropped: Counter,
    ledger_generated: Counter,
}

/// The handles for one model label, registered on first use.
struct ModelSeries {
    label: SharedString,
    requests: [[OnceLock<Counter>; OUTCOMES]; ROUTES],
    tokens: [OnceLock<Counter>; TOKEN_KINDS.len()],
    cost: OnceLock<Counter>,
    unpriced: OnceLock<Counter>,
    /// `gen_ai.client.token.usage` by operation (chat, text_completion) and type (input, output).
    gen_ai_tokens: [[OnceLock<Histogram>; 2]; 2],
    /// `gen_ai.client.operation.duration` by operation and outcome (`error.type`).
    gen_ai_duration: [[OnceLock<Histogram>; OUTCOMES]; 2],
    /// `gen_ai.client.operation.time_to_first_chunk` by operation.
    gen_ai_ttfc: [OnceLock<Histogram>; 2],
}

impl ModelSeries {
    fn new(label: SharedString) -> Self {
        Self {
            label,
            requests: Default::default(),
            tokens: Default::default(),
            cost: OnceLock::new(),
            unpriced: OnceLock::new(),
            gen_ai_tokens: Default::default(),
            gen_ai_duration: Default::default(),
            gen_ai_ttfc: Default::default(),
        }
    }
}

/// Keeps `keyloop_in_flight_requests` up by one while it lives.
#[must_use = "the request counts as in flight only while the guard is held"]
pub struct InFlightGuard {
    gauge: Gauge,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.gauge.decrement(1.0);
    }
}

impl Metrics {
    /// A fresh recorder with every metric described and every histogram given buckets.
    /// `gen_ai` switches on the OpenTelemetry GenAI metrics in addition to the `keyloop_` set.
    pub fn new(gen_ai: bool) -> Self {
        let recorder = PrometheusBuilder::new()
            // Every histogram is a real histogram; only the token histogram differs.
            .set_buckets(LATENCY_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(GEN_AI_TOKEN_USAGE.into()), TOKEN_BUCKETS)
            })
            .expect("bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        describe(&recorder);

        let build_info = recorder.register_gauge(
            &Key::from_parts(
                BUILD_INFO,
                vec![Label::new("version", env!("CARGO_PKG_VERSION"))],
            ),
            &METADATA,
        );
        build_info.set(1.0);

        let in_flight = recorder.register_gauge(&Key::from_name(IN_FLIGHT_REQUESTS), &METADATA);
        in_flight.set(0.0);
        let ledger_queue_depth =
            recorder.register_gauge(&Key::from_name(LEDGER_QUEUE_DEPTH), &METADATA);
        let ledger_written =
            recorder.register_counter(&Key::from_name(LEDGER_RECORDS_WRITTEN_TOTAL), &METADATA);
        let ledger_dropped =
            recorder.register_counter(&Key::from_name(LEDGER_RECORDS_DROPPED_TOTAL), &METADATA);
        let ledger_generated =
            recorder.register_counter(&Key::from_name(LEDGER_RECORDS_GENERATED_TOTAL), &METADATA);

        Self {
            inner: Arc::new(Inner {
                recorder,
                handle,
                gen_ai,
                duration: Default::default(),
                ttft: Default::default(),
                attempt_failures: Default::default(),
                models: RwLock::new(HashMap::new()),
                credential_states: Mutex::new(Vec::new()),
                in_flight,
                ledger_queue_depth,
                ledger_written,
                ledger_dropped,
                ledger_generated,
            }),
        }
    }

    /// Whether the OpenTelemetry GenAI metrics are recorded too.
    pub fn gen_ai(&self) -> bool {
        self.inner.gen_ai
    }

    /// Records one finished request: its count, tokens, cost, duration, time to first token
    /// and every failed attempt (`record.attempts` is expected to hold each failed attempt
    /// once, the last one included).
    pub fn request_finished(&self, record: &UsageRecord) {
        let inner = &*self.inner;
        let route = route_index(record.route);
        let outcome = outcome_index(record.outcome);
        let model = self.model(record);

        inner
            .counter_in(&model.requests[route][outcome], || {
                Key::from_parts(
                    REQUESTS_TOTAL,
                    vec![
                        Label::from_static_parts("route", record.route.as_str()),
                        Label::new("model", model.label.clone()),
                        Label::from_static_parts("outcome", record.outcome.as_str()),
                    ],
                )
            })
            .increment(1);

        let usage = &record.usage;
        let tokens = [
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_5m_tokens,
            usage.cache_write_1h_tokens,
        ];
        for (kind, count) in tokens.into_iter().enumerate() {
            if count == 0 {
                continue;
            }
            inner
                .counter_in(&model.tokens[kind], || {
                    Key::from_parts(
                        TOKENS_TOTAL,
                        vec![
                            Label::from_static_parts("kind", TOKEN_KINDS[kind]),
                            Label::new("model", model.label.clone()),
                        ],
                    )
                })
                .increment(count);
        }

        match record.cost_nanos {
            Some(nanos) => inner
                .counter_in(&model.cost, || {
                    model_key(COST_NANODOLLARS_TOTAL, &model.label)
                })
                .increment(u64::try_from(nanos).unwrap_or(0)),
            None => inner
                .counter_in(&model.unpriced, || {
                    model_key(UNPRICED_REQUESTS_TOTAL, &model.label)
                })
                .increment(1),
        }

        let duration = seconds(record.latency_ms);
        inner
            .histogram_in(&inner.duration[route][outcome], || {
                Key::from_parts(
                    REQUEST_DURATION_SECONDS,
                    vec![
                        Label::from_static_parts("route", record.route.as_str()),
                        Label::from_static_parts("outcome", record.outcome.as_str()),
                    ],
                )
            })
            .record(duration);

        let ttft = record.ttft_ms.map(seconds);
        if let Some(ttft) = ttft {
            inner
                .histogram_in(&inner.ttft[route], || {
                    Key::from_parts(
                        TIME_TO_FIRST_TOKEN_SECONDS,
                        vec![Label::from_static_parts("route", record.route.as_str())],
                    )
                })
                .record(ttft);
        }

        for attempt in &record.attempts {
            inner
                .counter_in(&inner.attempt_failures[class_index(attempt.class)], || {
                    Key::from_parts(
                        ATTEMPT_FAILURES_TOTAL,
                        vec![Label::from_static_parts("class", attempt.class.as_str())],
                    )
                })
                .increment(1);
        }

        if inner.gen_ai {
            self.gen_ai_request(record, &model, duration, ttft);
        }
    }

    /// The GenAI client metrics for a request that was a model operation.
    fn gen_ai_request(
        &self,
        record: &UsageRecord,
        model: &ModelSeries,
        duration: f64,
        ttft: Option<f64>,
    ) {
        let inner = &*self.inner;
        let Some((op, operation)) = gen_ai_operation(record.route) else {
            return;
        };
        let common = |labels: &mut Vec<Label>| {
            labels.push(Label::from_static_parts("gen_ai.operation.name", operation));
            labels.push(Label::from_static_parts(
                "gen_ai.provider.name",
                GEN_AI_PROVIDER,
            ));
            labels.push(Label::new("gen_ai.response.model", model.label.clone()));
        };

        // Input as the conventions count it: every prompt token, cached or not.
        let usage = &record.usage;
        let input = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens;
        if input > 0 || usage.output_tokens > 0 {
            for (kind, (token_type, count)) in [("input", input), ("output", usage.output_tokens)]
                .into_iter()
                .enumerate()
            {
                inner
                    .histogram_in(&model.gen_ai_tokens[op][kind], || {
                        let mut labels = Vec::with_capacity(4);
                        common(&mut labels);
                        labels.push(Label::from_static_parts("gen_ai.token.type", token_type));
                        Key::from_parts(GEN_AI_TOKEN_USAGE, labels)
                    })
                    .record(count as f64);
            }
        }

        let outcome = record.outcome;
        inner
            .histogram_in(&model.gen_ai_duration[op][outcome_index(outcome)], || {
                let mut labels = Vec::with_capacity(4);
                common(&mut labels);
                if outcome != RequestOutcome::Success {
                    labels.push(Label::from_static_parts("error.type", outcome.as_str()));
                }
                Key::from_parts(GEN_AI_OPERATION_DURATION, labels)
            })
            .record(duration);

        if let (true, Some(ttft)) = (record.streamed, ttft) {
            inner
                .histogram_in(&model.gen_ai_ttfc[op], || {
                    let mut labels = Vec::with_capacity(3);
                    common(&mut labels);
                    Key::from_parts(GEN_AI_TIME_TO_FIRST_CHUNK, labels)
                })
                .record(ttft);
        }
    }

    /// Counts one credential state change (`from`/`to` are the pool's state labels).
    pub fn credential_transition(&self, from: &'static str, to: &'static str) {
        if from == to {
            return;
        }
        let key = Key::from_parts(
            CREDENTIAL_TRANSITIONS_TOTAL,
            vec![
                Label::from_static_parts("from", from),
                Label::from_static_parts("to", to),
            ],
        );
        self.inner
            .recorder
            .register_counter(&key, &METADATA)
            .increment(1);
    }

    /// Sets how many credentials are in each state. A state given before but missing now is
    /// set to 0, so the gauges always add up to the pool's size.
    pub fn set_credential_states(&self, counts: &[(&'static str, u64)]) {
        let mut states = self.inner.credential_states.lock();
        for (state, gauge) in states.iter() {
            if !counts.iter().any(|(s, _)| s == state) {
                gauge.set(0.0);
            }
        }
        for &(state, count) in counts {
            let gauge = match states.iter().find(|(s, _)| *s == state) {
                Some((_, gauge)) => gauge.clone(),
                None => {
                    let gauge = self.inner.recorder.register_gauge(
                        &Key::from_parts(
                            CREDENTIALS,
                            vec![Label::from_static_parts("state", state)],
                        ),
                        &METADATA,
                    );
                    states.push((state, gauge.clone()));
                    gauge
                }
            };
            gauge.set(count as f64);
        }
    }

    /// Counts a request as in flight until the guard is dropped.
    pub fn in_flight(&self) -> InFlightGuard {
        let gauge = self.inner.in_flight.clone();
        gauge.increment(1.0);
        InFlightGuard { gauge }
    }

    /// Publishes the ledger writer's numbers, read from its atomics: records waiting to be
    /// written, and the running totals written, dropped and generated.
    pub fn ledger(&self, queued: u64, written: u64, dropped: u64, generated: u64) {
        let inner = &*self.inner;
        inner.ledger_queue_depth.set(queued as f64);
        inner.ledger_written.absolute(written);
        inner.ledger_dropped.absolute(dropped);
        inner.ledger_generated.absolute(generated);
    }

    /// The Prometheus text exposition of everything recorded so far.
    pub fn render(&self) -> String {
        self.inner.handle.render()
    }

    /// Folds recorded histogram samples into their buckets. `render` does this too; between
    /// scrapes it keeps raw samples from piling up.
    pub fn run_upkeep(&self) {
        self.inner.handle.run_upkeep();
    }

    /// Runs [`Self::run_upkeep`] every `every` until `shutdown`. Spawned by `app` on its tracker.
    pub async fn upkeep(self, every: Duration, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => self.run_upkeep(),
            }
        }
    }

    /// The cached series of this record's model label; a new label past the cap is "other".
    fn model(&self, record: &UsageRecord) -> Arc<ModelSeries> {
        let label = model_label(
            record.served_model.as_deref(),
            record.requested_model.as_deref(),
        );
        if let Some(series) = self.inner.models.read().get(label) {
            return series.clone();
        }
        let mut models = self.inner.models.write();
        let label = if models.len() >= MAX_MODEL_LABELS && !models.contains_key(label) {
            MODEL_OTHER
        } else {
            label
        };
        models
            .entry(label.into())
            .or_insert_with(|| Arc::new(ModelSeries::new(SharedString::from(label.to_owned()))))
            .clone()
    }
}

impl Inner {
    fn counter_in<'a>(
        &self,
        slot: &'a OnceLock<Counter>,
        key: impl FnOnce() -> Key,
    ) -> &'a Counter {
        slot.get_or_init(|| self.recorder.register_counter(&key(), &METADATA))
    }

    fn histogram_in<'a>(
        &self,
        slot: &'a OnceLock<Histogram>,
        key: impl FnOnce() -> Key,
    ) -> &'a Histogram {
        slot.get_or_init(|| self.recorder.register_histogram(&key(), &METADATA))
    }
}

fn describe(recorder: &PrometheusRecorder) {
    let counter = |name: &'static str, unit: Option<Unit>, help: &'static str| {
        recorder.describe_counter(
            KeyName::from_const_str(name),
            unit,
            SharedString::const_str(help),
        );
    };
    counter(
        REQUESTS_TOTAL,
        Some(Unit::Count),
        "Finished client requests by route, model and outcome.",
    );
    counter(
        TOKENS_TOTAL,
        Some(Unit::Count),
        "Tokens used by kind (input, output, cache_read, cache_write_5m, cache_write_1h) and model.",
    );
    counter(
        COST_NANODOLLARS_TOTAL,
        None,
        "Cost of priced requests in nano-dollars (1e-9 USD), by model.",
    );
    counter(
        UNPRICED_REQUESTS_TOTAL,
        Some(Unit::Count),
        "Requests whose model has no price, so their cost is unknown, by model.",
    );
    counter(
        ATTEMPT_FAILURES_TOTAL,
        Some(Unit::Count),
        "Failed upstream attempts by outcome class.",
    );
    counter(
        CREDENTIAL_TRANSITIONS_TOTAL,
        Some(Unit::Count),
        "Credential state changes by the state left and the state entered.",
    );
    counter(
        LEDGER_RECORDS_WRITTEN_TOTAL,
        Some(Unit::Count),
        "Usage records written to the store.",
    );
    counter(
        LEDGER_RECORDS_DROPPED_TOTAL,
        Some(Unit::Count),
        "Usage records dropped because the ledger queue was full or the write failed.",
    );
    counter(
        LEDGER_RECORDS_GENERATED_TOTAL,
        Some(Unit::Count),
        "Usage records produced by finished requests.",
    );

    let gauge = |name: &'static str, unit: Option<Unit>, help: &'static str| {
        recorder.describe_gauge(
            KeyName::from_const_str(name),
            unit,
            SharedString::const_str(help),
        );
    };
    gauge(
        CREDENTIALS,
        Some(Unit::Count),
        "Credentials in each state (active, cooling_down, probing, disabled).",
    );
    gauge(
        IN_FLIGHT_REQUESTS,
        Some(Unit::Count),
        "Client requests being served right now.",
    );
    gauge(
        LEDGER_QUEUE_DEPTH,
        Some(Unit::Count),
        "Usage records waiting to be written to the store.",
    );
    gauge(
        BUILD_INFO,
        None,
        "Always 1; the version label names the running build.",
    );

    let histogram = |name: &'static str, unit: Option<Unit>, help: &'static str| {
        recorder.describe_histogram(
            KeyName::from_const_str(name),
            unit,
            SharedString::const_str(help),
        );
    };
    histogram(
        REQUEST_DURATION_SECONDS,
        Some(Unit::Seconds),
        "Time from a request's arrival to its last byte, by route and outcome.",
    );
    histogram(
        TIME_TO_FIRST_TOKEN_SECONDS,
        Some(Unit::Seconds),
        "Time from a request's arrival to the first content byte sent to the client, by route.",
    );
    histogram(
        GEN_AI_TOKEN_USAGE,
        None,
        "OpenTelemetry GenAI: tokens used per operation, by gen_ai.token.type.",
    );
    histogram(
        GEN_AI_OPERATION_DURATION,
        Some(Unit::Seconds),
        "OpenTelemetry GenAI: duration of a model operation in seconds.",
    );
    histogram(
        GEN_AI_TIME_TO_FIRST_CHUNK,
        Some(Unit::Seconds),
        "OpenTelemetry GenAI: time to the first chunk of a streamed answer in seconds.",
    );
}

fn model_key(name: &'static str, model: &SharedString) -> Key {
    Key::from_parts(name, vec![Label::new("model", model.clone())])
}

fn seconds(ms: i64) -> f64 {
    ms.max(0) as f64 / 1000.0
}

/// The GenAI `gen_ai.operation.name` of a route, with its index in the per-operation tables;
/// None for routes that are no model operation.
fn gen_ai_operation(route: Route) -> Option<(usize, &'static str)> {
    match route {
        Route::Messages => Some((0, "chat")),
        Route::Complete => Some((1, "text_completion")),
        Route::CountTokens | Route::Models | Route::Batches => None,
    }
}

// Exhaustive matches, not `as usize`: a new variant fails to compile here instead of indexing
// past a table at run time.

fn route_index(route: Route) -> usize {
    match route {
        Route::Messages => 0,
        Route::CountTokens => 1,
        Route::Complete => 2,
        Route::Models => 3,
        Route::Batches => 4,
    }
}

fn outcome_index(outcome: RequestOutcome) -> usize {
    match outcome {
        RequestOutcome::Success => 0,
        RequestOutcome::ClientError => 1,
        RequestOutcome::UpstreamError => 2,
        RequestOutcome::NoCredential => 3,
        RequestOutcome::ClientCancelled => 4,
        RequestOutcome::StreamCut => 5,
    }
}

fn class_index(class: OutcomeClass) -> usize {
    match class {
        OutcomeClass::Success => 0,
        OutcomeClass::RateLimited => 1,
        OutcomeClass::Overloaded => 2,
        OutcomeClass::ServerError => 3,
        OutcomeClass::Timeout => 4,
        OutcomeClass::ConnectError => 5,
        OutcomeClass::InvalidCredential => 6,
        OutcomeClass::BillingExhausted => 7,
        OutcomeClass::ClientError => 8,
        OutcomeClass::ModelDenied => 9,
        OutcomeClass::TokenExpired => 10,
    }
}

#[cfg(test)]
mod tests;
