// Small builders for the unit tests' API values; only the fields a test cares about differ.

import type { Credential, Overview, RequestRecord, SubscriptionUsage, UsageWindow } from '../api';

export function credential(over: Partial<Credential> = {}): Credential {
  return {
    id: 'key_1',
    name: 'main',
    kind: 'api_key',
    masked: 'sk-ant-api03-…abcd',
    group: null,
    priority: 0,
    weight: 1,
    max_concurrent: 8,
    enabled: true,
    source: 'admin',
    state: 'active',
    reason: null,
    cooldown_until: null,
    next_probe_at: null,
    in_flight: 0,
    ramp_cap: null,
    headroom: null,
    requests: 0,
    errors: 0,
    last_outcome: null,
    last_error: null,
    ratelimit: null,
    last_transition_at: null,
    created_at: 1_700_000_000_000,
    organization: null,
    organization_reported: null,
    holds: [],
    success_rate: 1,
    subscription: null,
    rps: null,
    daily_requests: null,
    daily_tokens: null,
    requests_today: 0,
    tokens_today: 0,
    credits_expire_at: null,
    refreshable: false,
    token_expires_at: null,
    ...over,
  };
}

/** A Max-like account: its 5-hour window binds and fills, Opus is spent, overage is off. */
export function subscription(over: Partial<SubscriptionUsage> = {}): SubscriptionUsage {
  return {
    status: 'allowed',
    binding: 'five_hour',
    reset_at: 1_700_000_000_000 + 3 * 3_600_000,
    windows: [
      usageWindow({ name: 'five_hour', utilization: 0.42, spent_at: 1_700_000_000_000 + 2 * 3_600_000 }),
      usageWindow({ name: 'seven_day', utilization: 0.1, reset_at: 1_700_000_000_000 + 4 * 86_400_000 }),
      usageWindow({ name: 'seven_day_opus', status: 'rejected', utilization: 1 }),
    ],
    overage_status: null,
    overage_in_use: false,
    ...over,
  };
}

export function usageWindow(over: Partial<UsageWindow> = {}): UsageWindow {
  return {
    name: 'five_hour',
    status: 'allowed',
    utilization: 0,
    reset_at: 1_700_000_000_000 + 3 * 3_600_000,
    spent_at: null,
    ...over,
  };
}

export function request(over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    request_id: 'req_1',
    at: 1_700_000_000_000,
    client_id: 'cl_1',
    client_name: 'ci',
    attributed: null,
    credential_id: 'key_1',
    credential_name: 'main',
    route: 'messages',
    requested_model: 'claude-haiku-4-5',
    served_model: 'claude-haiku-4-5-20251001',
    status: 200,
    outcome: 'success',
    last_class: 'success',
    streamed: true,
    batch: false,
    latency_ms: 1200,
    ttft_ms: 300,
    input_tokens: 100,
    output_tokens: 50,
    cache_read_tokens: 0,
    cache_write_5m_tokens: 0,
    cache_write_1h_tokens: 0,
    cost_usd: 0.001,
    stop_reason: 'end_turn',
    attempts: [],
    ...over,
  };
}

export function overview(over: Partial<Overview['live']> = {}): Overview {
  return {
    live: {
      window_s: 60,
      requests_per_s: 1.5,
      success_rate: 0.98,
      tokens_per_s: 420,
      latency_p50_ms: 120,
      latency_p95_ms: 2400,
      ttft_p50_ms: 80,
      ttft_p95_ms: null,
      errors_by_class: {},
      ...over,
    },
    today: { since: 1_700_000_000_000, requests: 1234, cost_usd: 1.23, input_tokens: 1, output_tokens: 2 },
    credentials: { active: 3, cooling_down: 1, probing: 0, disabled: 0 },
  };
}
