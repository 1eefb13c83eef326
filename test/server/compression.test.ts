/**
 * Compressed messages whose payload does not inflate (issue 7, defect 1): grpc-js 1.14.3 let
 * zlib's 'error' go unhandled and the process died. Every RPC must answer with a status instead.
 */
import { join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScoreHostsRequest } from '../../src/generated/ksmscorer/v1/ScoreHostsRequest';
import type { ScoreHostsResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsResponse';
import { PROTO_ROOT, SCORER_PROTO } from '../../src/contract/proto';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { type Scorer, startScorer, startSimulator, unary } from '../helpers';
import { grpcFrame, HEALTH_CHECK, rawCall, SCORE_HOSTS, SCORE_HOSTS_BATCH } from '../raw-grpc';

const root = new protobuf.Root().loadSync(join(PROTO_ROOT, SCORER_PROTO), { keepCase: true });
const Request = root.lookupType('ksmscorer.v1.ScoreHostsRequest');
const BatchRequest = root.lookupType('ksmscorer.v1.ScoreHostsBatchRequest');
const OS = { type: 'rhel_8x64', version: 'Red Hat Enterprise Linux 8.6' };
const scoreBody = Buffer.from(Request.encode({ os: OS }).finish());
const batchBody = Buffer.from(BatchRequest.encode({ requests: [{ os: OS }, { os: OS }] }).finish());
const healthBody = Buffer.from([0x0a, 0x00]); // HealthCheckRequest { service: "" }

const compress = { gzip: gzipSync, deflate: deflateSync } as const;
const RPCS = [
  ['ScoreHosts', SCORE_HOSTS, scoreBody],
  ['ScoreHostsBatch', SCORE_HOSTS_BATCH, batchBody],
  ['Health/Check', HEALTH_CHECK, healthBody],
] as const;

/** Payloads sent with the compressed flag set that do not inflate. */
function badPayloads(encoding: keyof typeof compress, valid: Buffer): [string, Buffer][] {
  const whole = compress[encoding](valid);
  return [
    ['not compressed at all ("abcd")', Buffer.from('abcd')],
    ['empty', Buffer.alloc(0)],
    ['truncated', whole.subarray(0, Math.max(1, whole.length - 6))],
    ['only the header', whole.subarray(0, 2)],
  ];
}

describe('compressed messages that do not inflate', () => {
  let sim: SimulatedEngine;
  let scorer: Scorer;

  beforeAll(async () => {
    sim = await startSimulator({ hosts: 6, vms: 60, seed: 11 });
    scorer = await startScorer(sim);
  });
  afterAll(async () => {
    await scorer.close();
    await sim.stop();
  });

  /** The service still answers a well-formed call through a real grpc-js client, correctly. */
  const expectStillServing = async () => {
    const res = await unary<ScoreHostsRequest, ScoreHostsResponse__Output>(
      scorer.client,
      'ScoreHosts',
      { os: OS },
      { deadline: Date.now() + 5_000 },
    );
    expect(res.scores).toHaveLength(6);
    expect(res.inventory?.host_count).toBe(6);
  };

  for (const encoding of ['gzip', 'deflate'] as const) {
    for (const [rpc, path, valid] of RPCS) {
      it(`${rpc}, grpc-encoding ${encoding}: a valid compressed message is answered (control)`, async () => {
        const answer = await rawCall(scorer.address, path, grpcFrame(compress[encoding](valid), { compressed: true }), {
          headers: { 'grpc-encoding': encoding },
        });
        expect(answer).toMatchObject({ grpcStatus: grpc.status.OK, ended: undefined });
        expect(answer.body.length).toBeGreaterThan(5);
      });

      for (const [what, payload] of badPayloads(encoding, valid)) {
        it(`${rpc}, grpc-encoding ${encoding}, payload ${what}: INTERNAL, and the service goes on`, async () => {
          const answer = await rawCall(scorer.address, path, grpcFrame(payload, { compressed: true }), {
            headers: { 'grpc-encoding': encoding },
          });
          // grpc-js answers a message that does not inflate with INTERNAL "Failed to decompress message".
          expect(answer.ended).toBeUndefined();
          expect(answer.grpcStatus).toBe(grpc.status.INTERNAL);
          expect(answer.grpcMessage).toMatch(/decompress/i);
          await expectStillServing();
        });
      }
    }
  }

  it('a compressed flag with no grpc-encoding is read as identity: INVALID_ARGUMENT naming the message', async () => {
    const answer = await rawCall(scorer.address, SCORE_HOSTS, grpcFrame(Buffer.from('abcd'), { compressed: true }));
    expect(answer.grpcStatus).toBe(grpc.status.INVALID_ARGUMENT);
    expect(answer.grpcMessage).toMatch(/ScoreHostsRequest/);
    await expectStillServing();
  });

  it('an encoding grpc-js does not support is UNIMPLEMENTED', async () => {
    const answer = await rawCall(scorer.address, SCORE_HOSTS, grpcFrame(Buffer.from('abcd'), { compressed: true }), {
      headers: { 'grpc-encoding': 'br' },
    });
    expect(answer.grpcStatus).toBe(grpc.status.UNIMPLEMENTED);
    await expectStillServing();
  });
});
