import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { ScoreHostsResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsResponse';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { type Scorer, startScorer, startSimulator, unary } from '../helpers';
import { killAll, type Proc, serveCli } from '../processes';
import { field, grpcFrame, rawCall, SCORE_HOSTS_BATCH } from '../raw-grpc';

describe('shutdown', () => {
  let sim: SimulatedEngine;
  let scorer: Scorer;
  afterEach(async () => {
    await scorer.close();
    await sim.stop();
  });

  /**
   * Starts a call that waits on the (slow) engine, once the client's connection is up: a
   * connection still in its handshake when shutdown starts is closed, with no call on it yet.
   */
  const startSlowCall = async (latencyMs: number) => {
    await unary(scorer.client, 'ScoreHosts', { os: { type: 'other', version: '' } });
    sim.latencyMs = latencyMs;
    const call = unary<unknown, ScoreHostsResponse__Output>(scorer.client, 'ScoreHosts', {
      os: { type: 'other', version: '' },
      // unknown to the cache, so the call waits on the engine
      host_ids: ['00000000-0000-4000-8000-0000000000aa'],
    });
    return { call };
  };

  it('drains in-flight calls within the grace period', async () => {
    sim = await startSimulator();
    scorer = await startScorer(sim, { KSM_SCORER_SHUTDOWN_GRACE_SECONDS: '5' });
    const { call } = await startSlowCall(300);
    await new Promise((r) => setTimeout(r, 50));
    const stopped = scorer.service.stop();
    const res = await call;
    expect(res.scores[0]).toMatchObject({ found: false });
    await stopped;
  });

  it('cuts calls still running after the grace period', async () => {
    sim = await startSimulator();
    scorer = await startScorer(sim, { KSM_SCORER_SHUTDOWN_GRACE_SECONDS: '0.1' });
    const call = (await startSlowCall(3_000)).call.catch((e: grpc.ServiceError) => e);
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    await scorer.service.stop();
    expect(Date.now() - t0).toBeLessThan(2_000);
    const err = await call;
    expect((err as grpc.ServiceError).code).toBe(grpc.status.CANCELLED);
  });
});

describe('SIGTERM to `ksm-scorer serve` with calls at the documented maxima in flight', () => {
  /** ScoreHostsRequest { os: { type: "rhel_8x64" } }, every host of the inventory. */
  const OS_REQUEST = field(0x12, field(0x0a, Buffer.from('rhel_8x64')));
  const sessions: http2.ClientHttp2Session[] = [];
  afterEach(async () => {
    for (const s of sessions.splice(0)) s.destroy();
    await killAll();
  });

  const session = (address: string) => {
    const s = http2.connect(`http://${address}`);
    s.on('error', () => {});
    sessions.push(s);
    return s;
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /** Every log line on stderr is JSON (issue 7: no stray warnings or stack traces). */
  const expectJsonLogs = (proc: Proc) => {
    for (const line of proc.stderr.split('\n').filter((l) => l !== '')) expect(() => JSON.parse(line), line.slice(0, 300)).not.toThrow();
  };

  it('SIGTERM with ScoreHostsBatch calls at the documented maxima in flight exits within KSM_SCORER_SHUTDOWN_GRACE_SECONDS + 1 s', async () => {
    const { server, address } = await serveCli(500, 5_000, { KSM_SCORER_SHUTDOWN_GRACE_SECONDS: '1' });
    // 100 items x 500 hosts = 50,000 host scores: KSM_SCORER_MAX_BATCH_HOST_SCORES (it was 500,000, over a second a call).
    const batch = grpcFrame(Buffer.concat(Array.from({ length: 100 }, () => field(0x0a, OS_REQUEST))));
    const s = session(address);
    // Ten calls on one connection, each scored and encoded in one synchronous run.
    const calls = Array.from({ length: 10 }, () => rawCall(address, SCORE_HOSTS_BATCH, batch, { session: s, timeoutMs: 60_000 }));
    await sleep(500);
    const t0 = Date.now();
    server.child.kill('SIGTERM');
    const code = await server.exited;
    const tookMs = Date.now() - t0;
    await Promise.all(calls);
    expect(code).toBe(0);
    expectJsonLogs(server);
    // The grace period (1 s) plus a second, plus slack for a loaded 2-core machine; it took ~15 s.
    expect(tookMs).toBeLessThan(4_000);
  }, 90_000);
});
