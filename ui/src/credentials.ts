// The credential list as live events change it. Pure, so the replace-the-row rule is tested.

import type { Credential, CredentialChange, CredentialState } from './api';

/** The row for `change.credential` replaced in place, or added at the end when it is new. */
export function applyCredentialChange(list: Credential[], change: CredentialChange): Credential[] {
  return upsertCredential(list, change.credential);
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

/** A cooldown can be cleared only while one is running or its probe is pending. */
export function canClearCooldown(state: CredentialState): boolean {
  return state === 'cooling_down' || state === 'probing';
}

/** "3 / 8", "0 / ∞"; a ramp cap below the maximum shows as "1 / 2 (ramping, max 8)". */
export function concurrencyText(c: Pick<Credential, 'in_flight' | 'max_concurrent' | 'ramp_cap'>): string {
  const max = c.max_concurrent === null ? '∞' : String(c.max_concurrent);
  if (c.ramp_cap !== null && (c.max_concurrent === null || c.ramp_cap < c.max_concurrent)) {
    return `${c.in_flight} / ${c.ramp_cap} (ramping, max ${max})`;
  }
  return `${c.in_flight} / ${max}`;
}

/** Headroom as a width percentage for the bar, or null when the provider said nothing. */
export function headroomPercent(headroom: number | null): number | null {
  if (headroom === null || !Number.isFinite(headroom)) return null;
  return Math.round(Math.min(1, Math.max(0, headroom)) * 100);
}
