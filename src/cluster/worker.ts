/**
 * A worker process (KSM_SCORER_WORKERS > 1): serves gRPC (and the scheduler
 * proxy, when configured) on the shared ports from the generations the
 * primary sends, and reads on demand through the
 * primary. It never talks to the engine, ignores terminal signals (the
 * primary drains it) and exits with the primary (node:cluster does that on
 * disconnect).
 */
import type { Config } from '../config/load';
import { formatHostPort } from '../config/kinds';
import { onStopSignal } from '../stop-signals';
import { Endpoints } from '../endpoints';
import { engineStatusService } from '../engine-view/service';
import type { EngineStatus } from '../engine-view/status';
import { ScorerError } from '../errors';
import { decodeSnapshotInSlices, followGeneration, type GenerationMessage } from '../inventory/replica';
import { ServedInventory } from '../inventory/served';
import type { Logger } from '../log';
import { LoopDelay } from '../metrics/loop-delay';
import { Metrics } from '../metrics/metrics';
import { IpcCalls } from './ipc-call';
import { isOurs, type ToPrimary, type ToWorker } from './messages';
import { PrimaryReads } from './on-demand';

/** How long GetEngineStatus waits for the primary's answer (it answers from memory, at once). */
const STATUS_ASK_TIMEOUT_MS = 2_000;

/** Runs until the primary drains this worker; resolves with the exit code. */
export function runWorker(config: Config, logger: Logger): Promise<number> {
  const send = (message: ToPrimary) => {
    if (process.connected) process.send!(message, undefined, {}, () => undefined);
  };
  // Limits meant for the whole service: each worker gets its share.
  const share = (limit: number) => Math.max(1, Math.floor(limit / config.server.workers));
  const reads = new PrimaryReads(send);
  // This worker's counts (gRPC calls, on-demand reads, XML-RPC, its process): the primary asks for them
  // at each scrape and merges them into the /metrics it serves.
  const metrics = new Metrics();
  metrics.collectProcessMetrics();
  const inventory = new ServedInventory({
    source: reads,
    settings: { ...config.inventory, onDemandPerSecond: share(config.inventory.onDemandPerSecond) },
    logger,
    metrics,
  });
  const endpoints = new Endpoints(
    inventory,
    { ...config, server: { ...config.server, maxConnections: share(config.server.maxConnections) } },
    logger,
    metrics,
    (method, outcome) => send({ ksm: 'xmlrpc-call', method, outcome }),
  );
  // GetEngineStatus: the engine's view is the primary's.
  const statusAsks = new IpcCalls<EngineStatus>();
  const engineStatus = engineStatusService(() =>
    statusAsks.call((id) => send({ ksm: 'engine-status-ask', id }), {
      timeout: {
        ms: STATUS_ASK_TIMEOUT_MS,
        error: () => new Error(`the primary process did not answer within ${STATUS_ASK_TIMEOUT_MS} ms`),
      },
    }),
  );
  endpoints.addGrpcService(engineStatus.definition, engineStatus.handlers);
  inventory.onStateChange((state) => endpoints.setServing(state === 'fresh' || state === 'stale'));
  inventory.start();

  // Ctrl-C and systemd signal the whole process group: the primary decides, and drains the workers
  // (the signals are held from the worker's first moment, stop-signals.ts).
  onStopSignal(() => undefined);

  // At debug, how long this worker's event loop was held up since the last whole generation: its message's
  // deserialisation (before any handler runs) and the rebuild both count. Off otherwise: it wakes every millisecond.
  const loopDelay = config.log.level === 'debug' ? new LoopDelay() : undefined;
  // And from a whole generation's arrival until it is applied: what applying it costs, apart from the calls and
  // collections in between generations and the CPU the other processes take (make bench tells the two apart).
  const applyDelay = config.log.level === 'debug' ? new LoopDelay() : undefined;
  /** A whole generation, rebuilt in slices; how long it took and the longest block since the last one, at debug. */
  const rebuild = async (snapshot: Parameters<typeof decodeSnapshotInSlices>[0]) => {
    const t0 = performance.now();
    try {
      return await decodeSnapshotInSlices(snapshot);
    } finally {
      logger.debug('generation applied', {
        generation: snapshot.generation,
        ms: Math.round(performance.now() - t0),
        loopDelayMaxMs: loopDelay?.maxMs(),
        applyLoopDelayMaxMs: applyDelay?.maxMs(),
      });
      loopDelay?.reset();
    }
  };
  // Generations apply in order; a whole snapshot is rebuilt a slice at a time, calls answered meanwhile from the one before.
  let applying: Promise<void> = Promise.resolve();
  const follow = (generation: GenerationMessage) => {
    applying = applying
      .then(async () => {
        const next = generation.kind === 'full' ? await rebuild(generation.snapshot) : followGeneration(inventory.snapshot(), generation);
        if (next !== undefined) return inventory.publish(next, generation.ageMs);
        // Not the generation after ours: cannot happen on an ordered channel, but a full copy mends it.
        logger.warn('generation out of sequence: asking the primary for a full copy', { have: inventory.snapshot()?.generation });
        send({ ksm: 'hello' });
      })
      .catch((err: unknown) => {
        logger.error('generation could not be applied: asking the primary for a full copy', { err: err as Error });
        send({ ksm: 'hello' });
      });
    return applying;
  };

  return new Promise<number>((resolve) => {
    let listening = false;
    const listen = async () => {
      listening = true;
      try {
        const ports = await endpoints.listen();
        send({ ksm: 'listening', ports });
        logger.info('worker listening', { ...ports, generation: inventory.snapshot()?.generation });
      } catch (err) {
        logger.error('worker cannot listen', {
          address: formatHostPort(config.server.listen),
          ovirtProxyAddress: config.ovirtProxy.listen === undefined ? undefined : formatHostPort(config.ovirtProxy.listen),
          err: err as Error,
        });
        resolve(1);
      }
    };
    let draining = false;
    const drain = async () => {
      if (draining) return;
      draining = true;
      await endpoints.shutdown(config.server.shutdownGraceMs);
      reads.failAll(new ScorerError('cancelled', 'worker stopped'));
      loopDelay?.stop();
      applyDelay?.stop();
      await inventory.stop();
      logger.info('worker stopped', { calls: inventory.calls });
      resolve(0);
    };

    process.on('message', (message: unknown) => {
      if (!isOurs<ToWorker>(message)) return;
      switch (message.ksm) {
        case 'welcome':
          void (message.generation === undefined ? applying : follow(message.generation)).then(() => {
            if (message.loadFailure !== undefined) inventory.syncFailed(message.loadFailure);
            // Only now: a worker started next to running ones takes connections once it has their generation.
            if (!listening && !draining) void listen();
          });
          break;
        case 'generation':
          if (message.generation.kind === 'full') applyDelay?.reset();
          void follow(message.generation); // applied in order on `applying`; its failures are handled there
          break;
        case 'sync-failed':
          void applying.then(() => inventory.syncFailed(message.reason));
          break;
        case 'read-result':
          reads.settle(message.id, message.value, message.error);
          break;
        case 'drain':
          void drain();
          break;
        case 'engine-status':
          statusAsks.answer(message.id, message.status);
          break;
        case 'metrics-ask':
          void metrics.values().then((values) => send({ ksm: 'metrics', id: message.id, values }));
          break;
      }
    });
    send({ ksm: 'hello' });
  });
}
