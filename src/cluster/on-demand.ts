/**
 * On-demand engine reads of worker processes, made by the primary: a worker's
 * ReadThrough reads through PrimaryReads, which asks the primary over IPC;
 * the primary's WorkerReads makes the request with its one EngineClient (one
 * login for the machine) behind one concurrency limit for all workers.
 */
import type { Worker } from 'node:cluster';
import { ScorerError } from '../errors';
import { unusableAsGone } from '../inventory/sync';
import { ConcurrencyLimit, type OnDemandSource } from '../inventory/read-through';
import type { EngineHost, EngineVm } from '../ovirt/model';
import type { OnDemandRead, ToPrimary, ToWorker, WireError } from './messages';

/** Worker side: the OnDemandSource a worker's inventory reads through. */
export class PrimaryReads implements OnDemandSource {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(err: ScorerError): void }>();

  constructor(private readonly send: (message: ToPrimary) => void) {}

  getHost(id: string, signal?: AbortSignal): Promise<EngineHost | undefined> {
    return this.ask({ op: 'getHost', id }, signal);
  }

  getVm(id: string, signal?: AbortSignal): Promise<EngineVm | undefined> {
    return this.ask({ op: 'getVm', id }, signal);
  }

  listVmsOnHost(host: EngineHost, signal?: AbortSignal): Promise<EngineVm[]> {
    return this.ask({ op: 'listVmsOnHost', host }, signal);
  }

  /** The primary's answer to one read. */
  settle(id: number, value: unknown, error: WireError | undefined): void {
    const waiter = this.pending.get(id);
    if (waiter === undefined) return; // cancelled meanwhile
    this.pending.delete(id);
    if (error === undefined) waiter.resolve(value);
    else waiter.reject(new ScorerError(error.code, error.message, { endpoint: error.endpoint, status: error.status }));
  }

  /** Every read still waiting fails (the process is stopping). */
  failAll(err: ScorerError): void {
    for (const waiter of this.pending.values()) waiter.reject(err);
    this.pending.clear();
  }

  private ask<T>(read: OnDemandRead, signal: AbortSignal | undefined): Promise<T> {
    if (signal?.aborted) return Promise.reject(ScorerError.from(signal.reason));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        this.pending.delete(id);
        this.send({ ksm: 'read-cancel', id });
        reject(ScorerError.from(signal!.reason));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => signal?.removeEventListener('abort', onAbort);
      this.pending.set(id, {
        resolve: (value) => {
          done();
          resolve(value as T);
        },
        reject: (err) => {
          done();
          reject(err);
        },
      });
      this.send({ ksm: 'read', id, read });
    });
  }
}

/** Primary side: makes the workers' reads, at most `concurrency` at once for all of them. */
export class WorkerReads {
  private readonly limit: ConcurrencyLimit;
  /** Reads in flight, by worker id and read id, to cancel them. */
  private readonly inFlight = new Map<number, Map<number, AbortController>>();
  private readonly stopController = new AbortController();

  constructor(
    private readonly source: OnDemandSource,
    concurrency: number,
    private readonly send: (worker: Worker, message: ToWorker) => void,
  ) {
    this.limit = new ConcurrencyLimit(concurrency);
  }

  read(worker: Worker, id: number, read: OnDemandRead): void {
    const controller = new AbortController();
    let reads = this.inFlight.get(worker.id);
    if (reads === undefined) this.inFlight.set(worker.id, (reads = new Map()));
    reads.set(id, controller);
    const signal = AbortSignal.any([controller.signal, this.stopController.signal]);
    this.limit
      .run(() => this.perform(read, signal), signal)
      .then(
        (value) => this.send(worker, { ksm: 'read-result', id, value }),
        (err: unknown) => {
          const e = ScorerError.from(err);
          this.send(worker, { ksm: 'read-result', id, error: { code: e.code, message: e.message, endpoint: e.endpoint, status: e.status } });
        },
      )
      .finally(() => reads.delete(id));
  }

  cancel(worker: Worker, id: number): void {
    this.inFlight.get(worker.id)?.get(id)?.abort(new ScorerError('cancelled', 'the caller went away'));
  }

  /** The worker is gone: its reads are of no use to anyone. */
  forget(worker: Worker): void {
    for (const controller of this.inFlight.get(worker.id)?.values() ?? []) controller.abort(new ScorerError('cancelled', 'worker exited'));
    this.inFlight.delete(worker.id);
  }

  stop(): void {
    this.stopController.abort(new ScorerError('cancelled', 'inventory stopped'));
  }

  private perform(read: OnDemandRead, signal: AbortSignal): Promise<unknown> {
    switch (read.op) {
      // An unusable record is "not there" here, where the error's cause is still known (it does not cross IPC).
      case 'getHost':
        return unusableAsGone(this.source.getHost(read.id, signal));
      case 'getVm':
        return unusableAsGone(this.source.getVm(read.id, signal));
      case 'listVmsOnHost':
        return this.source.listVmsOnHost(read.host, signal);
    }
  }
}
