// Add a credential, or edit one (only the fields that changed are sent). The optional caps,
// credits' expiry and OAuth grant are sent only when filled; on edit, an emptied cap is removed.

import { useState } from 'preact/hooks';

import { type Credential, type CredentialKind, type CredentialPatch, api } from '../api';
import { Dialog } from '../components/Dialog';
import { ErrorNote } from '../components/ErrorNote';
import {
  dateInputValue,
  limitsPatch,
  parseDateInput,
  parseDateTimeInput,
  parseOptionalWhole,
  takesRefreshToken,
} from '../credentials';

interface Props {
  /** Absent to add a new one. */
  credential?: Credential;
  onClose: () => void;
  onSaved: (credential: Credential) => void;
}

interface Fields {
  name: string;
  secret: string;
  kind: CredentialKind | '';
  priority: string;
  weight: string;
  maxConcurrent: string;
  group: string;
  enabled: boolean;
  rps: string;
  dailyRequests: string;
  dailyTokens: string;
  creditsExpire: string;
  refreshToken: string;
  tokenExpires: string;
}

const text = (n: number | null | undefined) => (n === null || n === undefined ? '' : String(n));

function initial(c?: Credential): Fields {
  return {
    name: c?.name ?? '',
    secret: '',
    kind: '',
    priority: String(c?.priority ?? 0),
    weight: String(c?.weight ?? 1),
    maxConcurrent: c?.max_concurrent === null || c?.max_concurrent === undefined ? '' : String(c.max_concurrent),
    group: c?.group ?? '',
    enabled: c?.enabled ?? true,
    rps: text(c?.rps),
    dailyRequests: text(c?.daily_requests),
    dailyTokens: text(c?.daily_tokens),
    creditsExpire: dateInputValue(c?.credits_expire_at ?? null),
    refreshToken: '',
    tokenExpires: '',
  };
}

/** Whole numbers only; an empty optional field means "none". */
function parseWhole(text: string, label: string): number {
  const n = Number(text.trim());
  if (text.trim() === '' || !Number.isInteger(n)) throw new Error(`${label} must be a whole number`);
  return n;
}

export function CredentialForm({ credential, onClose, onSaved }: Props) {
  const [fields, setFields] = useState<Fields>(() => initial(credential));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const editing = credential !== undefined;
  const set = (patch: Partial<Fields>) => setFields((f) => ({ ...f, ...patch }));

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const priority = parseWhole(fields.priority, 'Priority');
      const weight = parseWhole(fields.weight, 'Weight');
      const maxConcurrent = fields.maxConcurrent.trim() === '' ? null : parseWhole(fields.maxConcurrent, 'Max concurrent');
      const group = fields.group.trim() === '' ? null : fields.group.trim();
      const limits = {
        rps: parseOptionalWhole(fields.rps, 'Burst limit'),
        daily_requests: parseOptionalWhole(fields.dailyRequests, 'Daily requests'),
        daily_tokens: parseOptionalWhole(fields.dailyTokens, 'Daily tokens'),
        // An expiry set elsewhere at another time of day stays as it is unless the day is changed.
        credits_expire_at:
          credential && fields.creditsExpire === dateInputValue(credential.credits_expire_at)
            ? credential.credits_expire_at
            : parseDateInput(fields.creditsExpire),
      };
      let saved: Credential;
      if (credential) {
        const patch: CredentialPatch = {};
        if (fields.name.trim() !== credential.name) patch.name = fields.name.trim();
        if (priority !== credential.priority) patch.priority = priority;
        if (weight !== credential.weight) patch.weight = weight;
        if (maxConcurrent !== credential.max_concurrent) patch.max_concurrent = maxConcurrent;
        if (group !== credential.group) patch.group = group;
        if (fields.secret !== '') patch.secret = fields.secret;
        Object.assign(patch, limitsPatch(credential, limits));
        saved = Object.keys(patch).length ? await api.updateCredential(credential.id, patch) : credential;
      } else {
        const oauth = takesRefreshToken(fields.secret, fields.kind);
        const refreshToken = oauth ? fields.refreshToken.trim() : '';
        const tokenExpires = oauth ? parseDateTimeInput(fields.tokenExpires) : null;
        saved = await api.addCredential({
          name: fields.name.trim(),
          secret: fields.secret,
          ...(fields.kind ? { kind: fields.kind } : {}),
          priority,
          weight,
          max_concurrent: maxConcurrent,
          group,
          enabled: fields.enabled,
          ...Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== null)),
          ...(refreshToken ? { refresh_token: refreshToken } : {}),
          ...(tokenExpires !== null ? { token_expires_at: tokenExpires } : {}),
        });
      }
      onSaved(saved);
      onClose();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <Dialog title={editing ? `Edit ${credential.name}` : 'Add credential'} onClose={onClose} testid="credential-form">
      <form class="form" onSubmit={submit}>
        <label class="field">
          <span>Name</span>
          <input required value={fields.name} onInput={(e) => set({ name: e.currentTarget.value })} data-testid="field-name" />
        </label>
        <label class="field">
          <span>{editing ? 'New secret (leave empty to keep the current one)' : 'Secret'}</span>
          <input
            type="password"
            autocomplete="off"
            required={!editing}
            value={fields.secret}
            placeholder={editing ? credential.masked : 'sk-ant-…'}
            onInput={(e) => set({ secret: e.currentTarget.value })}
            data-testid="field-secret"
          />
        </label>
        {!editing && (
          <label class="field">
            <span>Kind</span>
            <select value={fields.kind} data-testid="field-kind" onChange={(e) => set({ kind: e.currentTarget.value as Fields['kind'] })}>
              <option value="">detect from the secret</option>
              <option value="api_key">API key</option>
              <option value="oauth">OAuth token</option>
            </select>
          </label>
        )}
        <div class="field-row">
          <label class="field">
            <span>Priority</span>
            <input inputMode="numeric" value={fields.priority} onInput={(e) => set({ priority: e.currentTarget.value })} data-testid="field-priority" />
          </label>
          <label class="field">
            <span>Weight</span>
            <input inputMode="numeric" value={fields.weight} onInput={(e) => set({ weight: e.currentTarget.value })} data-testid="field-weight" />
          </label>
          <label class="field">
            <span>Max concurrent</span>
            <input
              inputMode="numeric"
              placeholder="no limit"
              value={fields.maxConcurrent}
              onInput={(e) => set({ maxConcurrent: e.currentTarget.value })}
              data-testid="field-max-concurrent"
            />
          </label>
        </div>
        <label class="field">
          <span>Group (credentials of one organisation share its limits)</span>
          <input placeholder="none" value={fields.group} onInput={(e) => set({ group: e.currentTarget.value })} data-testid="field-group" />
        </label>
        <div class="field-row">
          <label class="field">
            <span>Burst limit (requests/s)</span>
            <input inputMode="numeric" placeholder="no limit" value={fields.rps} onInput={(e) => set({ rps: e.currentTarget.value })} data-testid="field-rps" />
          </label>
          <label class="field">
            <span>Requests per day</span>
            <input
              inputMode="numeric"
              placeholder="no quota"
              value={fields.dailyRequests}
              onInput={(e) => set({ dailyRequests: e.currentTarget.value })}
              data-testid="field-daily-requests"
            />
          </label>
          <label class="field">
            <span>Tokens per day</span>
            <input
              inputMode="numeric"
              placeholder="no quota"
              value={fields.dailyTokens}
              onInput={(e) => set({ dailyTokens: e.currentTarget.value })}
              data-testid="field-daily-tokens"
            />
          </label>
        </div>
        <label class="field">
          <span>Credits expire on (not picked from that day on; empty for never)</span>
          <input
            type="date"
            value={fields.creditsExpire}
            onInput={(e) => set({ creditsExpire: e.currentTarget.value })}
            data-testid="field-credits-expire"
          />
        </label>
        {!editing && takesRefreshToken(fields.secret, fields.kind) && (
          <div class="field-row">
            <label class="field">
              <span>Refresh token (optional: the gateway renews the access token itself)</span>
              <input
                type="password"
                autocomplete="off"
                placeholder="sk-ant-ort…"
                value={fields.refreshToken}
                onInput={(e) => set({ refreshToken: e.currentTarget.value })}
                data-testid="field-refresh-token"
              />
            </label>
            <label class="field">
              <span>Access token expires</span>
              <input
                type="datetime-local"
                value={fields.tokenExpires}
                onInput={(e) => set({ tokenExpires: e.currentTarget.value })}
                data-testid="field-token-expires"
              />
            </label>
          </div>
        )}
        {!editing && (
          <label class="check">
            <input type="checkbox" data-testid="field-enabled" checked={fields.enabled} onChange={(e) => set({ enabled: e.currentTarget.checked })} />
            enabled
          </label>
        )}
        <ErrorNote error={error} />
        <div class="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy} data-testid="save-credential">
            {busy ? 'Saving…' : editing ? 'Save' : 'Add'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
