import { describe, expect, it } from 'vitest';

import { hrefFor, parseHash } from './router';

describe('parseHash', () => {
  it('finds the page and its parameters', () => {
    const route = parseHash('#/requests?client=c1&outcome=success');
    expect(route.page).toBe('requests');
    expect(route.params.get('client')).toBe('c1');
    expect(route.params.get('outcome')).toBe('success');
  });

  it('falls back to the overview', () => {
    expect(parseHash('').page).toBe('overview');
    expect(parseHash('#/').page).toBe('overview');
    expect(parseHash('#/nope').page).toBe('overview');
    expect(parseHash('#/credentials/').page).toBe('credentials');
  });

  it('round-trips what hrefFor writes', () => {
    const href = hrefFor('requests', { credential: 'key 1' });
    expect(href).toBe('#/requests?credential=key+1');
    expect(parseHash(href).params.get('credential')).toBe('key 1');
    expect(hrefFor('overview')).toBe('#/');
  });
});
