/**
 * Score tables: a host's score for an OS on one snapshot is a pure function,
 * so it is scored and encoded once per (host list and counts, OS identity), as a
 * ready protobuf `scores` entry, and calls copy those bytes. Tables fill as
 * calls need hosts; the ranked answer for calls that name no hosts is built
 * whole, once. Memory is bounded: least recently used tables go first.
 */
import { SETTINGS } from '../config/settings';
import type { Logger } from '../log';
import type { OsIdentity } from '../ovirt/model';
import type { HostOsCounts } from '../scoring/os-counts';
import type { HostScore } from '../scoring/score';
import type { ScoredSnapshot } from '../scoring/view';
import { encodeWith, hostScoreBound, type Out, writeScoreEntry } from './encode';
import { HostIdIndex } from './host-id-index';
import { HostLists } from './host-lists';
import { ENTRY_OVERHEAD, OsTable, type TableOwner } from './os-table';

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
export const encodeScoreEntry = (score: HostScore): Buffer =>
  encodeWith(ENTRY_OVERHEAD + hostScoreBound(score), (out: Out) => writeScoreEntry(out, 1, score));

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
  of(snapshot: ScoredSnapshot): SnapshotTables {
    const current = this.current;
    if (current !== undefined && current.hosts === snapshot.hosts && current.hostIds === snapshot.hostIds) return current;
    // VM events change counts, rarely hosts: the index, and the lists looked up in it, are kept while the host list is the same.
    const same = current !== undefined && current.index.covers(snapshot.hostIds);
    const index = same ? current.index : new HostIdIndex(snapshot.hostIds);
    const lists = same ? current.lists : new HostLists(Math.floor(this.limitBytes * LISTS_SHARE));
    if (current !== undefined) this.logger.debug('score tables replaced', { generation: snapshot.generation, ...this.stats() });
    this.current = new SnapshotTables(snapshot, index, lists, this.limitBytes - Math.floor(this.limitBytes * LISTS_SHARE), () => {
      this.onEvict();
      if (this.evicted++ === 0)
        this.logger.info(
          `score tables reached their memory limit; the least recently used are dropped (${SETTINGS.limits.scoreCacheBytes.env})`,
          { limitBytes: this.limitBytes },
        );
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
export class SnapshotTables implements TableOwner {
  readonly hostIds: readonly string[];
  readonly hosts: ReadonlyMap<string, HostOsCounts>;
  private readonly byOs = new Map<string, OsTable>();
  bytes = 0;
  private clock = 0;

  constructor(
    snapshot: ScoredSnapshot,
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
