// The shell: checks the session, shows the sign-in form or the header, the navigation and the
// current page, and owns the one live feed the pages listen to.

import { useEffect, useMemo, useState } from 'preact/hooks';

import { ApiError, api, errorMessage, setUnauthorizedHandler } from './api';
import { ToastProvider } from './components/Toasts';
import { FeedContext, ThemeContext } from './hooks';
import { Audit } from './pages/Audit';
import { Clients } from './pages/Clients';
import { Credentials } from './pages/Credentials';
import { Login } from './pages/Login';
import { OverviewPage } from './pages/Overview';
import { Requests } from './pages/Requests';
import { type Page, hrefFor, useRoute } from './router';
import { type FeedStatus, LiveFeed } from './sse';
import { type Theme, type ThemeChoice, useTheme } from './theme';

type Auth = { state: 'checking' } | { state: 'signed_out'; notice?: string } | { state: 'signed_in' };

/** After the browser gives up on the live feed, try again this much later. */
const FEED_RETRY_MS = 5000;

export function App() {
  const [auth, setAuth] = useState<Auth>({ state: 'checking' });
  const themes = useTheme();

  const check = () =>
    api
      .session()
      .then(() => setAuth({ state: 'signed_in' }))
      .catch((e) => {
        const expired = e instanceof ApiError && e.status === 401;
        setAuth({ state: 'signed_out', notice: expired ? undefined : `Cannot reach the admin API: ${errorMessage(e)}` });
      });

  useEffect(() => {
    setUnauthorizedHandler(() => setAuth({ state: 'signed_out', notice: 'Your session ended. Sign in again.' }));
    void check();
  }, []);

  let body;
  if (auth.state === 'checking') body = <main class="loading">Loading…</main>;
  else if (auth.state === 'signed_out') body = <Login notice={auth.notice} onSignedIn={() => setAuth({ state: 'signed_in' })} />;
  else
    body = (
      <Shell
        themeChoice={themes.choice}
        theme={themes.theme}
        cycleTheme={themes.cycle}
        onSignedOut={() => setAuth({ state: 'signed_out', notice: 'Signed out.' })}
      />
    );

  return (
    <ThemeContext.Provider value={themes.theme}>
      <ToastProvider>{body}</ToastProvider>
    </ThemeContext.Provider>
  );
}

const NAV: [Page, string][] = [
  ['overview', 'Overview'],
  ['credentials', 'Credentials'],
  ['clients', 'Clients'],
  ['requests', 'Requests'],
  ['audit', 'Audit'],
];

interface ShellProps {
  themeChoice: ThemeChoice;
  theme: Theme;
  cycleTheme: () => void;
  onSignedOut: () => void;
}

function Shell({ themeChoice, theme, cycleTheme, onSignedOut }: ShellProps) {
  const route = useRoute();
  const [status, setStatus] = useState<FeedStatus>('connecting');

  const feed = useMemo(() => {
    let retry: number | undefined;
    const live: LiveFeed = new LiveFeed(api.eventsUrl(), undefined, () => {
      // Refused: a 401 sends the app to the sign-in form; anything else is retried.
      retry = window.setTimeout(() => {
        api
          .session()
          .then(() => live.start())
          .catch((e) => {
            if (e instanceof ApiError && e.status === 401) onSignedOut();
            else live.start();
          });
      }, FEED_RETRY_MS);
    });
    live.onStatus(setStatus);
    return Object.assign(live, { cancelRetry: () => window.clearTimeout(retry) });
  }, []);

  useEffect(() => {
    feed.start();
    return () => {
      feed.cancelRetry();
      feed.stop();
    };
  }, [feed]);

  useEffect(() => {
    const label = NAV.find(([id]) => id === route.page)?.[1];
    document.title = label ? `${label} · keyloop` : 'keyloop';
  }, [route.page]);

  const signOut = async () => {
    try {
      await api.signOut();
    } finally {
      onSignedOut();
    }
  };

  const page = (() => {
    switch (route.page) {
      case 'overview':
        return <OverviewPage />;
      case 'credentials':
        return <Credentials />;
      case 'clients':
        return <Clients />;
      case 'requests':
        return <Requests params={route.params} />;
      case 'audit':
        return <Audit />;
    }
  })();

  return (
    <FeedContext.Provider value={feed}>
      <header class="topbar">
        <a class="brand" href={hrefFor('overview')}>
          keyloop
        </a>
        <nav>
          {NAV.map(([id, label]) => (
            <a
              key={id}
              href={hrefFor(id)}
              class={route.page === id ? 'active' : undefined}
              aria-current={route.page === id ? 'page' : undefined}
              data-testid={`nav-${id}`}
            >
              {label}
            </a>
          ))}
        </nav>
        <span class={`feed-status feed-${status}`} data-testid="feed-status" data-status={status}>
          {status === 'open' ? 'live' : status === 'connecting' ? 'connecting…' : 'offline'}
        </span>
        <button
          type="button"
          class="ghost"
          onClick={cycleTheme}
          title={themeChoice === 'system' ? 'Following the system; click to switch' : 'Click to switch back'}
          data-testid="theme-toggle"
          data-theme-choice={themeChoice}
        >
          {theme === 'dark' ? 'Dark' : 'Light'}
          {themeChoice === 'system' ? ' (auto)' : ''}
        </button>
        <button type="button" class="ghost" onClick={signOut} data-testid="sign-out">
          Sign out
        </button>
      </header>
      <main class="page" data-testid={`page-${route.page}`}>
        {page}
      </main>
    </FeedContext.Provider>
  );
}
