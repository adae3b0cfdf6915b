//! Durable state behind two narrow traits: `Store` for credentials (sealed), their health,
//! clients (digests) and batch → credential affinity; `Ledger` for usage — the request log and
//! its minute and hour roll-ups (`ledger.rs`). It stores what it is given and holds no business
//! rules. Only `app` (and the CLI) choose a backend, through `connect_sqlite` / `open_sqlite`.

mod ledger;
#[cfg(test)]
mod ledger_tests;
mod sqlite;
mod sqlite_ledger;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use crate::types::EpochMs;

pub use ledger::{
    Bucket, FAILURE_CLASSES, GroupBy, HISTOGRAM_BUCKETS, HOUR_MS, Histogram, LATENCY_BOUNDS_MS,
    Ledger, LogFilter, MINUTE_MS, Purged, Retention, RollupQuery, RollupRow, UsageRow,
};
/// The ledger writer's in-memory encoding of a batch, for `benches/ledger_encode.rs`; not an API.
#[doc(hidden)]
pub use sqlite_ledger::bench;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{what} {name:?} already exists")]
    Duplicate { what: &'static str, name: String },
    #[error("no {what} named {name:?}")]
    NotFound { what: &'static str, name: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// An upstream credential as stored; the secret stays sealed here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub secret_sealed: Vec<u8>,
    /// The masked form, kept so listings never need the master key.
    pub secret_hint: String,
    pub priority: i64,
    pub weight: i64,
    pub max_concurrent: Option<i64>,
    pub group_label: Option<String>,
    pub enabled: bool,
    /// `config` or `cli`: config-declared keys are re-synced from the file at start-up.
    pub source: String,
    pub created_at: EpochMs,
    /// Requests per second (burst limit); None for no cap.
    pub rps: Option<i64>,
    /// Requests per UTC day; None for no quota.
    pub daily_requests: Option<i64>,
    /// Tokens per UTC day; None for no quota.
    pub daily_tokens: Option<i64>,
    /// When the credential's prepaid credits expire.
    pub credits_expire_at: Option<EpochMs>,
    /// An OAuth credential's refresh token, sealed like the secret.
    pub refresh_sealed: Option<Vec<u8>>,
    /// When an OAuth credential's access token (the secret) expires.
    pub token_expires_at: Option<EpochMs>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStateRow {
    pub key_id: String,
    pub state: String,
    pub reason: Option<String>,
    pub until: Option<EpochMs>,
    pub rate_strikes: i64,
    pub billing_strikes: i64,
    pub updated_at: EpochMs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRow {
    pub key_id: String,
    pub at: EpochMs,
    pub from_state: String,
    pub to_state: String,
    pub reason: String,
    pub until: Option<EpochMs>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRow {
    pub id: String,
    pub name: String,
    pub key_digest: String,
    pub key_hint: String,
    pub created_at: EpochMs,
    pub revoked_at: Option<EpochMs>,
    pub notes: Option<String>,
}

/// What an operator may change about a client; None leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientEdit {
    pub name: Option<String>,
    /// `Some(None)` clears the notes.
    pub notes: Option<Option<String>>,
}

/// One admin action, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Assigned by the store; ignored on append.
    pub id: i64,
    pub at: EpochMs,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    /// A JSON object; never a secret.
    pub detail: Option<String>,
    pub remote: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRow {
    pub id: String,
    pub key_id: String,
    pub client_id: Option<String>,
    pub created_at: EpochMs,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn ping(&self) -> Result<()>;

    async fn meta(&self, name: &str) -> Result<Option<Vec<u8>>>;
    async fn set_meta(&self, name: &str, value: &[u8]) -> Result<()>;

    async fn keys(&self) -> Result<Vec<KeyRow>>;
    /// Inserts, or replaces the row with the same name (keeping its id).
    async fn upsert_key(&self, row: &KeyRow) -> Result<KeyRow>;
    async fn insert_key(&self, row: &KeyRow) -> Result<()>;
    /// Inserts all the rows in one transaction, or none of them (the first name already taken
    /// is reported as `Duplicate`).
    async fn insert_keys(&self, rows: &[KeyRow]) -> Result<()>;
    /// Replaces the row with the same id (name, secret, tuning); `enabled`, `source` and
    /// `created_at` are kept (`set_key_enabled` switches).
    async fn update_key(&self, row: &KeyRow) -> Result<KeyRow>;
    async fn delete_key(&self, name: &str) -> Result<KeyRow>;
    async fn set_key_enabled(&self, name: &str, enabled: bool) -> Result<KeyRow>;

    async fn key_states(&self) -> Result<Vec<KeyStateRow>>;
    /// Saves a credential's current state and appends the transition that led to it, atomically.
    async fn record_transition(
        &self,
        state: &KeyStateRow,
        transition: &TransitionRow,
    ) -> Result<()>;
    async fn save_key_state(&self, state: &KeyStateRow) -> Result<()>;
    async fn transitions(&self, key_id: &str, limit: i64) -> Result<Vec<TransitionRow>>;

    async fn insert_client(&self, row: &ClientRow) -> Result<()>;
    async fn clients(&self) -> Result<Vec<ClientRow>>;
    async fn client_by_digest(&self, digest: &str) -> Result<Option<ClientRow>>;
    async fn revoke_client(&self, name: &str, at: EpochMs) -> Result<ClientRow>;
    async fn edit_client(&self, id: &str, edit: &ClientEdit) -> Result<ClientRow>;

    async fn append_audit(&self, entry: &AuditEntry) -> Result<()>;
    /// Newest first; `before_id` pages to older entries.
    async fn audit_page(&self, limit: i64, before_id: Option<i64>) -> Result<Vec<AuditEntry>>;

    async fn insert_batch(&self, row: &BatchRow) -> Result<()>;
    async fn batch(&self, id: &str) -> Result<Option<BatchRow>>;
    async fn delete_batch(&self, id: &str) -> Result<()>;
    /// A page of batches, newest first; `after_id` pages to older ones, `before_id` to newer.
    async fn batches_page(&self, page: &BatchPage<'_>) -> Result<Vec<BatchRow>>;
}

/// Which batches to list: one client's (or all when `client_id` is None), Anthropic-style cursors.
pub struct BatchPage<'a> {
    pub client_id: Option<&'a str>,
    pub limit: i64,
    pub after_id: Option<&'a str>,
    pub before_id: Option<&'a str>,
}

/// Opens (creating if needed) the embedded SQLite store in `path` and runs its migrations.
pub async fn connect_sqlite(path: &Path) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(sqlite::SqliteStore::open(path).await?))
}

/// The store and the usage ledger over one database.
#[derive(Clone)]
pub struct Stores {
    pub store: Arc<dyn Store>,
    pub ledger: Arc<dyn Ledger>,
}

/// Opens (creating if needed) the embedded SQLite file in `path`, runs its migrations, and
/// returns both the store and the usage ledger on it.
pub async fn open_sqlite(path: &Path) -> Result<Stores> {
    let store = sqlite::SqliteStore::open(path).await?;
    let ledger = sqlite_ledger::SqliteLedger::new(store.pool.clone(), store.ledger_writer().await?);
    Ok(Stores {
        store: Arc::new(store),
        ledger: Arc::new(ledger),
    })
}

/// A fresh random id with a readable prefix, e.g. `key_3f9c2a718d4e4b57`.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    format!("{prefix}_{}", hex::encode(bytes))
}
