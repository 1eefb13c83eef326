import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostInventory } from '../../src/inventory/inventory';
import { EVENTS_PAGE } from '../../src/inventory/engine-reads';
import type { InventorySnapshot } from '../../src/inventory/snapshot';
import { silentLogger } from '../../src/log';
import { EngineClient } from '../../src/ovirt/client';
import type { SimulatedEngine } from '../../src/simulator/engine';
import { engineClient, inventorySettings, type Scorer, simulatedSites, startSimulator, waitUntil } from '../helpers';
import { scrape, valueOf } from '../metrics/scrape';

/** Running VMs per host in the snapshot, summed over OS. */
const vmCountOn = (snap: InventorySnapshot, hostId: string) => {
  return snap.hosts.get(hostId)?.vmCount;
};

describe('events keep the inventory fresh between full refreshes', () => {
  let sim: SimulatedEngine;
  let client: EngineClient;
  let inv: HostInventory;
  let clock: number;

  beforeEach(async () => {
    clock = 1_700_000_000_000;
    sim = await startSimulator({ hosts: 6, vms: 90, seed: 21 });
    client = engineClient(sim, { pageSize: 50 });
    inv = new HostInventory({
      source: client,
      logger: silentLogger,
      settings: inventorySettings({ refreshIntervalMs: 300_000, eventsIntervalMs: 5_000, onDemandCacheSize: 100 }),
      now: () => clock,
    });
    await inv.sync(); // the first step is a full refresh
    sim.forgetRequests();
  });
  afterEach(async () => {
    await inv.stop();
    await client.close();
    await sim.stop();
  });

  const step = async () => {
    clock += 5_000;
    return inv.sync();
  };
  const runningVm = () => [...sim.inventory.vms.values()].find((vm) => vm.hostId !== undefined)!;
  const otherHost = (id: string | undefined) => [...sim.inventory.hosts.keys()].find((h) => h !== id)!;

  it('a quiet poll confirms the data: refreshed_at moves, generation does not, two small requests', async () => {
    const before = inv.snapshot()!;
    const after = await step();
    expect(after.generation).toBe(before.generation);
    expect(after.refreshedAt).toBe(clock);
    expect(sim.apiRequests().map((r) => `${r.path}?${r.query}`)).toEqual([
      `/api/events?from=${sim.inventory.newestEventId()}&max=${EVENTS_PAGE}`,
      '/api/events?max=1',
    ]);
  });

  it('a migration moves the VM between hosts after one poll, re-reading only that VM', async () => {
    const vm = runningVm();
    const from = vm.hostId!;
    const to = otherHost(from);
    const before = inv.snapshot()!;
    sim.inventory.migrateVm(vm.id, to);
    const after = await step();
    expect(after.generation).toBe(before.generation + 1);
    expect(vmCountOn(after, from)).toBe(vmCountOn(before, from)! - 1);
    expect(vmCountOn(after, to)).toBe(vmCountOn(before, to)! + 1);
    expect(after.vms.get(vm.id)?.hostId).toBe(to);
    expect(sim.apiRequests().map((r) => r.path)).toEqual(['/api/events', `/api/vms/${vm.id}`]);
    // the old snapshot, which calls in progress may hold, is unchanged
    expect(before.vms.get(vm.id)?.hostId).toBe(from);
    expect(vmCountOn(before, from)).toBe(sim.inventory.vmsOn(from).length + 1);
  });

  it('a stopped or suspended VM leaves its host; a started one arrives', async () => {
    const [a, b] = [...sim.inventory.vms.values()].filter((vm) => vm.hostId !== undefined);
    const down = [...sim.inventory.vms.values()].find((vm) => vm.hostId === undefined)!;
    const target = otherHost(undefined);
    sim.inventory.stopVm(a!.id);
    sim.inventory.suspendVm(b!.id);
    sim.inventory.startVm(down.id, target);
    const after = await step();
    expect(after.vms.get(a!.id)?.hostId).toBeUndefined();
    expect(after.vms.get(b!.id)?.hostId).toBeUndefined();
    expect(after.vms.get(down.id)?.hostId).toBe(target);
    for (const host of sim.inventory.hosts.values()) expect(vmCountOn(after, host.id)).toBe(sim.inventory.vmsOn(host.id).length);
  });

  it('an OS type change (USER_UPDATE_VM) is seen after one poll', async () => {
    const vm = runningVm();
    sim.inventory.updateVmOs(vm.id, 'windows_2022');
    const after = await step();
    expect(after.vms.get(vm.id)?.os.type).toBe('windows_2022');
    const counts = after.hosts.get(vm.hostId!)!;
    expect(counts.typeCount('windows_2022')).toBe(sim.inventory.vmsOn(vm.hostId!).filter((v) => v.osType === 'windows_2022').length);
  });

  it('a removed VM and added or removed hosts are applied', async () => {
    const vm = runningVm();
    const gone = otherHost(vm.hostId);
    sim.inventory.removeVm(vm.id);
    const added = sim.inventory.addHostWithEvent('new.example.com');
    sim.inventory.removeHost(gone);
    const before = inv.snapshot()!;
    const after = await step();
    expect(after.vms.get(vm.id)).toBeUndefined();
    expect(after.vmCount).toBe(before.vmCount - 1);
    expect(after.hostIds).toContain(added.id);
    expect(after.hostIds).not.toContain(gone);
    expect(after.hosts.get(gone)).toBeUndefined(); // the engine has no such host any more
    expect(vmCountOn(after, added.id)).toBe(0);
    expect(vmCountOn(after, vm.hostId!)).toBe(sim.inventory.vmsOn(vm.hostId!).length);
    // what listings show of a host follows the same events
    expect(after.hostDetails.get(added.id)).toEqual({
      id: added.id,
      name: 'new.example.com',
      clusterId: added.clusterId,
      status: 'up',
      ksmEnabled: added.ksmEnabled,
    });
    expect(after.hostDetails.has(gone)).toBe(false);
    expect(before.hostDetails.has(gone)).toBe(true);
  });

  it('more events than one poll reads: a full refresh instead', async () => {
    const vm = runningVm();
    for (let i = 0; i <= EVENTS_PAGE; i++) sim.inventory.updateVmOs(vm.id, i % 2 ? 'rhel_9x64' : 'other');
    const full = inv.stats().fullRefreshes;
    const after = await step();
    expect(inv.stats().fullRefreshes).toBe(full + 1);
    expect(after.vms.get(vm.id)?.os.type).toBe('other');
  });

  it('events out of range (the engine log went backwards): a full refresh', async () => {
    const vm = runningVm();
    sim.inventory.updateVmOs(vm.id, vm.osType);
    sim.inventory.updateVmOs(vm.id, vm.osType);
    await step();
    sim.inventory.resetEventLog(1);
    vm.osType = 'ubuntu_22_04'; // changed while the log was lost: no event tells
    const full = inv.stats().fullRefreshes;
    const after = await step();
    expect(inv.stats().fullRefreshes).toBe(full + 1);
    expect(after.vms.get(vm.id)?.os.type).toBe('ubuntu_22_04');
  });

  it('out of touch for longer than the maximum staleness: a full refresh, not a poll', async () => {
    const vm = runningVm();
    sim.inventory.retainEvents = 1;
    sim.inventory.migrateVm(vm.id, otherHost(vm.hostId));
    sim.inventory.updateVmOs(runningVm().id, 'windows_2019x64'); // the migration event has aged out
    const full = inv.stats().fullRefreshes;
    clock += 601_000;
    await inv.sync();
    expect(inv.stats().fullRefreshes).toBe(full + 1);
    expect(inv.snapshot()!.vms.get(vm.id)?.hostId).toBe(sim.inventory.vm(vm.id).hostId);
  });

  it('a guest-agent OS report (no event) is picked up by the periodic full resync', async () => {
    const vm = runningVm();
    sim.inventory.setGuestOs(vm.id, { family: 'Linux', distribution: 'Fedora', fullVersion: '41' });
    expect((await step()).vms.get(vm.id)?.os.version).not.toBe('Fedora 41');
    clock += 300_000;
    expect((await inv.sync()).vms.get(vm.id)?.os.version).toBe('Fedora 41');
  });
});

describe('events polls of the running service when the engine (or a proxy before it) answers them badly', () => {
  const site = simulatedSites();
  afterEach(() => site.stop());
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const metric = async (scorer: Scorer, name: string, labels: Record<string, string> = {}) =>
    valueOf((await scrape(scorer.service.metricsPort!)).text, name, labels) ?? 0;

  it('an events poll whose host re-reads all answer 404 (a broken proxy) does not empty the host list of a fresh inventory', async () => {
    const sim = await site.simulator();
    const scorer = await site.scorerOn(sim);
    const hostIds = [...sim.inventory.hosts.keys()];
    expect(scorer.service.inventory.snapshot()!.hostCount).toBe(12);
    const generation = scorer.service.inventory.snapshot()!.generation;
    // Single host reads 404 through a broken proxy; the /hosts list itself still answers.
    sim.faults.respond = (path, _req: IncomingMessage, res: ServerResponse) => {
      if (!/^\/hosts\/[^/]+$/.test(path)) return false;
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end(JSON.stringify({ reason: 'Operation Failed', detail: 'Entity not found: null' }));
      return true;
    };
    // An administrator edits every host (USER_UPDATE_VDS, code 43): one event each.
    let id = sim.inventory.newestEventId() + 1;
    for (const hostId of hostIds) {
      sim.inventory.events.push({
        id: id++,
        code: 43,
        time: Date.now(),
        description: 'Host updated',
        host: { id: hostId, name: sim.inventory.hosts.get(hostId)!.name },
      });
    }
    await waitUntil(
      () => scorer.service.inventory.snapshot()!.generation > generation || site.logs.some((l) => l.includes('full refresh')),
      5_000,
    );
    await sleep(500);
    // A full refresh with 12 fewer hosts (100%) would be held; a poll must not do it either.
    expect(scorer.service.inventory.snapshot()!.hostCount).toBe(12);
  });

  it('while events polls are paused (newest event unreadable), no full refresh is counted as a success that did not happen', async () => {
    const sim = await site.simulator();
    // The newest event id (GET /events?max=1) cannot be read: polls pause until a full refresh can read it.
    sim.faults.respond = (path, req: IncomingMessage, res: ServerResponse) => {
      if (path !== '/events' || !new URL(req.url ?? '/', 'http://x').searchParams.has('max')) return false;
      res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ reason: 'Operation Failed', detail: 'busy' }));
      return true;
    };
    const scorer = await site.scorerOn(sim);
    await sleep(1_500); // about 7 events intervals of 0.2 s: no sync reads the engine meanwhile
    const vmListReads = sim.requests.filter((r) => r.path === '/api/vms' && (r.query.get('search') ?? '').includes('page 1')).length;
    expect(vmListReads).toBe(1);
    expect(await metric(scorer, 'ksm_scorer_syncs_total', { kind: 'full', outcome: 'success' })).toBe(vmListReads);
  });
});
