/**
 * Validation of ScoreHostsRequest and ScoreHostsBatchRequest into ScoreQuery
 * values (the fast path's IndexedQuery: src/fast-path/indexed-request.ts).
 * Every message names the field (with its path inside a batch) and says what
 * is wrong with it.
 */
import type { LimitSettings } from '../config/load';
import { ScorerError } from '../errors';
import type { ScoreHostsRequest__Output } from '../generated/ksmscorer/v1/ScoreHostsRequest';
import { uuid, MAX_OS_FIELD_LENGTH as MAX_OS_FIELD, type OsIdentity } from '../ovirt/model';

/** What a query scores for: a VM's OS (and not the VM itself on its own host), or an OS as given. */
export type ScoreTarget = { readonly kind: 'vm'; readonly vmId: string } | { readonly kind: 'os'; readonly os: OsIdentity };

/** A query with its host ids as strings. */
export type ScoreQuery = ScoreTarget & { readonly hostIds: readonly string[] | undefined };

export type RequestLimits = Pick<LimitSettings, 'maxHostsPerRequest'>;

/**
 * A request as decoded: `malformed` when it did not decode (the handler answers INVALID_ARGUMENT
 * with it as the reason); `extraHostIds` / `extraRequests`: how many were only counted, not built.
 */
export type DecodedRequest<T> = T & { readonly malformed?: string; readonly extraHostIds?: number; readonly extraRequests?: number };

/** A ScoreHostsRequest as decoded; `hostIdCount`: every host id, from a decoder that counts them without making them strings (fast-path/decode.ts). */
export type ScoreRequest = DecodedRequest<ScoreHostsRequest__Output> & { readonly hostIdCount?: number };

/** INVALID_ARGUMENT naming the field and what is wrong with it. */
export const invalid = (field: string, why: string) => new ScorerError('invalid_argument', `${field}: ${why}`);
/** Caller text as a message quotes it: short. */
export const quote = (s: string) => JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}...` : s);

/** `prefix` locates the request inside a batch, e.g. "requests[3]." */
export function parseScoreRequest(req: ScoreRequest, limits: RequestLimits, prefix = ''): ScoreQuery {
  // Counted before any id is made a string: a decoder may have counted more than it built.
  checkScoreRequest(req, hostIdCount(req), limits, prefix);
  const hostIdsRaw = req.host_ids ?? [];
  // One id, one answer: ids in lower case (UUIDs are case-insensitive), each once, in the order first named.
  const hostIds = new Set<string>();
  for (let i = 0; i < hostIdsRaw.length; i++) hostIds.add(hostUuid(hostIdsRaw[i]!, i, prefix));
  return { ...parseTarget(req, prefix), hostIds: hostIds.size === 0 ? undefined : [...hostIds] };
}

const hostIdCount = (req: ScoreRequest) => req.hostIdCount ?? (req.host_ids?.length ?? 0) + (req.extraHostIds ?? 0);

/** The request as a whole: well formed, and not naming too many hosts (`hostIdCount`). */
export function checkScoreRequest(
  req: { readonly malformed?: string | undefined },
  hostIdCount: number,
  limits: RequestLimits,
  prefix: string,
): void {
  if (req.malformed !== undefined)
    throw invalid(prefix === '' ? 'request' : prefix.slice(0, -1), `not a valid ScoreHostsRequest message (${req.malformed})`);
  if (hostIdCount > limits.maxHostsPerRequest) {
    throw invalid(`${prefix}host_ids`, `${hostIdCount} ids, more than the maximum of ${limits.maxHostsPerRequest}`);
  }
}

export function hostUuid(raw: string, i: number, prefix: string): string {
  const id = uuid(raw);
  if (id === undefined) throw invalid(`${prefix}host_ids[${i}]`, `not a UUID: ${quote(raw)}`);
  return id;
}

export function parseTarget(req: ScoreHostsRequest__Output, prefix: string): ScoreTarget {
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

/** A batch as decoded, its items' host ids counted. */
export interface CountedBatch {
  readonly requests: readonly { readonly hostIdCount: number }[];
  readonly malformed?: string;
  readonly extraRequests?: number;
}

/** A batch as a whole: well formed, not too many items, and not too many named hosts already (empty lists are counted later). */
export function checkBatchRequest(batch: CountedBatch, limits: LimitSettings): void {
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
  invalid(
    'requests',
    `${hostScores} host scores in one batch (empty host_ids count every host), more than the maximum of ${limits.maxBatchHostScores}; split the batch`,
  );
