// Light and dark: follows `prefers-color-scheme` until the toggle picks one, which is kept in
// localStorage. The resolved theme sits on <html data-theme>, where the CSS variables switch.

import { useEffect, useState } from 'preact/hooks';

export type ThemeChoice = 'system' | 'light' | 'dark';
export type Theme = 'light' | 'dark';

const KEY = 'keyloop.theme';

/**
 * The toggle always flips what is on screen; landing on the system's own theme means
 * following the system again.
 */
export function nextChoice(choice: ThemeChoice, prefersDark: boolean): ThemeChoice {
  const target: Theme = resolveTheme(choice, prefersDark) === 'dark' ? 'light' : 'dark';
  return target === resolveTheme('system', prefersDark) ? 'system' : target;
}

export function resolveTheme(choice: ThemeChoice, prefersDark: boolean): Theme {
  if (choice === 'system') return prefersDark ? 'dark' : 'light';
  return choice;
}

function storedChoice(): ThemeChoice {
  try {
    const value = localStorage.getItem(KEY);
    return value === 'light' || value === 'dark' ? value : 'system';
  } catch {
    return 'system';
  }
}

const darkQuery = () => window.matchMedia('(prefers-color-scheme: dark)');

/** Sets <html data-theme> before the first render, so the page never flashes the other theme. */
export function applyStoredTheme(): void {
  document.documentElement.dataset.theme = resolveTheme(storedChoice(), darkQuery().matches);
}

export function useTheme(): { choice: ThemeChoice; theme: Theme; cycle: () => void } {
  const [choice, setChoice] = useState(storedChoice);
  const [prefersDark, setPrefersDark] = useState(() => darkQuery().matches);

  useEffect(() => {
    const query = darkQuery();
    const update = () => setPrefersDark(query.matches);
    query.addEventListener('change', update);
    return () => query.removeEventListener('change', update);
  }, []);

  const theme = resolveTheme(choice, prefersDark);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);

  const cycle = () => {
    const next = nextChoice(choice, prefersDark);
    try {
      if (next === 'system') localStorage.removeItem(KEY);
      else localStorage.setItem(KEY, next);
    } catch {
      // storage refused (private mode): the choice lasts for this page only
    }
    setChoice(next);
  };
  return { choice, theme, cycle };
}
