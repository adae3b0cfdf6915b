import { describe, expect, it } from 'vitest';

import type { Series, SeriesResponse } from './api';
import { groupedChart, isolatedPoints, lastIndexWithData, latencyChart, toAligned } from './series';

function series(name: string, requests: number[], extra: Partial<Series> = {}): Series {
  const zeros = requests.map(() => 0);
  const nulls = requests.map(() => null);
  return {
    group: name,
    name,
    requests,
    success: requests,
    errors: zeros,
    input_tokens: zeros,
    output_tokens: zeros,
    cache_read_tokens: zeros,
    cache_write_tokens: zeros,
    cost_usd: zeros,
    latency_p50_ms: nulls,
    latency_p95_ms: nulls,
    ttft_p50_ms: nulls,
    ttft_p95_ms: nulls,
    ...extra,
  };
}

const t = [1_700_000_000_000, 1_700_000_060_000, 1_700_000_120_000];

describe('groupedChart', () => {
  it('converts bucket times to seconds and orders groups by total, biggest first', () => {
    const response: SeriesResponse = {
      bucket_ms: 60_000,
      t,
      series: [series('haiku', [1, 0, 1]), series('sonnet', [5, 4, 3])],
    };
    const chart = groupedChart(response, 'requests');
    expect(chart.x).toEqual([1_700_000_000, 1_700_000_060, 1_700_000_120]);
    expect(chart.lines.map((l) => l.label)).toEqual(['sonnet', 'haiku']);
    expect(toAligned(chart)).toEqual([chart.x, [5, 4, 3], [1, 0, 1]]);
  });

  it('adds input and output tokens', () => {
    const response: SeriesResponse = {
      bucket_ms: 60_000,
      t,
      series: [series('a', [1, 1, 1], { input_tokens: [10, 20, 0], output_tokens: [5, 0, 7] })],
    };
    expect(groupedChart(response, 'tokens').lines[0]!.values).toEqual([15, 20, 7]);
  });

  it('sums the smallest groups into "other" past the limit, keeping gaps where all are null', () => {
    const response: SeriesResponse = {
      bucket_ms: 60_000,
      t,
      series: [
        series('big', [9, 9, 9], { cost_usd: [9, 9, 9] }),
        series('mid', [5, 5, 5], { cost_usd: [5, null, 5] }),
        series('small', [1, 1, 1], { cost_usd: [1, null, null] }),
        series('tiny', [0, 0, 1], { cost_usd: [0.5, null, null] }),
      ],
    };
    const chart = groupedChart(response, 'cost', 3);
    expect(chart.lines.map((l) => l.label)).toEqual(['big', 'mid', 'other (2)']);
    expect(chart.lines[2]!.values).toEqual([1.5, null, null]);
    expect(chart.lines.every((l) => l.unit === 'usd')).toBe(true);
  });

  it('labels the ungrouped series "all"', () => {
    const response: SeriesResponse = {
      bucket_ms: 60_000,
      t,
      series: [{ ...series('x', [1, 2, 3]), group: null, name: '' }],
    };
    expect(groupedChart(response, 'requests').lines[0]!.label).toBe('all');
  });
});

describe('latencyChart', () => {
  it('draws p50 solid and p95 dashed for latency and time to first token', () => {
    const response: SeriesResponse = {
      bucket_ms: 60_000,
      t,
      series: [
        series('all', [1, 0, 1], {
          latency_p50_ms: [100, null, 120],
          latency_p95_ms: [300, null, 320],
          ttft_p50_ms: [40, null, 45],
          ttft_p95_ms: [90, null, 95],
        }),
      ],
    };
    const chart = latencyChart(response);
    expect(chart.lines.map((l) => [l.label, l.dashed ?? false])).toEqual([
      ['latency p50', false],
      ['latency p95', true],
      ['TTFT p50', false],
      ['TTFT p95', true],
    ]);
    expect(chart.lines[1]!.values).toEqual([300, null, 320]);
  });

  it('has empty lines when there is no series at all', () => {
    const chart = latencyChart({ bucket_ms: 60_000, t, series: [] });
    expect(chart.lines[0]!.values).toEqual([null, null, null]);
    expect(lastIndexWithData(toAligned(chart))).toBeNull();
  });
});

describe('isolatedPoints', () => {
  it('finds values with no neighbour', () => {
    expect(isolatedPoints([5, null, 3, 4, null, null, 7])).toEqual([0, 6]);
    expect(isolatedPoints([null, 2, null])).toEqual([1]);
    expect(isolatedPoints([1, 2])).toEqual([]);
    expect(isolatedPoints([])).toEqual([]);
  });
});

describe('lastIndexWithData', () => {
  it('finds the last bucket with a value in any line', () => {
    expect(lastIndexWithData([[1, 2, 3, 4], [1, null, 2, null], [null, 0, null, null]])).toBe(2);
    expect(lastIndexWithData([[1, 2], [null, null]])).toBeNull();
  });
});
