import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostInventory } from '../../src/inventory/inventory';
import { silentLogger } from '../../src/log';
import { EngineClient } from '../../src/ovirt/client';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { scoreCandidates } from '../../src/scoring/score';
import { engineClient, inventorySettings, startSimulator, viewOf, waitUntil } from '../helpers';

describe('HostInventory against the simulated engine', () => {
  let sim: SimulatedEngine;
  let client: EngineClient;
  let clock: number;
  const inventories: HostInventory[] = [];

  /** Full refreshes only (events have their own tests), on an injected clock. */
  const make = (opts: { onDemandCacheSize?: number; refreshIntervalMs?: number; maxStalenessMs?: number; now?: () => number } = {}) => {
    const inv = new HostInventory({
      source: client,
      logger: silentLogger,
      settings: inventorySettings({
        refreshIntervalMs: opts.refreshIntervalMs ?? 60_000,
        eventsIntervalMs: 0,
        onDemandCacheSize: opts.onDemandCacheSize ?? 1_000,
        maxStalenessMs: opts.maxStalenessMs ?? 600_000,
      }),
      now: opts.now ?? (() => clock),
    });
    inventories.push(inv);
    return inv;
  };

  beforeEach(async () => {
    clock = 1_700_000_000_000;
    sim = await startSimulator({ hosts: 6, vms: 80, seed: 11 });
    client = engineClient(sim, { pageSize: 25 });
  });
  afterEach(async () => {
    for (const inv of inventories.splice(0)) await inv.stop();
    await client.close();
    await sim.stop();
  });

  it('a full refresh is one GET /hosts, one GET /clusters and the pages of GET /vms, joined on vm.host.id', async () => {
    const snap = await make().refresh();
    const api = sim.apiRequests().map((r) => r.path);
    // 80 VMs, 25 a page: 4 pages
    expect(api).toEqual(['/api/hosts', '/api/clusters', '/api/vms', '/api/vms', '/api/vms', '/api/vms']);
    expect(snap.hostCount).toBe(6);
    expect(snap.vmCount).toBe(80);
    for (const host of sim.inventory.hosts.values()) {
      expect(snap.hosts.get(host.id)?.vmCount).toBe(sim.inventory.vmsOn(host.id).length);
      expect(snap.hostDetails.get(host.id)).toEqual({
        id: host.id,
        name: host.name,
        clusterId: host.clusterId,
        status: 'up',
        ksmEnabled: host.ksmEnabled,
      });
    }
    expect([...snap.clusters.values()]).toEqual(
      [...sim.inventory.clusters.values()].map(({ id, name, ksmEnabled }) => ({ id, name, ksmEnabled })),
    );
  });

  it('keeps host status and cluster KSM as of the last full refresh', async () => {
    const inv = make();
    await inv.refresh();
    const [first] = sim.inventory.hosts.values();
    const [cluster] = sim.inventory.clusters.values();
    sim.inventory.setHostStatus(first!.id, 'maintenance');
    cluster!.ksmEnabled = false;
    const snap = await inv.refresh();
    expect(snap.hostDetails.get(first!.id)?.status).toBe('maintenance');
    expect(snap.clusters.get(cluster!.id)?.ksmEnabled).toBe(false);
  });

  it('never runs two refreshes at once', async () => {
    const inv = make();
    const [a, b] = await Promise.all([inv.refresh(), inv.refresh()]);
    expect(a).toBe(b);
    expect(sim.apiRequests().filter((r) => r.path === '/api/hosts')).toHaveLength(1);
  });

  it('answers cached hosts and VMs without any engine request', async () => {
    const inv = make();
    const snap = await inv.refresh();
    const before = sim.requests.length;
    const vmId = [...sim.inventory.vms.keys()][0]!;
    const view = await viewOf(inv, snap, { hostIds: snap.hostIds, vmIds: [vmId] });
    expect(view.vm(vmId)).toBeDefined();
    expect(sim.requests.length).toBe(before);
  });

  it('reads a host the snapshot does not list once for concurrent callers, then serves it without the engine', async () => {
    const inv = make();
    const snap = await inv.refresh();
    const added = sim.inventory.addHost('added.example.com');
    sim.inventory.addVm({ osType: 'rhel_9x64', hostId: added.id });
    sim.forgetRequests();
    const views = await Promise.all([1, 2, 3].map(() => viewOf(inv, snap, { hostIds: [added.id] })));
    // one GET /hosts/{id} and one VM search for that host alone
    expect(sim.apiRequests().map((r) => r.path)).toEqual([`/api/hosts/${added.id}`, '/api/vms']);
    expect(sim.apiRequests()[1]!.query.get('search')).toMatch(/^on_host=/);
    const counts = views[0]!.candidates([added.id], undefined)[0]!.counts;
    expect(counts?.vmCount).toBe(1);

    sim.forgetRequests();
    await viewOf(inv, snap, { hostIds: [added.id] });
    expect(sim.apiRequests()).toHaveLength(0);
  });

  it('an inventory larger than the on-demand cache bound is answered from the snapshot, with no engine request', async () => {
    const inv = make({ onDemandCacheSize: 2 });
    const snap = await inv.refresh();
    sim.forgetRequests();
    const view = await viewOf(inv, snap, { hostIds: snap.hostIds });
    expect(view.candidates(undefined, undefined).every((c) => c.counts !== undefined)).toBe(true);
    expect(sim.apiRequests()).toHaveLength(0);
  });

  it('remembers a host the engine does not have until the next refresh', async () => {
    const inv = make();
    const snap = await inv.refresh();
    const unknown = '11111111-2222-4333-8444-555555555555';
    sim.forgetRequests();
    const view = await viewOf(inv, snap, { hostIds: [unknown] });
    expect(view.candidates([unknown], undefined)[0]!.counts).toBeUndefined();
    await viewOf(inv, snap, { hostIds: [unknown] });
    expect(sim.apiRequests().map((r) => r.path)).toEqual([`/api/hosts/${unknown}`]);
  });

  it('fetches a VM missing from the inventory with GET /vms/{id}, once', async () => {
    const inv = make();
    const snap = await inv.refresh();
    const fresh = sim.inventory.addVm({ osType: 'rhel_9x64' });
    sim.forgetRequests();
    const view = await viewOf(inv, snap, { vmIds: [fresh.id] });
    expect(view.vm(fresh.id)?.os).toEqual({ type: 'rhel_9x64', version: '' });
    await viewOf(inv, snap, { vmIds: [fresh.id] });
    expect(sim.apiRequests().map((r) => r.path)).toEqual([`/api/vms/${fresh.id}`]);
  });

  it('keeps a call on its own snapshot while a refresh replaces the current one', async () => {
    const inv = make();
    const first = await inv.refresh();
    const hostId = first.hostIds[0]!;
    const view = await viewOf(inv, first, { hostIds: [hostId] });
    const before = scoreCandidates(view.candidates([hostId], undefined), { type: 'windows_2022', version: '' }, false);

    for (let i = 0; i < 5; i++) sim.inventory.addVm({ osType: 'windows_2022', hostId });
    const second = await inv.refresh();
    expect(second.generation).toBe(first.generation + 1);
    expect(inv.snapshot()).toBe(second);

    const after = scoreCandidates(view.candidates([hostId], undefined), { type: 'windows_2022', version: '' }, false);
    expect(after).toEqual(before);
    const fresh = await viewOf(inv, second, { hostIds: [hostId] });
    expect(fresh.candidates([hostId], undefined)[0]!.counts!.vmCount).toBe(before[0]!.vm_count + 5);
  });

  it('marks the inventory stale after 2 x the refresh interval (injected clock)', async () => {
    const inv = make({ refreshIntervalMs: 30_000 });
    const snap = await inv.refresh();
    expect(inv.served.info(snap)).toMatchObject({ stale: false, generation: 1, hostCount: 6, vmCount: 80, refreshedAt: clock });
    clock += 60_000;
    expect(inv.served.info(snap).stale).toBe(false);
    clock += 1;
    expect(inv.served.info(snap).stale).toBe(true);
  });

  it('a failed refresh keeps the last good snapshot', async () => {
    const inv = make();
    const good = await inv.refresh();
    sim.faults.status = 503;
    await expect(inv.refresh()).rejects.toMatchObject({ code: 'engine_unreachable' });
    expect(inv.snapshot()).toBe(good);
    sim.faults.status = undefined;
  });

  it('goes stale after 2 x the interval and expired after the maximum staleness (injected clock)', async () => {
    const inv = make({ refreshIntervalMs: 1_000, maxStalenessMs: 10_000 });
    const states: string[] = [];
    inv.onStateChange((s) => states.push(s));
    expect(inv.checkState()).toBe('loading');
    expect(() => inv.served.servableSnapshot()).toThrow(/not loaded/);
    await inv.refresh();
    clock += 2_001;
    inv.checkState();
    clock += 8_000;
    inv.checkState();
    expect(() => inv.served.servableSnapshot()).toThrow(/is 10 s old, more than the maximum staleness of 10 s/);
    await inv.refresh();
    expect(inv.served.servableSnapshot().generation).toBe(2);
    expect(states).toEqual(['fresh', 'stale', 'expired', 'fresh']);
  });

  it('retries a failed first load in the background and recovers when the engine comes back', async () => {
    const port = Number(new URL(sim.url).port);
    await sim.stop();
    const inv = make({ now: Date.now });
    inv.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(inv.snapshot()).toBeUndefined();
    await sim.start(port);
    await waitUntil(() => inv.snapshot() !== undefined);
    expect(inv.snapshot()).toMatchObject({ generation: 1, hostCount: 6, vmCount: 80 });
  });
});
