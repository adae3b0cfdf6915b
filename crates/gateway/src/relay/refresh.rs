//! Keeps OAuth access tokens fresh. A credential with a refresh token is refreshed shortly
//! before its access token expires, and when the provider answers `token_expired`; never
//! disabled for it.
//!
//! - **One refresh in flight per credential.** Requests that find the token stale queue on the
//!   credential's refresh; when it is their turn they see the secret has changed and go on
//!   with the new one. 200 concurrent requests on an expired credential make one call.
//! - **The rotated refresh token is on disk before the new access token is used.** Refresh
//!   tokens rotate and reusing an old one revokes the whole family, so the store is written
//!   first, then the pool gets the new secret.
//! - **A token endpoint that is down disables nothing.** The refresh fails, the request goes to
//!   another credential, and the credential's next refresh waits out a growing backoff.

use std::collections::HashMap;
use std::sync::Arc;

use crate::keyring;
use crate::pool::KeyPool;
use crate::providers::oauth::{self, TokenEndpoint};
use crate::store::Store;
use crate::types::{EpochMs, KeyId, Secret, now_ms};
use crate::vault::Vault;

/// A token this close to its expiry is refreshed before use.
pub const REFRESH_AHEAD_MS: i64 = 5 * 60_000;
const FIRST_BACKOFF_MS: i64 = 1_000;
const LONGEST_BACKOFF_MS: i64 = 5 * 60_000;

/// Why a credential could not be refreshed now.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the credential has no refresh token")]
    NoGrant,
    #[error("the last refresh failed; the next is due in {wait_ms} ms")]
    BackingOff { wait_ms: i64 },
    #[error(transparent)]
    Endpoint(#[from] oauth::Error),
    #[error("the credential's tokens could not be read or saved")]
    Store,
}

#[derive(Clone)]
pub struct Refresher {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: TokenEndpoint,
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    pool: KeyPool,
    /// One lane per credential. The map's lock is held only to find a lane; a lane's lock is
    /// held across the refresh call, which is what makes waiters queue on it.
    lanes: parking_lot::Mutex<HashMap<KeyId, Arc<tokio::sync::Mutex<Lane>>>>,
}

/// One credential's refresh history.
#[derive(Default)]
struct Lane {
    failures: u32,
    retry_at: EpochMs,
}

impl Refresher {
    pub fn new(
        endpoint: TokenEndpoint,
        store: Arc<dyn Store>,
        vault: Arc<Vault>,
        pool: KeyPool,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                endpoint,
                store,
                vault,
                pool,
                lanes: parking_lot::Mutex::default(),
            }),
        }
    }

    /// Makes sure the credential's secret is newer than `seen` (the one a request found stale).
    /// Returns the secret to use.
    pub async fn refresh(
        &self,
        key: &KeyId,
        seen: &Secret<String>,
    ) -> Result<Arc<Secret<String>>, Error> {
        let inner = &*self.inner;
        let lane = Arc::clone(inner.lanes.lock().entry(key.clone()).or_default());
        let mut lane = lane.lock().await;
        if let Some(current) = inner.pool.secret(key)
            && current.expose() != seen.expose()
        {
            // Refreshed while this request waited its turn.
            return Ok(current);
        }
        let now = now_ms();
        if lane.retry_at > now {
            return Err(Error::BackingOff {
                wait_ms: lane.retry_at - now,
            });
        }
        match self.refresh_now(key, now).await {
            Ok(secret) => {
                lane.failures = 0;
                lane.retry_at = 0;
                Ok(secret)
            }
            Err(e) => {
                let backoff = FIRST_BACKOFF_MS
                    .saturating_mul(1 << lane.failures.min(20))
                    .min(LONGEST_BACKOFF_MS);
                lane.failures = lane.failures.saturating_add(1);
                lane.retry_at = now + backoff;
                tracing::warn!(key = %key, error = %e, backoff_ms = backoff, "OAuth refresh failed");
                Err(e)
            }
        }
    }

    async fn refresh_now(&self, key: &KeyId, now: EpochMs) -> Result<Arc<Secret<String>>, Error> {
        let inner = &*self.inner;
        let rows = inner.store.keys().await.map_err(|_| Error::Store)?;
        let row = rows
            .into_iter()
            .find(|r| r.id == key.as_str())
            .ok_or(Error::NoGrant)?;
        let sealed = row.refresh_sealed.as_deref().ok_or(Error::NoGrant)?;
        let refresh = inner.vault.open_string(sealed).map_err(|_| Error::Store)?;
        let tokens = inner.endpoint.refresh(&refresh, now).await?;
        let mut updated = keyring::with_secret(&inner.vault, &row, &tokens.access, None);
        updated.refresh_sealed = Some(inner.vault.seal(tokens.refresh.expose().as_bytes()));
        updated.token_expires_at = Some(tokens.expires_at);
        // On disk first: the old refresh token is spent, and reusing it would revoke the family.
        let saved = inner
            .store
            .update_key(&updated)
            .await
            .map_err(|_| Error::Store)?;
        let spec = keyring::spec(&inner.vault, &saved).map_err(|_| Error::Store)?;
        inner.pool.upsert_key(spec, now_ms());
        tracing::info!(key = %row.name, expires_at = tokens.expires_at, "OAuth access token refreshed");
        inner.pool.secret(key).ok_or(Error::NoGrant)
    }
}
