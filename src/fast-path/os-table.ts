/**
 * One score table: every host of one host list scored for one OS identity,
 * each host's `scores` entry encoded when first asked for, plus the whole
 * ranked answer and answers for remembered host lists. Its layout is its own
 * (private fields); answers read it through the entry methods.
 */
import type { OsIdentity } from '../ovirt/model';
import type { HostOsCounts } from '../scoring/os-counts';
import { compareRank, type HostScore, scoreHost } from '../scoring/score';
import { copyBytes, encodeWith, hostScoreBound, osBound, Out, writeOs, writeScoreEntry } from './encode';
import { type HostList, listOverhead } from './host-lists';

/** Room after a ranked body for the inventory field a ScoreHostsResponse ends with (at most 46 bytes), before scored_os. */
export const INVENTORY_ROOM = 64;
/** Most bytes one `scores` entry can take beyond its HostScore: tag and length. */
export const ENTRY_OVERHEAD = 6;
/** Table memory is allocated in chunks (entries never span two), sized to the host count within these bounds. */
const MIN_CHUNK = 1_024;
const MAX_CHUNK = 64 * 1_024;
/** Whole answers kept per table for remembered host lists (OsTable.listBody); past it they are dropped together. */
const MAX_LIST_BODIES = 64;

/** The whole ranked answer's `scores` entries, best first, and where each host sits in it. */
export interface RankedEntries {
  readonly body: Buffer;
  /** `body` with room after it for the fields a response ends with (INVENTORY_ROOM, then scored_os), to write the answer in place. */
  readonly withRoom: Buffer;
  /** Byte offset of each rank's entry in `body`; one more at the end, the body's length. */
  readonly at: Int32Array;
  /** Host position at each rank. */
  readonly order: Int32Array;
  /** Rank of each host position. */
  readonly rankOf: Int32Array;
}

/** A remembered host list's entries, in its order, and where each begins (one more at the end: the length). */
export interface ListBody {
  readonly body: Buffer;
  readonly at: Int32Array;
}

/** What a table belongs to (SnapshotTables): the host list it scores, and the memory account it reports to. */
export interface TableOwner {
  readonly hostIds: readonly string[];
  readonly hosts: ReadonlyMap<string, HostOsCounts>;
  /** A kept table grew by `bytes`. */
  grew(table: OsTable, bytes: number): void;
  /** A kept table let go of `bytes`. */
  shrank(table: OsTable, bytes: number): void;
}

/** Every host of one host list scored for one OS identity, each entry encoded when first asked for. */
export class OsTable {
  kept = true;
  lastUse = 0;
  /** The `scored_os` field (3 in ScoreHostsResponse and ScoreHostsResult alike). */
  readonly scoredOsField: Buffer;
  #entries = 0;
  #byteSize: number;
  /**
   * Where host p's entry lies, side by side (one cache line for all three):
   * chunks[where[3p]] from where[3p + 1] to where[3p + 2]; an end of 0: not encoded yet.
   */
  readonly #where: Int32Array;
  readonly #chunks: Buffer[] = [];
  readonly #scores: Float64Array;
  #used = 0;
  readonly #chunkSize: number;
  #rankedEntries: RankedEntries | undefined;
  /** Whole answers for remembered host lists, by list (see listBody), and their bytes. */
  readonly #listBodies = new Map<HostList, ListBody>();
  #listBytes = 0;

  constructor(
    readonly os: OsIdentity,
    private readonly owner: TableOwner,
    readonly key: string,
  ) {
    const n = owner.hostIds.length;
    this.#where = new Int32Array(3 * n);
    this.#scores = new Float64Array(n);
    this.#chunkSize = Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, 64 * n));
    this.scoredOsField = encodeWith(osBound(os), (out) => writeOs(out, 3, os));
    // Per host: where (12 bytes) and scores (8); per table, as measured with many small ones: the
    // objects, typed arrays' headers, the maps and the byOs entry, about 1.4 kB.
    this.#byteSize = 20 * n + this.scoredOsField.length + 2 * key.length + 1_400;
  }

  /** Host entries encoded so far. */
  get entries(): number {
    return this.#entries;
  }

  /** Memory held, for the owner's account. */
  get byteSize(): number {
    return this.#byteSize;
  }

  /** Host `p`'s entry, encoded now if it was not yet (see `#where`). */
  entry(p: number): void {
    const where = this.#where;
    if (where[3 * p + 2] !== 0) return;
    const hostId = this.owner.hostIds[p]!;
    const score = scoreHost({ hostId, counts: this.owner.hosts.get(hostId), containsScoredVm: false }, this.os);
    const bound = ENTRY_OVERHEAD + hostScoreBound(score);
    const chunks = this.#chunks;
    let c = chunks.length - 1;
    if (c < 0 || this.#used + bound > chunks[c]!.length) {
      chunks.push(Buffer.allocUnsafeSlow(Math.max(this.#chunkSize, bound)));
      this.#used = 0;
      c++;
      this.grow(chunks[c]!.length);
    }
    const out = new Out(chunks[c]!);
    out.pos = this.#used;
    writeScoreEntry(out, 1, score);
    where[3 * p] = c;
    where[3 * p + 1] = this.#used;
    where[3 * p + 2] = this.#used = out.pos;
    this.#scores[p] = score.score;
    this.#entries++;
  }

  /** The bytes of host `p`'s entry, encoding it first if need be. */
  entrySize(p: number): number {
    const where = this.#where;
    if (where[3 * p + 2] === 0) this.entry(p);
    return where[3 * p + 2]! - where[3 * p + 1]!;
  }

  /** Every host's entry, best first (compareRank, as scoreCandidates ranks). */
  ranked(): RankedEntries {
    if (this.#rankedEntries !== undefined) return this.#rankedEntries;
    const { hostIds } = this.owner;
    const n = hostIds.length;
    for (let p = 0; p < n; p++) this.entry(p);
    const scores = this.#scores;
    const order = Int32Array.from({ length: n }, (_, p) => p).sort((a, b) => compareRank(scores[a]!, hostIds[a]!, scores[b]!, hostIds[b]!));
    const rankOf = new Int32Array(n);
    for (let r = 0; r < n; r++) rankOf[order[r]!] = r;
    const { body, at } = this.concat(order, INVENTORY_ROOM + this.scoredOsField.length);
    this.#rankedEntries = { body: body.subarray(0, at[n]), withRoom: body, at, order, rankOf };
    this.grow(body.length + 12 * n + 4);
    return this.#rankedEntries;
  }

  /**
   * How many entries of the ranking come before an entry scored `own`: the
   * ranking is a total order (compareRank), so they are a prefix.
   */
  entriesBefore(own: HostScore): number {
    const { order } = this.ranked();
    const { hostIds } = this.owner;
    const scores = this.#scores;
    let lo = 0;
    let hi = order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const p = order[mid]!;
      if (compareRank(scores[p]!, hostIds[p]!, own.score, own.host_id) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * The entries of a remembered host list, in its order, as one buffer: a
   * scheduler sends its cluster's list again and again, so an answer for it
   * is one copy. Only for lists of hosts this table has (no other ids).
   */
  listBody(list: HostList): ListBody {
    const kept = this.#listBodies.get(list);
    if (kept !== undefined) return kept;
    const { positions } = list;
    const { body, at } = this.concat(positions, 0);
    if (this.#listBodies.size >= MAX_LIST_BODIES) {
      this.#listBodies.clear();
      this.#byteSize -= this.#listBytes;
      this.owner.shrank(this, this.#listBytes);
      this.#listBytes = 0;
    }
    const listBody = { body, at };
    this.#listBodies.set(list, listBody);
    // The list itself too: this table keeps it alive after HostLists has let it go.
    const bytes = body.length + at.byteLength + 200 + list.bytes.length + listOverhead(positions.length);
    this.#listBytes += bytes;
    this.grow(bytes);
    return listBody;
  }

  /**
   * Writes the entries of hosts `positions` into `dst` at `pos`, in that
   * order; returns the position after them. Position `scoredAt` takes `own`
   * instead of its table entry, and each -1 the next of `others` (entries made
   * for one call). Every table entry must be encoded (entrySize).
   */
  writeEntries(
    positions: readonly number[],
    scoredAt: number,
    own: Buffer | undefined,
    others: readonly Buffer[],
    dst: Buffer,
    pos: number,
  ): number {
    const where = this.#where;
    const chunks = this.#chunks;
    // Neighbouring table entries in one chunk (filled in the order a list asked for them) copy as one range.
    let runSrc: Buffer | undefined;
    let runStart = 0;
    let runEnd = 0;
    let other = 0;
    for (let i = 0; i < positions.length; i++) {
      const p = positions[i]!;
      if (p >= 0 && p !== scoredAt) {
        const src = chunks[where[3 * p]!]!;
        const start = where[3 * p + 1]!;
        if (src === runSrc && start === runEnd) {
          runEnd = where[3 * p + 2]!;
          continue;
        }
        if (runSrc !== undefined) pos = copyBytes(runSrc, runStart, runEnd, dst, pos);
        runSrc = src;
        runStart = start;
        runEnd = where[3 * p + 2]!;
        continue;
      }
      if (runSrc !== undefined) pos = copyBytes(runSrc, runStart, runEnd, dst, pos);
      runSrc = undefined;
      const entry = p >= 0 ? own! : others[other++]!;
      pos = copyBytes(entry, 0, entry.length, dst, pos);
    }
    return runSrc === undefined ? pos : copyBytes(runSrc, runStart, runEnd, dst, pos);
  }

  /** The entries of hosts `order` (positions), in that order, in one buffer with `room` bytes spare after them, and where each begins (one more: their end). */
  private concat(order: ArrayLike<number>, room: number): ListBody {
    const where = this.#where;
    let size = 0;
    for (let i = 0; i < order.length; i++) {
      const p = order[i]!;
      this.entry(p);
      size += where[3 * p + 2]! - where[3 * p + 1]!;
    }
    const body = Buffer.allocUnsafeSlow(size + room);
    const at = new Int32Array(order.length + 1);
    let pos = 0;
    for (let i = 0; i < order.length; i++) {
      const p = order[i]!;
      at[i] = pos;
      pos += this.#chunks[where[3 * p]!]!.copy(body, pos, where[3 * p + 1], where[3 * p + 2]);
    }
    at[order.length] = pos;
    return { body, at };
  }

  private grow(bytes: number): void {
    this.#byteSize += bytes;
    this.owner.grew(this, bytes);
  }
}
