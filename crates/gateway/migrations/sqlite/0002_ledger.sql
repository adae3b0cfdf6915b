-- The usage ledger: one row per finished request, plus per-minute and per-hour roll-ups that the
-- batch writer folds in, in the same transaction. Times are epoch milliseconds, money integer
-- nano-dollars, tokens integers.

CREATE TABLE usage_records (
    id                    INTEGER PRIMARY KEY,
    -- Unique: appending a record whose request_id is already stored is a no-op, so a batch whose
    -- fate the writer does not know can be appended again without counting anything twice.
    request_id            TEXT NOT NULL UNIQUE,
    at                    INTEGER NOT NULL,
    client_id             TEXT,
    client_name           TEXT,
    attributed            TEXT,
    key_id                TEXT,
    key_name              TEXT,
    provider              TEXT NOT NULL,
    route                 TEXT NOT NULL,
    requested_model       TEXT,
    served_model          TEXT,
    status                INTEGER NOT NULL,
    outcome               TEXT NOT NULL,
    last_class            TEXT,
    -- Failed attempts as compact JSON `[[key_id, key_name, class], …]`; NULL when there were none.
    attempts              TEXT,
    input_tokens          INTEGER NOT NULL,
    output_tokens         INTEGER NOT NULL,
    cache_read_tokens     INTEGER NOT NULL,
    cache_write_tokens    INTEGER NOT NULL,
    cache_write_5m_tokens INTEGER NOT NULL,
    cache_write_1h_tokens INTEGER NOT NULL,
    -- NULL when the model has no price: unknown, never zero.
    cost_nanos            INTEGER,
    latency_ms            INTEGER NOT NULL,
    ttft_ms               INTEGER,
    streamed              INTEGER NOT NULL,
    stop_reason           TEXT,
    batch                 INTEGER NOT NULL
);
-- The request log reads newest first, keyset-paged on (at, request_id); each filter has an index
-- in that order so a page is a short index walk, never a sort.
CREATE INDEX usage_records_at ON usage_records(at, request_id);
CREATE INDEX usage_records_client ON usage_records(client_id, at, request_id);
CREATE INDEX usage_records_key ON usage_records(key_id, at, request_id);
CREATE INDEX usage_records_served ON usage_records(served_model, at, request_id);
CREATE INDEX usage_records_requested ON usage_records(requested_model, at, request_id);
CREATE INDEX usage_records_outcome ON usage_records(outcome, at, request_id);

-- The roll-ups, one table per bucket width, kept per dimension: every request adds to exactly
-- one row per dimension per bucket, the row (dim, bucket_start, value) with
--   dim 'all'    value ''               (every request)
--   dim 'model'  value the served model, else the requested model, else ''
--   dim 'key'    value key_id, else ''
--   dim 'client' value client_id, else ''
-- So a bucket holds 1 + models + credentials + clients rows, whatever the combinations, and a
-- query grouped by one dimension reads only that dimension's rows. There is no cross-dimension
-- breakdown (model × client): that is the request log's job. One table per width, not one per
-- dimension: the dimensions share the 45 counters, so one UPSERT per table per batch, one read
-- path and one purge serve all four, for a few bytes of `dim` a row.
--
-- WITHOUT ROWID, clustered on (dim, bucket_start, value): the rows of one dimension over a time
-- range are one contiguous range of the table, already in series order (bucket, then value).
-- The counters sit in the rows, so a read needs no second lookup.
--
-- Latency and TTFT histograms: non-cumulative counts of values <= 50, 100, 250, 500, 1000,
-- 2500, 5000, 10000, 30000, 60000 ms and above (inf), plus the sum in ms.
CREATE TABLE usage_minute (
    dim                          TEXT NOT NULL CHECK (dim IN ('all', 'model', 'key', 'client')),
    bucket_start                 INTEGER NOT NULL,
    value                        TEXT NOT NULL,
    requests                     INTEGER NOT NULL,
    outcome_success              INTEGER NOT NULL,
    outcome_client_error         INTEGER NOT NULL,
    outcome_upstream_error       INTEGER NOT NULL,
    outcome_no_credential        INTEGER NOT NULL,
    outcome_client_cancelled     INTEGER NOT NULL,
    outcome_stream_cut           INTEGER NOT NULL,
    failed_rate_limited          INTEGER NOT NULL,
    failed_overloaded            INTEGER NOT NULL,
    failed_server_error          INTEGER NOT NULL,
    failed_timeout               INTEGER NOT NULL,
    failed_connect_error         INTEGER NOT NULL,
    failed_invalid_credential    INTEGER NOT NULL,
    failed_billing_exhausted     INTEGER NOT NULL,
    input_tokens                 INTEGER NOT NULL,
    output_tokens                INTEGER NOT NULL,
    cache_read_tokens            INTEGER NOT NULL,
    cache_write_5m_tokens        INTEGER NOT NULL,
    cache_write_1h_tokens        INTEGER NOT NULL,
    cost_nanos                   INTEGER NOT NULL,
    unpriced_requests            INTEGER NOT NULL,
    latency_le_50                INTEGER NOT NULL,
    latency_le_100               INTEGER NOT NULL,
    latency_le_250               INTEGER NOT NULL,
    latency_le_500               INTEGER NOT NULL,
    latency_le_1000              INTEGER NOT NULL,
    latency_le_2500              INTEGER NOT NULL,
    latency_le_5000              INTEGER NOT NULL,
    latency_le_10000             INTEGER NOT NULL,
    latency_le_30000             INTEGER NOT NULL,
    latency_le_60000             INTEGER NOT NULL,
    latency_le_inf               INTEGER NOT NULL,
    latency_sum_ms               INTEGER NOT NULL,
    ttft_le_50                   INTEGER NOT NULL,
    ttft_le_100                  INTEGER NOT NULL,
    ttft_le_250                  INTEGER NOT NULL,
    ttft_le_500                  INTEGER NOT NULL,
    ttft_le_1000                 INTEGER NOT NULL,
    ttft_le_2500                 INTEGER NOT NULL,
    ttft_le_5000                 INTEGER NOT NULL,
    ttft_le_10000                INTEGER NOT NULL,
    ttft_le_30000                INTEGER NOT NULL,
    ttft_le_60000                INTEGER NOT NULL,
    ttft_le_inf                  INTEGER NOT NULL,
    ttft_sum_ms                  INTEGER NOT NULL,
    PRIMARY KEY (dim, bucket_start, value)
) WITHOUT ROWID;

CREATE TABLE usage_hour (
    dim                          TEXT NOT NULL CHECK (dim IN ('all', 'model', 'key', 'client')),
    bucket_start                 INTEGER NOT NULL,
    value                        TEXT NOT NULL,
    requests                     INTEGER NOT NULL,
    outcome_success              INTEGER NOT NULL,
    outcome_client_error         INTEGER NOT NULL,
    outcome_upstream_error       INTEGER NOT NULL,
    outcome_no_credential        INTEGER NOT NULL,
    outcome_client_cancelled     INTEGER NOT NULL,
    outcome_stream_cut           INTEGER NOT NULL,
    failed_rate_limited          INTEGER NOT NULL,
    failed_overloaded            INTEGER NOT NULL,
    failed_server_error          INTEGER NOT NULL,
    failed_timeout               INTEGER NOT NULL,
    failed_connect_error         INTEGER NOT NULL,
    failed_invalid_credential    INTEGER NOT NULL,
    failed_billing_exhausted     INTEGER NOT NULL,
    input_tokens                 INTEGER NOT NULL,
    output_tokens                INTEGER NOT NULL,
    cache_read_tokens            INTEGER NOT NULL,
    cache_write_5m_tokens        INTEGER NOT NULL,
    cache_write_1h_tokens        INTEGER NOT NULL,
    cost_nanos                   INTEGER NOT NULL,
    unpriced_requests            INTEGER NOT NULL,
    latency_le_50                INTEGER NOT NULL,
    latency_le_100               INTEGER NOT NULL,
    latency_le_250               INTEGER NOT NULL,
    latency_le_500               INTEGER NOT NULL,
    latency_le_1000              INTEGER NOT NULL,
    latency_le_2500              INTEGER NOT NULL,
    latency_le_5000              INTEGER NOT NULL,
    latency_le_10000             INTEGER NOT NULL,
    latency_le_30000             INTEGER NOT NULL,
    latency_le_60000             INTEGER NOT NULL,
    latency_le_inf               INTEGER NOT NULL,
    latency_sum_ms               INTEGER NOT NULL,
    ttft_le_50                   INTEGER NOT NULL,
    ttft_le_100                  INTEGER NOT NULL,
    ttft_le_250                  INTEGER NOT NULL,
    ttft_le_500                  INTEGER NOT NULL,
    ttft_le_1000                 INTEGER NOT NULL,
    ttft_le_2500                 INTEGER NOT NULL,
    ttft_le_5000                 INTEGER NOT NULL,
    ttft_le_10000                INTEGER NOT NULL,
    ttft_le_30000                INTEGER NOT NULL,
    ttft_le_60000                INTEGER NOT NULL,
    ttft_le_inf                  INTEGER NOT NULL,
    ttft_sum_ms                  INTEGER NOT NULL,
    PRIMARY KEY (dim, bucket_start, value)
) WITHOUT ROWID;

-- The latest name seen for a credential or client id ('key' | 'client'), so roll-ups grouped by
-- id can show a name even after the credential or client is gone.
CREATE TABLE usage_names (
    dim  TEXT NOT NULL,
    id   TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (dim, id)
) WITHOUT ROWID;
