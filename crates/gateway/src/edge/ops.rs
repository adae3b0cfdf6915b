//! Operational routes: liveness, readiness and the credential status page.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;

use super::EdgeState;
use crate::pool::KeyView;
use crate::types::{
    LimitWindow, RateLimitSnapshot, Subscription, WindowName, WindowStatus, now_ms,
};

/// `HEAD /` is how Claude Code checks the base URL before its first call.
pub async fn root() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "name": "keyloop", "status": "ok" }))
}

pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

pub async fn ready(State(state): State<EdgeState>) -> Response {
    let store = state.readiness.store_reachable().await;
    let usable = state.relay.pool().has_usable_key(now_ms());
    let status = if store && usable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "ready": store && usable,
        "store": if store { "ok" } else { "unreachable" },
        "usable_credential": usable,
    });
    (status, Json(body)).into_response()
}

#[derive(Serialize)]
pub struct Status {
    credentials: Vec<CredentialStatus>,
    usable: usize,
    total: usize,
}

#[derive(Serialize)]
struct CredentialStatus {
    id: String,
    masked: String,
    name: String,
    kind: &'static str,
    group: Option<String>,
    priority: u32,
    weight: u32,
    max_concurrent: Option<u32>,
    enabled: bool,
    state: &'static str,
    reason: Option<String>,
    cooldown_until_ms: Option<i64>,
    cooldown_remaining_secs: Option<u64>,
    in_flight: u32,
    ramp_cap: Option<u32>,
    requests: u64,
    errors: u64,
    last_outcome: Option<&'static str>,
    ratelimit: Option<RateLimitView>,
    /// The organisation the credential counts as (the operator's group, else the provider's).
    organization: Option<String>,
    /// Models the credential is held out for while it serves others.
    holds: Vec<HoldStatus>,
    /// Recent success rate, 0–1.
    success_rate: f64,
}

#[derive(Serialize)]
struct HoldStatus {
    models: String,
    until_ms: i64,
    reason: String,
}

#[derive(Serialize)]
struct RateLimitView {
    requests: Option<WindowView>,
    tokens: Option<WindowView>,
    input_tokens: Option<WindowView>,
    output_tokens: Option<WindowView>,
    /// A subscription account's windows.
    subscription: Option<SubscriptionView>,
    taken_ms: i64,
}

#[derive(Serialize)]
struct SubscriptionView {
    status: Option<&'static str>,
    /// The window that binds (`five_hour`, `seven_day`, …).
    binding: Option<&'static str>,
    reset_ms: Option<i64>,
    windows: Vec<UsageWindowView>,
    overage_status: Option<&'static str>,
    overage_in_use: bool,
}

#[derive(Serialize)]
struct UsageWindowView {
    name: &'static str,
    status: Option<&'static str>,
    utilization: Option<f64>,
    reset_ms: Option<i64>,
    /// When the window will be spent at the current rate (null: not before its reset).
    spent_at_ms: Option<i64>,
}

fn subscription(s: &Subscription, spent_at: &[(WindowName, i64)]) -> SubscriptionView {
    SubscriptionView {
        status: s.status.map(WindowStatus::as_str),
        binding: s.binding.map(|w| w.claim()),
        reset_ms: s.reset_ms,
        windows: s
            .windows()
            .map(|(name, w)| UsageWindowView {
                name: name.claim(),
                status: w.status.map(WindowStatus::as_str),
                utilization: w.utilization,
                reset_ms: w.reset_ms,
                spent_at_ms: spent_at.iter().find(|(n, _)| *n == name).map(|(_, at)| *at),
            })
            .collect(),
        overage_status: s.overage.and_then(|o| o.status).map(WindowStatus::as_str),
        overage_in_use: s.overage.is_some_and(|o| o.in_use),
    }
}

#[derive(Serialize)]
struct WindowView {
    limit: u64,
    remaining: u64,
    reset_ms: Option<i64>,
}

fn window(w: Option<LimitWindow>) -> Option<WindowView> {
    w.map(|w| WindowView {
        limit: w.limit,
        remaining: w.remaining,
        reset_ms: w.reset_ms,
    })
}

fn ratelimit(s: RateLimitSnapshot, spent_at: &[(WindowName, i64)]) -> RateLimitView {
    RateLimitView {
        requests: window(s.requests),
        tokens: window(s.tokens),
        input_tokens: window(s.input_tokens),
        output_tokens: window(s.output_tokens),
        subscription: s
            .subscription
            .as_ref()
            .map(|sub| subscription(sub, spent_at)),
        taken_ms: s.taken_ms,
    }
}

fn credential(view: KeyView, now: i64) -> CredentialStatus {
    CredentialStatus {
        id: view.id.to_string(),
        masked: view.masked,
        name: view.name,
        kind: view.kind.as_str(),
        group: view.group,
        priority: view.priority,
        weight: view.weight,
        max_concurrent: view.max_concurrent,
        enabled: view.enabled,
        state: view.state,
        reason: view.reason,
        cooldown_until_ms: view.cooldown_until,
        cooldown_remaining_secs: view
            .cooldown_until
            .map(|until| ((until - now).max(0) as u64).div_ceil(1000)),
        in_flight: view.in_flight,
        ramp_cap: view.ramp_cap,
        requests: view.requests,
        errors: view.errors,
        last_outcome: view.last_outcome.map(|o| o.as_str()),
        ratelimit: view.last_ratelimit.map(|r| ratelimit(r, &view.spent_at)),
        organization: view.organization,
        holds: view
            .holds
            .into_iter()
            .map(|h| HoldStatus {
                models: h.models,
                until_ms: h.until,
                reason: h.reason,
            })
            .collect(),
        success_rate: view.success_rate,
    }
}

pub async fn status(State(state): State<EdgeState>) -> Json<Status> {
    let now = now_ms();
    let views = state.relay.pool().snapshot(now);
    let total = views.len();
    let credentials: Vec<_> = views.into_iter().map(|v| credential(v, now)).collect();
    let usable = credentials
        .iter()
        .filter(|c| c.state == "active" && c.enabled)
        .count();
    Json(Status {
        credentials,
        usable,
        total,
    })
}
