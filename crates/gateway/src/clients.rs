//! Gateway clients: who may call, resolved from the key they present. The key itself is never
//! stored — only its digest — and lookups are served from memory, refreshed from the store in
//! the background so a key created or revoked by the CLI takes effect without a restart.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::store::{self, ClientRow, Store};
use crate::types::now_ms;
use crate::vault;

#[derive(Debug, Clone)]
pub struct Client {
    pub id: Arc<str>,
    pub name: Arc<str>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("no client key given: send your gateway key as x-api-key or Authorization: Bearer")]
    Missing,
    #[error("invalid client key")]
    Invalid,
    #[error("this client key has been revoked")]
    Revoked,
    #[error("internal error while checking the client key")]
    Unavailable,
}

#[derive(Clone)]
pub struct ClientDirectory {
    store: Arc<dyn Store>,
    /// digest → client (revoked clients included, so a revoked key is told apart from a typo).
    by_digest: Arc<ArcSwap<HashMap<String, Entry>>>,
}

#[derive(Clone)]
struct Entry {
    client: Client,
    revoked: bool,
}

impl ClientDirectory {
    pub async fn load(store: Arc<dyn Store>) -> store::Result<Self> {
        let directory = Self {
            store,
            by_digest: Arc::new(ArcSwap::from_pointee(HashMap::new())),
        };
        directory.refresh().await?;
        Ok(directory)
    }

    /// Re-reads every client from the store.
    pub async fn refresh(&self) -> store::Result<()> {
        let rows = self.store.clients().await?;
        let map = rows
            .into_iter()
            .map(|row| (row.key_digest.clone(), entry(&row)))
            .collect();
        self.by_digest.store(Arc::new(map));
        Ok(())
    }

    pub async fn authenticate(&self, presented: Option<&str>) -> Result<Client, Error> {
        let key = presented.filter(|k| !k.is_empty()).ok_or(Error::Missing)?;
        let digest = vault::client_key_digest(key);
        let found = self.by_digest.load().get(&digest).cloned();
        let found = match found {
            Some(entry) => Some(entry),
            // Created moments ago by another process: look once in the store.
            None => self
                .store
                .client_by_digest(&digest)
                .await
                .map_err(|_| Error::Unavailable)?
                .map(|row| {
                    let e = entry(&row);
                    let mut map = HashMap::clone(&self.by_digest.load());
                    map.insert(digest, e.clone());
                    self.by_digest.store(Arc::new(map));
                    e
                }),
        };
        match found {
            Some(Entry { revoked: true, .. }) => Err(Error::Revoked),
            Some(Entry { client, .. }) => Ok(client),
            None => Err(Error::Invalid),
        }
    }
}

fn entry(row: &ClientRow) -> Entry {
    Entry {
        client: Client {
            id: row.id.as_str().into(),
            name: row.name.as_str().into(),
        },
        revoked: row.revoked_at.is_some_and(|at| at <= now_ms()),
    }
}

/// Creates a client and returns its key, which is shown once and never stored.
pub async fn create(
    store: &dyn Store,
    name: &str,
    notes: Option<String>,
) -> store::Result<(ClientRow, crate::types::Secret<String>)> {
    let key = vault::generate_client_key();
    let row = ClientRow {
        id: store::new_id("cl"),
        name: name.to_owned(),
        key_digest: vault::client_key_digest(key.expose()),
        key_hint: vault::client_key_hint(key.expose()),
        created_at: now_ms(),
        revoked_at: None,
        notes,
    };
    store.insert_client(&row).await?;
    Ok((row, key))
}
