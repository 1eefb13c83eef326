/**
 * The inventory as calls see it: the current generation, whether it may be
 * served (freshness), and on-demand reads for what it lacks. Whoever makes
 * generations publishes them here (it is a GenerationSink): this process's
 * sync loop (inventory.ts), or in a worker process, the primary over IPC
 * (src/cluster/worker.ts).
 * Its gauges (size, generation, age, state) are read at scrape time.
 */
import type { InventorySettings } from '../config/load';
import { ScorerError } from '../errors';
import type { Logger } from '../log';
import { Metrics } from '../metrics/metrics';
import type { CallView } from './call-view';
import type { GenerationSink } from './generation-sink';
import { Freshness, type InventoryInfo, type InventoryState } from './freshness';
import { type HostListing, hostListing, type OsUsage, operatingSystems, type VmListing, vmListing } from './listings';
import type { OnDemandSource } from './engine-reads';
import { type CallNeeds, type OpenCallSignal, ReadThrough } from './read-through';
import type { InventorySnapshot } from './snapshot';

/** What the handlers need of the inventory, and nothing else. */
export interface ScoringInventory {
  /** The snapshot a call may be answered from; throws not_ready when there is none fit to serve. */
  servableSnapshot(): InventorySnapshot;
  info(snapshot: InventorySnapshot): InventoryInfo;
  /**
   * Runs `use` on a view holding everything `needs` names: now, when the
   * snapshot holds it (no promise, no engine), else after reading what is
   * missing from the engine within the on-demand limits.
   */
  withView<T>(snapshot: InventorySnapshot, needs: CallNeeds, openSignal: OpenCallSignal, use: (view: CallView) => T): T | Promise<T>;
  /** Every OS identity of the snapshot's VMs, with counts, by type then version. */
  operatingSystems(snapshot: InventorySnapshot): readonly OsUsage[];
  /** Every host of the snapshot, in the engine's order. */
  hosts(snapshot: InventorySnapshot): readonly HostListing[];
  /** The first `max` VMs, all or those on `hostId`, and how many match; undefined: no such host in the snapshot. */
  vms(snapshot: InventorySnapshot, hostId: string | undefined, max: number): { vms: readonly VmListing[]; total: number } | undefined;
}

export interface ServedInventoryOptions {
  /** Where on-demand reads go. */
  readonly source: OnDemandSource;
  readonly settings: InventorySettings;
  readonly logger: Logger;
  /** Wall clock in epoch ms; injected so tests control time. Default Date.now. */
  readonly now?: () => number;
  /** A clock that never jumps (ms), for ages. Default performance.now, or `now` when only that is injected. */
  readonly monotonicNow?: () => number;
  /** Where the inventory's metrics go; default a registry of its own. */
  readonly metrics?: Metrics;
}

const STATES: readonly InventoryState[] = ['loading', 'fresh', 'stale', 'expired'];

/** How often the state is re-evaluated as time passes (fresh -> stale -> expired without any sync). */
const STATE_CHECK_MS = 1_000;

export class ServedInventory implements ScoringInventory, GenerationSink {
  /** The clock ages are measured on (ms, never jumps). */
  readonly monotonicNow: () => number;
  /** Calls that asked for a snapshot to answer from: a worker logs it at exit (which worker answered how much). */
  calls = 0;
  private readonly freshness: Freshness;
  private readonly readThrough: ReadThrough;
  private readonly stopController = new AbortController();
  private stateTimer: NodeJS.Timeout | undefined;
  private readonly createdAt: number;

  constructor({ source, settings, logger, now: injectedNow, monotonicNow, metrics = new Metrics() }: ServedInventoryOptions) {
    const now = injectedNow ?? Date.now;
    this.createdAt = now();
    // One injected clock drives both in tests; otherwise ages are measured on the monotonic clock.
    this.monotonicNow = monotonicNow ?? (injectedNow === undefined ? () => performance.now() : now);
    this.freshness = new Freshness(settings, logger, now, this.monotonicNow);
    this.readThrough = new ReadThrough(source, settings, logger, this.stopController.signal, metrics);
    this.declareGauges(metrics, now);
  }

  private declareGauges(metrics: Metrics, now: () => number): void {
    const snapshot = () => this.freshness.snapshot();
    // Every process of a worker-mode service holds the same generation: merged by max, not summed.
    const gauge = (name: string, help: string, value: () => number) =>
      metrics.gauge(
        name,
        help,
        [],
        function collect() {
          this.set(value());
        },
        'max',
      );
    gauge('ksm_scorer_inventory_hosts', 'Hosts in the inventory snapshot (0 while loading).', () => snapshot()?.hostCount ?? 0);
    gauge('ksm_scorer_inventory_vms', 'VMs in the inventory snapshot (0 while loading).', () => snapshot()?.vmCount ?? 0);
    gauge(
      'ksm_scorer_inventory_generation',
      'Generation of the snapshot: +1 at each change (0 while loading).',
      () => snapshot()?.generation ?? 0,
    );
    gauge(
      'ksm_scorer_inventory_age_seconds',
      'Seconds since the inventory was last brought up to date with the engine (since start while nothing has loaded).',
      () => (this.freshness.age() ?? now() - this.createdAt) / 1000,
    );
    const check = () => this.freshness.check();
    metrics.gauge(
      'ksm_scorer_inventory_state',
      'The inventory state: 1 for the current one (loading, fresh, stale, expired), 0 for the others.',
      ['state'],
      function collect() {
        const current = check();
        for (const state of STATES) this.set({ state }, state === current ? 1 : 0);
      },
      'max',
    );
  }

  /** Starts re-evaluating the state as time passes. */
  start(): void {
    if (this.stateTimer !== undefined) return;
    this.stateTimer = setInterval(() => this.freshness.check(), STATE_CHECK_MS);
    this.stateTimer.unref();
  }

  /** Cancels every on-demand read in flight. */
  stop(): Promise<void> {
    clearInterval(this.stateTimer);
    this.stopController.abort(new ScorerError('cancelled', 'inventory stopped'));
    return Promise.resolve();
  }

  /** A new generation to serve; `ageMs`: how long ago its data was read, measured by whoever read it; else from the wall clock. */
  publish(snapshot: InventorySnapshot, ageMs?: number): void {
    this.freshness.publish(snapshot, ageMs);
  }

  /** How long ago the served snapshot was read from the engine (ms), on the monotonic clock; undefined before the first. */
  age(): number | undefined {
    return this.freshness.age();
  }

  /** A sync failed; until the first load, calls are told so. */
  syncFailed(reason: string): void {
    this.freshness.syncFailed(reason);
  }

  snapshot(): InventorySnapshot | undefined {
    return this.freshness.snapshot();
  }

  /** Called whenever the state changes (after a sync, or as time passes). */
  onStateChange(listener: (state: InventoryState) => void): void {
    this.freshness.onStateChange(listener);
  }

  checkState(): InventoryState {
    return this.freshness.check();
  }

  servableSnapshot(): InventorySnapshot {
    this.calls++;
    return this.freshness.servable();
  }

  info(snapshot: InventorySnapshot): InventoryInfo {
    return this.freshness.info(snapshot);
  }

  withView<T>(snapshot: InventorySnapshot, needs: CallNeeds, openSignal: OpenCallSignal, use: (view: CallView) => T): T | Promise<T> {
    return this.readThrough.withView(snapshot, needs, openSignal, use);
  }

  operatingSystems(snapshot: InventorySnapshot): readonly OsUsage[] {
    return operatingSystems(snapshot);
  }

  hosts(snapshot: InventorySnapshot): readonly HostListing[] {
    return hostListing(snapshot);
  }

  vms(snapshot: InventorySnapshot, hostId: string | undefined, max: number): { vms: readonly VmListing[]; total: number } | undefined {
    return vmListing(snapshot, hostId, max);
  }
}
