/**
 * Logging: pino JSON lines on stderr behind the small Logger interface the
 * code calls (`logger.info(msg, fields)`), and grpc-js's own output routed
 * into it. Secrets are never passed to it; pino's redact is a second line of
 * defence for fields that could carry one.
 */
import { format } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { stderrIsJournal, withPriority } from './systemd';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'pretty';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Field paths that could carry a password, a token or an Authorization header, at any of the first three levels. */
const SECRET_KEYS = [
  'password',
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'authorization',
  'Authorization',
  'cookie',
  'Cookie',
];
export const REDACTED_PATHS = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

export interface LoggerOptions {
  readonly format?: LogFormat;
  /** Where lines go (each a JSON object and a newline); default stderr. */
  readonly write?: (line: string) => void;
  /** Fields every line carries (a worker process's id). */
  readonly context?: Record<string, unknown>;
}

export function createLogger(level: LogLevel = 'info', options: LoggerOptions = {}): Logger {
  const destination =
    options.write !== undefined
      ? { write: options.write }
      : options.format === 'pretty'
        ? // Loaded only when asked for: services never pay for it.
          (require('pino-pretty') as typeof import('pino-pretty'))({
            destination: 2,
            sync: true,
            translateTime: 'SYS:HH:MM:ss.l',
            ignore: 'pid,hostname',
          })
        : journalOrStderr();
  const root = pino(
    {
      level,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: serializeError },
      redact: { paths: REDACTED_PATHS, censor: '<redacted>' },
    },
    destination,
  );
  const p = options.context === undefined ? root : root.child(options.context);
  const at =
    (lvl: LogLevel) =>
    (msg: string, fields?: Record<string, unknown>): void => {
      if (fields === undefined) p[lvl](msg);
      else p[lvl](fields, msg);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** stderr, each line with its syslog priority in front when stderr is the journal (src/systemd.ts). */
function journalOrStderr(): { write(line: string): void } {
  const stderr = pino.destination({ dest: 2, sync: true }); // sync: nothing lost when the process exits right after
  return stderrIsJournal() ? { write: (line) => stderr.write(withPriority(line)) } : stderr;
}

/** Errors serialise as name, code, message, endpoint and status (with their cause chain), never as stack dumps. */
export function serializeError(value: unknown): unknown {
  if (!(value instanceof Error)) return value;
  const out: Record<string, unknown> = { name: value.name, message: value.message };
  for (const field of ['code', 'endpoint', 'status'] as const) {
    const v = (value as Partial<Record<typeof field, unknown>>)[field];
    if (v !== undefined) out[field] = v;
  }
  if (value.cause !== undefined) out.cause = serializeError(value.cause);
  return out;
}

/**
 * grpc-js writes its own lines ("E No address added out of total 1 resolved
 * errors") to stderr through console; this sends them to `logger` instead, at
 * the verbosity of `level` unless GRPC_VERBOSITY (or GRPC_NODE_VERBOSITY) says otherwise.
 * Process-wide: grpc-js has one logger.
 */
export function routeGrpcLogs(logger: Logger, level: LogLevel): void {
  const line =
    (lvl: LogLevel) =>
    (message?: unknown, ...rest: unknown[]) =>
      logger[lvl](format(message, ...rest), { component: 'grpc-js' });
  grpc.setLogger({ error: line('error'), info: line('info'), debug: line('debug') });
  if (process.env.GRPC_VERBOSITY === undefined && process.env.GRPC_NODE_VERBOSITY === undefined) {
    grpc.setLogVerbosity(level === 'debug' ? grpc.logVerbosity.DEBUG : level === 'info' ? grpc.logVerbosity.INFO : grpc.logVerbosity.ERROR);
  }
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
