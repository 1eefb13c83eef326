/**
 * HostInventory keeps the current InventorySnapshot: it loads it, refreshes
 * it in the background (never two refreshes at once), and fills cache misses
 * on demand, once for all concurrent callers. Scoring never waits on the
 * engine for anything the snapshot already holds.
 */
import { LRUCache } from 'lru-cache';
import { abortable } from '../abortable';
import { ScorerError } from '../errors';
import type { Logger } from '../log';
import type { EngineHost, EngineVm } from '../ovirt/model';
import { CallView } from './call-view';
import { countOs } from './host-os-counts';
import { buildSnapshot, type HostEntry, type InventorySnapshot, type VmPlacement } from './snapshot';

/** The part of the engine the inventory reads; EngineClient implements it. */
export interface InventorySource {
  listHosts(signal?: AbortSignal): Promise<EngineHost[]>;
  listVms(signal?: AbortSignal): Promise<EngineVm[]>;
  getHost(id: string, signal?: AbortSignal): Promise<EngineHost | undefined>;
  getVm(id: string, signal?: AbortSignal): Promise<EngineVm | undefined>;
  listVmsOnHost(host: EngineHost, signal?: AbortSignal): Promise<EngineVm[]>;
}

export interface HostInventoryOptions {
  readonly source: InventorySource;
  readonly logger: Logger;
  /** Time between full refreshes. */
  readonly refreshIntervalMs: number;
  /** Bound of the per-host cache. */
  readonly cacheMaxHosts: number;
  /** Age after which answers are marked stale; default 2 x refreshIntervalMs. */
  readonly staleAfterMs?: number;
  /** Wall clock in epoch ms; injected so tests control time. */
  readonly now?: () => number;
}

/** What one call (or batch) will read. */
export interface CallNeeds {
  readonly hostIds: Iterable<string>;
  readonly vmIds: Iterable<string>;
  /** Some query named no hosts, so it reads every host of the snapshot. */
  readonly allHosts: boolean;
}

export interface InventoryInfo {
  readonly refreshedAt: number;
  readonly stale: boolean;
  readonly generation: number;
  readonly hostCount: number;
  readonly vmCount: number;
}

const MIN_RETRY_MS = 500;

export class HostInventory {
  private readonly source: InventorySource;
  private readonly logger: Logger;
  private readonly refreshIntervalMs: number;
  private readonly cacheMaxHosts: number;
  private readonly staleAfterMs: number;
  private readonly now: () => number;

  private current: InventorySnapshot | undefined;
  private generation = 0;
  private refreshing: Promise<InventorySnapshot> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private failures = 0;
  private readonly stopController = new AbortController();
  private readonly hostFetches = new Map<string, Promise<HostEntry>>();
  private readonly vmFetches = new Map<string, Promise<VmPlacement | undefined>>();
  /** VMs the last snapshot did not hold, fetched on demand; emptied by each new snapshot. */
  private readonly fetchedVms = new LRUCache<string, VmPlacement>({ max: 10_000 });
  private readonly listeners = new Set<(snapshot: InventorySnapshot) => void>();

  constructor(options: HostInventoryOptions) {
    this.source = options.source;
    this.logger = options.logger;
    this.refreshIntervalMs = options.refreshIntervalMs;
    this.cacheMaxHosts = options.cacheMaxHosts;
    this.staleAfterMs = options.staleAfterMs ?? 2 * options.refreshIntervalMs;
    this.now = options.now ?? Date.now;
  }

  /** Loads the inventory now and keeps refreshing it until stop(). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.tick();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.stopController.abort(new ScorerError('cancelled', 'inventory stopped'));
    await this.refreshing?.catch(() => undefined);
  }

  snapshot(): InventorySnapshot | undefined {
    return this.current;
  }

  /** Called with every new snapshot. */
  onSnapshot(listener: (snapshot: InventorySnapshot) => void): void {
    this.listeners.add(listener);
  }

  info(snapshot: InventorySnapshot): InventoryInfo {
    return {
      refreshedAt: snapshot.refreshedAt,
      stale: this.now() - snapshot.refreshedAt > this.staleAfterMs,
      generation: snapshot.generation,
      hostCount: snapshot.hostCount,
      vmCount: snapshot.vmCount,
    };
  }

  /** A full refresh: one hosts list, one paged VM list. Concurrent calls share one refresh. */
  refresh(): Promise<InventorySnapshot> {
    this.refreshing ??= this.fullRefresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /**
   * Gathers what a call needs: hosts missing from the snapshot's cache and
   * VMs missing from its index are fetched (bounded by `signal`); the rest is
   * read from the snapshot without touching the engine.
   */
  async resolve(snapshot: InventorySnapshot, need: CallNeeds, signal?: AbortSignal): Promise<CallView> {
    const hosts = new Map<string, HostEntry>();
    const vms = new Map<string, VmPlacement | undefined>();
    const pending: Promise<void>[] = [];
    const hostIds = need.allHosts ? [...need.hostIds, ...snapshot.hostIds] : need.hostIds;
    for (const id of hostIds) {
      if (hosts.has(id)) continue;
      const entry = snapshot.hosts.get(id);
      if (entry !== undefined) {
        hosts.set(id, entry);
        continue;
      }
      hosts.set(id, { found: false }); // placeholder until the fetch lands
      pending.push(abortable(this.fetchHost(snapshot, id), signal).then((e) => void hosts.set(id, e)));
    }
    for (const id of need.vmIds) {
      if (vms.has(id)) continue;
      const placement = snapshot.vms.get(id) ?? this.fetchedVms.get(id);
      if (placement !== undefined) {
        vms.set(id, placement);
        continue;
      }
      vms.set(id, undefined);
      pending.push(abortable(this.fetchVm(id), signal).then((p) => void vms.set(id, p)));
    }
    if (pending.length > 0) await Promise.all(pending);
    return new CallView(snapshot, hosts, vms);
  }

  private tick(): void {
    if (!this.running) return;
    this.refresh().then(
      () => {
        this.failures = 0;
        this.schedule(this.refreshIntervalMs);
      },
      (err: unknown) => {
        this.failures++;
        const e = ScorerError.from(err);
        if (e.code === 'cancelled' && !this.running) return;
        // Exponential backoff with jitter, capped at the refresh interval.
        const base = Math.min(this.refreshIntervalMs, MIN_RETRY_MS * 2 ** Math.min(this.failures - 1, 20));
        const delay = Math.round(base / 2 + (Math.random() * base) / 2);
        this.logger.warn('inventory refresh failed', { code: e.code, err: e.message, failures: this.failures, retryInMs: delay });
        this.schedule(delay);
      },
    );
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), ms);
    this.timer.unref();
  }

  private async fullRefresh(): Promise<InventorySnapshot> {
    const signal = this.stopController.signal;
    const started = this.now();
    const hosts = await this.source.listHosts(signal);
    const vms = await this.source.listVms(signal);
    const snapshot = buildSnapshot({ generation: this.generation + 1, refreshedAt: started, hosts, vms, cacheMaxHosts: this.cacheMaxHosts });
    this.generation = snapshot.generation;
    this.current = snapshot;
    this.fetchedVms.clear();
    this.logger.info('inventory refreshed', {
      generation: snapshot.generation,
      hosts: snapshot.hostCount,
      vms: snapshot.vmCount,
      ms: this.now() - started,
    });
    if (snapshot.hostCount > this.cacheMaxHosts) {
      this.logger.warn('host cache smaller than the engine: the rest is fetched on demand', { hosts: snapshot.hostCount, cacheMaxHosts: this.cacheMaxHosts });
    }
    for (const listener of this.listeners) listener(snapshot);
    return snapshot;
  }

  /** One fetch per (generation, host) however many callers wait; the result joins that snapshot's cache. */
  private fetchHost(snapshot: InventorySnapshot, id: string): Promise<HostEntry> {
    const key = `${snapshot.generation}/${id}`;
    let fetch = this.hostFetches.get(key);
    if (fetch === undefined) {
      fetch = (async (): Promise<HostEntry> => {
        const signal = this.stopController.signal;
        const host = await this.source.getHost(id, signal);
        if (host === undefined) return { found: false };
        const vms = await this.source.listVmsOnHost(host, signal);
        return { found: true, counts: countOs(vms.map((vm) => vm.os)), vmIds: new Set(vms.map((vm) => vm.id)) };
      })()
        .then((entry) => {
          snapshot.hosts.set(id, entry);
          this.logger.debug('host fetched on demand', { host: id, found: entry.found });
          return entry;
        })
        .finally(() => this.hostFetches.delete(key));
      this.hostFetches.set(key, fetch);
    }
    return fetch;
  }

  private fetchVm(id: string): Promise<VmPlacement | undefined> {
    let fetch = this.vmFetches.get(id);
    if (fetch === undefined) {
      fetch = this.source
        .getVm(id, this.stopController.signal)
        .then((vm) => {
          if (vm === undefined) return undefined;
          const placement = { hostId: vm.hostId, os: vm.os };
          this.fetchedVms.set(id, placement);
          return placement;
        })
        .finally(() => this.vmFetches.delete(id));
      this.vmFetches.set(id, fetch);
    }
    return fetch;
  }
}
