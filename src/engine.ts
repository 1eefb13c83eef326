/**
 * The engine this service reads: OVIRT_URL's, or with none set, an embedded
 * simulated engine started here, and the log says so.
 */
import type { Config, EngineConnection } from './config';
import type { Logger } from './log';
import { SimulatedEngine } from './simulator/engine';

export interface Engine {
  readonly connection: EngineConnection;
  /** Set when the embedded simulator stands in for the engine; stop it on shutdown. */
  readonly simulator: SimulatedEngine | undefined;
}

export async function connectEngine(config: Config, logger: Logger): Promise<Engine> {
  if (config.engine.connection !== undefined) return { connection: config.engine.connection, simulator: undefined };
  const simulator = new SimulatedEngine(config.simulator);
  const url = await simulator.start();
  logger.warn('OVIRT_URL is not set: serving from the embedded SIMULATED oVirt engine, not a real one', {
    simulatorUrl: url,
    hosts: config.simulator.hosts,
    vms: config.simulator.vms,
    seed: config.simulator.seed,
  });
  return { connection: { url, username: simulator.username, password: simulator.password, caFile: undefined, insecure: false }, simulator };
}
