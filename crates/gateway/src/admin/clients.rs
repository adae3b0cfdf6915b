//! `/admin/api/clients`: the gateway's own clients and their keys. A new key is shown once, in
//! the answer that creates it; only its digest and a hint are kept. Changes reach the edge at
//! once (the client directory is refreshed), not after the periodic re-read.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::Admin;
use super::auth::Actor;
use super::credentials::check_name;
use super::error::{ApiError, ApiResult, ErrorBody, JsonBody};
use crate::clients;
use crate::store::{ClientEdit, ClientRow};
use crate::types::{EpochMs, now_ms};

#[derive(Serialize, ToSchema, Debug)]
pub struct ClientView {
    pub id: String,
    pub name: String,
    /// The key's prefix and last characters, to tell keys apart.
    pub key_hint: String,
    pub notes: Option<String>,
    pub created_at: EpochMs,
    pub revoked_at: Option<EpochMs>,
}

impl From<ClientRow> for ClientView {
    fn from(row: ClientRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            key_hint: row.key_hint,
            notes: row.notes,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ClientList {
    pub clients: Vec<ClientView>,
}

const MAX_NOTES: usize = 2000;

fn check_notes(notes: Option<String>) -> ApiResult<Option<String>> {
    match notes.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) {
        Some(n) if n.len() > MAX_NOTES => Err(ApiError::invalid(format!(
            "notes must be at most {MAX_NOTES} bytes"
        ))),
        n => Ok(n),
    }
}

impl Admin {
    async fn client_row(&self, id: &str) -> ApiResult<ClientRow> {
        self.store
            .clients()
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| ApiError::not_found(format!("no client {id:?}")))
    }

    async fn refresh_clients(&self) {
        if let Err(e) = self.clients.refresh().await {
            tracing::warn!(error = %e, "could not refresh clients after an admin change");
        }
    }
}

/// Every client, revoked ones included.
#[utoipa::path(get, path = "/clients", tag = "clients",
    responses((status = 200, body = ClientList), (status = 401, body = ErrorBody)))]
pub async fn list(State(admin): State<Admin>) -> ApiResult<Json<ClientList>> {
    let clients = admin
        .store
        .clients()
        .await?
        .into_iter()
        .map(ClientView::from)
        .collect();
    Ok(Json(ClientList { clients }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    pub name: String,
    pub notes: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedClient {
    pub client: ClientView,
    /// The client's key, shown only in this answer.
    pub key: String,
}

/// Creates a client and its key (shown once).
#[utoipa::path(post, path = "/clients", tag = "clients", request_body = NewClient,
    responses((status = 201, body = CreatedClient), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn create(
    State(admin): State<Admin>,
    Extension(actor): Extension<Actor>,
    JsonBody(body): JsonBody<NewClient>,
) -> ApiResult<(StatusCode, Json<CreatedClient>)> {
    let name = check_name(&body.name)?;
    let notes = check_notes(body.notes)?;
    let (row, key) = clients::create(admin.store.as_ref(), &name, notes).await?;
    admin.refresh_clients().await;
    admin
        .audit
        .record(
            &actor,
            "client.create",
            Some(&row.name),
            json!({"id": row.id, "key_hint": row.key_hint}),
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedClient {
            client: row.into(),
            key: key.expose().clone(),
        }),
    ))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ClientChange {
    pub name: Option<String>,
    /// `null` or "" clears the notes.
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
}

/// Renames a client or changes its notes. Its key stays the same.
#[utoipa::path(patch, path = "/clients/{id}", tag = "clients", request_body = ClientChange,
    params(("id" = String, Path, description = "client id")),
    responses((status = 200, body = ClientView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn edit(
    State(admin): State<Admin>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ClientChange>,
) -> ApiResult<Json<ClientView>> {
    let before = admin.client_row(&id).await?;
    let edit = ClientEdit {
        name: body.name.as_deref().map(check_name).transpose()?,
        notes: body.notes.map(check_notes).transpose()?,
    };
    let row = admin.store.edit_client(&id, &edit).await?;
    admin.refresh_clients().await;
    admin
        .audit
        .record(
            &actor,
            "client.edit",
            Some(&row.name),
            json!({"id": id, "renamed_from": (before.name != row.name).then_some(&before.name),
                   "notes_changed": edit.notes.is_some()}),
        )
        .await;
    Ok(Json(row.into()))
}

/// Revokes a client's key: its next request is refused. Its usage history is kept.
#[utoipa::path(post, path = "/clients/{id}/revoke", tag = "clients",
    params(("id" = String, Path, description = "client id")),
    responses((status = 200, body = ClientView), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(admin): State<Admin>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<Json<ClientView>> {
    let before = admin.client_row(&id).await?;
    let row = admin.store.revoke_client(&before.name, now_ms()).await?;
    admin.refresh_clients().await;
    admin
        .audit
        .record(&actor, "client.revoke", Some(&row.name), json!({"id": id}))
        .await;
    Ok(Json(row.into()))
}
