/**
 * The one place that reads the environment. Defaults first, then every value
 * is validated and all problems are reported together, then the result is
 * frozen and handed to the rest of the code.
 */
import { readFileSync } from 'node:fs';
import type { LogLevel } from './log';

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

export interface SimulatorConfig {
  readonly hosts: number;
  readonly vms: number;
  readonly seed: number;
}

export interface Config {
  /** undefined: no OVIRT_URL, so the embedded simulated engine is used. */
  readonly engine: EngineConnection | undefined;
  /** VMs per page of GET /vms. */
  readonly pageSize: number;
  /** Connect, header and body timeout of each engine request. */
  readonly requestTimeoutMs: number;
  readonly simulator: SimulatorConfig;
  readonly listen: string;
  /** Full refresh (resync) interval. */
  readonly refreshIntervalMs: number;
  /** Events poll interval; 0: no events, full refreshes only. */
  readonly eventsIntervalMs: number;
  /** Answers say `stale` past this age; undefined: 2 x the sync interval. */
  readonly staleAfterMs: number | undefined;
  /** Past this age the inventory is not served (UNAVAILABLE, NOT_SERVING). */
  readonly maxStalenessMs: number;
  /** Cap of the retry backoff after engine failures. */
  readonly backoffMaxMs: number;
  readonly maxHostsPerRequest: number;
  /** Most host scores one ScoreHostsBatch may ask for (it is scored in one go). */
  readonly maxBatchHostScores: number;
  readonly cacheMaxHosts: number;
  readonly shutdownGraceMs: number;
  readonly logLevel: LogLevel;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** Reads and validates `env`; throws ConfigError listing every problem. */
export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const read = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const number = (name: string, def: number, opts: { min: number; max: number; integer?: boolean }): number => {
    const raw = read(name);
    if (raw === undefined) return def;
    const n = Number(raw);
    if (!Number.isFinite(n) || (opts.integer && !Number.isInteger(n)) || n < opts.min || n > opts.max) {
      problems.push(`${name}: must be ${opts.integer ? 'an integer' : 'a number'} from ${opts.min} to ${opts.max}, got ${JSON.stringify(raw)}`);
      return def;
    }
    return n;
  };
  const bool = (name: string, def: boolean): boolean => {
    const raw = read(name);
    if (raw === undefined) return def;
    if (/^(true|1|yes)$/i.test(raw)) return true;
    if (/^(false|0|no)$/i.test(raw)) return false;
    problems.push(`${name}: must be true or false, got ${JSON.stringify(raw)}`);
    return def;
  };

  const listen = read('KSM_SCORER_LISTEN') ?? '0.0.0.0:50051';
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(listen) || Number(listen.slice(listen.lastIndexOf(':') + 1)) > 65535) {
    problems.push(`KSM_SCORER_LISTEN: must be HOST:PORT (e.g. 0.0.0.0:50051), got ${JSON.stringify(listen)}`);
  }
  const refreshSeconds = number('KSM_SCORER_REFRESH_SECONDS', 300, { min: 1, max: 86_400 });
  const eventsSeconds = number('KSM_SCORER_EVENTS_SECONDS', 5, { min: 0, max: 3_600 });
  const staleRaw = read('KSM_SCORER_STALE_SECONDS');
  const staleSeconds = number('KSM_SCORER_STALE_SECONDS', 0, { min: 0.1, max: 86_400 });
  const maxStalenessSeconds = number('KSM_SCORER_MAX_STALENESS_SECONDS', 600, { min: 1, max: 7 * 86_400 });
  const backoffMaxSeconds = number('KSM_SCORER_BACKOFF_MAX_SECONDS', 60, { min: 1, max: 3_600 });
  if (staleRaw !== undefined && staleSeconds > maxStalenessSeconds) {
    problems.push('KSM_SCORER_STALE_SECONDS: must not be more than KSM_SCORER_MAX_STALENESS_SECONDS');
  }
  const maxHostsPerRequest = number('KSM_SCORER_MAX_HOSTS', 10_000, { min: 1, max: 1_000_000, integer: true });
  const maxBatchHostScores = number('KSM_SCORER_MAX_BATCH_HOST_SCORES', 500_000, { min: 1, max: 100_000_000, integer: true });
  const cacheMaxHosts = number('KSM_SCORER_CACHE_HOSTS', 20_000, { min: 1, max: 10_000_000, integer: true });
  const graceSeconds = number('KSM_SCORER_SHUTDOWN_GRACE_SECONDS', 10, { min: 0, max: 3_600 });
  const logLevelRaw = read('KSM_SCORER_LOG_LEVEL') ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(logLevelRaw)) {
    problems.push(`KSM_SCORER_LOG_LEVEL: must be debug, info, warn or error, got ${JSON.stringify(logLevelRaw)}`);
  }
  const simulator: SimulatorConfig = {
    hosts: number('KSM_SCORER_SIM_HOSTS', 50, { min: 1, max: 100_000, integer: true }),
    vms: number('KSM_SCORER_SIM_VMS', 1_000, { min: 0, max: 1_000_000, integer: true }),
    seed: number('KSM_SCORER_SIM_SEED', 1, { min: 0, max: 2 ** 31 - 1, integer: true }),
  };

  const pageSize = number('OVIRT_PAGE_SIZE', 500, { min: 1, max: 100_000, integer: true });
  const timeoutSeconds = number('OVIRT_TIMEOUT_SECONDS', 30, { min: 0.1, max: 3_600 });
  const engine = readEngineConnection(read, bool, problems);

  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze({
    engine,
    pageSize,
    requestTimeoutMs: Math.round(timeoutSeconds * 1000),
    simulator,
    listen,
    refreshIntervalMs: refreshSeconds * 1000,
    eventsIntervalMs: eventsSeconds * 1000,
    staleAfterMs: staleRaw === undefined ? undefined : staleSeconds * 1000,
    maxStalenessMs: maxStalenessSeconds * 1000,
    backoffMaxMs: backoffMaxSeconds * 1000,
    maxHostsPerRequest,
    maxBatchHostScores,
    cacheMaxHosts,
    shutdownGraceMs: graceSeconds * 1000,
    logLevel: logLevelRaw as LogLevel,
  });
}

function readEngineConnection(
  read: (name: string) => string | undefined,
  bool: (name: string, def: boolean) => boolean,
  problems: string[],
): EngineConnection | undefined {
  const insecure = bool('OVIRT_INSECURE', false);
  const rawUrl = read('OVIRT_URL');
  if (rawUrl === undefined) return undefined;

  let url = rawUrl.replace(/\/+$/, '');
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

  const username = read('OVIRT_USERNAME');
  if (username === undefined) problems.push('OVIRT_USERNAME: required when OVIRT_URL is set (e.g. admin@internal)');

  const passwordRaw = read('OVIRT_PASSWORD');
  const passwordFile = read('OVIRT_PASSWORD_FILE');
  let password: string | undefined = passwordRaw;
  if (passwordRaw !== undefined && passwordFile !== undefined) {
    problems.push('OVIRT_PASSWORD_FILE: set either OVIRT_PASSWORD or OVIRT_PASSWORD_FILE, not both');
  } else if (passwordFile !== undefined) {
    try {
      password = readFileSync(passwordFile, 'utf8').replace(/\r?\n$/, '');
      if (password === '') problems.push(`OVIRT_PASSWORD_FILE: ${passwordFile} is empty`);
    } catch (err) {
      problems.push(`OVIRT_PASSWORD_FILE: cannot read ${passwordFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  } else if (passwordRaw === undefined) {
    problems.push('OVIRT_PASSWORD: required when OVIRT_URL is set (or OVIRT_PASSWORD_FILE)');
  }

  const caFile = read('OVIRT_CA_FILE');
  if (caFile !== undefined) {
    try {
      const pem = readFileSync(caFile, 'utf8');
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) problems.push(`OVIRT_CA_FILE: ${caFile} holds no PEM certificate`);
    } catch (err) {
      problems.push(`OVIRT_CA_FILE: cannot read ${caFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (insecure && caFile !== undefined) problems.push('OVIRT_INSECURE: true disables verification, so OVIRT_CA_FILE would be ignored; set only one');

  return {
    url,
    username: username ?? '',
    password: password ?? '',
    caFile,
    insecure,
  };
}

/** What may be logged about the configuration: everything but the password. */
export function describeConfig(config: Config): Record<string, unknown> {
  const { engine, ...rest } = config;
  return {
    ...rest,
    engine: engine === undefined ? 'embedded simulator' : { ...engine, password: '<redacted>' },
  };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
