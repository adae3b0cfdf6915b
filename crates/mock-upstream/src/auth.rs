//! Who is calling (§2, §2.1): API keys in `x-api-key`; OAuth tokens as
//! `Authorization: Bearer` plus the `oauth-2025-04-20` beta flag, refused once expired or
//! revoked; and the version header.

use std::sync::Arc;

use axum::http::HeaderMap;

use crate::error::{ApiError, ErrorKind};
use crate::keys::{Credential, KeyState, Keys};
use crate::oauth::{TokenStatus, Tokens};

const OAUTH_BETA: &str = "oauth-2025-04-20";

/// The first dated API version (§2). Later dated versions are accepted too: current SDKs send
/// newer dates than `2023-06-01` (the Python SDK 2.12 sends `2026-10-21`).
const FIRST_VERSION: &str = "2023-01-01";

fn known_version(version: &str) -> bool {
    version.len() == 10 && version.parse::<jiff::civil::Date>().is_ok() && version >= FIRST_VERSION
}

/// The outcome of reading a request's credential.
pub(crate) struct Identity {
    /// The key whose credential the request carried, even if it was then refused (an OAuth
    /// token without the beta flag, or sent as `x-api-key`): tests count such calls too.
    pub(crate) key: Option<Arc<KeyState>>,
    pub(crate) verdict: Result<(), Denied>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Denied {
    Missing,
    InvalidApiKey,
    InvalidBearer,
    OAuthWithoutBeta,
    TokenExpired,
    TokenRevoked,
}

impl Denied {
    pub(crate) fn into_error(self) -> ApiError {
        let message = match self {
            Denied::Missing => "x-api-key header is required",
            Denied::InvalidApiKey => "invalid x-api-key",
            Denied::InvalidBearer => "Invalid bearer token",
            Denied::OAuthWithoutBeta => "OAuth authentication is currently not supported.",
            Denied::TokenExpired => {
                return ApiError::new(
                    ErrorKind::AuthenticationError,
                    "OAuth token has expired. Please obtain a new token or refresh your \
                     existing token.",
                )
                .with_code("token_expired");
            }
            Denied::TokenRevoked => "OAuth token has been revoked. Please obtain a new token.",
        };
        ApiError::new(ErrorKind::AuthenticationError, message)
    }
}

/// The key a credential belongs to, and its token status: configured secrets first, then
/// the tokens issued by the token endpoint.
fn find(keys: &Keys, tokens: &Tokens, secret: &str) -> Option<(Arc<KeyState>, TokenStatus)> {
    match keys.by_secret(secret) {
        Some(key) if key.credential == Credential::OAuth => {
            let status = tokens
                .lookup(secret)
                .map_or(TokenStatus::Valid, |(_, status)| status);
            Some((Arc::clone(key), status))
        }
        Some(key) => Some((Arc::clone(key), TokenStatus::Valid)),
        None => tokens.lookup(secret),
    }
}

/// `x-api-key` wins when both headers are present.
pub(crate) fn identify(keys: &Keys, tokens: &Tokens, headers: &HeaderMap) -> Identity {
    if let Some(value) = headers.get("x-api-key") {
        let key = value
            .to_str()
            .ok()
            .and_then(|s| find(keys, tokens, s))
            .map(|(key, _)| key);
        let verdict = match &key {
            Some(key) if key.credential == Credential::ApiKey => Ok(()),
            _ => Err(Denied::InvalidApiKey),
        };
        return Identity { key, verdict };
    }
    let Some(authorization) = headers.get("authorization") else {
        return Identity {
            key: None,
            verdict: Err(Denied::Missing),
        };
    };
    let token = authorization.to_str().ok().and_then(bearer_token);
    let found = token.and_then(|t| find(keys, tokens, t));
    let verdict = match &found {
        None => Err(Denied::InvalidBearer),
        Some((key, _)) if key.credential == Credential::ApiKey => Err(Denied::InvalidBearer),
        Some(_) if !has_beta(headers, OAUTH_BETA) => Err(Denied::OAuthWithoutBeta),
        Some((_, TokenStatus::Valid)) => Ok(()),
        Some((_, TokenStatus::Expired)) => Err(Denied::TokenExpired),
        Some((_, TokenStatus::Revoked)) => Err(Denied::TokenRevoked),
    };
    Identity {
        key: found.map(|(key, _)| key),
        verdict,
    }
}

fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether `flag` is among the `anthropic-beta` values (comma lists, repeated headers).
fn has_beta(headers: &HeaderMap, flag: &str) -> bool {
    headers
        .get_all("anthropic-beta")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim() == flag)
}

/// `anthropic-version` must be present and known.
pub(crate) fn check_version(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get("anthropic-version").map(|v| v.to_str()) {
        None => Err(ApiError::invalid("anthropic-version: header is required")),
        Some(Ok(version)) if known_version(version) => Ok(()),
        Some(version) => Err(ApiError::invalid(format!(
            "anthropic-version: {:?} is not a valid version",
            version.unwrap_or_default()
        ))),
    }
}
