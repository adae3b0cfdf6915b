//! The OAuth token endpoint of subscription accounts: trades a refresh token for a new access
//! token (and, since refresh tokens rotate, a new refresh token). One call, no retry: the
//! refresher decides when to try again.

use std::time::Duration;

use serde::Deserialize;

use crate::types::{EpochMs, Secret};

/// A refresh's result.
pub struct Tokens {
    pub access: Secret<String>,
    pub refresh: Secret<String>,
    pub expires_at: EpochMs,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The endpoint refused the refresh token (`invalid_grant`): the grant is gone.
    #[error("the token endpoint refused the refresh token ({code})")]
    Rejected { code: String },
    /// No usable answer (down, slow, unreadable): try again later.
    #[error("the token endpoint is unavailable ({detail})")]
    Unavailable { detail: String },
}

#[derive(Clone)]
pub struct TokenEndpoint {
    http: reqwest::Client,
    url: String,
    client_id: String,
}

#[derive(Deserialize)]
struct Granted {
    access_token: String,
    refresh_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct Refused {
    error: String,
}

/// The longest access-token lifetime taken from an answer; a longer one is garbage.
const LONGEST_LIFETIME_SECS: u64 = 30 * 86_400;

impl TokenEndpoint {
    pub fn new(url: String, client_id: String, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            http,
            url,
            client_id,
        }
    }

    pub async fn refresh(&self, refresh: &Secret<String>, now: EpochMs) -> Result<Tokens, Error> {
        let body = serde_json::json!({
            "grant_type": "refresh_token",
            "refresh_token": refresh.expose(),
            "client_id": self.client_id,
        });
        let unavailable = |detail: String| Error::Unavailable { detail };
        let response = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .await
            // reqwest's error names the URL, never the body: no token in it.
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        if status.is_success() {
            let granted: Granted = serde_json::from_slice(&bytes)
                .map_err(|_| unavailable("an answer without tokens".into()))?;
            let lifetime_ms = granted.expires_in.min(LONGEST_LIFETIME_SECS) * 1000;
            return Ok(Tokens {
                access: Secret::new(granted.access_token),
                refresh: Secret::new(granted.refresh_token),
                expires_at: now.saturating_add(i64::try_from(lifetime_ms).unwrap_or(i64::MAX)),
            });
        }
        match serde_json::from_slice::<Refused>(&bytes) {
            Ok(refused) if status.is_client_error() => Err(Error::Rejected {
                code: refused.error,
            }),
            _ => Err(unavailable(format!("status {}", status.as_u16()))),
        }
    }
}
