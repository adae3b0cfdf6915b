// Hash routing: `#/credentials`, `#/requests?credential=key_1`. Deep links work without any
// server-side fallback, and the page URL itself never changes.

import { useEffect, useState } from 'preact/hooks';

export const PAGES = ['overview', 'credentials', 'clients', 'requests', 'audit'] as const;
export type Page = (typeof PAGES)[number];

export interface Route {
  page: Page;
  params: URLSearchParams;
}

/** `#/requests?client=c1` → requests page with `client=c1`; anything unknown → overview. */
export function parseHash(hash: string): Route {
  const path = hash.replace(/^#/, '');
  const [pathname = '', query = ''] = path.split('?', 2);
  const name = pathname.replace(/^\/+|\/+$/g, '');
  const page = (PAGES as readonly string[]).includes(name) ? (name as Page) : 'overview';
  return { page, params: new URLSearchParams(query) };
}

export function hrefFor(page: Page, params: Record<string, string> = {}): string {
  const query = new URLSearchParams(params).toString();
  const path = page === 'overview' ? '#/' : `#/${page}`;
  return query ? `${path}?${query}` : path;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(window.location.hash));
  useEffect(() => {
    const update = () => setRoute(parseHash(window.location.hash));
    window.addEventListener('hashchange', update);
    return () => window.removeEventListener('hashchange', update);
  }, []);
  return route;
}
