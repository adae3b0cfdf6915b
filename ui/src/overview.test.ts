import { describe, expect, it } from 'vitest';

import { EMPTY_LIVE, RATE_HISTORY, applyOverview, credentialSummary, errorsByClass, overviewTiles } from './overview';
import { overview } from './testdata/fixtures';

describe('applyOverview', () => {
  it('keeps the newest overview and when it came', () => {
    const first = applyOverview(EMPTY_LIVE, overview({ requests_per_s: 1 }), 1000);
    const second = applyOverview(first, overview({ requests_per_s: 2 }), 3000);
    expect(second.overview!.live.requests_per_s).toBe(2);
    expect(second.receivedAt).toBe(3000);
    expect(second.rateHistory).toEqual([1, 2]);
    expect(first.rateHistory).toEqual([1]);
  });

  it('keeps a bounded history of request rates', () => {
    let state = EMPTY_LIVE;
    for (let i = 0; i < RATE_HISTORY + 5; i++) state = applyOverview(state, overview({ requests_per_s: i }), i);
    expect(state.rateHistory).toHaveLength(RATE_HISTORY);
    expect(state.rateHistory[0]).toBe(5);
    expect(state.rateHistory.at(-1)).toBe(RATE_HISTORY + 4);
  });
});

describe('overviewTiles', () => {
  it('formats every live number', () => {
    const tiles = Object.fromEntries(overviewTiles(overview()).map((t) => [t.id, t]));
    expect(tiles.rate!.value).toBe('1.5');
    expect(tiles.success!.value).toBe('98%');
    expect(tiles.success!.tone).toBe('warn');
    expect(tiles.tokens!.value).toBe('420');
    expect(tiles.cost!.value).toBe('$1.23');
    expect(tiles.cost!.detail).toBe('1,234 requests');
    expect(tiles.latency!.value).toBe('120 ms / 2.4 s');
    expect(tiles.ttft!.value).toBe('80 ms / —');
  });

  it('has no tone when nothing was served', () => {
    const tile = overviewTiles(overview({ success_rate: null })).find((t) => t.id === 'success')!;
    expect(tile.value).toBe('—');
    expect(tile.tone).toBeUndefined();
  });
});

describe('errorsByClass', () => {
  it('sorts by count, drops zeros and names classes in words', () => {
    const o = overview({ errors_by_class: { server_error: 1, rate_limited: 4, timeout: 0, overloaded: 1 } });
    expect(errorsByClass(o)).toEqual([
      ['rate limited', 4],
      ['overloaded', 1],
      ['server error', 1],
    ]);
  });
});

describe('credentialSummary', () => {
  it('lists the states credentials are in', () => {
    expect(credentialSummary(overview())).toBe('3 active · 1 cooling down');
  });
});
