/**
 * Wires the parts together, in the direction data flows: engine client ->
 * inventory -> gRPC server (and the engine's XML-RPC scheduler proxy when
 * configured). With no OVIRT_URL the engine is the embedded simulator, and
 * the log says so.
 */
import { type Config, ConfigError, type EngineConnection, type LimitSettings } from './config';
import { HostInventory, type ScoringInventory } from './inventory/inventory';
import type { Logger } from './log';
import { EngineClient } from './ovirt/client';
import { createProxyMethods, type ScoreVm, UNIT_NAME } from './scheduler-proxy/handlers';
import { SchedulerProxyListener } from './scheduler-proxy/listener';
import { bindProblem, listenProblem } from './server/listen-check';
import { scoreVmOnHosts } from './server/scorer-service';
import { ScorerServer } from './server/server';
import { SimulatedEngine } from './simulator/engine';

export interface RunningService {
  /** The bound gRPC port. */
  readonly port: number;
  /** The bound port of the oVirt scheduler proxy; undefined when it is off. */
  readonly ovirtProxyPort: number | undefined;
  readonly inventory: HostInventory;
  /** Set when the embedded simulator stands in for the engine. */
  readonly simulator: SimulatedEngine | undefined;
  /** Graceful: NOT_SERVING, drain calls (forced after the grace period), stop refreshing, log out. */
  stop(): Promise<void>;
}

/** Throws ConfigError when a listen address cannot be bound, before anything has started. */
export async function startService(config: Config, logger: Logger): Promise<RunningService> {
  const addresses = { KSM_SCORER_LISTEN: config.server.listen, KSM_SCORER_OVIRT_PROXY_LISTEN: config.ovirtProxy.listen };
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

  const client = new EngineClient({ ...config.engine, connection, logger });
  const inventory = new HostInventory({ source: client, settings: config.inventory, logger });
  const server = new ScorerServer({
    inventory,
    limits: config.limits,
    transport: config.server,
    logger,
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
        });

  let port: number | undefined;
  let ovirtProxyPort: number | undefined;
  try {
    port = await server.listen(config.server.listen);
    if (proxy !== undefined) ovirtProxyPort = await proxy.listen(config.ovirtProxy.listen!);
  } catch (err) {
    // Taken since the check above: the same one line.
    if (port !== undefined) await server.shutdown(1_000);
    await client.close();
    await simulator?.stop();
    throw new ConfigError([port === undefined ? bindProblem('KSM_SCORER_LISTEN', config.server.listen, err) : bindProblem('KSM_SCORER_OVIRT_PROXY_LISTEN', config.ovirtProxy.listen!, err)]);
  }
  inventory.start();
  logger.info('ksm-scorer listening', { address: config.server.listen.replace(/:\d+$/, `:${port}`), engine: connection.url });
  if (ovirtProxyPort !== undefined) {
    logger.info('oVirt scheduler proxy listening', {
      address: config.ovirtProxy.listen!.replace(/:\d+$/, `:${ovirtProxyPort}`),
      units: [UNIT_NAME],
      maxBodyBytes: config.ovirtProxy.maxBodyBytes,
    });
  }

  let stopping: Promise<void> | undefined;
  return {
    port,
    ovirtProxyPort,
    inventory,
    simulator,
    stop() {
      stopping ??= (async () => {
        logger.info('shutting down: NOT_SERVING, draining calls', { graceMs: config.server.shutdownGraceMs });
        await Promise.all([server.shutdown(config.server.shutdownGraceMs), proxy?.close(config.server.shutdownGraceMs)]);
        await inventory.stop();
        await client.close();
        await simulator?.stop();
        logger.info('stopped');
      })();
      return stopping;
    },
  };
}

/** What the engine's scheduler proxy asks, answered along the same path as gRPC ScoreHosts. */
export function scoreVmLikeScoreHosts(inventory: ScoringInventory, limits: LimitSettings): ScoreVm {
  return async (vmId, hostIds, signal) => {
    const scores = await scoreVmOnHosts({ inventory, limits }, vmId, hostIds, signal);
    return 'notFound' in scores ? { kind: 'vm_not_found' } : { kind: 'scored', scores };
  };
}
