// Coloured labels: a credential's state, a request's outcome, an import row's status.

import type { CredentialState } from '../api';
import { humanize } from '../format';

export type Tone = 'good' | 'warn' | 'bad' | 'info' | 'muted';

export function Badge({ tone, label, title }: { tone: Tone; label: string; title?: string }) {
  return (
    <span class={`badge tone-${tone}`} title={title}>
      {label}
    </span>
  );
}

const STATE_TONE: Record<CredentialState, Tone> = {
  active: 'good',
  cooling_down: 'warn',
  probing: 'info',
  disabled: 'muted',
};

export function StateBadge({ state }: { state: CredentialState }) {
  return (
    <span class={`badge tone-${STATE_TONE[state] ?? 'muted'}`} data-testid="state-badge" data-state={state}>
      {humanize(state)}
    </span>
  );
}

export function outcomeTone(outcome: string): Tone {
  switch (outcome) {
    case 'success':
      return 'good';
    case 'client_error':
    case 'client_cancelled':
      return 'muted';
    case 'no_credential':
    case 'rate_limited':
    case 'overloaded':
      return 'warn';
    default:
      return 'bad';
  }
}

export function OutcomeBadge({ outcome }: { outcome: string }) {
  return (
    <span class={`badge tone-${outcomeTone(outcome)}`} data-testid="outcome-badge" data-outcome={outcome}>
      {humanize(outcome)}
    </span>
  );
}
