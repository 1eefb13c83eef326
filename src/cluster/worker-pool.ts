/**
 * The primary's worker processes: forks them, restarts one that dies (with
 * backoff when they keep dying young), tells when the first listens, and
 * drains them all on shutdown (killed after the grace period and a margin).
 * Messages other than `listening` go to `onMessage`.
 */
import cluster, { type Worker } from 'node:cluster';
import { backoffMs } from '../backoff';
import { SETTINGS } from '../config/settings';
import type { BoundPorts } from '../endpoints';
import type { Logger } from '../log';
import type { Metrics } from '../metrics/metrics';
import { NODE_FLAGS } from '../node-flags';
import { isOurs, type ToPrimary, type ToWorker } from './messages';

/** A worker that lived less than this before dying counts as a crash loop: restarts back off. */
const HEALTHY_LIFETIME_MS = 10_000;
const RESTART_BACKOFF = { baseMs: 1_000, maxMs: 30_000 };
/** After the grace period, how long a draining worker may take to exit before it is killed. */
const EXIT_MARGIN_MS = 5_000;

export interface WorkerPoolOptions {
  readonly workers: number;
  readonly shutdownGraceMs: number;
  readonly logger: Logger;
  /** Where the pool counts its workers and their restarts. */
  readonly metrics: Metrics;
  readonly onMessage: (worker: Worker, message: Exclude<ToPrimary, { ksm: 'listening' }>) => void;
  /** The worker exited: whatever it was owed is of no use now. */
  readonly onExit: (worker: Worker) => void;
}

/** Sends a message to a worker, unless it is gone. */
export function sendTo(worker: Worker, message: ToWorker): void {
  if (worker.isConnected()) worker.send(message, undefined, {}, () => undefined);
}

export class WorkerPool {
  /** The ports the workers listen on, once the first does. */
  readonly listening: Promise<BoundPorts>;
  private ports: BoundPorts | undefined;
  private listened!: (ports: BoundPorts) => void;
  private failedToStart!: (err: Error) => void;
  private stopping = false;
  /** Workers in a row that died young. */
  private crashes = 0;
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  private readonly restarts;

  constructor(private readonly options: WorkerPoolOptions) {
    this.listening = new Promise<BoundPorts>((resolve, reject) => {
      this.listened = resolve;
      this.failedToStart = reject;
    });
    // Only the primary knows its workers: a worker that died and was replaced shows here, not in its own metrics.
    const live = () => this.live().length;
    options.metrics.gauge(
      'ksm_scorer_workers',
      `Worker processes running now (${SETTINGS.server.workers.env} when all are up).`,
      [],
      function collect() {
        this.set(live());
      },
    );
    this.restarts = options.metrics.counter('ksm_scorer_worker_restarts_total', 'Worker processes that exited unasked and were replaced.');
    // Workers run with the flags serve wants, whatever node the primary was started with.
    cluster.setupPrimary({
      serialization: 'advanced',
      execArgv: [...process.execArgv, ...NODE_FLAGS.filter((flag) => !process.execArgv.includes(flag))],
    });
  }

  start(): void {
    for (let i = 0; i < this.options.workers; i++) this.fork();
  }

  /** Every worker process, running or not yet reaped. */
  all(): Worker[] {
    return Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
  }

  /** Tells every worker to drain, and waits until all have exited; restarts no more. */
  async drain(): Promise<void> {
    this.stopping = true;
    for (const timer of this.restartTimers) clearTimeout(timer);
    const { logger } = this.options;
    const workers = this.all();
    const exits = workers.map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
    for (const worker of workers) sendTo(worker, { ksm: 'drain' });
    const killAfter = setTimeout(() => {
      logger.warn('workers still running after the grace period: killing them', {
        workerPids: workers.filter((w) => !w.isDead()).map((w) => w.process.pid),
      });
      for (const worker of workers) if (!worker.isDead()) worker.process.kill('SIGKILL');
    }, this.options.shutdownGraceMs + EXIT_MARGIN_MS);
    await Promise.all(exits);
    clearTimeout(killAfter);
  }

  private live(): Worker[] {
    return this.all().filter((w) => !w.isDead());
  }

  private fork(): void {
    const { logger } = this.options;
    const worker = cluster.fork();
    const startedAt = Date.now();
    logger.info('worker started', { worker: worker.id, workerPid: worker.process.pid });
    worker.on('message', (message: unknown) => {
      if (!isOurs<ToPrimary>(message)) return;
      if (message.ksm === 'listening') this.onListening(message.ports);
      else this.options.onMessage(worker, message);
    });
    // A message to a worker that has just died (cluster's own, handing it a listening socket, or ours)
    // fails with EPIPE as an 'error' event: unheard, it would end the primary. The exit handler below
    // deals with the death itself.
    worker.on('error', (err: Error) => logger.debug('message to a worker failed', { worker: worker.id, err }));
    worker.on('exit', (code, signal) => {
      this.options.onExit(worker);
      if (this.stopping) return;
      // Before its first line of JavaScript a worker has no handler yet: Ctrl-C or a stop sent to the
      // whole process group ends it. That is the operator's stop, which reaches this process too,
      // not a worker that cannot start: it is replaced, and the stop is taken once started.
      const stopSignal = signal === 'SIGINT' || signal === 'SIGTERM';
      if (this.ports === undefined && !stopSignal) {
        this.failedToStart(new Error(`worker ${worker.id} exited before listening (code ${code ?? signal}); its log line says why`));
        return;
      }
      this.crashes = Date.now() - startedAt < HEALTHY_LIFETIME_MS ? this.crashes + 1 : 0;
      const restartInMs = backoffMs(this.crashes, RESTART_BACKOFF);
      logger.warn('worker exited: starting another', { worker: worker.id, workerPid: worker.process.pid, code, signal, restartInMs });
      this.restarts.inc();
      const timer = setTimeout(() => {
        this.restartTimers.delete(timer);
        if (!this.stopping) this.fork();
      }, restartInMs);
      this.restartTimers.add(timer);
    });
  }

  private onListening(ports: BoundPorts): void {
    if (this.ports === undefined) {
      this.ports = ports;
      this.listened(ports);
    } else if (ports.port !== this.ports.port || ports.ovirtProxyPort !== this.ports.ovirtProxyPort) {
      // Only with port 0, after every worker died at once: the port was picked again.
      this.ports = ports;
      this.options.logger.warn('the workers listen on new ports (port 0, and every worker had died)', { ...ports });
    }
  }
}
