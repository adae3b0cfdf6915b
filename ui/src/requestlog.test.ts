import { describe, expect, it } from 'vitest';

import { MAX_LIVE_ROWS, acceptLive, appendPage, matchesFilter } from './requestlog';
import { request } from './testdata/fixtures';

describe('matchesFilter', () => {
  const r = request({ at: 1000, client_id: 'c1', credential_id: 'k1', outcome: 'upstream_error' });

  it('lets everything through an empty filter', () => expect(matchesFilter(r, {})).toBe(true));

  it('checks each field it is given', () => {
    expect(matchesFilter(r, { since: 1000 })).toBe(true);
    expect(matchesFilter(r, { since: 1001 })).toBe(false);
    expect(matchesFilter(r, { until: 1000 })).toBe(false);
    expect(matchesFilter(r, { client: 'c2' })).toBe(false);
    expect(matchesFilter(r, { credential: 'k1' })).toBe(true);
    expect(matchesFilter(r, { outcome: 'success' })).toBe(false);
    expect(matchesFilter(r, { model: 'claude-haiku-4-5' })).toBe(true);
    expect(matchesFilter(r, { model: 'claude-haiku-4-5-20251001' })).toBe(true);
    expect(matchesFilter(r, { model: 'claude-haiku' })).toBe(false);
  });
});

describe('acceptLive', () => {
  const page = { rows: [request({ request_id: 'old' })], live: 0 };

  it('puts a matching request on top', () => {
    const next = acceptLive(page, request({ request_id: 'new' }), {});
    expect(next.rows.map((r) => r.request_id)).toEqual(['new', 'old']);
    expect(next.live).toBe(1);
  });

  it('ignores one the filter excludes or that is already shown', () => {
    expect(acceptLive(page, request({ request_id: 'new', outcome: 'stream_cut' }), { outcome: 'success' })).toBe(page);
    expect(acceptLive(page, request({ request_id: 'old' }), {})).toBe(page);
  });

  it('drops the oldest live row past the cap but keeps the loaded pages', () => {
    let log = page;
    for (let i = 0; i < MAX_LIVE_ROWS + 3; i++) log = acceptLive(log, request({ request_id: `live${i}` }), {});
    expect(log.live).toBe(MAX_LIVE_ROWS);
    expect(log.rows).toHaveLength(MAX_LIVE_ROWS + 1);
    expect(log.rows[0]!.request_id).toBe(`live${MAX_LIVE_ROWS + 2}`);
    expect(log.rows.at(-1)!.request_id).toBe('old');
    expect(log.rows.some((r) => r.request_id === 'live0')).toBe(false);
  });
});

describe('appendPage', () => {
  it('skips rows it already shows', () => {
    const log = { rows: [request({ request_id: 'a' })], live: 1 };
    const next = appendPage(log, [request({ request_id: 'a' }), request({ request_id: 'b' })]);
    expect(next.rows.map((r) => r.request_id)).toEqual(['a', 'b']);
    expect(next.live).toBe(1);
  });
});
