/**
 * Connection and stream exhaustion (issue 7, defect 6): each transport limit, set small, against
 * raw HTTP/2 clients that break the rules; after each, a real grpc-js client is still answered.
 */
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ScoreHostsRequest } from '../../src/generated/ksmscorer/v1/ScoreHostsRequest';
import type { ScoreHostsResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsResponse';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { expectGrpcError, type Scorer, startScorer, startSimulator, unary, waitUntil } from '../helpers';
import { grpcFrame, HEALTH_WATCH, rawCall, SCORE_HOSTS } from '../raw-grpc';
import { FLAG, FRAME, frame, grpcHeaders, H2_ERROR, RawH2Connection } from '../raw-h2';

const OS = { type: 'rhel_8x64', version: 'Red Hat Enterprise Linux 8.6' };
const HOSTS = 6;
/** Limits no test here reaches unless it sets them lower. */
const ROOMY = {
  KSM_SCORER_HANDSHAKE_TIMEOUT_SECONDS: '60',
  KSM_SCORER_MAX_CONNECTION_IDLE_SECONDS: '600',
  KSM_SCORER_FIRST_MESSAGE_TIMEOUT_SECONDS: '60',
};

describe('transport limits', () => {
  let sim: SimulatedEngine;
  let scorer: Scorer | undefined;
  const open: RawH2Connection[] = [];

  beforeAll(async () => {
    sim = await startSimulator({ hosts: HOSTS, vms: 60, seed: 13 });
  });
  afterEach(async () => {
    for (const c of open.splice(0)) c.destroy();
    await scorer?.close();
    scorer = undefined;
  });
  afterAll(async () => {
    await sim.stop();
  });

  const start = async (env: Record<string, string>) => {
    scorer = await startScorer(sim, { ...ROOMY, ...env });
    return scorer;
  };
  const connect = async (opts: { handshake?: boolean } = {}) => {
    const c = await RawH2Connection.open(scorer!.service.port, opts);
    open.push(c);
    return c;
  };
  const score = (opts: grpc.CallOptions = {}) =>
    unary<ScoreHostsRequest, ScoreHostsResponse__Output>(
      scorer!.client,
      'ScoreHosts',
      { os: OS },
      { deadline: Date.now() + 10_000, ...opts },
    );
  /**
   * A well-formed call through a real grpc-js client is answered, correctly. UNAVAILABLE is retried
   * for a while: a client whose connection a limit closed reconnects after its backoff (1 s first).
   */
  const expectStillServing = async () => {
    const end = Date.now() + 10_000;
    for (;;) {
      try {
        const res = await score();
        expect(res.scores).toHaveLength(HOSTS);
        return;
      } catch (err) {
        if ((err as grpc.ServiceError).code !== grpc.status.UNAVAILABLE || Date.now() > end) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };

  it('streams beyond KSM_SCORER_MAX_CONCURRENT_STREAMS are refused (REFUSED_STREAM), not accumulated', async () => {
    await start({ KSM_SCORER_MAX_CONCURRENT_STREAMS: '4' });
    const c = await connect();
    // 40 calls opened at once that never send their message: a client ignoring the advertised limit.
    for (let i = 0; i < 40; i++) c.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1 + 2 * i, grpcHeaders(SCORE_HOSTS)));
    await waitUntil(() => c.resets().size >= 36);
    const settings = c.frames.find((f) => f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK))!;
    expect(settingValue(settings.payload, 0x3)).toBe(4); // SETTINGS_MAX_CONCURRENT_STREAMS
    const resets = c.resets();
    expect([...resets.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 36 }, (_, i) => 9 + 2 * i));
    expect(new Set(resets.values())).toEqual(new Set([H2_ERROR.REFUSED_STREAM]));
    // A grpc-js client queues its calls beyond the limit: 20 at once on one connection all succeed.
    const results = await Promise.all(Array.from({ length: 20 }, () => score()));
    for (const r of results) expect(r.scores).toHaveLength(HOSTS);
  });

  it('a connection that never speaks HTTP/2, or stops inside the preface, is closed after KSM_SCORER_HANDSHAKE_TIMEOUT_SECONDS', async () => {
    await start({ KSM_SCORER_HANDSHAKE_TIMEOUT_SECONDS: '0.3' });
    const silent = await connect({ handshake: false });
    const partial = await connect({ handshake: false });
    partial.write(Buffer.from('PRI * HTTP/2.0\r\n'));
    const speaking = await connect();
    expect(await silent.waitClosed(10_000)).toBe(true);
    expect(await partial.waitClosed(10_000)).toBe(true);
    // The timeout is for the handshake alone: a connection that made it stays (the idle limit is 600 s here).
    expect(speaking.closed).toBe(false);
    await expectStillServing();
  });

  it('connections beyond KSM_SCORER_MAX_CONNECTIONS: the oldest quiet one makes room; when all are busy the new one is closed when accepted', async () => {
    await start({ KSM_SCORER_MAX_CONNECTIONS: '3' });
    const held = [await connect(), await connect(), await connect()];
    // Busy: every connection sends a PING every 20 ms, so none is quiet for the 100 ms the listener looks.
    const pings = setInterval(() => {
      for (const c of held) if (!c.closed) c.write(frame(FRAME.PING, 0, 0, Buffer.alloc(8)));
    }, 20);
    try {
      const extra = await connect({ handshake: false });
      expect(await extra.waitClosed(10_000)).toBe(true);
      expect(extra.frames).toEqual([]); // closed before any HTTP/2 was spoken
      expect(held.map((c) => c.closed)).toEqual([false, false, false]);
    } finally {
      clearInterval(pings);
    }
    // Quiet now: a new connection replaces the oldest.
    const next = await connect();
    await waitUntil(() => held[0]!.closed);
    expect([next.closed, held[1]!.closed, held[2]!.closed]).toEqual([false, false, false]);
    for (const c of [...held, next]) c.destroy();
    await expectStillServing();
  });

  it('a connection without calls is closed (GOAWAY NO_ERROR) after KSM_SCORER_MAX_CONNECTION_IDLE_SECONDS; clients reconnect', async () => {
    await start({ KSM_SCORER_MAX_CONNECTION_IDLE_SECONDS: '0.3' });
    const idle = await connect();
    expect(await idle.waitClosed(10_000)).toBe(true);
    expect(idle.goawayCode()).toBe(H2_ERROR.NO_ERROR);
    await expectStillServing();
    await new Promise((r) => setTimeout(r, 1_000)); // the client's connection goes idle and is closed too
    await expectStillServing();
  });

  it('KSM_SCORER_MAX_CONNECTIONS idle connections do not lock every real client out until the idle timeout (300 s)', async () => {
    // The file's engine (6 hosts, 60 VMs, seed 13), without ROOMY: the idle limit stays at its default, 300 s.
    scorer = await startScorer(sim, { KSM_SCORER_MAX_CONNECTIONS: '3' });
    // Three connections that made the handshake and then do nothing: the handshake timeout no
    // longer applies and the idle limit is 300 s. The XML-RPC listener replaces the oldest idle
    // connection in this case; the gRPC listener closes every new one.
    for (let i = 0; i < 3; i++) open.push(await RawH2Connection.open(scorer.service.port));
    await new Promise((r) => setTimeout(r, 200));
    const res = await unary<ScoreHostsRequest, ScoreHostsResponse__Output>(
      scorer.client,
      'ScoreHosts',
      { os: OS },
      { deadline: Date.now() + 8_000 },
    );
    expect(res.scores).toHaveLength(6);
  }, 30_000);

  it('a connection is sent GOAWAY at KSM_SCORER_MAX_CONNECTION_AGE_SECONDS and cut after the grace, even with a call open', async () => {
    await start({ KSM_SCORER_MAX_CONNECTION_AGE_SECONDS: '1', KSM_SCORER_MAX_CONNECTION_AGE_GRACE_SECONDS: '0.5' });
    const c = await connect();
    // A Health/Watch call: a legitimately endless stream, so only the grace period ends it.
    c.write(
      frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, grpcHeaders(HEALTH_WATCH)),
      frame(FRAME.DATA, FLAG.END_STREAM, 1, grpcFrame(Buffer.alloc(0))),
    );
    await waitUntil(() => c.frames.some((f) => f.type === FRAME.DATA && f.streamId === 1));
    expect(await c.waitClosed(15_000)).toBe(true);
    expect(c.goawayCode()).toBe(H2_ERROR.NO_ERROR);
    await expectStillServing();
  });

  describe('a call whose request has not arrived within KSM_SCORER_FIRST_MESSAGE_TIMEOUT_SECONDS', () => {
    const env = { KSM_SCORER_FIRST_MESSAGE_TIMEOUT_SECONDS: '0.3' };
    const valid = grpcFrame(Buffer.from([0x12, 0x0b, 0x0a, 0x09, ...Buffer.from('rhel_8x64')])); // ScoreHostsRequest { os: { type } }

    it('gets DEADLINE_EXCEEDED: nothing sent, part of a message, or a whole message and no end of stream', async () => {
      await start(env);
      const open = { keepOpen: true, timeoutMs: 10_000 };
      const nothing = await rawCall(scorer!.address, SCORE_HOSTS, Buffer.alloc(0), open);
      expect(nothing).toMatchObject({ grpcStatus: grpc.status.DEADLINE_EXCEEDED, grpcMessage: 'request not received within 0.3 s' });
      const part = await rawCall(scorer!.address, SCORE_HOSTS, grpcFrame(Buffer.alloc(10), { length: 100 }), open);
      expect(part.grpcStatus).toBe(grpc.status.DEADLINE_EXCEEDED);
      // grpc-js runs a unary handler at the end of the request stream: without it the call would wait forever.
      const unended = await rawCall(scorer!.address, SCORE_HOSTS, valid, open);
      expect(unended.grpcStatus).toBe(grpc.status.DEADLINE_EXCEEDED);
      const watch = await rawCall(scorer!.address, HEALTH_WATCH, Buffer.alloc(0), open);
      expect(watch.grpcStatus).toBe(grpc.status.DEADLINE_EXCEEDED);
      await expectStillServing();
    });

    it('does not end a call whose request came: the same ScoreHosts is answered, a Health/Watch goes on past the timeout', async () => {
      await start(env);
      expect((await rawCall(scorer!.address, SCORE_HOSTS, valid)).grpcStatus).toBe(grpc.status.OK);
      const watch = await rawCall(scorer!.address, HEALTH_WATCH, grpcFrame(Buffer.alloc(0)), { timeoutMs: 1_500 });
      expect(watch.ended).toBe('timeout'); // still open when the test stopped waiting
      expect(watch.body.subarray(5)).toEqual(Buffer.from([0x08, 0x01])); // HealthCheckResponse { status: SERVING }
    });
  });

  it('a request larger than KSM_SCORER_MAX_REQUEST_MB gets RESOURCE_EXHAUSTED, plain or once decompressed', async () => {
    await start({ KSM_SCORER_MAX_REQUEST_MB: '0.01' });
    const ids = Array.from({ length: 400 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
    await expectGrpcError(unary(scorer!.client, 'ScoreHosts', { os: OS, host_ids: ids }), grpc.status.RESOURCE_EXHAUSTED);
    // 1 MiB of zeros is 1 KiB of gzip: only the decompressed size can be held against the limit.
    const bomb = await rawCall(scorer!.address, SCORE_HOSTS, grpcFrame(gzipSync(Buffer.alloc(2 ** 20)), { compressed: true }), {
      headers: { 'grpc-encoding': 'gzip' },
    });
    expect(bomb.grpcStatus).toBe(grpc.status.RESOURCE_EXHAUSTED);
    await expectStillServing();
  });

  it('a ping flood (PINGs sent faster than their ACKs are read) gets the connection closed', async () => {
    await start({});
    const c = await connect();
    c.write(...Array.from({ length: 2_000 }, () => frame(FRAME.PING, 0, 0, Buffer.alloc(8))));
    expect(await c.waitClosed(10_000)).toBe(true);
    // Node's nghttp2 flood guard (more than 1,000 queued PING ACKs) answers GOAWAY INTERNAL_ERROR, not ENHANCE_YOUR_CALM.
    expect(c.goawayCode()).toBe(0x2);
    await expectStillServing();
  });
});

/** The value of setting `id` in a SETTINGS payload (6-byte entries: 2-byte id, 4-byte value). */
function settingValue(payload: Buffer, id: number): number | undefined {
  for (let i = 0; i + 6 <= payload.length; i += 6) if (payload.readUInt16BE(i) === id) return payload.readUInt32BE(i + 2);
  return undefined;
}
