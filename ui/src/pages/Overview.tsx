// The overview: live tiles (the `overview` event every 2 s) and usage charts over a range,
// split by model, credential or client.

import { useEffect, useMemo, useState } from 'preact/hooks';

import { type Bucket, type GroupBy, type SeriesResponse, api } from '../api';
import { Chart } from '../components/Chart';
import { ErrorNote } from '../components/ErrorNote';
import { formatRelative } from '../format';
import { useInterval, useLiveEvents, useNow } from '../hooks';
import { EMPTY_LIVE, type LiveOverview, applyOverview, credentialSummary, errorsByClass, overviewTiles } from '../overview';
import { hrefFor } from '../router';
import { groupedChart, latencyChart } from '../series';

type RangeId = '1h' | '24h' | '7d';

interface Range {
  label: string;
  ms: number;
  bucket: Bucket;
  refreshMs: number;
}

const RANGES: Record<RangeId, Range> = {
  '1h': { label: '1 h', ms: 3_600_000, bucket: 'minute', refreshMs: 10_000 },
  '24h': { label: '24 h', ms: 86_400_000, bucket: 'hour', refreshMs: 60_000 },
  '7d': { label: '7 d', ms: 7 * 86_400_000, bucket: 'hour', refreshMs: 300_000 },
};

const SPLITS: [Exclude<GroupBy, 'none'>, string][] = [
  ['model', 'Model'],
  ['credential', 'Credential'],
  ['client', 'Client'],
];

/** Without an `overview` event for this long, ask for one (the feed may be down). */
const STALE_MS = 10_000;

export function OverviewPage() {
  return (
    <>
      <LiveTiles />
      <UsageCharts />
    </>
  );
}

function LiveTiles() {
  const [live, setLive] = useState<LiveOverview>(EMPTY_LIVE);
  const [error, setError] = useState<unknown>(null);
  const now = useNow();

  const load = () =>
    api
      .overview()
      .then((o) => {
        setLive((s) => applyOverview(s, o, Date.now()));
        setError(null);
      })
      .catch(setError);

  useEffect(() => void load(), []);
  useLiveEvents((event) => {
    if (event.kind === 'overview') setLive((s) => applyOverview(s, event.overview, Date.now()));
  });
  useInterval(() => {
    if (live.receivedAt === null || Date.now() - live.receivedAt > STALE_MS) void load();
  }, STALE_MS);

  const o = live.overview;
  if (!o) return error ? <ErrorNote error={error} /> : <p class="muted">Loading live numbers…</p>;
  const errors = errorsByClass(o);
  return (
    <section aria-label="Live numbers">
      <div class="tiles" data-testid="overview-tiles">
        {overviewTiles(o).map((tile) => (
          <div key={tile.id} class={`tile ${tile.tone ? `tone-${tile.tone}` : ''}`} data-testid={`tile-${tile.id}`}>
            <div class="tile-label">{tile.label}</div>
            <div class="tile-value">{tile.value}</div>
            {tile.detail && <div class="tile-detail">{tile.detail}</div>}
          </div>
        ))}
        <div class="tile" data-testid="tile-errors">
          <div class="tile-label">Errors by class</div>
          {errors.length === 0 ? (
            <div class="tile-value small">none</div>
          ) : (
            <ul class="tile-list">
              {errors.map(([cls, count]) => (
                <li key={cls}>
                  <span>{cls}</span>
                  <strong>{count}</strong>
                </li>
              ))}
            </ul>
          )}
          <div class="tile-detail">last {o.live.window_s} s</div>
        </div>
        <a class="tile link" href={hrefFor('credentials')} data-testid="tile-credentials">
          <div class="tile-label">Credentials</div>
          <div class="tile-value small">{credentialSummary(o)}</div>
          <div class="tile-detail">updated {formatRelative(live.receivedAt, now)}</div>
        </a>
      </div>
      <ErrorNote error={error} />
    </section>
  );
}

function UsageCharts() {
  const [rangeId, setRangeId] = useState<RangeId>('1h');
  const [split, setSplit] = useState<Exclude<GroupBy, 'none'>>('model');
  const [grouped, setGrouped] = useState<SeriesResponse | null>(null);
  const [total, setTotal] = useState<SeriesResponse | null>(null);
  const [error, setError] = useState<unknown>(null);
  const range = RANGES[rangeId];

  const load = () => {
    const until = Date.now();
    const query = { since: until - range.ms, until, bucket: range.bucket };
    return Promise.all([api.series({ ...query, group_by: split }), api.series({ ...query, group_by: 'none' })])
      .then(([g, t]) => {
        setGrouped(g);
        setTotal(t);
        setError(null);
      })
      .catch(setError);
  };

  useEffect(() => void load(), [rangeId, split]);
  useInterval(() => void load(), range.refreshMs);

  const charts = useMemo(
    () =>
      grouped && total
        ? {
            requests: groupedChart(grouped, 'requests'),
            tokens: groupedChart(grouped, 'tokens'),
            cost: groupedChart(grouped, 'cost'),
            latency: latencyChart(total),
          }
        : null,
    [grouped, total],
  );

  return (
    <section class="usage" aria-label="Usage over time">
      <div class="toolbar">
        <h2>Usage</h2>
        <div class="segmented" role="group" aria-label="Range" data-testid="range-switch">
          {(Object.keys(RANGES) as RangeId[]).map((id) => (
            <button
              key={id}
              type="button"
              class={id === rangeId ? 'on' : undefined}
              aria-pressed={id === rangeId}
              onClick={() => setRangeId(id)}
              data-testid={`range-${id}`}
            >
              {RANGES[id].label}
            </button>
          ))}
        </div>
        <div class="segmented" role="group" aria-label="Split by" data-testid="split-switch">
          {SPLITS.map(([id, label]) => (
            <button
              key={id}
              type="button"
              class={id === split ? 'on' : undefined}
              aria-pressed={id === split}
              onClick={() => setSplit(id)}
              data-testid={`split-${id}`}
            >
              by {label.toLowerCase()}
            </button>
          ))}
        </div>
        <span class="muted small">
          per {range.bucket} · refreshes every {range.refreshMs / 1000} s · drag to zoom, double-click to reset
        </span>
      </div>
      <ErrorNote error={error} />
      {charts ? (
        <div class="charts">
          <Chart title="Requests" chart={charts.requests} testid="chart-requests" />
          <Chart title="Tokens (input + output)" chart={charts.tokens} testid="chart-tokens" />
          <Chart title="Cost" chart={charts.cost} testid="chart-cost" />
          <Chart title="Latency and time to first token" chart={charts.latency} testid="chart-latency" />
        </div>
      ) : (
        !error && <p class="muted">Loading charts…</p>
      )}
    </section>
  );
}
