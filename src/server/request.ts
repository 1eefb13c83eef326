/**
 * Validation of ScoreHostsRequest into a ScoreQuery. Every message names the
 * field (with its path inside a batch) and says what is wrong with it.
 */
import { ScorerError } from '../errors';
import type { ScoreHostsRequest__Output } from '../generated/ksmscorer/v1/ScoreHostsRequest';
import type { OsIdentity } from '../ovirt/model';

export type ScoreQuery =
  | { readonly kind: 'vm'; readonly vmId: string; readonly hostIds: readonly string[] | undefined }
  | { readonly kind: 'os'; readonly os: OsIdentity; readonly hostIds: readonly string[] | undefined };

export interface RequestLimits {
  readonly maxHostsPerRequest: number;
}

const UUID_LOWER = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UUID_ANY_CASE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The id (8-4-4-4-12 hex digits) in lower case, or undefined when it is not a UUID. Engine ids are lower case: one test. */
function uuid(s: string): string | undefined {
  if (UUID_LOWER.test(s)) return s;
  return UUID_ANY_CASE.test(s) ? s.toLowerCase() : undefined;
}

const MAX_OS_FIELD = 256;

const invalid = (field: string, why: string) => new ScorerError('invalid_argument', `${field}: ${why}`);
const quote = (s: string) => JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}...` : s);

/** `prefix` locates the request inside a batch, e.g. "requests[3]." */
export function parseScoreRequest(req: ScoreHostsRequest__Output & { readonly malformed?: string }, limits: RequestLimits, prefix = ''): ScoreQuery {
  if (req.malformed !== undefined) throw invalid(prefix === '' ? 'request' : prefix.slice(0, -1), `not a valid ScoreHostsRequest message (${req.malformed})`);
  const hostIdsRaw = req.host_ids ?? [];
  if (hostIdsRaw.length > limits.maxHostsPerRequest) {
    throw invalid(`${prefix}host_ids`, `${hostIdsRaw.length} ids, more than the maximum of ${limits.maxHostsPerRequest}`);
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
