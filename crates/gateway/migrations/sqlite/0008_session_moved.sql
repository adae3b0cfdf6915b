-- A sticky session's turn that its pinned credential could not serve (so the provider's prompt
-- cache was likely missed): 1, else NULL, so the usual row pays nothing for the column.
ALTER TABLE usage_records ADD COLUMN session_moved INTEGER;
