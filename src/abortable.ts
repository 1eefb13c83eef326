/** Waiting on shared work with a caller's own cancellation. */
import { ScorerError } from './errors';

/**
 * Waits for a promise that other callers may share, but gives up when this
 * caller's signal fires; the shared work itself goes on for the others.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(ScorerError.from(signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(ScorerError.from(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
