// Small hooks the pages share: a ticking clock, an interval, the live feed.

import { createContext } from 'preact';
import { useContext, useEffect, useRef, useState } from 'preact/hooks';

import type { Theme } from './theme';
import type { LiveEvent, LiveFeed } from './sse';

/** The current time, re-rendering every `everyMs` (countdowns, "12 s ago"). */
export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const id = window.setInterval(() => setNow(Date.now()), everyMs);
    return () => window.clearInterval(id);
  }, [everyMs]);
  return now;
}

/** Calls the latest `fn` every `ms` while mounted; `ms = null` pauses. */
export function useInterval(fn: () => void, ms: number | null): void {
  const latest = useRef(fn);
  latest.current = fn;
  useEffect(() => {
    if (ms === null) return;
    const id = window.setInterval(() => latest.current(), ms);
    return () => window.clearInterval(id);
  }, [ms]);
}

export const FeedContext = createContext<LiveFeed | null>(null);
export const ThemeContext = createContext<Theme>('light');

/** Calls the latest `handler` for every live event while mounted. */
export function useLiveEvents(handler: (event: LiveEvent) => void): void {
  const feed = useContext(FeedContext);
  const latest = useRef(handler);
  latest.current = handler;
  useEffect(() => feed?.subscribe((event) => latest.current(event)), [feed]);
}
