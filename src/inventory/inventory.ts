/**
 * HostInventory, the inventory of a process that reads the engine itself and
 * answers calls: the sync loop keeps a snapshot fresh and publishes each
 * generation to the served inventory (freshness and on-demand reads), which
 * handlers see only as ScoringInventory. (A worker-mode primary answers no
 * calls: its sync loop publishes to the workers instead, src/cluster/.)
 */
import type { InventorySettings } from '../config/load';
import type { Logger } from '../log';
import { Metrics } from '../metrics/metrics';
import type { CallView } from './call-view';
import type { InventorySource } from './engine-reads';
import type { InventoryInfo, InventoryState } from './freshness';
import type { HostListing, OsUsage, VmListing } from './listings';
import type { CallNeeds, OpenCallSignal } from './read-through';
import { type ScoringInventory, ServedInventory } from './served';
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
}

export class HostInventory implements ScoringInventory {
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

  // ScoringInventory: the served inventory's.
  servableSnapshot(): InventorySnapshot {
    return this.served.servableSnapshot();
  }
  info(snapshot: InventorySnapshot): InventoryInfo {
    return this.served.info(snapshot);
  }
  withView<T>(snapshot: InventorySnapshot, needs: CallNeeds, openSignal: OpenCallSignal, use: (view: CallView) => T): T | Promise<T> {
    return this.served.withView(snapshot, needs, openSignal, use);
  }
  operatingSystems(snapshot: InventorySnapshot): readonly OsUsage[] {
    return this.served.operatingSystems(snapshot);
  }
  hosts(snapshot: InventorySnapshot): readonly HostListing[] {
    return this.served.hosts(snapshot);
  }
  vms(snapshot: InventorySnapshot, hostId: string | undefined, max: number): { vms: readonly VmListing[]; total: number } | undefined {
    return this.served.vms(snapshot, hostId, max);
  }
}
