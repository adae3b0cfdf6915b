// The overview's live numbers: the first `GET /admin/api/overview`, then an `overview` event
// every 2 s. Pure, so the tiles' contents are tested without a page.

import type { Overview } from './api';
import { formatDuration, formatPercent, formatRate, formatUsd, humanize } from './format';

export interface LiveOverview {
  overview: Overview | null;
  /** When the last overview arrived, by the browser's clock. */
  receivedAt: number | null;
  /** Recent request rates, oldest first, one per overview received. */
  rateHistory: number[];
}

export const RATE_HISTORY = 60;

export const EMPTY_LIVE: LiveOverview = { overview: null, receivedAt: null, rateHistory: [] };

export function applyOverview(state: LiveOverview, overview: Overview, now: number): LiveOverview {
  const rateHistory = [...state.rateHistory, overview.live.requests_per_s].slice(-RATE_HISTORY);
  return { overview, receivedAt: now, rateHistory };
}

export interface Tile {
  id: string;
  label: string;
  value: string;
  detail?: string;
  tone?: 'good' | 'warn' | 'bad';
}

/** The tiles across the top of the overview, in display order. */
export function overviewTiles(o: Overview): Tile[] {
  const live = o.live;
  const window = `last ${live.window_s} s`;
  return [
    { id: 'rate', label: 'Requests/s', value: formatRate(live.requests_per_s), detail: window },
    {
      id: 'success',
      label: 'Success rate',
      value: formatPercent(live.success_rate),
      detail: window,
      ...successTone(live.success_rate),
    },
    { id: 'tokens', label: 'Tokens/s', value: formatRate(live.tokens_per_s), detail: window },
    {
      id: 'cost',
      label: 'Cost today',
      value: formatUsd(o.today.cost_usd),
      detail: `${o.today.requests.toLocaleString('en-US')} requests`,
    },
    {
      id: 'latency',
      label: 'Latency p50 / p95',
      value: `${formatDuration(live.latency_p50_ms)} / ${formatDuration(live.latency_p95_ms)}`,
      detail: window,
    },
    {
      id: 'ttft',
      label: 'Time to first token p50 / p95',
      value: `${formatDuration(live.ttft_p50_ms)} / ${formatDuration(live.ttft_p95_ms)}`,
      detail: window,
    },
  ];
}

function successTone(rate: number | null): Pick<Tile, 'tone'> {
  if (rate === null) return {};
  if (rate >= 0.99) return { tone: 'good' };
  if (rate >= 0.9) return { tone: 'warn' };
  return { tone: 'bad' };
}

/** Errors by class, most frequent first, zeros left out: `[["rate limited", 2], …]`. */
export function errorsByClass(o: Overview): [string, number][] {
  return Object.entries(o.live.errors_by_class)
    .filter(([, count]) => count > 0)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([cls, count]) => [humanize(cls), count]);
}

/** "3 active · 1 cooling down" — states with no credential left out. */
export function credentialSummary(o: Overview): string {
  const parts = Object.entries(o.credentials)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${n} ${humanize(state)}`);
  return parts.length ? parts.join(' · ') : 'no credentials';
}
