/** The introspection RPCs (ListOperatingSystems, ListHosts, ListVms) and scored_os, through a real grpc-js client. */
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ListHostsResponse__Output } from '../../src/generated/ksmscorer/v1/ListHostsResponse';
import type { ListOperatingSystemsResponse__Output } from '../../src/generated/ksmscorer/v1/ListOperatingSystemsResponse';
import type { ListVmsResponse__Output } from '../../src/generated/ksmscorer/v1/ListVmsResponse';
import type { ScoreHostsBatchResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsBatchResponse';
import type { ScoreHostsResponse__Output } from '../../src/generated/ksmscorer/v1/ScoreHostsResponse';
import { osIdentity } from '../../src/ovirt/parse';
import type { SimulatedEngine } from '../../src/simulator/engine';
import type { SimVm } from '../../src/simulator/inventory';
import { expectGrpcError, type Scorer, simulatedSites, startScorer, startSimulator, unary } from '../helpers';

const UNKNOWN = '00000000-0000-4000-8000-00000000beef';

/** The OS the service should derive from the simulator's own data. */
const osOf = (vm: SimVm) =>
  osIdentity({
    os: { type: vm.osType },
    guest_operating_system: vm.guest && { distribution: vm.guest.distribution, version: { full_version: vm.guest.fullVersion } },
  });

describe('listing RPCs over gRPC', () => {
  let sim: SimulatedEngine;
  let scorer: Scorer;

  beforeAll(async () => {
    // 45 hosts: clusters of 20, 20 and 5, the third with KSM off
    sim = await startSimulator({ hosts: 45, vms: 600, seed: 17 });
    scorer = await startScorer(sim);
  });
  afterAll(async () => {
    await scorer.close();
    await sim.stop();
  });

  const listOs = () => unary<unknown, ListOperatingSystemsResponse__Output>(scorer.client, 'ListOperatingSystems', {});
  const listHosts = () => unary<unknown, ListHostsResponse__Output>(scorer.client, 'ListHosts', {});
  const listVms = (req: object) => unary<unknown, ListVmsResponse__Output>(scorer.client, 'ListVms', req);

  it('ListOperatingSystems: every (type, version) with its VM, running VM and host counts, sorted', async () => {
    const want = new Map<
      string,
      { os: { type: string; version: string }; vm_count: number; running_vm_count: number; hosts: Set<string> }
    >();
    for (const vm of sim.inventory.vms.values()) {
      const os = osOf(vm);
      const key = `${os.type}\u0000${os.version}`;
      const entry = want.get(key) ?? { os, vm_count: 0, running_vm_count: 0, hosts: new Set<string>() };
      entry.vm_count++;
      if (vm.hostId !== undefined) {
        entry.running_vm_count++;
        entry.hosts.add(vm.hostId);
      }
      want.set(key, entry);
    }
    const expected = [...want.values()]
      .sort((a, b) =>
        a.os.type < b.os.type ? -1 : a.os.type > b.os.type ? 1 : a.os.version < b.os.version ? -1 : a.os.version > b.os.version ? 1 : 0,
      )
      .map((e) => ({ os: e.os, vm_count: e.vm_count, running_vm_count: e.running_vm_count, host_count: e.hosts.size }));

    const res = await listOs();
    expect(res.operating_systems).toEqual(expected);
    expect(res.operating_systems.some((u) => u.os!.version === '' && u.vm_count > u.running_vm_count)).toBe(true);
    expect(res.inventory).toMatchObject({ host_count: 45, vm_count: 600, stale: false });
  });

  it('ListOperatingSystems follows the inventory: an OS change seen by an events poll is listed', async () => {
    const vm = [...sim.inventory.vms.values()].find((v) => v.hostId !== undefined)!;
    expect((await listOs()).operating_systems.find((u) => u.os!.type === 'solaris_11')).toBeUndefined();
    sim.inventory.updateVmOs(vm.id, 'solaris_11');
    await scorer.service.inventory.sync();
    const listed = (await listOs()).operating_systems.filter((u) => u.os!.type === 'solaris_11');
    expect(listed).toEqual([{ os: { type: 'solaris_11', version: osOf(vm).version }, vm_count: 1, running_vm_count: 1, host_count: 1 }]);
  });

  it("ListHosts: id, name, cluster, status, VM count, the cluster KSM setting and the host's own, in the engine order", async () => {
    const clusters = [...sim.inventory.clusters.values()];
    expect(clusters.map((c) => [c.name, c.ksmEnabled])).toEqual([
      ['Default', true],
      ['cluster-2', true],
      ['cluster-3', false],
    ]);
    const res = await listHosts();
    expect(res.hosts.map((h) => h.id)).toEqual([...sim.inventory.hosts.keys()]);
    for (const h of res.hosts) {
      const simHost = sim.inventory.hosts.get(h.id)!;
      const cluster = sim.inventory.clusters.get(simHost.clusterId)!;
      expect(h).toEqual({
        id: h.id,
        name: simHost.name,
        cluster_id: cluster.id,
        cluster_name: cluster.name,
        status: 'up',
        vm_count: sim.inventory.vmsOn(h.id).length,
        ksm_enabled: cluster.ksmEnabled,
        host_ksm_enabled: simHost.ksmEnabled,
      });
    }
    expect(res.hosts.filter((h) => !h.ksm_enabled)).toHaveLength(5);
    // Both facts, as the engine writes them: a host of a KSM cluster may run KSM now or not.
    expect(res.hosts.some((h) => h.ksm_enabled && h.host_ksm_enabled) && res.hosts.some((h) => h.ksm_enabled && !h.host_ksm_enabled)).toBe(
      true,
    );
  });

  it('ListHosts shows a status change after the next full refresh', async () => {
    const host = [...sim.inventory.hosts.values()][3]!;
    sim.inventory.setHostStatus(host.id, 'maintenance');
    try {
      await scorer.service.inventory.refresh();
      expect((await listHosts()).hosts.find((h) => h.id === host.id)?.status).toBe('maintenance');
    } finally {
      sim.inventory.setHostStatus(host.id, 'up');
      await scorer.service.inventory.refresh();
    }
  });

  it('ListVms: the VMs on one host (with their OS), all VMs, max_results, and the total', async () => {
    const host = [...sim.inventory.hosts.keys()][0]!;
    const onHost = sim.inventory.vmsOn(host);
    const res = await listVms({ host_id: host.toUpperCase() });
    expect(res.total_count).toBe(onHost.length);
    expect(new Set(res.vms.map((v) => v.id))).toEqual(new Set(onHost.map((v) => v.id)));
    for (const vm of res.vms) expect(vm).toEqual({ id: vm.id, host_id: host, os: osOf(sim.inventory.vm(vm.id)) });

    const two = await listVms({ host_id: host, max_results: 2 });
    expect(two.vms).toEqual(res.vms.slice(0, 2));
    expect(two.total_count).toBe(onHost.length);

    const all = await listVms({});
    expect(all.vms).toHaveLength(100);
    expect(all.total_count).toBe(600);
    expect(all.vms.some((v) => v.host_id === '')).toBe(true);
    expect((await listVms({ max_results: 1000 })).vms).toHaveLength(600);
  });

  it('ListVms errors name the field: a bad or unknown host_id, too large a max_results', async () => {
    await expectGrpcError(listVms({ host_id: 'host-01' }), grpc.status.INVALID_ARGUMENT, 'host_id: not a UUID: "host-01"');
    await expectGrpcError(
      listVms({ host_id: 'x'.repeat(1_000_000) }),
      grpc.status.INVALID_ARGUMENT,
      /^host_id: not a UUID: "x{60}\.\.\."$/,
    );
    await expectGrpcError(listVms({ host_id: UNKNOWN }), grpc.status.NOT_FOUND, `host_id: the inventory has no host ${UNKNOWN}`);
    await expectGrpcError(listVms({ max_results: 1001 }), grpc.status.INVALID_ARGUMENT, 'max_results: 1001, more than the maximum of 1000');
  });

  it('INVALID_ARGUMENT, not INTERNAL, for bytes that are not a listing request; the service goes on', async () => {
    const raw = new grpc.Client(scorer.address, grpc.credentials.createInsecure());
    const send = (method: string, bytes: Buffer) =>
      new Promise<Buffer>((resolve, reject) =>
        raw.makeUnaryRequest(
          `/ksmscorer.v1.HostScorerService/${method}`,
          (b: Buffer) => b,
          (b: Buffer) => b,
          bytes,
          (err, res) => (err ? reject(err) : resolve(res!)),
        ),
      );
    try {
      await expectGrpcError(
        send('ListVms', Buffer.from([0x10, 0xff])),
        grpc.status.INVALID_ARGUMENT,
        /^request: not a valid ListVmsRequest message \(/,
      );
      await expectGrpcError(
        send('ListHosts', Buffer.from([0x0f])),
        grpc.status.INVALID_ARGUMENT,
        /^request: not a valid ListHostsRequest message \(/,
      );
      await expectGrpcError(
        send('ListOperatingSystems', Buffer.from([0x0a, 0xff])),
        grpc.status.INVALID_ARGUMENT,
        /^request: not a valid ListOperatingSystemsRequest message \(/,
      );
      // unknown fields are skipped, as proto3 wants
      expect((await send('ListHosts', Buffer.from([0x08, 0x01]))).length).toBeGreaterThan(0);
    } finally {
      raw.close();
    }
    expect((await listHosts()).hosts).toHaveLength(45);
  });

  it('a ListVmsRequest cut short inside host_id is not a valid request, not a listing of the bytes that arrived', async () => {
    const raw = new grpc.Client(scorer.address, grpc.credentials.createInsecure());
    const send = (bytes: Buffer) =>
      new Promise<Buffer>((resolve, reject) =>
        raw.makeUnaryRequest(
          '/ksmscorer.v1.HostScorerService/ListVms',
          (b: Buffer) => b,
          (b: Buffer) => b,
          bytes,
          (err, res) => (err ? reject(err) : resolve(res!)),
        ),
      );
    const hostId = [...sim.inventory.hosts.keys()][0]!;
    try {
      // host_id (field 1) says 40 bytes; the message ends after the 36 of a real host's id.
      const cut = Buffer.concat([Buffer.from([0x0a, 40]), Buffer.from(hostId)]);
      await expectGrpcError(send(cut), grpc.status.INVALID_ARGUMENT, /^request: not a valid ListVmsRequest message \(/);
      // host_id says 2^32 - 1 bytes and none follow.
      const empty = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
      await expectGrpcError(send(empty), grpc.status.INVALID_ARGUMENT, /^request: not a valid ListVmsRequest message \(/);
    } finally {
      raw.close();
    }
  });

  it('scored_os: the OS asked for, or the OS of the VM vm_id names; in a batch, per item', async () => {
    const vm = [...sim.inventory.vms.values()].find((v) => v.hostId !== undefined && v.guest !== undefined)!;
    const byVm = await unary<unknown, ScoreHostsResponse__Output>(scorer.client, 'ScoreHosts', { vm_id: vm.id });
    expect(byVm.scored_os).toEqual(osOf(vm));
    const byOs = await unary<unknown, ScoreHostsResponse__Output>(scorer.client, 'ScoreHosts', { os: { type: 'rhel_9x64' } });
    expect(byOs.scored_os).toEqual({ type: 'rhel_9x64', version: '' });

    const batch = await unary<unknown, ScoreHostsBatchResponse__Output>(scorer.client, 'ScoreHostsBatch', {
      requests: [{ vm_id: vm.id }, { vm_id: UNKNOWN }, { os: { type: 'other', version: 'x' } }],
    });
    expect(batch.results.map((r) => r.scored_os)).toEqual([osOf(vm), null, { type: 'other', version: 'x' }]);
  });
});

describe('listing RPCs before the first inventory load', () => {
  it('answer UNAVAILABLE, as scoring does', async () => {
    const sim = await startSimulator();
    sim.faults.hang = true;
    const scorer = await startScorer(sim, {}, { waitForInventory: false });
    try {
      for (const method of ['ListOperatingSystems', 'ListHosts', 'ListVms']) {
        await expectGrpcError(
          unary(scorer.client, method, {}),
          grpc.status.UNAVAILABLE,
          'the inventory has not loaded from the oVirt engine yet',
        );
      }
    } finally {
      sim.faults.hang = false;
      await scorer.close();
      await sim.stop();
    }
  });
});

describe('listing RPCs when the account may not see every host', () => {
  const site = simulatedSites();
  afterEach(() => site.stop());

  it('ListOperatingSystems running_vm_count ("the VMs scores count") leaves out VMs on a host the account may not see, which count toward no host', async () => {
    const sim = await site.simulator();
    const hidden = [...sim.inventory.hosts.keys()][0]!;
    const onHidden = [...sim.inventory.vms.values()].filter((vm) => vm.hostId === hidden).length;
    expect(onHidden).toBeGreaterThan(0);
    sim.hiddenHosts.add(hidden);
    const scorer = await site.scorerOn(sim);
    const oses = await unary<object, { operating_systems: { running_vm_count: number; host_count: number }[] }>(
      scorer.client,
      'ListOperatingSystems',
      {},
    );
    const hosts = await unary<object, { hosts: { id: string; vm_count: number }[] }>(scorer.client, 'ListHosts', {});
    const counted = hosts.hosts.reduce((n, h) => n + h.vm_count, 0);
    const running = oses.operating_systems.reduce((n, os) => n + os.running_vm_count, 0);
    // The VMs scores count are those counted toward the hosts; the hidden host's VMs count toward none.
    expect(running).toBe(counted);
    expect(Math.max(...oses.operating_systems.map((os) => os.host_count))).toBeLessThanOrEqual(hosts.hosts.length);
  });
});
