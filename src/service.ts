/**
 * Wires the parts of the single-process service together, in the direction
 * data flows: engine client -> inventory -> gRPC server (and the engine's
 * XML-RPC scheduler proxy when configured), each counting into one metrics
 * registry that the /metrics listener serves. (With KSM_SCORER_WORKERS above
 * 1, src/cluster/ splits them between processes.)
 */
import type { Config } from './config/load';
import { connectEngine } from './engine';
import { checkListenAddresses, Endpoints, logListening, serveMetrics } from './endpoints';
import { HostInventory } from './inventory/inventory';
import type { Logger } from './log';
import { Metrics } from './metrics/metrics';
import { CallWindow } from './engine-view/call-window';
import { engineStatusService } from './engine-view/service';
import { engineViewWatcher, type EngineViewWatcher } from './engine-view/watcher';
import { EngineClient } from './ovirt/client';
import type { SimulatedEngine } from './simulator/engine';

export { scoreVmLikeScoreHosts } from './endpoints';

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
  /** The engine's view of the unit (engine status). */
  readonly engineView: EngineViewWatcher;
  /** Set when the embedded simulator stands in for the engine. */
  readonly simulator: SimulatedEngine | undefined;
  /** Graceful: NOT_SERVING, drain calls (forced after the grace period), stop refreshing, log out. */
  stop(): Promise<void>;
}

/** Throws ConfigError when a listen address cannot be bound, before anything has started. */
export async function startService(config: Config, logger: Logger): Promise<RunningService> {
  await checkListenAddresses(config);
  const { connection, simulator } = await connectEngine(config, logger);
  const metrics = new Metrics();
  const client = new EngineClient({ ...config.engine, connection, logger, metrics });
  const inventory = new HostInventory({ source: client, settings: config.inventory, logger, metrics });
  // The engine's view of the unit: read on a timer of its own, optional (a failure is "unknown", never a failed sync).
  const calls = new CallWindow();
  const engineView = engineViewWatcher(config, client, connection.username, calls, logger, metrics);
  const endpoints = new Endpoints(inventory.served, config, logger, metrics, (method, outcome) => calls.record(method, outcome));
  const engineStatus = engineStatusService(() => engineView.status());
  endpoints.addGrpcService(engineStatus.definition, engineStatus.handlers);
  // Served while fresh or stale; NOT_SERVING while loading or too old, back by itself when the engine is.
  inventory.onStateChange((state) => endpoints.setServing(state === 'fresh' || state === 'stale'));

  let ports;
  let scrape;
  try {
    ports = await endpoints.listen();
    scrape = await serveMetrics(config, metrics, logger).catch(async (err: unknown) => {
      await endpoints.shutdown(0);
      throw err;
    });
  } catch (err) {
    await client.close();
    await simulator?.stop();
    throw err;
  }
  inventory.start();
  engineView.start();
  logListening(logger, config, ports, { metrics: scrape.url, engine: connection.url });

  let stopping: Promise<void> | undefined;
  return {
    ...ports,
    metricsPort: scrape.port,
    metrics,
    inventory,
    engineView,
    simulator,
    stop() {
      stopping ??= (async () => {
        logger.info('shutting down: NOT_SERVING, draining calls', { graceMs: config.server.shutdownGraceMs });
        await endpoints.shutdown(config.server.shutdownGraceMs);
        await scrape.close();
        await inventory.stop();
        await engineView.stop();
        await client.close();
        await simulator?.stop();
        logger.info('stopped');
      })();
      return stopping;
    },
  };
}
