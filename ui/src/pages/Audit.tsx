// The audit log: every change made through the API or the CLI, newest first.

import { useEffect, useState } from 'preact/hooks';

import { type AuditEntry, api } from '../api';
import { ErrorNote } from '../components/ErrorNote';
import { formatDetail, formatRelative, formatTimestamp } from '../format';
import { useNow } from '../hooks';

const PAGE_SIZE = 100;

export function Audit() {
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [next, setNext] = useState<number | string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const now = useNow(5000);

  const load = (before?: number | string) => {
    setLoading(true);
    setError(null);
    api
      .audit(before, PAGE_SIZE)
      .then((page) => {
        setEntries((list) => (before === undefined ? page.entries : [...list, ...page.entries]));
        setNext(page.next);
      })
      .catch(setError)
      .finally(() => setLoading(false));
  };
  useEffect(() => load(), []);

  return (
    <>
      <div class="toolbar">
        <h1>Audit log</h1>
        <button type="button" onClick={() => load()} data-testid="refresh-audit">
          Refresh
        </button>
      </div>
      <ErrorNote error={error} />
      <div class="table-wrap">
        <table class="table" data-testid="audit-table">
          <thead>
            <tr>
              <th>Time</th>
              <th>Actor</th>
              <th>Action</th>
              <th>Target</th>
              <th>Detail</th>
              <th>From</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr key={e.id} data-testid="audit-row" data-action={e.action}>
                <td title={formatTimestamp(e.at)}>{formatRelative(e.at, now)}</td>
                <td>{e.actor}</td>
                <td>
                  <code class="strong">{e.action}</code>
                </td>
                <td>{e.target ?? <span class="muted">—</span>}</td>
                <td class="detail">
                  {formatDetail(e.detail) ? <code>{formatDetail(e.detail)}</code> : <span class="muted">—</span>}
                </td>
                <td>{e.remote ?? <span class="muted">—</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {!loading && entries.length === 0 && !error && <p class="empty">Nothing has been changed yet.</p>}
      <div class="more">
        {next !== null && (
          <button type="button" onClick={() => load(next)} disabled={loading} data-testid="load-more">
            {loading ? 'Loading…' : 'Load more'}
          </button>
        )}
        {loading && next === null && <span class="muted">Loading…</span>}
      </div>
    </>
  );
}
