-- What a record's cost was scaled by besides its model and client: fast mode (the request's
-- `speed`) and US-only inference (the answer's `usage.inference_geo`). NULL for the usual case
-- (standard speed; no region reported), so older rows read as what they were priced as and a
-- new row pays for the columns only when it uses them.
ALTER TABLE usage_records ADD COLUMN speed TEXT;
ALTER TABLE usage_records ADD COLUMN inference_geo TEXT;
