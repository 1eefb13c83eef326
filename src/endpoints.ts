/**
 * What callers reach, answering from one inventory: the gRPC server and, when
 * KSM_SCORER_OVIRT_PROXY_LISTEN is set, the engine's XML-RPC scheduler proxy,
 * bound together and drained together (the single process runs one set; with
 * KSM_SCORER_WORKERS, every worker runs one on the shared ports); and what
 * Prometheus reaches, /metrics (the single process, or the primary).
 */
import type * as grpc from '@grpc/grpc-js';
import { type Config, ConfigError, type LimitSettings, SETTINGS } from './config';
import type { ScoringInventory } from './inventory/inventory';
import type { Logger } from './log';
import { MetricsListener, type MetricsListenerOptions } from './metrics/http';
import type { Metrics } from './metrics/metrics';
import { UNIT_NAME } from './contract/scheduler-unit';
import { createProxyMethods, type ScoreVm } from './scheduler-proxy/handlers';
import { SchedulerProxyListener } from './scheduler-proxy/listener';
import { bindProblem, listenProblem } from './server/listen-check';
import { GrpcServerMetrics } from './server/grpc-metrics';
import { scoreVmOnHosts } from './scoring/service';
import { ScorerServer } from './server/server';
import { isLoopback } from './tls';

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
      throw new ConfigError([bindProblem('KSM_SCORER_LISTEN', this.config.server.listen, err)]);
    }
    try {
      const ovirtProxyPort = this.proxy === undefined ? undefined : await this.proxy.listen(this.config.ovirtProxy.listen!);
      return { port, ovirtProxyPort };
    } catch (err) {
      await this.server.shutdown(1_000);
      throw new ConfigError([bindProblem('KSM_SCORER_OVIRT_PROXY_LISTEN', this.config.ovirtProxy.listen!, err)]);
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
  const addresses = { KSM_SCORER_LISTEN: config.server.listen, KSM_SCORER_OVIRT_PROXY_LISTEN: config.ovirtProxy.listen, KSM_SCORER_METRICS_LISTEN: config.metrics.listen };
  // Two of our own listeners on one address: each probe below would pass alone, and the second
  // bind would then fail after the first listener (and the simulator) started, blaming "another process".
  const shared = sharedAddresses(addresses);
  if (shared.length > 0) throw new ConfigError(shared);
  const problems: string[] = [];
  for (const [name, address] of Object.entries(addresses)) {
    const problem = address === undefined ? undefined : await listenProblem(name, address);
    if (problem !== undefined) problems.push(problem);
  }
  if (problems.length > 0) throw new ConfigError(problems);
}

/** Problems for listen settings whose addresses overlap: same port, and the same host or a wildcard. */
function sharedAddresses(addresses: Record<string, string | undefined>): string[] {
  const wildcard = (host: string) => host === '0.0.0.0' || host === '::' || host === '';
  const loopback = (host: string) => (host === 'localhost' ? '127.0.0.1' : host);
  const parsed = Object.entries(addresses)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([name, address]) => {
      const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(address)!;
      return { name, address, host: loopback(m[1]!), port: Number(m[2]) };
    });
  const problems: string[] = [];
  parsed.forEach((b, j) => {
    const a = parsed.slice(0, j).find((a) => a.port !== 0 && a.port === b.port && (a.host === b.host || wildcard(a.host) || wildcard(b.host)));
    if (a !== undefined) problems.push(`${b.name}: ${b.address} is also ${a.name} (${a.address}): give each listener its own port`);
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
  if (address === undefined) return { port: undefined, url: 'off', close: async () => undefined };
  const listener = new MetricsListener(metrics, logger, { tls: config.metrics.tls, ...(others === undefined ? {} : { others }) });
  let port: number;
  try {
    port = await listener.listen(address);
  } catch (err) {
    await listener.close();
    throw new ConfigError([bindProblem('KSM_SCORER_METRICS_LISTEN', address, err)]);
  }
  metrics.collectProcessMetrics();
  const scheme = config.metrics.tls === undefined ? 'http' : 'https';
  warnIfPlaintext(logger, 'metrics', address, config.metrics.tls !== undefined, SETTINGS.metrics);
  return { port, url: `${scheme}://${address.replace(/:\d+$/, `:${port}`)}/metrics`, close: () => listener.close() };
}

/** The lines that say where the service listens (tests and benchmarks read them), once for the service. */
export function logListening(logger: Logger, config: Config, ports: BoundPorts, fields: Record<string, unknown>): void {
  logger.info('ksm-scorer listening', { address: config.server.listen.replace(/:\d+$/, `:${ports.port}`), ...fields });
  warnIfPlaintext(logger, 'gRPC', config.server.listen, config.server.tls !== undefined, SETTINGS.server);
  if (ports.ovirtProxyPort !== undefined) {
    logger.info('oVirt scheduler proxy listening', {
      address: config.ovirtProxy.listen!.replace(/:\d+$/, `:${ports.ovirtProxyPort}`),
      units: [UNIT_NAME],
      maxBodyBytes: config.ovirtProxy.maxBodyBytes,
    });
    warnIfPlaintext(logger, 'XML-RPC', config.ovirtProxy.listen!, config.ovirtProxy.tls !== undefined, SETTINGS.ovirtProxy);
  }
}

/** Plaintext beyond loopback: anyone on the path reads placement answers and cannot tell a fake scorer. */
function warnIfPlaintext(logger: Logger, listener: string, address: string, tls: boolean, group: Record<'tlsCert' | 'tlsKey' | 'tlsClientCa', { readonly env: string }>): void {
  if (tls || isLoopback(address)) return;
  logger.warn(`the ${listener} listener serves plaintext on a non-loopback address: set ${group.tlsCert.env} and ${group.tlsKey.env} for TLS (and ${group.tlsClientCa.env} for mutual TLS)`, {
    address,
  });
}

/**
 * An http:// engine beyond loopback: the password of every login, and the token after it, cross the
 * network in clear text. Allowed (a lab engine may have no TLS), but said at start, as for listeners.
 */
export function warnIfPlaintextEngine(logger: Logger, config: Config): void {
  const url = config.engine.connection?.url;
  if (url === undefined || !url.startsWith('http:')) return;
  const { hostname, port } = new URL(url);
  if (isLoopback(`${hostname}:${port || 80}`)) return;
  logger.warn('OVIRT_URL is http://: the engine password and session token cross the network in clear text; use the https:// URL of the engine (OVIRT_CA_FILE for its CA)', { url });
}

/** What the engine's scheduler proxy asks, answered along the same path as gRPC ScoreHosts. */
export function scoreVmLikeScoreHosts(inventory: ScoringInventory, limits: LimitSettings): ScoreVm {
  return async (vmId, hostIds, signal) => {
    const scores = await scoreVmOnHosts({ inventory, limits }, vmId, hostIds, signal);
    return 'notFound' in scores ? { kind: 'vm_not_found' } : { kind: 'scored', scores };
  };
}
