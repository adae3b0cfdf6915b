//! `/admin/api/credentials`: the upstream credentials as the pool sees them (masked), and the
//! operator's actions on them. Every change goes to the store and then through the pool's own
//! operations (`upsert_key`, `set_enabled`, `clear_cooldown`, `probe_now`), never around them.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::Admin;
use super::auth::Actor;
use super::error::{ApiError, ApiResult, BytesBody, ErrorBody, JsonBody, QueryParams};
use crate::config::OAuthGrant;
use crate::keyring::{self, NewKey};
use crate::pool::{Caps, KeyView, ProbeRefused};
use crate::store::KeyRow;
use crate::types::{
    EpochMs, KeyId, KeyKind, LimitWindow, Secret, Subscription, WindowName, WindowStatus, now_ms,
};

/// One credential, masked. See docs/admin-api.md.
#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct CredentialView {
    pub id: String,
    pub name: String,
    /// `api_key` or `oauth`.
    pub kind: &'static str,
    pub masked: String,
    pub group: Option<String>,
    pub priority: u32,
    pub weight: u32,
    pub max_concurrent: Option<u32>,
    pub enabled: bool,
    /// `config`, `cli`, `admin` or `import`. Config-declared credentials are changed in the file.
    pub source: String,
    /// `active`, `cooling_down`, `probing` or `disabled`.
    pub state: &'static str,
    pub reason: Option<String>,
    pub cooldown_until: Option<EpochMs>,
    pub next_probe_at: Option<EpochMs>,
    pub in_flight: u32,
    pub ramp_cap: Option<u32>,
    /// The smallest share left of any limit the provider reported, and of the in-flight cap;
    /// null when neither is known.
    pub headroom: Option<f64>,
    pub requests: u64,
    pub errors: u64,
    pub last_outcome: Option<&'static str>,
    pub last_error: Option<LastError>,
    pub ratelimit: Option<RateLimitView>,
    pub last_transition_at: Option<EpochMs>,
    pub created_at: Option<EpochMs>,
    /// The organisation the credential counts as: its group if set, else the
    /// `anthropic-organization-id` the provider reported.
    pub organization: Option<String>,
    /// The organisation the provider reported (null until the first answer).
    pub organization_reported: Option<String>,
    /// Models the credential is held out for while it serves others.
    pub holds: Vec<HoldView>,
    /// Recent success rate, 0–1.
    pub success_rate: f64,
    /// A subscription (OAuth) account's usage windows; null for API keys.
    pub subscription: Option<SubscriptionView>,
    /// Burst limit, requests per second.
    pub rps: Option<u32>,
    pub daily_requests: Option<u64>,
    pub daily_tokens: Option<u64>,
    /// Requests and tokens counted today (UTC) against the daily quotas.
    pub requests_today: u64,
    pub tokens_today: u64,
    pub credits_expire_at: Option<EpochMs>,
    /// Whether the credential carries a refresh token (OAuth), and when its access token
    /// expires.
    pub refreshable: bool,
    pub token_expires_at: Option<EpochMs>,
}

#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct HoldView {
    /// A model id, or a family such as "opus models".
    pub models: String,
    pub until: EpochMs,
    pub reason: String,
}

#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct SubscriptionView {
    /// `allowed`, `allowed_warning` or `rejected`.
    pub status: Option<&'static str>,
    /// The window that binds: `five_hour`, `seven_day`, `seven_day_opus`, …
    pub binding: Option<&'static str>,
    pub reset_at: Option<EpochMs>,
    pub windows: Vec<UsageWindowView>,
    pub overage_status: Option<&'static str>,
    pub overage_in_use: bool,
}

#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct UsageWindowView {
    /// `five_hour`, `seven_day`, `seven_day_opus`, `seven_day_sonnet`,
    /// `seven_day_overage_included`.
    pub name: &'static str,
    pub status: Option<&'static str>,
    /// Share used, 0–1.
    pub utilization: Option<f64>,
    pub reset_at: Option<EpochMs>,
    /// When the window will be spent at the rate seen in its current period; null when it
    /// will not be spent before it resets.
    pub spent_at: Option<EpochMs>,
}

#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct LastError {
    pub class: &'static str,
    pub at: EpochMs,
}

#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct RateLimitView {
    pub requests: Option<WindowView>,
    pub tokens: Option<WindowView>,
    pub input_tokens: Option<WindowView>,
    pub output_tokens: Option<WindowView>,
    pub taken_at: EpochMs,
}

#[derive(Serialize, ToSchema, Clone, Copy, Debug)]
pub struct WindowView {
    pub limit: u64,
    pub remaining: u64,
    pub reset_at: Option<EpochMs>,
}

fn window(w: Option<LimitWindow>) -> Option<WindowView> {
    w.map(|w| WindowView {
        limit: w.limit,
        remaining: w.remaining,
        reset_at: w.reset_ms,
    })
}

pub fn view(v: &KeyView, row: Option<&KeyRow>) -> CredentialView {
    let limits = v
        .last_ratelimit
        .map(|r| [r.requests, r.tokens, r.input_tokens, r.output_tokens]);
    let reported = limits
        .into_iter()
        .flatten()
        .flatten()
        .filter(|w| w.limit > 0)
        .map(|w| w.remaining as f64 / w.limit as f64);
    let concurrency = v
        .max_concurrent
        .filter(|cap| *cap > 0)
        .map(|cap| 1.0 - f64::from(v.in_flight.min(cap)) / f64::from(cap));
    let headroom = reported.chain(concurrency).reduce(f64::min);
    CredentialView {
        id: v.id.to_string(),
        name: v.name.clone(),
        kind: v.kind.as_str(),
        masked: v.masked.clone(),
        group: v.group.clone(),
        priority: v.priority,
        weight: v.weight,
        max_concurrent: v.max_concurrent,
        enabled: v.enabled,
        source: row.map_or_else(|| "unknown".to_owned(), |r| r.source.clone()),
        state: v.state,
        reason: v.reason.clone(),
        cooldown_until: v.cooldown_until,
        next_probe_at: v.next_probe_at,
        in_flight: v.in_flight,
        ramp_cap: v.ramp_cap,
        headroom,
        requests: v.requests,
        errors: v.errors,
        last_outcome: v.last_outcome.map(|c| c.as_str()),
        last_error: v.last_error.map(|(class, at)| LastError {
            class: class.as_str(),
            at,
        }),
        ratelimit: v.last_ratelimit.map(|r| RateLimitView {
            requests: window(r.requests),
            tokens: window(r.tokens),
            input_tokens: window(r.input_tokens),
            output_tokens: window(r.output_tokens),
            taken_at: r.taken_ms,
        }),
        last_transition_at: v.last_transition_at,
        created_at: row.map(|r| r.created_at),
        organization: v.organization.clone(),
        organization_reported: v.organization_learned.clone(),
        holds: v
            .holds
            .iter()
            .map(|h| HoldView {
                models: h.models.clone(),
                until: h.until,
                reason: h.reason.clone(),
            })
            .collect(),
        success_rate: v.success_rate,
        subscription: v
            .last_ratelimit
            .and_then(|r| r.subscription)
            .map(|s| subscription(&s, &v.spent_at)),
        rps: v.caps.rps,
        daily_requests: v.caps.daily_requests,
        daily_tokens: v.caps.daily_tokens,
        requests_today: v.used_today.0,
        tokens_today: v.used_today.1,
        credits_expire_at: v.credits_expire_at,
        refreshable: row.is_some_and(|r| r.refresh_sealed.is_some()),
        token_expires_at: row.and_then(|r| r.token_expires_at),
    }
}

fn subscription(s: &Subscription, spent_at: &[(WindowName, EpochMs)]) -> SubscriptionView {
    SubscriptionView {
        status: s.status.map(WindowStatus::as_str),
        binding: s.binding.map(WindowName::claim),
        reset_at: s.reset_ms,
        windows: s
            .windows()
            .map(|(name, w)| UsageWindowView {
                name: name.claim(),
                status: w.status.map(WindowStatus::as_str),
                utilization: w.utilization,
                reset_at: w.reset_ms,
                spent_at: spent_at.iter().find(|(n, _)| *n == name).map(|(_, at)| *at),
            })
            .collect(),
        overage_status: s.overage.and_then(|o| o.status).map(WindowStatus::as_str),
        overage_in_use: s.overage.is_some_and(|o| o.in_use),
    }
}

impl Admin {
    /// The credential's view now, or 404.
    pub(super) async fn credential(&self, id: &str) -> ApiResult<CredentialView> {
        let rows = self.store.keys().await?;
        let row = rows.iter().find(|r| r.id == id);
        self.pool
            .snapshot(now_ms())
            .iter()
            .find(|v| v.id.as_str() == id)
            .map(|v| view(v, row))
            .ok_or_else(|| ApiError::not_found(format!("no credential {id:?}")))
    }

    async fn row(&self, id: &str) -> ApiResult<KeyRow> {
        self.store
            .keys()
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| ApiError::not_found(format!("no credential {id:?}")))
    }

    /// Hands the stored row to the pool, which keeps the key's health and counters.
    fn apply(&self, row: &KeyRow) -> ApiResult<()> {
        let spec = keyring::spec(&self.vault, row)?;
        self.pool.upsert_key(spec, now_ms());
        Ok(())
    }
}

#[derive(Serialize, ToSchema)]
pub struct CredentialList {
    pub credentials: Vec<CredentialView>,
}

/// Every credential, in configuration order.
#[utoipa::path(get, path = "/credentials", tag = "credentials",
    responses((status = 200, body = CredentialList), (status = 401, body = ErrorBody)))]
pub async fn list(State(admin): State<Admin>) -> ApiResult<Json<CredentialList>> {
    let rows = admin.store.keys().await?;
    let credentials = admin
        .pool
        .snapshot(now_ms())
        .iter()
        .map(|v| view(v, rows.iter().find(|r| r.id == v.id.as_str())))
        .collect();
    Ok(Json(CredentialList { credentials }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCredential {
    pub name: String,
    pub secret: String,
    /// `api_key` or `oauth`; detected from the secret when absent.
    pub kind: Option<String>,
    pub priority: Option<u32>,
    pub weight: Option<u32>,
    pub max_concurrent: Option<u32>,
    pub group: Option<String>,
    pub enabled: Option<bool>,
    /// Requests per second (burst limit).
    pub rps: Option<u32>,
    /// Requests per UTC day.
    pub daily_requests: Option<u64>,
    /// Tokens per UTC day.
    pub daily_tokens: Option<u64>,
    /// When the prepaid credits expire (epoch ms).
    pub credits_expire_at: Option<EpochMs>,
    /// An OAuth credential's refresh token: the access token is then kept fresh.
    pub refresh_token: Option<String>,
    /// When the OAuth access token expires (epoch ms).
    pub token_expires_at: Option<EpochMs>,
}

fn check_caps(rps: Option<u32>, requests: Option<u64>, tokens: Option<u64>) -> ApiResult<Caps> {
    if rps == Some(0) || requests == Some(0) || tokens == Some(0) {
        return Err(ApiError::invalid(
            "rps, daily_requests and daily_tokens must be at least 1 (leave them out for no cap)",
        ));
    }
    Ok(Caps {
        rps,
        daily_requests: requests,
        daily_tokens: tokens,
    })
}

pub fn check_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    match keyring::label_problem("name", name, true) {
        Some(problem) => Err(ApiError::invalid(problem)),
        None => Ok(name.to_owned()),
    }
}

fn check_secret(secret: &str) -> ApiResult<Secret<String>> {
    match keyring::secret_problem(secret) {
        Some(problem) => Err(ApiError::invalid(problem)),
        None => Ok(Secret::new(secret.to_owned())),
    }
}

fn check_kind(kind: Option<&str>) -> ApiResult<Option<KeyKind>> {
    kind.map(|k| {
        KeyKind::parse(k)
            .ok_or_else(|| ApiError::invalid(format!("kind must be api-key or oauth, got {k:?}")))
    })
    .transpose()
}

fn check_weight(weight: Option<u32>) -> ApiResult<Option<u32>> {
    match weight {
        Some(0) => Err(ApiError::invalid("weight must be at least 1")),
        w => Ok(w),
    }
}

fn check_group(group: Option<String>) -> ApiResult<Option<String>> {
    let group = group.map(|g| g.trim().to_owned()).filter(|g| !g.is_empty());
    match group
        .as_deref()
        .and_then(|g| keyring::label_problem("group", g, false))
    {
        Some(problem) => Err(ApiError::invalid(problem)),
        None => Ok(group),
    }
}

/// Adds a credential; it takes traffic at once (unless added disabled).
#[utoipa::path(post, path = "/credentials", tag = "credentials", request_body = NewCredential,
    responses((status = 201, body = CredentialView), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn add(
    State(admin): State<Admin>,
    Extension(actor): Extension<Actor>,
    JsonBody(body): JsonBody<NewCredential>,
) -> ApiResult<(StatusCode, Json<CredentialView>)> {
    let key = NewKey {
        name: check_name(&body.name)?,
        secret: check_secret(&body.secret)?,
        kind: check_kind(body.kind.as_deref())?,
        priority: body.priority.unwrap_or(0),
        weight: check_weight(body.weight)?.unwrap_or(1),
        max_concurrent: body.max_concurrent,
        group: check_group(body.group)?,
        enabled: body.enabled.unwrap_or(true),
        caps: check_caps(body.rps, body.daily_requests, body.daily_tokens)?,
        credits_expire_at: body.credits_expire_at,
        oauth: body
            .refresh_token
            .as_deref()
            .map(|token| {
                Ok::<_, ApiError>(OAuthGrant {
                    refresh_token: check_secret(token)?,
                    expires_at: body.token_expires_at,
                })
            })
            .transpose()?,
    };
    let _changing = admin.changes.lock().await;
    let row = keyring::add(admin.store.as_ref(), &admin.vault, &key, "admin").await?;
    admin.apply(&row)?;
    admin
        .audit
        .record(
            &actor,
            "credential.add",
            Some(&row.name),
            json!({"id": row.id, "kind": row.kind, "masked": row.secret_hint}),
        )
        .await;
    Ok((StatusCode::CREATED, Json(admin.credential(&row.id).await?)))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CredentialEdit {
    pub name: Option<String>,
    /// A new secret; its kind is detected unless `kind` is given.
    pub secret: Option<String>,
    pub kind: Option<String>,
    pub priority: Option<u32>,
    pub weight: Option<u32>,
    /// `null` removes the cap.
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<u32>)]
    pub max_concurrent: Option<Option<u32>>,
    /// `null` or "" removes the group.
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<String>)]
    pub group: Option<Option<String>>,
    pub enabled: Option<bool>,
    /// `null` removes the burst limit.
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<u32>)]
    pub rps: Option<Option<u32>>,
    /// `null` removes the daily request quota.
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<u64>)]
    pub daily_requests: Option<Option<u64>>,
    /// `null` removes the daily token quota.
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<u64>)]
    pub daily_tokens: Option<Option<u64>>,
    /// `null` forgets the credits' expiry.
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<i64>)]
    pub credits_expire_at: Option<Option<EpochMs>>,
}

/// Changes a credential. Its health, counters and open requests are kept; a new secret for a
/// credential disabled as invalid sends it to a probe.
#[utoipa::path(patch, path = "/credentials/{id}", tag = "credentials", request_body = CredentialEdit,
    params(("id" = String, Path, description = "credential id")),
    responses((status = 200, body = CredentialView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn edit(
    State(admin): State<Admin>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CredentialEdit>,
) -> ApiResult<Json<CredentialView>> {
    let _changing = admin.changes.lock().await;
    let mut row = admin.row(&id).await?;
    let mut changed = Vec::new();
    let tuning = body.name.is_some()
        || body.secret.is_some()
        || body.kind.is_some()
        || body.priority.is_some()
        || body.weight.is_some()
        || body.max_concurrent.is_some()
        || body.group.is_some()
        || body.rps.is_some()
        || body.daily_requests.is_some()
        || body.daily_tokens.is_some()
        || body.credits_expire_at.is_some();
    if row.source == "config" && tuning {
        return Err(ApiError::conflict(format!(
            "credential {:?} is declared in the config file: change it there (only enabling \
             and disabling work here, until the next restart)",
            row.name
        )));
    }
    if let Some(name) = &body.name {
        row.name = check_name(name)?;
        changed.push("name");
    }
    let kind = check_kind(body.kind.as_deref())?;
    if let Some(secret) = &body.secret {
        row = keyring::with_secret(&admin.vault, &row, &check_secret(secret)?, kind);
        changed.push("secret");
    } else if let Some(kind) = kind {
        row.kind = kind.as_str().to_owned();
        changed.push("kind");
    }
    if let Some(priority) = body.priority {
        row.priority = i64::from(priority);
        changed.push("priority");
    }
    if let Some(weight) = check_weight(body.weight)? {
        row.weight = i64::from(weight);
        changed.push("weight");
    }
    if let Some(cap) = body.max_concurrent {
        row.max_concurrent = cap.map(i64::from);
        changed.push("max_concurrent");
    }
    if let Some(group) = body.group {
        row.group_label = check_group(group)?;
        changed.push("group");
    }
    if body.rps.is_some() || body.daily_requests.is_some() || body.daily_tokens.is_some() {
        let current = keyring::caps(&row);
        let caps = check_caps(
            body.rps.unwrap_or(current.rps),
            body.daily_requests.unwrap_or(current.daily_requests),
            body.daily_tokens.unwrap_or(current.daily_tokens),
        )?;
        row.rps = caps.rps.map(i64::from);
        row.daily_requests = caps.daily_requests.and_then(|n| i64::try_from(n).ok());
        row.daily_tokens = caps.daily_tokens.and_then(|n| i64::try_from(n).ok());
        changed.push("caps");
    }
    if let Some(expiry) = body.credits_expire_at {
        row.credits_expire_at = expiry;
        changed.push("credits_expire_at");
    }
    if let Some(enabled) = body.enabled {
        // The switch has its own statement: a tuning edit never writes `enabled` back.
        row.enabled = admin
            .store
            .set_key_enabled(&row.name, enabled)
            .await?
            .enabled;
        changed.push("enabled");
    }
    let row = admin.store.update_key(&row).await?;
    admin.apply(&row)?;
    admin
        .audit
        .record(
            &actor,
            "credential.edit",
            Some(&row.name),
            json!({"id": row.id, "changed": changed}),
        )
        .await;
    Ok(Json(admin.credential(&row.id).await?))
}

/// Removes a credential. Requests it is serving finish; nothing new goes to it.
#[utoipa::path(delete, path = "/credentials/{id}", tag = "credentials",
    params(("id" = String, Path, description = "credential id")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove(
    State(admin): State<Admin>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let _changing = admin.changes.lock().await;
    let row = admin.row(&id).await?;
    if row.source == "config" {
        return Err(ApiError::conflict(format!(
            "credential {:?} is declared in the config file: remove it there",
            row.name
        )));
    }
    admin.store.delete_key(&row.name).await?;
    admin.pool.remove_key(&KeyId::new(row.id.as_str()));
    admin
        .audit
        .record(
            &actor,
            "credential.remove",
            Some(&row.name),
            json!({"id": row.id}),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn switch(
    admin: &Admin,
    actor: &Actor,
    id: &str,
    enabled: bool,
) -> ApiResult<CredentialView> {
    let changing = admin.changes.lock().await;
    let row = admin.row(id).await?;
    admin.store.set_key_enabled(&row.name, enabled).await?;
    admin
        .pool
        .set_enabled(&KeyId::new(row.id.as_str()), enabled, now_ms());
    drop(changing);
    let action = if enabled {
        "credential.enable"
    } else {
        "credential.disable"
    };
    admin
        .audit
        .record(actor, action, Some(&row.name), json!({"id": row.id}))
        .await;
    admin.credential(id).await
}

/// Switches a credential on: a disabled one returns to rotation in slow start.
#[utoipa::path(post, path = "/credentials/{id}/enable", tag = "credentials",
    params(("id" = String, Path, description = "credential id")),
    responses((status = 200, body = CredentialView), (status = 404, body = ErrorBody)))]
pub async fn enable(
    State(admin): State<Admin>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<Json<CredentialView>> {
    switch(&admin, &actor, &id, true).await.map(Json)
}

/// Switches a credential off until an operator switches it on; probes never undo this.
#[utoipa::path(post, path = "/credentials/{id}/disable", tag = "credentials",
    params(("id" = String, Path, description = "credential id")),
    responses((status = 200, body = CredentialView), (status = 404, body = ErrorBody)))]
pub async fn disable(
    State(admin): State<Admin>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<Json<CredentialView>> {
    switch(&admin, &actor, &id, false).await.map(Json)
}

/// Ends a cooldown (or a pending probe) now: the credential returns in slow start with its
/// strikes forgotten.
#[utoipa::path(post, path = "/credentials/{id}/clear-cooldown", tag = "credentials",
    params(("id" = String, Path, description = "credential id")),
    responses((status = 200, body = CredentialView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn clear_cooldown(
    State(admin): State<Admin>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<Json<CredentialView>> {
    let before = admin.credential(&id).await?;
    if !matches!(before.state, "cooling_down" | "probing") {
        return Err(ApiError::conflict(format!(
            "credential {:?} is {}, not cooling down",
            before.name, before.state
        )));
    }
    admin
        .pool
        .clear_cooldown(&KeyId::new(id.as_str()), now_ms());
    admin
        .audit
        .record(
            &actor,
            "credential.clear_cooldown",
            Some(&before.name),
            json!({"id": id, "was": before.state, "reason": before.reason}),
        )
        .await;
    Ok(Json(admin.credential(&id).await?))
}

#[derive(Serialize, ToSchema)]
pub struct ProbeResult {
    /// The class of the provider's answer: `success`, `rate_limited`, `invalid_credential` …
    pub outcome: &'static str,
    pub credential: CredentialView,
}

/// Checks the credential now with a count_tokens call. The answer moves it through the state
/// machine like any other: success brings a cooling key back, a 401 disables it.
#[utoipa::path(post, path = "/credentials/{id}/probe", tag = "credentials",
    params(("id" = String, Path, description = "credential id")),
    responses((status = 200, body = ProbeResult), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn probe(
    State(admin): State<Admin>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<Json<ProbeResult>> {
    let outcome = admin
        .prober
        .probe_now(&KeyId::new(id.as_str()))
        .await
        .map_err(|e| match e {
            ProbeRefused::Unknown => ApiError::not_found(format!("no credential {id:?}")),
            other => ApiError::conflict(other.to_string()),
        })?;
    let credential = admin.credential(&id).await?;
    admin
        .audit
        .record(
            &actor,
            "credential.probe",
            Some(&credential.name),
            json!({"id": id, "outcome": outcome.class.as_str()}),
        )
        .await;
    Ok(Json(ProbeResult {
        outcome: outcome.class.as_str(),
        credential,
    }))
}

#[derive(Deserialize, IntoParams)]
pub struct TransitionsQuery {
    /// At most this many, newest first (default 50, at most 500).
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct TransitionView {
    pub at: EpochMs,
    pub from: String,
    pub to: String,
    pub reason: String,
    pub until: Option<EpochMs>,
}

#[derive(Serialize, ToSchema)]
pub struct TransitionList {
    pub transitions: Vec<TransitionView>,
}

/// The credential's state changes with their reasons, newest first.
#[utoipa::path(get, path = "/credentials/{id}/transitions", tag = "credentials",
    params(("id" = String, Path, description = "credential id"), TransitionsQuery),
    responses((status = 200, body = TransitionList), (status = 404, body = ErrorBody)))]
pub async fn transitions(
    State(admin): State<Admin>,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<TransitionsQuery>,
) -> ApiResult<Json<TransitionList>> {
    admin.row(&id).await?;
    let limit = i64::from(query.limit.unwrap_or(50).clamp(1, 500));
    let transitions = admin
        .store
        .transitions(&id, limit)
        .await?
        .into_iter()
        .map(|t| TransitionView {
            at: t.at,
            from: t.from_state,
            to: t.to_state,
            reason: t.reason,
            until: t.until,
        })
        .collect();
    Ok(Json(TransitionList { transitions }))
}

#[derive(Deserialize, IntoParams)]
pub struct ImportQuery {
    /// Only report what would happen (the default); `false` applies the valid rows.
    pub dry_run: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct ImportCounts {
    pub valid: usize,
    pub duplicate: usize,
    pub malformed: usize,
}

#[derive(Serialize, ToSchema)]
pub struct ImportRowView {
    pub line: u64,
    pub name: Option<String>,
    /// `valid`, `duplicate` or `malformed`.
    pub status: &'static str,
    pub reason: Option<String>,
    pub kind: Option<&'static str>,
    pub masked: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ImportReportView {
    pub applied: bool,
    pub counts: ImportCounts,
    pub rows: Vec<ImportRowView>,
}

/// Imports credentials from CSV (`name,secret[,kind,priority,weight,max_concurrent,group,enabled]`).
/// A dry run reports every row; otherwise all valid rows are added in one transaction.
#[utoipa::path(post, path = "/credentials/import", tag = "credentials",
    params(ImportQuery),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportReportView), (status = 400, body = ErrorBody)))]
pub async fn import(
    State(admin): State<Admin>,
    Extension(actor): Extension<Actor>,
    QueryParams(query): QueryParams<ImportQuery>,
    BytesBody(body): BytesBody,
) -> ApiResult<Json<ImportReportView>> {
    let dry_run = query.dry_run.unwrap_or(true);
    let _changing = admin.changes.lock().await;
    let report =
        keyring::csv::import(admin.store.as_ref(), &admin.vault, &body, dry_run, "import").await?;
    let counts = report.counts();
    if report.applied {
        admin
            .audit
            .record(
                &actor,
                "credential.import",
                None,
                json!({"added": counts.valid, "duplicate": counts.duplicate,
                       "malformed": counts.malformed}),
            )
            .await;
        // The rows are committed; if the pool cannot take them now, the refresh will.
        if let Err(e) = admin.resync().await {
            tracing::warn!(error = ?e, "imported credentials wait for the next refresh");
        }
    }
    Ok(Json(ImportReportView {
        applied: report.applied,
        counts: ImportCounts {
            valid: counts.valid,
            duplicate: counts.duplicate,
            malformed: counts.malformed,
        },
        rows: report
            .rows
            .into_iter()
            .map(|r| ImportRowView {
                line: r.line,
                name: r.name,
                status: r.status.as_str(),
                reason: r.reason,
                kind: r.kind.map(KeyKind::as_str),
                masked: r.masked,
            })
            .collect(),
    }))
}

#[derive(Deserialize, IntoParams)]
pub struct ExportQuery {
    /// Include the secrets in clear. Off by default; every export is audited.
    pub secrets: Option<bool>,
}

/// The credentials as CSV. Without `secrets=true` the secret column is empty; cells a
/// spreadsheet would run as formulas are neutralised.
#[utoipa::path(get, path = "/credentials/export", tag = "credentials", params(ExportQuery),
    responses((status = 200, content_type = "text/csv", body = String)))]
pub async fn export(
    State(admin): State<Admin>,
    Extension(actor): Extension<Actor>,
    QueryParams(query): QueryParams<ExportQuery>,
) -> ApiResult<impl IntoResponse> {
    let with_secrets = query.secrets.unwrap_or(false);
    let csv = keyring::csv::export(admin.store.as_ref(), &admin.vault, with_secrets).await?;
    admin
        .audit
        .record(
            &actor,
            "credential.export",
            None,
            json!({"with_secrets": with_secrets}),
        )
        .await;
    let name = if with_secrets {
        "keyloop-credentials-with-secrets.csv"
    } else {
        "keyloop-credentials.csv"
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        csv,
    ))
}
