//! Message Batches. A batch lives in the workspace of the credential that created it, so every
//! follow-up call (retrieve, cancel, results, delete) must use that same credential: the
//! batch → credential affinity is kept in the store. A batch is visible only to the client that
//! created it. `results_url` is rewritten to point at the gateway, since SDKs follow it as given.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use http::Method;
use keyloop_wire::anthropic::batch;

use super::{CallKind, Error, Relay, RequestCtx, Response, ResponseBody};
use crate::store::{BatchPage, BatchRow};
use crate::types::{KeyId, now_ms};

/// What a call on one batch does, which decides how its answer is treated.
/// Anthropic list cursors: `after_id` pages to older batches, `before_id` to newer.
#[derive(Debug, Clone, Default)]
pub struct BatchListing {
    pub limit: i64,
    pub after_id: Option<String>,
    pub before_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOp {
    Retrieve,
    Cancel,
    Delete,
    Results,
}

/// Batch retrievals a listing makes at once.
const LISTING_CONCURRENCY: usize = 8;

impl Relay {
    pub async fn create_batch(
        &self,
        ctx: &Arc<RequestCtx>,
        base_url: &str,
    ) -> Result<Response, Error> {
        let mut response = self.forward(ctx).await?;
        if !response.status.is_success() {
            return Ok(response);
        }
        if let (ResponseBody::Full(body), Some(key)) = (&response.body, &response.served_by)
            && let Some(id) = batch::batch_id(body)
        {
            {
                self.inner
                    .store
                    .insert_batch(&BatchRow {
                        id,
                        key_id: key.to_string(),
                        client_id: ctx.caller.client_id.as_deref().map(str::to_owned),
                        created_at: now_ms(),
                    })
                    .await?;
            }
        }
        rewrite(&mut response, base_url);
        Ok(response)
    }

    pub async fn batch_call(
        &self,
        ctx: &Arc<RequestCtx>,
        id: &str,
        op: BatchOp,
        base_url: &str,
    ) -> Result<Response, Error> {
        let row = self.owned_batch(ctx, id).await?;
        let mut response = self.forward_pinned(ctx, &KeyId::new(row.key_id)).await?;
        match op {
            BatchOp::Retrieve | BatchOp::Cancel => rewrite(&mut response, base_url),
            BatchOp::Delete if response.status.is_success() => {
                self.inner.store.delete_batch(id).await?;
            }
            BatchOp::Delete | BatchOp::Results => {}
        }
        Ok(response)
    }

    /// Lists this client's batches, newest first, each retrieved fresh from its credential.
    pub async fn list_batches(
        &self,
        ctx: &RequestCtx,
        listing: &BatchListing,
        base_url: &str,
    ) -> Result<Response, Error> {
        let want = listing.limit;
        let rows = self
            .inner
            .store
            .batches_page(&BatchPage {
                client_id: ctx.caller.client_id.as_deref(),
                limit: want + 1,
                after_id: listing.after_id.as_deref(),
                before_id: listing.before_id.as_deref(),
            })
            .await?;
        let has_more = rows.len() as i64 > want;
        let rows = &rows[..rows.len().min(want as usize)];
        let fetches = rows.iter().map(|row| async move {
            let one = Arc::new(RequestCtx {
                request_id: ctx.request_id.clone(),
                method: Method::GET,
                path_and_query: format!("/v1/messages/batches/{}", row.id),
                headers: ctx.headers.clone(),
                body: Bytes::new(),
                kind: CallKind::Query,
                route: ctx.route,
                stream: false,
                model: None,
                speed: ctx.speed,
                session: None,
                caller: ctx.caller.clone(),
                arrived: ctx.arrived,
                recorded: false,
                started: ctx.started,
                deadline: ctx.deadline,
            });
            self.forward_pinned(&one, &KeyId::new(row.key_id.clone()))
                .await
        });
        let fetches: Vec<_> = fetches.collect();
        let mut data = Vec::with_capacity(rows.len());
        // In order, a few at a time: a page of 1,000 batches must not open 1,000 upstream calls
        // at once on the client's behalf.
        let results: Vec<_> = futures_util::stream::iter(fetches)
            .buffered(LISTING_CONCURRENCY)
            .collect()
            .await;
        for result in results {
            match result {
                Ok(Response {
                    status,
                    body: ResponseBody::Full(body),
                    ..
                }) if status.is_success() => {
                    let body = batch::rewrite_results_url(&body, base_url)
                        .map(Bytes::from)
                        .unwrap_or(body);
                    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body) {
                        data.push(value);
                    }
                }
                // A batch deleted upstream or a credential since removed drops out of the list.
                Ok(_) | Err(Error::BatchKeyGone { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let id_of = |v: Option<&serde_json::Value>| {
            v.and_then(|v| v.get("id"))
                .cloned()
                .unwrap_or(serde_json::Value::Null)
        };
        let page = serde_json::json!({
            "data": data,
            "has_more": has_more,
            "first_id": id_of(data.first()),
            "last_id": id_of(data.last()),
        });
        let mut record = super::ledger::draft(ctx, &[]);
        record.status = 200;
        record.outcome = crate::accounting::RequestOutcome::Success;
        self.settle(record);
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        Ok(Response {
            status: http::StatusCode::OK,
            headers,
            body: ResponseBody::Full(Bytes::from(page.to_string())),
            served_by: None,
        })
    }

    async fn owned_batch(&self, ctx: &RequestCtx, id: &str) -> Result<BatchRow, Error> {
        let row = self.inner.store.batch(id).await?;
        match row {
            Some(row) if row.client_id.as_deref() == ctx.caller.client_id.as_deref() => Ok(row),
            _ => Err(Error::BatchNotFound { id: id.to_owned() }),
        }
    }
}

fn rewrite(response: &mut Response, base_url: &str) {
    if let ResponseBody::Full(body) = &response.body
        && let Some(rewritten) = batch::rewrite_results_url(body, base_url)
    {
        response.headers.remove(http::header::CONTENT_LENGTH);
        response.body = ResponseBody::Full(Bytes::from(rewritten));
    }
}
