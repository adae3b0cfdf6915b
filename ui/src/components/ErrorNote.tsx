// An error from an API call, in words, where the action was.

import { errorMessage } from '../api';

export function ErrorNote({ error }: { error: unknown }) {
  if (error === null || error === undefined) return null;
  return (
    <p class="error-note" role="alert" data-testid="error">
      {errorMessage(error)}
    </p>
  );
}
