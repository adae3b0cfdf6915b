-- The request log's indexes end in the row's id (SQLite appends the rowid to every index entry)
-- instead of repeating its 27-byte request_id: the log pages in (at, id) order. Each of the six
-- entries a record adds shrinks by about 30 bytes, and an insert compares integers, not text.
-- Rebuilding the indexes reads the table once: on a large ledger the first start after an
-- upgrade takes some seconds here.
DROP INDEX usage_records_at;
DROP INDEX usage_records_client;
DROP INDEX usage_records_key;
DROP INDEX usage_records_served;
DROP INDEX usage_records_requested;
DROP INDEX usage_records_outcome;
CREATE INDEX usage_records_at ON usage_records(at);
CREATE INDEX usage_records_client ON usage_records(client_id, at);
CREATE INDEX usage_records_key ON usage_records(key_id, at);
CREATE INDEX usage_records_served ON usage_records(served_model, at);
CREATE INDEX usage_records_requested ON usage_records(requested_model, at);
CREATE INDEX usage_records_outcome ON usage_records(outcome, at);
