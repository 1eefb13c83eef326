/** Shared test wiring: a simulated engine, the real service on 127.0.0.1:0, and a grpc-js client. */
import * as grpc from '@grpc/grpc-js';
import { type InventorySettings, loadConfig } from '../src/config/load';
import type { CallView } from '../src/inventory/call-view';
import type { CallNeeds, HostInventory } from '../src/inventory/inventory';
import type { InventorySnapshot } from '../src/inventory/snapshot';
import type { HostScorerServiceClient } from '../src/generated/ksmscorer/v1/HostScorerService';
import { createLogger, type Logger, silentLogger } from '../src/log';
import { EngineClient } from '../src/ovirt/client';
import { loadScorerProto } from '../src/contract/proto';
import { type RunningService, startService } from '../src/service';
import { SimulatedEngine, type SimulatedEngineOptions } from '../src/simulator/engine';

export async function startSimulator(options: Partial<SimulatedEngineOptions> = {}): Promise<SimulatedEngine> {
  // Tests count what the service asked: the newest 10,000 requests are kept unless a test says otherwise.
  const sim = new SimulatedEngine({ hosts: 8, vms: 120, seed: 7, maxRecorded: 10_000, ...options });
  await sim.start();
  return sim;
}

/** A real EngineClient for `sim`; `overrides` change the connection or the paging. */
export function engineClient(
  sim: SimulatedEngine,
  overrides: {
    password?: string;
    pageSize?: number;
    url?: string;
    requestTimeoutMs?: number;
    caFile?: string;
    insecure?: boolean;
    logger?: Logger;
  } = {},
): EngineClient {
  return new EngineClient({
    connection: {
      url: overrides.url ?? sim.url,
      username: sim.username,
      password: overrides.password ?? sim.password,
      caFile: overrides.caFile,
      insecure: overrides.insecure ?? false,
    },
    pageSize: overrides.pageSize ?? 500,
    requestTimeoutMs: overrides.requestTimeoutMs ?? 5_000,
    requestDeadlineMs: 30_000,
    maxVms: 1_000_000,
    maxAnswerBytes: 64 * 2 ** 20,
    logger: overrides.logger ?? silentLogger,
  });
}

/** Syncs as fast as tests want them: events every 0.2 s, backoff capped at 1 s, engine reads cut at 1 s (2 s in all). */
export const FAST_SYNC = {
  KSM_SCORER_EVENTS_SECONDS: '0.2',
  KSM_SCORER_REFRESH_SECONDS: '300',
  KSM_SCORER_BACKOFF_MAX_SECONDS: '1',
  OVIRT_TIMEOUT_SECONDS: '1',
  OVIRT_REQUEST_DEADLINE_SECONDS: '2',
} as const;

export function engineEnv(sim: SimulatedEngine): Record<string, string> {
  return {
    OVIRT_URL: sim.url,
    OVIRT_USERNAME: sim.username,
    OVIRT_PASSWORD: sim.password,
    KSM_SCORER_LISTEN: '127.0.0.1:0',
    KSM_SCORER_METRICS_LISTEN: '127.0.0.1:0',
  };
}

export interface Scorer {
  readonly service: RunningService;
  readonly client: HostScorerServiceClient;
  readonly address: string;
  close(): Promise<void>;
}

/** The real service against `sim`, with extra environment; waits for the first inventory unless told not to. */
export async function startScorer(
  sim: SimulatedEngine,
  env: Record<string, string> = {},
  opts: { waitForInventory?: boolean; logger?: Logger } = {},
): Promise<Scorer> {
  const config = loadConfig({ ...engineEnv(sim), ...env });
  const service = await startService(config, opts.logger ?? (process.env.TEST_LOG ? createLogger('debug') : silentLogger));
  if (opts.waitForInventory ?? true) {
    await waitUntil(() => service.inventory.snapshot() !== undefined);
    // The engine view's first read too: tests count the engine requests their calls make.
    await service.engineView.firstRead;
  }
  const address = `127.0.0.1:${service.port}`;
  const proto = loadScorerProto();
  const client = new proto.ksmscorer.v1.HostScorerService(address, grpc.credentials.createInsecure());
  return {
    service,
    client,
    address,
    async close() {
      client.close();
      await service.stop();
    },
  };
}

/** Calls a unary method and resolves with the response or rejects with the ServiceError. */
export function unary<Req, Res>(client: grpc.Client, method: string, request: Req, options: grpc.CallOptions = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, (r: Req, o: grpc.CallOptions, cb: grpc.requestCallback<Res>) => void>)[method]!;
    fn.call(client, request, options, (err, res) => (err ? reject(err) : resolve(res as Res)));
  });
}

export async function waitUntil(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function expectGrpcError(
  promise: Promise<unknown>,
  code: grpc.status,
  messagePart?: string | RegExp,
): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (err) {
    const e = err as grpc.ServiceError;
    if (e.code !== code) throw new Error(`expected ${grpc.status[code]}, got ${grpc.status[e.code]}: ${e.details}`);
    if (messagePart !== undefined && !(typeof messagePart === 'string' ? e.details.includes(messagePart) : messagePart.test(e.details))) {
      throw new Error(`message ${JSON.stringify(e.details)} does not contain ${String(messagePart)}`);
    }
    return e;
  }
  throw new Error(`expected ${grpc.status[code]}, but the call succeeded`);
}

/** The inventory settings of a default configuration, with `overrides`. */
export function inventorySettings(overrides: Partial<InventorySettings> = {}): InventorySettings {
  const defaults = loadConfig({}).inventory;
  const merged = { ...defaults, ...overrides };
  // The default stale age follows the sync interval, as loadConfig computes it.
  if (overrides.staleAfterMs === undefined)
    merged.staleAfterMs = 2 * (merged.eventsIntervalMs > 0 ? merged.eventsIntervalMs : merged.refreshIntervalMs);
  return merged;
}

/** The view a call would score against (reading on demand what the snapshot lacks), with no deadline. */
export async function viewOf(inv: HostInventory, snapshot: InventorySnapshot, needs: Partial<CallNeeds>): Promise<CallView> {
  const open = () => ({ signal: new AbortController().signal, dispose() {} });
  return inv.served.withView(snapshot, { hostIds: needs.hostIds ?? [], vmIds: needs.vmIds ?? [] }, open, (view) => view);
}

/**
 * The simulated engines (12 hosts, 150 VMs, seed 11, unless a test says otherwise) and in-process scorers
 * (FAST_SYNC) that the tests of one describe block start. A new scorer empties `logs`, where its debug log
 * lines go. `stop()`, for the block's afterEach, closes the scorers, runs the `closers` tests added, then
 * stops the engines.
 */
export function simulatedSites() {
  const sims: SimulatedEngine[] = [];
  const scorers: Scorer[] = [];
  const site = {
    logs: [] as string[],
    closers: [] as (() => Promise<void>)[],
    async simulator(options: Partial<SimulatedEngineOptions> = {}): Promise<SimulatedEngine> {
      const sim = await startSimulator({ hosts: 12, vms: 150, seed: 11, ...options });
      sims.push(sim);
      return sim;
    },
    async scorerOn(sim: SimulatedEngine, env: Record<string, string> = {}): Promise<Scorer> {
      site.logs = [];
      const scorer = await startScorer(
        sim,
        { ...FAST_SYNC, ...env },
        { logger: createLogger('debug', { write: (l) => site.logs.push(l) }) },
      );
      scorers.push(scorer);
      return scorer;
    },
    async stop(): Promise<void> {
      for (const s of scorers.splice(0)) await s.close();
      for (const c of site.closers.splice(0)) await c();
      for (const s of sims.splice(0)) await s.stop();
    },
  };
  return site;
}
