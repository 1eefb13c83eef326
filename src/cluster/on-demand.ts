/**
 * On-demand engine reads of worker processes, made by the primary: a worker's
 * ReadThrough reads through PrimaryReads, which asks the primary over IPC;
 * the primary's WorkerReads makes the request with its one EngineClient (one
 * login for the machine) behind one concurrency limit for all workers.
 */
import type { Worker } from 'node:cluster';
import { ScorerError } from '../errors';
import { ConcurrencyLimit } from '../concurrency-limit';
import type { OnDemandSource } from '../inventory/engine-reads';
import type { EngineHost, EngineVm } from '../ovirt/model';
import { unusableAsGone } from '../ovirt/rejections';
import { IpcCalls } from './ipc-call';
import type { OnDemandRead, ToPrimary, ToWorker, WireError } from './messages';

/** Worker side: the OnDemandSource a worker's inventory reads through. */
export class PrimaryReads implements OnDemandSource {
  private readonly calls = new IpcCalls<unknown>();

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
    if (error === undefined) this.calls.answer(id, value);
    else this.calls.fail(id, new ScorerError(error.code, error.message, { endpoint: error.endpoint, status: error.status }));
  }

  /** Every read still waiting fails (the process is stopping). */
  failAll(err: ScorerError): void {
    this.calls.failAll(err);
  }

  private ask<T>(read: OnDemandRead, signal: AbortSignal | undefined): Promise<T> {
    return this.calls.call((id) => this.send({ ksm: 'read', id, read }), {
      signal,
      onCancel: (id) => this.send({ ksm: 'read-cancel', id }),
    }) as Promise<T>;
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
    if (reads === undefined) this.inFlight.set(worker.id, (reads = new Map<number, AbortController>()));
    reads.set(id, controller);
    const signal = AbortSignal.any([controller.signal, this.stopController.signal]);
    this.limit
      .run(() => this.perform(read, signal), signal)
      .then(
        (value) => this.send(worker, { ksm: 'read-result', id, value }),
        (err: unknown) => {
          const e = ScorerError.from(err);
          this.send(worker, {
            ksm: 'read-result',
            id,
            error: { code: e.code, message: e.message, endpoint: e.endpoint, status: e.status },
          });
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
