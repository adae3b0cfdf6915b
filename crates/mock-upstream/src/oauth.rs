//! OAuth access tokens and refresh-token families, and the token endpoint
//! `POST /v1/oauth/token` (§2.1).
//!
//! Each OAuth key with a refresh token owns one family, seeded by that token. A refresh
//! returns a new access token (a credential of the same key) and a new refresh token, and
//! uses up the one presented. Presenting a used refresh token again revokes the whole
//! family: every access and refresh token issued from it, the configured secret included.
//! Expiry is measured with Tokio's clock, so paused-time tests can let a token expire.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::{OAuthError, OAuthErrorKind};
use crate::ids;
use crate::keys::{Credential, KeyState, Keys};
use crate::server::State;

const SCOPE: &str = "user:inference user:profile";

/// Whether an access token may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenStatus {
    Valid,
    Expired,
    Revoked,
}

/// Every tracked access token and refresh token, and the token endpoint's switches.
pub(crate) struct Tokens {
    seeds: Vec<Seed>,
    store: Mutex<Store>,
    down: AtomicBool,
    delay: Mutex<Duration>,
}

/// What an OAuth key starts with.
struct Seed {
    key: Arc<KeyState>,
    secret: String,
    refresh_token: Option<String>,
    /// `None`: the configured secret never expires.
    expires_after: Option<Duration>,
}

#[derive(Default)]
struct Store {
    access: HashMap<String, Access>,
    refresh: HashMap<String, Refresh>,
    families: Vec<Family>,
}

struct Access {
    key: Arc<KeyState>,
    family: Option<usize>,
    expires: Option<Instant>,
}

struct Refresh {
    family: usize,
    used: bool,
}

struct Family {
    key: Arc<KeyState>,
    revoked: bool,
}

/// A successful refresh.
#[derive(Serialize)]
struct Issued {
    access_token: String,
    refresh_token: String,
    expires_in: u64,
    token_type: &'static str,
    scope: &'static str,
}

impl Tokens {
    pub(crate) fn new(config: &crate::MockConfig, keys: &Keys) -> Tokens {
        let seeds = config
            .keys
            .iter()
            .filter_map(|configured| {
                let key = keys.by_name(&configured.name)?;
                if key.credential != Credential::OAuth {
                    return None;
                }
                let expires_after =
                    match (configured.access_token_lifetime, &configured.refresh_token) {
                        (Some(lifetime), _) => Some(lifetime),
                        (None, Some(_)) => Some(config.access_token_lifetime),
                        (None, None) => None,
                    };
                Some(Seed {
                    key: Arc::clone(key),
                    secret: configured.secret.clone(),
                    refresh_token: configured.refresh_token.clone(),
                    expires_after,
                })
            })
            .collect();
        let tokens = Tokens {
            seeds,
            store: Mutex::new(Store::default()),
            down: AtomicBool::new(false),
            delay: Mutex::new(Duration::ZERO),
        };
        tokens.reset();
        tokens
    }

    /// Families back to their seed, configured secrets valid again (expiring from now),
    /// issued tokens forgotten, the endpoint up and without delay.
    pub(crate) fn reset(&self) {
        let now = Instant::now();
        let mut store = Store::default();
        for seed in &self.seeds {
            let family = seed.refresh_token.as_ref().map(|refresh_token| {
                store.families.push(Family {
                    key: Arc::clone(&seed.key),
                    revoked: false,
                });
                let family = store.families.len() - 1;
                store.refresh.insert(
                    refresh_token.clone(),
                    Refresh {
                        family,
                        used: false,
                    },
                );
                family
            });
            if family.is_some() || seed.expires_after.is_some() {
                store.access.insert(
                    seed.secret.clone(),
                    Access {
                        key: Arc::clone(&seed.key),
                        family,
                        expires: seed.expires_after.map(|after| now + after),
                    },
                );
            }
        }
        *self.store.lock() = store;
        self.down.store(false, Ordering::Release);
        *self.delay.lock() = Duration::ZERO;
    }

    /// The key `token` belongs to and whether it may be used; `None` for tokens the store
    /// does not track (unknown ones, and configured secrets that never expire).
    pub(crate) fn lookup(&self, token: &str) -> Option<(Arc<KeyState>, TokenStatus)> {
        let store = self.store.lock();
        let access = store.access.get(token)?;
        let revoked = access.family.is_some_and(|f| store.families[f].revoked);
        let status = if revoked {
            TokenStatus::Revoked
        } else if access.expires.is_some_and(|at| Instant::now() >= at) {
            TokenStatus::Expired
        } else {
            TokenStatus::Valid
        };
        Some((Arc::clone(&access.key), status))
    }

    pub(crate) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Release);
    }

    pub(crate) fn set_delay(&self, delay: Duration) {
        *self.delay.lock() = delay;
    }

    /// The key whose family `refresh_token` belongs to.
    fn owner(&self, refresh_token: &str) -> Option<Arc<KeyState>> {
        let store = self.store.lock();
        let family = store.refresh.get(refresh_token)?.family;
        Some(Arc::clone(&store.families[family].key))
    }

    /// Rotates `refresh_token`, or revokes its family when it was used before.
    fn refresh(&self, refresh_token: &str) -> Result<Issued, OAuthError> {
        let mut store = self.store.lock();
        let Some(presented) = store.refresh.get_mut(refresh_token) else {
            return Err(invalid_grant("Invalid refresh token"));
        };
        let family = presented.family;
        let reused = std::mem::replace(&mut presented.used, true);
        if store.families[family].revoked {
            return Err(invalid_grant("Refresh token has been revoked"));
        }
        if reused {
            store.families[family].revoked = true;
            return Err(invalid_grant(
                "Refresh token has already been used; all tokens issued from it are revoked",
            ));
        }
        let key = Arc::clone(&store.families[family].key);
        let issued = Issued {
            access_token: ids::access_token(),
            refresh_token: ids::refresh_token(),
            expires_in: key.token_lifetime.as_secs(),
            token_type: "Bearer",
            scope: SCOPE,
        };
        store.access.insert(
            issued.access_token.clone(),
            Access {
                expires: Some(Instant::now() + key.token_lifetime),
                key,
                family: Some(family),
            },
        );
        store.refresh.insert(
            issued.refresh_token.clone(),
            Refresh {
                family,
                used: false,
            },
        );
        Ok(issued)
    }
}

fn invalid_grant(description: &'static str) -> OAuthError {
    OAuthError::new(OAuthErrorKind::InvalidGrant, description)
}

/// `POST /v1/oauth/token`: counts the call for the family's key, waits the configured
/// delay, then answers 503 when the endpoint is down, else refreshes.
pub(crate) async fn token(state: &State, parts: &Parts, body: &Bytes) -> Response {
    let tokens = &state.tokens;
    let raw = RawGrant::parse(parts, body);
    if let Some(key) = raw
        .as_ref()
        .ok()
        .and_then(|raw| raw.refresh_token.as_deref())
        .and_then(|token| tokens.owner(token))
    {
        key.tally.count_token_call();
    }
    let delay = *tokens.delay.lock();
    state.stop.clone().pause(delay).await;
    if tokens.down.load(Ordering::Acquire) {
        return OAuthError::new(
            OAuthErrorKind::TemporarilyUnavailable,
            "The authorization server is temporarily unavailable",
        )
        .into_response();
    }
    match raw
        .and_then(RawGrant::validate)
        .and_then(|grant| tokens.refresh(&grant.refresh_token))
    {
        Ok(issued) => Json(issued).into_response(),
        Err(error) => error.into_response(),
    }
}

/// The body fields the endpoint reads, from JSON or form-urlencoded.
#[derive(Default, Deserialize)]
struct RawGrant {
    grant_type: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
}

struct Grant {
    refresh_token: String,
}

impl RawGrant {
    fn parse(parts: &Parts, body: &[u8]) -> Result<RawGrant, OAuthError> {
        let form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if form {
            return Ok(RawGrant::from_form(body));
        }
        serde_json::from_slice(body).map_err(|_| {
            OAuthError::new(
                OAuthErrorKind::InvalidRequest,
                "Request body must be JSON or form-urlencoded",
            )
        })
    }

    fn validate(self) -> Result<Grant, OAuthError> {
        let raw = self;
        let missing = |description| OAuthError::new(OAuthErrorKind::InvalidRequest, description);
        match raw.grant_type.as_deref() {
            None => return Err(missing("Missing required parameter: grant_type")),
            Some("refresh_token") => {}
            Some(_) => {
                return Err(OAuthError::new(
                    OAuthErrorKind::UnsupportedGrantType,
                    "Only the refresh_token grant is supported",
                ));
            }
        }
        let refresh_token = raw
            .refresh_token
            .ok_or_else(|| missing("Missing required parameter: refresh_token"))?;
        if raw.client_id.is_none() {
            return Err(missing("Missing required parameter: client_id"));
        }
        Ok(Grant { refresh_token })
    }

    fn from_form(body: &[u8]) -> RawGrant {
        let mut raw = RawGrant::default();
        for pair in body.split(|b| *b == b'&') {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let value = Some(percent_decode(value));
            match percent_decode(name).as_str() {
                "grant_type" => raw.grant_type = value,
                "refresh_token" => raw.refresh_token = value,
                "client_id" => raw.client_id = value,
                _ => {}
            }
        }
        raw
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn percent_decode(input: &[u8]) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < input.len() => match (hex(input[i + 1]), hex(input[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_percent_decoded() {
        let raw = RawGrant::from_form(
            b"grant_type=refresh_token&refresh_token=sk-ant-ort01-a%2Bb&client_id=x+y&extra",
        );
        assert_eq!(raw.grant_type.as_deref(), Some("refresh_token"));
        assert_eq!(raw.refresh_token.as_deref(), Some("sk-ant-ort01-a+b"));
        assert_eq!(raw.client_id.as_deref(), Some("x y"));
        assert_eq!(percent_decode(b"100%"), "100%");
        assert_eq!(percent_decode(b"%4"), "%4");
        assert_eq!(percent_decode(b"%41"), "A");
    }
}
