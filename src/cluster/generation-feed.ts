/**
 * The primary's GenerationSink: its sync loop publishes here, and each
 * generation goes on to every worker that follows (one that has said hello
 * and has had the whole current generation first, on the same ordered
 * channel). A worker that starts meanwhile is told why nothing has loaded yet.
 */
import type { Worker } from 'node:cluster';
import type { GenerationSink, SnapshotUpdate } from '../inventory/generation-sink';
import { generationMessage } from '../inventory/replica';
import type { InventorySnapshot } from '../inventory/snapshot';
import type { ToWorker } from './messages';

const FULL: SnapshotUpdate = Object.freeze({ kind: 'full' });

export class GenerationFeed implements GenerationSink {
  /** Workers that hold the current generation: each next one goes to them. */
  private readonly following = new Set<Worker>();
  private current: InventorySnapshot | undefined;
  /** When (monotonic ms) the current generation's data was read. */
  private readAt = 0;
  /** Why nothing has loaded yet, for workers that start meanwhile. */
  private loadFailure: string | undefined;

  constructor(
    private readonly send: (worker: Worker, message: ToWorker) => void,
    /** The clock ages are measured on (ms, never jumps): the sync loop's. */
    private readonly monotonicNow: () => number = () => performance.now(),
  ) {}

  publish(snapshot: InventorySnapshot, ageMs: number, update: SnapshotUpdate): void {
    this.current = snapshot;
    this.readAt = this.monotonicNow() - ageMs;
    const generation = generationMessage(snapshot, update, ageMs);
    for (const worker of this.following) this.send(worker, { ksm: 'generation', generation });
  }

  syncFailed(reason: string): void {
    if (this.current === undefined) this.loadFailure = reason;
    for (const worker of this.following) this.send(worker, { ksm: 'sync-failed', reason });
  }

  /** A worker said hello: the whole current generation first, then (same ordered channel) every next one. */
  welcome(worker: Worker): void {
    const current = this.current;
    this.send(worker, {
      ksm: 'welcome',
      generation: current === undefined ? undefined : generationMessage(current, FULL, Math.max(0, this.monotonicNow() - this.readAt)),
      loadFailure: current === undefined ? this.loadFailure : undefined,
    });
    this.following.add(worker);
  }

  /** The worker is gone. */
  unfollow(worker: Worker): void {
    this.following.delete(worker);
  }
}
