/** The sync loop against a fake InventorySource: what it publishes and logs, without HTTP. */
import { describe, expect, it } from 'vitest';
import type { InventorySnapshot } from '../../src/inventory/snapshot';
import type { InventorySource } from '../../src/inventory/engine-reads';
import type { SnapshotUpdate } from '../../src/inventory/generation-sink';
import { InventorySync } from '../../src/inventory/sync';
import { createLogger } from '../../src/log';
import type { EngineEvent, EngineHost, EngineVm } from '../../src/ovirt/model';
import { ScorerError } from '../../src/errors';

const H1 = '10000000-0000-4000-8000-000000000001';
const V1 = '20000000-0000-4000-8000-000000000001';

class FakeSource implements InventorySource {
  hosts: EngineHost[] = [{ id: H1, name: 'h1', clusterId: undefined, status: 'up' }];
  vms: EngineVm[] = [{ id: V1, hostId: H1, os: { type: 'rhel_8x64', version: '' } }];
  events: EngineEvent[] = [];
  down = false;
  calls: string[] = [];
  /** Notes the request; as the engine client does, a failure is a rejection, never a throw. */
  private answer<T>(what: string, value: () => T): Promise<T> {
    return new Promise((resolve) => {
      this.calls.push(what);
      if (this.down) throw new ScorerError('engine_unreachable', `engine unreachable on ${what}: ECONNREFUSED`, { endpoint: what });
      resolve(value());
    });
  }
  listHosts() {
    return this.answer('GET /hosts', () => this.hosts);
  }
  listClusters() {
    return this.answer('GET /clusters', () => []);
  }
  forEachVmPage(onPage: (vms: EngineVm[]) => void) {
    return this.answer('GET /vms', () => {
      onPage(this.vms);
      return 1;
    });
  }
  getHost(id: string) {
    return this.answer('GET /hosts/{id}', () => this.hosts.find((h) => h.id === id));
  }
  getVm(id: string) {
    return this.answer('GET /vms/{id}', () => this.vms.find((v) => v.id === id));
  }
  listVmsOnHost(host: EngineHost) {
    return this.answer('GET /vms', () => this.vms.filter((v) => v.hostId === host.id));
  }
  listEvents(from: number) {
    return this.answer('GET /events', () => this.events.filter((e) => e.id > from));
  }
  newestEventId() {
    return this.answer('GET /events', () => this.events.at(-1)?.id ?? 0);
  }
}

const setup = () => {
  const source = new FakeSource();
  const published: InventorySnapshot[] = [];
  const updates: SnapshotUpdate[] = [];
  const failures: string[] = [];
  const logs: string[] = [];
  let clock = 1_000_000;
  const sync = new InventorySync(
    source,
    {
      refreshIntervalMs: 300_000,
      eventsIntervalMs: 5_000,
      maxStalenessMs: 600_000,
      backoffMaxMs: 60_000,
      maxRejectedPercent: 10,
      maxDropPercent: 25,
    },
    createLogger('debug', { write: (l) => logs.push(l) }),
    {
      publish(s, _ageMs, u) {
        published.push(s);
        updates.push(u);
      },
      syncFailed: (reason) => void failures.push(reason),
    },
    () => clock,
    () => 0.5,
  );
  return { source, published, updates, failures, logs, sync, tick: (ms: number) => (clock += ms) };
};

describe('InventorySync', () => {
  it('starts with a full refresh, then polls events; a quiet poll confirms the data without a new generation', async () => {
    const { source, published, sync, tick } = setup();
    await sync.sync();
    expect(source.calls).toEqual(['GET /events', 'GET /hosts', 'GET /clusters', 'GET /vms']);
    tick(5_000);
    source.calls.length = 0;
    await sync.sync();
    expect(source.calls).toEqual(['GET /events', 'GET /events']); // no new events, and the log did not go backwards
    expect(published.map((s) => s.generation)).toEqual([1, 1]);
    expect(published[1]!.refreshedAt).toBe(published[0]!.refreshedAt + 5_000);
  });

  it('says how each snapshot was made, for replicas in other processes: full, refreshed, or the changes applied', async () => {
    const { source, updates, sync, tick } = setup();
    await sync.sync();
    tick(5_000);
    await sync.sync();
    source.vms = [{ id: V1, hostId: undefined, os: { type: 'rhel_8x64', version: '' } }];
    source.events = [{ id: 7, code: 33, vmId: V1, hostId: undefined }]; // USER_STOP_VM
    tick(5_000);
    await sync.sync();
    expect(updates.map((u) => u.kind)).toEqual(['full', 'refreshed', 'changes']);
    expect(updates[2]).toEqual({ kind: 'changes', changes: { vms: new Map([[V1, source.vms[0]]]), hosts: new Map() } });
  });

  it('a failed sync, however it was asked for, is recorded and logged once per streak with its endpoint; recovery is logged', async () => {
    const { source, failures, logs, sync } = setup();
    await sync.sync();
    source.down = true;
    await expect(sync.refresh()).rejects.toMatchObject({ code: 'engine_unreachable' });
    await expect(sync.sync()).rejects.toMatchObject({ code: 'engine_unreachable' });
    expect(failures).toHaveLength(2);
    expect(sync.stats()).toMatchObject({ syncFailures: 2, failureStreak: 2 });
    // The newest event id only says where polls start: unreadable, it is said once and the refresh goes on to fail at GET /hosts.
    const warned = logs.filter((l) => l.includes('"level":"warn"')).map((l) => JSON.parse(l) as { msg: string; endpoint: string });
    expect(warned).toHaveLength(2);
    expect(warned[0]).toMatchObject({ msg: expect.stringContaining('newest event cannot be read'), endpoint: 'GET /events' });
    expect(warned[1]).toMatchObject({ msg: expect.stringContaining('serving the last good inventory'), endpoint: 'GET /hosts' });
    source.down = false;
    await sync.refresh();
    expect(sync.stats().failureStreak).toBe(0);
    expect(logs.some((l) => l.includes('engine sync recovered'))).toBe(true);
  });

  it('before anything has loaded, the failure says so instead of "serving the last good inventory"', async () => {
    const { source, logs, sync } = setup();
    source.down = true;
    await expect(sync.sync()).rejects.toThrow(/^engine unreachable on GET \/\w+: ECONNREFUSED$/);
    expect(logs.find((l) => l.includes('engine sync failed'))).toMatch(/no inventory has loaded yet/);
  });
});
