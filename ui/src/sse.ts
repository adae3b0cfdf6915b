// The live feed `GET /admin/api/events`: one EventSource for the whole app, decoded into typed
// events and handed to whoever listens. The decoding and the fan-out are pure enough to test
// with a fake EventSource.

import type { CredentialChange, Overview, RequestRecord } from './api';

export type LiveEvent =
  | { kind: 'request'; request: RequestRecord }
  | { kind: 'credential'; change: CredentialChange }
  | { kind: 'overview'; overview: Overview }
  /** This watcher fell behind and the server skipped `missed` events: reload what matters. */
  | { kind: 'lagged'; missed: number };

export type LiveKind = LiveEvent['kind'];
export const LIVE_KINDS: readonly LiveKind[] = ['request', 'credential', 'overview', 'lagged'];

/** `connecting` also covers the browser's own reconnect after a dropped connection. */
export type FeedStatus = 'connecting' | 'open' | 'closed';

/** The event's JSON as a typed event, or null when it is not what the kind promises. */
export function decodeEvent(kind: string, data: string): LiveEvent | null {
  if (kind === 'lagged') {
    const missed = Number(data);
    return Number.isInteger(missed) && missed >= 0 ? { kind, missed } : null;
  }
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  if (!isObject(value)) return null;
  switch (kind) {
    case 'request':
      return typeof value.request_id === 'string' && typeof value.at === 'number'
        ? { kind, request: value as unknown as RequestRecord }
        : null;
    case 'credential':
      return typeof value.to === 'string' &&
        (value.credential === null || (isObject(value.credential) && typeof value.credential.id === 'string'))
        ? { kind, change: value as unknown as CredentialChange }
        : null;
    case 'overview':
      return isObject(value.live) && isObject(value.today)
        ? { kind, overview: value as unknown as Overview }
        : null;
    default:
      return null;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The part of `EventSource` the feed uses, so tests can hand in a fake. */
export interface EventSourceLike {
  readonly readyState: number;
  onopen: ((this: EventSourceLike, ev: Event) => unknown) | null;
  onerror: ((this: EventSourceLike, ev: Event) => unknown) | null;
  addEventListener(type: string, listener: (ev: MessageEvent<string>) => void): void;
  close(): void;
}

const CLOSED = 2;

export type Listener = (event: LiveEvent) => void;

export class LiveFeed {
  private source: EventSourceLike | null = null;
  private listeners = new Set<Listener>();
  private statusListeners = new Set<(status: FeedStatus) => void>();
  private current: FeedStatus = 'closed';

  constructor(
    private readonly url: string,
    private readonly open: (url: string) => EventSourceLike = (u) =>
      new EventSource(u, { withCredentials: true }) as unknown as EventSourceLike,
    /** Told when the browser gave up (the session expired, or the server refused). */
    private readonly onGaveUp: () => void = () => {},
  ) {}

  get status(): FeedStatus {
    return this.current;
  }

  start(): void {
    if (this.source) return;
    const source = this.open(this.url);
    this.source = source;
    this.setStatus('connecting');
    source.onopen = () => this.setStatus('open');
    source.onerror = () => {
      if (source.readyState === CLOSED) {
        this.stop();
        this.onGaveUp();
      } else {
        this.setStatus('connecting');
      }
    };
    for (const kind of LIVE_KINDS) {
      source.addEventListener(kind, (ev) => {
        const event = decodeEvent(kind, ev.data);
        if (event) this.listeners.forEach((listen) => listen(event));
      });
    }
  }

  stop(): void {
    this.source?.close();
    this.source = null;
    this.setStatus('closed');
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onStatus(listener: (status: FeedStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  private setStatus(status: FeedStatus): void {
    if (status === this.current) return;
    this.current = status;
    this.statusListeners.forEach((listen) => listen(status));
  }
}
