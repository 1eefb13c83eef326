/**
 * The primary process (KSM_SCORER_WORKERS > 1): the one engine client and
 * sync loop of the machine (and the embedded simulator without OVIRT_URL).
 * It serves no gRPC itself: its worker pool forks and restarts the workers,
 * its sync loop publishes each generation to the generation feed, which sends
 * it to them, and it makes their on-demand reads; it drains them all on
 * shutdown.
 *
 * Metrics: the primary serves /metrics: its own registry (engine requests,
 * syncs, its workers, its process) merged at each scrape with every worker's
 * (the inventory they serve, calls, on-demand reads, their processes), asked
 * over IPC (prom-client's AggregatorRegistry.aggregate).
 */
import type { Config } from '../config/load';
import { type BoundPorts, checkListenAddresses, logListening, serveMetrics } from '../endpoints';
import { connectEngine } from '../engine';
import { InventorySync } from '../inventory/sync';
import type { Logger } from '../log';
import { Metrics } from '../metrics/metrics';
import { CallWindow } from '../engine-view/call-window';
import { engineViewWatcher } from '../engine-view/watcher';
import { EngineClient } from '../ovirt/client';
import { GenerationFeed } from './generation-feed';
import { IpcCalls } from './ipc-call';
import type { ToPrimary } from './messages';
import { WorkerReads } from './on-demand';
import { sendTo, WorkerPool } from './worker-pool';

type WorkerMetrics = Extract<ToPrimary, { ksm: 'metrics' }>['values'];

export interface RunningPrimary extends BoundPorts {
  /** Drains every worker (NOT_SERVING, grace period), then stops syncing and logs out. */
  stop(): Promise<void>;
}

/** How long a scrape waits for a worker's metric values. */
const METRICS_ASK_TIMEOUT_MS = 1_000;

/** Throws ConfigError when a listen address cannot be bound, before anything has started. */
export async function startPrimary(config: Config, logger: Logger): Promise<RunningPrimary> {
  await checkListenAddresses(config);
  const { connection, simulator } = await connectEngine(config, logger);
  const metrics = new Metrics();
  /** Each live worker's metric values; a worker that does not answer within a second is left out of this scrape. */
  const metricAsks = new IpcCalls<WorkerMetrics>();
  const askWorkersForMetrics = (): Promise<WorkerMetrics[]> =>
    Promise.all(
      pool.all().map((worker) =>
        worker.isConnected()
          ? metricAsks
              .call((id) => sendTo(worker, { ksm: 'metrics-ask', id }), {
                timeout: { ms: METRICS_ASK_TIMEOUT_MS, error: () => new Error('no metric values') },
              })
              .catch(() => undefined)
          : Promise.resolve(undefined),
      ),
    ).then((all) => all.filter((v): v is WorkerMetrics => v !== undefined));
  let scrape;
  try {
    scrape = await serveMetrics(config, metrics, logger, () => askWorkersForMetrics());
  } catch (err) {
    await simulator?.stop();
    throw err;
  }
  const client = new EngineClient({ ...config.engine, connection, logger, metrics });
  const feed = new GenerationFeed(sendTo);
  const sync = new InventorySync(client, config.inventory, logger, feed, Date.now, Math.random, metrics);
  const reads = new WorkerReads(client, config.inventory.onDemandConcurrency, sendTo);
  // The engine's view of the unit lives here, with the engine client; the workers report their XML-RPC calls.
  const calls = new CallWindow();
  const engineView = engineViewWatcher(config, client, connection.username, calls, logger, metrics);

  const pool = new WorkerPool({
    workers: config.server.workers,
    shutdownGraceMs: config.server.shutdownGraceMs,
    logger,
    metrics,
    onMessage(worker, message) {
      switch (message.ksm) {
        case 'hello':
          feed.welcome(worker);
          break;
        case 'read':
          reads.read(worker, message.id, message.read);
          break;
        case 'read-cancel':
          reads.cancel(worker, message.id);
          break;
        case 'metrics':
          metricAsks.answer(message.id, message.values);
          break;
        case 'xmlrpc-call':
          calls.record(message.method, message.outcome);
          break;
        case 'engine-status-ask':
          sendTo(worker, { ksm: 'engine-status', id: message.id, status: engineView.status() });
          break;
      }
    },
    onExit(worker) {
      feed.unfollow(worker);
      reads.forget(worker);
    },
  });
  pool.start();
  sync.start();
  engineView.start();

  const stopAll = async () => {
    await pool.drain();
    reads.stop();
    await scrape.close();
    await sync.stop();
    await engineView.stop();
    await client.close();
    await simulator?.stop();
  };

  let bound: BoundPorts;
  try {
    bound = await pool.listening;
  } catch (err) {
    await stopAll();
    throw err;
  }
  logListening(logger, config, bound, { metrics: scrape.url, engine: connection.url, workers: config.server.workers });

  let stopped: Promise<void> | undefined;
  return {
    ...bound,
    stop() {
      stopped ??= (async () => {
        logger.info('shutting down: draining the workers', { graceMs: config.server.shutdownGraceMs, workers: pool.all().length });
        await stopAll();
        logger.info('stopped');
      })();
      return stopped;
    },
  };
}
