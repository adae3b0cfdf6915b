-- Times are epoch milliseconds; secrets are sealed blobs; client keys are digests.
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE credentials (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    kind           TEXT NOT NULL,
    secret_sealed  BLOB NOT NULL,
    secret_hint    TEXT NOT NULL,
    priority       INTEGER NOT NULL DEFAULT 0,
    weight         INTEGER NOT NULL DEFAULT 1,
    max_concurrent INTEGER,
    group_label    TEXT,
    enabled        INTEGER NOT NULL DEFAULT 1,
    source         TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);

CREATE TABLE credential_state (
    key_id          TEXT PRIMARY KEY REFERENCES credentials(id) ON DELETE CASCADE,
    state           TEXT NOT NULL,
    reason          TEXT,
    until           INTEGER,
    rate_strikes    INTEGER NOT NULL DEFAULT 0,
    billing_strikes INTEGER NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE credential_transitions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id     TEXT NOT NULL,
    at         INTEGER NOT NULL,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    reason     TEXT NOT NULL,
    until      INTEGER
);
CREATE INDEX credential_transitions_key ON credential_transitions(key_id, at);

CREATE TABLE clients (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    key_digest TEXT NOT NULL UNIQUE,
    key_hint   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE batches (
    id         TEXT PRIMARY KEY,
    key_id     TEXT NOT NULL,
    client_id  TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX batches_client ON batches(client_id, created_at);
