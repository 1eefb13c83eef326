/**
 * The one mapping from ScorerError codes to gRPC status. Engine trouble is
 * UNAVAILABLE with a generic message (forCaller, src/errors.ts).
 */
import { type ServiceError, status } from '@grpc/grpc-js';
import { forCaller, type ScorerErrorCode } from '../errors';
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

export interface StatusError {
  readonly code: status;
  readonly message: string;
}

/** The gRPC status of an error, with what the caller is told (forCaller). */
export function toStatus(err: unknown, logger: Logger, method: string): StatusError {
  const { code, message } = forCaller(err, logger, method);
  return { code: STATUS[code], message };
}

export function toServiceError(err: unknown, logger: Logger, method: string): Partial<ServiceError> {
  const { code, message } = toStatus(err, logger, method);
  return { code, details: message, message };
}
