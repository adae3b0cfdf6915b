// How a subscription (OAuth) account's usage windows read on the credentials page: names in
// words, status as a tone, resets and the forecast as short relative times. Pure, so tested.

import type { SubscriptionUsage, UsageWindow, WindowName, WindowStatus } from './api';
import type { Tone } from './components/Badge';
import { formatCountdown, formatRelative, humanize } from './format';

const WINDOW_LABELS: Record<WindowName, string> = {
  five_hour: '5-hour',
  seven_day: '7-day',
  seven_day_opus: '7-day Opus',
  seven_day_sonnet: '7-day Sonnet',
  seven_day_overage_included: '7-day included',
};

/** "five_hour" → "5-hour", "seven_day_opus" → "7-day Opus"; a name added later reads humanized. */
export function windowLabel(name: string): string {
  return WINDOW_LABELS[name as WindowName] ?? humanize(name);
}

const STATUS_LABELS: Record<WindowStatus, string> = {
  allowed: 'allowed',
  allowed_warning: 'warning',
  rejected: 'rejected',
};

const STATUS_TONES: Record<WindowStatus, Tone> = {
  allowed: 'good',
  allowed_warning: 'warn',
  rejected: 'bad',
};

/** "allowed", "warning", "rejected"; null when the provider sent none. */
export function statusLabel(status: string | null): string | null {
  if (status === null) return null;
  return STATUS_LABELS[status as WindowStatus] ?? humanize(status);
}

export function statusTone(status: string | null): Tone {
  if (status === null) return 'muted';
  return STATUS_TONES[status as WindowStatus] ?? 'muted';
}

/** Utilization as a bar width, 0–100, or null when the provider said nothing. */
export function utilizationPercent(utilization: number | null): number | null {
  if (utilization === null || !Number.isFinite(utilization)) return null;
  return Math.round(Math.min(1, Math.max(0, utilization)) * 100);
}

/** "resets in 3h 12m", "resets in 42 s"; a reset already passed reads "reset 5 min ago". */
export function resetText(resetAt: number | null, now: number): string | null {
  if (resetAt === null) return null;
  if (resetAt <= now) return `reset ${formatRelative(resetAt, now)}`;
  return `resets in ${formatCountdown(resetAt, now)}`;
}

/**
 * The forecast, deliberately rough since it extrapolates a rate: "spent in ~2h", "spent in
 * ~25 min", "spent in ~3d"; null when the window will not be spent before it resets, or is
 * spent already (its status and bar say so).
 */
export function spentText(
  window: Pick<UsageWindow, 'spent_at' | 'status' | 'utilization'>,
  now: number,
): string | null {
  const spent = window.status === 'rejected' || (window.utilization ?? 0) >= 1;
  if (window.spent_at === null || spent) return null;
  const ms = window.spent_at - now;
  if (ms < 30_000) return 'spent any moment now';
  const minutes = Math.round(ms / 60_000);
  if (minutes < 60) return `spent in ~${minutes} min`;
  const hours = Math.round(ms / 3_600_000);
  if (hours < 24) return `spent in ~${hours}h`;
  return `spent in ~${Math.round(ms / 86_400_000)}d`;
}

/** Whether `window` is the one that binds the account (the provider's representative claim). */
export function isBinding(subscription: SubscriptionUsage, window: UsageWindow): boolean {
  return subscription.binding === window.name;
}

/**
 * Overage (usage billed beyond the included windows) as a badge: "overage in use" while it
 * serves, else its status ("overage allowed", "overage rejected"); null when not reported.
 */
export function overageBadge(subscription: SubscriptionUsage): { label: string; tone: Tone } | null {
  const { overage_status: status, overage_in_use: inUse } = subscription;
  if (inUse && status !== 'rejected') return { label: 'overage in use', tone: 'warn' };
  if (status === null) return null;
  return { label: `overage ${statusLabel(status)}`, tone: statusTone(status) };
}

/**
 * The colour of a window's bar: its status when the provider sent one, else by how full it is
 * (from 75%, the provider's usual warning threshold, a warning; full, rejected).
 */
export function windowTone(window: Pick<UsageWindow, 'status' | 'utilization'>): Tone {
  if (window.status !== null) return statusTone(window.status);
  if (window.utilization === null) return 'muted';
  if (window.utilization >= 1) return 'bad';
  return window.utilization >= 0.75 ? 'warn' : 'good';
}
