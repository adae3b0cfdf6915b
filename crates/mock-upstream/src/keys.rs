//! The configured keys and everything the mock keeps per key: its organization, limits
//! (per-minute buckets, possibly shared with the organization, and subscription windows for
//! OAuth keys), the models it may not use, scripted scenarios, batches (the key's workspace)
//! and call tallies.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::Response;
use jiff::Timestamp;

use crate::MockConfig;
use crate::batches::Batches;
use crate::error::{ApiError, ErrorKind};
use crate::limits::{Buckets, Cost, Exceeded, Snapshot};
use crate::record::Tally;
use crate::scenario::Script;
use crate::subscription::{Clock, Rejected, Report, Windows};

/// What kind of credential a key is; decides which header may carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Credential {
    /// `sk-ant-api…` style, sent as `x-api-key`.
    ApiKey,
    /// `sk-ant-oat…`, sent as `Authorization: Bearer` with the OAuth beta flag.
    OAuth,
}

impl Credential {
    fn of(secret: &str) -> Credential {
        if secret.starts_with("sk-ant-oat") {
            Credential::OAuth
        } else {
            Credential::ApiKey
        }
    }
}

pub(crate) struct KeyState {
    pub(crate) name: String,
    pub(crate) credential: Credential,
    /// Sent as `anthropic-organization-id`: as configured, else a stable UUID derived from
    /// the name.
    pub(crate) organization_id: String,
    /// The key's own buckets, or its organization's when they are shared.
    pub(crate) limits: Arc<Buckets>,
    /// The usage windows; `Some` exactly for OAuth keys.
    pub(crate) subscription: Option<Windows>,
    pub(crate) denied_models: Vec<String>,
    /// Lifetime of the access tokens issued to this key.
    pub(crate) token_lifetime: Duration,
    pub(crate) scenarios: Script,
    pub(crate) batches: Batches,
    pub(crate) tally: Tally,
}

pub(crate) struct Keys {
    by_secret: HashMap<String, Arc<KeyState>>,
    by_name: HashMap<String, Arc<KeyState>>,
    /// In configuration order, for statistics.
    ordered: Vec<Arc<KeyState>>,
}

impl Keys {
    pub(crate) fn new(config: &MockConfig, clock: Clock) -> Keys {
        let mut by_secret = HashMap::new();
        let mut by_name = HashMap::new();
        let mut ordered = Vec::new();
        let mut organization_buckets: HashMap<String, Arc<Buckets>> = HashMap::new();
        for key in &config.keys {
            let credential = Credential::of(&key.secret);
            let organization_id = key
                .organization
                .clone()
                .unwrap_or_else(|| organization_id(&key.name));
            let own = || Arc::new(Buckets::new(key.limits));
            let limits = if config.shared_organization_limits {
                Arc::clone(
                    organization_buckets
                        .entry(organization_id.clone())
                        .or_insert_with(own),
                )
            } else {
                own()
            };
            let subscription = (credential == Credential::OAuth)
                .then(|| Windows::new(key.subscription.clone().unwrap_or_default(), clock));
            let state = Arc::new(KeyState {
                name: key.name.clone(),
                credential,
                organization_id,
                limits,
                subscription,
                denied_models: key.denied_models.clone(),
                token_lifetime: key
                    .access_token_lifetime
                    .unwrap_or(config.access_token_lifetime),
                scenarios: Script::default(),
                batches: Batches::default(),
                tally: Tally::default(),
            });
            by_secret.insert(key.secret.clone(), Arc::clone(&state));
            by_name.insert(key.name.clone(), Arc::clone(&state));
            ordered.push(state);
        }
        Keys {
            by_secret,
            by_name,
            ordered,
        }
    }

    pub(crate) fn by_secret(&self, secret: &str) -> Option<&Arc<KeyState>> {
        self.by_secret.get(secret)
    }

    pub(crate) fn by_name(&self, name: &str) -> Option<&Arc<KeyState>> {
        self.by_name.get(name)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<KeyState>> {
        self.ordered.iter()
    }
}

impl KeyState {
    /// 403 `permission_error` when this credential may not use `model`.
    pub(crate) fn refuse_model(&self, model: &str) -> Option<ApiError> {
        self.denied_models
            .iter()
            .any(|denied| denied == model)
            .then(|| permission_denied(model))
    }

    /// Charges one generated answer for `model`: the subscription windows of an OAuth key,
    /// then the per-minute buckets. A refusal takes nothing from either.
    pub(crate) fn admit(&self, model: &str, cost: Cost) -> Result<Headroom, Refusal> {
        let Some(windows) = &self.subscription else {
            return match self.limits.admit(cost) {
                Ok(snapshot) => Ok(Headroom::Classic(snapshot)),
                Err(exceeded) => Err(Refusal::Classic(Box::new(exceeded))),
            };
        };
        let (report, charge) = windows.admit(model).map_err(Refusal::Unified)?;
        match self.limits.admit(cost) {
            Ok(_) => Ok(Headroom::Unified(report)),
            Err(exceeded) => {
                windows.refund(model, charge);
                Err(Refusal::PerMinute(
                    Box::new(exceeded),
                    windows.snapshot(Some(model)),
                ))
            }
        }
    }

    /// The current state, for answers that charge nothing.
    pub(crate) fn headroom(&self) -> Headroom {
        match &self.subscription {
            Some(windows) => Headroom::Unified(windows.snapshot(None)),
            None => Headroom::Classic(self.limits.snapshot()),
        }
    }
}

/// "Your credential does not have access to model X".
pub(crate) fn permission_denied(model: &str) -> ApiError {
    ApiError::new(
        ErrorKind::PermissionError,
        format!("Your credential does not have access to model {model}"),
    )
}

/// The rate-limit state an answer reports: the per-minute family for API keys, the
/// unified subscription family for OAuth keys.
pub(crate) enum Headroom {
    Classic(Snapshot),
    Unified(Report),
}

impl Headroom {
    pub(crate) fn write_headers(&self, headers: &mut HeaderMap, now: Timestamp) {
        match self {
            Headroom::Classic(snapshot) => snapshot.write_headers(headers, now),
            Headroom::Unified(report) => report.write_headers(headers),
        }
    }
}

/// Why a generated answer was not served.
pub(crate) enum Refusal {
    /// An API key's per-minute bucket.
    Classic(Box<Exceeded>),
    /// A full subscription window.
    Unified(Rejected),
    /// An OAuth key's per-minute bucket (configured `limits`): reported with the unified
    /// headers, as every answer to an OAuth key is.
    PerMinute(Box<Exceeded>, Report),
}

impl Refusal {
    pub(crate) fn into_response(self, request_id: &str) -> Response {
        match self {
            Refusal::Classic(exceeded) => exceeded.into_response(request_id),
            Refusal::Unified(rejected) => rejected.into_response(request_id),
            Refusal::PerMinute(exceeded, report) => {
                let mut response = exceeded.into_error_response(request_id);
                report.write_headers(response.headers_mut());
                response
            }
        }
    }
}

/// The organization id for requests without a known key.
pub(crate) const ANONYMOUS_ORGANIZATION: &str = "00000000-0000-4000-8000-000000000000";

/// A version-4-shaped UUID from an FNV-1a hash of `name`: stable across runs.
fn organization_id(name: &str) -> String {
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for byte in name.bytes() {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    let hex = format!("{hash:032x}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}
