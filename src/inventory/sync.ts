/**
 * The sync loop: the only writer of the inventory. One sequential loop (so
 * nothing overlaps): a full refresh at start and every refresh interval, and
 * between them an events poll that re-reads only what the events name.
 * Failures back off exponentially with jitter and leave the last good
 * snapshot in place; a refresh that looks like a broken answer is held
 * (publish-guard.ts). What is read, and what the engine sent that cannot be
 * used, is engine-reads.ts's. Each success hands a new snapshot to the sink
 * (generation-sink.ts), with how it was made from the last one. Each sync is
 * counted by kind and outcome, with its duration.
 */
import { backoffMs } from '../backoff';
import type { InventorySettings } from '../config/load';
import { ScorerError } from '../errors';
import type { Logger } from '../log';
import { LoopDelay } from '../metrics/loop-delay';
import { Metrics } from '../metrics/metrics';
import { EngineReads, EVENTS_PAGE, type InventorySource } from './engine-reads';
import { eventTargets } from './events';
import type { GenerationSink, SnapshotUpdate } from './generation-sink';
import { pollFall, PublishGuard } from './publish-guard';
import { applyChanges, type InventorySnapshot } from './snapshot';
import { RefreshHeld, type SyncKind, SyncRecord, type SyncStats } from './sync-record';

const FULL: SnapshotUpdate = Object.freeze({ kind: 'full' });
const REFRESHED: SnapshotUpdate = Object.freeze({ kind: 'refreshed' });

export type SyncSettings = Pick<
  InventorySettings,
  'refreshIntervalMs' | 'eventsIntervalMs' | 'maxStalenessMs' | 'backoffMaxMs' | 'maxRejectedPercent' | 'maxDropPercent'
>;

/** More VMs and hosts than this to re-read after one poll: a full refresh is cheaper. */
const MAX_TARGETED_READS = 500;
const MIN_BACKOFF_MS = 1_000;
/** How long refreshes that agree on a large fall must span before it is published (at most a quarter of the maximum staleness). */
const CONFIRM_SPAN_MS = 120_000;

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
  private readonly record: SyncRecord;
  private readonly stopController = new AbortController();
  /** What the sync in flight turned out to be. */
  private kind: SyncKind = 'full';
  private readonly guard: PublishGuard;
  /** A refresh is held: every sync is a full refresh until one is published, so nothing marks the held data fresh. */
  private holding = false;
  private readonly reads: EngineReads;

  constructor(
    source: InventorySource,
    private readonly settings: SyncSettings,
    private readonly logger: Logger,
    /** Where each generation goes, and each failed sync. */
    private readonly sink: GenerationSink,
    private readonly now: () => number,
    private readonly random: () => number,
    metrics: Metrics = new Metrics(),
    /** A clock that never jumps (ms): ages of what is published, and the agreement span of held refreshes. */
    private readonly monotonicNow: () => number = () => performance.now(),
  ) {
    // Agreeing refreshes must span a while, yet leave time to publish before the inventory expires.
    this.guard = new PublishGuard({ ...settings, confirmSpanMs: Math.min(CONFIRM_SPAN_MS, settings.maxStalenessMs / 4) });
    this.record = new SyncRecord(logger, now, metrics);
    this.reads = new EngineReads(source, settings, logger, metrics);
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
    return this.record.stats();
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
          this.record.succeeded(this.stopController.signal.aborted ? undefined : this.kind, t0);
          return snapshot;
        },
        (err: unknown) => {
          // Cut short by stop(): not a failure.
          if (!this.stopController.signal.aborted) {
            const e = ScorerError.from(err);
            this.record.failed(this.kind, t0, e, this.current !== undefined);
            this.sink.syncFailed(e.message);
          }
          throw err;
        },
      );
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private tick(): void {
    if (!this.running) return;
    this.sync().then(
      () => this.schedule(this.intervalMs),
      // From 1 s, capped, with jitter so many scorers do not retry in step.
      () =>
        this.schedule(
          backoffMs(this.record.failureStreak, { baseMs: MIN_BACKOFF_MS, maxMs: this.settings.backoffMaxMs, random: this.random }),
        ),
    );
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

  private async fullRefresh(): Promise<InventorySnapshot> {
    this.kind = 'full';
    const signal = this.stopController.signal;
    const started = this.now();
    const readAt = this.monotonicNow();
    const t0 = performance.now();
    const loopDelay = new LoopDelay();
    try {
      const read = await this.reads.full(signal, this.current, { generation: this.generation + 1, refreshedAt: started });
      const { snapshot } = read;
      const verdict = this.guard.check(read, this.current, readAt);
      if (!verdict.publish) {
        this.holding = true;
        this.logger.warn(
          this.current === undefined
            ? 'full refresh not published: nothing is served until one is'
            : 'full refresh not published: serving the last good inventory, which ages',
          {
            why: verdict.why,
            ...(this.current === undefined
              ? {}
              : { servingGeneration: this.current.generation, servingAgeMs: started - this.current.refreshedAt }),
          },
        );
        throw new RefreshHeld(verdict.why);
      }
      if (verdict.confirmed !== undefined) this.logger.warn('full refresh published after agreeing refreshes', { why: verdict.confirmed });
      this.holding = false;
      this.lastEventId = read.newestEventId;
      this.lastFullAt = started;
      this.record.count('fullRefreshes');
      this.accept(snapshot, FULL, readAt);
      this.logger.info('inventory refreshed', {
        generation: snapshot.generation,
        hosts: snapshot.hostCount,
        vms: snapshot.vmCount,
        ms: Math.round(performance.now() - t0),
        requests: read.requests,
        rssMb: Math.round(process.memoryUsage.rss() / 2 ** 20),
        heapUsedMb: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
        loopDelayP99Ms: loopDelay.p99Ms(),
        loopDelayMaxMs: loopDelay.maxMs(),
      });
      return snapshot;
    } finally {
      loopDelay.stop();
    }
  }

  private async pollEvents(from: number): Promise<InventorySnapshot> {
    this.kind = 'events';
    const signal = this.stopController.signal;
    const started = this.now();
    const readAt = this.monotonicNow();
    const current = this.current!;
    const polled = await this.reads.events(from, signal);
    if (polled === 'unreadable') return this.fullRefresh();
    const { events, highestLeftOut } = polled;
    this.record.count('eventPolls');
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
      const newest = await this.reads.eventLogEnd(signal);
      // The newest event is unreadable (its id is not a number): a full refresh decides where polls go on, if at all.
      if (newest === undefined) return this.fullRefresh();
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
    const changes = await this.reads.changes(targets.vmIds, targets.hostIds, signal);
    if (changes === 'full refresh') return this.fullRefresh();
    // A poll must not do what a full refresh would be held for.
    const fall = pollFall(current, changes, this.settings.maxDropPercent);
    if (fall !== undefined) {
      this.logger.warn('an events poll would remove too many hosts or VMs at once: full refresh (held unless confirmed)', fall);
      return this.fullRefresh();
    }
    const update: SnapshotUpdate = changes.vms.size + changes.hosts.size === 0 ? REFRESHED : { kind: 'changes', changes };
    const next = update.kind === 'changes' ? applyChanges(current, changes, started) : Object.freeze({ ...current, refreshedAt: started });
    this.lastEventId = targets.lastId;
    this.reads.logLeftOut();
    this.logger.debug('events applied', {
      events: events.length,
      vms: changes.vms.size,
      hosts: changes.hosts.size,
      generation: next.generation,
    });
    return this.accept(next, update, readAt);
  }

  /** `readAt`: when (monotonic ms) the read that made it began. */
  private accept(snapshot: InventorySnapshot, update: SnapshotUpdate, readAt: number): InventorySnapshot {
    this.generation = snapshot.generation;
    this.current = snapshot;
    this.lastSuccessAt = snapshot.refreshedAt;
    this.sink.publish(snapshot, Math.max(0, this.monotonicNow() - readAt), update);
    return snapshot;
  }
}
