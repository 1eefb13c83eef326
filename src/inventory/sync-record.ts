/**
 * How the inventory's syncs ended: counted by kind and outcome with their
 * duration, the failures in a row (logged once per streak, so a dead engine
 * does not flood the log) and the recovery.
 */
import { ScorerError } from '../errors';
import type { Logger } from '../log';
import type { Counter, Histogram, Metrics } from '../metrics/metrics';

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

/** full: hosts and every VM page (a poll that had to escalate counts as one); events: an events poll; none: polls paused, nothing read (not counted). */
export type SyncKind = 'full' | 'events' | 'none';

/** A poll takes ms, a full refresh of 100,000 VMs about a minute. */
const SYNC_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export class SyncRecord {
  private readonly counters = { fullRefreshes: 0, eventPolls: 0, syncFailures: 0 };
  private streak = 0;
  private streakStartedAt = 0;
  private readonly syncs: Counter<'kind' | 'outcome'>;
  private readonly syncSeconds: Histogram<'kind'>;

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number,
    metrics: Metrics,
  ) {
    this.syncs = metrics.counter(
      'ksm_scorer_syncs_total',
      'Inventory syncs by kind (full, events) and outcome (success, failure, held: a full refresh read but not published as a possibly broken answer).',
      ['kind', 'outcome'],
    );
    this.syncSeconds = metrics.histogram(
      'ksm_scorer_sync_duration_seconds',
      'Inventory sync time by kind, failed ones included.',
      ['kind'],
      SYNC_BUCKETS,
    );
    const streak = () => this.streak;
    metrics.gauge('ksm_scorer_sync_failure_streak', 'Inventory syncs failed in a row, now (0 once one succeeds).', [], function collect() {
      this.set(streak());
    });
  }

  /** Failures in a row, now. */
  get failureStreak(): number {
    return this.streak;
  }

  /** A full refresh published, or an events poll that read the engine's events. */
  count(what: 'fullRefreshes' | 'eventPolls'): void {
    this.counters[what]++;
  }

  stats(): SyncStats {
    return { ...this.counters, failureStreak: this.streak };
  }

  /** A sync of `kind` that began at `t0` (performance.now) read and published; `kind` undefined: cut short by stop(), not counted. */
  succeeded(kind: SyncKind | undefined, t0: number): void {
    if (this.streak > 0) {
      this.logger.info('engine sync recovered', { failures: this.streak, downForMs: this.now() - this.streakStartedAt });
    }
    this.streak = 0;
    if (kind !== undefined) this.observe(kind, 'success', t0);
  }

  /** A sync failed (or was held); `loaded`: a snapshot is being served meanwhile. */
  failed(kind: SyncKind, t0: number, e: ScorerError, loaded: boolean): void {
    this.counters.syncFailures++;
    if (this.streak++ === 0) this.streakStartedAt = this.now();
    if (e instanceof RefreshHeld) {
      // Each held refresh was logged with its reasons when it was read.
    } else if (this.streak === 1) {
      // Once per streak: a dead engine must not flood the log.
      const what = loaded
        ? 'engine sync failed; serving the last good inventory and retrying with backoff'
        : 'engine sync failed: no inventory has loaded yet; retrying with backoff';
      this.logger.warn(what, { code: e.code, endpoint: e.endpoint, status: e.status, err: e });
    } else {
      this.logger.debug('engine sync failed again', { code: e.code, err: e.message, failures: this.streak });
    }
    this.observe(kind, e instanceof RefreshHeld ? 'held' : 'failure', t0);
  }

  /** held: a full refresh read but not published (publish-guard.ts). */
  private observe(kind: SyncKind, outcome: 'success' | 'failure' | 'held', t0: number): void {
    this.syncs.inc({ kind, outcome });
    this.syncSeconds.observe({ kind }, (performance.now() - t0) / 1000);
  }
}
