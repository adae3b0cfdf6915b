// Usage series from `GET /admin/api/usage/series` → the lines a chart draws. Pure, so the
// conversion is tested without a canvas; `components/Chart.tsx` hands the result to uPlot.

import type { Series, SeriesResponse } from './api';

export type GroupedMetric = 'requests' | 'tokens' | 'cost' | 'errors';

export interface Line {
  label: string;
  values: (number | null)[];
  /** Drawn dashed (the p95 of a p50/p95 pair). */
  dashed?: boolean;
  /** How the legend and axis print a value of this line. */
  unit: 'count' | 'usd' | 'ms';
}

export interface ChartData {
  /** Bucket starts in epoch seconds (uPlot's time unit). */
  x: number[];
  lines: Line[];
}

/** uPlot's `AlignedData`: the x values, then one array per line. */
export type Aligned = [number[], ...(number | null)[][]];

/** Charts draw at most this many groups; the rest are summed into one "other" line. */
export const MAX_GROUPS = 8;

export function groupLabel(series: Pick<Series, 'group' | 'name'>): string {
  if (series.name) return series.name;
  return series.group ?? 'all';
}

function metricValues(series: Series, metric: GroupedMetric): (number | null)[] {
  switch (metric) {
    case 'requests':
      return series.requests;
    case 'errors':
      return series.errors;
    case 'tokens':
      return series.input_tokens.map((input, i) => input + (series.output_tokens[i] ?? 0));
    case 'cost':
      return series.cost_usd;
  }
}

function total(values: (number | null)[]): number {
  return values.reduce<number>((sum, v) => sum + (v ?? 0), 0);
}

/** Adds two aligned arrays; a bucket is null only when both are. */
function addValues(a: (number | null)[], b: (number | null)[]): (number | null)[] {
  return a.map((v, i) => {
    const w = b[i] ?? null;
    if (v === null && w === null) return null;
    return (v ?? 0) + (w ?? 0);
  });
}

/**
 * One line per group for a summable metric, biggest group first; past `maxGroups` the
 * smallest groups are summed into "other" so the legend stays readable.
 */
export function groupedChart(response: SeriesResponse, metric: GroupedMetric, maxGroups = MAX_GROUPS): ChartData {
  const unit = metric === 'cost' ? 'usd' : 'count';
  const lines = response.series
    .map((series) => ({ label: groupLabel(series), values: metricValues(series, metric), unit }) as Line)
    .map((line) => ({ line, sum: total(line.values) }))
    .sort((a, b) => b.sum - a.sum || a.line.label.localeCompare(b.line.label))
    .map(({ line }) => line);

  let shown = lines;
  if (lines.length > maxGroups) {
    const kept = lines.slice(0, maxGroups - 1);
    const rest = lines.slice(maxGroups - 1);
    const other = rest.slice(1).reduce((acc, line) => addValues(acc, line.values), rest[0]!.values);
    shown = [...kept, { label: `other (${rest.length})`, values: other, unit }];
  }
  return { x: toSeconds(response.t), lines: shown };
}

/**
 * Latency and time to first token, p50 solid and p95 dashed, from the ungrouped series
 * (percentiles cannot be combined across groups on this side).
 */
export function latencyChart(response: SeriesResponse): ChartData {
  const series = response.series[0];
  const empty = response.t.map(() => null);
  return {
    x: toSeconds(response.t),
    lines: [
      { label: 'latency p50', values: series?.latency_p50_ms ?? empty, unit: 'ms' },
      { label: 'latency p95', values: series?.latency_p95_ms ?? empty, unit: 'ms', dashed: true },
      { label: 'TTFT p50', values: series?.ttft_p50_ms ?? empty, unit: 'ms' },
      { label: 'TTFT p95', values: series?.ttft_p95_ms ?? empty, unit: 'ms', dashed: true },
    ],
  };
}

export function toAligned(chart: ChartData): Aligned {
  return [chart.x, ...chart.lines.map((line) => line.values)];
}

/** The index of the last bucket any line has a value in, for the legend when not hovering. */
export function lastIndexWithData(data: readonly ArrayLike<number | null | undefined>[]): number | null {
  const [x = [], ...lines] = data;
  for (let i = x.length - 1; i >= 0; i--) {
    if (lines.some((values) => values[i] !== null && values[i] !== undefined)) return i;
  }
  return null;
}

/**
 * Buckets whose value has no neighbour on either side: a line cannot show them, so the chart
 * draws a dot there (a latency measured in one minute between idle ones).
 */
export function isolatedPoints(values: ArrayLike<number | null | undefined>): number[] {
  const has = (i: number) => i >= 0 && i < values.length && values[i] !== null && values[i] !== undefined;
  const found: number[] = [];
  for (let i = 0; i < values.length; i++) if (has(i) && !has(i - 1) && !has(i + 1)) found.push(i);
  return found;
}

function toSeconds(ms: number[]): number[] {
  return ms.map((t) => t / 1000);
}
