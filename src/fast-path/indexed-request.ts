/**
 * ScoreHostsRequest validation on the fast path: the same as
 * parseScoreRequest (src/scoring/request.ts), with host ids looked up by their
 * bytes in the snapshot's host id index and the lists sent recently, so a
 * known id is never made a string.
 */
import type { ScorerError } from '../errors';
import { checkScoreRequest, hostUuid, parseBatchItems, parseTarget, type RequestLimits, type ScoreTarget } from '../scoring/request';
import type { WireScoreRequest } from './decode';
import type { HostIdIndex } from './host-id-index';
import type { HostLists, IndexedHosts } from './host-lists';

/** A query with its host ids looked up in a host id index (host-id-index.ts): known ones are never made strings. */
export type IndexedQuery = ScoreTarget & IndexedHosts;

/** Where a request's host ids are looked up: the snapshot's host id index, and the lists sent recently (host-lists.ts). */
export interface HostLookup {
  readonly index: HostIdIndex;
  readonly lists: HostLists;
}

/**
 * The same validation as parseScoreRequest, with ids looked up by their
 * bytes first: a hit is a known id in canonical form, so only misses are
 * decoded and checked; a list sent before is not looked up again.
 */
export function parseIndexedRequest(req: WireScoreRequest, lookup: HostLookup, limits: RequestLimits, prefix = ''): IndexedQuery {
  checkScoreRequest(req, req.hostIdCount, limits, prefix);
  return indexedQuery(lookUpHostIds(req, lookup, prefix), parseTarget(req, prefix));
}

/**
 * A batch's items, parsed as parseIndexedRequest does; an item naming the
 * same host ids as the one before, byte for byte (a batch of VMs for one
 * cluster), reuses its lookups.
 */
export function parseIndexedBatch(
  requests: readonly WireScoreRequest[],
  lookup: HostLookup,
  limits: RequestLimits,
): (IndexedQuery | ScorerError)[] {
  let last: { req: WireScoreRequest; hosts: IndexedHosts } | undefined;
  return parseBatchItems(requests, (req, prefix) => {
    checkScoreRequest(req, req.hostIdCount, limits, prefix);
    const hosts = last !== undefined && sameHostIds(last.req, req) ? last.hosts : lookUpHostIds(req, lookup, prefix);
    last = { req, hosts };
    return indexedQuery(hosts, parseTarget(req, prefix));
  });
}

const NO_HOSTS: IndexedHosts = { positions: undefined, otherIds: [] };

/** Host ids are checked before the target (as the whole-message path does). Written out field by field, not spread: a batch makes one per item, and spreading a remembered list would copy its bytes' field too. */
const indexedQuery = ({ positions, otherIds, list }: IndexedHosts, target: ScoreTarget): IndexedQuery =>
  target.kind === 'vm'
    ? { kind: 'vm', vmId: target.vmId, positions, otherIds, list }
    : { kind: 'os', os: target.os, positions, otherIds, list };

function lookUpHostIds(req: WireScoreRequest, { index, lists }: HostLookup, prefix: string): IndexedHosts {
  if (req.hostIdCount === 0) return NO_HOSTS;
  const known = lists.get(req);
  if (known !== undefined) return known;
  // A plain array: a typed one this size would be an off-heap buffer per call.
  const positions: number[] = [];
  const otherIds: string[] = [];
  const { bytes, view } = req;
  // One id, one answer: a host named twice (in any letter case) is answered once, where first named.
  const pass = index.newPass();
  let others: Set<string> | undefined;
  req.forEachHostId((start, end, i) => {
    let p = index.find(view, start, end);
    if (p < 0) {
      // Not in canonical form, or not known: read in lower case, then looked up as a string (an upper-case known id is found there).
      const id = hostUuid(bytes.toString('utf8', start, end), i, prefix);
      p = index.position(id);
      if (p < 0) {
        others ??= new Set();
        if (others.has(id)) return;
        others.add(id);
        otherIds.push(id);
        positions.push(-1);
        return;
      }
    }
    if (index.firstInPass(p, pass)) positions.push(p);
  });
  // Every id passed: the same bytes will give the same lookups as long as the index lasts.
  return lists.remember(req, { positions, otherIds });
}

/** The same host ids: from the first host_ids field's key to the end of the last id, the same bytes (parsed alike from there on). */
function sameHostIds(a: WireScoreRequest, b: WireScoreRequest): boolean {
  const span = a.lastIdEnd - a.hostIdsStart;
  return (
    a.hostIdCount > 0 &&
    a.hostIdCount === b.hostIdCount &&
    span === b.lastIdEnd - b.hostIdsStart &&
    a.bytes.compare(b.bytes, b.hostIdsStart, b.lastIdEnd, a.hostIdsStart, a.lastIdEnd) === 0
  );
}
