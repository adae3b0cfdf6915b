// The credential list as live events change it, and how a row's organisation, holds and
// success rate read. Pure, so the rules are tested.

import type { Credential, CredentialChange, CredentialKind, CredentialState, EpochMs, Hold } from './api';
import type { Tone } from './components/Badge';
import { formatCount, formatDay, formatPercent, formatRelative, formatTime } from './format';

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

export type OrganizationSource = 'group' | 'reported';

export interface Organization {
  /** The full id or group label. */
  id: string;
  /** What the table shows: a UUID's first block, a long label cut short. */
  short: string;
  /** The operator's group, or the organisation the provider reported. */
  source: OrganizationSource;
  /** The provider-reported organisation when it is not the one shown (a group overrides it). */
  reported: string | null;
}

/** The organisation a credential counts as, or null before it is known (no group, no answer yet). */
export function organizationOf(c: Pick<Credential, 'organization' | 'organization_reported'>): Organization | null {
  if (c.organization === null) return null;
  const reported = c.organization === c.organization_reported;
  return {
    id: c.organization,
    short: shortOrganization(c.organization),
    source: reported ? 'reported' : 'group',
    reported: reported ? null : c.organization_reported,
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SHORT_MAX = 20;

/** "3f1c2a9e-1b2c-4d3e-8f4a-5b6c7d8e9f00" → "3f1c2a9e…"; a label up to 20 characters as it is. */
export function shortOrganization(id: string): string {
  if (UUID.test(id)) return `${id.slice(0, 8)}…`;
  return id.length > SHORT_MAX ? `${id.slice(0, SHORT_MAX - 1)}…` : id;
}

export interface OrganizationGroup {
  organization: Organization | null;
  credentials: Credential[];
}

/**
 * The list split by organisation, ordered by its id (credentials whose organisation is not
 * known yet last), each group in the list's own order.
 */
export function groupByOrganization(list: Credential[]): OrganizationGroup[] {
  const groups = new Map<string | null, OrganizationGroup>();
  for (const c of list) {
    const group = groups.get(c.organization);
    if (group) group.credentials.push(c);
    else groups.set(c.organization, { organization: organizationOf(c), credentials: [c] });
  }
  return [...groups.values()].sort((a, b) => {
    const x = a.organization?.id;
    const y = b.organization?.id;
    if (x === y) return 0;
    if (x === undefined) return 1;
    if (y === undefined) return -1;
    return x < y ? -1 : 1;
  });
}

/** Holds still in force at `now`, the one ending first first. */
export function liveHolds(holds: Hold[], now: number): Hold[] {
  return holds.filter((h) => h.until > now).sort((a, b) => a.until - b.until);
}

/** "held out for claude-opus-5-5 until 14:03:22: model not allowed (403)". */
export function holdText(hold: Hold, now: number): string {
  return `held out for ${hold.models} until ${formatTime(hold.until, now)}: ${hold.reason}`;
}

/** "98.5% success", or null before the credential served anything (the rate starts at 1). */
export function successRateText(c: Pick<Credential, 'requests' | 'success_rate'>): string | null {
  if (c.requests === 0 || !Number.isFinite(c.success_rate)) return null;
  return `${formatPercent(c.success_rate)} success`;
}

/** Below 98% is worth a look, below 90% is failing. */
export function successRateTone(rate: number): Extract<Tone, 'muted' | 'warn' | 'bad'> {
  if (rate >= 0.98) return 'muted';
  return rate >= 0.9 ? 'warn' : 'bad';
}

type Caps = Pick<Credential, 'rps' | 'daily_requests' | 'daily_tokens'>;

/**
 * The caps that are set, with today's use against the daily quotas:
 * "3/s · 120 / 1000 req today · 2.1M / 20M tokens today"; null when there are none.
 */
export function capsText(c: Caps & Pick<Credential, 'requests_today' | 'tokens_today'>): string | null {
  const parts: string[] = [];
  if (c.rps !== null) parts.push(`${c.rps}/s`);
  if (c.daily_requests !== null) parts.push(`${c.requests_today} / ${c.daily_requests} req today`);
  if (c.daily_tokens !== null) {
    parts.push(`${formatCount(c.tokens_today)} / ${formatCount(c.daily_tokens)} tokens today`);
  }
  return parts.length ? parts.join(' · ') : null;
}

/** A daily quota is used up: the credential is not picked again before midnight. */
export function quotaSpent(c: Caps & Pick<Credential, 'requests_today' | 'tokens_today'>): boolean {
  return (
    (c.daily_requests !== null && c.requests_today >= c.daily_requests) ||
    (c.daily_tokens !== null && c.tokens_today >= c.daily_tokens)
  );
}

/** "credits expire 31 Jan", "credits expired 2 Jan"; null when no expiry is set. */
export function creditsText(at: EpochMs | null, now: number): string | null {
  if (at === null) return null;
  return `credits ${at > now ? 'expire' : 'expired'} ${formatDay(at, now)}`;
}

/**
 * An OAuth credential's token: "refreshes automatically · token expires in 3 h" when it has a
 * refresh token; "token expired 2 h ago · no refresh token" when only the expiry is known; null
 * for API keys and tokens about which nothing is known.
 */
export function oauthText(c: Pick<Credential, 'kind' | 'refreshable' | 'token_expires_at'>, now: number): string | null {
  if (c.kind !== 'oauth') return null;
  const expiry =
    c.token_expires_at === null
      ? null
      : `token ${c.token_expires_at > now ? 'expires' : 'expired'} ${formatRelative(c.token_expires_at, now)}`;
  if (c.refreshable) return expiry ? `refreshes automatically · ${expiry}` : 'refreshes automatically';
  return expiry ? `${expiry} · no refresh token` : null;
}

/** The form offers a refresh token for an OAuth token: chosen as the kind, or detected from the secret. */
export function takesRefreshToken(secret: string, kind: CredentialKind | ''): boolean {
  if (kind === 'oauth') return true;
  return kind === '' && secret.trim().startsWith('sk-ant-oat');
}

/** An optional whole-number field: empty → null (no cap). The API says what range it takes. */
export function parseOptionalWhole(text: string, label: string): number | null {
  const t = text.trim();
  if (t === '') return null;
  const n = Number(t);
  if (!Number.isInteger(n)) throw new Error(`${label} must be a whole number`);
  return n;
}

/** A date input's "2027-01-31" as the start of that local day; empty → null. */
export function parseDateInput(text: string): EpochMs | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text.trim());
  if (text.trim() === '') return null;
  if (!m) throw new Error(`not a date: ${text}`);
  return new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3])).getTime();
}

/** A datetime-local input's "2027-01-31T14:30" as local time; empty → null. */
export function parseDateTimeInput(text: string): EpochMs | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(text.trim());
  if (text.trim() === '') return null;
  if (!m) throw new Error(`not a date and time: ${text}`);
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  return new Date(y!, mo! - 1, d!, h!, mi!, Number.isNaN(s) ? 0 : s!).getTime();
}

/** The value a date input shows for `at` (its local day); null → "". */
export function dateInputValue(at: EpochMs | null): string {
  if (at === null) return '';
  const d = new Date(at);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

type Limits = Caps & Pick<Credential, 'credits_expire_at'>;

/**
 * The caps and credits' expiry that differ from the credential's, for a PATCH: a value to set,
 * `null` to remove; the unchanged ones are left out.
 */
export function limitsPatch(current: Limits, next: Limits): Partial<Limits> {
  const patch: Partial<Limits> = {};
  for (const key of ['rps', 'daily_requests', 'daily_tokens', 'credits_expire_at'] as const) {
    if (next[key] !== current[key]) patch[key] = next[key];
  }
  return patch;
}
