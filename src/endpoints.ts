/**
 * What callers reach, answering from one inventory: the gRPC server and, when
 * KSM_SCORER_OVIRT_PROXY_LISTEN is set, the engine's XML-RPC scheduler proxy,
 * bound together and drained together (the single process runs one set; with
 * KSM_SCORER_WORKERS, every worker runs one on the shared ports); and what
 * Prometheus reaches, /metrics (the single process, or the primary).
 */
import type * as grpc from '@grpc/grpc-js';
import { formatHostPort, type HostPort, type Setting, type TlsFileSettings } from './config/kinds';
import { type Config, ConfigError, type LimitSettings } from './config/load';
import { SETTINGS, type SettingName } from './config/settings';
import type { ScoringInventory } from './inventory/inventory';
import type { Logger } from './log';
import { MetricsListener, type MetricsListenerOptions } from './metrics/http';
import type { Metrics } from './metrics/metrics';
import { UNIT_NAME } from './contract/scheduler-unit';
import { bindProblem, isLoopback, listenProblem } from './net/bind';
import { createProxyMethods, type ScoreVm } from './scheduler-proxy/handlers';
import { SchedulerProxyListener } from './scheduler-proxy/listener';
import { GrpcServerMetrics } from './server/grpc-metrics';
import { scoreVmOnHosts } from './scoring/service';
import { ScorerServer } from './server/server';

export interface BoundPorts {
  readonly port: number;
  /** Undefined when the scheduler proxy is off. */
  readonly ovirtProxyPort: number | undefined;
}

export class Endpoints {
  private readonly server: ScorerServer;
  private readonly proxy: SchedulerProxyListener | undefined;

  constructor(
    inventory: ScoringInventory,
    private readonly config: Config,
    logger: Logger,
    metrics: Metrics,
    /** Told of every XML-RPC call (engine status). */
    onProxyCall?: (method: string, outcome: 'ok' | 'fault') => void,
  ) {
    this.server = new ScorerServer({
      inventory,
      limits: config.limits,
      transport: config.server,
      logger,
      registry: metrics,
      // Off: nothing would read the counts, so the gRPC calls do not pay for them.
      metrics: config.metrics.listen === undefined ? undefined : new GrpcServerMetrics(metrics),
    });
    this.proxy =
      config.ovirtProxy.listen === undefined
        ? undefined
        : new SchedulerProxyListener({
            methods: createProxyMethods({ scoreVm: scoreVmLikeScoreHosts(inventory, config.limits), logger }),
            logger,
            maxBodyBytes: config.ovirtProxy.maxBodyBytes,
            minRateBytes: config.ovirtProxy.minRateBytes,
            metrics,
            tls: config.ovirtProxy.tls,
            ...(onProxyCall === undefined ? {} : { onCall: onProxyCall }),
          });
  }

  /** Binds the configured addresses; on a failure (taken since checkListenAddresses), closes what was bound and throws ConfigError. */
  async listen(): Promise<BoundPorts> {
    let port: number;
    try {
      port = await this.server.listen(this.config.server.listen);
    } catch (err) {
      throw new ConfigError([bindProblem(SETTINGS.server.listen.env, this.config.server.listen, err)]);
    }
    try {
      const ovirtProxyPort = this.proxy === undefined ? undefined : await this.proxy.listen(this.config.ovirtProxy.listen!);
      return { port, ovirtProxyPort };
    } catch (err) {
      await this.server.shutdown(1_000);
      throw new ConfigError([bindProblem(SETTINGS.ovirtProxy.listen.env, this.config.ovirtProxy.listen!, err)]);
    }
  }

  /** Another gRPC service on the same port (before listen). */
  addGrpcService(definition: grpc.ServiceDefinition, handlers: grpc.UntypedServiceImplementation): void {
    this.server.addService(definition, handlers);
  }

  /** Health: SERVING while the inventory may be served. */
  setServing(serving: boolean): void {
    this.server.setServing(serving);
  }

  /** NOT_SERVING, drain both within `graceMs`, then cut what is left. */
  async shutdown(graceMs: number): Promise<void> {
    await Promise.all([this.server.shutdown(graceMs), this.proxy?.close(graceMs)]);
  }
}

/** Throws ConfigError when a listen address cannot be bound, so nothing starts (the simulator, the engine client). */
export async function checkListenAddresses(config: Config): Promise<void> {
  const listeners = (
    [
      { setting: SETTINGS.server.listen, at: config.server.listen },
      { setting: SETTINGS.ovirtProxy.listen, at: config.ovirtProxy.listen },
      { setting: SETTINGS.metrics.listen, at: config.metrics.listen },
    ] as const
  ).filter((l): l is ListenAt & typeof l => l.at !== undefined);
  // Two of our own listeners on one address: each probe below would pass alone, and the second
  // bind would then fail after the first listener (and the simulator) started, blaming "another process".
  const shared = sharedAddresses(listeners);
  if (shared.length > 0) throw new ConfigError(shared);
  const problems: string[] = [];
  for (const { setting, at } of listeners) {
    const problem = await listenProblem(setting.env, at);
    if (problem !== undefined) problems.push(problem);
  }
  if (problems.length > 0) throw new ConfigError(problems);
}

/** A listener that is on: its listen setting and the address it holds. */
interface ListenAt {
  readonly setting: Setting<unknown, SettingName>;
  readonly at: HostPort;
}

/** Problems for listen settings whose addresses overlap: same port, and the same host or a wildcard. */
function sharedAddresses(listeners: readonly ListenAt[]): string[] {
  const wildcard = (host: string) => host === '0.0.0.0' || host === '::' || host === '';
  const loopback = (host: string) => (host === 'localhost' ? '127.0.0.1' : host);
  const problems: string[] = [];
  listeners.forEach((b, j) => {
    const a = listeners
      .slice(0, j)
      .find(
        (a) =>
          a.at.port !== 0 &&
          a.at.port === b.at.port &&
          (loopback(a.at.host) === loopback(b.at.host) || wildcard(a.at.host) || wildcard(b.at.host)),
      );
    if (a !== undefined)
      problems.push(
        `${b.setting.env}: ${formatHostPort(b.at)} is also ${a.setting.env} (${formatHostPort(a.at)}): give each listener its own port`,
      );
  });
  return problems;
}

/** GET /metrics on KSM_SCORER_METRICS_LISTEN, with Node's process metrics; when it is off, nothing. Throws ConfigError when it cannot bind. */
export async function serveMetrics(
  config: Config,
  metrics: Metrics,
  logger: Logger,
  others?: MetricsListenerOptions['others'],
): Promise<{ readonly port: number | undefined; readonly url: string; close(): Promise<void> }> {
  const address = config.metrics.listen;
  if (address === undefined) return { port: undefined, url: 'off', close: () => Promise.resolve() };
  const listener = new MetricsListener(metrics, logger, { tls: config.metrics.tls, ...(others === undefined ? {} : { others }) });
  let port: number;
  try {
    port = await listener.listen(address);
  } catch (err) {
    await listener.close();
    throw new ConfigError([bindProblem(SETTINGS.metrics.listen.env, address, err)]);
  }
  metrics.collectProcessMetrics();
  const scheme = config.metrics.tls === undefined ? 'http' : 'https';
  warnIfPlaintext(logger, 'metrics', address, config.metrics.tls !== undefined, SETTINGS.metrics);
  return { port, url: `${scheme}://${formatHostPort(address, port)}/metrics`, close: () => listener.close() };
}

/** The lines that say where the service listens (tests and benchmarks read them), once for the service. */
export function logListening(logger: Logger, config: Config, ports: BoundPorts, fields: Record<string, unknown>): void {
  logger.info('ksm-scorer listening', { address: formatHostPort(config.server.listen, ports.port), ...fields });
  warnIfPlaintext(logger, 'gRPC', config.server.listen, config.server.tls !== undefined, SETTINGS.server);
  if (ports.ovirtProxyPort !== undefined) {
    logger.info('oVirt scheduler proxy listening', {
      address: formatHostPort(config.ovirtProxy.listen!, ports.ovirtProxyPort),
      units: [UNIT_NAME],
      maxBodyBytes: config.ovirtProxy.maxBodyBytes,
    });
    warnIfPlaintext(logger, 'XML-RPC', config.ovirtProxy.listen!, config.ovirtProxy.tls !== undefined, SETTINGS.ovirtProxy);
  }
}

/** Plaintext beyond loopback: anyone on the path reads placement answers and cannot tell a fake scorer. */
function warnIfPlaintext(logger: Logger, listener: string, at: HostPort, tls: boolean, group: TlsFileSettings): void {
  if (tls || isLoopback(at.host)) return;
  logger.warn(
    `the ${listener} listener serves plaintext on a non-loopback address: set ${group.tlsCert.env} and ${group.tlsKey.env} for TLS (and ${group.tlsClientCa.env} for mutual TLS)`,
    {
      address: formatHostPort(at),
    },
  );
}

/**
 * An http:// engine beyond loopback: the password of every login, and the token after it, cross the
 * network in clear text. Allowed (a lab engine may have no TLS), but said at start, as for listeners.
 */
export function warnIfPlaintextEngine(logger: Logger, config: Config): void {
  const url = config.engine.connection?.url;
  if (url === undefined || !url.startsWith('http:')) return;
  if (isLoopback(new URL(url).hostname)) return;
  const { url: OVIRT_URL, caFile: OVIRT_CA_FILE } = SETTINGS.connection;
  logger.warn(
    `${OVIRT_URL.env} is http://: the engine password and session token cross the network in clear text; use the https:// URL of the engine (${OVIRT_CA_FILE.env} for its CA)`,
    { url },
  );
}

/** What the engine's scheduler proxy asks, answered along the same path as gRPC ScoreHosts. */
export function scoreVmLikeScoreHosts(inventory: ScoringInventory, limits: LimitSettings): ScoreVm {
  return async (vmId, hostIds, signal) => {
    const scores = await scoreVmOnHosts({ inventory, limits }, vmId, hostIds, signal);
    return 'notFound' in scores ? { kind: 'vm_not_found' } : { kind: 'scored', scores };
  };
}
