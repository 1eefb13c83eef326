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

  const slowCall = () =>
    unary<unknown, ScoreHostsResponse__Output>(scorer.client, 'ScoreHosts', {
      os: { type: 'other', version: '' },
      // unknown to the cache, so the call waits on the (slow) engine
      host_ids: ['00000000-0000-4000-8000-0000000000aa'],
    });

  it('drains in-flight calls within the grace period', async () => {
    sim = await startSimulator();
    scorer = await startScorer(sim, { KSM_SCORER_SHUTDOWN_GRACE_SECONDS: '5' });
    sim.latencyMs = 300;
    const call = slowCall();
    await new Promise((r) => setTimeout(r, 50));
    const stopped = scorer.service.stop();
    const res = await call;
    expect(res.scores[0]).toMatchObject({ found: false });
    await stopped;
  });

  it('cuts calls still running after the grace period', async () => {
    sim = await startSimulator();
    scorer = await startScorer(sim, { KSM_SCORER_SHUTDOWN_GRACE_SECONDS: '0.1' });
    sim.latencyMs = 3_000;
    const call = slowCall().catch((e: grpc.ServiceError) => e);
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    await scorer.service.stop();
    expect(Date.now() - t0).toBeLessThan(2_000);
    const err = await call;
    expect((err as grpc.ServiceError).code).toBe(grpc.status.CANCELLED);
  });
});
