/**
 * Wires the parts together, in the direction data flows: engine client ->
 * inventory -> gRPC server (and the engine's XML-RPC scheduler proxy when
 * configured), each counting into one metrics registry that the /metrics
 * listener serves. With no OVIRT_URL the engine is the embedded simulator,
 * and the log says so.
 */
import { type Config, ConfigError, type EngineConnection, type LimitSettings, SETTINGS } from './config';
import { HostInventory, type ScoringInventory } from './inventory/inventory';
import type { Logger } from './log';
import { MetricsListener } from './metrics/http';
import { Metrics } from './metrics/metrics';
import { EngineClient } from './ovirt/client';
import { createProxyMethods, type ScoreVm, UNIT_NAME } from './scheduler-proxy/handlers';
import { SchedulerProxyListener } from './scheduler-proxy/listener';
import { bindProblem, listenProblem } from './server/listen-check';
import { scoreVmOnHosts } from './server/scorer-service';
import { GrpcServerMetrics } from './server/grpc-metrics';
import { ScorerServer } from './server/server';
import { SimulatedEngine } from './simulator/engine';
import { isLoopback } from './tls';

export interface RunningService {
  /** The bound gRPC port. */
  readonly port: number;
  /** The bound port of the oVirt scheduler proxy; undefined when it is off. */
  readonly ovirtProxyPort: number | undefined;
  /** The bound port of /metrics; undefined when metrics are off. */
  readonly metricsPort: number | undefined;
  /** The service's registry: a new listener (XML-RPC, ...) declares its metrics here. */
  readonly metrics: Metrics;
  readonly inventory: HostInventory;
  /** Set when the embedded simulator stands in for the engine. */
  readonly simulator: SimulatedEngine | undefined;
  /** Graceful: NOT_SERVING, drain calls (forced after the grace period), stop refreshing, log out. */
  stop(): Promise<void>;
}

/** Throws ConfigError when a listen address cannot be bound, before anything has started. */
export async function startService(config: Config, logger: Logger): Promise<RunningService> {
  const addresses = { KSM_SCORER_LISTEN: config.server.listen, KSM_SCORER_OVIRT_PROXY_LISTEN: config.ovirtProxy.listen, KSM_SCORER_METRICS_LISTEN: config.metrics.listen };
  const listenTrouble: string[] = [];
  for (const [name, address] of Object.entries(addresses)) {
    const problem = address === undefined ? undefined : await listenProblem(name, address);
    if (problem !== undefined) listenTrouble.push(problem);
  }
  if (listenTrouble.length > 0) throw new ConfigError(listenTrouble);

  let simulator: SimulatedEngine | undefined;
  let connection: EngineConnection;
  if (config.engine.connection === undefined) {
    simulator = new SimulatedEngine(config.simulator);
    const url = await simulator.start();
    connection = { url, username: simulator.username, password: simulator.password, caFile: undefined, insecure: false };
    logger.warn('OVIRT_URL is not set: serving from the embedded SIMULATED oVirt engine, not a real one', {
      simulatorUrl: url,
      hosts: config.simulator.hosts,
      vms: config.simulator.vms,
      seed: config.simulator.seed,
    });
  } else {
    connection = config.engine.connection;
  }

  // Off: nothing would read the counts, so the gRPC calls do not pay for them.
  const metricsOn = config.metrics.listen !== undefined;
  const metrics = new Metrics();
  const client = new EngineClient({ ...config.engine, connection, logger, metrics });
  const inventory = new HostInventory({ source: client, settings: config.inventory, logger, metrics });
  const server = new ScorerServer({
    inventory,
    limits: config.limits,
    transport: config.server,
    logger,
    metrics: metricsOn ? new GrpcServerMetrics(metrics) : undefined,
  });
  // Served while fresh or stale; NOT_SERVING while loading or too old, back by itself when the engine is.
  inventory.onStateChange((state) => server.setServing(state === 'fresh' || state === 'stale'));

  const proxy =
    config.ovirtProxy.listen === undefined
      ? undefined
      : new SchedulerProxyListener({
          methods: createProxyMethods({ scoreVm: scoreVmLikeScoreHosts(inventory, config.limits), logger }),
          logger,
          maxBodyBytes: config.ovirtProxy.maxBodyBytes,
          metrics,
          tls: config.ovirtProxy.tls,
        });
  const metricsListener = metricsOn ? new MetricsListener(metrics, logger, { tls: config.metrics.tls }) : undefined;

  let port: number | undefined;
  let ovirtProxyPort: number | undefined;
  let metricsPort: number | undefined;
  let binding: keyof typeof addresses = 'KSM_SCORER_LISTEN';
  try {
    port = await server.listen(config.server.listen);
    binding = 'KSM_SCORER_OVIRT_PROXY_LISTEN';
    if (proxy !== undefined) ovirtProxyPort = await proxy.listen(config.ovirtProxy.listen!);
    binding = 'KSM_SCORER_METRICS_LISTEN';
    if (metricsListener !== undefined) metricsPort = await metricsListener.listen(config.metrics.listen!);
  } catch (err) {
    // Taken since the check above: the same one line.
    if (port !== undefined) await server.shutdown(1_000);
    await proxy?.close(0);
    await metricsListener?.close();
    await client.close();
    await simulator?.stop();
    throw new ConfigError([bindProblem(binding, addresses[binding]!, err)]);
  }
  if (metricsOn) metrics.collectProcessMetrics();
  inventory.start();
  const bound = (address: string, p: number) => address.replace(/:\d+$/, `:${p}`);
  logger.info('ksm-scorer listening', {
    address: bound(config.server.listen, port),
    metrics: metricsPort === undefined ? 'off' : `${config.metrics.tls === undefined ? 'http' : 'https'}://${bound(config.metrics.listen!, metricsPort)}/metrics`,
    engine: connection.url,
  });
  warnIfPlaintext(logger, 'gRPC', config.server.listen, config.server.tls !== undefined, SETTINGS.server);
  if (metricsPort !== undefined) warnIfPlaintext(logger, 'metrics', config.metrics.listen!, config.metrics.tls !== undefined, SETTINGS.metrics);
  if (ovirtProxyPort !== undefined) {
    logger.info('oVirt scheduler proxy listening', {
      address: bound(config.ovirtProxy.listen!, ovirtProxyPort),
      units: [UNIT_NAME],
      maxBodyBytes: config.ovirtProxy.maxBodyBytes,
    });
    warnIfPlaintext(logger, 'XML-RPC', config.ovirtProxy.listen!, config.ovirtProxy.tls !== undefined, SETTINGS.ovirtProxy);
  }

  let stopping: Promise<void> | undefined;
  return {
    port,
    ovirtProxyPort,
    metricsPort,
    metrics,
    inventory,
    simulator,
    stop() {
      stopping ??= (async () => {
        logger.info('shutting down: NOT_SERVING, draining calls', { graceMs: config.server.shutdownGraceMs });
        await Promise.all([server.shutdown(config.server.shutdownGraceMs), proxy?.close(config.server.shutdownGraceMs)]);
        await metricsListener?.close();
        await inventory.stop();
        await client.close();
        await simulator?.stop();
        logger.info('stopped');
      })();
      return stopping;
    },
  };
}

/** Plaintext beyond loopback: anyone on the path reads placement answers and cannot tell a fake scorer. */
function warnIfPlaintext(logger: Logger, listener: string, address: string, tls: boolean, group: Record<'tlsCert' | 'tlsKey' | 'tlsClientCa', { readonly env: string }>): void {
  if (tls || isLoopback(address)) return;
  logger.warn(`the ${listener} listener serves plaintext on a non-loopback address: set ${group.tlsCert.env} and ${group.tlsKey.env} for TLS (and ${group.tlsClientCa.env} for mutual TLS)`, {
    address,
  });
}

/** What the engine's scheduler proxy asks, answered along the same path as gRPC ScoreHosts. */
export function scoreVmLikeScoreHosts(inventory: ScoringInventory, limits: LimitSettings): ScoreVm {
  return async (vmId, hostIds, signal) => {
    const scores = await scoreVmOnHosts({ inventory, limits }, vmId, hostIds, signal);
    return 'notFound' in scores ? { kind: 'vm_not_found' } : { kind: 'scored', scores };
  };
}
