/**
 * The one place that reads the environment: each value is validated by its kind, then the
 * relations between them, all problems are reported together, and the result is frozen and
 * handed to each part whole.
 */
import { type EngineConnection, readConnection, readTls, type WithTls } from './connection';
import { envNames, formatHostPort, type Parsed, type Setting, type ValuesOf } from './kinds';
import { CLIENT_SETTINGS, SERVICE_SETTINGS } from './settings';

/** The events poll interval unless set, or half the refresh interval when that is less. */
const DEFAULT_EVENTS_MS = 5_000;
/** The age at which calls are refused unless set, or 2 x the stale age when that is more. */
const DEFAULT_MAX_STALENESS_MS = 600_000;

type Groups = typeof SERVICE_SETTINGS;

export type EngineSettings = ValuesOf<Groups['engine']> & {
  /** undefined: no OVIRT_URL, so the embedded simulated engine is used. */
  readonly connection: EngineConnection | undefined;
};
export type InventorySettings = Omit<ValuesOf<Groups['inventory']>, 'staleAfterMs' | 'eventsIntervalMs' | 'maxStalenessMs'> & {
  /** Resolved: 5 s, or half the refresh interval when that is less, unless set; 0 = no events. */
  readonly eventsIntervalMs: number;
  /** Resolved: 2 x the sync interval unless set. */
  readonly staleAfterMs: number;
  /** Resolved: 600 s, or 2 x the stale age when that is more, unless set. */
  readonly maxStalenessMs: number;
};
export type ServerSettings = WithTls<ValuesOf<Groups['server']>>;
export type OvirtProxySettings = WithTls<ValuesOf<Groups['ovirtProxy']>>;
export type LimitSettings = ValuesOf<Groups['limits']>;
export type SimulatorSettings = ValuesOf<Groups['simulator']>;
export type MetricsSettings = WithTls<ValuesOf<Groups['metrics']>>;
export type LogSettings = ValuesOf<Groups['log']>;
/** The client commands' settings (the CLI's options come first). */
export type ClientSettings = ValuesOf<typeof CLIENT_SETTINGS>;

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

/** One setting from its raw value: the default when unset (or empty, unless empty is a value), else parsed. */
export function readSetting<T>(setting: Setting<T>, raw: string | undefined): Parsed<T> {
  const trimmed = raw?.trim();
  if (trimmed === undefined || (trimmed === '' && !setting.emptyIsValue)) return { value: setting.default };
  const parsed = setting.parse(trimmed);
  return 'problem' in parsed && setting.secret ? { problem: 'invalid value' } : parsed;
}

/** A group's values; each problem (`NAME: problem`) is pushed and its setting gets its default. */
function readGroup<G extends Record<string, Setting<unknown>>>(group: G, env: Env, problems: string[]): ValuesOf<G> {
  const out: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(group)) {
    const parsed = readSetting(setting, env[setting.env]);
    if ('problem' in parsed) problems.push(`${setting.env}: ${parsed.problem}`);
    out[key] = 'problem' in parsed ? setting.default : parsed.value;
  }
  return out as ValuesOf<G>;
}

/** Reads and validates `env`; throws ConfigError listing every problem. */
export function loadConfig(env: Env = process.env): Config {
  const S = SERVICE_SETTINGS;
  const problems: string[] = [];
  const { reloadMs } = readGroup(S.tls, env, problems);
  const server = readTls(readGroup(S.server, env, problems), S.server, reloadMs, problems);
  const ovirtProxy = readTls(readGroup(S.ovirtProxy, env, problems), S.ovirtProxy, reloadMs, problems);
  const connection = readConnection(readGroup(S.connection, env, problems), S.connection, problems);
  const engine = readGroup(S.engine, env, problems);
  const inventory = readGroup(S.inventory, env, problems);
  const limits = readGroup(S.limits, env, problems);
  const simulator = readGroup(S.simulator, env, problems);
  const metrics = readTls(readGroup(S.metrics, env, problems), S.metrics, reloadMs, problems);
  const log = readGroup(S.log, env, problems);

  // Relations between settings: each broken one would make a healthy service flap or stall. A default
  // that depends on another setting follows it, so only values that were set can break a relation,
  // and the problem is reported against the one that depends on the other.
  const {
    refreshIntervalMs: REFRESH,
    eventsIntervalMs: EVENTS,
    staleAfterMs: STALE,
    maxStalenessMs: MAX_STALENESS,
  } = envNames(S.inventory);
  const { requestTimeoutMs: TIMEOUT, requestDeadlineMs: DEADLINE } = envNames(S.engine);
  const s = (ms: number) => `${ms / 1000} s`;
  const eventsIntervalMs = inventory.eventsIntervalMs ?? Math.min(DEFAULT_EVENTS_MS, inventory.refreshIntervalMs / 2);
  const syncMs = eventsIntervalMs > 0 ? eventsIntervalMs : inventory.refreshIntervalMs;
  const staleAfterMs = inventory.staleAfterMs ?? 2 * syncMs;
  const maxStalenessMs = inventory.maxStalenessMs ?? Math.max(DEFAULT_MAX_STALENESS_MS, 2 * staleAfterMs);
  if (eventsIntervalMs > 0 && eventsIntervalMs >= inventory.refreshIntervalMs) {
    problems.push(`${EVENTS}: must be less than ${REFRESH} (${s(inventory.refreshIntervalMs)}), or 0 to turn events off`);
  }
  if (inventory.staleAfterMs !== undefined && inventory.staleAfterMs <= syncMs) {
    problems.push(`${STALE}: must be more than the sync interval (${s(syncMs)}), or every answer between two syncs would be stale`);
  }
  if (maxStalenessMs <= staleAfterMs) {
    problems.push(
      `${MAX_STALENESS}: must be more than the stale age (${s(staleAfterMs)}${inventory.staleAfterMs === undefined ? ', 2 x the sync interval' : ''}), or a healthy service would refuse calls between two syncs`,
    );
  }
  if (engine.requestTimeoutMs > engine.requestDeadlineMs) {
    problems.push(`${DEADLINE}: must not be less than ${TIMEOUT} (${s(engine.requestTimeoutMs)})`);
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

/**
 * The client commands' settings from `env`, as far as `given` (the values of their command-line
 * options, which come first) leaves them to it; problems are sentences naming the variable.
 */
export function readClientSettings(
  env: Env,
  given: { readonly [K in keyof ClientSettings]?: boolean },
): { values: ClientSettings; problems: string[] } {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, setting] of Object.entries(CLIENT_SETTINGS) as [keyof ClientSettings, Setting<unknown>][]) {
    const parsed = given[key] ? { value: setting.default } : readSetting(setting, env[setting.env]);
    if ('problem' in parsed) problems.push(`${setting.env} ${parsed.problem}`);
    values[key] = 'problem' in parsed ? setting.default : parsed.value;
  }
  return { values: values as ClientSettings, problems };
}

/** What may be logged about the configuration: everything that is in use, but the password; addresses as HOST:PORT. */
export function describeConfig(config: Config): Record<string, unknown> {
  const { connection, ...engine } = config.engine;
  const { simulator, ...rest } = config;
  const shown = {
    ...rest,
    server: { ...config.server, listen: formatHostPort(config.server.listen) },
    ovirtProxy: {
      ...config.ovirtProxy,
      listen: config.ovirtProxy.listen === undefined ? undefined : formatHostPort(config.ovirtProxy.listen),
    },
    metrics: { ...config.metrics, listen: config.metrics.listen === undefined ? 'off' : formatHostPort(config.metrics.listen) },
  };
  return connection === undefined
    ? { ...shown, engine: { ...engine, connection: 'embedded simulator' }, simulator }
    : { ...shown, engine: { ...engine, connection: { ...connection, password: '<redacted>' } } };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
