//! The admin surface, served on its own listener apart from client traffic (loopback by
//! default): `GET /metrics` (Prometheus text), the operator API under `/admin/api/…` (see
//! docs/admin-api.md and `/admin/api/openapi.json`) and the web panel under `/admin/`.
//!
//! Thin by design: handlers parse, call the pool, the store, the ledger or the keyring, audit
//! what changed, and render. Nothing served here carries a secret: credentials are masked,
//! client keys are shown once at creation, and metric labels come from closed sets.
//!
//! - `auth.rs` — the admin token, panel sessions and the lock-out of repeated failures.
//! - `audit.rs` — the audit trail of every change.
//! - `credentials.rs`, `clients.rs` — management; `usage.rs` — charts, totals, the request log.
//! - `events.rs` — the panel's live feed (SSE); the last minute's numbers come from
//!   `telemetry::live`.

pub mod audit;
pub mod auth;
mod clients;
mod credentials;
mod error;
mod events;
mod usage;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router, middleware};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use self::audit::Audit;
pub use self::auth::Gate;
use self::auth::{Actor, SessionExpiry};
use self::error::{ApiError, ApiResult, ErrorBody, QueryParams};
use crate::accounting::Accountant;
use crate::clients::ClientDirectory;
use crate::pool::KeyPool;
use crate::relay::probe::Prober;
use crate::store::{Ledger, Store};
use crate::telemetry::metrics::Metrics;
use crate::types::EpochMs;
use crate::vault::Vault;

/// The content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Run before every scrape to set the gauges that are read rather than pushed (credential
/// states, the ledger's numbers). Synchronous and short: it must not block or await.
pub type ScrapeHook = Arc<dyn Fn() + Send + Sync>;

/// Everything the admin handlers work with. Cheap to clone.
#[derive(Clone)]
pub struct Admin {
    pub pool: KeyPool,
    pub store: Arc<dyn Store>,
    pub ledger: Arc<dyn Ledger>,
    pub vault: Arc<Vault>,
    pub clients: ClientDirectory,
    pub accountant: Accountant,
    pub prober: Prober,
    pub audit: Audit,
    pub gate: Gate,
    /// Held while a change to credentials goes to the store and then the pool, and while the
    /// refresh re-syncs the pool from the store, so neither sees the other half done.
    pub changes: Arc<tokio::sync::Mutex<()>>,
    /// Ends the live event streams, so a graceful shutdown does not wait on open panels.
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl Admin {
    /// Makes the pool match the store after a bulk change (an import).
    async fn resync(&self) -> ApiResult<()> {
        crate::keyring::sync_pool(&self.pool, self.store.as_ref(), &self.vault)
            .await
            .map_err(ApiError::from)
    }
}

/// `Some(None)` for an explicit `null`, `None` for an absent field: lets a PATCH clear a value.
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Clone)]
struct MetricsState {
    metrics: Metrics,
    before_scrape: ScrapeHook,
}

/// The admin listener's routes: `/metrics`, the API and the panel. `before_scrape` runs before
/// each `/metrics` render.
pub fn router(metrics: Metrics, before_scrape: ScrapeHook, admin: Admin) -> Router {
    let (api, _) = api_router(admin).split_for_parts();
    metrics_router(metrics, before_scrape)
        .route("/", get(|| async { Redirect::to("/admin/") }))
        .nest("/admin/api", api.fallback(unknown_route))
        .merge(keyloop_panel::router())
}

/// `GET /metrics` alone.
pub fn metrics_router(metrics: Metrics, before_scrape: ScrapeHook) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .with_state(MetricsState {
            metrics,
            before_scrape,
        })
}

/// The API's routes and its OpenAPI description, built together so they cannot disagree.
fn api_router(admin: Admin) -> OpenApiRouter {
    let gate = admin.gate.clone();
    let guarded = OpenApiRouter::new()
        .routes(routes!(session_info, sign_out))
        .routes(routes!(credentials::list, credentials::add))
        .routes(routes!(credentials::edit, credentials::remove))
        .routes(routes!(credentials::enable))
        .routes(routes!(credentials::disable))
        .routes(routes!(credentials::clear_cooldown))
        .routes(routes!(credentials::probe))
        .routes(routes!(credentials::transitions))
        .routes(routes!(credentials::import))
        .routes(routes!(credentials::export))
        .routes(routes!(clients::list, clients::create))
        .routes(routes!(clients::edit))
        .routes(routes!(clients::revoke))
        .routes(routes!(usage::series))
        .routes(routes!(usage::summary))
        .routes(routes!(usage::overview))
        .routes(routes!(usage::requests))
        .routes(routes!(events::stream))
        .routes(routes!(audit_log))
        .route_layer(middleware::from_fn_with_state(gate, auth::require))
        // Room for the largest CSV import (and its multibyte rows); JSON bodies are far smaller.
        .layer(DefaultBodyLimit::max(
            crate::keyring::csv::MAX_FILE_BYTES + 64 * 1024,
        ));
    let mut doc = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(sign_in))
        .merge(guarded);
    // Served as the bytes it serialises to, not as the document: the router clones its
    // handlers, and each clone of the document was a few hundred kilobytes of heap.
    let spec = Bytes::from(
        serde_json::to_vec(doc.get_openapi()).expect("the OpenAPI document serialises"),
    );
    doc = doc.route(
        "/openapi.json",
        get(move || {
            let spec = spec.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], spec) }
        }),
    );
    doc.with_state(admin)
}

#[derive(OpenApi)]
#[openapi(
    info(title = "keyloop admin API", description = "Manage and watch a keyloop gateway."),
    servers((url = "/admin/api")),
    modifiers(&Security),
    tags(
        (name = "session", description = "Signing in and out"),
        (name = "credentials", description = "Upstream credentials"),
        (name = "clients", description = "Gateway clients and their keys"),
        (name = "usage", description = "Usage, the request log and the live feed"),
        (name = "audit", description = "Who changed what"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "panel_session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(auth::COOKIE))),
        );
        openapi.security = Some(vec![
            utoipa::openapi::security::SecurityRequirement::new(
                "admin_token",
                Vec::<String>::new(),
            ),
            utoipa::openapi::security::SecurityRequirement::new(
                "panel_session",
                Vec::<String>::new(),
            ),
        ]);
    }
}

async fn render_metrics(State(state): State<MetricsState>) -> impl IntoResponse {
    (state.before_scrape)();
    (
        [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
        state.metrics.render(),
    )
}

async fn unknown_route(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "no admin API route {} {}",
        request.method(),
        request.uri().path()
    ))
}

#[derive(Deserialize, ToSchema)]
struct SignIn {
    token: String,
}

/// Opens a panel session: sets the `keyloop_admin` cookie (HttpOnly, SameSite=Strict, 12 h).
#[utoipa::path(post, path = "/session", tag = "session", request_body = SignIn, security(()),
    responses((status = 204, description = "signed in; the cookie is set"),
        (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn sign_in(State(admin): State<Admin>, request: Request) -> ApiResult<Response> {
    let remote = auth::remote_of(&request);
    let body = axum::body::to_bytes(request.into_body(), 64 * 1024)
        .await
        .map_err(|_| ApiError::invalid("the body is too large"))?;
    let SignIn { token } = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("expected {{\"token\": \"…\"}}: {e}")))?;
    let (session, _) = admin.gate.sign_in(&token, remote)?;
    let actor = Actor {
        name: "admin".into(),
        remote,
    };
    admin
        .audit
        .record(&actor, "session.sign_in", None, serde_json::Value::Null)
        .await;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, auth::set_cookie(&session))],
    )
        .into_response())
}

#[derive(Serialize, ToSchema)]
struct SessionInfo {
    actor: String,
    /// When the panel session ends; null when signed in with the token itself.
    expires_at: Option<EpochMs>,
}

/// Who is signed in.
#[utoipa::path(get, path = "/session", tag = "session",
    responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody)))]
async fn session_info(
    Extension(actor): Extension<Actor>,
    Extension(SessionExpiry(expires_at)): Extension<SessionExpiry>,
) -> Json<SessionInfo> {
    Json(SessionInfo {
        actor: actor.name,
        expires_at,
    })
}

/// Ends the panel session and clears its cookie.
#[utoipa::path(delete, path = "/session", tag = "session", responses((status = 204)))]
async fn sign_out(State(admin): State<Admin>, request: Request) -> Response {
    if let Some(session) = auth::session_cookie(request.headers()) {
        admin.gate.sign_out(session);
    }
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, auth::clear_cookie())],
    )
        .into_response()
}

#[derive(Deserialize, IntoParams)]
struct AuditQuery {
    /// Page size, default 100, at most 500.
    limit: Option<u32>,
    /// The `next` of the previous page.
    before: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct AuditView {
    id: i64,
    at: EpochMs,
    actor: String,
    action: String,
    target: Option<String>,
    #[schema(value_type = Object)]
    detail: serde_json::Value,
    remote: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct AuditPage {
    entries: Vec<AuditView>,
    next: Option<i64>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 401, body = ErrorBody)))]
async fn audit_log(
    State(admin): State<Admin>,
    QueryParams(query): QueryParams<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let limit = query.limit.unwrap_or(100).clamp(1, 500) as usize;
    // One more than asked says whether there is a next page.
    let mut entries = admin
        .store
        .audit_page(limit as i64 + 1, query.before)
        .await?;
    let next = (entries.len() > limit).then(|| entries[limit - 1].id);
    entries.truncate(limit);
    Ok(Json(AuditPage {
        entries: entries
            .into_iter()
            .map(|e| AuditView {
                id: e.id,
                at: e.at,
                actor: e.actor,
                action: e.action,
                target: e.target,
                detail: e
                    .detail
                    .and_then(|d| serde_json::from_str(&d).ok())
                    .unwrap_or(json!({})),
                remote: e.remote,
            })
            .collect(),
        next,
    }))
}
