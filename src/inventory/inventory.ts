/**
 * HostInventory, the inventory of a process that reads the engine itself: the
 * sync loop keeps a snapshot fresh and publishes each generation to the
 * served inventory (freshness and on-demand reads), which handlers see only
 * as ScoringInventory.
 */
import type { InventorySettings } from '../config/load';
import type { Logger } from '../log';
import { Metrics } from '../metrics/metrics';
import { ServedInventory } from './served';
import type { InventorySnapshot } from './snapshot';
import { type InventorySource, InventorySync, type SnapshotUpdate, type SyncStats } from './sync';

export type { CallNeeds, OpenCallSignal } from './read-through';
export type { HostListing, OsUsage, VmListing } from './listings';
export type { InventoryInfo, InventoryState } from './freshness';
export type { ScoringInventory } from './served';
export type { InventorySource, SnapshotUpdate, SyncStats } from './sync';

export interface HostInventoryOptions {
  readonly source: InventorySource;
  readonly settings: InventorySettings;
  readonly logger: Logger;
  /** Wall clock in epoch ms; injected so tests control time. Default Date.now. */
  readonly now?: () => number;
  /** A clock that never jumps (ms), for ages and the agreement span. Default performance.now, or `now` when only that is injected. */
  readonly monotonicNow?: () => number;
  /** 0..1, for the backoff jitter. Default Math.random. */
  readonly random?: () => number;
  /** Where the inventory's metrics go; default a registry of its own. */
  readonly metrics?: Metrics;
  /** Told of every generation after it is served here, and how it was made (a primary sends it on to its workers). */
  readonly onPublish?: (snapshot: InventorySnapshot, update: SnapshotUpdate) => void;
  /** Told of every failed sync (a primary sends it on to its workers). */
  readonly onSyncFailed?: (reason: string) => void;
}

export class HostInventory extends ServedInventory {
  private readonly loop: InventorySync;

  constructor(options: HostInventoryOptions) {
    const metrics = options.metrics ?? new Metrics();
    super({ ...options, metrics });
    const { source, settings, logger, now = Date.now, random = Math.random, onPublish, onSyncFailed } = options;
    this.loop = new InventorySync(
      source,
      settings,
      logger,
      (snapshot, update, ageMs) => {
        this.publish(snapshot, ageMs);
        onPublish?.(snapshot, update);
      },
      (err) => {
        this.syncFailed(err.message);
        onSyncFailed?.(err.message);
      },
      now,
      random,
      metrics,
      this.monotonicNow,
    );
  }

  /** Loads the inventory now and keeps it fresh until stop(). */
  override start(): void {
    super.start();
    this.loop.start();
  }

  /** Stops syncing and cancels every engine request in flight (syncs and on-demand reads). */
  override async stop(): Promise<void> {
    await super.stop();
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
}
