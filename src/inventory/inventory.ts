/**
 * HostInventory, the inventory of a process that reads the engine itself and
 * answers calls: the sync loop keeps a snapshot fresh and publishes each
 * generation to the served inventory (freshness and on-demand reads, `served`),
 * which handlers see only as ScoringInventory. (A worker-mode primary answers no
 * calls: its sync loop publishes to the workers instead, src/cluster/.)
 */
import { Metrics } from '../metrics/metrics';
import type { InventorySource } from './engine-reads';
import type { InventoryState } from './freshness';
import { ServedInventory, type ServedInventoryOptions } from './served';
import type { InventorySnapshot } from './snapshot';
import { InventorySync } from './sync';
import type { SyncStats } from './sync-record';

export type { CallNeeds, OpenCallSignal } from './read-through';
export type { HostListing, OsUsage, VmListing } from './listings';
export type { InventoryInfo, InventoryState } from './freshness';
export type { ScoringInventory } from './served';
export type { InventorySource } from './engine-reads';
export type { SnapshotUpdate } from './generation-sink';
export type { SyncStats } from './sync-record';

export interface HostInventoryOptions extends ServedInventoryOptions {
  /** What the sync loop reads; on-demand reads go there too. */
  readonly source: InventorySource;
  /** 0..1, for the backoff jitter. Default Math.random. */
  readonly random?: () => number;
}

export class HostInventory {
  /** What calls are answered from: where the sync loop publishes. */
  readonly served: ServedInventory;
  private readonly loop: InventorySync;

  constructor(options: HostInventoryOptions) {
    const metrics = options.metrics ?? new Metrics();
    const { source, settings, logger, now = Date.now, random = Math.random } = options;
    this.served = new ServedInventory({ ...options, metrics });
    this.loop = new InventorySync(source, settings, logger, this.served, now, random, metrics, this.served.monotonicNow);
  }

  /** Loads the inventory now and keeps it fresh until stop(). */
  start(): void {
    this.served.start();
    this.loop.start();
  }

  /** Stops syncing and cancels every engine request in flight (syncs and on-demand reads). */
  async stop(): Promise<void> {
    await this.served.stop();
    await this.loop.stop();
  }

  stats(): SyncStats {
    return this.loop.stats();
  }

  /** A full refresh now (after whatever sync is running); concurrent calls share one. */
  refresh(): Promise<InventorySnapshot> {
    return this.loop.refresh();
  }

  /** One step of the sync loop now: a full refresh when one is due, else an events poll. */
  sync(): Promise<InventorySnapshot> {
    return this.loop.sync();
  }

  // What the served inventory tells of itself.
  snapshot(): InventorySnapshot | undefined {
    return this.served.snapshot();
  }
  age(): number | undefined {
    return this.served.age();
  }
  checkState(): InventoryState {
    return this.served.checkState();
  }
  onStateChange(listener: (state: InventoryState) => void): void {
    this.served.onStateChange(listener);
  }
}
