/**
 * The sync loop: the only writer of the inventory. One sequential loop (so
 * nothing overlaps): a full refresh at start and every refresh interval, and
 * between them an events poll that re-reads only what the events name.
 * Failures back off exponentially with jitter and leave the last good
 * snapshot in place. Records the engine sent that cannot be used are left
 * out and reported, never a reason to fail; a refresh that looks like a
 * broken answer is held (publish-guard.ts). Each success hands a new snapshot
 * to `publish`, with how it was made from the last one. Each sync is counted
 * by kind and outcome, with its duration.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { InventorySettings } from '../config/load';
import { ScorerError } from '../errors';
import type { Logger } from '../log';
import { type Counter, type Histogram, Metrics } from '../metrics/metrics';
import type { EngineCluster, EngineEvent, EngineHost, EngineVm } from '../ovirt/model';
import { BadRecord, type RecordRejections, type RejectionSummary, searchableHostName } from '../ovirt/parse';
import { eventTargets } from './events';
import { isLargeFall, PublishGuard } from './publish-guard';
import { applyChanges, type InventoryChanges, type InventorySnapshot, SnapshotBuilder } from './snapshot';

/**
 * The part of the engine the inventory reads; EngineClient implements it.
 * `rejections`: where a list's unusable records are counted; a sync passes a
 * tally of its own, so what callers' reads leave out meanwhile is not its news.
 */
export interface InventorySource {
  listHosts(signal?: AbortSignal, rejections?: RecordRejections): Promise<EngineHost[]>;
  listClusters(signal?: AbortSignal, rejections?: RecordRejections): Promise<EngineCluster[]>;
  forEachVmPage(onPage: (vms: EngineVm[]) => void, signal?: AbortSignal, rejections?: RecordRejections): Promise<number>;
  getHost(id: string, signal?: AbortSignal): Promise<EngineHost | undefined>;
  getVm(id: string, signal?: AbortSignal): Promise<EngineVm | undefined>;
  listVmsOnHost(host: EngineHost, signal?: AbortSignal): Promise<EngineVm[]>;
  listEvents(from: number, max: number, signal?: AbortSignal, rejections?: RecordRejections): Promise<EngineEvent[]>;
  newestEventId(signal?: AbortSignal): Promise<number>;
  /** Records left out of answers outside a sync's own lists (single reads, callers' reads), logged at the next sync. */
  readonly rejections?: RecordRejections;
}

/** How a published snapshot was made from the one before: what another process needs to follow along. */
export type SnapshotUpdate =
  | { readonly kind: 'full' }
  | { readonly kind: 'changes'; readonly changes: InventoryChanges }
  /** The same data, confirmed at a new refreshedAt. */
  | { readonly kind: 'refreshed' };

const FULL: SnapshotUpdate = Object.freeze({ kind: 'full' });
const REFRESHED: SnapshotUpdate = Object.freeze({ kind: 'refreshed' });

export type SyncSettings = Pick<InventorySettings, 'refreshIntervalMs' | 'eventsIntervalMs' | 'maxStalenessMs' | 'backoffMaxMs' | 'maxRejectedPercent' | 'maxDropPercent'>;

/** A full refresh that was read but not published (publish-guard.ts): counted as outcome `held`, retried with backoff. */
export class RefreshHeld extends ScorerError {
  constructor(why: string) {
    super('engine_protocol', `full refresh not published: ${why}`);
  }
}

export interface SyncStats {
  readonly fullRefreshes: number;
  readonly eventPolls: number;
  readonly syncFailures: number;
  /** Failures in a row, now. */
  readonly failureStreak: number;
}

/** Most events one poll reads; a full page means some were cut, so a full refresh follows. */
export const EVENTS_PAGE = 1_000;
/** More VMs and hosts than this to re-read after one poll: a full refresh is cheaper. */
const MAX_TARGETED_READS = 500;
const TARGETED_READ_CONCURRENCY = 8;
const MIN_BACKOFF_MS = 1_000;
/** A poll takes ms, a full refresh of 100,000 VMs about a minute. */
const SYNC_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** full: hosts and every VM page (a poll that had to escalate counts as one); events: an events poll; none: polls paused, nothing read (not counted). */
type SyncKind = 'full' | 'events' | 'none';
/** held: a full refresh read but not published (publish-guard.ts). */
type SyncOutcome = 'success' | 'failure' | 'held';
const MAX_EXAMPLE_HOSTS = 3;
/** How long refreshes that agree on a large fall must span before it is published (at most a quarter of the maximum staleness). */
const CONFIRM_SPAN_MS = 120_000;

const round2 = (n: number) => Math.max(0, Math.round(n * 100) / 100);

/** A single record the engine answered but the inventory cannot use: as good as not there (a full refresh leaves it out too). */
export async function unusableAsGone<T>(read: Promise<T | undefined>): Promise<T | undefined> {
  try {
    return await read;
  } catch (err) {
    if (err instanceof ScorerError && err.cause instanceof BadRecord) return undefined;
    throw err;
  }
}

export class InventorySync {
  private generation = 0;
  private current: InventorySnapshot | undefined;
  /** Where the next events poll starts; undefined: the engine's newest event could not be read, so no polls until a full refresh can. */
  private lastEventId: number | undefined = 0;
  private lastFullAt = -Infinity;
  private lastSuccessAt = -Infinity;
  private chain: Promise<void> = Promise.resolve();
  private fullInFlight: Promise<InventorySnapshot> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private failureStreak = 0;
  private streakStartedAt = 0;
  private readonly counters = { fullRefreshes: 0, eventPolls: 0, syncFailures: 0 };
  private readonly stopController = new AbortController();
  /** What the sync in flight turned out to be. */
  private kind: SyncKind = 'full';
  private readonly syncs: Counter<'kind' | 'outcome'>;
  private readonly syncSeconds: Histogram<'kind'>;
  private readonly guard: PublishGuard;
  /** A refresh is held: every sync is a full refresh until one is published, so nothing marks the held data fresh. */
  private holding = false;
  /** The newest event id could not be read at the last try (said once, at warn). */
  private newestEventUnreadable = false;
  /** Hosts that VMs named but the host list lacked at the last full refresh. */
  private unlistedBefore: ReadonlySet<string> = new Set();

  constructor(
    private readonly source: InventorySource,
    private readonly settings: SyncSettings,
    private readonly logger: Logger,
    /** `ageMs`: how long ago the snapshot's data was read, on the monotonic clock. */
    private readonly publish: (snapshot: InventorySnapshot, update: SnapshotUpdate, ageMs: number) => void,
    private readonly failed: (err: ScorerError) => void,
    private readonly now: () => number,
    private readonly random: () => number,
    metrics: Metrics = new Metrics(),
    /** A clock that never jumps (ms): ages of what is published, and the agreement span of held refreshes. */
    private readonly monotonicNow: () => number = () => performance.now(),
  ) {
    // Agreeing refreshes must span a while, yet leave time to publish before the inventory expires.
    this.guard = new PublishGuard({ ...settings, confirmSpanMs: Math.min(CONFIRM_SPAN_MS, settings.maxStalenessMs / 4) });
    this.syncs = metrics.counter(
      'ksm_scorer_syncs_total',
      'Inventory syncs by kind (full, events) and outcome (success, failure, held: a full refresh read but not published as a possibly broken answer).',
      ['kind', 'outcome'],
    );
    const unlisted = () => this.unlistedBefore.size;
    metrics.gauge('ksm_scorer_inventory_unlisted_hosts', 'Hosts that VMs run on but the engine did not list at the last full refresh (a host added or removed meanwhile, or hidden from the account).', [], function collect() {
      this.set(unlisted());
    });
    this.syncSeconds = metrics.histogram('ksm_scorer_sync_duration_seconds', 'Inventory sync time by kind, failed ones included.', ['kind'], SYNC_BUCKETS);
    const streak = () => this.failureStreak;
    metrics.gauge('ksm_scorer_sync_failure_streak', 'Inventory syncs failed in a row, now (0 once one succeeds).', [], function collect() {
      this.set(streak());
    });
  }

  /** The time between two syncs: the events poll, or the full refresh without events. */
  get intervalMs(): number {
    return this.settings.eventsIntervalMs > 0 ? this.settings.eventsIntervalMs : this.settings.refreshIntervalMs;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.tick();
  }

  /** Stops the loop and cancels the engine requests of the sync in flight. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.stopController.abort(new ScorerError('cancelled', 'inventory stopped'));
    await this.chain;
  }

  stats(): SyncStats {
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

  /** Runs syncs one at a time, whoever asks, and records how each ended. */
  private exclusive(fn: () => Promise<InventorySnapshot>): Promise<InventorySnapshot> {
    let t0 = 0;
    const run = this.chain
      .then(() => {
        t0 = performance.now();
        return fn();
      })
      .then(
        (snapshot) => {
          if (this.kind === 'none') return snapshot; // nothing was read: neither a success nor a sync
          this.succeeded();
          this.observe('success', t0);
          return snapshot;
        },
        (err: unknown) => {
          this.recordFailure(ScorerError.from(err));
          this.observe(err instanceof RefreshHeld ? 'held' : 'failure', t0);
          throw err;
        },
      );
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private observe(outcome: SyncOutcome, t0: number): void {
    if (this.stopController.signal.aborted) return; // cut short by stop(): neither
    this.syncs.inc({ kind: this.kind, outcome });
    this.syncSeconds.observe({ kind: this.kind }, (performance.now() - t0) / 1000);
  }

  private succeeded(): void {
    if (this.failureStreak > 0) {
      this.logger.info('engine sync recovered', { failures: this.failureStreak, downForMs: this.now() - this.streakStartedAt });
    }
    this.failureStreak = 0;
  }

  private recordFailure(e: ScorerError): void {
    if (this.stopController.signal.aborted) return;
    this.counters.syncFailures++;
    if (this.failureStreak++ === 0) this.streakStartedAt = this.now();
    if (e instanceof RefreshHeld) {
      // Each held refresh was logged with its reasons when it was read.
    } else if (this.failureStreak === 1) {
      // Once per streak: a dead engine must not flood the log.
      const what = this.current === undefined ? 'engine sync failed: no inventory has loaded yet; retrying with backoff' : 'engine sync failed; serving the last good inventory and retrying with backoff';
      this.logger.warn(what, { code: e.code, endpoint: e.endpoint, status: e.status, err: e });
    } else {
      this.logger.debug('engine sync failed again', { code: e.code, err: e.message, failures: this.failureStreak });
    }
    this.failed(e);
  }

  private tick(): void {
    if (!this.running) return;
    this.sync().then(
      () => this.schedule(this.intervalMs),
      () => this.schedule(this.backoffMs()),
    );
  }

  /** Exponential from 1 s, capped, with jitter so many scorers do not retry in step. */
  private backoffMs(): number {
    const ceiling = Math.min(this.settings.backoffMaxMs, MIN_BACKOFF_MS * 2 ** Math.min(this.failureStreak - 1, 30));
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
      this.holding ||
      this.settings.eventsIntervalMs <= 0 ||
      now - this.lastFullAt >= this.settings.refreshIntervalMs ||
      // This machine's clock went back: the interval cannot be told, so the refresh is due now rather than an hour late.
      now < this.lastFullAt ||
      // Out of touch this long, the events since may have aged out of the engine.
      now - this.lastSuccessAt > this.settings.maxStalenessMs;
    if (fullDue) return this.fullRefresh();
    // Events suspended: nothing is read or confirmed, so the data ages (stale, flagged) until the next full refresh.
    if (this.lastEventId === undefined) {
      this.kind = 'none';
      return this.current!;
    }
    return this.pollEvents(this.lastEventId);
  }

  /** The newest event id, or undefined when the engine's answer is unreadable (an event id beyond 2^53, ...). */
  private async readNewestEventId(signal: AbortSignal): Promise<number | undefined> {
    try {
      const id = await this.source.newestEventId(signal);
      this.newestEventUnreadable = false;
      return id;
    } catch (err) {
      // It only says where polls start: unreadable (a bad answer, a 403, a 5xx, a timeout), polls pause, the refresh goes on.
      const e = ScorerError.from(err);
      if (e.code === 'cancelled' || signal.aborted) throw err;
      // Once until it can be read again: an engine that is down must not add a line to every retry.
      const fields = { endpoint: e.endpoint ?? 'GET /events', status: e.status, code: e.code, err: e.message, refreshIntervalMs: this.settings.refreshIntervalMs };
      const what = 'the engine newest event cannot be read: no events polls until a full refresh can read it; changes show at full refreshes';
      if (this.newestEventUnreadable) this.logger.debug(what, fields);
      else this.logger.warn(what, fields);
      this.newestEventUnreadable = true;
      return undefined;
    }
  }

  private async fullRefresh(): Promise<InventorySnapshot> {
    this.kind = 'full';
    const signal = this.stopController.signal;
    const started = this.now();
    const readAt = this.monotonicNow();
    const t0 = performance.now();
    // How long the event loop (and so every call) was held up while this refresh ran.
    const loopDelay = monitorEventLoopDelay({ resolution: 1 });
    loopDelay.enable();
    // What single reads left out since the last sync is theirs; this refresh counts its own lists.
    this.logRejections(this.source.rejections?.take());
    const rejections = this.source.rejections?.fresh();
    try {
      // The newest event id first: whatever happens during the read is polled again after it.
      const newestEventId = this.settings.eventsIntervalMs > 0 ? await this.readNewestEventId(signal) : undefined;
      const hosts = await this.source.listHosts(signal, rejections);
      const clusters = await this.readClusters(signal, rejections);
      const builder = new SnapshotBuilder(hosts, clusters, rejections, this.current?.vmCount);
      const pages = await this.source.forEachVmPage((vms) => builder.addVms(vms), signal, rejections);
      const snapshot = builder.build({ generation: this.generation + 1, refreshedAt: started });
      this.logUnlistedHosts(builder.unlistedHosts, rejections);
      const rejected = rejections?.take();
      this.logRejections(rejected);
      const verdict = this.guard.check(
        { snapshot, leftOutHosts: rejected?.leftOutByKind.host ?? 0, leftOutVms: rejected?.leftOutByKind.vm ?? 0, unlistedHosts: builder.unlistedHosts.size },
        this.current,
        readAt,
      );
      if (!verdict.publish) {
        this.holding = true;
        this.logger.warn(this.current === undefined ? 'full refresh not published: nothing is served until one is' : 'full refresh not published: serving the last good inventory, which ages', {
          why: verdict.why,
          ...(this.current === undefined ? {} : { servingGeneration: this.current.generation, servingAgeMs: started - this.current.refreshedAt }),
        });
        throw new RefreshHeld(verdict.why);
      }
      if (verdict.confirmed !== undefined) this.logger.warn('full refresh published after agreeing refreshes', { why: verdict.confirmed });
      this.holding = false;
      this.lastEventId = newestEventId;
      this.lastFullAt = started;
      this.counters.fullRefreshes++;
      this.accept(snapshot, FULL, readAt);
      this.logger.info('inventory refreshed', {
        generation: snapshot.generation,
        hosts: snapshot.hostCount,
        vms: snapshot.vmCount,
        ms: Math.round(performance.now() - t0),
        requests: (this.settings.eventsIntervalMs > 0 ? 1 : 0) + 2 + pages,
        rssMb: Math.round(process.memoryUsage.rss() / 2 ** 20),
        heapUsedMb: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
        loopDelayP99Ms: round2(loopDelay.percentile(99) / 1e6 - 1),
        loopDelayMaxMs: round2(loopDelay.max / 1e6 - 1),
      });
      return snapshot;
    } finally {
      loopDelay.disable();
    }
  }

  /**
   * The clusters, which only describe hosts (name, KSM policy): when they
   * cannot be read (an account refused /clusters, a proxy's 404, a bad answer)
   * hosts load with their cluster unknown, and the next full refresh tries again.
   */
  private async readClusters(signal: AbortSignal, rejections: RecordRejections | undefined): Promise<EngineCluster[]> {
    try {
      return await this.source.listClusters(signal, rejections);
    } catch (err) {
      const e = ScorerError.from(err);
      if (e.code === 'cancelled' || signal.aborted) throw err;
      this.logger.warn('the engine clusters cannot be read: hosts load with their cluster unknown (cluster_name "", ksm_enabled false); retried at the next full refresh', {
        endpoint: e.endpoint ?? 'GET /clusters',
        status: e.status,
        code: e.code,
        err: e.message,
      });
      return [];
    }
  }

  /**
   * VMs on hosts the host list lacks. Once, it is a race (a host added or
   * removed between the two reads); at two refreshes in a row, the account
   * is probably not allowed to see those hosts.
   */
  private logUnlistedHosts(unlisted: ReadonlyMap<string, number>, rejections: RecordRejections | undefined): void {
    // A host listed but left out as unusable is in the records line already: it is neither a race nor a permission.
    const missing = [...unlisted].filter(([id]) => rejections?.leftOutHost(id) !== true);
    const before = this.unlistedBefore;
    this.unlistedBefore = new Set(missing.map(([id]) => id));
    if (missing.length === 0) return;
    const again = missing.map(([id]) => id).filter((id) => before.has(id));
    let vms = 0;
    for (const [, n] of missing) vms += n;
    const fields = { hosts: missing.length, vms, examples: (again.length > 0 ? again : missing.map(([id]) => id)).slice(0, MAX_EXAMPLE_HOSTS) };
    if (again.length > 0) {
      this.logger.warn(
        'VMs run on hosts the engine did not list at two full refreshes in a row: the service account probably lacks permission to see those hosts (docs/deployment.md says which role it needs); the VMs are kept and score by vm_id, and a call naming such a host reads it from the engine',
        { ...fields, hostsAgain: again.length },
      );
    } else {
      this.logger.info('VMs name hosts the host list lacks (a host added or removed while the refresh read the engine?): the VMs are kept; the next full refresh reads the host list again', fields);
    }
  }

  private async pollEvents(from: number): Promise<InventorySnapshot> {
    this.kind = 'events';
    const signal = this.stopController.signal;
    const started = this.now();
    const readAt = this.monotonicNow();
    const current = this.current!;
    // Events left out (unusable) are counted and skipped: the next full refresh sees whatever they named.
    const rejections = this.source.rejections?.fresh();
    let events: EngineEvent[];
    let highestLeftOut: number | undefined;
    try {
      events = await this.source.listEvents(from, EVENTS_PAGE, signal, rejections);
    } catch (err) {
      // An answer we cannot read at all might hold a change that matters, and the same poll would fail again.
      if (!(err instanceof ScorerError) || err.code !== 'engine_protocol') throw err;
      this.logger.warn('events the engine sent cannot be read: full refresh', { from, err });
      return this.fullRefresh();
    } finally {
      highestLeftOut = rejections?.highestEventId();
      this.logRejections(rejections?.take());
    }
    this.counters.eventPolls++;
    // A full page: the engine kept the newest events and cut older ones, so some changes went unseen.
    // (Gaps between ids prove nothing: dismissed events leave them.)
    if (events.length >= EVENTS_PAGE) {
      this.logger.info('more events than one poll reads: full refresh', { from, events: events.length });
      return this.fullRefresh();
    }
    if (events.length === 0 && highestLeftOut !== undefined && highestLeftOut > from) {
      // Only events left out: nothing to apply, and the next poll starts after them.
      this.lastEventId = highestLeftOut;
      return this.accept(Object.freeze({ ...current, refreshedAt: started }), REFRESHED, readAt);
    }
    if (events.length === 0) {
      // Nothing new, unless the engine's event log went backwards (restored or reset database).
      let newest: number;
      try {
        newest = await this.source.newestEventId(signal);
      } catch (err) {
        // The newest event is unreadable (its id is not a number): a full refresh decides where polls go on, if at all.
        if (!(err instanceof ScorerError) || err.code !== 'engine_protocol') throw err;
        return this.fullRefresh();
      }
      if (newest < from) {
        this.logger.warn('the engine event log went backwards: full refresh', { from, newest });
        return this.fullRefresh();
      }
      return this.accept(Object.freeze({ ...current, refreshedAt: started }), REFRESHED, readAt);
    }
    // Events left out with a readable id are past too: the next poll starts after them.
    const targets = eventTargets(events, Math.max(from, highestLeftOut ?? from));
    if (targets.vmIds.size + targets.hostIds.size > MAX_TARGETED_READS) {
      this.logger.info('many objects changed: full refresh', { vms: targets.vmIds.size, hosts: targets.hostIds.size });
      return this.fullRefresh();
    }
    const changes = await this.readChanges(targets.vmIds, targets.hostIds, signal);
    if (changes === 'full refresh') return this.fullRefresh();
    // A poll must not do what a full refresh would be held for (every re-read answering 404 through a broken proxy).
    const goneVms = [...changes.vms.values()].filter((vm) => vm === null).length;
    const goneHosts = [...changes.hosts.entries()].filter(([id, host]) => host === null && current.hosts.has(id)).length;
    if (isLargeFall(current.vmCount, goneVms, this.settings.maxDropPercent) || isLargeFall(current.hostCount, goneHosts, this.settings.maxDropPercent)) {
      this.logger.warn('an events poll would remove too many hosts or VMs at once: full refresh (held unless confirmed)', { goneVms, vms: current.vmCount, goneHosts, hosts: current.hostCount });
      return this.fullRefresh();
    }
    const update: SnapshotUpdate = changes.vms.size + changes.hosts.size === 0 ? REFRESHED : { kind: 'changes', changes };
    const next = update.kind === 'changes' ? applyChanges(current, changes, started) : Object.freeze({ ...current, refreshedAt: started });
    this.lastEventId = targets.lastId;
    this.logRejections(this.source.rejections?.take());
    this.logger.debug('events applied', { events: events.length, vms: changes.vms.size, hosts: changes.hosts.size, generation: next.generation });
    return this.accept(next, update, readAt);
  }

  /**
   * Re-reads what events named; 'full refresh' when a host's VMs cannot be
   * searched for by its name. A record that reads back unusable is left out,
   * as a full refresh leaves it out (counted by the client), not re-read in full.
   */
  private async readChanges(vmIds: ReadonlySet<string>, hostIds: ReadonlySet<string>, signal: AbortSignal): Promise<InventoryChanges | 'full refresh'> {
    const vms = new Map<string, EngineVm | null>();
    const hosts = new Map<string, { host: EngineHost; vms: readonly EngineVm[] } | null>();
    let unsearchable = false;
    const jobs = [
      ...[...vmIds].map((id) => async () => void vms.set(id, (await unusableAsGone(this.source.getVm(id, signal))) ?? null)),
      ...[...hostIds].map((id) => async () => {
        const host = await unusableAsGone(this.source.getHost(id, signal));
        if (host !== undefined && !searchableHostName(host.name)) unsearchable = true;
        else hosts.set(id, host === undefined ? null : { host, vms: await this.source.listVmsOnHost(host, signal) });
      }),
    ];
    const workers = Array.from({ length: Math.min(TARGETED_READ_CONCURRENCY, jobs.length) }, async () => {
      for (let job = jobs.shift(); job !== undefined && !unsearchable; job = jobs.shift()) await job();
    });
    await Promise.all(workers);
    return unsearchable ? 'full refresh' : { vms, hosts };
  }

  /** One line per sync for what the engine sent that could not be used: counts per reason, a few example ids. */
  private logRejections(rejected: RejectionSummary | undefined): void {
    if (rejected === undefined) return;
    const fields = { leftOut: rejected.leftOut, reasons: rejected.reasons, examples: rejected.examples, example: rejected.example };
    if (rejected.leftOut > 0) this.logger.warn('engine records left out: the rest of the engine data is used', fields);
    else this.logger.info('engine records listed twice: each is used once, where it was listed last', fields);
  }

  /** `readAt`: when (monotonic ms) the read that made it began. */
  private accept(snapshot: InventorySnapshot, update: SnapshotUpdate, readAt: number): InventorySnapshot {
    this.generation = snapshot.generation;
    this.current = snapshot;
    this.lastSuccessAt = snapshot.refreshedAt;
    this.publish(snapshot, update, Math.max(0, this.monotonicNow() - readAt));
    return snapshot;
  }
}
