/**
 * The engine this service reads: OVIRT_URL's, or with none set, an embedded
 * simulated engine started here, and the log says so.
 */
import type { EngineConnection } from './config/connection';
import { type Config, ConfigError } from './config/load';
import { SETTINGS } from './config/settings';
import { RecordedEngine } from './recording/replay';
import type { Logger } from './log';
import { SimulatedEngine } from './simulator/engine';

const OVIRT_URL = SETTINGS.connection.url.env;

export interface Engine {
  readonly connection: EngineConnection;
  /** Set when the embedded simulator stands in for the engine; stop it on shutdown. */
  readonly simulator: SimulatedEngine | undefined;
}

export async function connectEngine(config: Config, logger: Logger): Promise<Engine> {
  if (config.engine.connection?.url.startsWith('file:'))
    return replayRecording(config.engine.connection.url.slice('file:'.length), config.engine.maxAnswerBytes, logger);
  if (config.engine.connection !== undefined) return { connection: config.engine.connection, simulator: undefined };
  const simulator = new SimulatedEngine(config.simulator);
  const url = await simulator.start();
  logger.warn(`${OVIRT_URL} is not set: serving from the embedded SIMULATED oVirt engine, not a real one`, {
    simulatorUrl: url,
    hosts: config.simulator.hosts,
    vms: config.simulator.vms,
    seed: config.simulator.seed,
  });
  return { connection: { url, username: simulator.username, password: simulator.password, caFile: undefined, insecure: false }, simulator };
}

/** OVIRT_URL=file:DIR: a recording (`engine record`) served by the simulated engine's HTTP server, on loopback. */
async function replayRecording(dir: string, maxAnswerBytes: number, logger: Logger): Promise<Engine> {
  let recorded: RecordedEngine;
  try {
    recorded = new RecordedEngine(dir, maxAnswerBytes);
  } catch (err) {
    throw new ConfigError([`${OVIRT_URL}: file:${dir} is not a recording: ${(err as Error).message}`]);
  }
  const simulator = new SimulatedEngine({ hosts: 0, vms: 0, seed: 0, recorded });
  const url = await simulator.start();
  logger.warn(`${OVIRT_URL} is a recording: serving what an engine answered when recorded, not a live engine`, {
    recording: dir,
    anonymized: recorded.anonymized,
    ...recorded.counts,
  });
  return { connection: { url, username: simulator.username, password: simulator.password, caFile: undefined, insecure: false }, simulator };
}
