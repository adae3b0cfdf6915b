//! The admin surface, served on its own listener apart from client traffic: for now only
//! `GET /metrics` (Prometheus text); the operator API under `/admin/api/…` joins it here.
//!
//! Nothing served here carries a secret or a string a client sent: the metrics' labels come
//! from closed sets (see `telemetry::metrics`).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::telemetry::metrics::Metrics;

/// The content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Run before every scrape to set the gauges that are read rather than pushed (credential
/// states, the ledger's numbers). Synchronous and short: it must not block or await.
pub type ScrapeHook = Arc<dyn Fn() + Send + Sync>;

#[derive(Clone)]
struct AdminState {
    metrics: Metrics,
    before_scrape: ScrapeHook,
}

/// The admin listener's routes. `before_scrape` runs before each `/metrics` render; pass
/// `Arc::new(|| {})` when there is nothing to refresh.
pub fn router(metrics: Metrics, before_scrape: ScrapeHook) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .with_state(AdminState {
            metrics,
            before_scrape,
        })
}

async fn render_metrics(State(state): State<AdminState>) -> impl IntoResponse {
    (state.before_scrape)();
    (
        [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
        state.metrics.render(),
    )
}
