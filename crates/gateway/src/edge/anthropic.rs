//! The Anthropic-compatible routes. Same-dialect traffic goes upstream as the client's bytes.

use axum::extract::{Path, Query, Request, State};
use axum::response::Response;
use keyloop_wire::anthropic::ErrorType;
use serde::Deserialize;

use super::EdgeState;
use super::error::ApiError;
use crate::relay::{BatchListing, BatchOp, CallKind, Route};

pub async fn messages(State(state): State<EdgeState>, request: Request) -> Response {
    generate(state, request, Route::Messages).await
}

pub async fn complete(State(state): State<EdgeState>, request: Request) -> Response {
    generate(state, request, Route::Complete).await
}

async fn generate(state: EdgeState, request: Request, route: Route) -> Response {
    let _flight = state.metrics.in_flight();
    let inbound = match state.take_in(request, CallKind::Generate, route).await {
        Ok(inbound) => inbound,
        Err(refusal) => return refusal,
    };
    let result = state.relay.forward(&inbound.ctx).await;
    state.finish(&inbound.ctx, result)
}

pub async fn count_tokens(State(state): State<EdgeState>, request: Request) -> Response {
    query(state, request, Route::CountTokens).await
}

pub async fn models(State(state): State<EdgeState>, request: Request) -> Response {
    query(state, request, Route::Models).await
}

async fn query(state: EdgeState, request: Request, route: Route) -> Response {
    let _flight = state.metrics.in_flight();
    let inbound = match state.take_in(request, CallKind::Query, route).await {
        Ok(inbound) => inbound,
        Err(refusal) => return refusal,
    };
    let result = state.relay.forward(&inbound.ctx).await;
    state.finish(&inbound.ctx, result)
}

pub async fn create_batch(State(state): State<EdgeState>, request: Request) -> Response {
    let inbound = match state
        .take_in(request, CallKind::Query, Route::Batches)
        .await
    {
        Ok(inbound) => inbound,
        Err(refusal) => return refusal,
    };
    let result = state
        .relay
        .create_batch(&inbound.ctx, &inbound.base_url())
        .await;
    state.finish(&inbound.ctx, result)
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    limit: Option<i64>,
    after_id: Option<String>,
    before_id: Option<String>,
}

pub async fn list_batches(
    State(state): State<EdgeState>,
    Query(params): Query<ListParams>,
    request: Request,
) -> Response {
    let inbound = match state
        .take_in(request, CallKind::Query, Route::Batches)
        .await
    {
        Ok(inbound) => inbound,
        Err(refusal) => return refusal,
    };
    let limit = params.limit.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        return ApiError::new(
            ErrorType::InvalidRequest,
            "limit: must be between 1 and 1000",
        )
        .into_response(&inbound.ctx.request_id);
    }
    let listing = BatchListing {
        limit,
        after_id: params.after_id,
        before_id: params.before_id,
    };
    let result = state
        .relay
        .list_batches(&inbound.ctx, &listing, &inbound.base_url())
        .await;
    state.finish(&inbound.ctx, result)
}

pub async fn retrieve_batch(
    state: State<EdgeState>,
    id: Path<String>,
    request: Request,
) -> Response {
    batch_call(state, id, request, BatchOp::Retrieve, CallKind::Query).await
}

pub async fn cancel_batch(state: State<EdgeState>, id: Path<String>, request: Request) -> Response {
    batch_call(state, id, request, BatchOp::Cancel, CallKind::Query).await
}

pub async fn delete_batch(state: State<EdgeState>, id: Path<String>, request: Request) -> Response {
    batch_call(state, id, request, BatchOp::Delete, CallKind::Query).await
}

pub async fn batch_results(
    state: State<EdgeState>,
    id: Path<String>,
    request: Request,
) -> Response {
    batch_call(state, id, request, BatchOp::Results, CallKind::Download).await
}

async fn batch_call(
    State(state): State<EdgeState>,
    Path(id): Path<String>,
    request: Request,
    op: BatchOp,
    kind: CallKind,
) -> Response {
    let inbound = match state.take_in(request, kind, Route::Batches).await {
        Ok(inbound) => inbound,
        Err(refusal) => return refusal,
    };
    let result = state
        .relay
        .batch_call(&inbound.ctx, &id, op, &inbound.base_url())
        .await;
    state.finish(&inbound.ctx, result)
}

pub async fn unknown_route(State(state): State<EdgeState>, request: Request) -> Response {
    let request_id = state.ids.next();
    ApiError::new(
        ErrorType::NotFound,
        format!(
            "unknown route: {} {}",
            request.method(),
            request.uri().path()
        ),
    )
    .into_response(&request_id)
}
