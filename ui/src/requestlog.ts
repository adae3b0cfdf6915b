// The request log's rows: pages loaded with a cursor plus requests arriving live. Pure, so
// which live request may join the table is tested.

import type { RequestFilter, RequestRecord } from './api';

/** Live rows kept above the loaded pages before the oldest live ones drop off. */
export const MAX_LIVE_ROWS = 500;

/** Would `GET /admin/api/requests` with this filter have returned this request? */
export function matchesFilter(r: RequestRecord, f: RequestFilter): boolean {
  if (f.since !== undefined && r.at < f.since) return false;
  if (f.until !== undefined && r.at >= f.until) return false;
  if (f.client && r.client_id !== f.client) return false;
  if (f.credential && r.credential_id !== f.credential) return false;
  if (f.outcome && r.outcome !== f.outcome) return false;
  if (f.model && r.requested_model !== f.model && r.served_model !== f.model) return false;
  return true;
}

export interface LogRows {
  rows: RequestRecord[];
  /** How many rows at the top came live rather than from a page. */
  live: number;
}

/** Puts a live request on top when the filter lets it in and it is not already shown. */
export function acceptLive(log: LogRows, r: RequestRecord, f: RequestFilter): LogRows {
  if (!matchesFilter(r, f)) return log;
  if (log.rows.some((row) => row.request_id === r.request_id)) return log;
  const live = Math.min(log.live + 1, MAX_LIVE_ROWS);
  const rows = [r, ...log.rows];
  // Past the cap, drop the oldest live row (the last of the live block), keep the pages.
  if (log.live + 1 > MAX_LIVE_ROWS) rows.splice(MAX_LIVE_ROWS, 1);
  return { rows, live };
}

/** Appends a loaded page, skipping requests already shown (a live row the page repeats). */
export function appendPage(log: LogRows, page: RequestRecord[]): LogRows {
  const seen = new Set(log.rows.map((r) => r.request_id));
  return { rows: [...log.rows, ...page.filter((r) => !seen.has(r.request_id))], live: log.live };
}

/** Prompt-cache tokens read and written (both write lifetimes together). */
export function cacheTokens(r: RequestRecord): { read: number; write: number } {
  return { read: r.cache_read_tokens, write: r.cache_write_5m_tokens + r.cache_write_1h_tokens };
}
