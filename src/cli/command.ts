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
import { formatHostPort, type HostPort } from '../config/kinds';
import { readClientSettings } from '../config/load';
import { CLIENT_SETTINGS } from '../config/settings';
import { LOADER_OPTIONS, loadScorerProto } from '../contract/proto';
import {
  channelCredentials,
  explainTlsFailure,
  probeTlsMismatch,
  type TargetTls,
  targetTls,
  TLS_OPTIONS,
  TLS_USAGE,
  type TlsValues,
} from './tls';

const TARGET = CLIENT_SETTINGS.target;

/** Options every client command takes. */
export const CLIENT_OPTIONS = {
  target: { type: 'string' },
  timeout: { type: 'string', default: '10' },
  help: { type: 'boolean', short: 'h', default: false },
  ...TLS_OPTIONS,
} as const;

export const CLIENT_USAGE = `      --target defaults to $${TARGET.env} or ${TARGET.defaultText}; --timeout (seconds) to 10.
${TLS_USAGE}`;

type ClientValues = { target?: string; timeout: string } & TlsValues;

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
    parsed = parseArgs({ args: joinNegativeValues(args, options), options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(optionProblem(err as NodeJS.ErrnoException));
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(`usage:\n${usage}\n`);
    return undefined;
  }
  if (parsed.positionals.length > positionals)
    throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[positionals])}`);
  return parsed;
}

/**
 * `--top -1` as `--top=-1`: Node's parser calls a value starting with "-" ambiguous, and the
 * operator then reads about option syntax instead of what --top accepts.
 */
function joinNegativeValues(args: string[], options: NonNullable<ParseArgsConfig['options']>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = /^--([^=]+)$/.exec(args[i]!)?.[1];
    const next = args[i + 1];
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else {
      out.push(args[i]!);
    }
  }
  return out;
}

/** Node's parseArgs errors in a line an operator reads at once (its own text explains its syntax). */
function optionProblem(err: NodeJS.ErrnoException): string {
  const option = /'(-[^' ]+)/.exec(err.message)?.[1];
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      if (option === '--version' || option === '-v') return `unknown option ${option}; \`ksm-scorer --version\` prints the version`;
      return `unknown option ${option ?? err.message}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/does not take an argument/.test(err.message)) return `${option} takes no value`;
      return `${option} needs a value`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${JSON.stringify(/'([^']*)'/.exec(err.message)?.[1] ?? '')}`;
    default:
      return err.message.split('\n')[0]!;
  }
}

/** A positive integer option, or a UsageError naming it. */
export function positiveInteger(name: string, raw: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? 'a whole number, 1 or more' : `a whole number from 1 to ${max}`;
    throw new UsageError(`--${name} must be ${range}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/**
 * Where to call and how: each option, or where it is not given its setting (KSM_SCORER_TARGET...),
 * read by the settings table's kinds. The target must be HOST:PORT: grpc-js reads anything else its
 * own way (no port dials 443, `http://...` becomes a DNS name, "" a parse error, all failing as calls).
 */
function clientTarget(values: ClientValues): { address: HostPort; tls: TargetTls } {
  const given = {
    target: values.target !== undefined,
    tls: values.tls === true,
    ca: values.ca !== undefined,
    cert: values.cert !== undefined,
    key: values.key !== undefined,
  };
  const settings = readClientSettings(process.env, given);
  // Trimmed as every setting's value is (load.ts), so --target and KSM_SCORER_TARGET take the same text.
  const option = values.target === undefined ? undefined : TARGET.parse(values.target.trim());
  const problems = [...(option !== undefined && 'problem' in option ? [`--target ${option.problem}`] : []), ...settings.problems];
  if (problems.length > 0) throw new UsageError(problems.join('; '));
  const address = option !== undefined && 'value' in option ? option.value : settings.values.target;
  return { address, tls: targetTls(values, settings.values) };
}

export interface Connection {
  readonly scorer: HostScorerServiceClient;
  readonly target: string;
  readonly address: HostPort;
  readonly tls: TargetTls;
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
  const { address, tls } = clientTarget(values);
  const target = formatHostPort(address);
  const credentials = channelCredentials(tls);
  if ('problem' in credentials) throw new UsageError(credentials.problem);
  const proto = loadScorerProto();
  const scorer = new proto.ksmscorer.v1.HostScorerService(target, credentials, { 'grpc.max_receive_message_length': MAX_ANSWER_BYTES });
  return {
    scorer,
    target,
    address,
    tls,
    credentials,
    call<Res>(client: grpc.Client, method: string, request: unknown): Promise<Res> {
      const fn = (client as unknown as Record<string, (r: unknown, o: grpc.CallOptions, cb: grpc.requestCallback<Res>) => void>)[method]!;
      return new Promise((resolve, reject) => {
        fn.call(client, request, { deadline: Date.now() + timeout * 1000 }, (err, res) =>
          err || res === undefined ? reject(err ?? new Error(`${method}: an empty answer`)) : resolve(res),
        );
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

/**
 * "STATUS: details" of a failed call, in words where grpc-js has none: a call that could not
 * connect is probed once (probeTlsMismatch) for a TLS mismatch; otherwise, with nothing listening,
 * a hint. grpc-js's empty "Resolution note:" is dropped.
 */
async function describeCallError(err: unknown, conn: Connection): Promise<string> {
  const e = err as grpc.ServiceError;
  const tls = explainTlsFailure(e);
  if (tls !== undefined) return tls;
  const details = (e.details ?? e.message).replace(/\.? Resolution note:\s*$/, '.');
  const notConnected =
    e.code === grpc.status.UNAVAILABLE && /No connection established|Failed to connect|ECONNRESET|Connection dropped/.test(details);
  if (notConnected) {
    const mismatch = await probeTlsMismatch(conn.address.host, conn.address.port, conn.tls);
    if (mismatch !== undefined) return mismatch;
  }
  const text = `${grpc.status[e.code] ?? 'ERROR'}: ${details}`;
  return e.code === grpc.status.UNAVAILABLE && /ECONNREFUSED|No connection established/.test(details)
    ? `${text} (is \`ksm-scorer serve\` running at ${conn.target}? set --target or $${TARGET.env})`
    : text;
}

/** Runs `use` on a connection to the service; a failed call is `ksm-scorer NAME: STATUS: details` on stderr, exit 1. */
export async function withConnection(name: string, values: ClientValues, use: (conn: Connection) => Promise<number>): Promise<number> {
  const conn = connect(values);
  try {
    return await use(conn);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    process.stderr.write(`ksm-scorer ${name}: ${await describeCallError(err, conn)}\n`);
    return 1;
  } finally {
    conn.close();
  }
}
