import { describe, expect, it } from 'vitest';
import type { ScoreHostsRequest__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsRequest';
import { parseScoreRequest } from '../../src/scoring/request';

const limits = { maxHostsPerRequest: 3 };
const req = (r: Partial<ScoreHostsRequest__Output>): ScoreHostsRequest__Output => ({ host_ids: [], ...r });
const ID = 'a1293e54-dae8-496f-baa4-27719592113e';

describe('parseScoreRequest', () => {
  it('takes UUIDs in either case and gives them in lower case, each host once (issue 19)', () => {
    expect(parseScoreRequest(req({ vm: 'vm_id', vm_id: ID.toUpperCase(), host_ids: [ID, ID.toUpperCase()] }), limits)).toEqual({
      kind: 'vm',
      vmId: ID,
      hostIds: [ID],
    });
  });

  it.each([
    ['no dashes', 'a1293e54dae8496fbaa427719592113e'],
    ['one digit short', 'a1293e54-dae8-496f-baa4-27719592113'],
    ['not hex', 'g1293e54-dae8-496f-baa4-27719592113e'],
    ['wrong separator', 'a1293e54-dae8-496f-baa4_27719592113e'],
    ['empty', ''],
  ])('rejects a host id with %s, naming the field and index', (_why, bad) => {
    expect(() =>
      parseScoreRequest(req({ vm: 'os', os: { type: 'other', version: '' }, host_ids: [ID, bad] }), limits, 'requests[2].'),
    ).toThrow(`requests[2].host_ids[1]: not a UUID: ${JSON.stringify(bad)}`);
  });

  it('no host ids means every host; more than the limit is refused', () => {
    expect(parseScoreRequest(req({ vm: 'os', os: { type: 'other', version: '9' } }), limits)).toEqual({
      kind: 'os',
      os: { type: 'other', version: '9' },
      hostIds: undefined,
    });
    expect(() => parseScoreRequest(req({ vm: 'os', os: { type: 'other', version: '' }, host_ids: [ID, ID, ID, ID] }), limits)).toThrow(
      'host_ids: 4 ids, more than the maximum of 3',
    );
  });
});
