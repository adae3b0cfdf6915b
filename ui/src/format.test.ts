import { describe, expect, it } from 'vitest';

import {
  formatCount,
  formatCountdown,
  formatDetail,
  formatDuration,
  formatPercent,
  formatRate,
  formatRelative,
  formatDay,
  formatTick,
  formatTime,
  formatTimestamp,
  formatUsd,
  humanize,
} from './format';

describe('formatCount', () => {
  it.each([
    [0, '0'],
    [7, '7'],
    [2.5, '2.5'],
    [950, '950'],
    [999.6, '1k'],
    [1234, '1.2k'],
    [56_789, '57k'],
    [999_999, '1M'],
    [1_234_567, '1.2M'],
    [3_400_000_000, '3.4B'],
    [-1500, '-1.5k'],
  ])('%d → %s', (n, text) => expect(formatCount(n)).toBe(text));

  it('has a dash for nothing', () => {
    expect(formatCount(null)).toBe('—');
    expect(formatCount(Number.NaN)).toBe('—');
  });
});

describe('formatRate', () => {
  it.each([
    [0, '0'],
    [0.25, '0.25'],
    [0.5, '0.5'],
    [1.54, '1.5'],
    [420, '420'],
    [1500, '1.5k'],
  ])('%d → %s', (n, text) => expect(formatRate(n)).toBe(text));
});

describe('formatUsd', () => {
  it.each([
    [0, '$0'],
    [1234.567, '$1,234.57'],
    [1_000_000, '$1,000,000.00'],
    [4.2, '$4.20'],
    [0.1234, '$0.123'],
    [0.0042, '$0.0042'],
    [0.00042, '$0.00042'],
    [1.5e-7, '$0.00000015'],
    [-2.5, '-$2.50'],
  ])('%d → %s', (n, text) => expect(formatUsd(n)).toBe(text));

  it('shows a dash for an unpriced model', () => expect(formatUsd(null)).toBe('—'));
});

describe('formatPercent', () => {
  it.each([
    [1, '100%'],
    [0, '0%'],
    [0.985, '98.5%'],
    [0.5, '50%'],
    [0.9999, '99.99%'],
    [0.0512, '5.12%'],
  ])('%d → %s', (n, text) => expect(formatPercent(n)).toBe(text));
});

describe('formatDuration', () => {
  it.each([
    [0, '0 ms'],
    [850.4, '850 ms'],
    [1234, '1.2 s'],
    [2000, '2 s'],
    [42_000, '42 s'],
    [185_000, '3m 05s'],
    [7_380_000, '2h 03m'],
    [100_800_000, '1d 4h'],
  ])('%d ms → %s', (ms, text) => expect(formatDuration(ms)).toBe(text));

  it('has a dash for an unknown duration', () => expect(formatDuration(null)).toBe('—'));
});

describe('formatCountdown', () => {
  const now = 1_000_000;
  it('rounds partial seconds up and stops at zero', () => {
    expect(formatCountdown(now + 41_200, now)).toBe('42 s');
    expect(formatCountdown(now + 90_000, now)).toBe('1m 30s');
    expect(formatCountdown(now - 5_000, now)).toBe('0 s');
  });
});

describe('formatRelative', () => {
  const now = 1_700_000_000_000;
  it.each([
    [now, 'just now'],
    [now - 12_000, '12 s ago'],
    [now - 5 * 60_000 - 10_000, '5 min ago'],
    [now - 3 * 3_600_000, '3 h ago'],
    [now - 4 * 86_400_000, '4 d ago'],
    [now + 30_000, 'in 30 s'],
  ])('%d → %s', (at, text) => expect(formatRelative(at, now)).toBe(text));
});

describe('formatDetail', () => {
  it('keeps strings and writes the rest as JSON', () => {
    expect(formatDetail('{"name":"a"}')).toBe('{"name":"a"}');
    expect(formatDetail({ name: 'a', n: 2 })).toBe('{"name":"a","n":2}');
    expect(formatDetail(null)).toBe('');
    expect(formatDetail({})).toBe('');
    expect(formatDetail('{}')).toBe('');
  });
});

// The unit tests run with TZ=UTC (vite.config.ts).
describe('clock times', () => {
  const at = Date.UTC(2026, 10, 21, 14, 3, 22);
  it('shows the time of day for today and the date before', () => {
    expect(formatTime(at, at + 60_000)).toBe('14:03:22');
    expect(formatTime(at, at + 86_400_000)).toBe('Nov 21 14:03');
    expect(formatTimestamp(at)).toBe('2026-11-21 14:03:22');
  });

  it('marks a new day on the time axis', () => {
    expect(formatTick(at)).toBe('14:03');
    expect(formatTick(Date.UTC(2026, 10, 22))).toBe('Nov 22');
  });

  it('writes a day, with its year when it is not this one', () => {
    expect(formatDay(Date.UTC(2026, 0, 31, 23, 59), at)).toBe('31 Jan');
    expect(formatDay(Date.UTC(2027, 0, 31), at)).toBe('31 Jan 2027');
  });
});

describe('humanize', () => {
  it('turns snake case into words', () => expect(humanize('cooling_down')).toBe('cooling down'));
});
