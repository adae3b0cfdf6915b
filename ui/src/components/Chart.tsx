// One uPlot time-series chart: sized to its container, redrawn in the current theme, with a
// legend that shows the newest bucket until the pointer picks another one.

import { useContext, useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

import { formatCount, formatDuration, formatTick, formatTimestamp, formatUsd } from '../format';
import { ThemeContext } from '../hooks';
import type { ChartData, Line } from '../series';
import { isolatedPoints, lastIndexWithData, toAligned } from '../series';

interface Props {
  title: string;
  chart: ChartData;
  /** `data-testid` of the chart; its canvas gets `<testid>-canvas`. */
  testid: string;
  height?: number;
}

/** Line colours, told apart in both themes; the CSS variables `--series-N` hold them. */
const PALETTE_SIZE = 8;

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function formatValue(unit: Line['unit'], value: number | null | undefined): string {
  if (value === null || value === undefined) return '—';
  switch (unit) {
    case 'usd':
      return formatUsd(value);
    case 'ms':
      return formatDuration(value);
    case 'count':
      return formatCount(value);
  }
}

function options(props: Props, width: number, data: ChartData): uPlot.Options {
  const axisColor = cssVar('--muted');
  const gridColor = cssVar('--grid');
  const unit = data.lines[0]?.unit ?? 'count';
  const axis = { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor, width: 1 } };
  const showLast = (u: uPlot) => {
    if (u.cursor.idx === null || u.cursor.idx === undefined) {
      const last = lastIndexWithData(u.data);
      if (last !== null) u.setLegend({ idx: last }, false);
    }
  };
  return {
    width,
    height: props.height ?? 220,
    series: [
      { value: (_u, v) => (v === null ? '—' : formatTimestamp(v * 1000)) },
      ...data.lines.map((line, i) => ({
        label: line.label,
        stroke: cssVar(`--series-${i % PALETTE_SIZE}`),
        width: 1.5,
        dash: line.dashed ? [6, 4] : undefined,
        points: {
          show: true,
          size: 5,
          filter: (u: uPlot, seriesIdx: number) => isolatedPoints(u.data[seriesIdx] ?? []),
        },
        value: (_u: uPlot, v: number | null) => formatValue(line.unit, v),
      })),
    ],
    axes: [
      { ...axis, values: (_u, splits) => splits.map((s) => formatTick(s * 1000)) },
      {
        ...axis,
        size: 64,
        values: (_u, splits) => splits.map((v) => formatValue(unit, v)),
      },
    ],
    scales: {
      x: { time: true },
      y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
    },
    cursor: { drag: { x: true, y: false } },
    legend: { live: true },
    hooks: { ready: [showLast], setCursor: [showLast], setData: [showLast] },
  };
}

export function Chart(props: Props) {
  const { chart, testid } = props;
  const holder = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const theme = useContext(ThemeContext);
  // A new set of lines (other groups) or another theme needs a new chart; new values do not.
  const shape = chart.lines.map((l) => `${l.label}${l.dashed ? '~' : ''}`).join('|');

  useEffect(() => {
    const el = holder.current;
    if (!el) return;
    const u = new uPlot(options(props, el.clientWidth || 600, chart), toAligned(chart), el);
    u.ctx.canvas.setAttribute('data-testid', `${testid}-canvas`);
    plot.current = u;
    const resize = new ResizeObserver(() => {
      if (el.clientWidth > 0 && el.clientWidth !== u.width) u.setSize({ width: el.clientWidth, height: u.height });
    });
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
    // `chart` is read only here, at creation; the effect below feeds later values in.
  }, [shape, theme, testid]);

  useEffect(() => {
    plot.current?.setData(toAligned(chart));
  }, [chart]);

  return (
    <figure class="chart" data-testid={testid}>
      <figcaption>{props.title}</figcaption>
      <div ref={holder} class="chart-plot" />
    </figure>
  );
}
