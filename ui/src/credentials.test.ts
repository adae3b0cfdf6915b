import { describe, expect, it } from 'vitest';

import type { CredentialChange } from './api';
import {
  applyCredentialChange,
  canClearCooldown,
  concurrencyText,
  headroomPercent,
  kindLabel,
  withoutCredential,
} from './credentials';
import { credential } from './testdata/fixtures';

function change(over: Parameters<typeof credential>[0]): CredentialChange {
  return { at: 5, from: 'active', to: 'cooling_down', reason: 'rate limited', until: 65, credential: credential(over) };
}

describe('applyCredentialChange', () => {
  const list = [credential({ id: 'a', name: 'a' }), credential({ id: 'b', name: 'b' })];

  it('replaces the row of that credential in place', () => {
    const next = applyCredentialChange(list, change({ id: 'b', name: 'b', state: 'cooling_down' }));
    expect(next.map((c) => [c.id, c.state])).toEqual([
      ['a', 'active'],
      ['b', 'cooling_down'],
    ]);
    expect(list[1]!.state).toBe('active');
  });

  it('adds a credential it has not seen at the end', () => {
    const next = applyCredentialChange(list, change({ id: 'c', name: 'c' }));
    expect(next.map((c) => c.id)).toEqual(['a', 'b', 'c']);
  });

  it('leaves the list alone when the credential is gone', () => {
    const gone: CredentialChange = { ...change({ id: 'b' }), credential: null };
    expect(applyCredentialChange(list, gone)).toBe(list);
  });

  it('removes by id', () => {
    expect(withoutCredential(list, 'a').map((c) => c.id)).toEqual(['b']);
  });
});

describe('row helpers', () => {
  it('offers clearing a cooldown only while one runs', () => {
    expect(canClearCooldown('cooling_down')).toBe(true);
    expect(canClearCooldown('probing')).toBe(true);
    expect(canClearCooldown('active')).toBe(false);
    expect(canClearCooldown('disabled')).toBe(false);
  });

  it('writes in-flight against the limit', () => {
    expect(concurrencyText({ in_flight: 3, max_concurrent: 8, ramp_cap: null })).toBe('3 / 8');
    expect(concurrencyText({ in_flight: 0, max_concurrent: null, ramp_cap: null })).toBe('0 / ∞');
    expect(concurrencyText({ in_flight: 1, max_concurrent: 8, ramp_cap: 2 })).toBe('1 / 2 ↗8');
    expect(concurrencyText({ in_flight: 1, max_concurrent: 2, ramp_cap: 2 })).toBe('1 / 2');
  });

  it('names both spellings of an API key', () => {
    expect(kindLabel('api-key')).toBe('API key');
    expect(kindLabel('api_key')).toBe('API key');
    expect(kindLabel('oauth')).toBe('OAuth');
    expect(kindLabel(null)).toBeNull();
  });

  it('clamps headroom into a bar width', () => {
    expect(headroomPercent(null)).toBeNull();
    expect(headroomPercent(0.426)).toBe(43);
    expect(headroomPercent(1.2)).toBe(100);
    expect(headroomPercent(-0.1)).toBe(0);
  });
});
