// Client keys: who may call the gateway. A new key is shown once, at creation.

import { useEffect, useRef, useState } from 'preact/hooks';

import { type Client, type CreatedClient, api } from '../api';
import { Badge } from '../components/Badge';
import { ConfirmDialog } from '../components/ConfirmDialog';
import { Dialog } from '../components/Dialog';
import { ErrorNote } from '../components/ErrorNote';
import { useToast } from '../components/Toasts';
import { formatRelative, formatTimestamp } from '../format';
import { useNow } from '../hooks';
import { hrefFor } from '../router';

type Open = { dialog: 'create' } | { dialog: 'edit'; client: Client } | { dialog: 'revoke'; client: Client } | null;

export function Clients() {
  const [list, setList] = useState<Client[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [open, setOpen] = useState<Open>(null);
  const toast = useToast();
  const now = useNow(5000);

  const load = () =>
    api
      .clients()
      .then((clients) => {
        setList(clients);
        setError(null);
      })
      .catch(setError);
  useEffect(() => void load(), []);

  const replace = (client: Client) =>
    setList((l) => {
      const rest = (l ?? []).filter((c) => c.id !== client.id);
      const index = (l ?? []).findIndex((c) => c.id === client.id);
      if (index === -1) return [...rest, client];
      rest.splice(index, 0, client);
      return rest;
    });

  return (
    <>
      <div class="toolbar">
        <h1>Clients</h1>
        <button type="button" class="primary" onClick={() => setOpen({ dialog: 'create' })} data-testid="create-client">
          New client key
        </button>
      </div>
      <ErrorNote error={error} />
      {list === null ? (
        !error && <p class="muted">Loading…</p>
      ) : list.length === 0 ? (
        <p class="empty">No client keys yet. Create one for each agent, bot or team that calls the gateway.</p>
      ) : (
        <div class="table-wrap">
          <table class="table" data-testid="clients-table">
            <thead>
              <tr>
                <th>Name</th>
                <th>Key</th>
                <th>Notes</th>
                <th>Created</th>
                <th>Revoked</th>
                <th>Actions</th>
              </tr>
            </thead>
            <tbody>
              {list.map((c) => (
                <tr key={c.id} data-testid="client-row" data-client-name={c.name} data-client-id={c.id} class={c.revoked_at ? 'dim' : ''}>
                  <td class="strong">
                    <a href={hrefFor('requests', { client: c.id })} title="Show its requests">
                      {c.name}
                    </a>
                  </td>
                  <td>
                    <code class="secret">{c.key_hint}</code>
                  </td>
                  <td class="notes">{c.notes ?? <span class="muted">—</span>}</td>
                  <td title={formatTimestamp(c.created_at)}>{formatRelative(c.created_at, now)}</td>
                  <td>
                    {c.revoked_at ? (
                      <span title={formatTimestamp(c.revoked_at)}>
                        <Badge tone="muted" label="revoked" /> {formatRelative(c.revoked_at, now)}
                      </span>
                    ) : (
                      <span class="muted">—</span>
                    )}
                  </td>
                  <td class="actions">
                    <button type="button" class="small" onClick={() => setOpen({ dialog: 'edit', client: c })} data-testid="edit-client">
                      Edit
                    </button>
                    {!c.revoked_at && (
                      <button
                        type="button"
                        class="small danger-text"
                        onClick={() => setOpen({ dialog: 'revoke', client: c })}
                        data-testid="revoke-client"
                      >
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      {open?.dialog === 'create' && <CreateClient onClose={() => setOpen(null)} onCreated={(c) => replace(c.client)} />}
      {open?.dialog === 'edit' && (
        <EditClient
          client={open.client}
          onClose={() => setOpen(null)}
          onSaved={(c) => {
            replace(c);
            toast(`Saved ${c.name}`, 'good');
          }}
        />
      )}
      {open?.dialog === 'revoke' && (
        <ConfirmDialog
          title="Revoke client key"
          confirmLabel="Revoke"
          onClose={() => setOpen(null)}
          onConfirm={async () => {
            replace(await api.revokeClient(open.client.id));
            toast(`Revoked ${open.client.name}`, 'good');
          }}
        >
          <p>
            Revoke <strong>{open.client.name}</strong> ({open.client.key_hint})? Requests with this key are refused from
            now on. This cannot be undone; create a new key instead.
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}

function CreateClient({ onClose, onCreated }: { onClose: () => void; onCreated: (c: CreatedClient) => void }) {
  const [name, setName] = useState('');
  const [notes, setNotes] = useState('');
  const [created, setCreated] = useState<CreatedClient | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const result = await api.createClient(name.trim(), notes.trim() === '' ? null : notes.trim());
      setCreated(result);
      onCreated(result);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  if (created) {
    return (
      <Dialog title={`Key for ${created.client.name}`} onClose={onClose} testid="new-client-key">
        <p class="warn-text">
          <strong>Copy this key now — you won’t see it again.</strong> Only its digest is stored.
        </p>
        <CopyField value={created.key} />
        <p class="muted small">
          Clients send it as <code>x-api-key</code> or <code>Authorization: Bearer</code> (Claude Code:{' '}
          <code>ANTHROPIC_API_KEY</code>).
        </p>
        <div class="dialog-actions">
          <button type="button" class="primary" onClick={onClose} data-testid="new-key-done">
            Done
          </button>
        </div>
      </Dialog>
    );
  }

  return (
    <Dialog title="New client key" onClose={onClose} testid="client-form">
      <form class="form" onSubmit={submit}>
        <label class="field">
          <span>Name</span>
          <input required value={name} onInput={(e) => setName(e.currentTarget.value)} data-testid="client-name" />
        </label>
        <label class="field">
          <span>Notes (optional)</span>
          <textarea rows={3} value={notes} onInput={(e) => setNotes(e.currentTarget.value)} data-testid="client-notes" />
        </label>
        <ErrorNote error={error} />
        <div class="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy || name.trim() === ''} data-testid="client-submit">
            {busy ? 'Creating…' : 'Create'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function EditClient({ client, onClose, onSaved }: { client: Client; onClose: () => void; onSaved: (c: Client) => void }) {
  const [name, setName] = useState(client.name);
  const [notes, setNotes] = useState(client.notes ?? '');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const patch: { name?: string; notes?: string | null } = {};
    if (name.trim() !== client.name) patch.name = name.trim();
    const newNotes = notes.trim() === '' ? null : notes.trim();
    if (newNotes !== client.notes) patch.notes = newNotes;
    try {
      onSaved(Object.keys(patch).length ? await api.updateClient(client.id, patch) : client);
      onClose();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <Dialog title={`Edit ${client.name}`} onClose={onClose} testid="client-form">
      <form class="form" onSubmit={submit}>
        <label class="field">
          <span>Name</span>
          <input required value={name} onInput={(e) => setName(e.currentTarget.value)} data-testid="client-name" />
        </label>
        <label class="field">
          <span>Notes</span>
          <textarea rows={3} value={notes} onInput={(e) => setNotes(e.currentTarget.value)} data-testid="client-notes" />
        </label>
        <ErrorNote error={error} />
        <div class="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy || name.trim() === ''} data-testid="client-submit">
            {busy ? 'Saving…' : 'Save'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

/** The key as text, selected by one click, with a copy button (the clipboard API needs a secure context; elsewhere the text is selected for Ctrl+C). */
function CopyField({ value }: { value: string }) {
  const [copied, setCopied] = useState(false);
  const text = useRef<HTMLElement>(null);
  const select = () => {
    const el = text.current;
    const selection = window.getSelection();
    if (!el || !selection) return;
    selection.selectAllChildren(el);
  };
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopied(true);
    } catch {
      select();
      setCopied(document.execCommand('copy'));
    }
  };
  return (
    <div class="copy-field">
      <code ref={text} class="key-value" onClick={select} data-testid="new-key-value">
        {value}
      </code>
      <button type="button" onClick={() => void copy()} data-testid="copy-key">
        {copied ? 'Copied' : 'Copy'}
      </button>
    </div>
  );
}
