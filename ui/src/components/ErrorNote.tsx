// An error from an API call, in words; 429 says when to try again.

import { ApiError } from '../api';
import { formatDuration } from '../format';

export function errorText(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 429 && error.retryAfterS !== null) {
      return `${error.message} — try again in ${formatDuration(error.retryAfterS * 1000)}`;
    }
    return error.message;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}

export function ErrorNote({ error }: { error: unknown }) {
  if (error === null || error === undefined) return null;
  return (
    <p class="error-note" role="alert" data-testid="error">
      {errorText(error)}
    </p>
  );
}
