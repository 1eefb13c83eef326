/**
 * Whether a full refresh may replace the inventory. A broken engine answer
 * (a proxy's, a truncated rewrite's, an engine half started) tends to look like
 * one of two things: records that cannot be used, or records gone (hosts,
 * VMs, or the host of every running VM). Either would make hosts score 0
 * while looking fresh, so such a refresh is held and the last good inventory
 * keeps serving, ageing as in an outage. A real mass change (a pool of VMs
 * deleted) looks the same once but persists: it is published when
 * CONFIRMATIONS refreshes in a row read the same data over a span of time.
 * Unusable records are never published by agreement: they are as unusable the
 * third time.
 */
import { SETTINGS } from '../config/settings';
import type { InventoryChanges, InventorySnapshot } from './snapshot';

/** Refreshes in a row that must agree before a large fall is taken as real. */
export const CONFIRMATIONS = 3;
/** Falls smaller than this are never held, whatever their share (small sites change by whole units), unless to nothing. */
const MIN_HELD_FALL = 10;
/** Fewer unusable records of a kind than this never hold a refresh, unless none of that kind is usable. */
const MIN_HELD_REJECTED = 3;
/** VMs sampled to tell whether two refreshes read the same VMs (not only as many). */
const AGREEMENT_SAMPLE = 1_000;

export interface GuardLimits {
  /** Most records of a kind (hosts, VMs) a refresh may leave out, as a percentage of those the engine listed. */
  readonly maxRejectedPercent: number;
  /** Largest fall in hosts, VMs or VMs running on listed hosts against the last good inventory, as a percentage. */
  readonly maxDropPercent: number;
  /** How long agreeing refreshes must span before a fall is published (ms). */
  readonly confirmSpanMs: number;
}

/** What a refresh read: the snapshot it built, and what it could not use. */
export interface RefreshRead {
  readonly snapshot: InventorySnapshot;
  readonly leftOutHosts: number;
  readonly leftOutVms: number;
  /** Hosts that VMs name but the host list lacks. */
  readonly unlistedHosts: number;
}

export type GuardVerdict =
  | { readonly publish: true; /** Set when a large fall is published because refreshes agreed on it. */ readonly confirmed?: string }
  | { readonly publish: false; readonly why: string };

export class PublishGuard {
  /** The refreshes held in a row for a fall: the last one read, when the first was, how many. */
  private held: { readonly snapshot: InventorySnapshot; readonly since: number; readonly times: number } | undefined;

  constructor(private readonly limits: GuardLimits) {}

  /** `last`: the inventory being served (undefined before the first load); `now`: epoch ms. */
  check(read: RefreshRead, last: InventorySnapshot | undefined, now: number): GuardVerdict {
    const unusable = this.unusable(read);
    if (unusable !== undefined) {
      this.held = undefined;
      return { publish: false, why: unusable };
    }
    const fall = last === undefined ? noHostList(read) : this.fall(read.snapshot, last);
    if (fall === undefined) {
      this.held = undefined;
      return { publish: true };
    }
    const before = this.held;
    const agrees = before !== undefined && sameData(before.snapshot, read.snapshot);
    const times = agrees ? before.times + 1 : 1;
    const since = agrees ? before.since : now;
    if (times >= CONFIRMATIONS && now - since >= this.limits.confirmSpanMs) {
      this.held = undefined;
      return {
        publish: true,
        confirmed: `${fall}, and ${times} refreshes in a row over ${Math.round((now - since) / 1000)} s read the same data: taken as a real change`,
      };
    }
    this.held = { snapshot: read.snapshot, since, times };
    const span = Math.round(this.limits.confirmSpanMs / 1000);
    return {
      publish: false,
      why: `${fall}: held as a possibly broken answer until ${CONFIRMATIONS} refreshes in a row over at least ${span} s read the same data (${times} so far)`,
    };
  }

  /** Why too much of what the engine listed cannot be used, per kind; undefined when it can. */
  private unusable(read: RefreshRead): string | undefined {
    for (const [what, usable, leftOut] of [
      ['hosts', read.snapshot.hostCount, read.leftOutHosts],
      ['VMs', read.snapshot.vmCount, read.leftOutVms],
    ] as const) {
      const listed = usable + leftOut;
      if (leftOut === 0) continue;
      if (usable === 0 || (leftOut >= MIN_HELD_REJECTED && (100 * leftOut) / listed > this.limits.maxRejectedPercent)) {
        return `the engine listed ${listed} ${what} and ${leftOut} of them (${percent(leftOut, listed)}) cannot be used, more than ${SETTINGS.inventory.maxRejectedPercent.env}=${this.limits.maxRejectedPercent}%`;
      }
    }
    return undefined;
  }

  /** The fall that trips the limit, described, or undefined. */
  private fall(read: InventorySnapshot, last: InventorySnapshot): string | undefined {
    for (const [what, before, now] of [
      ['VMs', last.vmCount, read.vmCount],
      ['hosts', last.hostCount, read.hostCount],
      ['VMs running on its hosts', countedVms(last), countedVms(read)],
    ] as const) {
      const gone = before - now;
      if (isLargeFall(before, gone, this.limits.maxDropPercent)) {
        return `the engine listed ${now} ${what} where the inventory has ${before} (${percent(gone, before)} fewer, more than ${SETTINGS.inventory.maxDropPercent.env}=${this.limits.maxDropPercent}%)`;
      }
    }
    return undefined;
  }
}

/** `gone` of `before` is a fall a broken answer makes: at least 10 and more than `maxDropPercent`, or all of them. */
export function isLargeFall(before: number, gone: number, maxDropPercent: number): boolean {
  return (gone >= MIN_HELD_FALL && (100 * gone) / before > maxDropPercent) || (gone > 0 && gone === before);
}

/**
 * What an events poll would remove when that is a fall a full refresh would be held for (every
 * re-read answering 404 through a broken proxy); undefined when the poll may apply.
 */
export function pollFall(
  current: InventorySnapshot,
  changes: InventoryChanges,
  maxDropPercent: number,
): { goneVms: number; vms: number; goneHosts: number; hosts: number } | undefined {
  let goneVms = 0;
  for (const vm of changes.vms.values()) if (vm === null) goneVms++;
  let goneHosts = 0;
  for (const [id, host] of changes.hosts) if (host === null && current.hosts.has(id)) goneHosts++;
  return isLargeFall(current.vmCount, goneVms, maxDropPercent) || isLargeFall(current.hostCount, goneHosts, maxDropPercent)
    ? { goneVms, vms: current.vmCount, goneHosts, hosts: current.hostCount }
    : undefined;
}

/** A first load whose host list is empty while its VMs run on hosts: a host list that failed, not a data centre. */
function noHostList(read: RefreshRead): string | undefined {
  return read.snapshot.hostCount === 0 && read.unlistedHosts > 0
    ? `the engine listed no host while its VMs run on ${read.unlistedHosts}`
    : undefined;
}

/** VMs counted toward the hosts of the snapshot: what scores are made of. */
function countedVms(snapshot: InventorySnapshot): number {
  let n = 0;
  for (const counts of snapshot.hosts.values()) n += counts.vmCount;
  return n;
}

/**
 * Two reads hold the same data: as many hosts and VMs (within 1%, or 10: the
 * engine goes on changing between them), nearly all the same hosts, and
 * nearly all of a sample of the VMs.
 */
function sameData(a: InventorySnapshot, b: InventorySnapshot): boolean {
  if (!close(a.hostCount, b.hostCount) || !close(a.vmCount, b.vmCount)) return false;
  let hosts = 0;
  for (const id of b.hostIds) if (a.hosts.has(id)) hosts++;
  if (!close(hosts, b.hostCount)) return false;
  const sample = b.vms.sampleIds(AGREEMENT_SAMPLE);
  let vms = 0;
  for (const id of sample) if (a.vms.get(id) !== undefined) vms++;
  return vms >= 0.98 * sample.length;
}

const close = (a: number, b: number) => Math.abs(a - b) <= Math.max(MIN_HELD_FALL, 0.01 * Math.max(a, b));

const percent = (part: number, whole: number) => `${Math.round((1000 * part) / whole) / 10}%`;
