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

  constructor(
    private readonly limits: FreshnessLimits,
    private readonly logger: Logger,
    /** Wall clock in epoch ms; injected so tests control time. */
    private readonly now: () => number,
  ) {}

  snapshot(): InventorySnapshot | undefined {
    return this.current;
  }

  publish(snapshot: InventorySnapshot): void {
    this.current = snapshot;
    this.loadFailure = undefined;
    this.check();
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
    const snapshot = this.current;
    const state = snapshot === undefined ? 'loading' : ageState(this.now() - snapshot.refreshedAt, this.limits);
    if (state !== this.state) {
      const previous = this.state;
      this.state = state;
      const fields = { previous, state, ageMs: snapshot && this.now() - snapshot.refreshedAt };
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
    const age = this.now() - snapshot.refreshedAt;
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
      stale: ageState(this.now() - snapshot.refreshedAt, this.limits) !== 'fresh',
      generation: snapshot.generation,
      hostCount: snapshot.hostCount,
      vmCount: snapshot.vmCount,
    };
  }
}
