//! `/admin/api/events`: the panel's live feed as Server-Sent Events.
//!
//! - `request`: each request as it is settled (the request log's shape);
//! - `credential`: each credential state change, with the credential's new view;
//! - `overview`: the overview numbers, every 2 s.
//!
//! A watcher that falls behind skips what it missed (a `lagged` event says how much) rather
//! than slowing anything down; the request path only pays for a copy while someone watches.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::broadcast::{self, error::RecvError};
use utoipa::ToSchema;

use super::Admin;
use super::credentials::CredentialView;
use super::usage::RequestView;
use crate::accounting::UsageRecord;
use crate::pool::Transition;
use crate::types::EpochMs;

const OVERVIEW_EVERY: Duration = Duration::from_secs(2);

/// The data of a `credential` event.
#[derive(Serialize, ToSchema)]
pub struct CredentialEvent {
    pub at: EpochMs,
    pub from: &'static str,
    pub to: &'static str,
    pub reason: String,
    pub until: Option<EpochMs>,
    pub credential: Option<CredentialView>,
}

struct Feed {
    admin: Admin,
    records: broadcast::Receiver<Arc<UsageRecord>>,
    transitions: broadcast::Receiver<Transition>,
    tick: tokio::time::Interval,
}

fn json_event(name: &str, data: &impl Serialize) -> Event {
    Event::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|_| Event::default().event("error").data("unserialisable event"))
}

impl Feed {
    async fn next(&mut self) -> Option<Event> {
        loop {
            tokio::select! {
                () = self.admin.shutdown.cancelled() => return None,
                received = self.records.recv() => match received {
                    Ok(record) => return Some(json_event("request", &RequestView::from(&*record))),
                    Err(RecvError::Lagged(missed)) => {
                        return Some(Event::default().event("lagged").data(missed.to_string()));
                    }
                    Err(RecvError::Closed) => return None,
                },
                received = self.transitions.recv() => match received {
                    Ok(t) => {
                        let credential = self.admin.credential(t.key_id.as_str()).await.ok();
                        return Some(json_event("credential", &CredentialEvent {
                            at: t.at,
                            from: t.from,
                            to: t.to,
                            reason: t.reason,
                            until: t.until,
                            credential,
                        }));
                    }
                    Err(RecvError::Lagged(missed)) => {
                        return Some(Event::default().event("lagged").data(missed.to_string()));
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = self.tick.tick() => {
                    match self.admin.overview().await {
                        Ok(overview) => return Some(json_event("overview", &overview)),
                        Err(_) => continue,
                    }
                }
            }
        }
    }
}

/// Live events for the panel (`text/event-stream`).
#[utoipa::path(get, path = "/events", tag = "usage",
    responses((status = 200, content_type = "text/event-stream",
        description = "`request`, `credential` and `overview` events")))]
pub async fn stream(
    State(admin): State<Admin>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut tick = tokio::time::interval(OVERVIEW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let feed = Feed {
        records: admin.accountant.watch(),
        transitions: admin.pool.subscribe(),
        admin,
        tick,
    };
    let events = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok(event), feed))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
