-- The operator's surface: notes on clients and the audit log of every admin action.
ALTER TABLE clients ADD COLUMN notes TEXT;

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    -- Who acted: "admin" (the token), "session …" (the panel), "cli".
    actor  TEXT NOT NULL,
    -- What was done, e.g. "credential.disable".
    action TEXT NOT NULL,
    -- What it was done to (a credential or client name), if anything.
    target TEXT,
    -- A JSON object with the particulars; never a secret.
    detail TEXT,
    remote TEXT
);
