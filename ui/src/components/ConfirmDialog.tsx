// "Are you sure?" with the action's own error shown in place when it fails.

import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';

import { Dialog } from './Dialog';
import { ErrorNote } from './ErrorNote';

interface Props {
  title: string;
  confirmLabel: string;
  onConfirm: () => Promise<void>;
  onClose: () => void;
  children: ComponentChildren;
}

export function ConfirmDialog({ title, confirmLabel, onConfirm, onClose, children }: Props) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      onClose();
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <Dialog title={title} onClose={onClose} testid="confirm-dialog">
      <div class="confirm-text">{children}</div>
      <ErrorNote error={error} />
      <div class="dialog-actions">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <button type="button" class="danger" disabled={busy} onClick={confirm} data-testid="confirm-button">
          {busy ? 'Working…' : confirmLabel}
        </button>
      </div>
    </Dialog>
  );
}
