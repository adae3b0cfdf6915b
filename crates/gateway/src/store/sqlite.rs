//! The embedded store: one SQLite file in WAL mode. Writes are few here (admin actions and
//! credential transitions), so one pool serves reads and writes; every write transaction
//! starts `IMMEDIATE` so a read→write upgrade never fails with SQLITE_BUSY. The usage ledger
//! writes through a connection of its own ([`SqliteStore::ledger_writer`]).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use super::{
    AuditEntry, BatchPage, BatchRow, ClientEdit, ClientRow, Error, KeyRow, KeyStateRow, Result,
    Store, TransitionRow,
};
use crate::types::EpochMs;

pub struct SqliteStore {
    /// Shared with the usage ledger's reads (`open_sqlite`).
    pub(super) pool: SqlitePool,
    path: PathBuf,
}

fn connect_options(path: &Path) -> Result<SqliteConnectOptions> {
    Ok(SqliteConnectOptions::from_str("sqlite://")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true))
}

impl SqliteStore {
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::Database(sqlx::Error::Io(e)))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(3)
            .connect_with(connect_options(path)?)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self {
            pool,
            path: path.to_owned(),
        })
    }

    /// A pool of one connection for the usage ledger's batches. SQLite keeps each prepared
    /// statement per connection, and a multi-row INSERT compiles to a program of about 2 KB a
    /// row: in the shared pool, every connection in turn compiled and kept its own copies of
    /// each batch shape; on one connection they are kept once. SQLite serialises writes anyway,
    /// so the ledger loses no concurrency.
    pub async fn ledger_writer(&self) -> Result<SqlitePool> {
        Ok(SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(connect_options(&self.path)?)
            .await?)
    }

    async fn write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

const KEY_COLUMNS: &str = "id, name, kind, secret_sealed, secret_hint, priority, weight, \
     max_concurrent, group_label, enabled, source, created_at, rps, daily_requests, daily_tokens, \
     credits_expire_at, refresh_sealed, token_expires_at";

fn key_row(row: &SqliteRow) -> KeyRow {
    KeyRow {
        id: row.get("id"),
        name: row.get("name"),
        kind: row.get("kind"),
        secret_sealed: row.get("secret_sealed"),
        secret_hint: row.get("secret_hint"),
        priority: row.get("priority"),
        weight: row.get("weight"),
        max_concurrent: row.get("max_concurrent"),
        group_label: row.get("group_label"),
        enabled: row.get("enabled"),
        source: row.get("source"),
        created_at: row.get("created_at"),
        rps: row.get("rps"),
        daily_requests: row.get("daily_requests"),
        daily_tokens: row.get("daily_tokens"),
        credits_expire_at: row.get("credits_expire_at"),
        refresh_sealed: row.get("refresh_sealed"),
        token_expires_at: row.get("token_expires_at"),
    }
}

fn client_row(row: &SqliteRow) -> ClientRow {
    ClientRow {
        id: row.get("id"),
        name: row.get("name"),
        key_digest: row.get("key_digest"),
        key_hint: row.get("key_hint"),
        created_at: row.get("created_at"),
        revoked_at: row.get("revoked_at"),
        notes: row.get("notes"),
    }
}

const CLIENT_COLUMNS: &str = "id, name, key_digest, key_hint, created_at, revoked_at, notes";

fn duplicate_key(name: &str) -> impl Fn(Error) -> Error + '_ {
    move |e| match e {
        Error::Database(ref db) if is_unique_violation(db) => Error::Duplicate {
            what: "key",
            name: name.to_owned(),
        },
        other => other,
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT value FROM meta WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get("value")))
    }

    async fn set_meta(&self, name: &str, value: &[u8]) -> Result<()> {
        sqlx::query(
            "INSERT INTO meta (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn keys(&self) -> Result<Vec<KeyRow>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM credentials ORDER BY created_at, name");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(key_row).collect())
    }

    async fn upsert_key(&self, row: &KeyRow) -> Result<KeyRow> {
        let mut tx = self.write().await?;
        let existing = sqlx::query("SELECT id, created_at FROM credentials WHERE name = $1")
            .bind(&row.name)
            .fetch_optional(&mut *tx)
            .await?;
        let mut stored = row.clone();
        if let Some(existing) = existing {
            stored.id = existing.get("id");
            stored.created_at = existing.get("created_at");
            sqlx::query(
                "UPDATE credentials SET kind = $2, secret_sealed = $3, secret_hint = $4, \
                 priority = $5, weight = $6, max_concurrent = $7, group_label = $8, \
                 enabled = $9, source = $10, rps = $11, daily_requests = $12, \
                 daily_tokens = $13, credits_expire_at = $14, refresh_sealed = $15, \
                 token_expires_at = $16 WHERE id = $1",
            )
            .bind(&stored.id)
            .bind(&stored.kind)
            .bind(&stored.secret_sealed)
            .bind(&stored.secret_hint)
            .bind(stored.priority)
            .bind(stored.weight)
            .bind(stored.max_concurrent)
            .bind(&stored.group_label)
            .bind(stored.enabled)
            .bind(&stored.source)
            .bind(stored.rps)
            .bind(stored.daily_requests)
            .bind(stored.daily_tokens)
            .bind(stored.credits_expire_at)
            .bind(&stored.refresh_sealed)
            .bind(stored.token_expires_at)
            .execute(&mut *tx)
            .await?;
        } else {
            insert_key_in(&mut tx, &stored).await?;
        }
        tx.commit().await?;
        Ok(stored)
    }

    async fn insert_key(&self, row: &KeyRow) -> Result<()> {
        self.insert_keys(std::slice::from_ref(row)).await
    }

    async fn insert_keys(&self, rows: &[KeyRow]) -> Result<()> {
        let mut tx = self.write().await?;
        for row in rows {
            insert_key_in(&mut tx, row)
                .await
                .map_err(duplicate_key(&row.name))?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn update_key(&self, row: &KeyRow) -> Result<KeyRow> {
        // $10 (enabled) is bound but not written: the switch has its own statement, so an edit
        // made from a stale read cannot switch a credential back on.
        let sql = format!(
            "UPDATE credentials SET name = $2, kind = $3, secret_sealed = $4, secret_hint = $5, \
             priority = $6, weight = $7, max_concurrent = $8, group_label = $9, rps = $11, \
             daily_requests = $12, daily_tokens = $13, credits_expire_at = $14, \
             refresh_sealed = $15, token_expires_at = $16 \
             WHERE id = $1 AND $10 IS NOT NULL RETURNING {KEY_COLUMNS}"
        );
        let updated = bind_extras(bind_key(sqlx::query(&sql), row), row)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| duplicate_key(&row.name)(e.into()))?;
        updated
            .as_ref()
            .map(key_row)
            .ok_or_else(|| Error::NotFound {
                what: "key",
                name: row.id.clone(),
            })
    }

    async fn delete_key(&self, name: &str) -> Result<KeyRow> {
        let sql = format!("DELETE FROM credentials WHERE name = $1 RETURNING {KEY_COLUMNS}");
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_row).ok_or_else(|| Error::NotFound {
            what: "key",
            name: name.to_owned(),
        })
    }

    async fn set_key_enabled(&self, name: &str, enabled: bool) -> Result<KeyRow> {
        let sql =
            format!("UPDATE credentials SET enabled = $2 WHERE name = $1 RETURNING {KEY_COLUMNS}");
        let row = sqlx::query(&sql)
            .bind(name)
            .bind(enabled)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_row).ok_or_else(|| Error::NotFound {
            what: "key",
            name: name.to_owned(),
        })
    }

    async fn key_states(&self) -> Result<Vec<KeyStateRow>> {
        let rows = sqlx::query(
            "SELECT key_id, state, reason, until, rate_strikes, billing_strikes, updated_at \
             FROM credential_state",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| KeyStateRow {
                key_id: r.get("key_id"),
                state: r.get("state"),
                reason: r.get("reason"),
                until: r.get("until"),
                rate_strikes: r.get("rate_strikes"),
                billing_strikes: r.get("billing_strikes"),
                updated_at: r.get("updated_at"),
            })
            .collect())
    }

    async fn record_transition(
        &self,
        state: &KeyStateRow,
        transition: &TransitionRow,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let known = upsert_state_in(&mut tx, state).await?;
        if known {
            sqlx::query(
                "INSERT INTO credential_transitions (key_id, at, from_state, to_state, reason, until) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&transition.key_id)
            .bind(transition.at)
            .bind(&transition.from_state)
            .bind(&transition.to_state)
            .bind(&transition.reason)
            .bind(transition.until)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn save_key_state(&self, state: &KeyStateRow) -> Result<()> {
        let mut tx = self.write().await?;
        upsert_state_in(&mut tx, state).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn transitions(&self, key_id: &str, limit: i64) -> Result<Vec<TransitionRow>> {
        let rows = sqlx::query(
            "SELECT key_id, at, from_state, to_state, reason, until FROM credential_transitions \
             WHERE key_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(key_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| TransitionRow {
                key_id: r.get("key_id"),
                at: r.get("at"),
                from_state: r.get("from_state"),
                to_state: r.get("to_state"),
                reason: r.get("reason"),
                until: r.get("until"),
            })
            .collect())
    }

    async fn insert_client(&self, row: &ClientRow) -> Result<()> {
        let result = sqlx::query(
            "INSERT INTO clients (id, name, key_digest, key_hint, created_at, revoked_at, notes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.key_digest)
        .bind(&row.key_hint)
        .bind(row.created_at)
        .bind(row.revoked_at)
        .bind(&row.notes)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::Duplicate {
                what: "client",
                name: row.name.clone(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    async fn clients(&self) -> Result<Vec<ClientRow>> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients ORDER BY created_at, name");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(client_row).collect())
    }

    async fn client_by_digest(&self, digest: &str) -> Result<Option<ClientRow>> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE key_digest = $1");
        let row = sqlx::query(&sql)
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(client_row))
    }

    async fn revoke_client(&self, name: &str, at: EpochMs) -> Result<ClientRow> {
        let sql = format!(
            "UPDATE clients SET revoked_at = COALESCE(revoked_at, $2) WHERE name = $1 \
             RETURNING {CLIENT_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(name)
            .bind(at)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(client_row).ok_or_else(|| Error::NotFound {
            what: "client",
            name: name.to_owned(),
        })
    }

    async fn edit_client(&self, id: &str, edit: &ClientEdit) -> Result<ClientRow> {
        let sql = format!(
            "UPDATE clients SET name = COALESCE($2, name), \
             notes = CASE WHEN $3 THEN $4 ELSE notes END \
             WHERE id = $1 RETURNING {CLIENT_COLUMNS}"
        );
        let result = sqlx::query(&sql)
            .bind(id)
            .bind(&edit.name)
            .bind(edit.notes.is_some())
            .bind(edit.notes.clone().flatten())
            .fetch_optional(&self.pool)
            .await;
        match result {
            Ok(row) => row.as_ref().map(client_row).ok_or_else(|| Error::NotFound {
                what: "client",
                name: id.to_owned(),
            }),
            Err(e) if is_unique_violation(&e) => Err(Error::Duplicate {
                what: "client",
                name: edit.name.clone().unwrap_or_default(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, target, detail, remote) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(entry.at)
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.detail)
        .bind(&entry.remote)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn audit_page(&self, limit: i64, before_id: Option<i64>) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target, detail, remote FROM audit_log \
             WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(before_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                id: r.get("id"),
                at: r.get("at"),
                actor: r.get("actor"),
                action: r.get("action"),
                target: r.get("target"),
                detail: r.get("detail"),
                remote: r.get("remote"),
            })
            .collect())
    }

    async fn insert_batch(&self, row: &BatchRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO batches (id, key_id, client_id, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&row.id)
        .bind(&row.key_id)
        .bind(&row.client_id)
        .bind(row.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn batch(&self, id: &str) -> Result<Option<BatchRow>> {
        let row =
            sqlx::query("SELECT id, key_id, client_id, created_at FROM batches WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.as_ref().map(batch_row))
    }

    async fn delete_batch(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM batches WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn batches_page(&self, page: &BatchPage<'_>) -> Result<Vec<BatchRow>> {
        const OWNER: &str = "($1 IS NULL OR client_id = $1)";
        let rows = if let Some(before) = page.before_id {
            let sql = format!(
                "SELECT id, key_id, client_id, created_at FROM batches WHERE {OWNER} AND \
                 (created_at, id) > (SELECT created_at, id FROM batches WHERE id = $2) \
                 ORDER BY created_at ASC, id ASC LIMIT $3"
            );
            let mut rows = sqlx::query(&sql)
                .bind(page.client_id)
                .bind(before)
                .bind(page.limit)
                .fetch_all(&self.pool)
                .await?;
            rows.reverse();
            rows
        } else if let Some(after) = page.after_id {
            let sql = format!(
                "SELECT id, key_id, client_id, created_at FROM batches WHERE {OWNER} AND \
                 (created_at, id) < (SELECT created_at, id FROM batches WHERE id = $2) \
                 ORDER BY created_at DESC, id DESC LIMIT $3"
            );
            sqlx::query(&sql)
                .bind(page.client_id)
                .bind(after)
                .bind(page.limit)
                .fetch_all(&self.pool)
                .await?
        } else {
            let sql = format!(
                "SELECT id, key_id, client_id, created_at FROM batches WHERE {OWNER} \
                 ORDER BY created_at DESC, id DESC LIMIT $2"
            );
            sqlx::query(&sql)
                .bind(page.client_id)
                .bind(page.limit)
                .fetch_all(&self.pool)
                .await?
        };
        Ok(rows.iter().map(batch_row).collect())
    }
}

fn batch_row(r: &SqliteRow) -> BatchRow {
    BatchRow {
        id: r.get("id"),
        key_id: r.get("key_id"),
        client_id: r.get("client_id"),
        created_at: r.get("created_at"),
    }
}

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// Binds $1..$10 to the key's columns in `KEY_COLUMNS` order, up to `enabled`.
fn bind_key<'q>(query: SqliteQuery<'q>, row: &'q KeyRow) -> SqliteQuery<'q> {
    query
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.kind)
        .bind(&row.secret_sealed)
        .bind(&row.secret_hint)
        .bind(row.priority)
        .bind(row.weight)
        .bind(row.max_concurrent)
        .bind(&row.group_label)
        .bind(row.enabled)
}

/// Binds $11..$16 to the caps and OAuth columns, after [`bind_key`].
fn bind_extras<'q>(query: SqliteQuery<'q>, row: &'q KeyRow) -> SqliteQuery<'q> {
    query
        .bind(row.rps)
        .bind(row.daily_requests)
        .bind(row.daily_tokens)
        .bind(row.credits_expire_at)
        .bind(&row.refresh_sealed)
        .bind(row.token_expires_at)
}

async fn insert_key_in(tx: &mut Transaction<'static, Sqlite>, row: &KeyRow) -> Result<()> {
    bind_extras(
        bind_key(
            sqlx::query(
                "INSERT INTO credentials (id, name, kind, secret_sealed, secret_hint, priority, \
                 weight, max_concurrent, group_label, enabled, rps, daily_requests, daily_tokens, \
                 credits_expire_at, refresh_sealed, token_expires_at, source, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                 $17, $18)",
            ),
            row,
        ),
        row,
    )
    .bind(&row.source)
    .bind(row.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Returns false when the credential no longer exists (removed while a transition was queued).
async fn upsert_state_in(tx: &mut Transaction<'static, Sqlite>, s: &KeyStateRow) -> Result<bool> {
    let exists = sqlx::query("SELECT 1 FROM credentials WHERE id = $1")
        .bind(&s.key_id)
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
    if !exists {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO credential_state (key_id, state, reason, until, rate_strikes, billing_strikes, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (key_id) DO UPDATE SET state = excluded.state, reason = excluded.reason, \
         until = excluded.until, rate_strikes = excluded.rate_strikes, \
         billing_strikes = excluded.billing_strikes, updated_at = excluded.updated_at",
    )
    .bind(&s.key_id)
    .bind(&s.state)
    .bind(&s.reason)
    .bind(s.until)
    .bind(s.rate_strikes)
    .bind(s.billing_strikes)
    .bind(s.updated_at)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}
