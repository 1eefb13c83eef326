/** The real server, a real grpc-js client and the simulated engine, all over loopback. */
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostScore__Output } from '../../src/generated/ksmscorer/v1/HostScore';
import type { ScoreHostsBatchResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsBatchResponse';
import type { ScoreHostsRequest } from '../../src/generated/ksmscorer/v1/ScoreHostsRequest';
import type { ScoreHostsResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsResponse';
import { osIdentity } from '../../src/ovirt/parse';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { expectGrpcError, type Scorer, startScorer, startSimulator, unary, waitUntil } from '../helpers';

const score = (s: Scorer, req: ScoreHostsRequest, opts: grpc.CallOptions = {}) =>
  unary<ScoreHostsRequest, ScoreHostsResponse__Output>(s.client, 'ScoreHosts', req, opts);
const UNKNOWN = '00000000-0000-4000-8000-00000000beef';

/** The seed's rule, from the simulator's own data: what the engine would have made the old plugin compute. */
function oracle(sim: SimulatedEngine, vmId: string | undefined, os: { type: string; version: string }, hostId: string): number {
  const vms = sim.inventory.vmsOn(hostId).filter((vm) => vm.id !== vmId);
  if (vms.length === 0) return 0;
  let sum = 0;
  for (const vm of vms) {
    const other = osIdentity({
      os: { type: vm.osType },
      guest_operating_system: vm.guest && { distribution: vm.guest.distribution, version: { full_version: vm.guest.fullVersion } },
    });
    if (other.type === os.type) sum += other.version === os.version ? 100 : 20;
  }
  return sum / vms.length;
}

describe('HostScorerService over gRPC', () => {
  let sim: SimulatedEngine;
  let scorer: Scorer;
  let hostIds: string[];

  beforeAll(async () => {
    sim = await startSimulator({ hosts: 10, vms: 300, seed: 5 });
    scorer = await startScorer(sim, { KSM_SCORER_MAX_HOSTS: '20', KSM_SCORER_MAX_BATCH_HOST_SCORES: '1000' });
    hostIds = [...sim.inventory.hosts.keys()];
  });
  afterAll(async () => {
    await scorer.close();
    await sim.stop();
  });

  it('scores every running VM against every host exactly as the seed rule says', async () => {
    const running = [...sim.inventory.vms.values()].filter((vm) => vm.hostId !== undefined).slice(0, 60);
    for (const vm of running) {
      const res = await score(scorer, { vm_id: vm.id, host_ids: hostIds });
      const os = osIdentity({
        os: { type: vm.osType },
        guest_operating_system: vm.guest && { distribution: vm.guest.distribution, version: { full_version: vm.guest.fullVersion } },
      });
      expect(res.scores.map((s) => s.host_id)).toEqual(hostIds);
      for (const s of res.scores) expect(s.score).toBeCloseTo(oracle(sim, vm.id, os, s.host_id), 12);
    }
  });

  it('answers in the order of host_ids, with found=false for unknown hosts', async () => {
    const asked = [hostIds[3]!, UNKNOWN, hostIds[0]!];
    const res = await score(scorer, { os: { type: 'rhel_8x64', version: 'Red Hat Enterprise Linux 8.6' }, host_ids: asked });
    expect(res.scores.map((s) => [s.host_id, s.found])).toEqual([
      [asked[0], true],
      [UNKNOWN, false],
      [asked[2], true],
    ]);
    expect(res.scores[1]).toMatchObject({ score: 0, vm_count: 0 });
  });

  it('with no host_ids ranks every host: score descending, then host id', async () => {
    const res = await score(scorer, { os: { type: 'windows_2022', version: '10.0.20348' } });
    expect(res.scores).toHaveLength(10);
    const sorted = [...res.scores].sort((a, b) => b.score - a.score || a.host_id.localeCompare(b.host_id));
    expect(res.scores).toEqual(sorted);
    expect(res.scores[0]!.score).toBeGreaterThan(0);
  });

  it('describes the snapshot it scored against', async () => {
    const res = await score(scorer, { os: { type: 'other', version: '' }, host_ids: [hostIds[0]!] });
    const snap = scorer.service.inventory.snapshot()!;
    expect(res.inventory).toMatchObject({ stale: false, generation: String(snap.generation), host_count: 10, vm_count: 300 });
    expect(Number(res.inventory!.refreshed_at!.seconds) * 1000 + res.inventory!.refreshed_at!.nanos / 1e6).toBe(snap.refreshedAt);
  });

  it('does not count a migrating VM on its own host', async () => {
    const host = hostIds[1]!;
    const vm = sim.inventory.addVm({
      osType: 'ubuntu_18_04',
      hostId: host,
      guest: { family: 'Linux', distribution: 'Ubuntu', fullVersion: '18.04' },
    });
    await scorer.service.inventory.refresh();
    const byVm = (await score(scorer, { vm_id: vm.id, host_ids: [host] })).scores[0]!;
    const byOs = (await score(scorer, { os: { type: 'ubuntu_18_04', version: 'Ubuntu 18.04' }, host_ids: [host] })).scores[0]!;
    expect(byVm.vm_count).toBe(byOs.vm_count - 1);
    expect(byVm.same_version_count).toBe(byOs.same_version_count - 1);
  });

  it('answers each of many calls in flight at once whole (replies are written into a shared buffer as grpc-js serializes them)', async () => {
    const vmIds = [...sim.inventory.vms.keys()].slice(0, 40);
    const requests: ScoreHostsRequest[] = [
      ...vmIds.map((vm_id, i) => ({ vm_id, host_ids: i % 2 === 0 ? hostIds : [...hostIds].reverse().slice(0, 1 + (i % 10)) })),
      ...['rhel_8x64', 'rhel_9x64', 'windows_2022', 'other'].flatMap((type) => [
        { os: { type, version: '' } },
        { os: { type, version: '' }, host_ids: hostIds.slice(2) },
      ]),
      ...vmIds.slice(0, 10).map((vm_id) => ({ vm_id })),
    ];
    const alone: ScoreHostsResponse__Output[] = [];
    for (const req of requests) alone.push(await score(scorer, req));
    const together = await Promise.all(requests.flatMap((req) => [score(scorer, req), score(scorer, req)]));
    together.forEach((res, i) => {
      const expected = alone[i >> 1]!;
      expect(res.scores).toEqual(expected.scores);
      expect(res.scored_os).toEqual(expected.scored_os);
    });
  });

  it('makes no engine request for a call answered from the cache', async () => {
    const vmId = [...sim.inventory.vms.keys()][10]!;
    await score(scorer, { vm_id: vmId, host_ids: hostIds });
    const before = sim.requests.length;
    for (let i = 0; i < 20; i++) {
      await score(scorer, { vm_id: vmId, host_ids: hostIds });
      await score(scorer, { os: { type: 'rhel_9x64', version: '' } });
    }
    expect(sim.requests.length).toBe(before);
  });

  it('fetches a host added after the last refresh on demand, once', async () => {
    const added = sim.inventory.addHost('late.example.com');
    sim.inventory.addVm({ osType: 'rhel_9x64', hostId: added.id });
    const before = sim.apiRequests().length;
    const first = (await score(scorer, { os: { type: 'rhel_9x64', version: '' }, host_ids: [added.id] })).scores[0]!;
    expect(first).toMatchObject({ found: true, vm_count: 1, same_type_count: 1, score: 100 });
    await score(scorer, { os: { type: 'rhel_9x64', version: '' }, host_ids: [added.id] });
    expect(
      sim
        .apiRequests()
        .slice(before)
        .map((r) => r.path),
    ).toEqual([`/api/hosts/${added.id}`, '/api/vms']);
  });

  describe('errors', () => {
    it('INVALID_ARGUMENT when neither vm_id nor os is set', async () => {
      await expectGrpcError(score(scorer, { host_ids: hostIds }), grpc.status.INVALID_ARGUMENT, 'vm: set either vm_id or os');
    });
    it('INVALID_ARGUMENT for a vm_id that is not a UUID', async () => {
      await expectGrpcError(score(scorer, { vm_id: 'web-01' }), grpc.status.INVALID_ARGUMENT, 'vm_id: not a UUID: "web-01"');
    });
    it('INVALID_ARGUMENT for a host id that is not a UUID, naming its index', async () => {
      await expectGrpcError(
        score(scorer, { vm_id: UNKNOWN, host_ids: [hostIds[0]!, 'h2'] }),
        grpc.status.INVALID_ARGUMENT,
        'host_ids[1]: not a UUID: "h2"',
      );
    });
    it('INVALID_ARGUMENT for more host ids than the configured maximum', async () => {
      const many = Array.from({ length: 21 }, () => hostIds[0]!);
      await expectGrpcError(
        score(scorer, { os: { type: 'other' }, host_ids: many }),
        grpc.status.INVALID_ARGUMENT,
        'host_ids: 21 ids, more than the maximum of 20',
      );
    });
    it('INVALID_ARGUMENT for an empty os.type', async () => {
      await expectGrpcError(score(scorer, { os: { type: '', version: '9' } }), grpc.status.INVALID_ARGUMENT, 'os.type: must not be empty');
    });
    it('INVALID_ARGUMENT, not INTERNAL, for bytes that are not a ScoreHostsRequest; the service goes on', async () => {
      const raw = new grpc.Client(scorer.address, grpc.credentials.createInsecure());
      const send = (path: string, bytes: Buffer) =>
        new Promise<Buffer>((resolve, reject) =>
          raw.makeUnaryRequest(
            path,
            (b: Buffer) => b,
            (b: Buffer) => b,
            bytes,
            (err, res) => (err ? reject(err) : resolve(res!)),
          ),
        );
      try {
        await expectGrpcError(
          send('/ksmscorer.v1.HostScorerService/ScoreHosts', Buffer.from([0x1a, 0x30, 0x61])),
          grpc.status.INVALID_ARGUMENT,
          'request: not a valid ScoreHostsRequest message (truncated field)',
        );
        await expectGrpcError(
          send('/ksmscorer.v1.HostScorerService/ScoreHostsBatch', Buffer.from([0xff])),
          grpc.status.INVALID_ARGUMENT,
          'request: not a valid ScoreHostsBatchRequest message',
        );
      } finally {
        raw.close();
      }
      expect((await score(scorer, { os: { type: 'other' }, host_ids: [hostIds[0]!] })).scores).toHaveLength(1);
    });
    it('INVALID_ARGUMENT for a batch asking more host scores than the configured maximum', async () => {
      // 60 items x every host (10 or more) >= 600; 120 items >= 1,200 > 1,000
      const ok = unary(scorer.client, 'ScoreHostsBatch', { requests: Array.from({ length: 60 }, () => ({ os: { type: 'other' } })) });
      await expect(ok).resolves.toBeDefined();
      await expectGrpcError(
        unary(scorer.client, 'ScoreHostsBatch', { requests: Array.from({ length: 120 }, () => ({ os: { type: 'other' } })) }),
        grpc.status.INVALID_ARGUMENT,
        /^requests: \d+ host scores in one batch \(empty host_ids count every host\), more than the maximum of 1000; split the batch$/,
      );
    });
    it('NOT_FOUND for a vm_id the engine does not know', async () => {
      await expectGrpcError(score(scorer, { vm_id: UNKNOWN }), grpc.status.NOT_FOUND, `vm_id: the oVirt engine has no VM ${UNKNOWN}`);
    });
  });

  it('ScoreHostsBatch answers good items and fills the error of bad ones', async () => {
    const vmId = [...sim.inventory.vms.keys()][3]!;
    const res = await unary<unknown, ScoreHostsBatchResponse__Output>(scorer.client, 'ScoreHostsBatch', {
      requests: [
        { vm_id: vmId, host_ids: hostIds.slice(0, 3) },
        { vm_id: 'bad' },
        { vm_id: UNKNOWN },
        { os: { type: 'rhel_8x64', version: '' } },
        {},
      ],
    });
    expect(res.results).toHaveLength(5);
    expect(res.results[0]!.error).toBeNull();
    expect(res.results[0]!.scores.map((s: HostScore__Output) => s.host_id)).toEqual(hostIds.slice(0, 3));
    expect(res.results[1]!.error).toEqual({ code: grpc.status.INVALID_ARGUMENT, message: 'requests[1].vm_id: not a UUID: "bad"' });
    // the field path, as INVALID_ARGUMENT items have it
    expect(res.results[2]!.error).toEqual({
      code: grpc.status.NOT_FOUND,
      message: `requests[2].vm_id: the oVirt engine has no VM ${UNKNOWN}`,
    });
    expect(res.results[3]!.scores.length).toBeGreaterThanOrEqual(10);
    expect(res.results[4]!.error).toEqual({ code: grpc.status.INVALID_ARGUMENT, message: 'requests[4].vm: set either vm_id or os' });
    expect(res.inventory?.host_count).toBeGreaterThanOrEqual(10);
  });

  it('every item of a batch is scored from the same snapshot as `inventory`', async () => {
    const host = hostIds[2]!;
    const pending = unary<unknown, ScoreHostsBatchResponse__Output>(scorer.client, 'ScoreHostsBatch', {
      requests: Array.from({ length: 200 }, () => ({ os: { type: 'windows_2019x64', version: '' }, host_ids: [host] })),
    });
    sim.inventory.addVm({ osType: 'windows_2019x64', hostId: host });
    const refresh = scorer.service.inventory.refresh();
    const res = await pending;
    await refresh;
    const counts = new Set(res.results.map((r) => r.scores[0]!.vm_count));
    expect(counts.size).toBe(1);
  });

  it('serves grpc.health.v1 for "" and the scorer service, and reflection', async () => {
    const healthPkg = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String })) as any;
    const health = new healthPkg.grpc.health.v1.Health(scorer.address, grpc.credentials.createInsecure());
    for (const service of ['', 'ksmscorer.v1.HostScorerService']) {
      expect(await unary(health, 'Check', { service })).toEqual({ status: 'SERVING' });
    }
    await expectGrpcError(unary(health, 'Check', { service: 'nope' }), grpc.status.NOT_FOUND);
    health.close();

    const reflectionProto = join(require.resolve('@grpc/reflection'), '..', '..', 'proto', 'grpc', 'reflection', 'v1', 'reflection.proto');
    const reflPkg = grpc.loadPackageDefinition(protoLoader.loadSync(reflectionProto, { keepCase: true })) as any;
    const refl = new reflPkg.grpc.reflection.v1.ServerReflection(scorer.address, grpc.credentials.createInsecure());
    const stream = refl.ServerReflectionInfo();
    const answer = new Promise<any>((resolve, reject) => {
      stream.on('data', resolve);
      stream.on('error', reject);
    });
    stream.write({ list_services: '' });
    const names = (await answer).list_services_response.service.map((s: { name: string }) => s.name);
    stream.end();
    refl.close();
    expect(names).toEqual(expect.arrayContaining(['ksmscorer.v1.HostScorerService', 'grpc.health.v1.Health']));
  });

  it('honours the deadline while waiting on a slow engine, and keeps serving', async () => {
    sim.latencyMs = 2_000;
    try {
      const t0 = Date.now();
      await expectGrpcError(
        score(scorer, { os: { type: 'other' }, host_ids: ['00000000-0000-4000-8000-0000000000d1'] }, { deadline: Date.now() + 300 }),
        grpc.status.DEADLINE_EXCEEDED,
      );
      expect(Date.now() - t0).toBeLessThan(1_500);
      // cached hosts answer at once even though the engine hangs
      const res = await score(scorer, { os: { type: 'other' }, host_ids: hostIds }, { deadline: Date.now() + 300 });
      expect(res.scores).toHaveLength(10);
    } finally {
      sim.latencyMs = 0;
    }
  });
});

describe('HostScorerService before the first inventory load and with the engine down', () => {
  it('UNAVAILABLE and NOT_SERVING until the inventory loads, then SERVING', async () => {
    const sim = await startSimulator();
    sim.latencyMs = 800;
    const scorer = await startScorer(sim, {}, { waitForInventory: false });
    const healthPkg = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String })) as any;
    const health = new healthPkg.grpc.health.v1.Health(scorer.address, grpc.credentials.createInsecure());
    try {
      expect(await unary(health, 'Check', { service: '' })).toEqual({ status: 'NOT_SERVING' });
      await expectGrpcError(score(scorer, { os: { type: 'other' } }), grpc.status.UNAVAILABLE, 'not loaded');
      await waitUntil(() => scorer.service.inventory.snapshot() !== undefined);
      expect(await unary(health, 'Check', { service: 'ksmscorer.v1.HostScorerService' })).toEqual({ status: 'SERVING' });
      expect((await score(scorer, { os: { type: 'other' } })).scores.length).toBe(8);
    } finally {
      health.close();
      await scorer.close();
      await sim.stop();
    }
  });

  it('UNAVAILABLE with a generic message (no cause leaked) when an on-demand fetch cannot reach the engine', async () => {
    const sim = await startSimulator();
    const scorer = await startScorer(sim);
    try {
      await sim.stop();
      const err = await expectGrpcError(score(scorer, { os: { type: 'other' }, host_ids: [UNKNOWN] }), grpc.status.UNAVAILABLE);
      expect(err.details).toBe('the oVirt engine is unavailable; try again later');
      // the cached inventory keeps answering
      const known = [...sim.inventory.hosts.keys()];
      expect((await score(scorer, { os: { type: 'other' }, host_ids: known })).scores).toHaveLength(8);
    } finally {
      await scorer.close();
    }
  });
});
