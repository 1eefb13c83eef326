/**
 * Score tables: a host's score for an OS on one snapshot is a pure function,
 * so it is scored and encoded once per (host list and counts, OS identity), as a
 * ready protobuf `scores` entry, and calls copy those bytes. Tables fill as
 * calls need hosts; the ranked answer for calls that name no hosts is built
 * whole, once. Memory is bounded: least recently used tables go first.
 */
import type { InventorySnapshot } from '../inventory/snapshot';
import type { Logger } from '../log';
import type { OsIdentity } from '../ovirt/model';
import type { HostOsCounts } from '../scoring/os-counts';
import { type HostScore, scoreHost } from '../scoring/score';
import { encodeWith, hostScoreBound, osBound, Out, writeOs, writeScoreEntry } from './codec';
import { HostIdIndex } from './host-id-index';
import { type HostList, HostLists, listOverhead } from './host-lists';

/** Room after a ranked body for the inventory field a ScoreHostsResponse ends with (at most 46 bytes), before scored_os. */
export const INVENTORY_ROOM = 64;
/** Most bytes one `scores` entry can take beyond its HostScore: tag and length. */
const ENTRY_OVERHEAD = 6;
/** Table memory is allocated in chunks (entries never span two), sized to the host count within these bounds. */
const MIN_CHUNK = 1_024;
const MAX_CHUNK = 64 * 1_024;
/** Whole answers kept per table for remembered host lists (OsTable.listBody); past it they are dropped together. */
const MAX_LIST_BODIES = 64;
/** The share of the memory limit that remembers host lists (host-lists.ts); the tables have the rest. */
const LISTS_SHARE = 1 / 8;

export interface ScoreTableStats {
  /** Tables kept, and the bytes they hold (bounded by the limit). */
  readonly tables: number;
  readonly bytes: number;
  readonly limitBytes: number;
  /** Host entries encoded so far in the kept tables. */
  readonly entries: number;
  /** The host id index of the current host list (not counted in `bytes`: one per host list, a few dozen bytes a host). */
  readonly indexBytes: number;
  /** Host lists remembered (within an eighth of the limit, not counted in `bytes`). */
  readonly listBytes: number;
  /** Tables dropped to stay within the limit, since start. */
  readonly evicted: number;
}

/** A `scores` entry of its own: for a host scored for one call alone. */
export const encodeScoreEntry = (score: HostScore): Buffer => encodeWith(ENTRY_OVERHEAD + hostScoreBound(score), (out: Out) => writeScoreEntry(out, 1, score));

/**
 * The service's tables. They follow the latest snapshot asked for (the
 * inventory only moves forward); a call that waited on the engine keeps the
 * tables it started with, even if they have been replaced since.
 */
export class ScoreTables {
  private current: SnapshotTables | undefined;
  private evicted = 0;

  constructor(
    private readonly limitBytes: number,
    private readonly logger: Logger,
    /** Told of each table dropped to stay within the limit. */
    private readonly onEvict: () => void = () => {},
  ) {}

  /** The tables of `snapshot`'s hosts and counts: an events poll that changed nothing keeps both, and the tables with them. */
  of(snapshot: InventorySnapshot): SnapshotTables {
    const current = this.current;
    if (current !== undefined && current.hosts === snapshot.hosts && current.hostIds === snapshot.hostIds) return current;
    // VM events change counts, rarely hosts: the index, and the lists looked up in it, are kept while the host list is the same.
    const same = current !== undefined && current.index.covers(snapshot.hostIds);
    const index = same ? current.index : new HostIdIndex(snapshot.hostIds);
    const lists = same ? current.lists : new HostLists(Math.floor(this.limitBytes * LISTS_SHARE));
    if (current !== undefined) this.logger.debug('score tables replaced', { generation: snapshot.generation, ...this.stats() });
    this.current = new SnapshotTables(snapshot, index, lists, this.limitBytes - Math.floor(this.limitBytes * LISTS_SHARE), () => {
      this.onEvict();
      if (this.evicted++ === 0) this.logger.info('score tables reached their memory limit; the least recently used are dropped (KSM_SCORER_SCORE_CACHE_MB)', { limitBytes: this.limitBytes });
    });
    return this.current;
  }

  stats(): ScoreTableStats {
    const c = this.current;
    return {
      tables: c?.tableCount ?? 0,
      bytes: c?.bytes ?? 0,
      limitBytes: this.limitBytes,
      entries: c?.entries ?? 0,
      indexBytes: c?.index.byteSize ?? 0,
      listBytes: c?.lists.byteSize ?? 0,
      evicted: this.evicted,
    };
  }
}

/** The tables of one host list and its counts, one per OS identity asked for. */
export class SnapshotTables {
  readonly hostIds: readonly string[];
  readonly hosts: ReadonlyMap<string, HostOsCounts>;
  private readonly byOs = new Map<string, OsTable>();
  bytes = 0;
  private clock = 0;

  constructor(
    snapshot: InventorySnapshot,
    readonly index: HostIdIndex,
    readonly lists: HostLists,
    private readonly limitBytes: number,
    private readonly onEvict: () => void,
  ) {
    this.hostIds = snapshot.hostIds;
    this.hosts = snapshot.hosts;
  }

  get tableCount(): number {
    return this.byOs.size;
  }

  get entries(): number {
    let n = 0;
    for (const t of this.byOs.values()) n += t.entries;
    return n;
  }

  table(os: OsIdentity): OsTable {
    // Length first: no two (type, version) pairs give the same key.
    const key = `${os.type.length}:${os.type}${os.version}`;
    let table = this.byOs.get(key);
    if (table === undefined) {
      table = new OsTable(os, this, key);
      this.byOs.set(key, table);
      this.grew(table, table.byteSize);
    }
    table.lastUse = ++this.clock;
    return table;
  }

  /** A kept table grew by `bytes`: past the limit, the least recently used others go, then, if need be, this one (its call still uses it). */
  grew(table: OsTable, bytes: number): void {
    if (!table.kept) return;
    this.bytes += bytes;
    while (this.bytes > this.limitBytes) {
      let victim: OsTable | undefined;
      for (const t of this.byOs.values()) if (t !== table && (victim === undefined || t.lastUse < victim.lastUse)) victim = t;
      this.drop(victim ?? table);
      if (victim === undefined) return;
    }
  }

  /** A kept table let go of `bytes`. */
  shrank(table: OsTable, bytes: number): void {
    if (table.kept) this.bytes -= bytes;
  }

  private drop(table: OsTable): void {
    table.kept = false;
    this.byOs.delete(table.key);
    this.bytes -= table.byteSize;
    this.onEvict();
  }
}

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

/** Every host of one host list scored for one OS identity, each entry encoded when first asked for. */
export class OsTable {
  kept = true;
  lastUse = 0;
  entries = 0;
  byteSize: number;
  /** The `scored_os` field (3 in ScoreHostsResponse and ScoreHostsResult alike). */
  readonly scoredOsField: Buffer;
  /**
   * Where host p's entry lies, side by side (one cache line for all three):
   * chunks[where[3p]] from where[3p + 1] to where[3p + 2]; an end of 0: not encoded yet.
   */
  readonly where: Int32Array;
  readonly chunks: Buffer[] = [];
  readonly scores: Float64Array;
  private used = 0;
  private readonly chunkSize: number;
  private rankedEntries: RankedEntries | undefined;
  /** Whole answers for remembered host lists, by list (see listBody), and their bytes. */
  private readonly listBodies = new Map<HostList, ListBody>();
  private listBytes = 0;

  constructor(
    readonly os: OsIdentity,
    private readonly owner: SnapshotTables,
    readonly key: string,
  ) {
    const n = owner.hostIds.length;
    this.where = new Int32Array(3 * n);
    this.scores = new Float64Array(n);
    this.chunkSize = Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, 64 * n));
    this.scoredOsField = encodeWith(osBound(os), (out) => writeOs(out, 3, os));
    // Per host: where (12 bytes) and scores (8); per table, as measured with many small ones: the
    // objects, typed arrays' headers, the maps and the byOs entry, about 1.4 kB.
    this.byteSize = 20 * n + this.scoredOsField.length + 2 * key.length + 1_400;
  }

  /** Host `p`'s entry, encoded now if it was not yet (see `where`). */
  entry(p: number): void {
    if (this.where[3 * p + 2] !== 0) return;
    const hostId = this.owner.hostIds[p]!;
    const score = scoreHost({ hostId, counts: this.owner.hosts.get(hostId), containsScoredVm: false }, this.os);
    const bound = ENTRY_OVERHEAD + hostScoreBound(score);
    let c = this.chunks.length - 1;
    if (c < 0 || this.used + bound > this.chunks[c]!.length) {
      this.chunks.push(Buffer.allocUnsafeSlow(Math.max(this.chunkSize, bound)));
      this.used = 0;
      c++;
      this.grow(this.chunks[c]!.length);
    }
    const out = new Out(this.chunks[c]!);
    out.pos = this.used;
    writeScoreEntry(out, 1, score);
    this.where[3 * p] = c;
    this.where[3 * p + 1] = this.used;
    this.where[3 * p + 2] = this.used = out.pos;
    this.scores[p] = score.score;
    this.entries++;
  }

  /** Every host's entry, best first: score descending, then host id ascending (as scoreCandidates ranks). */
  ranked(): RankedEntries {
    if (this.rankedEntries !== undefined) return this.rankedEntries;
    const { hostIds } = this.owner;
    const n = hostIds.length;
    for (let p = 0; p < n; p++) this.entry(p);
    const scores = this.scores;
    const order = Int32Array.from({ length: n }, (_, p) => p).sort(
      (a, b) => scores[b]! - scores[a]! || (hostIds[a]! < hostIds[b]! ? -1 : hostIds[a]! > hostIds[b]! ? 1 : 0),
    );
    const rankOf = new Int32Array(n);
    for (let r = 0; r < n; r++) rankOf[order[r]!] = r;
    const { body, at } = this.concat(order, INVENTORY_ROOM + this.scoredOsField.length);
    this.rankedEntries = { body: body.subarray(0, at[n]), withRoom: body, at, order, rankOf };
    this.grow(body.length + 12 * n + 4);
    return this.rankedEntries;
  }

  /**
   * The entries of a remembered host list, in its order, as one buffer: a
   * scheduler sends its cluster's list again and again, so an answer for it
   * is one copy. Only for lists of hosts this table has (no other ids).
   */
  listBody(list: HostList): ListBody {
    const kept = this.listBodies.get(list);
    if (kept !== undefined) return kept;
    const { positions } = list;
    const { body, at } = this.concat(positions, 0);
    if (this.listBodies.size >= MAX_LIST_BODIES) {
      this.listBodies.clear();
      this.byteSize -= this.listBytes;
      this.owner.shrank(this, this.listBytes);
      this.listBytes = 0;
    }
    const listBody = { body, at };
    this.listBodies.set(list, listBody);
    // The list itself too: this table keeps it alive after HostLists has let it go.
    const bytes = body.length + at.byteLength + 200 + list.bytes.length + listOverhead(positions.length);
    this.listBytes += bytes;
    this.grow(bytes);
    return listBody;
  }

  /** The entries of hosts `order` (positions), in that order, in one buffer with `room` bytes spare after them, and where each begins (one more: their end). */
  private concat(order: ArrayLike<number>, room: number): ListBody {
    let size = 0;
    for (let i = 0; i < order.length; i++) {
      const p = order[i]!;
      this.entry(p);
      size += this.where[3 * p + 2]! - this.where[3 * p + 1]!;
    }
    const body = Buffer.allocUnsafeSlow(size + room);
    const at = new Int32Array(order.length + 1);
    let pos = 0;
    for (let i = 0; i < order.length; i++) {
      const p = order[i]!;
      at[i] = pos;
      pos += this.chunks[this.where[3 * p]!]!.copy(body, pos, this.where[3 * p + 1], this.where[3 * p + 2]);
    }
    at[order.length] = pos;
    return { body, at };
  }

  private grow(bytes: number): void {
    this.byteSize += bytes;
    this.owner.grew(this, bytes);
  }
}
