// The request log: filters, pages by cursor, new requests arriving live, and each request's
// attempts on a click.

import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';

import { type Client, type Credential, REQUEST_OUTCOMES, type RequestFilter, type RequestRecord, api } from '../api';
import { OutcomeBadge } from '../components/Badge';
import { ErrorNote } from '../components/ErrorNote';
import { formatCount, formatDuration, formatRelative, formatTime, formatTimestamp, formatUsd, humanize } from '../format';
import { useLiveEvents, useNow } from '../hooks';
import { type LogRows, acceptLive, appendPage, cacheTokens } from '../requestlog';
import { hrefFor } from '../router';

const RANGES: [string, string, number][] = [
  ['15m', '15 min', 15 * 60_000],
  ['1h', '1 h', 3_600_000],
  ['6h', '6 h', 6 * 3_600_000],
  ['24h', '24 h', 86_400_000],
  ['7d', '7 d', 7 * 86_400_000],
  ['30d', '30 d', 30 * 86_400_000],
];
const PAGE_SIZE = 100;
const COLUMNS = 10;

interface Filters {
  range: string;
  client: string;
  credential: string;
  model: string;
  outcome: string;
}

function filtersFrom(params: URLSearchParams): Filters {
  const range = params.get('range') ?? '1h';
  return {
    range: RANGES.some(([id]) => id === range) ? range : '1h',
    client: params.get('client') ?? '',
    credential: params.get('credential') ?? '',
    model: params.get('model') ?? '',
    outcome: params.get('outcome') ?? '',
  };
}

function toQuery(f: Filters, now: number): RequestFilter {
  const ms = RANGES.find(([id]) => id === f.range)?.[2] ?? 3_600_000;
  return {
    since: now - ms,
    client: f.client || undefined,
    credential: f.credential || undefined,
    model: f.model.trim() || undefined,
    outcome: f.outcome || undefined,
  };
}

/** Keeps the filters in the address, so a filtered log can be bookmarked or shared. */
function writeToAddress(f: Filters): void {
  const params: Record<string, string> = {};
  for (const [key, value] of Object.entries(f)) if (value && !(key === 'range' && value === '1h')) params[key] = value;
  history.replaceState(null, '', hrefFor('requests', params));
}

export function Requests({ params }: { params: URLSearchParams }) {
  const [filters, setFilters] = useState<Filters>(() => filtersFrom(params));
  const [modelDraft, setModelDraft] = useState(filters.model);
  const [query, setQuery] = useState<RequestFilter>(() => toQuery(filters, Date.now()));
  const [log, setLog] = useState<LogRows>({ rows: [], live: 0 });
  const [next, setNext] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [live, setLive] = useState(true);
  const [expanded, setExpanded] = useState<Set<string>>(new Set());
  const [clients, setClients] = useState<Client[]>([]);
  const [credentials, setCredentials] = useState<Credential[]>([]);
  const now = useNow(5000);

  // A link to another filter (an attempt's credential) arrives as new route parameters.
  const paramKey = params.toString();
  useEffect(() => {
    const f = filtersFrom(new URLSearchParams(paramKey));
    setFilters((old) => (JSON.stringify(old) === JSON.stringify(f) ? old : f));
    setModelDraft(f.model);
  }, [paramKey]);

  useEffect(() => {
    api.clients().then(setClients).catch(() => {});
    api.credentials().then(setCredentials).catch(() => {});
  }, []);

  const load = (f: Filters) => {
    const q = toQuery(f, Date.now());
    setQuery(q);
    setLoading(true);
    setError(null);
    api
      .requests(q, undefined, PAGE_SIZE)
      .then((page) => {
        setLog({ rows: page.requests, live: 0 });
        setNext(page.next);
      })
      .catch(setError)
      .finally(() => setLoading(false));
  };

  useEffect(() => {
    writeToAddress(filters);
    load(filters);
  }, [filters]);

  const loadMore = () => {
    if (!next) return;
    setLoading(true);
    api
      .requests(query, next, PAGE_SIZE)
      .then((page) => {
        setLog((l) => appendPage(l, page.requests));
        setNext(page.next);
      })
      .catch(setError)
      .finally(() => setLoading(false));
  };

  useLiveEvents((event) => {
    if (!live) return;
    if (event.kind === 'request') setLog((l) => acceptLive(l, event.request, query));
    // The feed skipped requests: reload the first page, unless older pages were loaded by hand.
    if (event.kind === 'lagged' && log.rows.length - log.live <= PAGE_SIZE) load(filters);
  });

  const set = (patch: Partial<Filters>) => setFilters((f) => ({ ...f, ...patch }));
  const toggle = (id: string) =>
    setExpanded((s) => {
      const copy = new Set(s);
      if (copy.has(id)) copy.delete(id);
      else copy.add(id);
      return copy;
    });

  return (
    <>
      <div class="toolbar">
        <h1>Requests</h1>
        <label class="check" title="Add new requests at the top as they finish">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} data-testid="live-toggle" />
          live
        </label>
        <button type="button" onClick={() => load(filters)} data-testid="refresh-requests">
          Refresh
        </button>
      </div>
      <form
        class="filters"
        data-testid="request-filters"
        onSubmit={(e) => {
          e.preventDefault();
          set({ model: modelDraft });
        }}
      >
        <label>
          <span>Time</span>
          <select value={filters.range} onChange={(e) => set({ range: e.currentTarget.value })} data-testid="filter-range">
            {RANGES.map(([id, label]) => (
              <option key={id} value={id}>
                last {label}
              </option>
            ))}
          </select>
        </label>
        <label>
          <span>Client</span>
          <select value={filters.client} onChange={(e) => set({ client: e.currentTarget.value })} data-testid="filter-client">
            <option value="">all clients</option>
            {clients.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          <span>Credential</span>
          <select
            value={filters.credential}
            onChange={(e) => set({ credential: e.currentTarget.value })}
            data-testid="filter-credential"
          >
            <option value="">all credentials</option>
            {credentials.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          <span>Model</span>
          <input
            placeholder="any model"
            value={modelDraft}
            onInput={(e) => setModelDraft(e.currentTarget.value)}
            onBlur={() => modelDraft !== filters.model && set({ model: modelDraft })}
            data-testid="filter-model"
          />
        </label>
        <label>
          <span>Outcome</span>
          <select value={filters.outcome} onChange={(e) => set({ outcome: e.currentTarget.value })} data-testid="filter-outcome">
            <option value="">any outcome</option>
            {REQUEST_OUTCOMES.map((o) => (
              <option key={o} value={o}>
                {humanize(o)}
              </option>
            ))}
          </select>
        </label>
      </form>
      <ErrorNote error={error} />
      <div class="table-wrap">
        <table class="table requests" data-testid="requests-table">
          <thead>
            <tr>
              <th>Time</th>
              <th>Client</th>
              <th>Model</th>
              <th>Credential</th>
              <th>Outcome</th>
              <th class="num">Status</th>
              <th class="num">Latency</th>
              <th class="num">TTFT</th>
              <th class="num">Tokens in / out</th>
              <th class="num">Cost</th>
            </tr>
          </thead>
          <tbody>
            {log.rows.map((r, i) => (
              <Fragment key={r.request_id}>
                <tr
                  class={`clickable ${i < log.live ? 'fresh' : ''} ${expanded.has(r.request_id) ? 'open' : ''}`}
                  onClick={() => toggle(r.request_id)}
                  data-testid="request-row"
                  data-request-id={r.request_id}
                  aria-expanded={expanded.has(r.request_id)}
                >
                  <td title={formatTimestamp(r.at)}>
                    {formatTime(r.at, now)}
                    <div class="muted small">{formatRelative(r.at, now)}</div>
                  </td>
                  <td>
                    {r.client_name ?? <span class="muted">—</span>}
                    {r.attributed && <div class="muted small">{r.attributed}</div>}
                  </td>
                  <td title={r.served_model ? `served as ${r.served_model}` : undefined}>{r.requested_model ?? '—'}</td>
                  <td>
                    {r.credential_name ?? <span class="muted">—</span>}
                    {r.attempts.length > 0 && (
                      <div class="warn-text small">
                        after {r.attempts.length} failed attempt{r.attempts.length === 1 ? '' : 's'}
                      </div>
                    )}
                  </td>
                  <td>
                    <OutcomeBadge outcome={r.outcome} />
                  </td>
                  <td class="num">{r.status ?? '—'}</td>
                  <td class="num">{formatDuration(r.latency_ms)}</td>
                  <td class="num">{formatDuration(r.ttft_ms)}</td>
                  <td class="num">
                    {formatCount(r.input_tokens)} / {formatCount(r.output_tokens)}
                  </td>
                  <td class="num">{formatUsd(r.cost_usd)}</td>
                </tr>
                {expanded.has(r.request_id) && (
                  <tr class="details-row">
                    <td colSpan={COLUMNS}>
                      <RequestDetails r={r} />
                    </td>
                  </tr>
                )}
              </Fragment>
            ))}
          </tbody>
        </table>
      </div>
      {!loading && log.rows.length === 0 && !error && <p class="empty">No requests match.</p>}
      <div class="more">
        {next && (
          <button type="button" onClick={loadMore} disabled={loading} data-testid="load-more">
            {loading ? 'Loading…' : 'Load more'}
          </button>
        )}
        {loading && !next && <span class="muted">Loading…</span>}
      </div>
    </>
  );
}

function RequestDetails({ r }: { r: RequestRecord }) {
  const cache = cacheTokens(r);
  const served = r.outcome === 'success' || r.outcome === 'client_cancelled' || r.outcome === 'stream_cut';
  return (
    <div class="details" data-testid="request-details">
      <dl>
        <dt>Request id</dt>
        <dd>
          <code>{r.request_id}</code>
        </dd>
        <dt>Route</dt>
        <dd>
          {r.route ?? '—'}
          {r.streamed ? ' · streamed' : ''}
          {r.batch ? ' · batch' : ''}
        </dd>
        <dt>Model</dt>
        <dd>
          {r.requested_model ?? '—'}
          {r.served_model && r.served_model !== r.requested_model && <> → {r.served_model}</>}
        </dd>
        <dt>Stop reason</dt>
        <dd>{r.stop_reason ?? '—'}</dd>
        <dt>Tokens</dt>
        <dd>
          {formatCount(r.input_tokens)} in · {formatCount(r.output_tokens)} out · {formatCount(cache.read)} cache read ·{' '}
          {formatCount(cache.write)} cache write
        </dd>
        <dt>Cost</dt>
        <dd>{formatUsd(r.cost_usd)}</dd>
      </dl>
      <div>
        <h3>Attempts</h3>
        <ol class="attempts" data-testid="attempts">
          {r.attempts.map((a, i) => (
            <li key={i} class="attempt failed" data-testid="attempt" data-class={a.class}>
              <AttemptCredential id={a.credential_id} name={a.credential_name} /> — {humanize(a.class)}
            </li>
          ))}
          {r.credential_id || r.credential_name ? (
            <li class={served ? 'attempt served' : 'attempt failed'} data-testid="attempt-final">
              {served ? 'served by ' : 'failed last on '}
              <AttemptCredential id={r.credential_id} name={r.credential_name} />
              {!served && r.last_class && <> — {humanize(r.last_class)}</>}
            </li>
          ) : (
            <li class="attempt failed">no credential was available</li>
          )}
        </ol>
      </div>
    </div>
  );
}

function AttemptCredential({ id, name }: { id: string | null; name: string | null }) {
  if (!id) return <span>{name ?? 'unknown credential'}</span>;
  return (
    <a href={hrefFor('requests', { credential: id })} onClick={(e) => e.stopPropagation()}>
      {name ?? id}
    </a>
  );
}
