/**
 * The primary process (KSM_SCORER_WORKERS > 1): the one engine client and
 * sync loop of the machine (and the embedded simulator without OVIRT_URL).
 * It serves no gRPC itself: it forks the workers, sends each generation to
 * them, makes their on-demand reads, restarts a worker that dies and drains
 * them all on shutdown.
 *
 * Metrics: the primary serves /metrics: its own registry (engine requests,
 * syncs, the inventory's gauges, its process) merged at each scrape with every
 * worker's (calls, on-demand reads, their processes), asked over IPC
 * (prom-client's AggregatorRegistry.aggregate).
 */
import cluster, { type Worker } from 'node:cluster';
import type { Config } from '../config/load';
import { type BoundPorts, checkListenAddresses, logListening, serveMetrics } from '../endpoints';
import { connectEngine } from '../engine';
import { HostInventory } from '../inventory/inventory';
import { generationMessage } from '../inventory/replica';
import type { InventorySnapshot } from '../inventory/snapshot';
import type { Logger } from '../log';
import { Metrics } from '../metrics/metrics';
import { NODE_FLAGS } from '../node-flags';
import { CallWindow } from '../engine-view/call-window';
import { engineViewWatcher } from '../engine-view/watcher';
import { EngineClient } from '../ovirt/client';
import { isOurs, type ToPrimary, type ToWorker } from './messages';
import { WorkerReads } from './on-demand';

type WorkerMetrics = Extract<ToPrimary, { ksm: 'metrics' }>['values'];

export interface RunningPrimary extends BoundPorts {
  /** Drains every worker (NOT_SERVING, grace period), then stops syncing and logs out. */
  stop(): Promise<void>;
}

/** A worker that lived less than this before dying counts as a crash loop: restarts back off. */
const HEALTHY_LIFETIME_MS = 10_000;
const MAX_RESTART_DELAY_MS = 30_000;
/** How long a scrape waits for a worker's metric values. */
const METRICS_ASK_TIMEOUT_MS = 1_000;
/** After the grace period, how long a draining worker may take to exit before it is killed. */
const EXIT_MARGIN_MS = 5_000;

/** Throws ConfigError when a listen address cannot be bound, before anything has started. */
export async function startPrimary(config: Config, logger: Logger): Promise<RunningPrimary> {
  await checkListenAddresses(config);
  const { connection, simulator } = await connectEngine(config, logger);
  const metrics = new Metrics();
  let scrape;
  try {
    scrape = await serveMetrics(config, metrics, logger, () => askWorkersForMetrics());
  } catch (err) {
    await simulator?.stop();
    throw err;
  }
  const client = new EngineClient({ ...config.engine, connection, logger, metrics });
  // Only the primary knows its workers: a worker that died and was replaced shows here, not in its own metrics.
  metrics.gauge('ksm_scorer_workers', 'Worker processes running now (KSM_SCORER_WORKERS when all are up).', [], function collect() {
    this.set(Object.values(cluster.workers ?? {}).filter((w) => w !== undefined && !w.isDead()).length);
  });
  const workerRestarts = metrics.counter('ksm_scorer_worker_restarts_total', 'Worker processes that exited unasked and were replaced.');

  const send = (worker: Worker, message: ToWorker) => {
    if (worker.isConnected()) worker.send(message, undefined, {}, () => undefined);
  };
  /** Workers that hold the current generation: each next one goes to them. */
  const following = new Set<Worker>();
  let current: InventorySnapshot | undefined;
  /** Why nothing has loaded yet, for workers that start meanwhile. */
  let loadFailure: string | undefined;
  const inventory = new HostInventory({
    source: client,
    settings: config.inventory,
    logger,
    metrics,
    onPublish(snapshot, update) {
      current = snapshot;
      const generation = generationMessage(snapshot, update, inventory.age());
      for (const worker of following) send(worker, { ksm: 'generation', generation });
    },
    onSyncFailed(reason) {
      if (current === undefined) loadFailure = reason;
      for (const worker of following) send(worker, { ksm: 'sync-failed', reason });
    },
  });
  const reads = new WorkerReads(client, config.inventory.onDemandConcurrency, send);
  // The engine's view of the unit lives here, with the engine client; the workers report their XML-RPC calls.
  const calls = new CallWindow();
  const engineView = engineViewWatcher(config, client, connection.username, calls, logger, metrics);

  // Workers run with the flags serve wants, whatever node the primary was started with.
  cluster.setupPrimary({ serialization: 'advanced', execArgv: [...process.execArgv, ...NODE_FLAGS.filter((flag) => !process.execArgv.includes(flag))] });
  let ports: BoundPorts | undefined;
  let stopping = false;
  let crashes = 0;
  const restartTimers = new Set<NodeJS.Timeout>();
  let listened!: (ports: BoundPorts) => void;
  let failedToStart!: (err: Error) => void;
  const firstListen = new Promise<BoundPorts>((resolve, reject) => {
    listened = resolve;
    failedToStart = reject;
  });

  const onMessage = (worker: Worker, message: ToPrimary) => {
    switch (message.ksm) {
      case 'hello':
        // The whole current generation first, then (same ordered channel) every next one.
        send(worker, {
          ksm: 'welcome',
          generation: current === undefined ? undefined : generationMessage(current, { kind: 'full' }, inventory.age()),
          loadFailure: current === undefined ? loadFailure : undefined,
        });
        following.add(worker);
        break;
      case 'listening':
        if (ports === undefined) {
          ports = message.ports;
          logListening(logger, config, ports, { metrics: scrape.url, engine: connection.url, workers: config.server.workers });
          listened(ports);
        } else if (message.ports.port !== ports.port || message.ports.ovirtProxyPort !== ports.ovirtProxyPort) {
          // Only with port 0, after every worker died at once: the port was picked again.
          ports = message.ports;
          logger.warn('the workers listen on new ports (port 0, and every worker had died)', { ...ports });
        }
        break;
      case 'read':
        reads.read(worker, message.id, message.read);
        break;
      case 'read-cancel':
        reads.cancel(worker, message.id);
        break;
      case 'metrics':
        metricAnswers.get(message.id)?.(message.values);
        break;
      case 'xmlrpc-call':
        calls.record(message.method, message.outcome);
        break;
      case 'engine-status-ask':
        send(worker, { ksm: 'engine-status', id: message.id, status: engineView.status() });
        break;
    }
  };

  /** Each live worker's metric values; a worker that does not answer within a second is left out of this scrape. */
  const metricAnswers = new Map<number, (values: WorkerMetrics) => void>();
  let nextAsk = 0;
  const askWorkersForMetrics = (): Promise<WorkerMetrics[]> =>
    Promise.all(
      Object.values(cluster.workers ?? {}).map(
        (worker) =>
          new Promise<WorkerMetrics | undefined>((resolve) => {
            if (worker === undefined || !worker.isConnected()) return resolve(undefined);
            const id = nextAsk++;
            const timer = setTimeout(() => answered(undefined), METRICS_ASK_TIMEOUT_MS);
            const answered = (values: WorkerMetrics | undefined) => {
              clearTimeout(timer);
              metricAnswers.delete(id);
              resolve(values);
            };
            metricAnswers.set(id, answered);
            send(worker, { ksm: 'metrics-ask', id });
          }),
      ),
    ).then((all) => all.filter((v): v is WorkerMetrics => v !== undefined));

  const fork = () => {
    const worker = cluster.fork();
    const startedAt = Date.now();
    logger.info('worker started', { worker: worker.id, workerPid: worker.process.pid });
    worker.on('message', (message: unknown) => {
      if (isOurs<ToPrimary>(message)) onMessage(worker, message);
    });
    worker.on('exit', (code, signal) => {
      following.delete(worker);
      reads.forget(worker);
      if (stopping) return;
      // Before its first line of JavaScript a worker has no handler yet: Ctrl-C or a stop sent to the
      // whole process group ends it. That is the operator's stop, which reaches this process too,
      // not a worker that cannot start: it is replaced, and the stop is taken once started.
      const stopSignal = signal === 'SIGINT' || signal === 'SIGTERM';
      if (ports === undefined && !stopSignal) {
        failedToStart(new Error(`worker ${worker.id} exited before listening (code ${code ?? signal}); its log line says why`));
        return;
      }
      crashes = Date.now() - startedAt < HEALTHY_LIFETIME_MS ? crashes + 1 : 0;
      const restartInMs = crashes === 0 ? 0 : Math.min(MAX_RESTART_DELAY_MS, 1_000 * 2 ** (crashes - 1));
      logger.warn('worker exited: starting another', { worker: worker.id, workerPid: worker.process.pid, code, signal, restartInMs });
      workerRestarts.inc();
      const timer = setTimeout(() => {
        restartTimers.delete(timer);
        if (!stopping) fork();
      }, restartInMs);
      restartTimers.add(timer);
    });
  };

  for (let i = 0; i < config.server.workers; i++) fork();
  inventory.start();
  engineView.start();

  const drainWorkers = async () => {
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    const exits = workers.map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
    for (const worker of workers) send(worker, { ksm: 'drain' });
    const killAfter = setTimeout(() => {
      logger.warn('workers still running after the grace period: killing them', { workerPids: workers.filter((w) => !w.isDead()).map((w) => w.process.pid) });
      for (const worker of workers) if (!worker.isDead()) worker.process.kill('SIGKILL');
    }, config.server.shutdownGraceMs + EXIT_MARGIN_MS);
    await Promise.all(exits);
    clearTimeout(killAfter);
  };
  const stopAll = async () => {
    stopping = true;
    for (const timer of restartTimers) clearTimeout(timer);
    await drainWorkers();
    reads.stop();
    await scrape.close();
    await inventory.stop();
    await engineView.stop();
    await client.close();
    await simulator?.stop();
  };

  let bound: BoundPorts;
  try {
    bound = await firstListen;
  } catch (err) {
    await stopAll();
    throw err;
  }

  let stopped: Promise<void> | undefined;
  return {
    ...bound,
    stop() {
      stopped ??= (async () => {
        logger.info('shutting down: draining the workers', { graceMs: config.server.shutdownGraceMs, workers: Object.keys(cluster.workers ?? {}).length });
        await stopAll();
        logger.info('stopped');
      })();
      return stopped;
    },
  };
}
