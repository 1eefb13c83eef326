import { join } from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { encodeScoreHostsBatchResponse, encodeScoreHostsResponse } from '../../src/server/codec';
import { PROTO_ROOT, SCORER_PROTO } from '../../src/server/proto';
import { isUuid } from '../../src/server/request';
import type { HostScore } from '../../src/scoring/score';
import { seededRandom, seededUuid } from '../../src/simulator/inventory';

const root = new protobuf.Root().loadSync(join(PROTO_ROOT, SCORER_PROTO), { keepCase: true });
const Response = root.lookupType('ksmscorer.v1.ScoreHostsResponse');
const BatchResponse = root.lookupType('ksmscorer.v1.ScoreHostsBatchResponse');
const toObject = (t: protobuf.Type, bytes: Uint8Array) => t.toObject(t.decode(bytes), { longs: String, defaults: true });

function randomScores(random: () => number, n: number): HostScore[] {
  return Array.from({ length: n }, () => {
    const vm = Math.floor(random() * 3) === 0 ? 0 : Math.floor(random() * 400);
    const type = Math.floor(random() * (vm + 1));
    const version = Math.floor(random() * (type + 1));
    const found = random() < 0.9;
    return {
      host_id: random() < 0.05 ? `hôte-${Math.floor(random() * 1e6)}` : seededUuid(random),
      score: found && vm > 0 ? (100 * version + 20 * (type - version)) / vm : 0,
      vm_count: found ? vm : 0,
      same_type_count: found ? type : 0,
      same_version_count: found ? version : 0,
      found,
    };
  });
}

const randomInventory = (random: () => number) => ({
  refreshed_at: random() < 0.1 ? null : { seconds: String(Math.floor(1.7e9 + random() * 1e8)), nanos: Math.floor(random() * 1000) * 1e6 },
  stale: random() < 0.3,
  generation: String(Math.floor(random() * 2 ** 40)),
  host_count: Math.floor(random() * 6000),
  vm_count: Math.floor(random() * 200_000),
});

describe('hand-written encoders decode with protobufjs to what protobufjs itself encodes', () => {
  it('ScoreHostsResponse, 300 random messages (0 to 600 hosts)', () => {
    const random = seededRandom(99);
    for (let i = 0; i < 300; i++) {
      const msg = { scores: randomScores(random, Math.floor(random() * 600)), inventory: randomInventory(random) };
      const ours = encodeScoreHostsResponse(msg);
      const theirs = Response.encode(Response.fromObject(msg)).finish();
      expect(toObject(Response, ours)).toEqual(toObject(Response, theirs));
    }
  });

  it('ScoreHostsBatchResponse, with errors and empty results', () => {
    const random = seededRandom(7);
    for (let i = 0; i < 100; i++) {
      const results = Array.from({ length: Math.floor(random() * 20) }, () =>
        random() < 0.3
          ? { scores: [], error: { code: 1 + Math.floor(random() * 15), message: `requests[3].vm_id: not a UUID: "x${'é'.repeat(Math.floor(random() * 5))}"` } }
          : { scores: randomScores(random, Math.floor(random() * 70)), error: null },
      );
      const msg = { results, inventory: randomInventory(random) };
      const ours = encodeScoreHostsBatchResponse(msg);
      const theirs = BatchResponse.encode(BatchResponse.fromObject(msg)).finish();
      expect(toObject(BatchResponse, ours)).toEqual(toObject(BatchResponse, theirs));
    }
  });
});

describe('isUuid', () => {
  it.each([
    ['a1293e54-dae8-496f-baa4-27719592113e', true],
    ['A1293E54-DAE8-496F-BAA4-27719592113E', true],
    ['a1293e54dae8496fbaa427719592113e', false],
    ['a1293e54-dae8-496f-baa4-27719592113', false],
    ['g1293e54-dae8-496f-baa4-27719592113e', false],
    ['a1293e54-dae8-496f-baa4_27719592113e', false],
    ['', false],
  ])('%s -> %s', (s, want) => expect(isUuid(s)).toBe(want));
});
