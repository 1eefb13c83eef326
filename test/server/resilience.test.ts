/**
 * Fault injection: the real service against the simulated engine under each
 * kind of engine trouble. Each test checks that scoring goes on from the last
 * good inventory, that nothing is lost, and that the service recovers by itself.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { ScoreHostsRequest } from '../../src/generated/ksmscorer/v1/ScoreHostsRequest';
import type { ScoreHostsResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsResponse';
import { createLogger } from '../../src/log';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { expectGrpcError, type Scorer, startScorer, startSimulator, unary, waitUntil } from '../helpers';

const FAST = {
  KSM_SCORER_EVENTS_SECONDS: '0.1',
  KSM_SCORER_REFRESH_SECONDS: '300',
  KSM_SCORER_BACKOFF_MAX_SECONDS: '1',
  OVIRT_TIMEOUT_SECONDS: '0.5',
  OVIRT_PAGE_SIZE: '20',
};

describe('engine trouble', () => {
  let sim: SimulatedEngine;
  let scorer: Scorer;
  let logs: string[];
  let port: number;

  const start = async (env: Record<string, string> = {}) => {
    sim = await startSimulator({ hosts: 8, vms: 120, seed: 31 });
    port = Number(new URL(sim.url).port);
    logs = [];
    scorer = await startScorer(sim, { ...FAST, ...env }, { logger: createLogger('debug', { write: (l) => logs.push(l) }) });
  };
  afterEach(async () => {
    sim.faults = {};
    await scorer.close();
    await sim.stop();
  });

  const score = (req: ScoreHostsRequest, opts: grpc.CallOptions = {}) =>
    unary<ScoreHostsRequest, ScoreHostsResponse__Output>(scorer.client, 'ScoreHosts', req, opts);
  const everyHost = () => score({ os: { type: 'rhel_8x64', version: '' } });
  const stats = () => scorer.service.inventory.stats();
  const failuresNow = () => stats().syncFailures;
  const waitForFailures = (n: number) => waitUntil(() => stats().syncFailures >= n, 15_000);
  const waitForRecovery = async () => {
    const since = scorer.service.inventory.snapshot()!.refreshedAt;
    await waitUntil(() => stats().failureStreak === 0 && scorer.service.inventory.snapshot()!.refreshedAt > since, 15_000);
  };
  const warnings = (msg: string) => logs.filter((l) => l.includes(`"msg":"${msg}`)).length;

  /** Scoring answers the same as before the fault, without waiting on the engine. */
  const expectScoringGoesOn = async (before: ScoreHostsResponse__Output) => {
    const now = await score({ os: { type: 'rhel_8x64', version: '' } }, { deadline: Date.now() + 500 });
    expect(now.scores).toEqual(before.scores);
    expect(now.inventory?.generation).toBe(before.inventory?.generation);
  };

  it('engine down and back: scoring goes on; changes made meanwhile arrive after it is back', async () => {
    await start();
    const before = await everyHost();
    await sim.stop();
    await waitForFailures(failuresNow() + 2);
    await expectScoringGoesOn(before);
    await sim.start(port);
    await waitForRecovery();
    const vm = [...sim.inventory.vms.values()].find((v) => v.hostId !== undefined)!;
    sim.inventory.updateVmOs(vm.id, 'windows_2022');
    await waitUntil(() => scorer.service.inventory.snapshot()!.vms.get(vm.id)?.os.type === 'windows_2022', 5_000);
  });

  it('a hanging engine never delays calls answered from the cache', async () => {
    await start();
    const before = await everyHost();
    sim.faults.hang = true;
    await waitForFailures(failuresNow() + 1); // the request timeout fired
    for (let i = 0; i < 5; i++) await expectScoringGoesOn(before);
    sim.faults.hang = false;
    await waitForRecovery();
  });

  it('a 503 storm: backoff, one warning per streak, recovery logged once', async () => {
    await start();
    const before = await everyHost();
    const warned = warnings('engine sync failed;');
    sim.faults.status = 503;
    await waitForFailures(failuresNow() + 3);
    await expectScoringGoesOn(before);
    expect(warnings('engine sync failed;') - warned).toBe(1);
    sim.faults.status = undefined;
    await waitForRecovery();
    expect(warnings('engine sync recovered')).toBe(1);
  });

  it.each(['truncated', 'html', 'wrong-types'] as const)('a %s body with status 200 fails that sync alone', async (garbage) => {
    await start();
    const before = await everyHost();
    sim.faults.garbage = garbage;
    await waitForFailures(failuresNow() + 2);
    await expectScoringGoesOn(before);
    await expect(scorer.service.inventory.refresh()).rejects.toMatchObject({ code: 'engine_protocol' });
    await expectScoringGoesOn(before);
    sim.faults.garbage = undefined;
    await waitForRecovery();
  });

  it('a VM on a host missing from the host list no longer fails the full refresh: it is kept, counted toward no host (test/inventory/irregular-engine.test.ts has the rest)', async () => {
    await start();
    const vm = [...sim.inventory.vms.values()][0]!;
    vm.hostId = 'ffffffff-ffff-4fff-8fff-ffffffffffff';
    const snap = await scorer.service.inventory.refresh();
    expect(snap.vms.get(vm.id)?.hostId).toBe(vm.hostId);
    expect(snap.hosts.has(vm.hostId)).toBe(false);
  });

  it('token expiry in the middle of a full refresh: logs in again and finishes', async () => {
    await start();
    sim.forgetRequests();
    sim.faults.expireTokensAfter = 3;
    const snap = await scorer.service.inventory.refresh();
    expect(snap.vmCount).toBe(120);
    const seen = sim.requests.map((r) => `${r.status} ${r.path}`);
    expect(seen).toContain('401 /api/vms');
    expect(seen.filter((r) => r === '200 /sso/oauth/token')).toHaveLength(1);
  });

  it('engine restart (every token gone): the next sync logs in again, nothing lost', async () => {
    await start();
    const before = await everyHost();
    await sim.stop();
    await sim.start(port);
    sim.forgetRequests();
    await waitUntil(() => sim.requests.some((r) => r.path === '/sso/oauth/token' && r.status === 200), 5_000);
    await waitForRecovery();
    const after = await everyHost();
    expect(after.scores).toEqual(before.scores);
  });

  it('a 401 storm (every token refused): no hot login loop, inventory kept', async () => {
    await start();
    const before = await everyHost();
    sim.forgetRequests();
    sim.faults.unauthorized = true;
    await new Promise((r) => setTimeout(r, 2_500));
    await expectScoringGoesOn(before);
    // backoff capped at 1 s here, jitter keeps each wait >= 0.5 s: at most 2.5 / 0.5 + 1 = 6 attempts, not a hot loop
    const logins = sim.requests.filter((r) => r.path === '/sso/oauth/token').length;
    expect(logins).toBeGreaterThanOrEqual(1);
    expect(logins).toBeLessThanOrEqual(6);
    sim.faults.unauthorized = false;
    await waitForRecovery();
  });

  it('bad credentials (HTTP 400 from the token endpoint): no hot loop, recovers when fixed', async () => {
    await start();
    const before = await everyHost();
    const good = sim.password;
    sim.password = 'rotated';
    sim.expireTokens();
    sim.forgetRequests();
    await new Promise((r) => setTimeout(r, 2_500));
    await expectScoringGoesOn(before);
    const attempts = sim.requests.filter((r) => r.path === '/sso/oauth/token');
    expect(attempts.every((r) => r.status === 400)).toBe(true);
    expect(attempts.length).toBeGreaterThanOrEqual(1);
    expect(attempts.length).toBeLessThanOrEqual(6); // as above: >= 0.5 s between attempts
    expect(logs.join('\n')).toMatch(/"code":"engine_auth"/);
    sim.password = good;
    await waitForRecovery();
  });

  it('events out of range (engine log reset): a full refresh brings the truth back', async () => {
    await start();
    const vm = [...sim.inventory.vms.values()].find((v) => v.hostId !== undefined)!;
    sim.inventory.updateVmOs(vm.id, vm.osType);
    await waitUntil(() => stats().eventPolls > 2);
    const fulls = stats().fullRefreshes;
    sim.inventory.resetEventLog(1);
    vm.osType = 'ubuntu_22_04';
    await waitUntil(() => stats().fullRefreshes > fulls, 5_000);
    const res = await score({ vm_id: vm.id, host_ids: [vm.hostId!] });
    expect(res.scores[0]!.found).toBe(true);
    expect(scorer.service.inventory.snapshot()!.vms.get(vm.id)?.os.type).toBe('ubuntu_22_04');
  });

  it('a VM migrated, stopped, or given another OS is visible in scores within an events interval', async () => {
    await start();
    const [moving, stopping, changing] = [...sim.inventory.vms.values()].filter((v) => v.hostId !== undefined);
    const to = [...sim.inventory.hosts.keys()].find((h) => h !== moving!.hostId)!;
    const countOn = async (hostId: string) => (await score({ os: { type: 'other' }, host_ids: [hostId] })).scores[0]!.vm_count;
    const [fromCount, toCount, stopCount] = [await countOn(moving!.hostId!), await countOn(to), await countOn(stopping!.hostId!)];
    const from = moving!.hostId!;
    const stopHost = stopping!.hostId!;
    sim.inventory.migrateVm(moving!.id, to);
    sim.inventory.stopVm(stopping!.id);
    sim.inventory.updateVmOs(changing!.id, 'windows_2019x64');
    const arrived = async () => {
      const f = (await countOn(from)) === fromCount - (from === stopHost ? 2 : 1);
      const t = (await countOn(to)) === toCount + 1 - (to === stopHost ? 1 : 0);
      const s = (await countOn(stopHost)) < stopCount || stopHost === from;
      const os = (await score({ os: { type: 'windows_2019x64' }, host_ids: [changing!.hostId!] })).scores[0]!.same_type_count > 0;
      return f && t && s && os;
    };
    const end = Date.now() + 3_000; // events every 100 ms
    let ok = false;
    while (!ok && Date.now() < end) {
      ok = await arrived();
      if (!ok) await new Promise((r) => setTimeout(r, 50));
    }
    expect(ok).toBe(true);
  });
});

describe('staleness', () => {
  it('stale, then UNAVAILABLE and NOT_SERVING past the maximum, then back by itself', async () => {
    const sim = await startSimulator();
    const port = Number(new URL(sim.url).port);
    const scorer = await startScorer(sim, { ...FAST, KSM_SCORER_STALE_SECONDS: '1', KSM_SCORER_MAX_STALENESS_SECONDS: '2' });
    const state = () => scorer.service.inventory.checkState();
    const healthPkg = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String })) as any;
    const health = new healthPkg.grpc.health.v1.Health(scorer.address, grpc.credentials.createInsecure());
    const score = () => unary<ScoreHostsRequest, ScoreHostsResponse__Output>(scorer.client, 'ScoreHosts', { os: { type: 'other' } });
    const status = async () => (await unary<unknown, { status: string }>(health, 'Check', { service: '' })).status;
    try {
      expect((await score()).inventory?.stale).toBe(false);
      await sim.stop();
      await waitUntil(() => state() === 'stale');
      const stale = await score();
      expect(stale.inventory?.stale).toBe(true);
      expect(stale.scores).toHaveLength(8);
      expect(await status()).toBe('SERVING');
      await waitUntil(() => state() === 'expired');
      await expectGrpcError(score(), grpc.status.UNAVAILABLE, 'more than the maximum staleness');
      expect(await status()).toBe('NOT_SERVING');
      await sim.start(port);
      await waitUntil(() => scorer.service.inventory.checkState() === 'fresh', 10_000);
      expect(await status()).toBe('SERVING');
      expect((await score()).inventory?.stale).toBe(false);
    } finally {
      health.close();
      await scorer.close();
      await sim.stop();
    }
  });
});
