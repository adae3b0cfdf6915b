// The admin API as the panel sees it (docs/admin-api.md). Every call is same-origin with the
// session cookie; errors come back as `{"error": {"type", "message"}}` and become `ApiError`.

export type EpochMs = number;

export const CREDENTIAL_STATES = ['active', 'cooling_down', 'probing', 'disabled'] as const;
export type CredentialState = (typeof CREDENTIAL_STATES)[number];

/** How one attempt at an upstream call ended (the gateway's `OutcomeClass`). */
export const ATTEMPT_CLASSES = [
  'success',
  'rate_limited',
  'overloaded',
  'server_error',
  'timeout',
  'connect_error',
  'invalid_credential',
  'billing_exhausted',
  'client_error',
] as const;
export type AttemptClass = (typeof ATTEMPT_CLASSES)[number];

/** How a request ended for the client (the gateway's `RequestOutcome`). */
export const REQUEST_OUTCOMES = [
  'success',
  'client_error',
  'upstream_error',
  'no_credential',
  'client_cancelled',
  'stream_cut',
] as const;
export type RequestOutcome = (typeof REQUEST_OUTCOMES)[number];

/** The API answers `api-key`; the docs and requests use `api_key` (both are accepted). */
export type CredentialKind = 'api_key' | 'api-key' | 'oauth';

export interface LimitWindow {
  limit: number;
  remaining: number;
  reset_at: EpochMs | null;
}

export interface RateLimitSnapshot {
  requests: LimitWindow | null;
  tokens: LimitWindow | null;
  input_tokens: LimitWindow | null;
  output_tokens: LimitWindow | null;
  taken_at: EpochMs;
}

export interface Credential {
  id: string;
  name: string;
  kind: CredentialKind;
  masked: string;
  group: string | null;
  priority: number;
  weight: number;
  max_concurrent: number | null;
  enabled: boolean;
  source: string;
  state: CredentialState;
  reason: string | null;
  cooldown_until: EpochMs | null;
  next_probe_at: EpochMs | null;
  in_flight: number;
  ramp_cap: number | null;
  headroom: number | null;
  requests: number;
  errors: number;
  last_outcome: string | null;
  last_error: { class: string; at: EpochMs } | null;
  ratelimit: RateLimitSnapshot | null;
  last_transition_at: EpochMs | null;
  created_at: EpochMs | null;
  /** The organisation it counts as: the operator's group if set, else the provider-reported one. */
  organization: string | null;
  /** The `anthropic-organization-id` the provider reported (null until its first answer). */
  organization_reported: string | null;
  /** Models it is held out for while it serves others. */
  holds: Hold[];
  /** Recent success rate, 0–1. */
  success_rate: number;
  /** A subscription (OAuth) account's usage windows; null for API keys and before the first answer. */
  subscription: SubscriptionUsage | null;
  /** The operator's caps: a burst limit (requests per second) and daily quotas; null for none. */
  rps: number | null;
  daily_requests: number | null;
  daily_tokens: number | null;
  /** Use so far today, counted against the daily quotas. */
  requests_today: number;
  tokens_today: number;
  /** When its prepaid credits run out (no longer picked after). */
  credits_expire_at: EpochMs | null;
  /** An OAuth credential with a refresh token: the gateway renews its access token itself. */
  refreshable: boolean;
  /** When the OAuth access token expires, if known. */
  token_expires_at: EpochMs | null;
}

export interface Hold {
  /** A model id, or a family such as "opus models". */
  models: string;
  until: EpochMs;
  reason: string;
}

export const WINDOW_STATUSES = ['allowed', 'allowed_warning', 'rejected'] as const;
export type WindowStatus = (typeof WINDOW_STATUSES)[number];

export const WINDOW_NAMES = [
  'five_hour',
  'seven_day',
  'seven_day_opus',
  'seven_day_sonnet',
  'seven_day_overage_included',
] as const;
export type WindowName = (typeof WINDOW_NAMES)[number];

export interface UsageWindow {
  name: WindowName;
  status: WindowStatus | null;
  /** Share used, 0–1. */
  utilization: number | null;
  reset_at: EpochMs | null;
  /** When it will be spent at the current rate; null when not before its reset. */
  spent_at: EpochMs | null;
}

export interface SubscriptionUsage {
  /** The account as a whole. */
  status: WindowStatus | null;
  /** The window that binds. */
  binding: WindowName | null;
  reset_at: EpochMs | null;
  windows: UsageWindow[];
  overage_status: WindowStatus | null;
  overage_in_use: boolean;
}

export interface NewCredential {
  name: string;
  secret: string;
  kind?: CredentialKind;
  priority?: number;
  weight?: number;
  max_concurrent?: number | null;
  group?: string | null;
  enabled?: boolean;
  rps?: number;
  daily_requests?: number;
  daily_tokens?: number;
  credits_expire_at?: EpochMs;
  /** An OAuth refresh token: a secret, sent once and never shown again. */
  refresh_token?: string;
  token_expires_at?: EpochMs;
}

/** The caps and the credits' expiry take `null` to remove them. */
export type CredentialPatch = Partial<
  Pick<NewCredential, 'name' | 'secret' | 'priority' | 'weight' | 'max_concurrent' | 'group' | 'enabled'>
> & {
  rps?: number | null;
  daily_requests?: number | null;
  daily_tokens?: number | null;
  credits_expire_at?: EpochMs | null;
};

export interface Transition {
  at: EpochMs;
  from: CredentialState | null;
  to: CredentialState;
  reason: string | null;
  until: EpochMs | null;
}

/** The `credential` live event: a transition plus the credential after it (null once removed). */
export interface CredentialChange extends Transition {
  credential: Credential | null;
}

export type ImportStatus = 'valid' | 'duplicate' | 'malformed';

export interface ImportRow {
  line: number;
  name: string | null;
  status: ImportStatus;
  reason: string | null;
  kind: CredentialKind | null;
  masked: string | null;
}

export interface ImportReport {
  applied: boolean;
  counts: Record<ImportStatus, number>;
  rows: ImportRow[];
}

export interface Client {
  id: string;
  name: string;
  key_hint: string;
  notes: string | null;
  created_at: EpochMs;
  revoked_at: EpochMs | null;
}

export interface CreatedClient {
  client: Client;
  key: string;
}

export type GroupBy = 'none' | 'model' | 'credential' | 'client';
export type Bucket = 'minute' | 'hour';

export interface Series {
  group: string | null;
  name: string;
  requests: number[];
  success: number[];
  errors: number[];
  input_tokens: number[];
  output_tokens: number[];
  cache_read_tokens: number[];
  cache_write_tokens: number[];
  cost_usd: (number | null)[];
  latency_p50_ms: (number | null)[];
  latency_p95_ms: (number | null)[];
  ttft_p50_ms: (number | null)[];
  ttft_p95_ms: (number | null)[];
}

export interface SeriesResponse {
  bucket_ms: number;
  t: EpochMs[];
  series: Series[];
}

export interface Overview {
  live: {
    window_s: number;
    requests_per_s: number;
    success_rate: number | null;
    tokens_per_s: number;
    latency_p50_ms: number | null;
    latency_p95_ms: number | null;
    ttft_p50_ms: number | null;
    ttft_p95_ms: number | null;
    errors_by_class: Record<string, number>;
  };
  today: {
    since: EpochMs;
    requests: number;
    cost_usd: number | null;
    input_tokens: number;
    output_tokens: number;
  };
  credentials: Record<CredentialState, number>;
}

export interface Attempt {
  credential_id: string | null;
  credential_name: string | null;
  class: string;
}

export interface RequestRecord {
  request_id: string;
  at: EpochMs;
  client_id: string | null;
  client_name: string | null;
  attributed: string | null;
  credential_id: string | null;
  credential_name: string | null;
  route: string | null;
  requested_model: string | null;
  served_model: string | null;
  status: number | null;
  outcome: string;
  last_class: string | null;
  streamed: boolean;
  batch: boolean;
  latency_ms: number | null;
  ttft_ms: number | null;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_5m_tokens: number;
  cache_write_1h_tokens: number;
  cost_usd: number | null;
  stop_reason: string | null;
  attempts: Attempt[];
}

export interface RequestFilter {
  since?: EpochMs;
  until?: EpochMs;
  client?: string;
  credential?: string;
  model?: string;
  outcome?: string;
}

export interface RequestPage {
  requests: RequestRecord[];
  next: string | null;
}

export interface AuditEntry {
  id: number | string;
  at: EpochMs;
  actor: string;
  action: string;
  target: string | null;
  detail: unknown;
  remote: string | null;
}

export interface AuditPage {
  entries: AuditEntry[];
  next: number | string | null;
}

export interface Session {
  actor: string;
  expires_at: EpochMs;
}

/** A non-2xx answer, with the API's error type and message and, for 429, when to retry. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly retryAfterS: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** What to tell the operator: the API's message; a 429 says when to try again unless it already does. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) {
    const saysWhen = /retry|try again/i.test(error.message);
    if (error.status === 429 && error.retryAfterS !== null && !saysWhen) {
      return `${error.message} — try again in ${error.retryAfterS} s`;
    }
    return error.message;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}

/** `/admin/api/` next to wherever the panel is mounted; the dev server proxies it. */
export function apiRoot(): string {
  if (import.meta.env.DEV) return '/admin/api/';
  // The app's modules live in `<mount>/assets/`, whatever path the page itself was opened at.
  return new URL(/* @vite-ignore */ '../api/', import.meta.url).pathname;
}

export function apiUrl(path: string, query?: Record<string, string | number | boolean | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== '') params.set(key, String(value));
  }
  const search = params.toString();
  return apiRoot() + path + (search ? `?${search}` : '');
}

/** Called on every 401, so the app can go back to the sign-in form. */
let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

type Body = { json: unknown } | { csv: string } | undefined;

async function call<T>(method: string, url: string, body?: Body, { quiet401 = false } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  let payload: string | undefined;
  if (body && 'json' in body) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body.json);
  } else if (body && 'csv' in body) {
    headers['content-type'] = 'text/csv';
    payload = body.csv;
  }
  const response = await fetch(url, { method, headers, body: payload, credentials: 'same-origin' });
  if (!response.ok) {
    const error = await errorOf(response);
    if (error.status === 401 && !quiet401) onUnauthorized();
    throw error;
  }
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

async function errorOf(response: Response): Promise<ApiError> {
  let type = 'http_error';
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    const body = (await response.json()) as { error?: { type?: string; message?: string } };
    if (body.error?.type) type = body.error.type;
    if (body.error?.message) message = body.error.message;
  } catch {
    // not JSON: keep the status line
  }
  const retry = response.headers.get('retry-after');
  const retryAfterS = retry !== null && /^\d+$/.test(retry) ? Number(retry) : null;
  return new ApiError(response.status, type, message, retryAfterS);
}

export const api = {
  session: () => call<Session>('GET', apiUrl('session'), undefined, { quiet401: true }),
  signIn: (token: string) => call<void>('POST', apiUrl('session'), { json: { token } }, { quiet401: true }),
  signOut: () => call<void>('DELETE', apiUrl('session'), undefined, { quiet401: true }),

  credentials: () => call<{ credentials: Credential[] }>('GET', apiUrl('credentials')).then((r) => r.credentials),
  addCredential: (body: NewCredential) => call<Credential>('POST', apiUrl('credentials'), { json: body }),
  updateCredential: (id: string, patch: CredentialPatch) =>
    call<Credential>('PATCH', apiUrl(`credentials/${enc(id)}`), { json: patch }),
  removeCredential: (id: string) => call<void>('DELETE', apiUrl(`credentials/${enc(id)}`)),
  enableCredential: (id: string) => call<Credential>('POST', apiUrl(`credentials/${enc(id)}/enable`)),
  disableCredential: (id: string) => call<Credential>('POST', apiUrl(`credentials/${enc(id)}/disable`)),
  clearCooldown: (id: string) => call<Credential>('POST', apiUrl(`credentials/${enc(id)}/clear-cooldown`)),
  probeCredential: (id: string) =>
    call<{ outcome: string; credential: Credential }>('POST', apiUrl(`credentials/${enc(id)}/probe`)),
  transitions: (id: string, limit = 50) =>
    call<{ transitions: Transition[] }>('GET', apiUrl(`credentials/${enc(id)}/transitions`, { limit })).then(
      (r) => r.transitions,
    ),
  importCredentials: (csv: string, dryRun: boolean) =>
    call<ImportReport>('POST', apiUrl('credentials/import', { dry_run: dryRun }), { csv }),
  exportUrl: (secrets: boolean) => apiUrl('credentials/export', { secrets: secrets ? true : undefined }),

  clients: () => call<{ clients: Client[] }>('GET', apiUrl('clients')).then((r) => r.clients),
  createClient: (name: string, notes: string | null) =>
    call<CreatedClient>('POST', apiUrl('clients'), { json: { name, notes } }),
  updateClient: (id: string, patch: { name?: string; notes?: string | null }) =>
    call<Client>('PATCH', apiUrl(`clients/${enc(id)}`), { json: patch }),
  revokeClient: (id: string) => call<Client>('POST', apiUrl(`clients/${enc(id)}/revoke`)),

  overview: () => call<Overview>('GET', apiUrl('overview')),
  series: (q: { since: EpochMs; until?: EpochMs; bucket: Bucket; group_by: GroupBy }) =>
    call<SeriesResponse>('GET', apiUrl('usage/series', q)),
  requests: (filter: RequestFilter, before?: string, limit = 100) =>
    call<RequestPage>('GET', apiUrl('requests', { ...filter, before, limit })),
  audit: (before?: number | string, limit = 100) =>
    call<AuditPage>('GET', apiUrl('audit', { before: before ?? undefined, limit })),
  eventsUrl: () => apiUrl('events'),
};

function enc(id: string): string {
  return encodeURIComponent(id);
}
