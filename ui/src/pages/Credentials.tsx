// Upstream credentials: their live state, organisation, subscription windows and holds, what
// they are doing, and the operator's actions on them (enable, disable, probe, clear a cooldown,
// edit, remove, history, import, export).

import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';

import { type Credential, api, errorMessage } from '../api';
import { StateBadge } from '../components/Badge';
import { ConfirmDialog } from '../components/ConfirmDialog';
import { ErrorNote } from '../components/ErrorNote';
import { Menu } from '../components/Menu';
import { useToast } from '../components/Toasts';
import {
  applyCredentialChange,
  canClearCooldown,
  capsText,
  concurrencyText,
  creditsText,
  groupByOrganization,
  headroomPercent,
  holdText,
  isRamping,
  kindLabel,
  liveHolds,
  type Organization,
  oauthText,
  organizationOf,
  quotaSpent,
  shortOrganization,
  successRateText,
  successRateTone,
  upsertCredential,
  withoutCredential,
} from '../credentials';
import { formatCount, formatCountdown, formatRelative, formatTimestamp, humanize } from '../format';
import { useInterval, useLiveEvents, useNow } from '../hooks';
import { hrefFor } from '../router';
import { CredentialForm } from './CredentialForm';
import { CredentialHistory } from './CredentialHistory';
import { ImportDialog } from './ImportDialog';
import { SubscriptionUsage } from './SubscriptionUsage';

/** In-flight counts and headroom change without a state change (and so without an event). */
const REFRESH_MS = 5000;

/** The table's columns, for the rows that span it. */
const COLUMNS = 10;

type Order = 'listed' | 'organization';

type Open =
  | { dialog: 'add' }
  | { dialog: 'import' }
  | { dialog: 'edit'; credential: Credential }
  | { dialog: 'remove'; credential: Credential }
  | { dialog: 'history'; credential: Credential }
  | null;

export function Credentials() {
  const [list, setList] = useState<Credential[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [open, setOpen] = useState<Open>(null);
  const [order, setOrder] = useState<Order>('listed');
  const toast = useToast();
  const now = useNow();

  const load = () =>
    api
      .credentials()
      .then((credentials) => {
        setList(credentials);
        setError(null);
      })
      .catch(setError);

  useEffect(() => void load(), []);
  useInterval(() => void load(), REFRESH_MS);
  useLiveEvents((event) => {
    if (event.kind === 'credential') setList((l) => (l ? applyCredentialChange(l, event.change) : l));
  });

  const replace = (credential: Credential) => setList((l) => (l ? upsertCredential(l, credential) : [credential]));

  const act = async (label: string, c: Credential, action: () => Promise<Credential>) => {
    try {
      replace(await action());
    } catch (e) {
      toast(`${label} ${c.name}: ${errorMessage(e)}`, 'bad');
    }
  };

  const probe = async (c: Credential) => {
    try {
      const result = await api.probeCredential(c.id);
      replace(result.credential);
      toast(`Probe ${c.name}: ${humanize(result.outcome)}`, result.outcome === 'success' ? 'good' : 'bad');
    } catch (e) {
      toast(`Probe ${c.name}: ${errorMessage(e)}`, 'bad');
    }
  };

  return (
    <>
      <div class="toolbar">
        <h1>Credentials</h1>
        <button type="button" class="primary" onClick={() => setOpen({ dialog: 'add' })} data-testid="add-credential">
          Add credential
        </button>
        <button type="button" onClick={() => setOpen({ dialog: 'import' })} data-testid="import-credentials">
          Import CSV
        </button>
        <ExportControls />
        <div class="segmented" role="group" aria-label="Order" data-testid="order-switch">
          {(
            [
              ['listed', 'as listed'],
              ['organization', 'by organisation'],
            ] as const
          ).map(([id, label]) => (
            <button
              key={id}
              type="button"
              class={id === order ? 'on' : undefined}
              aria-pressed={id === order}
              onClick={() => setOrder(id)}
              data-testid={`order-${id}`}
            >
              {label}
            </button>
          ))}
        </div>
      </div>
      <ErrorNote error={error} />
      {list === null ? (
        !error && <p class="muted">Loading…</p>
      ) : list.length === 0 ? (
        <p class="empty">No credentials yet. Add one, or import a CSV file.</p>
      ) : (
        <div class="table-wrap">
          <table class="table" data-testid="credentials-table">
            <thead>
              <tr>
                <th>Name</th>
                <th>Kind</th>
                <th>Secret</th>
                <th>Organisation</th>
                <th>State</th>
                <th class="num">In flight</th>
                <th>Headroom</th>
                <th class="num">Requests / errors</th>
                <th>Last error</th>
                <th>Actions</th>
              </tr>
            </thead>
            <tbody>
              {(order === 'organization' ? groupByOrganization(list) : [{ organization: null, credentials: list }]).map(
                (group) => (
                  <Fragment key={group.organization?.id ?? ''}>
                    {order === 'organization' && (
                      <OrganizationHeader organization={group.organization} count={group.credentials.length} />
                    )}
                    {group.credentials.map((c) => (
                      <CredentialRow
                        key={c.id}
                        c={c}
                        now={now}
                        onToggle={() =>
                          c.enabled
                            ? act('Disable', c, () => api.disableCredential(c.id))
                            : act('Enable', c, () => api.enableCredential(c.id))
                        }
                        onProbe={() => probe(c)}
                        onClearCooldown={() => act('Clear cooldown', c, () => api.clearCooldown(c.id))}
                        onOpen={(dialog) => setOpen({ dialog, credential: c })}
                      />
                    ))}
                  </Fragment>
                ),
              )}
            </tbody>
          </table>
        </div>
      )}

      {open?.dialog === 'add' && (
        <CredentialForm
          onClose={() => setOpen(null)}
          onSaved={(c) => {
            replace(c);
            toast(`Added ${c.name}`, 'good');
          }}
        />
      )}
      {open?.dialog === 'edit' && (
        <CredentialForm
          credential={open.credential}
          onClose={() => setOpen(null)}
          onSaved={(c) => {
            replace(c);
            toast(`Saved ${c.name}`, 'good');
          }}
        />
      )}
      {open?.dialog === 'import' && <ImportDialog onClose={() => setOpen(null)} onApplied={() => void load()} />}
      {open?.dialog === 'history' && <CredentialHistory credential={open.credential} onClose={() => setOpen(null)} />}
      {open?.dialog === 'remove' && (
        <ConfirmDialog
          title="Remove credential"
          confirmLabel="Remove"
          onClose={() => setOpen(null)}
          onConfirm={async () => {
            const c = open.credential;
            await api.removeCredential(c.id);
            setList((l) => (l ? withoutCredential(l, c.id) : l));
            toast(`Removed ${c.name}`, 'good');
          }}
        >
          <p>
            Remove <strong>{open.credential.name}</strong> ({open.credential.masked})? Requests already using it
            finish; it is not picked again. Its past requests stay in the log.
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}

interface RowProps {
  c: Credential;
  now: number;
  onToggle: () => Promise<void>;
  onProbe: () => Promise<void>;
  onClearCooldown: () => Promise<void>;
  onOpen: (dialog: 'edit' | 'remove' | 'history') => void;
}

function CredentialRow({ c, now, onToggle, onProbe, onClearCooldown, onOpen }: RowProps) {
  const [busy, setBusy] = useState<string | null>(null);
  const run = (name: string, action: () => Promise<void>) => async () => {
    setBusy(name);
    try {
      await action();
    } finally {
      setBusy(null);
    }
  };
  const headroom = headroomPercent(c.headroom);
  const holds = liveHolds(c.holds, now);
  const success = successRateText(c);
  const caps = capsText(c);
  const credits = creditsText(c.credits_expire_at, now);
  const oauth = oauthText(c, now);
  const dim = c.enabled ? '' : 'dim';

  return (
    <>
      <tr
        data-testid="credential-row"
        data-credential-name={c.name}
        data-credential-id={c.id}
        class={`${dim} ${c.subscription ? 'has-usage' : ''}`}
      >
        <td class="name-cell">
          <div class="strong">{c.name}</div>
          <div class="muted small">
            priority {c.priority} · weight {c.weight} · {c.source}
          </div>
          {caps && (
            <div class={`small ${quotaSpent(c) ? 'warn-text' : 'muted'}`} title="the operator's caps and today's use" data-testid="caps">
              {caps}
            </div>
          )}
          {credits && (
            <div
              class={`small ${c.credits_expire_at! > now ? 'muted' : 'warn-text'}`}
              title={formatTimestamp(c.credits_expire_at!)}
              data-testid="credits-expiry"
            >
              {credits}
            </div>
          )}
          {oauth && (
            <div
              class={`small ${c.refreshable ? 'muted' : 'warn-text'}`}
              title={c.token_expires_at === null ? undefined : `access token expires ${formatTimestamp(c.token_expires_at)}`}
              data-testid="oauth-refresh"
            >
              {oauth}
            </div>
          )}
        </td>
        <td class="nowrap">{kindLabel(c.kind)}</td>
        <td>
          <code class="secret">{c.masked}</code>
        </td>
        <td class="org-cell">
          <OrganizationCell organization={organizationOf(c)} />
        </td>
        <td class="state-cell">
          <StateBadge state={c.state} />
          {c.reason && <div class="small">{c.reason}</div>}
          <StateTimer c={c} now={now} />
          {holds.length > 0 && (
            <ul class="holds">
              {holds.map((h) => (
                <li key={h.models} class="small warn-text" title={formatTimestamp(h.until)} data-testid="hold">
                  {holdText(h, now)}
                </li>
              ))}
            </ul>
          )}
        </td>
        <td class="num" title={isRamping(c) ? 'ramping back up to its limit after a recovery' : undefined}>
          {concurrencyText(c)}
        </td>
        <td>
          {headroom === null ? (
            <span class="muted">—</span>
          ) : (
            <div class="bar" title={ratelimitTitle(c)} data-testid="headroom">
              <div class={`bar-fill ${headroom < 20 ? 'low' : ''}`} style={{ width: `${headroom}%` }} />
              <span class="bar-label">{headroom}%</span>
            </div>
          )}
        </td>
        <td class="num">
          <a href={hrefFor('requests', { credential: c.id })} title="Show its requests">
            {formatCount(c.requests)}
          </a>{' '}
          / <span class={c.errors > 0 ? 'bad-text' : ''}>{formatCount(c.errors)}</span>
          {success && (
            <div
              class={`small ${TONE_TEXT[successRateTone(c.success_rate)]}`}
              title="recent success rate"
              data-testid="success-rate"
            >
              {success}
            </div>
          )}
        </td>
        <td>
          {c.last_error ? (
            <span title={formatTimestamp(c.last_error.at)}>
              {humanize(c.last_error.class)}
              <div class="muted small">{formatRelative(c.last_error.at, now)}</div>
            </span>
          ) : (
            <span class="muted">—</span>
          )}
        </td>
        <td class="actions">
          <button type="button" class="small" disabled={busy !== null} onClick={run('toggle', onToggle)} data-testid="toggle-enabled">
            {c.enabled ? 'Disable' : 'Enable'}
          </button>
          <button type="button" class="small" disabled={busy !== null} onClick={run('probe', onProbe)} data-testid="probe">
            {busy === 'probe' ? 'Probing…' : 'Probe'}
          </button>
          {canClearCooldown(c.state) && (
            <button
              type="button"
              class="small"
              disabled={busy !== null}
              onClick={run('clear', onClearCooldown)}
              data-testid="clear-cooldown"
            >
              Clear cooldown
            </button>
          )}
          <Menu label="More" testid="more-actions">
            <button type="button" onClick={() => onOpen('edit')} data-testid="edit">
              Edit…
            </button>
            <button type="button" onClick={() => onOpen('history')} data-testid="history">
              History…
            </button>
            <button type="button" class="danger-text" onClick={() => onOpen('remove')} data-testid="remove">
              Remove…
            </button>
          </Menu>
        </td>
      </tr>
      {c.subscription && (
        <tr class={`usage-row ${dim}`} data-testid="subscription" data-credential-name={c.name}>
          <td colSpan={COLUMNS}>
            <SubscriptionUsage usage={c.subscription} now={now} />
          </td>
        </tr>
      )}
    </>
  );
}

const TONE_TEXT = { muted: 'muted', warn: 'warn-text', bad: 'bad-text' } as const;

/** The short id (the full one on hover) and whether it is the operator's group or the provider's. */
function OrganizationCell({ organization: org }: { organization: Organization | null }) {
  if (org === null) {
    return (
      <span class="muted" title="not known yet: the provider names it in its first answer">
        —
      </span>
    );
  }
  const title =
    org.source === 'reported'
      ? `organisation ${org.id}, as the provider reported it`
      : `the operator's group “${org.id}”` +
        (org.reported ? `; the provider reports organisation ${org.reported}` : '');
  return (
    <div data-testid="organization" data-source={org.source} data-organization={org.id} title={title}>
      {org.source === 'reported' ? <code class="nowrap">{org.short}</code> : <span class="nowrap">{org.short}</span>}
      <div class="muted small">
        {org.source === 'reported' ? 'reported' : 'group'}
        {org.reported && <> · provider {shortOrganization(org.reported)}</>}
      </div>
    </div>
  );
}

function OrganizationHeader({ organization: org, count }: { organization: Organization | null; count: number }) {
  const n = `${count} credential${count === 1 ? '' : 's'}`;
  return (
    <tr class="group-row" data-testid="organization-group" data-organization={org?.id ?? ''}>
      <th colSpan={COLUMNS} scope="colgroup">
        {org === null ? (
          <span>Organisation not reported yet</span>
        ) : (
          <span title={org.id}>
            {org.source === 'reported' ? (
              <>
                Organisation <code>{org.short}</code>
              </>
            ) : (
              <>Group {org.short}</>
            )}
            <span class="muted">
              {' · '}
              {org.source === 'reported' ? 'reported by the provider' : 'set by the operator'}
            </span>
          </span>
        )}
        <span class="muted"> · {n}</span>
      </th>
    </tr>
  );
}

/** "62 s left" while cooling down, "probe in 5 s" before a probe. */
function StateTimer({ c, now }: { c: Credential; now: number }) {
  if (c.state === 'cooling_down' && c.cooldown_until !== null) {
    return (
      <div class="small countdown" data-testid="cooldown-countdown" title={formatTimestamp(c.cooldown_until)}>
        {formatCountdown(c.cooldown_until, now)} left
      </div>
    );
  }
  if (c.next_probe_at !== null && c.state !== 'active' && c.state !== 'disabled') {
    return (
      <div class="small countdown" title={formatTimestamp(c.next_probe_at)}>
        probe in {formatCountdown(c.next_probe_at, now)}
      </div>
    );
  }
  return null;
}

function ratelimitTitle(c: Credential): string {
  const r = c.ratelimit;
  if (!r) return 'headroom left in the provider’s advertised limits';
  const windows: [string, typeof r.requests][] = [
    ['requests', r.requests],
    ['tokens', r.tokens],
    ['input tokens', r.input_tokens],
    ['output tokens', r.output_tokens],
  ];
  return windows
    .filter(([, w]) => w !== null)
    .map(([name, w]) => `${name}: ${formatCount(w!.remaining)} of ${formatCount(w!.limit)} left`)
    .join('\n');
}

function ExportControls() {
  const [secrets, setSecrets] = useState(false);
  return (
    <span class="export">
      <a class="button" href={api.exportUrl(secrets)} download data-testid="export-credentials">
        Export CSV
      </a>
      <label class="check">
        <input
          type="checkbox"
          checked={secrets}
          onChange={(e) => setSecrets(e.currentTarget.checked)}
          data-testid="export-secrets"
        />
        include secrets
      </label>
      {secrets && (
        <span class="warn-text small" data-testid="export-secrets-warning">
          The file will hold every credential in clear text. Keep it safe and delete it after use.
        </span>
      )}
    </span>
  );
}
