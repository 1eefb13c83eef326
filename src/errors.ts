/**
 * The one error type of the service. Every failure is normalised into a
 * ScorerError with a stable `code` and, for engine trouble, structured
 * fields (endpoint, HTTP status) for logs. What a caller is told is decided
 * once, here (forCaller); the mapping to a gRPC status happens at the gRPC
 * edge (src/server/status.ts). `cause` is for logs only.
 */
import type { Logger } from './log';

export type ScorerErrorCode =
  | 'invalid_argument' // the caller's request is wrong; the message names the field
  | 'not_found' // the caller named something the engine does not have
  | 'resource_exhausted' // the call needs more engine reads than this service allows; the message says which limit
  | 'not_ready' // no inventory loaded yet
  | 'deadline_exceeded' // the call's deadline passed while waiting on the engine
  | 'cancelled' // the caller went away
  | 'engine_unreachable' // connect/timeout/5xx talking to the engine
  | 'engine_auth' // the engine refused our credentials
  | 'engine_protocol' // the engine answered something we cannot read, or more than we read
  | 'internal';

export interface EngineErrorFields {
  /** The request, as a template without ids: `GET /hosts/{id}`. */
  readonly endpoint?: string;
  /** The engine's HTTP status, when it answered one. */
  readonly status?: number;
}

export class ScorerError extends Error {
  override readonly name = 'ScorerError';
  readonly endpoint: string | undefined;
  readonly status: number | undefined;
  constructor(
    readonly code: ScorerErrorCode,
    message: string,
    options?: { cause?: unknown } & EngineErrorFields,
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.endpoint = options?.endpoint;
    this.status = options?.status;
  }

  static from(err: unknown): ScorerError {
    if (err instanceof ScorerError) return err;
    if (err instanceof Error) {
      if (err.name === 'TimeoutError') return new ScorerError('deadline_exceeded', 'deadline exceeded', { cause: err });
      if (err.name === 'AbortError') return new ScorerError('cancelled', 'cancelled', { cause: err });
      return new ScorerError('internal', err.message, { cause: err });
    }
    return new ScorerError('internal', String(err));
  }
}

/** Errors whose message is meant for the caller; the others get a generic one. */
const CALLER_FACING = new Set<ScorerErrorCode>([
  'invalid_argument',
  'not_found',
  'resource_exhausted',
  'not_ready',
  'deadline_exceeded',
  'cancelled',
]);

/** What a caller is told of an error: its code, and its message. */
export interface CallerError {
  readonly code: ScorerErrorCode;
  readonly message: string;
}

/**
 * An error as any front end tells it to its caller: a caller-facing one with
 * its own message; engine trouble and internal errors with a generic one,
 * their cause logged here (as `method` failing), never sent.
 */
export function forCaller(err: unknown, logger: Logger, method: string): CallerError {
  const e = ScorerError.from(err);
  if (CALLER_FACING.has(e.code)) return e;
  logger.warn('call failed', { method, code: e.code, err: e });
  return { code: e.code, message: e.code === 'internal' ? 'internal error' : 'the oVirt engine is unavailable; try again later' };
}
