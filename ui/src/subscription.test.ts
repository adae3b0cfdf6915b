import { describe, expect, it } from 'vitest';

import {
  isBinding,
  overageBadge,
  resetText,
  spentText,
  statusLabel,
  statusTone,
  utilizationPercent,
  windowLabel,
  windowTone,
} from './subscription';
import { subscription, usageWindow } from './testdata/fixtures';

const NOW = 1_700_000_000_000;
const MIN = 60_000;
const HOUR = 60 * MIN;

describe('window names and statuses', () => {
  it('names every window in words', () => {
    expect(windowLabel('five_hour')).toBe('5-hour');
    expect(windowLabel('seven_day')).toBe('7-day');
    expect(windowLabel('seven_day_opus')).toBe('7-day Opus');
    expect(windowLabel('seven_day_sonnet')).toBe('7-day Sonnet');
    expect(windowLabel('seven_day_overage_included')).toBe('7-day included');
    expect(windowLabel('thirty_day')).toBe('thirty day');
  });

  it('reads a status as a word and a tone', () => {
    expect(statusLabel('allowed')).toBe('allowed');
    expect(statusLabel('allowed_warning')).toBe('warning');
    expect(statusLabel('rejected')).toBe('rejected');
    expect(statusLabel(null)).toBeNull();
    expect([statusTone('allowed'), statusTone('allowed_warning'), statusTone('rejected'), statusTone(null)]).toEqual([
      'good',
      'warn',
      'bad',
      'muted',
    ]);
  });

  it('colours a bar by its status, else by how full it is', () => {
    expect(windowTone({ status: 'rejected', utilization: 0.2 })).toBe('bad');
    expect(windowTone({ status: 'allowed', utilization: 0.9 })).toBe('good');
    expect(windowTone({ status: null, utilization: 0.5 })).toBe('good');
    expect(windowTone({ status: null, utilization: 0.8 })).toBe('warn');
    expect(windowTone({ status: null, utilization: 1 })).toBe('bad');
    expect(windowTone({ status: null, utilization: null })).toBe('muted');
  });

  it('clamps utilization into a bar width', () => {
    expect(utilizationPercent(0.426)).toBe(43);
    expect(utilizationPercent(1.3)).toBe(100);
    expect(utilizationPercent(-0.2)).toBe(0);
    expect(utilizationPercent(null)).toBeNull();
    expect(utilizationPercent(Number.NaN)).toBeNull();
  });
});

describe('times', () => {
  it('says when a window resets', () => {
    expect(resetText(NOW + 3 * HOUR + 12 * MIN, NOW)).toBe('resets in 3h 12m');
    expect(resetText(NOW + 4 * 24 * HOUR + 2 * HOUR, NOW)).toBe('resets in 4d 2h');
    expect(resetText(NOW + 42_000, NOW)).toBe('resets in 42 s');
    expect(resetText(NOW - 5 * MIN, NOW)).toBe('reset 5 min ago');
    expect(resetText(null, NOW)).toBeNull();
  });

  it('says roughly when a window will be spent', () => {
    const at = (ms: number | null) =>
      spentText(usageWindow({ utilization: 0.5, spent_at: ms === null ? null : NOW + ms }), NOW);
    expect(at(2 * HOUR + 10 * MIN)).toBe('spent in ~2h');
    expect(at(90 * MIN)).toBe('spent in ~2h');
    expect(at(25 * MIN + 20_000)).toBe('spent in ~25 min');
    expect(at(59 * MIN + 50_000)).toBe('spent in ~1h');
    expect(at(3 * 24 * HOUR)).toBe('spent in ~3d');
    expect(at(40_000)).toBe('spent in ~1 min');
    expect(at(10_000)).toBe('spent any moment now');
    expect(at(-MIN)).toBe('spent any moment now');
    expect(at(null)).toBeNull();
  });

  it('forecasts nothing for a window already spent', () => {
    expect(spentText(usageWindow({ status: 'rejected', utilization: 1, spent_at: NOW }), NOW)).toBeNull();
    expect(spentText(usageWindow({ status: null, utilization: 1, spent_at: NOW }), NOW)).toBeNull();
    expect(spentText(usageWindow({ status: 'allowed_warning', utilization: 0.9, spent_at: NOW + HOUR }), NOW)).toBe(
      'spent in ~1h',
    );
  });
});

describe('the account', () => {
  it('marks the window that binds', () => {
    const s = subscription();
    expect(s.windows.filter((w) => isBinding(s, w)).map((w) => w.name)).toEqual(['five_hour']);
    expect(isBinding(subscription({ binding: null }), usageWindow())).toBe(false);
  });

  it('shows overage only when the provider reports it', () => {
    expect(overageBadge(subscription())).toBeNull();
    expect(overageBadge(subscription({ overage_status: 'allowed' }))).toEqual({
      label: 'overage allowed',
      tone: 'good',
    });
    expect(overageBadge(subscription({ overage_status: 'allowed', overage_in_use: true }))).toEqual({
      label: 'overage in use',
      tone: 'warn',
    });
    expect(overageBadge(subscription({ overage_status: 'rejected' }))).toEqual({
      label: 'overage rejected',
      tone: 'bad',
    });
    expect(overageBadge(subscription({ overage_status: 'allowed_warning' }))).toEqual({
      label: 'overage warning',
      tone: 'warn',
    });
  });
});
