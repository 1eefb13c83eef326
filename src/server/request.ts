/**
 * Validation of ScoreHostsRequest and ScoreHostsBatchRequest into ScoreQuery
 * values, and of ListVmsRequest. Every message names the field (with its path inside a batch) and
 * says what is wrong with it.
 */
import type { LimitSettings } from '../config';
import { ScorerError } from '../errors';
import type { ScoreHostsBatchRequest__Output } from '../generated/ksmscorer/v1/ScoreHostsBatchRequest';
import type { ListVmsRequest__Output } from '../generated/ksmscorer/v1/ListVmsRequest';
import type { ScoreHostsRequest__Output } from '../generated/ksmscorer/v1/ScoreHostsRequest';
import type { DecodedRequest } from './codec';
import { uuid, MAX_OS_FIELD_LENGTH as MAX_OS_FIELD, type OsIdentity } from '../ovirt/model';

export type ScoreQuery =
  | { readonly kind: 'vm'; readonly vmId: string; readonly hostIds: readonly string[] | undefined }
  | { readonly kind: 'os'; readonly os: OsIdentity; readonly hostIds: readonly string[] | undefined };

export type RequestLimits = Pick<LimitSettings, 'maxHostsPerRequest'>;

const invalid = (field: string, why: string) => new ScorerError('invalid_argument', `${field}: ${why}`);
const quote = (s: string) => JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}...` : s);

/** `prefix` locates the request inside a batch, e.g. "requests[3]." */
export function parseScoreRequest(req: DecodedRequest<ScoreHostsRequest__Output>, limits: RequestLimits, prefix = ''): ScoreQuery {
  if (req.malformed !== undefined) throw invalid(prefix === '' ? 'request' : prefix.slice(0, -1), `not a valid ScoreHostsRequest message (${req.malformed})`);
  const hostIdsRaw = req.host_ids ?? [];
  const hostIdCount = hostIdsRaw.length + (req.extraHostIds ?? 0); // the decoder counts, without building, past the limit
  if (hostIdCount > limits.maxHostsPerRequest) {
    throw invalid(`${prefix}host_ids`, `${hostIdCount} ids, more than the maximum of ${limits.maxHostsPerRequest}`);
  }
  const hostIds = new Array<string>(hostIdsRaw.length);
  for (let i = 0; i < hostIdsRaw.length; i++) {
    const id = uuid(hostIdsRaw[i]!);
    if (id === undefined) throw invalid(`${prefix}host_ids[${i}]`, `not a UUID: ${quote(hostIdsRaw[i]!)}`);
    hostIds[i] = id;
  }
  const hosts = hostIds.length === 0 ? undefined : hostIds;

  if (req.vm === 'vm_id') {
    const vmId = uuid(req.vm_id ?? '');
    if (vmId === undefined) throw invalid(`${prefix}vm_id`, `not a UUID: ${quote(req.vm_id ?? '')}`);
    return { kind: 'vm', vmId, hostIds: hosts };
  }
  if (req.vm === 'os' && req.os) {
    const { type, version } = req.os;
    if (type === '') throw invalid(`${prefix}os.type`, 'must not be empty (an osinfo name such as "rhel_9x64")');
    if (type.length > MAX_OS_FIELD) throw invalid(`${prefix}os.type`, `longer than ${MAX_OS_FIELD} characters`);
    if (version.length > MAX_OS_FIELD) throw invalid(`${prefix}os.version`, `longer than ${MAX_OS_FIELD} characters`);
    return { kind: 'os', os: { type, version }, hostIds: hosts };
  }
  throw invalid(`${prefix}vm`, 'set either vm_id or os');
}

/** A batch: each item parsed on its own (a bad item becomes its error, the others are answered). */
export function parseBatchRequest(batch: DecodedRequest<ScoreHostsBatchRequest__Output>, limits: LimitSettings): (ScoreQuery | ScorerError)[] {
  if (batch.malformed !== undefined) throw invalid('request', `not a valid ScoreHostsBatchRequest message (${batch.malformed})`);
  const requests: readonly DecodedRequest<ScoreHostsRequest__Output>[] = batch.requests ?? [];
  const items = requests.length + (batch.extraRequests ?? 0);
  if (items > limits.maxBatchRequests) throw invalid('requests', `${items} items, more than the maximum of ${limits.maxBatchRequests}`);
  // The named hosts alone may already be too many (the decoder stops building them there); empty lists are counted later.
  let named = 0;
  for (const req of requests) named += (req.host_ids?.length ?? 0) + (req.extraHostIds ?? 0);
  if (named > limits.maxBatchHostScores) throw tooManyHostScores(named, limits);
  return requests.map((req, i): ScoreQuery | ScorerError => {
    try {
      return parseScoreRequest(req, limits, `requests[${i}].`);
    } catch (err) {
      return ScorerError.from(err);
    }
  });
}

/** A batch is scored in one go: bounds the host scores it asks for (an empty `host_ids` is every one of `hostCount` hosts). */
export function checkBatchSize(items: readonly (ScoreQuery | ScorerError)[], hostCount: number, limits: LimitSettings): void {
  let hostScores = 0;
  for (const item of items) if (!(item instanceof ScorerError)) hostScores += item.hostIds?.length ?? hostCount;
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
