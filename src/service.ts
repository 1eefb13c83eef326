/**
 * Wires the parts together, in the direction data flows: engine client ->
 * inventory -> gRPC server. With no OVIRT_URL the engine is the embedded
 * simulator, and the log says so.
 */
import type { Config, EngineConnection } from './config';
import { HostInventory } from './inventory/inventory';
import type { Logger } from './log';
import { EngineClient } from './ovirt/client';
import { ScorerServer } from './server/server';
import { SimulatedEngine } from './simulator/engine';

export interface RunningService {
  /** The bound gRPC port. */
  readonly port: number;
  readonly inventory: HostInventory;
  /** Set when the embedded simulator stands in for the engine. */
  readonly simulator: SimulatedEngine | undefined;
  /** Graceful: NOT_SERVING, drain calls (forced after the grace period), stop refreshing, log out. */
  stop(): Promise<void>;
}

export async function startService(config: Config, logger: Logger): Promise<RunningService> {
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
    logger,
  });
  // Served while fresh or stale; NOT_SERVING while loading or too old, back by itself when the engine is.
  inventory.onStateChange((state) => server.setServing(state === 'fresh' || state === 'stale'));

  let port: number;
  try {
    port = await server.listen(config.server.listen);
  } catch (err) {
    await client.close();
    await simulator?.stop();
    throw err;
  }
  inventory.start();
  logger.info('ksm-scorer listening', { address: config.server.listen.replace(/:\d+$/, `:${port}`), engine: connection.url });

  let stopping: Promise<void> | undefined;
  return {
    port,
    inventory,
    simulator,
    stop() {
      stopping ??= (async () => {
        logger.info('shutting down: NOT_SERVING, draining calls', { graceMs: config.server.shutdownGraceMs });
        await server.shutdown(config.server.shutdownGraceMs);
        await inventory.stop();
        await client.close();
        await simulator?.stop();
        logger.info('stopped');
      })();
      return stopping;
    },
  };
}
