/**
 * Per-host counts of VMs by OS identity, the data scoring reads: how many VMs
 * of an OS type, and of an exact OS, without a walk over the host's VMs.
 *
 * A host runs a few distinct OSes, so its counts are a short list of (OS, VMs)
 * pairs, scanned in place. The hosts of a full refresh share one store of
 * typed arrays (CountStore): the collector sees a handful of objects for
 * 5,000 hosts, where a map per host and per OS type made 50,000 that every
 * generation copied through the young generation, long enough to hold the
 * event loop for 10-25 ms (docs/benchmarks.md, issue 18).
 */
import type { OsIdentity } from '../ovirt/model';

const NONE = -1;
const INITIAL_PAIRS = 1_024;

/**
 * OS identities numbered 0, 1, ... in the order first seen, equal ones (same type and version)
 * under one number and one frozen object: many VMs share few OSes, so memory follows distinct
 * OSes, not VMs. Nested maps, not a joined key, so numbering a VM's OS makes no temporary string.
 */
export class OsNumbering {
  /** OS n is oses[n]. */
  readonly oses: OsIdentity[] = [];
  private readonly byType = new Map<string, Map<string, number>>();

  numberOf(os: OsIdentity): number {
    let versions = this.byType.get(os.type);
    if (versions === undefined) this.byType.set(os.type, (versions = new Map<string, number>()));
    let n = versions.get(os.version);
    if (n === undefined) versions.set(os.version, (n = this.oses.push(Object.freeze({ type: os.type, version: os.version })) - 1));
    return n;
  }
}

/** The pairs of hosts 0 .. n - 1: per host a linked list through `next`, and its VM total. */
class CountStore {
  /** Per host: its first pair (or NONE), and its VMs. */
  readonly head: Int32Array;
  readonly vmCount: Int32Array;
  /** Per pair: the host's next pair (or NONE), the OS (an index into `oses`), the VMs (0 once all are taken away). */
  next: Int32Array;
  osAt: Uint32Array;
  vmsAt: Int32Array;
  /** Pairs in use (the arrays may hold more). */
  pairs: number;

  /** A store over `arrays` as they are, `pairs` of them in use. */
  constructor(
    readonly oses: readonly OsIdentity[],
    arrays: EncodedHostOsCounts,
    pairs = arrays.next.length,
  ) {
    ({ head: this.head, vmCount: this.vmCount, next: this.next, osAt: this.osAt, vmsAt: this.vmsAt } = arrays);
    this.pairs = pairs;
  }

  /** A store of `hosts` hosts without a VM yet, room for `capacity` pairs before it grows. */
  static empty(oses: readonly OsIdentity[], hosts: number, capacity = INITIAL_PAIRS): CountStore {
    const arrays = {
      head: new Int32Array(hosts).fill(NONE),
      vmCount: new Int32Array(hosts),
      next: new Int32Array(capacity),
      osAt: new Uint32Array(capacity),
      vmsAt: new Int32Array(capacity),
    };
    return new CountStore(oses, arrays, 0);
  }

  /** Adds `delta` VMs of OS number `os` on host number `host`; taking away more than there is does nothing. */
  add(host: number, os: number, delta: number): void {
    for (let p = this.head[host]!; p !== NONE; p = this.next[p]!) {
      if (this.osAt[p] !== os) continue;
      if (this.vmsAt[p]! + delta < 0) return;
      this.vmsAt[p]! += delta;
      this.vmCount[host]! += delta;
      return;
    }
    if (delta > 0) this.append(host, os, delta);
  }

  /** A pair for an OS the host does not have yet (no search: its caller knows). */
  append(host: number, os: number, vms: number): void {
    if (this.pairs === this.next.length) this.grow();
    const p = this.pairs++;
    this.osAt[p] = os;
    this.vmsAt[p] = vms;
    this.next[p] = this.head[host]!;
    this.head[host] = p;
    this.vmCount[host]! += vms;
  }

  private grow(): void {
    // At least some room: a store may start with none (an encoded one without pairs).
    const capacity = Math.max(4, this.next.length * 2);
    const next = new Int32Array(capacity);
    next.set(this.next);
    this.next = next;
    const osAt = new Uint32Array(capacity);
    osAt.set(this.osAt);
    this.osAt = osAt;
    const vmsAt = new Int32Array(capacity);
    vmsAt.set(this.vmsAt);
    this.vmsAt = vmsAt;
  }
}

/** Hosts' counts as another process receives them: the arrays of a CountStore. */
export interface EncodedHostOsCounts {
  readonly head: Int32Array;
  readonly vmCount: Int32Array;
  readonly next: Int32Array;
  readonly osAt: Uint32Array;
  readonly vmsAt: Int32Array;
}

/** One host's counts, read in its store; immutable once handed out (snapshots share them). */
export class HostOsCounts {
  private constructor(
    private readonly store: CountStore,
    private readonly host: number,
  ) {}

  /** VMs counted on the host. */
  get vmCount(): number {
    return this.store.vmCount[this.host]!;
  }

  /** VMs of OS type `type`, whatever their version. */
  typeCount(type: string): number {
    const { next, osAt, vmsAt, oses } = this.store;
    let n = 0;
    for (let p = this.store.head[this.host]!; p !== NONE; p = next[p]!) if (oses[osAt[p]!]!.type === type) n += vmsAt[p]!;
    return n;
  }

  /** VMs of exactly `os`: its type and its version. */
  osCount(os: OsIdentity): number {
    const { next, osAt, vmsAt, oses } = this.store;
    for (let p = this.store.head[this.host]!; p !== NONE; p = next[p]!) {
      const o = oses[osAt[p]!]!;
      if (o === os || (o.type === os.type && o.version === os.version)) return vmsAt[p]!;
    }
    return 0;
  }

  /** Each OS the host runs, with its VMs (above zero), in no particular order. */
  forEachOs(use: (os: OsIdentity, vms: number) => void): void {
    const { next, osAt, vmsAt, oses } = this.store;
    for (let p = this.store.head[this.host]!; p !== NONE; p = next[p]!) if (vmsAt[p]! > 0) use(oses[osAt[p]!]!, vmsAt[p]!);
  }

  /** The counts of a host running VMs of these OSes (an events poll's or an on-demand read of one host). */
  static of(oses: Iterable<OsIdentity>): HostOsCounts {
    // Equal identities count together, whether or not they are one object.
    const numbering = new OsNumbering();
    const vms: number[] = [];
    for (const os of oses) {
      const n = numbering.numberOf(os);
      vms[n] = (vms[n] ?? 0) + 1;
    }
    return HostOsCounts.fromPairs(numbering.oses, vms);
  }

  /** One host's counts in a store of its own: `vms[i]` VMs of the distinct OS `oses[i]` (pairs of 0 left out). */
  private static fromPairs(oses: readonly OsIdentity[], vms: readonly number[]): HostOsCounts {
    const store = CountStore.empty(oses, 1, Math.max(1, oses.length));
    vms.forEach((n, i) => {
      if (n > 0) store.append(0, i, n);
    });
    return new HostOsCounts(store, 0);
  }

  /**
   * A copy with one VM of OS `os` added (+1) or taken away (-1); these counts
   * are left as they are. Taking away an OS the host does not run changes nothing.
   */
  withVm(os: OsIdentity, delta: 1 | -1): HostOsCounts {
    if (delta < 0 && this.osCount(os) === 0) return this;
    // A copy of the host's pairs, one changed: the cost follows its distinct OSes, not its VMs.
    const oses: OsIdentity[] = [];
    const vms: number[] = [];
    let changed = false;
    this.forEachOs((o, n) => {
      const same = !changed && (o === os || (o.type === os.type && o.version === os.version));
      changed ||= same;
      oses.push(o);
      vms.push(same ? n + delta : n);
    });
    if (!changed) {
      oses.push(os);
      vms.push(1);
    }
    return HostOsCounts.fromPairs(oses, vms);
  }

  /** Every host's counts in a store of their own, for another process: a few typed arrays that arrive as they are. */
  static encode(hosts: readonly HostOsCounts[], osNumber: (os: OsIdentity) => number): EncodedHostOsCounts {
    const store = CountStore.empty([], hosts.length);
    // forEachOs gives each OS of a host once: appended without a search.
    hosts.forEach((counts, host) => counts.forEachOs((os, n) => store.append(host, osNumber(os), n)));
    const { head, vmCount, pairs } = store;
    return { head, vmCount, next: store.next.slice(0, pairs), osAt: store.osAt.slice(0, pairs), vmsAt: store.vmsAt.slice(0, pairs) };
  }

  /** The counts `encode` made, read where they arrived: nothing is copied or rebuilt. `oses`: the OS numbering given to encode. */
  static decode(e: EncodedHostOsCounts, oses: readonly OsIdentity[]): HostOsCounts[] {
    const store = new CountStore(oses, e);
    const counts: HostOsCounts[] = [];
    for (let i = 0; i < e.head.length; i++) counts.push(new HostOsCounts(store, i));
    return counts;
  }

  /** Counts for hosts 0 .. hostCount - 1, to be filled by `builder` before anyone reads them. */
  static toFill(hostCount: number, oses: readonly OsIdentity[]): { counts: HostOsCounts[]; builder: HostOsCountsBuilder } {
    const store = CountStore.empty(oses, hostCount);
    const counts: HostOsCounts[] = [];
    for (let i = 0; i < hostCount; i++) counts.push(new HostOsCounts(store, i));
    return { counts, builder: new HostOsCountsBuilder(store) };
  }
}

/**
 * Fills every host's counts while a full refresh reads VMs page by page, in
 * the store the hosts' HostOsCounts already read: nothing is left to build
 * at the end. Its owner stops adding once it hands the counts out.
 */
export class HostOsCountsBuilder {
  constructor(private readonly store: CountStore) {}

  /** Adds `delta` VMs (+1 or -1) of OS number `os` (in the `oses` given) on host number `host`. */
  add(host: number, os: number, delta: 1 | -1): void {
    this.store.add(host, os, delta);
  }
}
