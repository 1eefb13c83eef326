/**
 * Every setting of the service, as one declarative table (variable, unit,
 * default, bounds, meaning), and the one place that reads the environment:
 * each value is validated, then the relations between them, all problems are
 * reported together, and the result is frozen and handed to each part whole.
 * The configuration tables (docs/configuration.md, and the README's first settings) are generated from SETTINGS.
 */
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { availableParallelism } from 'node:os';
import type { LogFormat, LogLevel } from './log';
import { loadTlsFiles, type TlsFiles } from './tls';

/** One environment variable: how it is read and how it is documented. */
export interface Setting<T> {
  readonly env: string;
  /** The default as the README shows it. */
  readonly defaultText: string;
  /** Accepted values as the README shows them ('' when any text goes). */
  readonly rangeText: string;
  readonly description: string;
  /** Never logged, never echoed in a problem. */
  readonly secret?: boolean;
  /** An empty value is a value (handed to parse), not "unset, use the default". */
  readonly emptyIsValue?: boolean;
  readonly default: T;
  /** The value, or a problem that says what is accepted. */
  parse(raw: string): { value: T } | { problem: string };
}

type Parsed<T> = { value: T } | { problem: string };
const shown = (raw: string) => JSON.stringify(raw.length > 80 ? `${raw.slice(0, 80)}...` : raw);

interface NumberSpec<D> {
  env: string;
  default: D;
  min: number;
  max: number;
  description: string;
  /** Shown instead of the default value, e.g. when it is computed from other settings. */
  defaultText?: string;
}

/** A number of `unit`s, bounded; `scale` converts it to the unit the code uses (seconds -> ms). */
function quantity<D extends number | undefined>(unit: string, integer: boolean, scale: number, spec: NumberSpec<D>): Setting<number | D> {
  const what = integer ? 'an integer' : 'a number';
  return {
    env: spec.env,
    defaultText: spec.defaultText ?? (spec.default === undefined ? 'unset' : `${spec.default}${unit === '' ? '' : ` ${unit}`}`),
    rangeText: `${spec.min} to ${spec.max}`,
    description: spec.description,
    default: (spec.default === undefined ? undefined : spec.default * scale) as D,
    parse(raw): Parsed<number> {
      // Plain decimals only: Number() would also take 0x10, 0b101, 0o7, 1e3 and .5.
      const n = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < spec.min || n > spec.max) {
        return { problem: `must be ${what} from ${spec.min} to ${spec.max}${unit === '' ? '' : ` (${unit})`}, got ${shown(raw)}` };
      }
      return { value: Math.round(n * scale) };
    },
  };
}
const seconds = <D extends number | undefined>(spec: NumberSpec<D>) => quantity('s', false, 1000, spec);
const count = <D extends number | undefined>(unit: string, spec: NumberSpec<D>) => quantity(unit, true, 1, spec);
const mebibytes = <D extends number | undefined>(spec: NumberSpec<D>) => quantity('MiB', false, 2 ** 20, spec);

function flag(spec: { env: string; default: boolean; description: string }): Setting<boolean> {
  return {
    env: spec.env,
    defaultText: String(spec.default),
    rangeText: 'true, false',
    description: spec.description,
    default: spec.default,
    parse(raw) {
      if (/^(true|1|yes)$/i.test(raw)) return { value: true };
      if (/^(false|0|no)$/i.test(raw)) return { value: false };
      return { problem: `must be true or false, got ${shown(raw)}` };
    },
  };
}

function text(spec: { env: string; description: string; defaultText: string; secret?: boolean }): Setting<string | undefined> {
  return {
    env: spec.env,
    defaultText: spec.defaultText,
    rangeText: '',
    description: spec.description,
    ...(spec.secret ? { secret: true } : {}),
    default: undefined,
    parse: (raw) => ({ value: raw }),
  };
}

function oneOf<const V extends string>(spec: { env: string; values: readonly V[]; default: V; description: string }): Setting<V> {
  return {
    env: spec.env,
    defaultText: spec.default,
    rangeText: spec.values.join(', '),
    description: spec.description,
    default: spec.default,
    parse: (raw) => ((spec.values as readonly string[]).includes(raw) ? { value: raw as V } : { problem: `must be one of ${spec.values.join(', ')}, got ${shown(raw)}` }),
  };
}

/** HOST:PORT; an IP literal must be a valid one (256.1.1.1 is refused here, not at bind time). */
export function parseListenAddress(raw: string): Parsed<string> {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(raw);
  const bad = { problem: `must be HOST:PORT (e.g. 0.0.0.0:50051 or [::1]:50051), got ${shown(raw)}` };
  if (m === null || Number(m[3]) > 65_535) return bad;
  if (m[1] !== undefined) return isIPv6(m[1]) ? { value: raw } : bad;
  const host = m[2]!;
  if (/^[\d.]+$/.test(host)) return isIPv4(host) ? { value: raw } : bad;
  return /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host) ? { value: raw } : bad;
}

function address<D extends string | undefined>(spec: { env: string; default: D; description: string }): Setting<string | D> {
  return {
    env: spec.env,
    defaultText: spec.default ?? 'unset: off',
    rangeText: 'HOST:PORT',
    description: spec.description,
    default: spec.default,
    parse: parseListenAddress,
  };
}

/** HOST:PORT of a listener that is on by default; set empty (or `off`) to turn it off. */
function optionalAddress(spec: { env: string; default: string; description: string }): Setting<string | undefined> {
  return {
    env: spec.env,
    defaultText: spec.default,
    rangeText: 'HOST:PORT, or empty or `off`: no listener',
    description: spec.description,
    default: spec.default,
    emptyIsValue: true,
    parse: (raw) => (raw === '' || raw === 'off' ? { value: undefined } : parseListenAddress(raw)),
  };
}

/** A listener's TLS files: `${prefix}_CERT`, `_KEY` and `_CLIENT_CA` (loadConfig checks them together). */
function tlsFiles(prefix: string, listener: string) {
  return {
    tlsCert: text({
      env: `${prefix}_CERT`,
      defaultText: 'unset: plaintext',
      description: `PEM certificate (chain) the ${listener} listener serves; with the key it turns TLS on. Re-read while running (\`KSM_SCORER_TLS_RELOAD_SECONDS\`)`,
    }),
    tlsKey: text({ env: `${prefix}_KEY`, defaultText: 'required with the certificate', description: `PEM private key of that certificate (unencrypted; keep the file readable by the service only)` }),
    tlsClientCa: text({
      env: `${prefix}_CLIENT_CA`,
      defaultText: 'unset: any client',
      description: `PEM bundle of CAs: set, the ${listener} listener is mutual TLS and refuses, in the handshake, a client without a certificate signed by one of them`,
    }),
  };
}

/** A process count: an integer, or `auto`: os.availableParallelism(), the CPUs this process may run on. */
function processes(spec: { env: string; default: number; max: number; description: string }): Setting<number> {
  const integer = count('', { ...spec, min: 1 });
  return {
    ...integer,
    rangeText: `${integer.rangeText}, auto`,
    parse(raw) {
      if (raw === 'auto') return { value: Math.min(spec.max, availableParallelism()) };
      const parsed = integer.parse(raw);
      return 'problem' in parsed ? { problem: `must be an integer from 1 to ${spec.max}, or auto, got ${shown(raw)}` } : parsed;
    },
  };
}

/** The events poll interval unless set, or half the refresh interval when that is less. */
const DEFAULT_EVENTS_MS = 5_000;
/** The age at which calls are refused unless set, or 2 x the stale age when that is more. */
const DEFAULT_MAX_STALENESS_MS = 600_000;

const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty'];

/**
 * The settings, grouped by the part of the service that uses them. Adding a
 * setting is one row here and its use in that part.
 */
export const SETTINGS = {
  /** The gRPC server. */
  server: {
    listen: address({ env: 'KSM_SCORER_LISTEN', default: '0.0.0.0:50051', description: 'gRPC listen address (port 0 picks a free port, logged)' }),
    shutdownGraceMs: seconds({ env: 'KSM_SCORER_SHUTDOWN_GRACE_SECONDS', default: 10, min: 0, max: 3_600, description: 'how long SIGTERM/SIGINT waits for in-flight calls before cancelling them' }),
    workers: processes({
      env: 'KSM_SCORER_WORKERS',
      default: 1,
      max: 256,
      description:
        'processes serving gRPC on the shared port; `auto`: one per CPU available. Above 1, a primary process syncs the inventory once and sends each generation to the workers; one client connection stays on one worker',
    }),
    // Transport limits (issue 7): each bounds what one client can hold; see README "Limits and hardening".
    maxConnections: count('connections', { env: 'KSM_SCORER_MAX_CONNECTIONS', default: 1_000, min: 1, max: 1_000_000, description: 'most client connections open at once; one more is closed as soon as it is accepted. With workers, each worker takes this divided by their number' }),
    handshakeTimeoutMs: seconds({ env: 'KSM_SCORER_HANDSHAKE_TIMEOUT_SECONDS', default: 10, min: 0.1, max: 3_600, description: 'a connection that has not sent the HTTP/2 preface within this time is closed' }),
    maxConnectionIdleMs: seconds({ env: 'KSM_SCORER_MAX_CONNECTION_IDLE_SECONDS', default: 300, min: 0.1, max: 86_400, description: 'a connection without a call for this long is closed (GOAWAY; clients reconnect by themselves)' }),
    maxConnectionAgeMs: seconds({ env: 'KSM_SCORER_MAX_CONNECTION_AGE_SECONDS', default: 1_800, min: 1, max: 7 * 86_400, description: 'a connection is asked to close (GOAWAY) after this long, +/-10%, so clients spread over new replicas' }),
    maxConnectionAgeGraceMs: seconds({ env: 'KSM_SCORER_MAX_CONNECTION_AGE_GRACE_SECONDS', default: 60, min: 0, max: 86_400, description: 'calls still running on a connection that reached its maximum age are cut after this long' }),
    maxConcurrentStreams: count('streams', { env: 'KSM_SCORER_MAX_CONCURRENT_STREAMS', default: 100, min: 1, max: 100_000, description: 'most calls in flight on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); clients queue calls beyond it' }),
    firstMessageTimeoutMs: seconds({ env: 'KSM_SCORER_FIRST_MESSAGE_TIMEOUT_SECONDS', default: 20, min: 0.1, max: 3_600, description: 'a call whose request has not arrived within this time (all of it and the end of the stream; the first message for a streaming request) gets `DEADLINE_EXCEEDED`' }),
    maxControlBytesPerSecond: count('bytes/s', {
      env: 'KSM_SCORER_MAX_CONTROL_BYTES_PER_SECOND',
      default: 65_536,
      min: 1_024,
      max: 1_000_000_000,
      description:
        'control frames (WINDOW_UPDATE, PRIORITY, PING, SETTINGS, RST_STREAM) one connection may send in a second, as bytes beyond its calls (their messages, and 1 KiB each); past it the connection gets GOAWAY `ENHANCE_YOUR_CALM` and is closed. The default is about 5,000 WINDOW_UPDATE frames',
    }),
    maxRequestBytes: mebibytes({ env: 'KSM_SCORER_MAX_REQUEST_MB', default: 4, min: 0.001, max: 1_024, description: 'largest request message, after decompression; a larger one gets `RESOURCE_EXHAUSTED`' }),
    ...tlsFiles('KSM_SCORER_TLS', 'gRPC'),
  },
  /** The oVirt engine's external-scheduler protocol (XML-RPC over HTTP, src/scheduler-proxy), off unless an address is set. */
  ovirtProxy: {
    listen: address({
      env: 'KSM_SCORER_OVIRT_PROXY_LISTEN',
      default: undefined,
      description:
        "listen address for the oVirt engine's external scheduler (XML-RPC, the engine's `ExternalSchedulerServiceURL`; its default is `localhost:18781`); use loopback (`localhost:18781`) with ksm-scorer on the engine machine, TLS anywhere else",
    }),
    maxBodyBytes: mebibytes({
      env: 'KSM_SCORER_OVIRT_PROXY_MAX_BODY_MB',
      default: 4,
      min: 0.0625,
      max: 256,
      description: 'largest XML-RPC request body accepted (a call naming 60 hosts is about 4 KiB); a larger one gets a fault as soon as the limit is passed, without being read whole',
    }),
    minRateBytes: count('bytes/s', {
      env: 'KSM_SCORER_OVIRT_PROXY_MIN_RATE_BYTES',
      default: 500,
      min: 1,
      max: 1_000_000_000,
      description:
        'slowest a request may arrive: headers get 10 s and the body 10 s, each plus 1 s per this many bytes received (headers at most 20 s); at the connection cap (64) the connection furthest behind it, or idle, is closed to make room. See docs/security.md',
    }),
    ...tlsFiles('KSM_SCORER_OVIRT_PROXY_TLS', 'XML-RPC'),
  },
  /** The TLS files of every listener (src/tls.ts). */
  tls: {
    reloadMs: seconds({
      env: 'KSM_SCORER_TLS_RELOAD_SECONDS',
      default: 60,
      min: 0.1,
      max: 86_400,
      description: 'how often the TLS files are read again; a changed, valid set is used for new connections, a broken one is logged and the previous set kept',
    }),
  },
  /** How to reach the engine; turned into an EngineConnection (or none: the simulator). */
  connection: {
    url: text({
      env: 'OVIRT_URL',
      defaultText: 'unset: embedded simulator',
      description: 'engine API base, e.g. `https://engine.example.com/ovirt-engine/api`; must end in `/api`, must not contain credentials; or `file:DIR`, a recording made by `ksm-scorer engine record DIR`',
    }),
    username: text({ env: 'OVIRT_USERNAME', defaultText: 'required with `OVIRT_URL`', description: 'e.g. `admin@internal`' }),
    password: text({ env: 'OVIRT_PASSWORD', defaultText: 'one of the two required with `OVIRT_URL`', description: 'the password; never logged', secret: true }),
    passwordFile: text({ env: 'OVIRT_PASSWORD_FILE', defaultText: 'unset', description: 'a file holding the password (a trailing newline is dropped); preferred over `OVIRT_PASSWORD`' }),
    caFile: text({
      env: 'OVIRT_CA_FILE',
      defaultText: 'system roots',
      description:
        "PEM bundle to verify the engine's certificate (the engine CA is at `/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA`)",
    }),
    insecure: flag({ env: 'OVIRT_INSECURE', default: false, description: '`true` turns certificate verification off; refused together with `OVIRT_CA_FILE`' }),
  },
  /** The engine REST client. */
  engine: {
    pageSize: count('VMs', { env: 'OVIRT_PAGE_SIZE', default: 500, min: 1, max: 100_000, description: 'VMs per page of `GET /vms`' }),
    requestTimeoutMs: seconds({
      env: 'OVIRT_TIMEOUT_SECONDS',
      default: 30,
      min: 0.1,
      max: 3_600,
      description: 'connect and header timeout of each engine request, and the longest pause allowed between body bytes',
    }),
    requestDeadlineMs: seconds({
      env: 'OVIRT_REQUEST_DEADLINE_SECONDS',
      default: 120,
      min: 0.1,
      max: 3_600,
      description: 'total time one engine request may take, body included (an engine that drips its answer is cut off here)',
    }),
    maxVms: count('VMs', {
      env: 'OVIRT_MAX_VMS',
      default: 1_000_000,
      min: 1,
      max: 10_000_000,
      description: 'most VMs one full refresh reads (pages x page size); past it the refresh fails, so an engine that ignores paging cannot keep it reading',
    }),
    maxAnswerBytes: mebibytes({
      env: 'OVIRT_MAX_ANSWER_MB',
      default: 64,
      min: 1,
      max: 1_024,
      description: 'largest engine answer read, after gunzip (a page of 500 VMs is about 2 MiB); a larger one fails that sync, the last good inventory stays',
    }),
  },
  /** The inventory: sync loop, freshness, on-demand reads. */
  inventory: {
    refreshIntervalMs: seconds({ env: 'KSM_SCORER_REFRESH_SECONDS', default: 300, min: 1, max: 86_400, description: 'interval of the full inventory refresh (resync)' }),
    eventsIntervalMs: seconds({
      env: 'KSM_SCORER_EVENTS_SECONDS',
      default: undefined,
      defaultText: '5 s, or half the refresh interval when that is less',
      min: 0,
      max: 3_600,
      description: 'interval of the engine events poll between full refreshes; `0` turns events off (full refreshes only); must be less than the refresh interval',
    }),
    staleAfterMs: seconds({
      env: 'KSM_SCORER_STALE_SECONDS',
      default: undefined,
      defaultText: '2 x the sync interval',
      min: 0.1,
      max: 86_400,
      description:
        'age after which answers carry `inventory.stale = true`; the sync interval is the events interval, or the refresh interval without events, and must be less than this',
    }),
    maxStalenessMs: seconds({
      env: 'KSM_SCORER_MAX_STALENESS_SECONDS',
      default: undefined,
      defaultText: '600 s, or 2 x the stale age when that is more',
      min: 1,
      max: 7 * 86_400,
      description: 'age after which ScoreHosts answers `UNAVAILABLE` and health goes `NOT_SERVING` (both recover by themselves); must be more than the stale age',
    }),
    backoffMaxMs: seconds({ env: 'KSM_SCORER_BACKOFF_MAX_SECONDS', default: 60, min: 1, max: 3_600, description: 'cap of the exponential backoff (from 1 s, with jitter) after engine failures' }),
    maxRejectedPercent: count('%', {
      env: 'KSM_SCORER_MAX_REJECTED_PERCENT',
      default: 10,
      min: 0,
      max: 100,
      description:
        'a full refresh that leaves out more than this share of the hosts and VMs the engine listed (records it cannot use) is not published: the last good inventory stays, ageing; `100` publishes whatever is usable',
    }),
    maxDropPercent: count('%', {
      env: 'KSM_SCORER_MAX_DROP_PERCENT',
      default: 25,
      min: 0,
      max: 100,
      description:
        'a full refresh with this share fewer hosts or VMs than the last good inventory is held as a possibly broken answer; it is published once 3 refreshes in a row agree (a real mass change); `100` never holds',
    }),
    onDemandCacheSize: count('entries', {
      env: 'KSM_SCORER_CACHE_HOSTS',
      default: 20_000,
      min: 1,
      max: 10_000_000,
      description: 'bound of what on-demand reads remember until the next generation (hosts and VMs the snapshot did not hold, found or not); the snapshot itself always holds every host the engine listed',
    }),
    onDemandConcurrency: count('requests', {
      env: 'KSM_SCORER_ON_DEMAND_CONCURRENCY',
      default: 4,
      min: 1,
      max: 256,
      description: 'engine requests of on-demand reads in flight at once, for all calls together (sync requests are separate and sequential)',
    }),
    onDemandPerSecond: count('reads/s', {
      env: 'KSM_SCORER_ON_DEMAND_READS_PER_SECOND',
      default: 20,
      min: 1,
      max: 10_000,
      description:
        'most on-demand reads started per second, for all calls together (a host read is 2 engine requests, a VM read 1); calls beyond it get `RESOURCE_EXHAUSTED`. With workers, each worker gets this divided by their number (at least 1)',
    }),
    onDemandPerCall: count('reads', {
      env: 'KSM_SCORER_ON_DEMAND_PER_CALL',
      default: 16,
      min: 0,
      max: 10_000,
      description: 'most on-demand reads one call (or batch) may cause; a call that needs more gets `RESOURCE_EXHAUSTED` without any engine request',
    }),
    notFoundTtlMs: seconds({
      env: 'KSM_SCORER_NOT_FOUND_TTL_SECONDS',
      default: 60,
      min: 1,
      max: 86_400,
      description: 'how long a host or VM id the engine does not have is remembered as unknown (also forgotten at each new generation)',
    }),
  },
  /** What one request may ask for, and what scoring may keep. */
  limits: {
    maxHostsPerRequest: count('ids', { env: 'KSM_SCORER_MAX_HOSTS', default: 10_000, min: 1, max: 1_000_000, description: 'most `host_ids` one request may name' }),
    maxBatchRequests: count('items', { env: 'KSM_SCORER_MAX_BATCH_REQUESTS', default: 10_000, min: 1, max: 1_000_000, description: 'most requests in one ScoreHostsBatch' }),
    maxBatchHostScores: count('scores', {
      env: 'KSM_SCORER_MAX_BATCH_HOST_SCORES',
      default: 50_000,
      min: 1,
      max: 10_000_000,
      description:
        'most host scores one ScoreHostsBatch may ask for (items x hosts, an empty `host_ids` counting every host): a batch is scored in one go, about 0.02 s and a 2.8 MB answer (under clients\' default 4 MB limit) at this size on the benchmark machine, so this bounds how long one call holds the others up',
    }),
    scoreCacheBytes: mebibytes({
      env: 'KSM_SCORER_SCORE_CACHE_MB',
      default: 64,
      min: 0,
      max: 65_536,
      description:
        'memory for score tables: each host scored and encoded once per inventory generation and OS identity asked for (about 150 bytes a host per OS identity), with whole answers for host lists sent again; an eighth of it remembers recent host lists by their bytes; past it the least recently used go; `0` keeps none (every call scores what it needs)',
    }),
  },
  /** The embedded simulated engine, used when OVIRT_URL is unset. */
  simulator: {
    hosts: count('hosts', { env: 'KSM_SCORER_SIM_HOSTS', default: 50, min: 1, max: 100_000, description: 'hosts of the embedded simulator (only without `OVIRT_URL`)' }),
    vms: count('VMs', { env: 'KSM_SCORER_SIM_VMS', default: 1_000, min: 0, max: 1_000_000, description: 'VMs of the embedded simulator' }),
    seed: count('', { env: 'KSM_SCORER_SIM_SEED', default: 1, min: 0, max: 2 ** 31 - 1, description: 'seed of the embedded simulator' }),
  },
  /** Prometheus metrics. */
  metrics: {
    listen: optionalAddress({
      env: 'KSM_SCORER_METRICS_LISTEN',
      default: '0.0.0.0:9464',
      description: 'HTTP listen address of `/metrics` (Prometheus text, or OpenMetrics when asked); empty or `off` turns metrics off, the gRPC metrics cost included',
    }),
    ...tlsFiles('KSM_SCORER_METRICS_TLS', 'metrics'),
  },
  log: {
    level: oneOf({ env: 'KSM_SCORER_LOG_LEVEL', values: LOG_LEVELS, default: 'info', description: 'log level; logs are JSON lines on stderr (pino)' }),
    format: oneOf({ env: 'KSM_SCORER_LOG_FORMAT', values: LOG_FORMATS, default: 'json', description: '`pretty`: coloured lines for people at a terminal (`make run` sets it); `json` for services' }),
  },
} as const;

type Settings = typeof SETTINGS;
type ValuesOf<G> = { readonly [K in keyof G]: G[K] extends Setting<infer T> ? T : never };

/** How to reach and log in to a real engine. */
export interface EngineConnection {
  /** API base, e.g. https://engine.example.com/ovirt-engine/api */
  readonly url: string;
  readonly username: string;
  readonly password: string;
  /** PEM bundle to verify the engine's certificate; undefined = system roots. */
  readonly caFile: string | undefined;
  readonly insecure: boolean;
}

export type EngineSettings = ValuesOf<Settings['engine']> & {
  /** undefined: no OVIRT_URL, so the embedded simulated engine is used. */
  readonly connection: EngineConnection | undefined;
};
export type InventorySettings = Omit<ValuesOf<Settings['inventory']>, 'staleAfterMs' | 'eventsIntervalMs' | 'maxStalenessMs'> & {
  /** Resolved: 5 s, or half the refresh interval when that is less, unless set; 0 = no events. */
  readonly eventsIntervalMs: number;
  /** Resolved: 2 x the sync interval unless set. */
  readonly staleAfterMs: number;
  /** Resolved: 600 s, or 2 x the stale age when that is more, unless set. */
  readonly maxStalenessMs: number;
};
type TlsFileKeys = keyof ReturnType<typeof tlsFiles>;
/** A listener's settings, with its TLS files resolved: undefined = plaintext. */
type WithTls<G> = Omit<ValuesOf<G>, TlsFileKeys> & { readonly tls: TlsFiles | undefined };
export type ServerSettings = WithTls<Settings['server']>;
export type OvirtProxySettings = WithTls<Settings['ovirtProxy']>;
export type LimitSettings = ValuesOf<Settings['limits']>;
export type SimulatorSettings = ValuesOf<Settings['simulator']>;
export type MetricsSettings = WithTls<Settings['metrics']>;
export type LogSettings = ValuesOf<Settings['log']>;

export interface Config {
  readonly engine: EngineSettings;
  readonly inventory: InventorySettings;
  readonly server: ServerSettings;
  readonly ovirtProxy: OvirtProxySettings;
  readonly limits: LimitSettings;
  readonly simulator: SimulatorSettings;
  readonly metrics: MetricsSettings;
  readonly log: LogSettings;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function readGroup<G extends Record<string, Setting<unknown>>>(group: G, env: Env, problems: string[]): ValuesOf<G> {
  const out: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(group)) {
    const raw = env[setting.env]?.trim();
    if (raw === undefined || (raw === '' && !setting.emptyIsValue)) {
      out[key] = setting.default;
      continue;
    }
    const parsed = setting.parse(raw);
    if ('problem' in parsed) {
      problems.push(`${setting.env}: ${setting.secret ? 'invalid value' : parsed.problem}`);
      out[key] = setting.default;
    } else {
      out[key] = parsed.value;
    }
  }
  return out as ValuesOf<G>;
}

/** Reads and validates `env`; throws ConfigError listing every problem. */
export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const { reloadMs } = readGroup(SETTINGS.tls, env, problems);
  const server = readTls(readGroup(SETTINGS.server, env, problems), SETTINGS.server, reloadMs, problems);
  const ovirtProxy = readTls(readGroup(SETTINGS.ovirtProxy, env, problems), SETTINGS.ovirtProxy, reloadMs, problems);
  const connection = readConnection(readGroup(SETTINGS.connection, env, problems), problems);
  const engine = readGroup(SETTINGS.engine, env, problems);
  const inventory = readGroup(SETTINGS.inventory, env, problems);
  const limits = readGroup(SETTINGS.limits, env, problems);
  const simulator = readGroup(SETTINGS.simulator, env, problems);
  const metrics = readTls(readGroup(SETTINGS.metrics, env, problems), SETTINGS.metrics, reloadMs, problems);
  const log = readGroup(SETTINGS.log, env, problems);

  // Relations between settings: each broken one would make a healthy service flap or stall. A default
  // that depends on another setting follows it, so only values that were set can break a relation,
  // and the problem is reported against the one that depends on the other.
  const s = (ms: number) => `${ms / 1000} s`;
  const eventsIntervalMs = inventory.eventsIntervalMs ?? Math.min(DEFAULT_EVENTS_MS, inventory.refreshIntervalMs / 2);
  const syncMs = eventsIntervalMs > 0 ? eventsIntervalMs : inventory.refreshIntervalMs;
  const staleAfterMs = inventory.staleAfterMs ?? 2 * syncMs;
  const maxStalenessMs = inventory.maxStalenessMs ?? Math.max(DEFAULT_MAX_STALENESS_MS, 2 * staleAfterMs);
  if (eventsIntervalMs > 0 && eventsIntervalMs >= inventory.refreshIntervalMs) {
    problems.push(`KSM_SCORER_EVENTS_SECONDS: must be less than KSM_SCORER_REFRESH_SECONDS (${s(inventory.refreshIntervalMs)}), or 0 to turn events off`);
  }
  if (inventory.staleAfterMs !== undefined && inventory.staleAfterMs <= syncMs) {
    problems.push(`KSM_SCORER_STALE_SECONDS: must be more than the sync interval (${s(syncMs)}), or every answer between two syncs would be stale`);
  }
  if (maxStalenessMs <= staleAfterMs) {
    problems.push(
      `KSM_SCORER_MAX_STALENESS_SECONDS: must be more than the stale age (${s(staleAfterMs)}${inventory.staleAfterMs === undefined ? ', 2 x the sync interval' : ''}), or a healthy service would refuse calls between two syncs`,
    );
  }
  if (engine.requestTimeoutMs > engine.requestDeadlineMs) {
    problems.push(`OVIRT_REQUEST_DEADLINE_SECONDS: must not be less than OVIRT_TIMEOUT_SECONDS (${s(engine.requestTimeoutMs)})`);
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze({
    engine: { ...engine, connection },
    inventory: { ...inventory, eventsIntervalMs, staleAfterMs, maxStalenessMs },
    server,
    ovirtProxy,
    limits,
    simulator,
    metrics,
    log,
  });
}

/** Resolves a listener's TLS settings into its files (or none), checked as the listener will load them. */
function readTls<V extends Record<TlsFileKeys, string | undefined>>(
  values: V,
  group: ReturnType<typeof tlsFiles>,
  reloadMs: number,
  problems: string[],
): Omit<V, TlsFileKeys> & { readonly tls: TlsFiles | undefined } {
  const { tlsCert, tlsKey, tlsClientCa, ...rest } = values;
  const file = (setting: Setting<unknown>, path: string) => ({ env: setting.env, path });
  let tls: TlsFiles | undefined;
  if (tlsCert === undefined || tlsKey === undefined) {
    if (tlsCert !== undefined || tlsKey !== undefined) {
      const [missing, given] = tlsCert === undefined ? [group.tlsCert, group.tlsKey] : [group.tlsKey, group.tlsCert];
      problems.push(`${missing.env}: required with ${given.env}`);
    } else if (tlsClientCa !== undefined) {
      problems.push(`${group.tlsClientCa.env}: mutual TLS needs TLS: set ${group.tlsCert.env} and ${group.tlsKey.env} too`);
    }
  } else {
    tls = { cert: file(group.tlsCert, tlsCert), key: file(group.tlsKey, tlsKey), clientCa: tlsClientCa === undefined ? undefined : file(group.tlsClientCa, tlsClientCa), reloadMs };
    const loaded = loadTlsFiles(tls);
    if (typeof loaded === 'string') problems.push(loaded);
  }
  return { ...rest, tls };
}

function readConnection(c: ValuesOf<Settings['connection']>, problems: string[]): EngineConnection | undefined {
  if (c.url === undefined) {
    // Without OVIRT_URL the simulator is used: settings for a real engine would be silently ignored.
    const set = [
      ['OVIRT_USERNAME', c.username],
      ['OVIRT_PASSWORD', c.password],
      ['OVIRT_PASSWORD_FILE', c.passwordFile],
      ['OVIRT_CA_FILE', c.caFile],
      ['OVIRT_INSECURE', c.insecure ? 'true' : undefined],
    ].flatMap(([name, value]) => (value === undefined ? [] : [name]));
    if (set.length > 0) {
      problems.push(`OVIRT_URL: unset, so the embedded simulator would be used and ${set.join(', ')} ignored; set OVIRT_URL for a real engine, or unset ${set.length === 1 ? 'it' : 'them'}`);
    }
    return undefined;
  }
  // A recording (`ksm-scorer engine record DIR`), served on loopback: no account, no TLS; connectEngine reads it.
  if (c.url.startsWith('file:')) {
    if (c.url.length === 'file:'.length) problems.push('OVIRT_URL: file: needs the directory of a recording, e.g. file:/var/tmp/engine-recording');
    return { url: c.url, username: '', password: '', caFile: undefined, insecure: false };
  }
  if (c.insecure && c.caFile !== undefined) problems.push('OVIRT_INSECURE: true disables verification, so OVIRT_CA_FILE would be ignored; set only one');
  if (c.caFile !== undefined) {
    try {
      const pem = readFileSync(c.caFile, 'utf8');
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) problems.push(`OVIRT_CA_FILE: ${c.caFile} holds no PEM certificate`);
    } catch (err) {
      problems.push(`OVIRT_CA_FILE: cannot read ${c.caFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  let url = c.url.replace(/\/+$/, '');
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') problems.push('OVIRT_URL: must be an http(s) URL');
    // Credentials in the URL would end up in logs; they belong in OVIRT_USERNAME/OVIRT_PASSWORD.
    if (parsed.username || parsed.password) problems.push('OVIRT_URL: must not contain credentials, use OVIRT_USERNAME and OVIRT_PASSWORD');
    if (!/\/api$/.test(parsed.pathname.replace(/\/+$/, ''))) problems.push(`OVIRT_URL: must end in /api (e.g. https://engine.example.com/ovirt-engine/api), got ${JSON.stringify(parsed.pathname)}`);
    url = `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
  } catch {
    problems.push('OVIRT_URL: not a valid URL');
  }

  if (c.username === undefined) problems.push('OVIRT_USERNAME: required when OVIRT_URL is set (e.g. admin@internal)');

  let password = c.password;
  if (c.password !== undefined && c.passwordFile !== undefined) {
    problems.push('OVIRT_PASSWORD_FILE: set either OVIRT_PASSWORD or OVIRT_PASSWORD_FILE, not both');
  } else if (c.passwordFile !== undefined) {
    try {
      password = readFileSync(c.passwordFile, 'utf8').replace(/\r?\n$/, '');
      if (password === '') problems.push(`OVIRT_PASSWORD_FILE: ${c.passwordFile} is empty`);
    } catch (err) {
      problems.push(`OVIRT_PASSWORD_FILE: cannot read ${c.passwordFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  } else if (c.password === undefined) {
    problems.push('OVIRT_PASSWORD: required when OVIRT_URL is set (or OVIRT_PASSWORD_FILE)');
  }
  return { url, username: c.username ?? '', password: password ?? '', caFile: c.caFile, insecure: c.insecure };
}

/** What may be logged about the configuration: everything that is in use, but the password. */
export function describeConfig(config: Config): Record<string, unknown> {
  const { connection, ...engine } = config.engine;
  const { simulator, ...rest } = config;
  const shown = { ...rest, metrics: { ...config.metrics, listen: config.metrics.listen ?? 'off' } };
  return connection === undefined
    ? { ...shown, engine: { ...engine, connection: 'embedded simulator' }, simulator }
    : { ...shown, engine: { ...engine, connection: { ...connection, password: '<redacted>' } } };
}

/** The settings people set first: the README's short table (docs/configuration.md has them all). */
export const FIRST_SETTINGS = ['KSM_SCORER_LISTEN', 'OVIRT_URL', 'OVIRT_USERNAME', 'OVIRT_PASSWORD_FILE', 'OVIRT_CA_FILE', 'KSM_SCORER_OVIRT_PROXY_LISTEN', 'KSM_SCORER_METRICS_LISTEN', 'KSM_SCORER_WORKERS', 'KSM_SCORER_LOG_FORMAT'] as const;

/** A configuration table generated from SETTINGS, all of them or `only` those (`make readme-config` writes both). */
export function settingsMarkdown(only?: readonly string[]): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const rows = Object.values(SETTINGS).flatMap((group) =>
    Object.values(group as Record<string, Setting<unknown>>)
      .filter((s) => only === undefined || only.includes(s.env))
      .map((s) => `| \`${s.env}\` | ${cell(s.defaultText)} | ${cell(s.rangeText)} | ${cell(s.description)} |`),
  );
  return ['| variable | default | accepted | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
