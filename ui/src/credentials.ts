// The credential list as live events change it. Pure, so the replace-the-row rule is tested.

import type { Credential, CredentialChange, CredentialKind, CredentialState } from './api';

/**
 * The row for `change.credential` replaced in place, or added at the end when it is new; a
 * change without a credential (it was removed meanwhile) leaves the list to the next reload.
 */
export function applyCredentialChange(list: Credential[], change: CredentialChange): Credential[] {
  return change.credential ? upsertCredential(list, change.credential) : list;
}

export function upsertCredential(list: Credential[], credential: Credential): Credential[] {
  const index = list.findIndex((c) => c.id === credential.id);
  if (index === -1) return [...list, credential];
  const next = list.slice();
  next[index] = credential;
  return next;
}

export function withoutCredential(list: Credential[], id: string): Credential[] {
  return list.filter((c) => c.id !== id);
}

/** "API key" or "OAuth token"; null (a malformed import row) → null. */
export function kindLabel(kind: CredentialKind | null): string | null {
  if (kind === null) return null;
  return kind === 'oauth' ? 'OAuth' : 'API key';
}

/** A cooldown can be cleared only while one is running or its probe is pending. */
export function canClearCooldown(state: CredentialState): boolean {
  return state === 'cooling_down' || state === 'probing';
}

/**
 * "3 / 8", "0 / ∞"; while the limit ramps back up after a recovery, the ramp's cap is the
 * limit: "1 / 2 ↗8".
 */
export function concurrencyText(c: Pick<Credential, 'in_flight' | 'max_concurrent' | 'ramp_cap'>): string {
  const max = c.max_concurrent === null ? '∞' : String(c.max_concurrent);
  if (isRamping(c)) return `${c.in_flight} / ${c.ramp_cap} ↗${max}`;
  return `${c.in_flight} / ${max}`;
}

export function isRamping(c: Pick<Credential, 'max_concurrent' | 'ramp_cap'>): boolean {
  return c.ramp_cap !== null && (c.max_concurrent === null || c.ramp_cap < c.max_concurrent);
}

/** Headroom as a width percentage for the bar, or null when the provider said nothing. */
export function headroomPercent(headroom: number | null): number | null {
  if (headroom === null || !Number.isFinite(headroom)) return null;
  return Math.round(Math.min(1, Math.max(0, headroom)) * 100);
}
