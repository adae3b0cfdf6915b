import { describe, expect, it } from 'vitest';

import { type EventSourceLike, type LiveEvent, LiveFeed, decodeEvent } from './sse';
import { credential, overview, request } from './testdata/fixtures';

class FakeSource implements EventSourceLike {
  readyState = 0;
  onopen: EventSourceLike['onopen'] = null;
  onerror: EventSourceLike['onerror'] = null;
  closed = false;
  private handlers = new Map<string, (ev: MessageEvent<string>) => void>();

  addEventListener(type: string, listener: (ev: MessageEvent<string>) => void): void {
    this.handlers.set(type, listener);
  }
  close(): void {
    this.closed = true;
    this.readyState = 2;
  }
  emit(type: string, data: unknown): void {
    const text = typeof data === 'string' ? data : JSON.stringify(data);
    this.handlers.get(type)?.({ data: text } as MessageEvent<string>);
  }
  open(): void {
    this.readyState = 1;
    this.onopen?.call(this, new Event('open'));
  }
  fail(readyState: number): void {
    this.readyState = readyState;
    this.onerror?.call(this, new Event('error'));
  }
}

function feed() {
  const sources: FakeSource[] = [];
  let gaveUp = 0;
  const live = new LiveFeed(
    '/admin/api/events',
    () => {
      const s = new FakeSource();
      sources.push(s);
      return s;
    },
    () => gaveUp++,
  );
  return { live, sources, gaveUp: () => gaveUp };
}

describe('decodeEvent', () => {
  it('decodes each kind', () => {
    expect(decodeEvent('request', JSON.stringify(request()))?.kind).toBe('request');
    expect(decodeEvent('overview', JSON.stringify(overview()))?.kind).toBe('overview');
    const change = { at: 1, from: 'active', to: 'disabled', reason: null, until: null, credential: credential() };
    const decoded = decodeEvent('credential', JSON.stringify(change));
    expect(decoded).toEqual({ kind: 'credential', change });
    const removed = { ...change, credential: null };
    expect(decodeEvent('credential', JSON.stringify(removed))).toEqual({ kind: 'credential', change: removed });
    expect(decodeEvent('lagged', '12')).toEqual({ kind: 'lagged', missed: 12 });
  });

  it('refuses bad JSON, the wrong shape and unknown kinds', () => {
    expect(decodeEvent('request', '{not json')).toBeNull();
    expect(decodeEvent('request', JSON.stringify({ at: 1 }))).toBeNull();
    expect(decodeEvent('credential', JSON.stringify({ to: 'active', credential: { name: 'no id' } }))).toBeNull();
    expect(decodeEvent('credential', JSON.stringify({ credential: credential() }))).toBeNull();
    expect(decodeEvent('lagged', 'many')).toBeNull();
    expect(decodeEvent('overview', '[]')).toBeNull();
    expect(decodeEvent('ping', JSON.stringify(request()))).toBeNull();
  });
});

describe('LiveFeed', () => {
  it('hands decoded events to every listener until it unsubscribes', () => {
    const { live, sources } = feed();
    const a: LiveEvent[] = [];
    const b: LiveEvent[] = [];
    live.start();
    const stopA = live.subscribe((e) => a.push(e));
    live.subscribe((e) => b.push(e));
    sources[0]!.emit('request', request({ request_id: 'r1' }));
    sources[0]!.emit('request', 'garbage');
    stopA();
    sources[0]!.emit('overview', overview());
    expect(a.map((e) => e.kind)).toEqual(['request']);
    expect(b.map((e) => e.kind)).toEqual(['request', 'overview']);
  });

  it('opens one source however often it is started', () => {
    const { live, sources } = feed();
    live.start();
    live.start();
    expect(sources).toHaveLength(1);
  });

  it('reports its status and tells when the browser gave up', () => {
    const { live, sources, gaveUp } = feed();
    const statuses: string[] = [];
    live.onStatus((s) => statuses.push(s));
    live.start();
    sources[0]!.open();
    sources[0]!.fail(0); // dropped; the browser reconnects by itself
    sources[0]!.open();
    sources[0]!.fail(2); // refused (e.g. 401): the browser stops
    expect(statuses).toEqual(['connecting', 'open', 'connecting', 'open', 'closed']);
    expect(gaveUp()).toBe(1);
    expect(sources[0]!.closed).toBe(true);
    live.start();
    expect(sources).toHaveLength(2);
  });
});
