/**
 * What clients can make the engine do: ids the inventory does not hold are
 * read on demand, within a per-call budget, a global rate and concurrency,
 * and unknown ids are remembered. Counted with the simulator's request log.
 */
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { ScoreHostsBatchResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsBatchResponse';
import type { ScoreHostsRequest } from '../../src/generated/ksmscorer/v1/ScoreHostsRequest';
import type { ScoreHostsResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsResponse';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { expectGrpcError, type Scorer, startScorer, startSimulator, unary } from '../helpers';

describe('on-demand engine reads are bounded whatever clients send', () => {
  let sim: SimulatedEngine;
  let scorer: Scorer;

  const start = async (env: Record<string, string> = {}) => {
    sim = await startSimulator({ hosts: 8, vms: 120, seed: 9 });
    scorer = await startScorer(sim, {
      KSM_SCORER_EVENTS_SECONDS: '0',
      KSM_SCORER_REFRESH_SECONDS: '300',
      KSM_SCORER_MAX_STALENESS_SECONDS: '3600',
      ...env,
    });
    sim.forgetRequests();
  };
  afterEach(async () => {
    await scorer.close();
    await sim.stop();
  });

  const score = (req: ScoreHostsRequest) => unary<ScoreHostsRequest, ScoreHostsResponse__Output>(scorer.client, 'ScoreHosts', req);
  const unknownIds = (n: number) => Array.from({ length: n }, () => randomUUID());
  const apiRequests = () => sim.apiRequests().length;

  it('10,000 unknown host ids in one call: RESOURCE_EXHAUSTED at once, not one engine request', async () => {
    await start();
    await expectGrpcError(
      score({ os: { type: 'rhel_8x64' }, host_ids: unknownIds(10_000) }),
      grpc.status.RESOURCE_EXHAUSTED,
      /^host_ids: more than 16 ids not in the inventory; one call may read at most that many from the oVirt engine \(KSM_SCORER_ON_DEMAND_PER_CALL\)$/,
    );
    expect(apiRequests()).toBe(0);
    // and the service goes on answering
    expect((await score({ os: { type: 'rhel_8x64' } })).scores).toHaveLength(8);
  });

  it('a batch of 2,000 unknown vm_ids: RESOURCE_EXHAUSTED, not one engine request', async () => {
    await start();
    const requests = unknownIds(2_000).map((vm_id) => ({ vm_id }));
    await expectGrpcError(
      unary<unknown, ScoreHostsBatchResponse__Output>(scorer.client, 'ScoreHostsBatch', { requests }),
      grpc.status.RESOURCE_EXHAUSTED,
      /^vm_id: more than 16 ids/,
    );
    expect(apiRequests()).toBe(0);
  });

  it('an unknown vm_id costs one GET, then is remembered for KSM_SCORER_NOT_FOUND_TTL_SECONDS', async () => {
    await start({ KSM_SCORER_NOT_FOUND_TTL_SECONDS: '1' });
    const [ghost] = unknownIds(1);
    for (let i = 0; i < 5; i++)
      await expectGrpcError(score({ vm_id: ghost }), grpc.status.NOT_FOUND, `vm_id: the oVirt engine has no VM ${ghost}`);
    expect(sim.apiRequests().map((r) => r.path)).toEqual([`/api/vms/${ghost}`]);
    await new Promise((r) => setTimeout(r, 1_100));
    await expectGrpcError(score({ vm_id: ghost }), grpc.status.NOT_FOUND);
    expect(apiRequests()).toBe(2);
  });

  it('an unknown host id is remembered too, and answered found = false', async () => {
    await start();
    const [ghost] = unknownIds(1);
    for (let i = 0; i < 3; i++)
      expect((await score({ os: { type: 'rhel_8x64' }, host_ids: [ghost!] })).scores[0]).toMatchObject({ host_id: ghost, found: false });
    expect(apiRequests()).toBe(1);
  });

  it('an engine with more hosts than KSM_SCORER_CACHE_HOSTS: all-hosts calls answer from the snapshot, never per-host reads', async () => {
    await start({ KSM_SCORER_CACHE_HOSTS: '2' });
    for (let i = 0; i < 5; i++) expect((await score({ os: { type: 'rhel_8x64' } })).scores).toHaveLength(8);
    const hosts = [...sim.inventory.hosts.keys()];
    expect((await score({ os: { type: 'rhel_8x64' }, host_ids: hosts })).scores.every((s) => s.found)).toBe(true);
    expect(apiRequests()).toBe(0);
  });

  it('many clients at once: engine reads stay within the rate, the rest are told RESOURCE_EXHAUSTED', async () => {
    await start({ KSM_SCORER_ON_DEMAND_READS_PER_SECOND: '20' });
    const t0 = Date.now();
    const outcomes = await Promise.all(
      Array.from({ length: 40 }, () =>
        score({ os: { type: 'rhel_8x64' }, host_ids: unknownIds(4) }).then(
          () => 'ok',
          (e: grpc.ServiceError) => grpc.status[e.code],
        ),
      ),
    );
    const seconds = (Date.now() - t0) / 1000;
    // 20 reads in the bucket, refilled at 20/s: 5 calls of 4, plus what the elapsed time refilled.
    expect(outcomes.filter((o) => o === 'ok').length).toBeLessThanOrEqual(5 + Math.ceil(seconds * 5));
    expect(outcomes.filter((o) => o !== 'ok').every((o) => o === 'RESOURCE_EXHAUSTED')).toBe(true);
    expect(apiRequests()).toBeLessThanOrEqual(20 + Math.ceil(seconds * 20));
  });

  it('on-demand engine requests in flight never exceed KSM_SCORER_ON_DEMAND_CONCURRENCY', async () => {
    await start({ KSM_SCORER_ON_DEMAND_CONCURRENCY: '2' });
    let inFlight = 0;
    let most = 0;
    sim.faults.respond = (path, _req, res) => {
      if (!path.startsWith('/hosts/')) return false;
      most = Math.max(most, ++inFlight);
      setTimeout(() => {
        inFlight--;
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"reason":"Operation Failed","detail":"Entity not found: null"}');
      }, 50);
      return true;
    };
    const res = await score({ os: { type: 'rhel_8x64' }, host_ids: unknownIds(12) });
    expect(res.scores.every((s) => !s.found)).toBe(true);
    expect(most).toBe(2);
  });
});
