/**
 * Whether a full refresh may replace the inventory. A broken engine answer
 * (a proxy's, a truncated rewrite's) tends to look like one of two things:
 * most records unusable, or most records gone. Either would make every host
 * score 0 while looking fresh, so such a refresh is held and the last good
 * inventory keeps serving, ageing as in an outage. A real mass change (a
 * pool of VMs deleted) looks the same once but persists: it is published
 * when CONFIRMATIONS refreshes in a row agree on it. Unusable records are
 * never published by agreement: they are as unusable the third time.
 */

/** Refreshes in a row that must agree before a large fall is taken as real. */
export const CONFIRMATIONS = 3;
/** Falls smaller than this many hosts or VMs are never held, whatever their share: small sites change by whole units. */
const MIN_HELD_FALL = 10;

export interface GuardLimits {
  /** Most records a refresh may leave out, as a percentage of those the engine listed (hosts and VMs). */
  readonly maxRejectedPercent: number;
  /** Largest fall in hosts or VMs against the last good inventory, as a percentage, published without confirmation. */
  readonly maxDropPercent: number;
}

/** What a refresh read: what it kept, and how many it left out. */
export interface RefreshCounts {
  readonly hosts: number;
  readonly vms: number;
  readonly leftOutHosts: number;
  readonly leftOutVms: number;
}

export type GuardVerdict =
  | { readonly publish: true; /** Set when a large fall is published because refreshes agreed on it. */ readonly confirmed?: string }
  | { readonly publish: false; readonly why: string };

export class PublishGuard {
  /** The refreshes held in a row for a fall, and what the last of them read. */
  private held: { readonly hosts: number; readonly vms: number; readonly times: number } | undefined;

  constructor(private readonly limits: GuardLimits) {}

  /** `last`: the inventory being served (undefined before the first load). */
  check(read: RefreshCounts, last: { readonly hostCount: number; readonly vmCount: number } | undefined): GuardVerdict {
    const listed = read.hosts + read.vms + read.leftOutHosts + read.leftOutVms;
    const leftOut = read.leftOutHosts + read.leftOutVms;
    if (listed > 0 && (100 * leftOut) / listed > this.limits.maxRejectedPercent) {
      this.held = undefined;
      return {
        publish: false,
        why: `the engine listed ${listed} hosts and VMs and ${leftOut} of them (${percent(leftOut, listed)}) cannot be used, more than KSM_SCORER_MAX_REJECTED_PERCENT=${this.limits.maxRejectedPercent}%`,
      };
    }
    const fall = last === undefined ? undefined : this.fall(read, last);
    if (fall === undefined) {
      this.held = undefined;
      return { publish: true };
    }
    const agrees = this.held !== undefined && close(this.held.hosts, read.hosts) && close(this.held.vms, read.vms);
    const times = agrees ? this.held!.times + 1 : 1;
    if (times >= CONFIRMATIONS) {
      this.held = undefined;
      return { publish: true, confirmed: `${fall}, and ${times} refreshes in a row agree on it: taken as a real change` };
    }
    this.held = { hosts: read.hosts, vms: read.vms, times };
    return {
      publish: false,
      why: `${fall}, more than KSM_SCORER_MAX_DROP_PERCENT=${this.limits.maxDropPercent}%: held as a possibly broken answer until ${CONFIRMATIONS} refreshes in a row agree (${times} so far)`,
    };
  }

  /** The fall that trips the limit, described, or undefined. */
  private fall(read: RefreshCounts, last: { readonly hostCount: number; readonly vmCount: number }): string | undefined {
    for (const [what, before, now] of [
      ['VMs', last.vmCount, read.vms],
      ['hosts', last.hostCount, read.hosts],
    ] as const) {
      const gone = before - now;
      if (gone >= MIN_HELD_FALL && (100 * gone) / before > this.limits.maxDropPercent) return `the engine listed ${now} ${what} where the inventory has ${before} (${percent(gone, before)} fewer)`;
    }
    return undefined;
  }
}

/** Two reads agree when they differ by at most 1% (or 10): the engine goes on changing between them. */
const close = (a: number, b: number) => Math.abs(a - b) <= Math.max(MIN_HELD_FALL, 0.01 * Math.max(a, b));

const percent = (part: number, whole: number) => `${Math.round((1000 * part) / whole) / 10}%`;
