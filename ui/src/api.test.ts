import { describe, expect, it } from 'vitest';

import { ApiError, apiUrl, errorMessage } from './api';

describe('apiUrl', () => {
  it('adds only the parameters that have a value', () => {
    expect(apiUrl('requests', { client: 'c 1', model: '', before: undefined, limit: 100 })).toBe(
      '/admin/api/requests?client=c+1&limit=100',
    );
    expect(apiUrl('credentials/export', { secrets: true })).toBe('/admin/api/credentials/export?secrets=true');
    expect(apiUrl('session')).toBe('/admin/api/session');
  });
});

describe('errorMessage', () => {
  it('says when to try again after a 429 that does not', () => {
    expect(errorMessage(new ApiError(429, 'rate_limited', 'too many sign-ins', 4))).toBe(
      'too many sign-ins — try again in 4 s',
    );
    expect(errorMessage(new ApiError(429, 'rate_limited', 'too many; retry in 4 s', 4))).toBe('too many; retry in 4 s');
  });

  it('passes other messages through', () => {
    expect(errorMessage(new ApiError(401, 'unauthorized', 'wrong admin token'))).toBe('wrong admin token');
    expect(errorMessage(new TypeError('Failed to fetch'))).toBe('Failed to fetch');
  });
});
