// The sign-in form: the admin token, exchanged for a session cookie.

import { useState } from 'preact/hooks';

import { api } from '../api';
import { ErrorNote } from '../components/ErrorNote';

export function Login({ notice, onSignedIn }: { notice?: string; onSignedIn: () => void }) {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.signIn(token);
      setToken('');
      onSignedIn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="login">
      <form class="card login-card" onSubmit={submit} data-testid="login-form">
        <h1 class="brand">keyloop</h1>
        {notice && <p class="muted">{notice}</p>}
        <label class="field">
          <span>Admin token</span>
          <input
            type="password"
            name="token"
            autocomplete="current-password"
            required
            autofocus
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
            data-testid="login-token"
          />
        </label>
        <ErrorNote error={error} />
        <button type="submit" class="primary" disabled={busy || token === ''} data-testid="login-submit">
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p class="muted small">
          The token is <code>admin.token</code> / <code>KEYLOOP_ADMIN__TOKEN</code>, or the one printed when the
          server first started.
        </p>
      </form>
    </main>
  );
}
