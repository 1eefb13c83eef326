/**
 * Validation of ScoreHostsRequest and ScoreHostsBatchRequest into ScoreQuery
 * or IndexedQuery values, and of ListVmsRequest. Every message names the field (with its path inside a batch) and
 * says what is wrong with it.
 */
import type { LimitSettings } from '../config/load';
import { ScorerError } from '../errors';
import type { ListVmsRequest__Output } from '../generated/ksmscorer/v1/ListVmsRequest';
import type { ScoreHostsRequest__Output } from '../generated/ksmscorer/v1/ScoreHostsRequest';
import { type DecodedRequest, type WireBatchRequest, WireScoreRequest } from './codec';
import type { HostIdIndex } from './host-id-index';
import type { HostLists, IndexedHosts } from './host-lists';
import { uuid, MAX_OS_FIELD_LENGTH as MAX_OS_FIELD, type OsIdentity } from '../ovirt/model';

/** What a query scores for: a VM's OS (and not the VM itself on its own host), or an OS as given. */
export type ScoreTarget = { readonly kind: 'vm'; readonly vmId: string } | { readonly kind: 'os'; readonly os: OsIdentity };

/** A query with its host ids as strings. */
export type ScoreQuery = ScoreTarget & { readonly hostIds: readonly string[] | undefined };

/** A query with its host ids looked up in a host id index (host-id-index.ts): known ones are never made strings. */
export type IndexedQuery = ScoreTarget & IndexedHosts;

export type RequestLimits = Pick<LimitSettings, 'maxHostsPerRequest'>;

const invalid = (field: string, why: string) => new ScorerError('invalid_argument', `${field}: ${why}`);
const quote = (s: string) => JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}...` : s);

/** `prefix` locates the request inside a batch, e.g. "requests[3]." */
export function parseScoreRequest(req: DecodedRequest<ScoreHostsRequest__Output>, limits: RequestLimits, prefix = ''): ScoreQuery {
  // Counted before any id is made a string: a decoder may have counted more than it built.
  checkScoreRequest(req, hostIdCount(req), limits, prefix);
  const hostIdsRaw = req.host_ids ?? [];
  // One id, one answer: ids in lower case (UUIDs are case-insensitive), each once, in the order first named.
  const hostIds = new Set<string>();
  for (let i = 0; i < hostIdsRaw.length; i++) hostIds.add(hostUuid(hostIdsRaw[i]!, i, prefix));
  return { ...parseTarget(req, prefix), hostIds: hostIds.size === 0 ? undefined : [...hostIds] };
}

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
export function parseIndexedBatch(requests: readonly WireScoreRequest[], lookup: HostLookup, limits: RequestLimits): (IndexedQuery | ScorerError)[] {
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
  target.kind === 'vm' ? { kind: 'vm', vmId: target.vmId, positions, otherIds, list } : { kind: 'os', os: target.os, positions, otherIds, list };

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
  return a.hostIdCount > 0 && a.hostIdCount === b.hostIdCount && span === b.lastIdEnd - b.hostIdsStart && a.bytes.compare(b.bytes, b.hostIdsStart, b.lastIdEnd, a.hostIdsStart, a.lastIdEnd) === 0;
}

const hostIdCount = (req: DecodedRequest<ScoreHostsRequest__Output>) =>
  req instanceof WireScoreRequest ? req.hostIdCount : (req.host_ids?.length ?? 0) + (req.extraHostIds ?? 0);

function checkScoreRequest(req: { readonly malformed?: string | undefined }, hostIdCount: number, limits: RequestLimits, prefix: string): void {
  if (req.malformed !== undefined) throw invalid(prefix === '' ? 'request' : prefix.slice(0, -1), `not a valid ScoreHostsRequest message (${req.malformed})`);
  if (hostIdCount > limits.maxHostsPerRequest) {
    throw invalid(`${prefix}host_ids`, `${hostIdCount} ids, more than the maximum of ${limits.maxHostsPerRequest}`);
  }
}

function hostUuid(raw: string, i: number, prefix: string): string {
  const id = uuid(raw);
  if (id === undefined) throw invalid(`${prefix}host_ids[${i}]`, `not a UUID: ${quote(raw)}`);
  return id;
}

function parseTarget(req: ScoreHostsRequest__Output, prefix: string): ScoreTarget {
  if (req.vm === 'vm_id') {
    const vmId = uuid(req.vm_id ?? '');
    if (vmId === undefined) throw invalid(`${prefix}vm_id`, `not a UUID: ${quote(req.vm_id ?? '')}`);
    return { kind: 'vm', vmId };
  }
  if (req.vm === 'os' && req.os) {
    const { type, version } = req.os;
    if (type === '') throw invalid(`${prefix}os.type`, 'must not be empty (an osinfo name such as "rhel_9x64")');
    if (type.length > MAX_OS_FIELD) throw invalid(`${prefix}os.type`, `longer than ${MAX_OS_FIELD} characters`);
    if (version.length > MAX_OS_FIELD) throw invalid(`${prefix}os.version`, `longer than ${MAX_OS_FIELD} characters`);
    return { kind: 'os', os: { type, version } };
  }
  throw invalid(`${prefix}vm`, 'set either vm_id or os');
}

/** A batch as a whole: well formed, not too many items, and not too many named hosts already (empty lists are counted later). */
export function checkBatchRequest(batch: WireBatchRequest, limits: LimitSettings): void {
  if (batch.malformed !== undefined) throw invalid('request', `not a valid ScoreHostsBatchRequest message (${batch.malformed})`);
  const items = batch.requests.length + (batch.extraRequests ?? 0);
  if (items > limits.maxBatchRequests) throw invalid('requests', `${items} items, more than the maximum of ${limits.maxBatchRequests}`);
  let named = 0;
  for (const req of batch.requests) named += req.hostIdCount;
  if (named > limits.maxBatchHostScores) throw tooManyHostScores(named, limits);
}

/** A batch's items, each parsed on its own by `parse`: a bad item becomes its error, the others are answered. */
export function parseBatchItems<R, Q>(requests: readonly R[], parse: (req: R, prefix: string) => Q): (Q | ScorerError)[] {
  return requests.map((req, i): Q | ScorerError => {
    try {
      return parse(req, `requests[${i}].`);
    } catch (err) {
      return ScorerError.from(err);
    }
  });
}

/**
 * A batch is scored in one go: bounds the host scores it asks for. `named`:
 * each item's number of host ids; undefined (an empty `host_ids`) is every one of `hostCount` hosts.
 */
export function checkBatchSize(named: readonly (number | undefined)[], hostCount: number, limits: LimitSettings): void {
  let hostScores = 0;
  for (const n of named) hostScores += n ?? hostCount;
  if (hostScores > limits.maxBatchHostScores) throw tooManyHostScores(hostScores, limits);
}

const tooManyHostScores = (hostScores: number, limits: LimitSettings) =>
  invalid('requests', `${hostScores} host scores in one batch (empty host_ids count every host), more than the maximum of ${limits.maxBatchHostScores}; split the batch`);

/** ListVms answers at most this many VMs, and this many when max_results is 0. */
export const MAX_LISTED_VMS = 1_000;
export const DEFAULT_LISTED_VMS = 100;

/** INVALID_ARGUMENT for a request whose bytes did not decode as `message`. */
export function rejectMalformed(req: DecodedRequest<object>, message: string): void {
  if (req.malformed !== undefined) throw invalid('request', `not a valid ${message} message (${req.malformed})`);
}

export function parseListVmsRequest(req: DecodedRequest<ListVmsRequest__Output>): { hostId: string | undefined; max: number } {
  rejectMalformed(req, 'ListVmsRequest');
  let hostId: string | undefined;
  if (req.host_id !== '') {
    hostId = uuid(req.host_id);
    if (hostId === undefined) throw invalid('host_id', `not a UUID: ${quote(req.host_id)}`);
  }
  if (req.max_results > MAX_LISTED_VMS) throw invalid('max_results', `${req.max_results}, more than the maximum of ${MAX_LISTED_VMS}`);
  return { hostId, max: req.max_results === 0 ? DEFAULT_LISTED_VMS : req.max_results };
}
