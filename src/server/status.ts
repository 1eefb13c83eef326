/**
 * The one mapping from ScorerError codes to gRPC status. Engine trouble is
 * UNAVAILABLE with a generic message: its cause is logged here, never sent.
 */
import { type ServiceError, status } from '@grpc/grpc-js';
import { ScorerError, type ScorerErrorCode } from '../errors';
import type { Logger } from '../log';

const STATUS: Record<ScorerErrorCode, status> = {
  invalid_argument: status.INVALID_ARGUMENT,
  not_found: status.NOT_FOUND,
  resource_exhausted: status.RESOURCE_EXHAUSTED,
  not_ready: status.UNAVAILABLE,
  deadline_exceeded: status.DEADLINE_EXCEEDED,
  cancelled: status.CANCELLED,
  engine_unreachable: status.UNAVAILABLE,
  engine_auth: status.UNAVAILABLE,
  engine_protocol: status.UNAVAILABLE,
  internal: status.INTERNAL,
};

/** Errors whose message is meant for the caller; the others get a generic one. */
const CALLER_FACING = new Set<ScorerErrorCode>(['invalid_argument', 'not_found', 'resource_exhausted', 'not_ready', 'deadline_exceeded', 'cancelled']);

export interface StatusError {
  readonly code: status;
  readonly message: string;
}

export function toStatus(err: unknown, logger: Logger, method: string): StatusError {
  const e = ScorerError.from(err);
  if (CALLER_FACING.has(e.code)) return { code: STATUS[e.code], message: e.message };
  logger.warn('call failed', { method, code: e.code, err: e });
  const message = e.code === 'internal' ? 'internal error' : 'the oVirt engine is unavailable; try again later';
  return { code: STATUS[e.code], message };
}

export function toServiceError(err: unknown, logger: Logger, method: string): Partial<ServiceError> {
  const { code, message } = toStatus(err, logger, method);
  return { code, details: message, message };
}
