//! Upstream credentials between the store (sealed rows) and the pool (usable specs): adding,
//! syncing the config file's keys, and opening secrets with the vault. Used by the server at
//! start-up and on refresh, and by the CLI.

pub mod csv;

use std::collections::{HashMap, HashSet};

use crate::config::{KeyConfig, OAuthGrant};
use crate::pool::Caps;
use crate::pool::{KeyPool, KeySpec, KeyView, PersistedState};
use crate::store::{self, KeyRow, KeyStateRow, Store};
use crate::types::{EpochMs, KeyId, KeyKind, Secret, mask_secret, now_ms};
use crate::vault::{self, Vault};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("credential {name:?} cannot be opened with this master key")]
    Sealed { name: String },
    #[error("credential {name:?} has an unknown kind {kind:?} in the store")]
    Kind { name: String, kind: String },
    /// A CSV file refused as a whole (`csv::import`).
    #[error(transparent)]
    Csv(#[from] csv::Error),
}

/// What is wrong with a name or group label, if anything. Names are shown everywhere (the
/// panel, logs, metrics, the audit log), so one that looks like a secret (a CSV with its
/// columns swapped) is refused rather than published.
pub fn label_problem(column: &str, value: &str, required: bool) -> Option<String> {
    let max = csv::MAX_NAME_CHARS;
    if value.is_empty() {
        required.then(|| format!("{column} is empty"))
    } else if value.chars().count() > max {
        Some(format!("{column} longer than {max} characters"))
    } else if value.chars().any(char::is_control) {
        Some(format!("{column} contains a control character"))
    } else if value.starts_with("sk-") {
        Some(format!("{column} looks like a secret (starts with sk-)"))
    } else {
        None
    }
}

/// What is wrong with a secret, if anything. It goes into an HTTP header as it is, so it must
/// be printable ASCII without spaces.
pub fn secret_problem(secret: &str) -> Option<String> {
    if secret.is_empty() {
        Some("secret is empty".into())
    } else if secret.len() > 4096 {
        Some("secret longer than 4096 characters".into())
    } else if secret.chars().any(char::is_whitespace) {
        Some("secret contains whitespace".into())
    } else if !secret.chars().all(|c| c.is_ascii_graphic()) {
        Some("secret contains a character that is not printable ASCII".into())
    } else {
        None
    }
}

/// A credential to add, as an operator describes it.
pub struct NewKey {
    pub name: String,
    pub secret: Secret<String>,
    pub kind: Option<KeyKind>,
    pub priority: u32,
    pub weight: u32,
    pub max_concurrent: Option<u32>,
    pub group: Option<String>,
    pub enabled: bool,
    /// Burst limit and daily quotas.
    pub caps: Caps,
    pub credits_expire_at: Option<EpochMs>,
    /// An OAuth credential's refresh token and its access token's expiry.
    pub oauth: Option<OAuthGrant>,
}

impl From<&KeyConfig> for NewKey {
    fn from(k: &KeyConfig) -> Self {
        Self {
            name: k.name.clone(),
            secret: k.secret.clone(),
            kind: Some(k.kind),
            priority: k.priority,
            weight: k.weight,
            max_concurrent: k.max_concurrent,
            group: k.group.clone(),
            enabled: k.enabled,
            caps: k.caps,
            credits_expire_at: k.credits_expire_at,
            oauth: k.oauth.clone(),
        }
    }
}

fn row(vault: &Vault, key: &NewKey, source: &str) -> KeyRow {
    let secret = key.secret.expose();
    KeyRow {
        id: store::new_id("key"),
        name: key.name.clone(),
        kind: key
            .kind
            .unwrap_or_else(|| KeyKind::detect(secret))
            .as_str()
            .to_owned(),
        secret_sealed: vault.seal(secret.as_bytes()),
        secret_hint: mask_secret(secret),
        priority: i64::from(key.priority),
        weight: i64::from(key.weight.max(1)),
        max_concurrent: key.max_concurrent.map(i64::from),
        group_label: key.group.clone(),
        enabled: key.enabled,
        source: source.to_owned(),
        created_at: now_ms(),
        rps: key.caps.rps.map(i64::from),
        daily_requests: key.caps.daily_requests.and_then(|n| i64::try_from(n).ok()),
        daily_tokens: key.caps.daily_tokens.and_then(|n| i64::try_from(n).ok()),
        credits_expire_at: key.credits_expire_at,
        refresh_sealed: key
            .oauth
            .as_ref()
            .map(|grant| vault.seal(grant.refresh_token.expose().as_bytes())),
        token_expires_at: key.oauth.as_ref().and_then(|grant| grant.expires_at),
    }
}

/// A row's caps as the pool takes them.
pub fn caps(row: &KeyRow) -> Caps {
    Caps {
        rps: row.rps.and_then(|n| u32::try_from(n).ok()),
        daily_requests: row.daily_requests.and_then(|n| u64::try_from(n).ok()),
        daily_tokens: row.daily_tokens.and_then(|n| u64::try_from(n).ok()),
    }
}

/// Adds a credential; `source` says where it came from ("cli", "admin", "import").
pub async fn add(
    store: &dyn Store,
    vault: &Vault,
    key: &NewKey,
    source: &str,
) -> Result<KeyRow, Error> {
    let row = row(vault, key, source);
    store.insert_key(&row).await?;
    Ok(row)
}

/// Makes the store's config-sourced credentials match the file: upserts those declared, removes
/// those no longer declared. Credentials added by the CLI are left alone.
pub async fn sync_config_keys(
    store: &dyn Store,
    vault: &Vault,
    keys: &[KeyConfig],
) -> Result<(), Error> {
    let declared: HashSet<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    let stored = store.keys().await?;
    for existing in &stored {
        if existing.source == "config" && !declared.contains(existing.name.as_str()) {
            store.delete_key(&existing.name).await?;
        }
    }
    for key in keys {
        let mut fresh = row(vault, &NewKey::from(key), "config");
        // The file's refresh token only seeds the grant: once refreshed, the stored tokens are
        // the newer ones, and the file's refresh token has been used up (reusing it would
        // revoke the whole token family).
        if let Some(existing) = stored
            .iter()
            .find(|r| r.name == key.name && r.refresh_sealed.is_some())
            && fresh.refresh_sealed.is_some()
        {
            fresh.secret_sealed = existing.secret_sealed.clone();
            fresh.secret_hint = existing.secret_hint.clone();
            fresh.refresh_sealed = existing.refresh_sealed.clone();
            fresh.token_expires_at = existing.token_expires_at;
        }
        store.upsert_key(&fresh).await?;
    }
    Ok(())
}

/// The row with a new secret sealed in (its kind given, or detected from the secret).
pub fn with_secret(
    vault: &Vault,
    row: &KeyRow,
    secret: &Secret<String>,
    kind: Option<KeyKind>,
) -> KeyRow {
    let secret = secret.expose();
    KeyRow {
        kind: kind
            .unwrap_or_else(|| KeyKind::detect(secret))
            .as_str()
            .to_owned(),
        secret_sealed: vault.seal(secret.as_bytes()),
        secret_hint: mask_secret(secret),
        ..row.clone()
    }
}

pub fn spec(vault: &Vault, row: &KeyRow) -> Result<KeySpec, Error> {
    let secret = vault
        .open_string(&row.secret_sealed)
        .map_err(|_| Error::Sealed {
            name: row.name.clone(),
        })?;
    let kind = KeyKind::parse(&row.kind).ok_or_else(|| Error::Kind {
        name: row.name.clone(),
        kind: row.kind.clone(),
    })?;
    Ok(KeySpec {
        id: KeyId::new(row.id.as_str()),
        name: row.name.clone(),
        kind,
        secret,
        priority: u32::try_from(row.priority).unwrap_or(0),
        weight: u32::try_from(row.weight).unwrap_or(1).max(1),
        max_concurrent: row.max_concurrent.and_then(|n| u32::try_from(n).ok()),
        group: row.group_label.clone(),
        enabled: row.enabled,
        caps: caps(row),
        credits_expire_at: row.credits_expire_at,
        token_expires_at: row.token_expires_at,
    })
}

pub async fn load_specs(store: &dyn Store, vault: &Vault) -> Result<Vec<KeySpec>, Error> {
    store.keys().await?.iter().map(|r| spec(vault, r)).collect()
}

pub fn persisted(row: KeyStateRow) -> PersistedState {
    PersistedState {
        key_id: KeyId::new(row.key_id),
        state: row.state,
        reason: row.reason,
        until: row.until,
        rate_strikes: u32::try_from(row.rate_strikes).unwrap_or(0),
        billing_strikes: u32::try_from(row.billing_strikes).unwrap_or(0),
        updated_at: row.updated_at,
    }
}

pub fn state_row(state: &PersistedState) -> KeyStateRow {
    KeyStateRow {
        key_id: state.key_id.to_string(),
        state: state.state.clone(),
        reason: state.reason.clone(),
        until: state.until,
        rate_strikes: i64::from(state.rate_strikes),
        billing_strikes: i64::from(state.billing_strikes),
        updated_at: state.updated_at,
    }
}

pub const MASTER_CHECK: &str = "master_key_check";

/// Proves the master key opens this store (or records it on a fresh store).
pub async fn verify_master_key(store: &dyn Store, vault: &Vault) -> Result<bool, store::Error> {
    match store.meta(MASTER_CHECK).await? {
        Some(token) => Ok(vault.verify_check_token(&token)),
        None => {
            store.set_meta(MASTER_CHECK, &vault.check_token()).await?;
            Ok(true)
        }
    }
}

pub use vault::MASTER_KEY_ENV;

/// Makes the pool match the store: adds, updates and removes keys changed elsewhere (the CLI,
/// an import). Health and counters of unchanged keys are kept.
pub async fn sync_pool(pool: &KeyPool, store: &dyn Store, vault: &Vault) -> Result<(), Error> {
    let now = now_ms();
    let rows = store.keys().await?;
    let mut wanted: HashMap<KeyId, KeySpec> = HashMap::new();
    for row in &rows {
        let spec = spec(vault, row)?;
        wanted.insert(spec.id.clone(), spec);
    }
    let current: HashMap<KeyId, KeyView> = pool
        .snapshot(now)
        .into_iter()
        .map(|v| (v.id.clone(), v))
        .collect();
    for id in current.keys() {
        if !wanted.contains_key(id) {
            pool.remove_key(id);
        }
    }
    for (id, spec) in wanted {
        match current.get(&id) {
            None => pool.upsert_key(spec, now),
            Some(view) => {
                if view.enabled != spec.enabled {
                    pool.set_enabled(&id, spec.enabled, now);
                }
                let tuned = (view.priority, view.weight, view.max_concurrent, &view.group);
                let limits = (view.caps, view.credits_expire_at);
                if tuned != (spec.priority, spec.weight, spec.max_concurrent, &spec.group)
                    || limits != (spec.caps, spec.credits_expire_at)
                {
                    pool.upsert_key(spec, now);
                }
            }
        }
    }
    Ok(())
}
