-- Per-credential caps the operator sets (burst limit, daily quotas), the date prepaid credits
-- expire, and for OAuth credentials the sealed refresh token and the access token's expiry.
ALTER TABLE credentials ADD COLUMN rps INTEGER;
ALTER TABLE credentials ADD COLUMN daily_requests INTEGER;
ALTER TABLE credentials ADD COLUMN daily_tokens INTEGER;
ALTER TABLE credentials ADD COLUMN credits_expire_at INTEGER;
ALTER TABLE credentials ADD COLUMN refresh_sealed BLOB;
ALTER TABLE credentials ADD COLUMN token_expires_at INTEGER;
