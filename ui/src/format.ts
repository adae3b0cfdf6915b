// How numbers, money, durations and times read in the panel. Locale-independent on purpose
// (fixed separators), so a screenshot or a test reads the same on every machine.

export const NONE = '—';

/** 950 → "950", 1234 → "1.2k", 56789 → "57k", 1234567 → "1.2M". */
export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return NONE;
  const sign = n < 0 ? '-' : '';
  const abs = Math.abs(n);
  if (abs < 999.5) return sign + trimZeros(abs.toFixed(abs < 10 && !Number.isInteger(abs) ? 1 : 0));
  for (const [size, unit] of [
    [1e9, 'B'],
    [1e6, 'M'],
    [1e3, 'k'],
  ] as const) {
    if (abs >= size * 0.9995) {
      const scaled = abs / size;
      return sign + trimZeros(scaled.toFixed(scaled < 10 ? 1 : 0)) + unit;
    }
  }
  return sign + String(Math.round(abs));
}

/** A per-second rate: 0 → "0", 0.25 → "0.25", 1.5 → "1.5", 420 → "420", 1500 → "1.5k". */
export function formatRate(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return NONE;
  const abs = Math.abs(n);
  if (abs === 0) return '0';
  if (abs < 1) return trimZeros(n.toFixed(2));
  if (abs < 10) return trimZeros(n.toFixed(1));
  return formatCount(n);
}

/**
 * US dollars with as many decimals as the amount needs: "$1,234.56", "$4.20", "$0.123",
 * "$0.0042", "$0"; null (an unpriced model) → "—".
 */
export function formatUsd(usd: number | null | undefined): string {
  if (usd === null || usd === undefined || !Number.isFinite(usd)) return NONE;
  const sign = usd < 0 ? '-' : '';
  const abs = Math.abs(usd);
  if (abs === 0) return '$0';
  if (abs >= 1) return `${sign}$${groupThousands(abs.toFixed(2))}`;
  if (abs >= 0.01) return `${sign}$${abs.toFixed(3)}`;
  // Two significant digits without an exponent: 0.0042 → "0.0042", 1.5e-7 → "0.00000015".
  const decimals = Math.min(12, 1 - Math.floor(Math.log10(abs)));
  return `${sign}$${trimZeros(abs.toFixed(decimals))}`;
}

/** 0.985 → "98.5%", 1 → "100%", 0.5 → "50%". */
export function formatPercent(fraction: number | null | undefined): string {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return NONE;
  const pct = fraction * 100;
  if (pct === 100 || pct === 0) return `${pct}%`;
  return `${trimZeros(pct.toFixed(pct >= 99.95 || pct < 10 ? 2 : 1))}%`;
}

/** Milliseconds as a person reads them: "850 ms", "1.2 s", "42 s", "3m 05s", "2h 03m", "1d 4h". */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return NONE;
  const sign = ms < 0 ? '-' : '';
  const abs = Math.abs(ms);
  if (abs < 1000) return `${sign}${Math.round(abs)} ms`;
  if (abs < 10_000) return `${sign}${trimZeros((abs / 1000).toFixed(1))} s`;
  const totalS = Math.round(abs / 1000);
  if (totalS < 60) return `${sign}${totalS} s`;
  const totalM = Math.floor(totalS / 60);
  if (totalM < 60) return `${sign}${totalM}m ${pad2(totalS % 60)}s`;
  const totalH = Math.floor(totalM / 60);
  if (totalH < 24) return `${sign}${totalH}h ${pad2(totalM % 60)}m`;
  return `${sign}${Math.floor(totalH / 24)}d ${totalH % 24}h`;
}

/** How long until `until`, counting down to "0 s"; whole seconds, rounded up. */
export function formatCountdown(until: number, now: number): string {
  const left = Math.max(0, Math.ceil((until - now) / 1000));
  if (left < 60) return `${left} s`;
  return formatDuration(left * 1000);
}

/** "just now", "12 s ago", "5 min ago", "3 h ago", "4 d ago"; the future reads "in 12 s". */
export function formatRelative(at: number | null | undefined, now: number): string {
  if (at === null || at === undefined || !Number.isFinite(at)) return NONE;
  const diffS = Math.round((now - at) / 1000);
  const abs = Math.abs(diffS);
  if (abs < 2) return 'just now';
  let text: string;
  if (abs < 60) text = `${abs} s`;
  else if (abs < 3600) text = `${Math.floor(abs / 60)} min`;
  else if (abs < 86_400) text = `${Math.floor(abs / 3600)} h`;
  else text = `${Math.floor(abs / 86_400)} d`;
  return diffS >= 0 ? `${text} ago` : `in ${text}`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Local wall-clock time: "14:03:22" for today, "Nov 21 14:03" before. */
export function formatTime(at: number, now: number = Date.now()): string {
  const d = new Date(at);
  const today = new Date(now);
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  if (d.toDateString() === today.toDateString()) return `${hm}:${pad2(d.getSeconds())}`;
  return `${MONTHS[d.getMonth()]} ${d.getDate()} ${hm}`;
}

/** A local calendar day: "31 Jan" this year, "31 Jan 2027" in another. */
export function formatDay(at: number, now: number = Date.now()): string {
  const d = new Date(at);
  const day = `${d.getDate()} ${MONTHS[d.getMonth()]}`;
  return d.getFullYear() === new Date(now).getFullYear() ? day : `${day} ${d.getFullYear()}`;
}

/** A time axis tick: "14:30", or "Nov 21" at local midnight where a new day starts. */
export function formatTick(at: number): string {
  const d = new Date(at);
  if (d.getHours() === 0 && d.getMinutes() === 0) return `${MONTHS[d.getMonth()]} ${d.getDate()}`;
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/** Full local timestamp for tooltips: "2026-11-21 14:03:22". */
export function formatTimestamp(at: number): string {
  const d = new Date(at);
  return (
    `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`
  );
}

/** An audit detail on one line: a string as it is, anything else as compact JSON. */
export function formatDetail(detail: unknown): string {
  if (detail === null || detail === undefined) return '';
  const text = typeof detail === 'string' ? detail : JSON.stringify(detail);
  return text === '{}' || text === 'null' ? '' : text;
}

/** "rate_limited" → "rate limited". */
export function humanize(label: string): string {
  return label.replace(/_/g, ' ');
}

function trimZeros(fixed: string): string {
  return fixed.includes('.') && !fixed.includes('e') ? fixed.replace(/\.?0+$/, '') : fixed;
}

function groupThousands(fixed: string): string {
  const [whole = '', fraction] = fixed.split('.');
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return fraction === undefined ? grouped : `${grouped}.${fraction}`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}
