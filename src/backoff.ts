/**
 * Exponential backoff, the one rule for every retry of the service (the sync
 * loop after engine failures, the primary restarting a worker that keeps
 * dying): `baseMs` after the first failure in a row, doubled at each next
 * one, capped at `maxMs`; with `random`, jittered down to half of that so
 * many scorers do not retry in step.
 */
export interface Backoff {
  readonly baseMs: number;
  readonly maxMs: number;
  /** 0..1; when given, the delay is drawn from [half, all] of the exponential one. */
  readonly random?: () => number;
}

/** The delay before the next try after `failures` failures in a row (0: no failure, no delay). */
export function backoffMs(failures: number, { baseMs, maxMs, random }: Backoff): number {
  if (failures <= 0) return 0;
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(failures - 1, 30));
  return random === undefined ? ceiling : Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
