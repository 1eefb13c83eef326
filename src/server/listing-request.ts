/** Validation of the listing requests (ListVmsRequest and the empty ones); the messages name the field. */
import type { ListVmsRequest__Output } from '../generated/ksmscorer/v1/ListVmsRequest';
import { uuid } from '../ovirt/model';
import { type DecodedRequest, invalid, quote } from '../scoring/request';

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
