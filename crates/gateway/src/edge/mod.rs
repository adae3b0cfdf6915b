//! The client-facing HTTP surface: routes, client authentication, body limits, and turning
//! relay answers and failures into HTTP. Thin: parse, call, render.

mod anthropic;
pub mod error;
mod intake;
mod ops;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::routing::{get, post};

use crate::clients::ClientDirectory;
use crate::relay::Relay;
use crate::telemetry::metrics::Metrics;

/// What the edge needs to know beyond the relay.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub require_client_key: bool,
    pub body_limit: usize,
    pub request_timeout: Duration,
    pub session_header: String,
}

/// Whether the gateway can do its job; answered by the composition root, which knows the store.
#[async_trait]
pub trait Readiness: Send + Sync + 'static {
    async fn store_reachable(&self) -> bool;
}

#[derive(Clone)]
pub struct EdgeState {
    relay: Relay,
    clients: ClientDirectory,
    config: Arc<EdgeConfig>,
    readiness: Arc<dyn Readiness>,
    ids: Arc<RequestIds>,
    metrics: Metrics,
}

impl EdgeState {
    pub fn new(
        relay: Relay,
        clients: ClientDirectory,
        config: EdgeConfig,
        readiness: Arc<dyn Readiness>,
        metrics: Metrics,
    ) -> Self {
        Self {
            relay,
            clients,
            config: Arc::new(config),
            readiness,
            ids: Arc::new(RequestIds::new()),
            metrics,
        }
    }
}

/// Request ids unique across restarts without a random draw per request: a random boot prefix
/// and a counter.
struct RequestIds {
    prefix: String,
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        let mut boot = [0u8; 5];
        getrandom::fill(&mut boot).expect("the OS random source is available");
        Self {
            prefix: format!("req_kl_{}", hex::encode(boot)),
            next: AtomicU64::new(1),
        }
    }

    fn next(&self) -> Arc<str> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut digits = [0u8; 16];
        [self.prefix.as_str(), counter_digits(n, &mut digits)]
            .concat()
            .into()
    }
}

/// `n` in lower-case hex, at least ten digits, as `format!("{n:010x}")` writes it, which took
/// about 1,000 instructions per request through the formatting machinery.
fn counter_digits(n: u64, digits: &mut [u8; 16]) -> &str {
    hex::encode_to_slice(n.to_be_bytes(), digits).expect("8 bytes are 16 hex digits");
    let start = digits.iter().position(|&d| d != b'0').unwrap_or(16).min(6);
    std::str::from_utf8(&digits[start..]).expect("hex digits are ASCII")
}

pub fn router(state: EdgeState) -> Router {
    Router::new()
        .route("/", get(ops::root))
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/status", get(ops::status))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route("/v1/complete", post(anthropic::complete))
        .route("/v1/models", get(anthropic::models))
        .route("/v1/models/{id}", get(anthropic::models))
        .route(
            "/v1/messages/batches",
            post(anthropic::create_batch).get(anthropic::list_batches),
        )
        .route(
            "/v1/messages/batches/{id}",
            get(anthropic::retrieve_batch).delete(anthropic::delete_batch),
        )
        .route(
            "/v1/messages/batches/{id}/cancel",
            post(anthropic::cancel_batch),
        )
        .route(
            "/v1/messages/batches/{id}/results",
            get(anthropic::batch_results),
        )
        .fallback(anthropic::unknown_route)
        .method_not_allowed_fallback(anthropic::unknown_route)
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::counter_digits;

    #[test]
    fn counter_digits_are_zero_padded_hex_of_at_least_ten() {
        for n in [0, 1, 0xabc, (1 << 40) - 1, 1 << 40, u64::MAX] {
            let mut digits = [0u8; 16];
            assert_eq!(
                counter_digits(n, &mut digits),
                format!("{n:010x}"),
                "n = {n}"
            );
        }
    }
}
