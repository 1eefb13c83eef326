/**
 * Every setting, as one declarative table (variable, unit, default, bounds, meaning), grouped by
 * the part that uses it: the service's, read by loadConfig (load.ts), and the client commands'
 * (`client`), read by the CLI. The configuration tables of the docs are generated from it (markdown.ts).
 */
import type { LogFormat, LogLevel } from '../log';
import { address, count, flag, inCode, mebibytes, oneOf, optionalAddress, processes, seconds, text, tlsFiles } from './kinds';

const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty'];

// The rows other rows name in their texts, declared first so those texts take the name from them.
const TLS_RELOAD = seconds({
  env: 'KSM_SCORER_TLS_RELOAD_SECONDS',
  default: 60,
  min: 0.1,
  max: 86_400,
  description: 'how often the TLS files are read again; a changed, valid set is used for new connections, a broken one is logged and the previous set kept',
});
const ENGINE_URL = text({
  env: 'OVIRT_URL',
  defaultText: 'unset: embedded simulator',
  description: 'engine API base, e.g. `https://engine.example.com/ovirt-engine/api`; must end in `/api`, must not contain credentials; or `file:DIR`, a recording made by `ksm-scorer engine record DIR`',
});
const ENGINE_PASSWORD = text({ env: 'OVIRT_PASSWORD', defaultText: `one of the two required with ${inCode(ENGINE_URL)}`, description: 'the password; never logged', secret: true });
const ENGINE_CA_FILE = text({
  env: 'OVIRT_CA_FILE',
  defaultText: 'system roots',
  description: "PEM bundle to verify the engine's certificate (the engine CA is at `/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA`)",
});

/**
 * The service's settings, grouped by the part of the service that uses them. Adding a
 * setting is one row here and its use in that part.
 */
export const SERVICE_SETTINGS = {
  /** The gRPC server. */
  server: {
    listen: address({ env: 'KSM_SCORER_LISTEN', default: { host: '0.0.0.0', port: 50051 }, description: 'gRPC listen address (port 0 picks a free port, logged)' }),
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
    ...tlsFiles('KSM_SCORER_TLS', 'gRPC', TLS_RELOAD),
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
    ...tlsFiles('KSM_SCORER_OVIRT_PROXY_TLS', 'XML-RPC', TLS_RELOAD),
  },
  /** The TLS files of every listener (src/net/tls.ts). */
  tls: { reloadMs: TLS_RELOAD },
  /** How to reach the engine; turned into an EngineConnection (or none: the simulator). */
  connection: {
    url: ENGINE_URL,
    username: text({ env: 'OVIRT_USERNAME', defaultText: `required with ${inCode(ENGINE_URL)}`, description: 'e.g. `admin@internal`' }),
    password: ENGINE_PASSWORD,
    passwordFile: text({ env: 'OVIRT_PASSWORD_FILE', defaultText: 'unset', description: `a file holding the password (a trailing newline is dropped); preferred over ${inCode(ENGINE_PASSWORD)}` }),
    caFile: ENGINE_CA_FILE,
    insecure: flag({ env: 'OVIRT_INSECURE', default: false, description: `\`true\` turns certificate verification off; refused together with ${inCode(ENGINE_CA_FILE)}` }),
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
    hosts: count('hosts', { env: 'KSM_SCORER_SIM_HOSTS', default: 50, min: 1, max: 100_000, description: `hosts of the embedded simulator (only without ${inCode(ENGINE_URL)})` }),
    vms: count('VMs', { env: 'KSM_SCORER_SIM_VMS', default: 1_000, min: 0, max: 1_000_000, description: 'VMs of the embedded simulator' }),
    seed: count('', { env: 'KSM_SCORER_SIM_SEED', default: 1, min: 0, max: 2 ** 31 - 1, description: 'seed of the embedded simulator' }),
  },
  /** Prometheus metrics. */
  metrics: {
    listen: optionalAddress({
      env: 'KSM_SCORER_METRICS_LISTEN',
      default: { host: '0.0.0.0', port: 9464 },
      description: 'HTTP listen address of `/metrics` (Prometheus text, or OpenMetrics when asked); empty or `off` turns metrics off, the gRPC metrics cost included',
    }),
    ...tlsFiles('KSM_SCORER_METRICS_TLS', 'metrics', TLS_RELOAD),
  },
  log: {
    level: oneOf({ env: 'KSM_SCORER_LOG_LEVEL', values: LOG_LEVELS, default: 'info', description: 'log level; logs are JSON lines on stderr (pino)' }),
    format: oneOf({ env: 'KSM_SCORER_LOG_FORMAT', values: LOG_FORMATS, default: 'json', description: '`pretty`: coloured lines for people at a terminal (`make run` sets it); `json` for services' }),
  },
} as const;

/**
 * The client commands' settings (`ksm-scorer score`, `hosts`, `health`, ...): where the service
 * they call listens and how to reach it over TLS. Each has a command-line option that comes first.
 */
export const CLIENT_SETTINGS = {
  target: address({ env: 'KSM_SCORER_TARGET', default: { host: '127.0.0.1', port: 50051 }, minPort: 1, description: 'client commands: the service to call, unless `--target` is given' }),
  tls: flag({ env: 'KSM_SCORER_TARGET_TLS', default: false, description: 'client commands: `true` calls over TLS, trusting the system CAs (`--tls`); any of the files below implies it' }),
  ca: text({ env: 'KSM_SCORER_TARGET_CA', defaultText: 'unset: system CAs', description: "client commands: PEM bundle of the CA that signed the service's certificate (`--ca`)" }),
  cert: text({ env: 'KSM_SCORER_TARGET_CERT', defaultText: 'unset: no client certificate', description: 'client commands: PEM client certificate, for mutual TLS; with the key (`--cert`)' }),
  key: text({ env: 'KSM_SCORER_TARGET_KEY', defaultText: 'required with the client certificate', description: 'client commands: PEM private key of the client certificate (`--key`)' }),
} as const;

/** The one settings table: the service's groups, and the client commands' as `client`. */
export const SETTINGS = { ...SERVICE_SETTINGS, client: CLIENT_SETTINGS } as const;
export type Settings = typeof SETTINGS;

/**
 * The variable name of every setting, read from the table. Code that writes a name in a message
 * takes it from the setting (`SETTINGS.inventory.onDemandCacheSize.env`), and code that is handed
 * one takes a SettingName: a setting renamed or removed in the table is then a compile error there.
 */
export type SettingName = { [G in keyof Settings]: { [K in keyof Settings[G]]: Settings[G][K] extends { readonly env: infer N extends string } ? N : never }[keyof Settings[G]] }[keyof Settings];
