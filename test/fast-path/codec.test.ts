import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeScoreHostsBatchRequest, decodeScoreHostsRequest, type WireScoreRequest } from '../../src/fast-path/decode';
import { encodeScoreHostsBatchResponse, encodeScoreHostsResponse } from '../../src/fast-path/encode';
import { PROTO_ROOT, SCORER_PROTO } from '../../src/contract/proto';
import type { HostScore } from '../../src/scoring/score';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { seededRandom, seededUuid } from '../../src/simulator/random';
import { type Scorer, startScorer, startSimulator } from '../helpers';
import { field, grpcFrame, rawCall, SCORE_HOSTS } from '../raw-grpc';

const root = new protobuf.Root().loadSync(join(PROTO_ROOT, SCORER_PROTO), { keepCase: true });
const Response = root.lookupType('ksmscorer.v1.ScoreHostsResponse');
const BatchResponse = root.lookupType('ksmscorer.v1.ScoreHostsBatchResponse');
const Request = root.lookupType('ksmscorer.v1.ScoreHostsRequest');
const BatchRequest = root.lookupType('ksmscorer.v1.ScoreHostsBatchRequest');
const loaderOptions = { longs: String, enums: String, defaults: true, oneofs: true };
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

/** Unset, empty, ordinary, non-ASCII, or long enough to need a two-byte length. */
function randomOs(random: () => number): { type: string; version: string } | null {
  const pick = random();
  if (pick < 0.2) return null;
  if (pick < 0.3) return { type: '', version: '' };
  if (pick < 0.8) return { type: 'rhel_8x64', version: random() < 0.5 ? '' : 'Red Hat Enterprise Linux 8.6' };
  return { type: `système-${'x'.repeat(Math.floor(random() * 200))}`, version: 'é'.repeat(Math.floor(random() * 100)) };
}

describe('hand-written encoders decode with protobufjs to what protobufjs itself encodes', () => {
  it('ScoreHostsResponse, 300 random messages (0 to 600 hosts)', () => {
    const random = seededRandom(99);
    for (let i = 0; i < 300; i++) {
      const msg = {
        scores: randomScores(random, Math.floor(random() * 600)),
        inventory: randomInventory(random),
        scored_os: randomOs(random),
      };
      const ours = encodeScoreHostsResponse(msg);
      const theirs = Response.encode(Response.fromObject(msg)).finish();
      expect(toObject(Response, ours)).toEqual(toObject(Response, theirs));
    }
  });

  it('bodies of 128 bytes or more get a longer length (long, non-ASCII host ids)', () => {
    const long = (n: number, ch: string) => Array.from({ length: n }, () => ch).join('');
    const scores: HostScore[] = [long(120, 'a'), long(200, 'é'), long(5000, 'x')].map((host_id, i) => ({
      host_id,
      score: 12.5 * i,
      vm_count: i,
      same_type_count: i,
      same_version_count: 0,
      found: true,
    }));
    const msg = { scores, inventory: randomInventory(seededRandom(5)) };
    const ours = encodeScoreHostsResponse(msg);
    expect(toObject(Response, ours)).toEqual(toObject(Response, Response.encode(Response.fromObject(msg)).finish()));
  });

  it('ScoreHostsBatchResponse, with errors and empty results', () => {
    const random = seededRandom(7);
    for (let i = 0; i < 100; i++) {
      const results = Array.from({ length: Math.floor(random() * 20) }, () =>
        random() < 0.3
          ? {
              scores: [],
              error: {
                code: 1 + Math.floor(random() * 15),
                message: `requests[3].vm_id: not a UUID: "x${'é'.repeat(Math.floor(random() * 5))}"`,
              },
              scored_os: null,
            }
          : { scores: randomScores(random, Math.floor(random() * 70)), error: null, scored_os: randomOs(random) },
      );
      const msg = { results, inventory: randomInventory(random) };
      const ours = encodeScoreHostsBatchResponse(msg);
      const theirs = BatchResponse.encode(BatchResponse.fromObject(msg)).finish();
      expect(toObject(BatchResponse, ours)).toEqual(toObject(BatchResponse, theirs));
    }
  });
});

function randomRequest(random: () => number): Record<string, unknown> {
  const req: Record<string, unknown> = {
    host_ids: Array.from({ length: Math.floor(random() * 40) }, () => (random() < 0.1 ? `é${random()}` : seededUuid(random))),
  };
  const pick = random();
  if (pick < 0.45) req.vm_id = seededUuid(random);
  else if (pick < 0.9) req.os = { type: random() < 0.1 ? '' : 'rhel_8x64', version: random() < 0.5 ? '' : 'Red Hat Enterprise Linux 8.6' };
  return req;
}

/** A decoded request as proto-loader's plain object: host ids as strings, the byte ranges left out, unset fields absent. */
const plain = (r: WireScoreRequest) =>
  JSON.parse(JSON.stringify({ vm: r.vm, vm_id: r.vm_id, os: r.os, host_ids: r.host_ids, malformed: r.malformed })) as unknown;
const plainBatch = (b: ReturnType<typeof decodeScoreHostsBatchRequest>) => ({
  requests: b.requests.map(plain),
  ...(b.malformed === undefined ? {} : { malformed: b.malformed }),
});

describe('hand-written decoders give what proto-loader gives', () => {
  it('ScoreHostsRequest, 500 random messages', () => {
    const random = seededRandom(3);
    for (let i = 0; i < 500; i++) {
      const bytes = Buffer.from(Request.encode(Request.fromObject(randomRequest(random))).finish());
      expect(plain(decodeScoreHostsRequest(bytes))).toEqual(Request.toObject(Request.decode(bytes), loaderOptions));
    }
  });

  it('ScoreHostsBatchRequest, and unknown fields are skipped', () => {
    const random = seededRandom(4);
    for (let i = 0; i < 100; i++) {
      const msg = { requests: Array.from({ length: Math.floor(random() * 10) }, () => randomRequest(random)) };
      const bytes = Buffer.from(BatchRequest.encode(BatchRequest.fromObject(msg)).finish());
      expect(plainBatch(decodeScoreHostsBatchRequest(bytes))).toEqual(BatchRequest.toObject(BatchRequest.decode(bytes), loaderOptions));
    }
    // field 9 (varint 150) and field 10 (bytes) before a vm_id
    const unknown = Buffer.concat([
      Buffer.from([0x48, 0x96, 0x01, 0x52, 0x02, 0x61, 0x62]),
      Buffer.from(Request.encode({ vm_id: 'x' }).finish()),
    ]);
    expect(plain(decodeScoreHostsRequest(unknown))).toEqual({ vm_id: 'x', vm: 'vm_id', host_ids: [] });
  });

  it('flags a truncated or garbled message instead of throwing', () => {
    const bytes = Buffer.from(Request.encode({ host_ids: ['a1293e54-dae8-496f-baa4-27719592113e'] }).finish());
    expect(plain(decodeScoreHostsRequest(bytes.subarray(0, 10)))).toEqual({ host_ids: [], malformed: 'truncated field' });
    expect(plainBatch(decodeScoreHostsBatchRequest(Buffer.from([0x0a, 0x05, 0x1a])))).toEqual({
      requests: [],
      malformed: 'truncated field',
    });
    expect(decodeScoreHostsRequest(Buffer.from([0x0f])).malformed).toBe('unsupported wire type 7');
  });
});

describe('unknown fields in a request on the wire', () => {
  /** ScoreHostsRequest { os: { type: "rhel_8x64" } }, every host of the inventory. */
  const OS_REQUEST = field(0x12, field(0x0a, Buffer.from('rhel_8x64')));
  let sim: SimulatedEngine | undefined;
  let scorer: Scorer | undefined;
  afterEach(async () => {
    await scorer?.close();
    scorer = undefined;
    await sim?.stop();
    sim = undefined;
  });

  it('an unknown group field (wire types 3 and 4, valid protobuf) is skipped like any other unknown field', async () => {
    sim = await startSimulator({ hosts: 6, vms: 60, seed: 13 });
    scorer = await startScorer(sim);
    const plain = await rawCall(scorer.address, SCORE_HOSTS, grpcFrame(OS_REQUEST));
    expect(plain.grpcStatus).toBe(grpc.status.OK);
    // field 15 as a group holding a varint field: protobufjs and the other runtimes skip it; codec.ts answers INVALID_ARGUMENT.
    const withGroup = await rawCall(
      scorer.address,
      SCORE_HOSTS,
      grpcFrame(Buffer.concat([OS_REQUEST, Buffer.from([0x7b, 0x08, 0x01, 0x7c])])),
    );
    expect(withGroup.grpcStatus, withGroup.grpcMessage).toBe(grpc.status.OK);
    expect(withGroup.body).toEqual(plain.body);
  });
});
