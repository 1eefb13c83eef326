/**
 * How old the inventory may be: a pure age -> state rule, and Freshness,
 * which holds the current snapshot, tells listeners when its state changes,
 * and decides whether a call may be answered from it.
 */
import { ScorerError } from '../errors';
import type { Logger } from '../log';
import type { InventorySnapshot } from './snapshot';

/** loading: nothing yet. fresh/stale: served. expired: older than the maximum staleness, not served. */
export type InventoryState = 'loading' | 'fresh' | 'stale' | 'expired';

export interface FreshnessLimits {
  /** Age after which answers say `stale`. */
  readonly staleAfterMs: number;
  /** Age after which the inventory is not served at all. */
  readonly maxStalenessMs: number;
}

/** What a snapshot of this age is. */
export function ageState(ageMs: number, limits: FreshnessLimits): 'fresh' | 'stale' | 'expired' {
  return ageMs > limits.maxStalenessMs ? 'expired' : ageMs > limits.staleAfterMs ? 'stale' : 'fresh';
}

export interface InventoryInfo {
  readonly refreshedAt: number;
  readonly stale: boolean;
  readonly generation: number;
  readonly hostCount: number;
  readonly vmCount: number;
}

export class Freshness {
  private current: InventorySnapshot | undefined;
  private state: InventoryState = 'loading';
  private readonly listeners = new Set<(state: InventoryState) => void>();
  /** Why nothing has loaded yet, for the caller's message (the log has the details). */
  private loadFailure: string | undefined;

  /** When the current snapshot was published (monotonic ms), and how old it was then. */
  private publishedAt = 0;
  private ageAtPublish = 0;

  constructor(
    private readonly limits: FreshnessLimits,
    private readonly logger: Logger,
    /** Wall clock in epoch ms; injected so tests control time. */
    private readonly now: () => number,
    /**
     * A clock that never jumps (ms): ages are measured on it, so this machine's clock set an hour
     * forward does not expire a fresh inventory, nor set back make an old one look fresh.
     */
    private readonly monotonicNow: () => number = () => performance.now(),
  ) {}

  snapshot(): InventorySnapshot | undefined {
    return this.current;
  }

  /**
   * `ageMs`: how long ago the data was read, when the publisher measured it on a clock that never
   * jumps (the sync loop, the primary for its workers); else it is taken from the wall clock.
   */
  publish(snapshot: InventorySnapshot, ageMs?: number): void {
    this.current = snapshot;
    this.ageAtPublish = Math.max(0, ageMs ?? this.now() - snapshot.refreshedAt);
    this.publishedAt = this.monotonicNow();
    this.loadFailure = undefined;
    this.check();
  }

  /** How long ago the current snapshot was read from the engine (ms); undefined before the first. */
  age(): number | undefined {
    return this.current === undefined ? undefined : this.ageAtPublish + (this.monotonicNow() - this.publishedAt);
  }

  /** A sync failed; until the first load, calls are told so. */
  syncFailed(reason: string): void {
    if (this.current === undefined) this.loadFailure = reason;
    this.check();
  }

  onStateChange(listener: (state: InventoryState) => void): void {
    this.listeners.add(listener);
  }

  /** Re-evaluates the state against the clock, telling listeners of a change. */
  check(): InventoryState {
    const age = this.age();
    const state = age === undefined ? 'loading' : ageState(age, this.limits);
    if (state !== this.state) {
      const previous = this.state;
      this.state = state;
      const fields = { previous, state, ageMs: age === undefined ? undefined : Math.round(age) };
      if (state === 'expired') this.logger.error('inventory too old to serve: answering UNAVAILABLE until the engine is back', fields);
      else this.logger.info('inventory state changed', fields);
      for (const listener of this.listeners) listener(state);
    }
    return state;
  }

  /** The snapshot a call may be answered from, or the reason it may not. */
  servable(): InventorySnapshot {
    const snapshot = this.current;
    if (snapshot === undefined) {
      throw new ScorerError(
        'not_ready',
        this.loadFailure === undefined
          ? 'the inventory has not loaded from the oVirt engine yet; try again shortly'
          : 'no inventory has loaded yet: the oVirt engine could not be read (the service log says why); try again later',
      );
    }
    const age = this.age()!;
    if (ageState(age, this.limits) === 'expired') {
      throw new ScorerError(
        'not_ready',
        `the inventory is ${Math.round(age / 1000)} s old, more than the maximum staleness of ${Math.round(this.limits.maxStalenessMs / 1000)} s: the oVirt engine has not answered; try again later`,
      );
    }
    return snapshot;
  }

  info(snapshot: InventorySnapshot): InventoryInfo {
    return {
      refreshedAt: snapshot.refreshedAt,
      stale: ageState(snapshot === this.current ? this.age()! : Math.max(0, this.now() - snapshot.refreshedAt), this.limits) !== 'fresh',
      generation: snapshot.generation,
      hostCount: snapshot.hostCount,
      vmCount: snapshot.vmCount,
    };
  }
}
