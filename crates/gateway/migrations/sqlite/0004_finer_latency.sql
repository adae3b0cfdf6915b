-- Finer latency and TTFT buckets below 50 ms (<= 5, 10, 25 ms): a gateway's own answers and
-- cached or local upstreams are that fast, and interpolating inside 0-50 ms misreports them.
-- Rows written before this keep their counts in the <= 50 ms bucket (25-50 ms from now on).
ALTER TABLE usage_minute ADD COLUMN latency_le_5 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_minute ADD COLUMN latency_le_10 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_minute ADD COLUMN latency_le_25 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_minute ADD COLUMN ttft_le_5 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_minute ADD COLUMN ttft_le_10 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_minute ADD COLUMN ttft_le_25 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hour ADD COLUMN latency_le_5 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hour ADD COLUMN latency_le_10 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hour ADD COLUMN latency_le_25 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hour ADD COLUMN ttft_le_5 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hour ADD COLUMN ttft_le_10 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hour ADD COLUMN ttft_le_25 INTEGER NOT NULL DEFAULT 0;
