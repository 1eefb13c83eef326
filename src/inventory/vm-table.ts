/**
 * The VMs of one full refresh, in a few flat arrays instead of 100,000 map
 * entries and strings: ids as bytes, an open-addressing hash of them, and per
 * VM an index into a host table and an OS table. The garbage collector sees
 * a handful of objects however many VMs there are, so keeping two
 * generations alive during a refresh (and marking them) costs almost nothing,
 * and a worker process takes a copy as it arrives, without rebuilding it.
 * VMs keep the order they were first set in; setting a VM again changes its
 * placement in place.
 */
import type { OsIdentity } from '../ovirt/model';

/** Where a VM runs and what it runs. */
export interface VmPlacement {
  readonly hostId: string | undefined;
  readonly os: OsIdentity;
}

/** Engine ids are UUIDs in lower case: 36 ASCII characters. Anything else goes to a small map of its own. */
const ID_LENGTH = 36;
const EMPTY = -1;
const NO_HOST = 0xffff_ffff;
const INITIAL_CAPACITY = 1_024;

/** A table as another process receives it: typed arrays and a few small lists. */
export interface EncodedVmTable {
  readonly size: number;
  /** The hash's key, so the slots can be used as they come. */
  readonly seed: number;
  readonly ids: Uint8Array;
  readonly slots: Int32Array;
  readonly host: Uint32Array;
  readonly os: Uint32Array;
  readonly hostIds: readonly string[];
  /** OS i is (osNames[2i], osNames[2i + 1]). */
  readonly osNames: readonly string[];
  /** VMs whose id is not a UUID, by index. */
  readonly odd: readonly (readonly [number, string])[];
}

export class VmTable {
  private ids: Buffer;
  private slots: Int32Array;
  private host: Uint32Array;
  private os: Uint32Array;
  private readonly hostIds: string[] = [];
  private readonly hostIndex = new Map<string, number>();
  private readonly oses: OsIdentity[] = [];
  private readonly osIndex = new Map<OsIdentity, number>();
  /** id -> index, and index -> id, for ids that are not 36 ASCII characters. */
  private odd: Map<string, number> | undefined;
  private oddIds: Map<number, string> | undefined;
  private count = 0;
  /**
   * The hash's key, random per table: ids come from the engine, and ids chosen to collide in an
   * unkeyed hash would make every lookup walk one long run (hash flooding).
   */
  private seed = (Math.random() * 2 ** 32) >>> 0;

  /** `capacity`: VMs it holds before it first grows (a refresh passes the last one's count). */
  constructor(capacity = INITIAL_CAPACITY) {
    this.ids = Buffer.alloc(capacity * ID_LENGTH);
    this.host = new Uint32Array(capacity);
    this.os = new Uint32Array(capacity);
    this.slots = new Int32Array(slotsFor(capacity)).fill(EMPTY);
  }

  static from(entries: Iterable<readonly [string, VmPlacement]>): VmTable {
    const table = new VmTable();
    for (const [id, placement] of entries) table.set(id, placement.hostId, placement.os);
    return table;
  }

  static decode(e: EncodedVmTable): VmTable {
    const table = new VmTable(0);
    table.ids = Buffer.from(e.ids.buffer, e.ids.byteOffset, e.ids.byteLength);
    table.slots = e.slots;
    table.host = e.host;
    table.os = e.os;
    e.hostIds.forEach((id, i) => {
      table.hostIds.push(id);
      table.hostIndex.set(id, i);
    });
    for (let i = 0; i < e.osNames.length; i += 2) {
      const os = Object.freeze({ type: e.osNames[i]!, version: e.osNames[i + 1]! });
      table.osIndex.set(os, table.oses.push(os) - 1);
    }
    for (const [i, id] of e.odd) table.remember(id, i);
    table.count = e.size;
    table.seed = e.seed;
    return table;
  }

  get size(): number {
    return this.count;
  }

  /** Sets a VM's placement; returns the one it had, if any. `os` objects are kept as given (callers intern them). */
  set(id: string, hostId: string | undefined, os: OsIdentity): VmPlacement | undefined {
    let i = this.indexOf(id);
    const before = i === EMPTY ? undefined : this.placementAt(i);
    if (i === EMPTY) i = this.add(id);
    this.host[i] = hostId === undefined ? NO_HOST : this.hostNumber(hostId);
    this.os[i] = this.osNumber(os);
    return before;
  }

  get(id: string): VmPlacement | undefined {
    const i = this.indexOf(id);
    return i === EMPTY ? undefined : this.placementAt(i);
  }

  has(id: string): boolean {
    return this.indexOf(id) !== EMPTY;
  }

  /** Every VM in the order it was first set. */
  *entries(): IterableIterator<[string, VmPlacement]> {
    for (let i = 0; i < this.count; i++) yield [this.idAt(i), this.placementAt(i)];
  }

  /**
   * For another process: the arrays cut to size (a message copies a view's
   * whole buffer), the hash included, so the receiver uses them as they come.
   */
  encode(): EncodedVmTable {
    return {
      size: this.count,
      seed: this.seed,
      ids: new Uint8Array(this.ids.subarray(0, this.count * ID_LENGTH)),
      slots: this.slots,
      host: this.host.slice(0, this.count),
      os: this.os.slice(0, this.count),
      hostIds: this.hostIds,
      osNames: this.oses.flatMap((os) => [os.type, os.version]),
      odd: [...(this.oddIds ?? [])],
    };
  }

  private placementAt(i: number): VmPlacement {
    const host = this.host[i]!;
    return { hostId: host === NO_HOST ? undefined : this.hostIds[host], os: this.oses[this.os[i]!]! };
  }

  /** The id of the VM set `i`-th (0 <= i < size). */
  idAt(i: number): string {
    return this.oddIds?.get(i) ?? this.ids.toString('latin1', i * ID_LENGTH, (i + 1) * ID_LENGTH);
  }

  private indexOf(id: string): number {
    const hash = plainIdHash(id, this.seed);
    if (hash < 0) return this.odd?.get(id) ?? EMPTY;
    const mask = this.slots.length - 1;
    for (let s = hash & mask; ; s = (s + 1) & mask) {
      const i = this.slots[s]!;
      if (i === EMPTY) return EMPTY;
      if (this.idEquals(i, id)) return i;
    }
  }

  private idEquals(i: number, id: string): boolean {
    const ids = this.ids;
    const at = i * ID_LENGTH;
    for (let c = 0; c < ID_LENGTH; c++) if (ids[at + c] !== id.charCodeAt(c)) return false;
    return true;
  }

  private add(id: string): number {
    if (this.count === this.host.length) this.grow();
    const i = this.count++;
    const hash = plainIdHash(id, this.seed);
    if (hash < 0) {
      this.remember(id, i);
      return i;
    }
    this.ids.write(id, i * ID_LENGTH, ID_LENGTH, 'latin1');
    this.place(i, hash);
    return i;
  }

  private remember(id: string, i: number): void {
    (this.odd ??= new Map()).set(id, i);
    (this.oddIds ??= new Map()).set(i, id);
  }

  private place(i: number, hash: number): void {
    const mask = this.slots.length - 1;
    let s = hash & mask;
    while (this.slots[s] !== EMPTY) s = (s + 1) & mask;
    this.slots[s] = i;
  }

  private grow(): void {
    const capacity = Math.max(INITIAL_CAPACITY, this.host.length * 2);
    const ids = Buffer.alloc(capacity * ID_LENGTH);
    this.ids.copy(ids, 0, 0, this.count * ID_LENGTH);
    this.ids = ids;
    const host = new Uint32Array(capacity);
    host.set(this.host.subarray(0, this.count));
    this.host = host;
    const os = new Uint32Array(capacity);
    os.set(this.os.subarray(0, this.count));
    this.os = os;
    this.slots = new Int32Array(slotsFor(capacity)).fill(EMPTY);
    for (let i = 0; i < this.count; i++) if (!this.oddIds?.has(i)) this.place(i, hashBytes(this.ids, i * ID_LENGTH, this.seed));
  }

  private hostNumber(hostId: string): number {
    let n = this.hostIndex.get(hostId);
    if (n === undefined) this.hostIndex.set(hostId, (n = this.hostIds.push(hostId) - 1));
    return n;
  }

  private osNumber(os: OsIdentity): number {
    let n = this.osIndex.get(os);
    if (n === undefined) this.osIndex.set(os, (n = this.oses.push(os) - 1));
    return n;
  }
}

/** At most half full: probes stay short. */
const slotsFor = (capacity: number) => 2 ** Math.ceil(Math.log2(Math.max(2, capacity * 2)));

/** FNV-1a keyed by `seed` over a 36-character ASCII id (hashBytes gives the same over its stored bytes); -1 for any other id. */
function plainIdHash(id: string, seed: number): number {
  if (id.length !== ID_LENGTH) return -1;
  let h = (0x811c9dc5 ^ seed) >>> 0;
  let high = 0;
  for (let c = 0; c < ID_LENGTH; c++) {
    const code = id.charCodeAt(c);
    high |= code;
    h = Math.imul(h ^ code, 0x01000193);
  }
  return high > 0x7f ? -1 : h >>> 0;
}

function hashBytes(bytes: Uint8Array, at: number, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let c = 0; c < ID_LENGTH; c++) h = Math.imul(h ^ bytes[at + c]!, 0x01000193);
  return h >>> 0;
}
