// A credential's state transitions, newest first.

import { useEffect, useState } from 'preact/hooks';

import { type Credential, type Transition, api } from '../api';
import { StateBadge } from '../components/Badge';
import { Dialog } from '../components/Dialog';
import { ErrorNote } from '../components/ErrorNote';
import { formatRelative, formatTimestamp } from '../format';
import { useNow } from '../hooks';

const LIMIT = 50;

export function CredentialHistory({ credential, onClose }: { credential: Credential; onClose: () => void }) {
  const [transitions, setTransitions] = useState<Transition[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const now = useNow(5000);

  useEffect(() => {
    api.transitions(credential.id, LIMIT).then(setTransitions).catch(setError);
  }, [credential.id]);

  return (
    <Dialog title={`History of ${credential.name}`} onClose={onClose} testid="credential-history" wide>
      <ErrorNote error={error} />
      {transitions === null ? (
        !error && <p class="muted">Loading…</p>
      ) : transitions.length === 0 ? (
        <p class="empty">No state changes yet.</p>
      ) : (
        <table class="table compact">
          <thead>
            <tr>
              <th>When</th>
              <th>From</th>
              <th>To</th>
              <th>Reason</th>
              <th>Until</th>
            </tr>
          </thead>
          <tbody>
            {transitions.map((t, i) => (
              <tr key={`${t.at}-${i}`} data-testid="transition-row">
                <td title={formatTimestamp(t.at)}>{formatRelative(t.at, now)}</td>
                <td>{t.from ? <StateBadge state={t.from} /> : <span class="muted">—</span>}</td>
                <td>
                  <StateBadge state={t.to} />
                </td>
                <td>{t.reason ?? <span class="muted">—</span>}</td>
                <td>{t.until ? formatTimestamp(t.until) : <span class="muted">—</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {transitions?.length === LIMIT && <p class="muted small">Showing the latest {LIMIT}.</p>}
    </Dialog>
  );
}
