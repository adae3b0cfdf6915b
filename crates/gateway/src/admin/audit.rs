//! The audit trail: every change made through the admin API is written to the store (who,
//! what, when, from where) and logged. Details never hold a secret: callers pass names, ids
//! and numbers only.

use std::sync::Arc;

use serde_json::Value;

use super::auth::Actor;
use crate::store::{AuditEntry, Store};
use crate::types::now_ms;

#[derive(Clone)]
pub struct Audit {
    store: Arc<dyn Store>,
}

impl Audit {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Records an action that has happened. A failure to write the entry is logged, not
    /// returned: the action itself already took effect.
    pub async fn record(&self, actor: &Actor, action: &str, target: Option<&str>, detail: Value) {
        if let Err(e) = append(self.store.as_ref(), actor, action, target, detail).await {
            tracing::error!(error = %e, action, "could not write the audit entry");
        }
    }
}

/// Logs an action and appends it to the store's audit log (the CLI calls this directly).
pub async fn append(
    store: &dyn Store,
    actor: &Actor,
    action: &str,
    target: Option<&str>,
    detail: Value,
) -> crate::store::Result<()> {
    tracing::info!(actor = %actor.name, action, target, %detail, "admin action");
    let entry = AuditEntry {
        id: 0,
        at: now_ms(),
        actor: actor.name.clone(),
        action: action.to_owned(),
        target: target.map(str::to_owned),
        detail: (!detail.is_null()).then(|| detail.to_string()),
        remote: actor.remote.map(|ip| ip.to_string()),
    };
    store.append_audit(&entry).await
}
