import { describe, expect, it } from 'vitest';

import type { CredentialChange } from './api';
import {
  applyCredentialChange,
  canClearCooldown,
  capsText,
  concurrencyText,
  creditsText,
  dateInputValue,
  groupByOrganization,
  headroomPercent,
  holdText,
  kindLabel,
  limitsPatch,
  liveHolds,
  oauthText,
  organizationOf,
  parseDateInput,
  parseDateTimeInput,
  parseOptionalWhole,
  quotaSpent,
  shortOrganization,
  successRateText,
  successRateTone,
  takesRefreshToken,
  withoutCredential,
} from './credentials';
import { credential } from './testdata/fixtures';

function change(over: Parameters<typeof credential>[0]): CredentialChange {
  return { at: 5, from: 'active', to: 'cooling_down', reason: 'rate limited', until: 65, credential: credential(over) };
}

describe('applyCredentialChange', () => {
  const list = [credential({ id: 'a', name: 'a' }), credential({ id: 'b', name: 'b' })];

  it('replaces the row of that credential in place', () => {
    const next = applyCredentialChange(list, change({ id: 'b', name: 'b', state: 'cooling_down' }));
    expect(next.map((c) => [c.id, c.state])).toEqual([
      ['a', 'active'],
      ['b', 'cooling_down'],
    ]);
    expect(list[1]!.state).toBe('active');
  });

  it('adds a credential it has not seen at the end', () => {
    const next = applyCredentialChange(list, change({ id: 'c', name: 'c' }));
    expect(next.map((c) => c.id)).toEqual(['a', 'b', 'c']);
  });

  it('leaves the list alone when the credential is gone', () => {
    const gone: CredentialChange = { ...change({ id: 'b' }), credential: null };
    expect(applyCredentialChange(list, gone)).toBe(list);
  });

  it('removes by id', () => {
    expect(withoutCredential(list, 'a').map((c) => c.id)).toEqual(['b']);
  });
});

describe('row helpers', () => {
  it('offers clearing a cooldown only while one runs', () => {
    expect(canClearCooldown('cooling_down')).toBe(true);
    expect(canClearCooldown('probing')).toBe(true);
    expect(canClearCooldown('active')).toBe(false);
    expect(canClearCooldown('disabled')).toBe(false);
  });

  it('writes in-flight against the limit', () => {
    expect(concurrencyText({ in_flight: 3, max_concurrent: 8, ramp_cap: null })).toBe('3 / 8');
    expect(concurrencyText({ in_flight: 0, max_concurrent: null, ramp_cap: null })).toBe('0 / ∞');
    expect(concurrencyText({ in_flight: 1, max_concurrent: 8, ramp_cap: 2 })).toBe('1 / 2 ↗8');
    expect(concurrencyText({ in_flight: 1, max_concurrent: 2, ramp_cap: 2 })).toBe('1 / 2');
  });

  it('names both spellings of an API key', () => {
    expect(kindLabel('api-key')).toBe('API key');
    expect(kindLabel('api_key')).toBe('API key');
    expect(kindLabel('oauth')).toBe('OAuth');
    expect(kindLabel(null)).toBeNull();
  });

  it('clamps headroom into a bar width', () => {
    expect(headroomPercent(null)).toBeNull();
    expect(headroomPercent(0.426)).toBe(43);
    expect(headroomPercent(1.2)).toBe(100);
    expect(headroomPercent(-0.1)).toBe(0);
  });
});

describe('organisation', () => {
  const ORG = '3f1c2a9e-1b2c-4d3e-8f4a-5b6c7d8e9f00';

  it('shortens a UUID to its first block and keeps a group label', () => {
    expect(shortOrganization(ORG)).toBe('3f1c2a9e…');
    expect(shortOrganization('team-research')).toBe('team-research');
    expect(shortOrganization('a-very-long-group-label-indeed')).toBe('a-very-long-group-l…');
  });

  it('tells the provider-reported organisation from the operator’s group', () => {
    expect(organizationOf({ organization: ORG, organization_reported: ORG })).toEqual({
      id: ORG,
      short: '3f1c2a9e…',
      source: 'reported',
      reported: null,
    });
    expect(organizationOf({ organization: 'team-a', organization_reported: ORG })).toEqual({
      id: 'team-a',
      short: 'team-a',
      source: 'group',
      reported: ORG,
    });
    expect(organizationOf({ organization: 'team-a', organization_reported: null })?.source).toBe('group');
    expect(organizationOf({ organization: null, organization_reported: null })).toBeNull();
  });

  it('groups by organisation, the unknown last, each group in list order', () => {
    const list = [
      credential({ id: 'a', organization: 'zeta', organization_reported: 'zeta' }),
      credential({ id: 'b', organization: null }),
      credential({ id: 'c', organization: 'alpha', organization_reported: ORG }),
      credential({ id: 'd', organization: 'zeta', organization_reported: 'zeta' }),
    ];
    const groups = groupByOrganization(list);
    expect(groups.map((g) => [g.organization?.id ?? null, g.credentials.map((c) => c.id)])).toEqual([
      ['alpha', ['c']],
      ['zeta', ['a', 'd']],
      [null, ['b']],
    ]);
    expect(groups[0]!.organization?.source).toBe('group');
    expect(groups[1]!.organization?.source).toBe('reported');
  });
});

describe('holds and success rate', () => {
  const now = new Date(2026, 10, 21, 12, 0, 0).getTime();
  const hold = (models: string, inMs: number) => ({ models, until: now + inMs, reason: 'model not allowed (403)' });

  it('keeps the holds in force, the first to end first', () => {
    const holds = [hold('opus models', 7_200_000), hold('claude-haiku-5-5', -1000), hold('claude-opus-5-5', 600_000)];
    expect(liveHolds(holds, now).map((h) => h.models)).toEqual(['claude-opus-5-5', 'opus models']);
  });

  it('says what a hold covers, until when and why', () => {
    expect(holdText(hold('claude-opus-5-5', 3_600_000), now)).toBe(
      'held out for claude-opus-5-5 until 13:00:00: model not allowed (403)',
    );
    expect(holdText(hold('opus models', 2 * 86_400_000), now)).toBe(
      'held out for opus models until Nov 23 12:00: model not allowed (403)',
    );
  });

  it('writes the success rate once there is one', () => {
    expect(successRateText({ requests: 0, success_rate: 1 })).toBeNull();
    expect(successRateText({ requests: 10, success_rate: 0.985 })).toBe('98.5% success');
    expect(successRateText({ requests: 10, success_rate: 1 })).toBe('100% success');
    expect(successRateTone(0.99)).toBe('muted');
    expect(successRateTone(0.95)).toBe('warn');
    expect(successRateTone(0.5)).toBe('bad');
  });
});

describe('caps, credits and OAuth refresh', () => {
  const NOW = Date.UTC(2026, 11, 4, 12, 0, 0);

  it('lists the caps that are set with today\'s use', () => {
    const c = credential({ rps: 3, daily_requests: 1000, daily_tokens: 20_000_000, requests_today: 120, tokens_today: 2_100_000 });
    expect(capsText(c)).toBe('3/s · 120 / 1000 req today · 2.1M / 20M tokens today');
    expect(capsText(credential({ rps: 5 }))).toBe('5/s');
    expect(capsText(credential({ daily_tokens: 5000, tokens_today: 0 }))).toBe('0 / 5k tokens today');
    expect(capsText(credential())).toBeNull();
  });

  it('says when a daily quota is used up', () => {
    expect(quotaSpent(credential({ daily_requests: 10, requests_today: 10 }))).toBe(true);
    expect(quotaSpent(credential({ daily_tokens: 10, tokens_today: 9 }))).toBe(false);
    expect(quotaSpent(credential({ rps: 1, requests_today: 1_000 }))).toBe(false);
  });

  it('writes the credits\' expiry as a day, past or to come', () => {
    expect(creditsText(Date.UTC(2027, 0, 31), NOW)).toBe('credits expire 31 Jan 2027');
    expect(creditsText(Date.UTC(2026, 11, 31), NOW)).toBe('credits expire 31 Dec');
    expect(creditsText(Date.UTC(2026, 11, 2), NOW)).toBe('credits expired 2 Dec');
    expect(creditsText(null, NOW)).toBeNull();
  });

  it('tells whether an OAuth token refreshes, with its expiry', () => {
    const oauth = (over: Parameters<typeof credential>[0]) => credential({ kind: 'oauth', ...over });
    expect(oauthText(oauth({ refreshable: true, token_expires_at: NOW + 3 * 3_600_000 }), NOW)).toBe(
      'refreshes automatically · token expires in 3 h',
    );
    expect(oauthText(oauth({ refreshable: true }), NOW)).toBe('refreshes automatically');
    expect(oauthText(oauth({ token_expires_at: NOW - 2 * 3_600_000 }), NOW)).toBe('token expired 2 h ago · no refresh token');
    expect(oauthText(oauth({}), NOW)).toBeNull();
    expect(oauthText(credential({ refreshable: true }), NOW)).toBeNull();
  });

  it('offers a refresh token for an OAuth secret or kind only', () => {
    expect(takesRefreshToken(' sk-ant-oat01-abc', '')).toBe(true);
    expect(takesRefreshToken('sk-ant-api03-abc', 'oauth')).toBe(true);
    expect(takesRefreshToken('sk-ant-api03-abc', '')).toBe(false);
    expect(takesRefreshToken('sk-ant-oat01-abc', 'api_key')).toBe(false);
  });

  it('reads the optional form fields', () => {
    expect(parseOptionalWhole(' 12 ', 'Burst limit')).toBe(12);
    expect(parseOptionalWhole('', 'Burst limit')).toBeNull();
    expect(() => parseOptionalWhole('1.5', 'Burst limit')).toThrow('Burst limit must be a whole number');
    expect(parseDateInput('2027-01-31')).toBe(Date.UTC(2027, 0, 31));
    expect(parseDateInput('')).toBeNull();
    expect(() => parseDateInput('31/01/2027')).toThrow();
    expect(parseDateTimeInput('2027-01-31T14:30')).toBe(Date.UTC(2027, 0, 31, 14, 30));
    expect(parseDateTimeInput('')).toBeNull();
    expect(dateInputValue(Date.UTC(2027, 0, 31, 9))).toBe('2027-01-31');
    expect(dateInputValue(null)).toBe('');
  });

  it('patches only the limits that changed, null removing one', () => {
    const current = { rps: 3, daily_requests: 100, daily_tokens: null, credits_expire_at: 5 };
    expect(limitsPatch(current, { rps: 3, daily_requests: null, daily_tokens: 1000, credits_expire_at: 5 })).toEqual({
      daily_requests: null,
      daily_tokens: 1000,
    });
    expect(limitsPatch(current, current)).toEqual({});
  });
});
