/**
 * Every setting, as one declarative table (variable, unit, default, bounds, meaning), grouped by
 * the part that uses it: the service's, read by loadConfig (load.ts), and the client commands'
 * (`client`), read by the CLI. The configuration tables of the docs are generated from it (markdown.ts).
 */
import type { LogFormat, LogLevel } from '../log';
import { connection, engine, ENGINE_URL, inventory } from './settings-engine';
import { metrics, ovirtProxy, server, tls } from './settings-listeners';
import { address, count, flag, inCode, mebibytes, oneOf, text } from './kinds';

const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty'];

/** What one request may ask for, and what scoring may keep. */
const limits = {
  maxHostsPerRequest: count('ids', {
    env: 'KSM_SCORER_MAX_HOSTS',
    default: 10_000,
    min: 1,
    max: 1_000_000,
    description: 'most `host_ids` one request may name',
  }),
  maxBatchRequests: count('items', {
    env: 'KSM_SCORER_MAX_BATCH_REQUESTS',
    default: 10_000,
    min: 1,
    max: 1_000_000,
    description: 'most requests in one ScoreHostsBatch',
  }),
  maxBatchHostScores: count('scores', {
    env: 'KSM_SCORER_MAX_BATCH_HOST_SCORES',
    default: 50_000,
    min: 1,
    max: 10_000_000,
    description:
      "most host scores one ScoreHostsBatch may ask for (items x hosts, an empty `host_ids` counting every host): a batch is scored in one go, about 0.02 s and a 2.8 MB answer (under clients' default 4 MB limit) at this size on the benchmark machine, so this bounds how long one call holds the others up",
  }),
  scoreCacheBytes: mebibytes({
    env: 'KSM_SCORER_SCORE_CACHE_MB',
    default: 64,
    min: 0,
    max: 65_536,
    description:
      'memory for score tables: each host scored and encoded once per inventory generation and OS identity asked for (about 150 bytes a host per OS identity), with whole answers for host lists sent again; an eighth of it remembers recent host lists by their bytes; past it the least recently used go; `0` keeps none (every call scores what it needs)',
  }),
} as const;

/** The embedded simulated engine, used when OVIRT_URL is unset. */
const simulator = {
  hosts: count('hosts', {
    env: 'KSM_SCORER_SIM_HOSTS',
    default: 50,
    min: 1,
    max: 100_000,
    description: `hosts of the embedded simulator (only without ${inCode(ENGINE_URL)})`,
  }),
  vms: count('VMs', { env: 'KSM_SCORER_SIM_VMS', default: 1_000, min: 0, max: 1_000_000, description: 'VMs of the embedded simulator' }),
  seed: count('', { env: 'KSM_SCORER_SIM_SEED', default: 1, min: 0, max: 2 ** 31 - 1, description: 'seed of the embedded simulator' }),
} as const;

/** Logging. */
const log = {
  level: oneOf({
    env: 'KSM_SCORER_LOG_LEVEL',
    values: LOG_LEVELS,
    default: 'info',
    description: 'log level; logs are JSON lines on stderr (pino)',
  }),
  format: oneOf({
    env: 'KSM_SCORER_LOG_FORMAT',
    values: LOG_FORMATS,
    default: 'json',
    description: '`pretty`: coloured lines for people at a terminal (`make run` sets it); `json` for services',
  }),
} as const;

/**
 * The service's settings, grouped by the part of the service that uses them (the groups are in
 * settings-listeners.ts, settings-engine.ts and here). Adding a setting is one row in its group
 * and its use in that part.
 */
export const SERVICE_SETTINGS = { server, ovirtProxy, tls, connection, engine, inventory, limits, simulator, metrics, log } as const;

/**
 * The client commands' settings (`ksm-scorer score`, `hosts`, `health`, ...): where the service
 * they call listens and how to reach it over TLS. Each has a command-line option that comes first.
 */
export const CLIENT_SETTINGS = {
  target: address({
    env: 'KSM_SCORER_TARGET',
    default: { host: '127.0.0.1', port: 50051 },
    minPort: 1,
    description: 'client commands: the service to call, unless `--target` is given',
  }),
  tls: flag({
    env: 'KSM_SCORER_TARGET_TLS',
    default: false,
    description: 'client commands: `true` calls over TLS, trusting the system CAs (`--tls`); any of the files below implies it',
  }),
  ca: text({
    env: 'KSM_SCORER_TARGET_CA',
    defaultText: 'unset: system CAs',
    description: "client commands: PEM bundle of the CA that signed the service's certificate (`--ca`)",
  }),
  cert: text({
    env: 'KSM_SCORER_TARGET_CERT',
    defaultText: 'unset: no client certificate',
    description: 'client commands: PEM client certificate, for mutual TLS; with the key (`--cert`)',
  }),
  key: text({
    env: 'KSM_SCORER_TARGET_KEY',
    defaultText: 'required with the client certificate',
    description: 'client commands: PEM private key of the client certificate (`--key`)',
  }),
} as const;

/** The one settings table: the service's groups, and the client commands' as `client`. */
export const SETTINGS = { ...SERVICE_SETTINGS, client: CLIENT_SETTINGS } as const;
export type Settings = typeof SETTINGS;

/**
 * The variable name of every setting, read from the table. Code that writes a name in a message
 * takes it from the setting (`SETTINGS.inventory.onDemandCacheSize.env`), and code that is handed
 * one takes a SettingName: a setting renamed or removed in the table is then a compile error there.
 */
export type SettingName = {
  [G in keyof Settings]: {
    [K in keyof Settings[G]]: Settings[G][K] extends { readonly env: infer N extends string } ? N : never;
  }[keyof Settings[G]];
}[keyof Settings];
