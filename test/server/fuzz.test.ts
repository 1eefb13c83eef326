/**
 * Fuzz (issue 7, "Keep it tested"): random, mutated, compressed, oversized and deeply nested
 * requests and raw HTTP/2 frames to every RPC of a `ksm-scorer serve` process, for a bounded
 * time. After each input the process is up, a grpc-js call is answered as before, and no
 * status was UNKNOWN. A failure prints fast-check's seed and path to replay it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostScorerServiceClient } from '../../src/generated/ksmscorer/v1/HostScorerService';
import type { ScoreHostsRequest } from '../../src/generated/ksmscorer/v1/ScoreHostsRequest';
import type { ScoreHostsResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsResponse';
import { loadScorerProto, PROTO_ROOT, SCORER_PROTO } from '../../src/contract/proto';
import { unary } from '../helpers';
import { killAll, type Proc, serveOnSimulator, spawnProc } from '../processes';
import {
  field,
  grpcFrame,
  HEALTH_CHECK,
  HEALTH_WATCH,
  type RawAnswer,
  rawCall,
  REFLECTION_V1,
  REFLECTION_V1ALPHA,
  SCORE_HOSTS,
  SCORE_HOSTS_BATCH,
  varint,
} from '../raw-grpc';
import { frame, RawH2Connection } from '../raw-h2';

const CLI = join(__dirname, '..', '..', 'dist', 'cli.js');
/** How long the random part runs; the fixed corpus comes on top. */
const FUZZ_MS = 10_000;
const MAX_REQUEST = 4 * 2 ** 20; // KSM_SCORER_MAX_REQUEST_MB's default, which the process runs with

const root = new protobuf.Root().loadSync(join(PROTO_ROOT, SCORER_PROTO), { keepCase: true });
const encode = (type: string, value: object) => Buffer.from(root.lookupType(type).encode(value).finish());
const OS = { type: 'rhel_8x64', version: 'Red Hat Enterprise Linux 8.6' };
const ID = '00000000-0000-4000-8000-00000000beef';

interface Rpc {
  readonly path: string;
  /** A valid request message: the base for mutations. */
  readonly valid: Buffer;
  /** Health/Watch answers and then stays open: only waited on briefly. */
  readonly endless: boolean;
}
const RPCS: readonly Rpc[] = [
  { path: SCORE_HOSTS, valid: encode('ksmscorer.v1.ScoreHostsRequest', { os: OS, host_ids: [ID] }), endless: false },
  {
    path: SCORE_HOSTS_BATCH,
    valid: encode('ksmscorer.v1.ScoreHostsBatchRequest', { requests: [{ os: OS }, { vm_id: ID, host_ids: [ID] }] }),
    endless: false,
  },
  { path: '/ksmscorer.v1.HostScorerService/ListOperatingSystems', valid: Buffer.alloc(0), endless: false },
  { path: '/ksmscorer.v1.HostScorerService/ListHosts', valid: Buffer.alloc(0), endless: false },
  {
    path: '/ksmscorer.v1.HostScorerService/ListVms',
    valid: encode('ksmscorer.v1.ListVmsRequest', { host_id: ID, max_results: 5 }),
    endless: false,
  },
  { path: HEALTH_CHECK, valid: field(0x0a, Buffer.from('ksmscorer.v1.HostScorerService')), endless: false },
  { path: HEALTH_WATCH, valid: field(0x0a, Buffer.from('')), endless: true },
  // ServerReflectionRequest { file_containing_symbol (4) } and { list_services (7) }
  { path: REFLECTION_V1, valid: field(0x22, Buffer.from('ksmscorer.v1.HostScorerService')), endless: false },
  { path: REFLECTION_V1ALPHA, valid: field(0x3a, Buffer.from('')), endless: false },
];

/** Inputs too heavy to generate at random, sent to every RPC once. */
function corpus(rpc: Rpc): [string, Buffer, Record<string, string>, number?][] {
  const bigIds = encode('ksmscorer.v1.ScoreHostsRequest', { os: OS, host_ids: Array.from({ length: 120_000 }, () => ID) });
  const whole = gzipSync(rpc.valid);
  return [
    [
      'oversized (over 4 MiB)',
      grpcFrame(Buffer.concat([rpc.valid, rpc.path === SCORE_HOSTS ? bigIds : field(0x7a, Buffer.alloc(MAX_REQUEST))])),
      {},
      grpc.status.RESOURCE_EXHAUSTED,
    ],
    [
      'gzip bomb (16 MiB of zeros)',
      grpcFrame(gzipSync(Buffer.alloc(16 * 2 ** 20)), { compressed: true }),
      { 'grpc-encoding': 'gzip' },
      grpc.status.RESOURCE_EXHAUSTED,
    ],
    ['length prefix of 4 GiB', grpcFrame(rpc.valid, { length: 0xffff_ffff }), {}, grpc.status.RESOURCE_EXHAUSTED],
    ['100,000 nested groups', grpcFrame(Buffer.concat([rpc.valid, Buffer.alloc(100_000, 0x7b), Buffer.alloc(100_000, 0x7c)])), {}],
    ['20,000 nested messages', grpcFrame(Buffer.concat([rpc.valid, nested(20_000)])), {}],
    ['gzip "abcd"', grpcFrame(Buffer.from('abcd'), { compressed: true }), { 'grpc-encoding': 'gzip' }, grpc.status.INTERNAL],
    ['deflate, empty', grpcFrame(Buffer.alloc(0), { compressed: true }), { 'grpc-encoding': 'deflate' }, grpc.status.INTERNAL],
    [
      'gzip, truncated',
      grpcFrame(whole.subarray(0, whole.length - 4), { compressed: true }),
      { 'grpc-encoding': 'gzip' },
      grpc.status.INTERNAL,
    ],
  ];
}

describe('fuzz: every RPC of a ksm-scorer process', () => {
  let server: Proc;
  let address: string;
  let client: HostScorerServiceClient;
  let baseline: ScoreHostsResponse__Output;
  const statuses = new Map<string, number>();

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `make test` (it builds first)');
    const started = await serveOnSimulator((args, env) => spawnProc(process.execPath, [CLI, ...args], env), 12, 240);
    server = started.server;
    address = `127.0.0.1:${started.port}`;
    client = new (loadScorerProto().ksmscorer.v1.HostScorerService)(address, grpc.credentials.createInsecure());
    baseline = await score();
  }, 30_000);
  afterAll(async () => {
    client?.close();
    await killAll();
  });

  const score = () =>
    unary<ScoreHostsRequest, ScoreHostsResponse__Output>(client, 'ScoreHosts', { os: OS }, { deadline: Date.now() + 10_000 });

  /** The invariants after any input: no UNKNOWN, unary calls ended, process up, the same answer as before. */
  const expectInvariants = async (rpc: Rpc, answer: RawAnswer | undefined) => {
    if (answer !== undefined) {
      const key = answer.grpcStatus === undefined ? `HTTP ${answer.httpStatus}, ${answer.ended}` : grpc.status[answer.grpcStatus]!;
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      expect(answer.grpcStatus, `status of ${rpc.path}: ${answer.grpcMessage}`).not.toBe(grpc.status.UNKNOWN);
      if (!rpc.endless) {
        expect(answer.ended, `${rpc.path} did not answer`).not.toBe('timeout');
        // without a grpc-status, the call must have been refused at the HTTP level (415) or reset
        if (answer.grpcStatus === undefined) expect(answer.httpStatus, `${rpc.path}: ${answer.ended}`).not.toBe(200);
      }
    }
    expect(server.child.exitCode, server.stderr.slice(-2000)).toBeNull();
    expect((await score()).scores).toEqual(baseline.scores);
  };
  const send = (rpc: Rpc, body: Buffer, headers: Record<string, string> = {}) =>
    rawCall(address, rpc.path, body, { headers, timeoutMs: rpc.endless ? 300 : 10_000 });

  it('the corpus: oversized, bombs, length lies, deep nesting, bad compressed payloads', async () => {
    for (const rpc of RPCS) {
      // The statuses of the inputs that have one right status, compared at once (the messages for a failure to show).
      const got: Record<string, string | undefined> = {};
      const want: Record<string, string | undefined> = {};
      const messages: string[] = [];
      for (const [what, body, headers, expected] of corpus(rpc)) {
        const answer = await send(rpc, body, headers);
        await expectInvariants(rpc, answer);
        if (expected === undefined) continue;
        got[what] = answer.grpcStatus === undefined ? undefined : grpc.status[answer.grpcStatus];
        want[what] = grpc.status[expected];
        messages.push(`${what}: ${answer.grpcMessage}`);
      }
      expect(got, `${rpc.path}; ${messages.join('; ')}`).toEqual(want);
    }
  }, 120_000);

  it(
    `random and mutated inputs for ${FUZZ_MS / 1000} s`,
    async () => {
      const rpc = fc.constantFrom(...RPCS);
      const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((b) => Buffer.from(b));
      const mutation = fc.record({
        op: fc.constantFrom('flip', 'insert', 'delete', 'truncate', 'repeat'),
        at: fc.nat(),
        byte: fc.integer({ min: 0, max: 255 }),
      });
      const headers = fc.record(
        {
          'grpc-encoding': fc.constantFrom('gzip', 'deflate', 'identity', 'br', 'x-nope', ''),
          'grpc-timeout': fc.constantFrom('1n', '0S', '100m', '99999999H', '-1S', 'abc', '1'),
          // mostly gRPC's: any other type is refused with HTTP 415 before reaching anything else
          'content-type': fc.oneof(
            { arbitrary: fc.constantFrom('application/grpc', 'application/grpc+proto'), weight: 6 },
            fc.constantFrom('application/json', 'text/plain'),
          ),
          'grpc-accept-encoding': fc.constantFrom('gzip', 'identity,deflate', ''),
        },
        { requiredKeys: [] },
      );
      const input = fc.oneof(
        // a gRPC frame around a mutated valid message, or around random bytes
        fc.record({
          kind: fc.constant('message' as const),
          rpc,
          mutations: fc.array(mutation, { maxLength: 6 }),
          random: fc.option(bytes(600)),
          headers,
        }),
        // the compressed flag over a mutated compressed message, or over random bytes
        fc.record({
          kind: fc.constant('compressed' as const),
          rpc,
          encoding: fc.constantFrom('gzip', 'deflate'),
          mutations: fc.array(mutation, { maxLength: 4 }),
          random: fc.option(bytes(300)),
        }),
        // bytes that need not be gRPC framing at all (truncated prefixes, several messages, garbage)
        fc.record({ kind: fc.constant('body' as const), rpc, body: bytes(2_000), headers }),
        // a length prefix that lies, either way
        fc.record({ kind: fc.constant('length' as const), rpc, length: fc.oneof(fc.nat({ max: 400 }), fc.nat()), payload: bytes(200) }),
        // HTTP/2 frames of any type, flags and stream after a valid handshake
        fc.record({
          kind: fc.constant('h2' as const),
          frames: fc.array(
            fc.record({
              type: fc.integer({ min: 0, max: 12 }),
              flags: fc.integer({ min: 0, max: 255 }),
              stream: fc.integer({ min: 0, max: 9 }),
              payload: bytes(64),
            }),
            { minLength: 1, maxLength: 12 },
          ),
        }),
      );

      const run = async (c: ValueOf<typeof input>) => {
        switch (c.kind) {
          case 'message':
            return expectInvariants(c.rpc, await send(c.rpc, grpcFrame(c.random ?? mutate(c.rpc.valid, c.mutations)), c.headers));
          case 'compressed': {
            const payload = c.random ?? mutate((c.encoding === 'gzip' ? gzipSync : deflateSync)(c.rpc.valid), c.mutations);
            return expectInvariants(c.rpc, await send(c.rpc, grpcFrame(payload, { compressed: true }), { 'grpc-encoding': c.encoding }));
          }
          case 'body':
            return expectInvariants(c.rpc, await send(c.rpc, c.body, c.headers));
          case 'length':
            return expectInvariants(c.rpc, await send(c.rpc, grpcFrame(c.payload, { length: c.length })));
          case 'h2': {
            const conn = await RawH2Connection.open(Number(address.split(':')[1]));
            conn.write(...c.frames.map((f) => frame(f.type, f.flags, f.stream, f.payload)));
            await conn.waitClosed(50);
            conn.destroy();
            return expectInvariants(RPCS[0]!, undefined);
          }
        }
      };

      const details = await fc.check(fc.asyncProperty(input, run), {
        numRuns: 1_000_000,
        interruptAfterTimeLimit: FUZZ_MS,
        markInterruptAsFailure: false,
      });
      if (details.failed) throw new Error(fc.defaultReportMessage(details) ?? 'fuzz failed');
      // Not a speed check: that the fuzz ran at all and reached the error paths it is for.
      expect(details.numRuns).toBeGreaterThan(50);
      expect([...statuses.keys()]).toEqual(expect.arrayContaining(['OK', 'INVALID_ARGUMENT', 'INTERNAL']));
    },
    FUZZ_MS + 60_000,
  );
});

type ValueOf<A> = A extends fc.Arbitrary<infer T> ? T : never;
type Mutation = { op: 'flip' | 'insert' | 'delete' | 'truncate' | 'repeat'; at: number; byte: number };

function mutate(base: Buffer, mutations: readonly Mutation[]): Buffer {
  let b = Buffer.from(base);
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % b.length;
    if (m.op === 'flip' && b.length > 0) b[at] = b[at]! ^ (m.byte || 1);
    else if (m.op === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at)]);
    else if (m.op === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
    else if (m.op === 'truncate') b = b.subarray(0, at);
    else if (m.op === 'repeat') b = Buffer.concat([b, b.subarray(at)]);
  }
  return b;
}

/** `depth` length-delimited fields (number 15) each inside the last, written outside-in in one buffer. */
function nested(depth: number): Buffer {
  const sizes: number[] = [0]; // sizes[i]: bytes inside level i, counted from the innermost
  for (let i = 1; i <= depth; i++) sizes.push(1 + varint(sizes[i - 1]!).length + sizes[i - 1]!);
  const parts: Buffer[] = [];
  for (let i = depth; i >= 1; i--) parts.push(Buffer.from([0x7a]), varint(sizes[i - 1]!));
  return Buffer.concat(parts);
}
