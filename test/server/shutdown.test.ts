import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { ScoreHostsResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsResponse';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { type Scorer, startScorer, startSimulator, unary } from '../helpers';

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
