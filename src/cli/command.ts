/**
 * What every client command of the CLI shares: option parsing (usage errors
 * exit 2, --help prints the command's usage), the connection to a running
 * service (plaintext or TLS), and how a failed call is reported (exit 1).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { HostScorerServiceClient } from '../generated/ksmscorer/v1/HostScorerService';
import { LOADER_OPTIONS, loadScorerProto } from '../server/proto';
import { channelCredentials, explainTlsFailure, TLS_OPTIONS, TLS_USAGE } from './tls';

export const DEFAULT_TARGET = '127.0.0.1:50051';

/** Options every client command takes. */
export const CLIENT_OPTIONS = {
  target: { type: 'string' },
  timeout: { type: 'string', default: '10' },
  help: { type: 'boolean', short: 'h', default: false },
  ...TLS_OPTIONS,
} as const;

export const CLIENT_USAGE = `      --target defaults to $KSM_SCORER_TARGET or ${DEFAULT_TARGET}; --timeout (seconds) to 10.
${TLS_USAGE}`;

type ClientValues = { target?: string; timeout: string } & Parameters<typeof channelCredentials>[0];

/** A usage error: the command's name, what is wrong, and its usage, on stderr; exit code 2. */
export class UsageError extends Error {}

export interface Parsed<V> {
  readonly values: V;
  readonly positionals: string[];
}

/** Parses `args` for a command; undefined when --help was asked (the usage is printed). Throws UsageError. */
export function parseCommand<O extends NonNullable<ParseArgsConfig['options']>>(
  args: string[],
  options: O,
  usage: string,
  positionals = 0,
): Parsed<ReturnType<typeof parseArgs<{ options: O; allowPositionals: true; strict: true }>>['values']> | undefined {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(`usage:\n${usage}\n`);
    return undefined;
  }
  if (parsed.positionals.length > positionals) throw new UsageError(`Unexpected argument '${parsed.positionals[positionals]}'`);
  return parsed;
}

/** A positive integer option, or a UsageError naming it. */
export function positiveInteger(name: string, raw: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`--${name} must be an integer from 1 to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

export interface Connection {
  readonly scorer: HostScorerServiceClient;
  readonly target: string;
  readonly credentials: grpc.ChannelCredentials;
  /** A unary call with the command's deadline, as a promise. */
  call<Res>(client: grpc.Client, method: string, request: unknown): Promise<Res>;
  close(): void;
}

/** Answers (ListHosts of 5,000 hosts, a large batch) may pass grpc-js's default 4 MiB. */
const MAX_ANSWER_BYTES = 256 * 2 ** 20;

function connect(values: ClientValues): Connection {
  const timeout = Number(values.timeout);
  if (!(timeout > 0)) throw new UsageError(`--timeout must be a positive number of seconds, got ${JSON.stringify(values.timeout)}`);
  const target = values.target ?? (process.env.KSM_SCORER_TARGET || DEFAULT_TARGET);
  const credentials = channelCredentials(values);
  if ('problem' in credentials) throw new UsageError(credentials.problem);
  const proto = loadScorerProto();
  const scorer = new proto.ksmscorer.v1.HostScorerService(target, credentials, { 'grpc.max_receive_message_length': MAX_ANSWER_BYTES });
  return {
    scorer,
    target,
    credentials,
    call<Res>(client: grpc.Client, method: string, request: unknown): Promise<Res> {
      const fn = (client as unknown as Record<string, (r: unknown, o: grpc.CallOptions, cb: grpc.requestCallback<Res>) => void>)[method]!;
      return new Promise((resolve, reject) => {
        fn.call(client, request, { deadline: Date.now() + timeout * 1000 }, (err, res) => (err || res === undefined ? reject(err) : resolve(res)));
      });
    },
    close: () => scorer.close(),
  };
}

/** A grpc.health.v1.Health client to the same target with the same credentials. */
export function healthClient(conn: Connection): grpc.Client {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, LOADER_OPTIONS)) as unknown as {
    grpc: { health: { v1: { Health: new (target: string, creds: grpc.ChannelCredentials) => grpc.Client } } };
  };
  return new pkg.grpc.health.v1.Health(conn.target, conn.credentials);
}

/** "STATUS: details" of a failed call, with a hint when nothing listens at the target. */
function describeCallError(err: unknown, target: string): string {
  const e = err as grpc.ServiceError;
  const tls = explainTlsFailure(e);
  if (tls !== undefined) return tls;
  const text = `${grpc.status[e.code] ?? 'ERROR'}: ${e.details ?? e.message}`;
  return e.code === grpc.status.UNAVAILABLE && /ECONNREFUSED|No connection established/.test(e.details ?? '')
    ? `${text} (is \`ksm-scorer serve\` running at ${target}? set --target or $KSM_SCORER_TARGET)`
    : text;
}

/** Runs `use` on a connection to the service; a failed call is `ksm-scorer NAME: STATUS: details` on stderr, exit 1. */
export async function withConnection(name: string, values: ClientValues, use: (conn: Connection) => Promise<number>): Promise<number> {
  const conn = connect(values);
  try {
    return await use(conn);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    process.stderr.write(`ksm-scorer ${name}: ${describeCallError(err, conn.target)}\n`);
    return 1;
  } finally {
    conn.close();
  }
}
