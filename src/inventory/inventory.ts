/**
 * HostInventory keeps the current InventorySnapshot fresh and keeps serving
 * it through engine trouble. One sequential sync loop (so nothing overlaps):
 * a full refresh at start and every `fullRefreshIntervalMs`, and between them
 * an events poll every `eventsIntervalMs` that re-reads only what the events
 * name. Failures back off exponentially with jitter and keep the last good
 * snapshot. Cache misses are fetched on demand, once for concurrent callers.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import { abortable } from '../abortable';
import { ScorerError } from '../errors';
import type { Logger } from '../log';
import type { EngineEvent, EngineHost, EngineVm } from '../ovirt/model';
import { CallView } from './call-view';
import { eventTargets } from './events';
import { countOs } from './host-os-counts';
import { applyChanges, type HostEntry, type InventoryChanges, type InventorySnapshot, SnapshotBuilder, type VmPlacement } from './snapshot';

/** The part of the engine the inventory reads; EngineClient implements it. */
export interface InventorySource {
  listHosts(signal?: AbortSignal): Promise<EngineHost[]>;
  forEachVmPage(onPage: (vms: EngineVm[]) => void, signal?: AbortSignal): Promise<number>;
  getHost(id: string, signal?: AbortSignal): Promise<EngineHost | undefined>;
  getVm(id: string, signal?: AbortSignal): Promise<EngineVm | undefined>;
  listVmsOnHost(host: EngineHost, signal?: AbortSignal): Promise<EngineVm[]>;
  listEvents(from: number, max: number, signal?: AbortSignal): Promise<EngineEvent[]>;
  newestEventId(signal?: AbortSignal): Promise<number>;
}

export interface HostInventoryOptions {
  readonly source: InventorySource;
  readonly logger: Logger;
  /** Time between full refreshes (resyncs). */
  readonly fullRefreshIntervalMs: number;
  /** Time between events polls; 0 turns events off (full refreshes only). */
  readonly eventsIntervalMs: number;
  /** Bound of the per-host cache. */
  readonly cacheMaxHosts: number;
  /** Age after which answers say `stale`; default 2 x the sync interval (events, else full). */
  readonly staleAfterMs?: number;
  /** Age after which the inventory is not served at all; default 10 minutes. */
  readonly maxStalenessMs?: number;
  /** Cap of the retry backoff after failures; default 60 s. */
  readonly backoffMaxMs?: number;
  /** Wall clock in epoch ms; injected so tests control time. */
  readonly now?: () => number;
  /** 0..1, for the backoff jitter. */
  readonly random?: () => number;
}

/** loading: nothing yet. fresh/stale: served. expired: older than maxStalenessMs, not served. */
export type InventoryState = 'loading' | 'fresh' | 'stale' | 'expired';

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

export interface InventoryStats {
  readonly fullRefreshes: number;
  readonly eventPolls: number;
  readonly syncFailures: number;
  /** Failures in a row, now. */
  readonly failureStreak: number;
}

const round2 = (n: number) => Math.max(0, Math.round(n * 100) / 100);

/** Most events one poll reads; a full page means some were cut, so a full refresh follows. */
export const EVENTS_PAGE = 1_000;
/** More VMs and hosts than this to re-read after one poll: a full refresh is cheaper. */
const MAX_TARGETED_READS = 500;
const TARGETED_READ_CONCURRENCY = 8;
const MIN_BACKOFF_MS = 1_000;
const STATE_CHECK_MS = 1_000;

export class HostInventory {
  private readonly source: InventorySource;
  private readonly logger: Logger;
  private readonly fullRefreshIntervalMs: number;
  private readonly eventsIntervalMs: number;
  private readonly cacheMaxHosts: number;
  private readonly staleAfterMs: number;
  private readonly maxStalenessMs: number;
  private readonly backoffMaxMs: number;
  private readonly now: () => number;
  private readonly random: () => number;

  private current: InventorySnapshot | undefined;
  private generation = 0;
  private lastEventId = 0;
  private lastFullAt = -Infinity;
  private lastSuccessAt = -Infinity;
  private chain: Promise<void> = Promise.resolve();
  private fullInFlight: Promise<InventorySnapshot> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stateTimer: NodeJS.Timeout | undefined;
  private running = false;
  private state: InventoryState = 'loading';
  private failureStreak = 0;
  private streakStartedAt = 0;
  private readonly counters = { fullRefreshes: 0, eventPolls: 0, syncFailures: 0 };
  private readonly stopController = new AbortController();
  private readonly hostFetches = new Map<string, Promise<HostEntry>>();
  private readonly vmFetches = new Map<string, Promise<VmPlacement | undefined>>();
  /** VMs the snapshot did not hold, fetched on demand; emptied by each new generation. */
  private readonly fetchedVms = new LRUCache<string, VmPlacement>({ max: 10_000 });
  private readonly stateListeners = new Set<(state: InventoryState) => void>();

  constructor(options: HostInventoryOptions) {
    this.source = options.source;
    this.logger = options.logger;
    this.fullRefreshIntervalMs = options.fullRefreshIntervalMs;
    this.eventsIntervalMs = options.eventsIntervalMs;
    this.cacheMaxHosts = options.cacheMaxHosts;
    this.staleAfterMs = options.staleAfterMs ?? 2 * this.syncIntervalMs;
    this.maxStalenessMs = options.maxStalenessMs ?? 600_000;
    this.backoffMaxMs = options.backoffMaxMs ?? 60_000;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  private get syncIntervalMs(): number {
    return this.eventsIntervalMs > 0 ? this.eventsIntervalMs : this.fullRefreshIntervalMs;
  }

  /** Loads the inventory now and keeps it fresh until stop(). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.stateTimer = setInterval(() => this.checkState(), STATE_CHECK_MS);
    this.stateTimer.unref();
    this.tick();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    clearInterval(this.stateTimer);
    this.stopController.abort(new ScorerError('cancelled', 'inventory stopped'));
    await this.chain;
  }

  snapshot(): InventorySnapshot | undefined {
    return this.current;
  }

  /** Called whenever the state changes (after a sync, or as time passes). */
  onStateChange(listener: (state: InventoryState) => void): void {
    this.stateListeners.add(listener);
  }

  /** Re-evaluates the state against the clock; runs every second while started. */
  checkState(): InventoryState {
    const snapshot = this.current;
    const state = snapshot === undefined ? 'loading' : this.ageState(snapshot);
    if (state !== this.state) {
      const previous = this.state;
      this.state = state;
      const fields = { previous, state, ageMs: snapshot && this.now() - snapshot.refreshedAt };
      if (state === 'expired') this.logger.error('inventory too old to serve: answering UNAVAILABLE until the engine is back', fields);
      else this.logger.info('inventory state changed', fields);
      for (const listener of this.stateListeners) listener(state);
    }
    return state;
  }

  /** The snapshot a call may be answered from, or the reason it may not. */
  servableSnapshot(): InventorySnapshot {
    const snapshot = this.current;
    if (snapshot === undefined) throw new ScorerError('not_ready', 'the inventory has not loaded from the oVirt engine yet; try again shortly');
    if (this.ageState(snapshot) === 'expired') {
      const age = this.now() - snapshot.refreshedAt;
      throw new ScorerError(
        'not_ready',
        `the inventory is ${Math.round(age / 1000)} s old, more than the maximum staleness of ${Math.round(this.maxStalenessMs / 1000)} s: the oVirt engine has not answered; try again later`,
      );
    }
    return snapshot;
  }

  /** What the snapshot's age makes it: fresh, stale (still served, marked), or expired (not served). */
  private ageState(snapshot: InventorySnapshot): 'fresh' | 'stale' | 'expired' {
    const age = this.now() - snapshot.refreshedAt;
    return age > this.maxStalenessMs ? 'expired' : age > this.staleAfterMs ? 'stale' : 'fresh';
  }

  info(snapshot: InventorySnapshot): InventoryInfo {
    return {
      refreshedAt: snapshot.refreshedAt,
      stale: this.ageState(snapshot) !== 'fresh',
      generation: snapshot.generation,
      hostCount: snapshot.hostCount,
      vmCount: snapshot.vmCount,
    };
  }

  stats(): InventoryStats {
    return { ...this.counters, failureStreak: this.failureStreak };
  }

  /** A full refresh now (after whatever sync is running); concurrent calls share one. */
  refresh(): Promise<InventorySnapshot> {
    this.fullInFlight ??= this.exclusive(() => this.fullRefresh()).finally(() => {
      this.fullInFlight = undefined;
    });
    return this.fullInFlight;
  }

  /** One step of the sync loop now: a full refresh when one is due, else an events poll. */
  sync(): Promise<InventorySnapshot> {
    return this.exclusive(() => this.syncStep());
  }

  /**
   * A view that reads the snapshot's cache directly, or undefined when a VM
   * must be fetched. Score it before yielding (nothing can evict in between);
   * it throws CacheMiss for a host the cache lacks: then use resolve().
   */
  resolveCached(snapshot: InventorySnapshot, need: Pick<CallNeeds, 'vmIds'>): CallView | undefined {
    const vms = new Map<string, VmPlacement | undefined>();
    for (const id of need.vmIds) {
      const placement = snapshot.vms.get(id) ?? this.fetchedVms.get(id);
      if (placement === undefined) return undefined;
      vms.set(id, placement);
    }
    return new CallView(snapshot, undefined, vms);
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

  /** Runs syncs one at a time, whoever asks. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private tick(): void {
    if (!this.running) return;
    this.sync().then(
      () => {
        if (this.failureStreak > 0) {
          this.logger.info('engine sync recovered', { failures: this.failureStreak, downForMs: this.now() - this.streakStartedAt });
        }
        this.failureStreak = 0;
        this.schedule(this.syncIntervalMs);
      },
      (err: unknown) => {
        const e = ScorerError.from(err);
        if (!this.running) return;
        this.counters.syncFailures++;
        if (this.failureStreak++ === 0) {
          this.streakStartedAt = this.now();
          // Once per streak: a dead engine must not flood the log.
          this.logger.warn('engine sync failed; serving the last good inventory and retrying with backoff', { code: e.code, err: e });
        } else {
          this.logger.debug('engine sync failed again', { code: e.code, err: e.message, failures: this.failureStreak });
        }
        this.checkState();
        this.schedule(this.backoffMs());
      },
    );
  }

  /** Exponential from 1 s, capped, with jitter so many scorers do not retry in step. */
  private backoffMs(): number {
    const ceiling = Math.min(this.backoffMaxMs, MIN_BACKOFF_MS * 2 ** Math.min(this.failureStreak - 1, 30));
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), ms);
    this.timer.unref();
  }

  private async syncStep(): Promise<InventorySnapshot> {
    const now = this.now();
    const fullDue =
      this.current === undefined ||
      this.eventsIntervalMs <= 0 ||
      now - this.lastFullAt >= this.fullRefreshIntervalMs ||
      // Out of touch this long, the events since may have aged out of the engine.
      now - this.lastSuccessAt > this.maxStalenessMs;
    return fullDue ? this.fullRefresh() : this.pollEvents();
  }

  private async fullRefresh(): Promise<InventorySnapshot> {
    const signal = this.stopController.signal;
    const started = this.now();
    const t0 = performance.now();
    // How long the event loop (and so every call) was held up while this refresh ran.
    const loopDelay = monitorEventLoopDelay({ resolution: 1 });
    loopDelay.enable();
    // The newest event id first: whatever happens during the read is polled again after it.
    const newestEventId = this.eventsIntervalMs > 0 ? await this.source.newestEventId(signal) : 0;
    const hosts = await this.source.listHosts(signal);
    const builder = new SnapshotBuilder(hosts);
    const pages = await this.source.forEachVmPage((vms) => builder.addVms(vms), signal);
    const snapshot = builder.build({ generation: this.generation + 1, refreshedAt: started, cacheMaxHosts: this.cacheMaxHosts });
    this.lastEventId = newestEventId;
    this.lastFullAt = started;
    this.counters.fullRefreshes++;
    const took = { ms: Math.round(performance.now() - t0), requests: (this.eventsIntervalMs > 0 ? 1 : 0) + 1 + pages };
    this.publish(snapshot);
    loopDelay.disable();
    this.logger.info('inventory refreshed', {
      generation: snapshot.generation,
      hosts: snapshot.hostCount,
      vms: snapshot.vmCount,
      ms: took.ms,
      requests: took.requests,
      rssMb: Math.round(process.memoryUsage.rss() / 2 ** 20),
      heapUsedMb: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
      loopDelayP99Ms: round2(loopDelay.percentile(99) / 1e6 - 1),
      loopDelayMaxMs: round2(loopDelay.max / 1e6 - 1),
    });
    if (snapshot.hostCount > this.cacheMaxHosts) {
      this.logger.warn('host cache smaller than the engine: the rest is fetched on demand', { hosts: snapshot.hostCount, cacheMaxHosts: this.cacheMaxHosts });
    }
    return snapshot;
  }

  private async pollEvents(): Promise<InventorySnapshot> {
    const signal = this.stopController.signal;
    const started = this.now();
    const current = this.current!;
    const from = this.lastEventId;
    const events = await this.source.listEvents(from, EVENTS_PAGE, signal);
    this.counters.eventPolls++;
    // A full page: the engine kept the newest events and cut older ones, so some changes went unseen.
    // (Gaps between ids prove nothing: dismissed events leave them.)
    if (events.length >= EVENTS_PAGE) {
      this.logger.info('more events than one poll reads: full refresh', { from, events: events.length });
      return this.fullRefresh();
    }
    if (events.length === 0) {
      // Nothing new, unless the engine's event log went backwards (restored or reset database).
      const newest = await this.source.newestEventId(signal);
      if (newest < from) {
        this.logger.warn('the engine event log went backwards: full refresh', { from, newest });
        return this.fullRefresh();
      }
      return this.publish(Object.freeze({ ...current, refreshedAt: started }));
    }
    const targets = eventTargets(events, from);
    if (targets.vmIds.size + targets.hostIds.size > MAX_TARGETED_READS) {
      this.logger.info('many objects changed: full refresh', { vms: targets.vmIds.size, hosts: targets.hostIds.size });
      return this.fullRefresh();
    }
    const changes = await this.readChanges(targets.vmIds, targets.hostIds, signal);
    const next =
      changes.vms.size + changes.hosts.size === 0 ? Object.freeze({ ...current, refreshedAt: started }) : applyChanges(current, changes, started);
    this.lastEventId = targets.lastId;
    this.logger.debug('events applied', { events: events.length, vms: changes.vms.size, hosts: changes.hosts.size, generation: next.generation });
    return this.publish(next);
  }

  private async readChanges(vmIds: ReadonlySet<string>, hostIds: ReadonlySet<string>, signal: AbortSignal): Promise<InventoryChanges> {
    const vms = new Map<string, EngineVm | null>();
    const hosts = new Map<string, { host: EngineHost; vms: readonly EngineVm[] } | null>();
    const jobs = [
      ...[...vmIds].map((id) => async () => void vms.set(id, (await this.source.getVm(id, signal)) ?? null)),
      ...[...hostIds].map((id) => async () => {
        const host = await this.source.getHost(id, signal);
        hosts.set(id, host === undefined ? null : { host, vms: await this.source.listVmsOnHost(host, signal) });
      }),
    ];
    const workers = Array.from({ length: Math.min(TARGETED_READ_CONCURRENCY, jobs.length) }, async () => {
      for (let job = jobs.shift(); job !== undefined; job = jobs.shift()) await job();
    });
    await Promise.all(workers);
    return { vms, hosts };
  }

  private publish(snapshot: InventorySnapshot): InventorySnapshot {
    if (snapshot.generation !== this.current?.generation) this.fetchedVms.clear();
    this.generation = snapshot.generation;
    this.current = snapshot;
    this.lastSuccessAt = snapshot.refreshedAt;
    this.checkState();
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
