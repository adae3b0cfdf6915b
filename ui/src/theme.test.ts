import { describe, expect, it } from 'vitest';

import { nextChoice, resolveTheme } from './theme';

describe('theme', () => {
  it('follows the system until a theme is picked', () => {
    expect(resolveTheme('system', true)).toBe('dark');
    expect(resolveTheme('system', false)).toBe('light');
    expect(resolveTheme('light', true)).toBe('light');
    expect(resolveTheme('dark', false)).toBe('dark');
  });

  it('flips what is shown, back to following the system', () => {
    expect(nextChoice('system', false)).toBe('dark');
    expect(nextChoice('dark', false)).toBe('system');
    expect(nextChoice('system', true)).toBe('light');
    expect(nextChoice('light', true)).toBe('system');
    // picked against the system's theme, then the system changed: still flips what is shown
    expect(nextChoice('light', false)).toBe('dark');
    expect(nextChoice('dark', true)).toBe('light');
  });
});
