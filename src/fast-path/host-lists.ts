/**
 * Host id lists seen recently: a scheduler names its cluster's hosts call
 * after call, so a list sent again, byte for byte, is recognised with one
 * memory compare and its lookups reused, instead of each id being looked up
 * again. A remembered list is also what score tables keep whole answers for
 * (OsTable.listBody). Bounded in bytes; a list's lookups depend only on the
 * host id index, so these live as long as it does.
 */
import { LRUCache } from 'lru-cache';

/** A request's host ids looked up in the index (see IndexedQuery). */
export interface IndexedHosts {
  /** Each requested host's position in the snapshot's host list, or -1 for the next of `otherIds`; undefined: no host ids. */
  readonly positions: readonly number[] | undefined;
  /** The ids the index does not hold, in request order, valid and in lower case. */
  readonly otherIds: readonly string[];
  /** Set when the list is remembered: the same object for every request naming these bytes. */
  readonly list?: HostList;
}

/** A remembered list: its lookups, and the bytes they came from. */
export interface HostList extends IndexedHosts {
  readonly positions: readonly number[];
  readonly bytes: Buffer;
}

/** Where a request's host ids lie: from the first host_ids field's key (so its length is compared) to the end of the last id (codec.ts). */
export interface HostIdSpan {
  readonly bytes: Buffer;
  readonly hostIdCount: number;
  readonly hostIdsStart: number;
  readonly lastIdEnd: number;
}

/** Key bytes taken from each end of a span: two ids. */
const KEY_EDGE = 38;
/**
 * Bytes a remembered list costs beyond its span, as measured with many short lists: the positions
 * array, the key string, the Buffer and list objects, lru-cache's entry (about 500 bytes in all).
 */
export const listOverhead = (count: number) => 8 * count + 2 * KEY_EDGE + 520;

export class HostLists {
  private readonly lists: LRUCache<string, HostList> | undefined;

  /** `limitBytes`: 0 remembers none. */
  constructor(limitBytes: number) {
    this.lists =
      limitBytes > 0
        ? new LRUCache({ maxSize: limitBytes, sizeCalculation: (l: HostList) => l.bytes.length + listOverhead(l.positions.length) })
        : undefined;
  }

  /** The list these ids were sent as before, if remembered. */
  get(span: HostIdSpan): HostList | undefined {
    if (this.lists === undefined || span.hostIdCount === 0) return undefined;
    const list = this.lists.get(keyOf(span));
    // The key sees the count, the length and both ends; the bytes between are compared here.
    return list !== undefined && list.bytes.compare(span.bytes, span.hostIdsStart, span.lastIdEnd) === 0 ? list : undefined;
  }

  /** Remembers `hosts`, looked up from `span` (whose ids all passed validation); returns them as the remembered list, or as they are. */
  remember(span: HostIdSpan, hosts: IndexedHosts): IndexedHosts {
    if (this.lists === undefined || hosts.positions === undefined) return hosts;
    // Its own memory: a slice of Buffer's shared pool would keep the whole 8 KiB pool alive.
    const bytes = Buffer.allocUnsafeSlow(span.lastIdEnd - span.hostIdsStart);
    span.bytes.copy(bytes, 0, span.hostIdsStart, span.lastIdEnd);
    // Too big for the limit: lru-cache refuses it, and the lookups are used once, as they are.
    if (bytes.length + listOverhead(hosts.positions.length) > this.lists.maxSize) return hosts;
    const list: { -readonly [K in keyof HostList]: HostList[K] } = { positions: hosts.positions, otherIds: hosts.otherIds, bytes };
    list.list = list;
    this.lists.set(keyOf(span), list);
    return list;
  }

  get byteSize(): number {
    return this.lists?.calculatedSize ?? 0;
  }
}

function keyOf({ bytes, hostIdCount, hostIdsStart, lastIdEnd }: HostIdSpan): string {
  const head = Math.min(lastIdEnd, hostIdsStart + KEY_EDGE);
  const tail = Math.max(head, lastIdEnd - KEY_EDGE);
  return `${hostIdCount}:${lastIdEnd - hostIdsStart}:${bytes.toString('latin1', hostIdsStart, head)}${bytes.toString('latin1', tail, lastIdEnd)}`;
}
