// A subscription (OAuth) account's usage windows under its row on the credentials page: one bar
// per window, the binding one marked, with its status, reset and forecast.

import type { SubscriptionUsage as Usage, UsageWindow } from '../api';
import { Badge } from '../components/Badge';
import { formatTimestamp } from '../format';
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
} from '../subscription';

export function SubscriptionUsage({ usage, now }: { usage: Usage; now: number }) {
  const overage = overageBadge(usage);
  const status = statusLabel(usage.status);
  const reset = resetText(usage.reset_at, now);
  return (
    <div class="usage">
      <div class="usage-account">
        <span class="usage-title">Subscription</span>
        {status && (
          <span data-testid="subscription-status" data-status={usage.status}>
            <Badge tone={statusTone(usage.status)} label={status} title="the account as a whole" />
          </span>
        )}
        {reset && usage.reset_at !== null && (
          <span class="muted small" title={formatTimestamp(usage.reset_at)}>
            {reset}
          </span>
        )}
        {overage && (
          <span data-testid="overage">
            <Badge tone={overage.tone} label={overage.label} title="usage billed beyond the included windows" />
          </span>
        )}
      </div>
      <div class="usage-windows">
        {usage.windows.map((w) => (
          <Window key={w.name} w={w} binding={isBinding(usage, w)} now={now} />
        ))}
      </div>
    </div>
  );
}

function Window({ w, binding, now }: { w: UsageWindow; binding: boolean; now: number }) {
  const percent = utilizationPercent(w.utilization);
  const status = statusLabel(w.status);
  const reset = resetText(w.reset_at, now);
  const spent = spentText(w, now);
  return (
    <div
      class={`usage-window ${binding ? 'binding' : ''}`}
      data-testid="usage-window"
      data-window={w.name}
      data-status={w.status ?? undefined}
      data-binding={binding ? 'true' : undefined}
      title={binding ? 'the window that binds this account now' : undefined}
    >
      <div class="usage-head">
        <span class="strong">{windowLabel(w.name)}</span>
        {binding && <span class="binding-tag">binding</span>}
        {status && <Badge tone={statusTone(w.status)} label={status} />}
      </div>
      <div
        class="bar usage-bar"
        role="meter"
        aria-label={`${windowLabel(w.name)} window used`}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent ?? undefined}
        data-testid="usage-bar"
      >
        <div class={`bar-fill fill-${windowTone(w)}`} style={{ width: `${percent ?? 0}%` }} />
        <span class="bar-label">{percent === null ? 'not reported' : `${percent}% used`}</span>
      </div>
      <div class="small">
        {reset && w.reset_at !== null && (
          <span class="muted" title={formatTimestamp(w.reset_at)}>
            {reset}
          </span>
        )}
        {spent && w.spent_at !== null && (
          <>
            {reset && <span class="muted"> · </span>}
            <span
              class="warn-text"
              title={`at the current rate: ${formatTimestamp(w.spent_at)}`}
              data-testid="spent-at"
            >
              {spent}
            </span>
          </>
        )}
      </div>
    </div>
  );
}
